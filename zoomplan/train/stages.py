"""What each training stage reads and writes, and building the models it trains.

A stage's checkpoint components (:func:`stage_components`), the components it needs from earlier stages
(:data:`STAGE_NEEDS`, checked up front by :func:`require_components`), and its trainable modules, optimiser
parameter groups and policy wiring (:func:`build_stage`). Used by :class:`zoomplan.train.runner.Trainer`, which
re-exports the stage tables and :func:`expand_stages`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from zoomplan.errors import CheckpointError, ConfigError
from zoomplan.models.card import ModelCard
from zoomplan.train.checkpoint import build_component
from zoomplan.train.config import EXTRA_STAGES, STAGES, TrainConfig
from zoomplan.train.steps import PolicyModels

POLICY_COMPONENT = {"policy": "pt", "ft1": "ft1", "ft2": "ft2"}
STAGE_NEEDS = {
    "hr": (),
    "lr": (),
    "policy": ("hr",),
    "ft1": ("policy_pt", "hr"),
    "ft2": ("policy_ft1", "hr_ft1", "lr"),
    "baselines": ("hr", "policy_ft1"),
}


def stage_components(stage: str) -> tuple[str, ...]:
    """Checkpoint components a stage produces (``baselines`` writes its own file, none here)."""
    if stage in EXTRA_STAGES:
        return ()
    if stage in ("hr", "lr"):
        return (stage,)
    s = POLICY_COMPONENT[stage]
    return (f"policy_{s}",) if stage == "policy" else (f"policy_{s}", f"hr_{s}")


def expand_stages(stage: str) -> tuple[str, ...]:
    """``all`` -> every stage in order; otherwise the one stage (validated)."""
    if stage == "all":
        return STAGES
    if stage not in STAGES + EXTRA_STAGES:
        raise ConfigError(f"unknown stage {stage!r}: use one of hr, lr, policy, ft1, ft2, all, baselines")
    return (stage,)


class StageRun(Protocol):
    """What the functions here use of the run: a :class:`zoomplan.train.runner.Trainer`."""

    cfg: TrainConfig
    card: ModelCard
    weights: dict[str, dict[str, torch.Tensor]]
    device: torch.device
    ckpt_path: Path


def require_components(run: StageRun, stages: tuple[str, ...]) -> None:
    """Fail if a stage of ``stages`` needs weights that neither ``run.weights`` holds nor an earlier
    stage of ``stages`` will produce."""
    have = set(run.weights)
    for stage in stages:
        for need in STAGE_NEEDS[stage]:
            if need not in have:
                prev = next(s for s in STAGES if need in stage_components(s))
                raise CheckpointError(
                    f"stage {stage} needs {need!r} in {run.ckpt_path}: run --stage {prev} first (same --out)"
                )
        have |= set(stage_components(stage))


def load_component(run: StageRun, name: str, *, required_by: str) -> nn.Module:
    """Component ``name`` of the run's weights, on the run's device (``required_by``: the stage, for errors)."""
    model = build_component(run.card, name)
    if name not in run.weights:  # require_components() makes this unreachable from Trainer.run()
        raise CheckpointError(f"stage {required_by} needs {name!r} in {run.ckpt_path}")
    model.load_state_dict(run.weights[name])
    return model.to(run.device)


def policy_from_lr(run: StageRun, component: str, *, required_by: str) -> nn.Module:
    """A new policy whose body (every tensor but the output layer) is the trained LR classifier's."""
    policy = build_component(run.card, component)
    if "lr" not in run.weights:
        raise CheckpointError(
            f"stage {required_by}: policy_init = 'lr' needs the trained 'lr' classifier in {run.ckpt_path}: run "
            "--stage lr first"
        )
    own, src = policy.state_dict(), run.weights["lr"]
    body = [k for k in own if not k.startswith("fc.")]
    bad = [k for k in body if k not in src or tuple(src[k].shape) != tuple(own[k].shape)]
    if bad:
        raise ConfigError(
            f"[stage.{required_by}] policy_init = 'lr' needs [model].policy to be the same network as "
            f"[model].lr_classifier (they differ at {bad[0]}): give both the same name, width and stem"
        )
    policy.load_state_dict({**own, **{k: src[k] for k in body}})
    return policy.to(run.device)


def build_stage(run: StageRun, stage: str) -> tuple[dict[str, nn.Module], list[dict[str, Any]], PolicyModels | None]:
    """Trainable modules by component name, optimiser parameter groups, and policy wiring."""
    sc = run.cfg.stage(stage)
    if stage in ("hr", "lr"):
        model = build_component(run.card, stage).to(run.device)
        return {stage: model}, [{"params": model.parameters(), "lr": sc.lr, "base_lr": sc.lr}], None
    if stage == "policy":
        policy = build_component(run.card, "policy_pt").to(run.device)
        hr = load_component(run, "hr", required_by=stage).eval().requires_grad_(False)
        pm = PolicyModels(policy, hr, None, False, run.card.combine, run.card.patch_grid)
        return {"policy_pt": policy}, [{"params": policy.parameters(), "lr": sc.lr, "base_lr": sc.lr}], pm
    src = "pt" if stage == "ft1" else "ft1"
    dst = POLICY_COMPONENT[stage]
    if sc.policy_init == "fresh":
        policy = build_component(run.card, f"policy_{dst}").to(run.device)
    elif sc.policy_init == "lr":
        policy = policy_from_lr(run, f"policy_{dst}", required_by=stage)
    else:
        policy = load_component(run, f"policy_{src}", required_by=stage)
    hr = load_component(run, "hr" if stage == "ft1" else "hr_ft1", required_by=stage)
    lr_model = load_component(run, "lr", required_by=stage).eval().requires_grad_(False) if stage == "ft2" else None
    pm = PolicyModels(policy, hr, lr_model, True, run.card.combine, run.card.patch_grid)
    groups = [
        {"params": policy.parameters(), "lr": sc.lr, "base_lr": sc.lr},
        {"params": hr.parameters(), "lr": sc.lr_classifier, "base_lr": sc.lr_classifier},
    ]
    return {f"policy_{dst}": policy, f"hr_{dst}": hr}, groups, pm
