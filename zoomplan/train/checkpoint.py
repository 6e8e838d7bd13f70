"""Training states (model/optimiser state dicts, epoch, RNG tensors), and the checkpoint API re-exported.

Checkpoints themselves (format, saving, safe loading) live in :mod:`zoomplan.models.checkpoint`, so
that planning loads a model without importing training; the names stay importable from here.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any, Mapping

import torch

from zoomplan.atomic import atomic_path
from zoomplan.errors import CheckpointError
from zoomplan.models.checkpoint import (
    FORMAT,
    FORMAT_VERSION,
    POLICY_STAGES,
    Checkpoint,
    build_component,
    default_checkpoint_path,
    load_checkpoint,
    save_checkpoint,
    spec_for,
    torch_load,
)

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "POLICY_STAGES",
    "Checkpoint",
    "build_component",
    "default_checkpoint_path",
    "load_checkpoint",
    "load_state",
    "save_checkpoint",
    "save_state",
    "spec_for",
]


def save_state(path: str | os.PathLike[str], state: Mapping[str, Any]) -> None:
    """Save a training state (model/optimiser state dicts, epoch, RNG tensors) atomically."""
    buf = io.BytesIO()
    torch.save(dict(state), buf)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.getvalue())


def load_state(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a training state written by :func:`save_state` with ``weights_only=True``."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"no training state at {p}: start without --resume")
    obj = torch_load(p)
    if not isinstance(obj, dict):
        raise CheckpointError(f"{p}: not a zoomplan training state: start without --resume")
    return obj
