"""Resolve the compute device once; everything else receives a ``torch.device``.

Nothing else in zoomplan chooses a device. Autocast helpers live here too so that mixed precision is
used on CUDA and never on CPU (where bfloat16 autocast is slower than float32 for these small nets).
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch

from zoomplan.errors import ConfigError

_CHOICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(name: str = "auto") -> torch.device:
    """Return the device for ``name`` in ``auto|cpu|cuda|cuda:N|mps``.

    ``auto`` picks CUDA when available, then MPS, else CPU. Asking for an absent accelerator is an
    error rather than a silent fallback: a user who typed ``--device cuda`` wants to know.
    """
    base = name.split(":", 1)[0]
    if base not in _CHOICES:
        raise ConfigError(f"unknown device {name!r}: use one of auto, cpu, cuda, cuda:N, mps")
    if base == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if base == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} asked for but CUDA is not available: use --device cpu or auto")
    if base == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError(f"device {name!r} asked for but MPS is not available: use --device cpu or auto")
    return torch.device(name)


def autocast(device: torch.device, enabled: bool = True) -> contextlib.AbstractContextManager[None]:
    """Mixed precision (float16 autocast) on CUDA; a no-op elsewhere."""
    if enabled and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def grad_scaler(device: torch.device) -> torch.amp.GradScaler:
    """A GradScaler that is active only on CUDA (float16 autocast needs it; CPU does not)."""
    return torch.amp.GradScaler("cuda", enabled=device.type == "cuda")


@contextlib.contextmanager
def eval_mode(*modules: torch.nn.Module) -> Iterator[None]:
    """Put modules in eval mode and restore their previous mode afterwards."""
    was = [m.training for m in modules]
    for m in modules:
        m.eval()
    try:
        yield
    finally:
        for m, t in zip(modules, was):
            m.train(t)
