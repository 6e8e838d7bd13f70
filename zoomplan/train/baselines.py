"""The paper's baselines, fine-tuned on their own masks (the "Ft" columns of its tables).

PATCHDROP.md: baselines are evaluated "with the same classifier weights (Pt column) and after
fine-tuning the classifier on their own masks (Ft columns)". For each of Fixed-H, Fixed-V, Stochastic
and Random this module starts from the stage-1 HR classifier and fine-tunes it with cross-entropy on
HR images masked by that baseline's patches, the way Ft-1 fine-tunes PatchDrop's classifier on the
policy's masks (same epochs, batch size and classifier learning rate as ``[stage.ft1]`` unless the
recipe has a ``[stage.baselines]`` table).

Patch counts: PatchDrop's S on the evaluation split is not known when training, so each training
image gets a count drawn uniformly from ``floor(S_lo) .. ceil(S_hi)``, where S_lo and S_hi are the
smallest and largest val S of the run's Ft-1/Ft-2 policies (Stochastic: a mean drawn uniformly from
that range). The best epoch is chosen on val accuracy at the Ft-1 policy's val S (seeded masks).

The four classifiers are written to ``RUN/baselines.pt`` (a normal checkpoint whose card is the run's
card; components ``hr_fixedh``, ``hr_fixedv``, ``hr_stochastic``, ``hr_random``), not into
``model.pt``: the planner never needs them and they would double the shipped file.
``zoomplan evaluate CKPT --baselines RUN/baselines.pt`` uses them for the Ft-1 and Ft-2 columns (Ft-2
combines each with the LR classifier by the card's rule, as for PatchDrop).
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, RandomSampler

from zoomplan.data.lowres import Streams
from zoomplan.device import autocast, eval_mode, grad_scaler
from zoomplan.errors import CheckpointError, ConfigError
from zoomplan.models.card import ModelCard
from zoomplan.train.checkpoint import Checkpoint, build_component, save_checkpoint
from zoomplan.train.config import StageConfig, TrainConfig
from zoomplan.train.masks import (
    FIXED_H,
    FIXED_V,
    apply_mask,
    counts_for_mean,
    priority_actions,
    random_actions,
    stochastic_actions,
)
from zoomplan.train.rundir import DistInfo, append_metrics
from zoomplan.train.steps import Tally, cosine_lr

log = logging.getLogger(__name__)

BASELINES = ("Fixed-H", "Fixed-V", "Stochastic", "Random")
BASELINE_COMPONENTS = {
    "Fixed-H": "hr_fixedh",
    "Fixed-V": "hr_fixedv",
    "Stochastic": "hr_stochastic",
    "Random": "hr_random",
}
FILENAME = "baselines.pt"


class TrainerView(Protocol):
    """What fine-tuning the baselines uses of the run: a :class:`zoomplan.train.runner.Trainer`."""

    cfg: TrainConfig
    card: ModelCard
    weights: dict[str, dict[str, torch.Tensor]]
    train_ds: Dataset
    val_ds: Dataset
    streams: Streams
    device: torch.device
    dist: DistInfo
    out: Path
    ckpt_path: Path
    progress: Callable[[str, dict[str, Any]], None]

    def val_loader(self) -> DataLoader: ...


def baseline_actions(
    name: str, counts: torch.Tensor, mean: float, grid: tuple[int, int], generator: torch.Generator
) -> torch.Tensor:
    """(B, P) float actions of baseline ``name``: ``counts[i]`` patches for image i (Fixed-H, Fixed-V,
    Random); Stochastic ignores ``counts`` and samples with expected count ``mean``."""
    p = grid[0] * grid[1]
    if name == "Fixed-H":
        return priority_actions(FIXED_H, counts, p)
    if name == "Fixed-V":
        return priority_actions(FIXED_V, counts, p)
    if name == "Random":
        return random_actions(counts, p, generator)
    if name == "Stochastic":
        return stochastic_actions(counts.shape[0], mean, grid, generator)
    raise ConfigError(f"unknown baseline {name!r}; use one of {', '.join(BASELINES)}")


def weights_digest(state: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 of a state dict's values rounded to float16 (as shipped files store them), in key order (identifies the
    classifier fine-tuned from)."""
    h = hashlib.sha256()
    for k in sorted(state):
        h.update(k.encode())
        h.update(state[k].detach().cpu().to(torch.float16).contiguous().numpy().tobytes())
    return h.hexdigest()


