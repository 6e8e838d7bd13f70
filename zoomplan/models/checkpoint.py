"""Checkpoints: state dicts plus a model card, saved atomically, loaded with ``weights_only=True``.

Layout of a checkpoint file (a ``torch.save`` of plain types and tensors only)::

    {"format": "zoomplan.checkpoint", "format_version": 1,
     "card": ModelCard.to_dict(),
     "weights": {"hr": state_dict, "lr": ..., "policy_pt": ..., "policy_ft1": ..., "hr_ft1": ...},
     "digest": sha256 over the card and every tensor}

Component names: ``hr`` and ``lr`` are the stage-1 classifiers; ``policy_<stage>`` and ``hr_<stage>``
the policy and HR classifier after stage ``pt``, ``ft1`` or ``ft2`` (Pt trains no classifier).
The digest detects a modified or truncated file; it is an integrity check, not a signature.

Loading lives here, beside the networks, so that planning never imports :mod:`zoomplan.train`;
training states (optimiser, epoch, RNG) stay in :mod:`zoomplan.train.checkpoint`.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from zoomplan.atomic import atomic_path
from zoomplan.errors import CheckpointError
from zoomplan.models.card import ModelCard, ModelSpec
from zoomplan.models.registry import create_model

FORMAT = "zoomplan.checkpoint"
FORMAT_VERSION = 1
POLICY_STAGES = ("pt", "ft1", "ft2")


def default_checkpoint_path() -> Path:
    """Path of the default model shipped inside the package (UC Merced, 10 m LR)."""
    return Path(str(resources.files("zoomplan.weights") / "default.pt"))


def _digest(card: Mapping[str, Any], weights: Mapping[str, Mapping[str, torch.Tensor]]) -> str:
    h = hashlib.sha256(json.dumps(card, sort_keys=True).encode())
    for comp in sorted(weights):
        for key in sorted(weights[comp]):
            t = weights[comp][key]
            h.update(f"{comp}/{key}/{t.dtype}/{tuple(t.shape)}".encode())
            h.update(
                t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
            )
    return h.hexdigest()


def save_checkpoint(
    path: str | os.PathLike[str],
    card: ModelCard,
    weights: Mapping[str, Mapping[str, torch.Tensor]],
    *,
    half: bool = False,
) -> Path:
    """Save ``weights`` (component -> state dict) with ``card`` to ``path`` atomically.

    ``half=True`` stores floating-point tensors as float16 (halves the size; they are restored to
    float32 on load). Returns the path written.
    """
    plain: dict[str, dict[str, torch.Tensor]] = {}
    for comp, sd in weights.items():
        plain[comp] = {}
        for k, v in sd.items():
            v = v.detach().cpu()
            if half and v.is_floating_point():
                v = v.half()
            plain[comp][k] = v.clone()
    card_d = card.to_dict()
    obj = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "card": card_d,
        "weights": plain,
        "digest": _digest(card_d, plain),
    }
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint: its card and its components' state dicts (float32)."""

    path: Path
    card: ModelCard
    weights: Mapping[str, Mapping[str, torch.Tensor]]

    @property
    def policy_stages(self) -> tuple[str, ...]:
        """Policy stages present, in training order (subset of pt, ft1, ft2)."""
        return tuple(s for s in POLICY_STAGES if f"policy_{s}" in self.weights)

    @property
    def final_stage(self) -> str | None:
        """The last policy stage present, or None."""
        stages = self.policy_stages
        return stages[-1] if stages else None

    @property
    def deploy_stage(self) -> str | None:
        """The policy stage the planner uses: the card's ``deploy_stage`` (chosen on val when the
        model was trained) if present, else the last stage; None without a policy."""
        chosen = self.card.deploy_stage
        return chosen if chosen in self.policy_stages else self.final_stage

    def build(self, component: str, device: torch.device | str = "cpu") -> nn.Module:
        """Rebuild ``component`` (``hr``, ``lr``, ``policy_ft1``, ``hr_ft1`` ...) in eval mode."""
        if component not in self.weights:
            raise CheckpointError(
                f"{self.path}: checkpoint has no component {component!r} (has: {', '.join(sorted(self.weights))}): "
                f"train that stage first"
            )
        model = build_component(self.card, component)
        try:
            model.load_state_dict(self.weights[component])
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            raise CheckpointError(
                f"{self.path}: weights of {component!r} do not fit the architecture on its card ({first}): the file "
                f"was altered or mixes models"
            ) from exc
        return model.to(device).eval()

    def hr_for_stage(self, stage: str) -> str:
        """Component name of the HR classifier used with the policy of ``stage`` (Pt reuses stage 1)."""
        name = f"hr_{stage}"
        return name if name in self.weights else "hr"


def spec_for(card: ModelCard, component: str) -> tuple[ModelSpec, int]:
    """(model spec, number of outputs) of a component name."""
    base = component.split("_", 1)[0]
    if base == "policy":
        return card.policy, card.num_patches
    if base == "hr":
        return card.hr_classifier, len(card.class_names)
    if base == "lr":
        return card.lr_classifier, len(card.class_names)
    raise CheckpointError(f"unknown checkpoint component {component!r}")


def build_component(card: ModelCard, component: str) -> nn.Module:
    """A freshly initialised network for ``component`` as the card describes it."""
    spec, n_out = spec_for(card, component)
    return create_model(spec.name, num_outputs=n_out, **dict(spec.kwargs))


def torch_load(path: Path) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU; any failure becomes a one-line :class:`CheckpointError`."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{path}: refused to load: it holds objects other than tensors and plain data (possibly code); only load "
            f"checkpoints written by zoomplan"
        ) from exc
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"{path}: not a readable checkpoint ({msg}): the file is truncated or not a zoomplan checkpoint"
        ) from exc


def load_checkpoint(path: str | os.PathLike[str] | None = None) -> Checkpoint:
    """Load a checkpoint (default: the shipped model) safely and verify it.

    Uses ``torch.load(..., weights_only=True)``; checks the format, version, digest and card.
    Raises :class:`CheckpointError` with a one-line reason on any problem.
    """
    p = Path(path) if path is not None else default_checkpoint_path()
    if not p.is_file():
        raise CheckpointError(f"checkpoint {p} not found: pass --model PATH to a file written by 'zoomplan train'")
    obj = torch_load(p)
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise CheckpointError(
            f"{p}: not a zoomplan checkpoint (no '{FORMAT}' header): pass a file written by 'zoomplan train'"
        )
    version = obj.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{p}: checkpoint format version {version} is not supported by this zoomplan (expects {FORMAT_VERSION}): "
            f"retrain or use the matching zoomplan release"
        )
    card_d, weights = obj.get("card"), obj.get("weights")
    if not isinstance(card_d, dict) or not isinstance(weights, dict):
        raise CheckpointError(f"{p}: checkpoint lacks its card or weights: the file is damaged")
    if obj.get("digest") != _digest(card_d, weights):
        raise CheckpointError(
            f"{p}: checkpoint content does not match its digest: the file was modified or corrupted; use an "
            f"unmodified copy"
        )
    card = ModelCard.from_dict(card_d)
    w32 = {c: {k: (v.float() if v.is_floating_point() else v) for k, v in sd.items()} for c, sd in weights.items()}
    return Checkpoint(path=p, card=card, weights=w32)