def s_range(card_metrics: Mapping[str, object]) -> tuple[float, float, float]:
    """(S_lo, S_hi, S_val_ft1): the val S of the run's Ft-1/Ft-2 policies (patches per image)."""
    val = card_metrics.get("val", {}) if isinstance(card_metrics, Mapping) else {}
    ss = {st: float(val[st]["S"]) for st in ("ft1", "ft2") if isinstance(val, Mapping) and st in val and "S" in val[st]}
    if "ft1" not in ss:
        raise CheckpointError(
            "baseline fine-tuning needs the Ft-1 policy's val S in the card: run --stage ft1 first (same --out)"
        )
    return min(ss.values()), max(ss.values()), ss["ft1"]


def stage_settings(trainer: TrainerView) -> StageConfig:
    """``[stage.baselines]`` if the recipe has one, else ``[stage.ft1]`` (the same fine-tuning budget)."""
    return trainer.cfg.stages.get("baselines") or trainer.cfg.stage("ft1")


def finetune_baselines(trainer: TrainerView) -> Path:
    """Fine-tune one HR classifier per baseline on its own masks; write ``RUN/baselines.pt``.

    Uses the run's stage-1 HR classifier and card (normalisation, geometry) from ``trainer``; single
    process only. Returns the path written.
    """
    if trainer.dist.world > 1:
        raise ConfigError("--stage baselines runs in one process: launch it without torchrun")
    if "hr" not in trainer.weights:
        raise CheckpointError(f"stage baselines needs 'hr' in {trainer.ckpt_path}: run --stage hr first (same --out)")
    lo_s, hi_s, s_val = s_range(trainer.card.metrics)
    P, grid = trainer.card.num_patches, trainer.card.patch_grid
    c_lo, c_hi = max(0, math.floor(lo_s)), min(P, math.ceil(hi_s))
    sc = stage_settings(trainer)
    lr_base = sc.lr_classifier
    out_path = trainer.out / FILENAME
    weights: dict[str, dict[str, torch.Tensor]] = {}
    results: dict[str, dict[str, float]] = {}
    n_train = len(trainer.train_ds)  # type: ignore[arg-type]
    steps = -(-n_train // sc.batch_size)
    for b, name in enumerate(BASELINES):
        tag = f"baseline {name}"
        base_seed = (trainer.cfg.seed * 1_000_003 + 70_001 * (b + 1)) % (2**63)
        model = build_component(trainer.card, "hr")
        model.load_state_dict(trainer.weights["hr"])
        model = model.to(trainer.device)
        opt = torch.optim.Adam(model.parameters(), lr=lr_base, weight_decay=sc.weight_decay)
        scaler = grad_scaler(trainer.device)
        best = -1.0
        trainer.progress("stage_start", {"stage": tag, "epochs": sc.epochs, "start_epoch": 0, "steps": steps})
        for epoch in range(sc.epochs):
            t0 = time.time()
            seed = base_seed + epoch
            torch.manual_seed(seed)
            gen = torch.Generator().manual_seed(seed)
            loader = DataLoader(
                trainer.train_ds,
                batch_size=sc.batch_size,
                sampler=RandomSampler(trainer.train_ds, generator=torch.Generator().manual_seed(seed)),
                num_workers=trainer.cfg.data.workers,
            )
            model.train()
            tally = Tally()
            for step, (images, y) in enumerate(loader):
                for g in opt.param_groups:
                    g["lr"] = cosine_lr(epoch * steps + step, steps * sc.epochs, lr_base, sc.warmup_epochs * steps)
                y = y.to(trainer.device)
                xh, _ = trainer.streams(images.to(trainer.device), generator=gen, augment=True)
                counts = torch.randint(c_lo, c_hi + 1, (len(y),), generator=gen)
                mean = lo_s + (hi_s - lo_s) * float(torch.rand(1, generator=gen))
                a = baseline_actions(name, counts, mean, grid, gen).to(trainer.device)
                with autocast(trainer.device):
                    logits = model(apply_mask(xh, a, grid))
                    loss = F.cross_entropy(logits.float(), y, label_smoothing=sc.label_smoothing)
                opt.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
                tally.add(float(loss.detach()), float((logits.argmax(1) == y).sum()), float(a.sum()), 0.0, len(y))
                trainer.progress(
                    "step", {"stage": tag, "epoch": epoch, "step": step + 1, "steps": steps, **tally.summary()}
                )
            val = validate_baseline(trainer, model, name, s_val, seed=trainer.cfg.seed)
            improved = val["acc"] > best
            if improved:
                best = val["acc"]
                weights[BASELINE_COMPONENTS[name]] = {
                    k: v.detach().cpu().clone() for k, v in model.state_dict().items()
                }
                results[name] = {"val_acc": round(val["acc"], 5), "val_S": round(val["S"], 4), "epoch": epoch + 1}
            row = {
                "stage": "baselines",
                "baseline": name,
                "epoch": epoch + 1,
                "time_s": round(time.time() - t0, 2),
                "best": improved,
                **{f"train_{k}": round(v, 5) for k, v in tally.summary().items() if k != "reward"},
                **{f"val_{k}": round(v, 5) for k, v in val.items()},
            }
            append_metrics(trainer.out / "metrics.jsonl", row)
            trainer.progress("epoch_end", row)
        if BASELINE_COMPONENTS[name] not in weights:  # zero epochs: the stage-1 classifier as it is
            weights[BASELINE_COMPONENTS[name]] = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        trainer.progress("stage_end", {"stage": tag, "best": best})
    metrics = {
        "baselines": {
            "fine_tuned_from_hr_sha256": weights_digest(trainer.weights["hr"]),
            "train_counts": [c_lo, c_hi],
            "val_S_ft1": round(s_val, 4),
            "config": {"epochs": sc.epochs, "batch_size": sc.batch_size, "lr_classifier": lr_base},
            "val": results,
        }
    }
    card = trainer.card.replace(metrics=metrics, stages=(), deploy_stage="")
    save_checkpoint(out_path, card, weights, half=trainer.cfg.model.half_weights)
    log.info("baselines fine-tuned on their own masks: %s -> %s", results, out_path)
    return out_path


@torch.inference_mode()
def validate_baseline(
    trainer: TrainerView, model: torch.nn.Module, name: str, s: float, *, seed: int
) -> dict[str, float]:
    """Val accuracy of ``model`` on ``name``'s masks at mean S ``s`` (the same masks every epoch)."""
    gen = torch.Generator().manual_seed(seed + 99_991)
    n_val = len(trainer.val_ds)  # type: ignore[arg-type]
    counts = counts_for_mean(n_val, s, trainer.card.num_patches, gen)
    tally, start = Tally(), 0
    with eval_mode(model), autocast(trainer.device):
        for images, y in trainer.val_loader():
            y = y.to(trainer.device)
            xh, _ = trainer.streams(images.to(trainer.device))
            a = baseline_actions(name, counts[start : start + len(y)], s, trainer.card.patch_grid, gen).to(
                trainer.device
            )
            pred = model(apply_mask(xh, a, trainer.card.patch_grid)).argmax(1)
            tally.add(0.0, float((pred == y).sum()), float(a.sum()), 0.0, len(y))
            start += len(y)
    s_ = tally.summary()
    return {"acc": s_["acc"], "S": s_["S"]}


def check_baselines(baselines: Checkpoint, ckpt: Checkpoint) -> None:
    """Refuse a baselines file that was not fine-tuned from ``ckpt``'s stage-1 HR classifier."""
    info = baselines.card.metrics.get("baselines") if isinstance(baselines.card.metrics, Mapping) else None
    missing = [c for c in BASELINE_COMPONENTS.values() if c not in baselines.weights]
    if not isinstance(info, Mapping) or missing:
        raise CheckpointError(
            f"{baselines.path} is not a baselines file (no fine-tuned baselines in it); pass RUN/{FILENAME} written "
            f"by --stage baselines"
        )
    if "hr" not in ckpt.weights or info.get("fine_tuned_from_hr_sha256") != weights_digest(ckpt.weights["hr"]):
        raise CheckpointError(
            f"{baselines.path} was fine-tuned from another model's HR classifier than {ckpt.path}; pass the "
            f"{FILENAME} of the same run"
        )
