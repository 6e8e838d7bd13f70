"""A small model registry: ``create_model(name, **kw)`` and ``list_models()``, in the style of timm.

Names encode depth (``resnet8`` ... ``resnet50``); keyword arguments set width, stem and outputs. A
checkpoint stores the name and keyword arguments, so a model is rebuilt exactly from its card.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from torch import nn

from zoomplan.models.resnet import ResNet

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}

# (blocks per stage, block type). CIFAR-style depths (8, 14, 20, 32) have three stages.
_DEPTHS: dict[str, tuple[tuple[int, ...], str]] = {
    "resnet8": ((1, 1, 1), "basic"),
    "resnet10": ((1, 1, 1, 1), "basic"),
    "resnet14": ((2, 2, 2), "basic"),
    "resnet18": ((2, 2, 2, 2), "basic"),
    "resnet20": ((3, 3, 3), "basic"),
    "resnet32": ((5, 5, 5), "basic"),
    "resnet34": ((3, 4, 6, 3), "basic"),
    "resnet50": ((3, 4, 6, 3), "bottleneck"),
}


def register_model(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator adding a factory under ``name``."""

    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} registered twice")
        _REGISTRY[name] = fn
        return fn

    return deco


def _make_factory(layers: tuple[int, ...], block: str) -> Callable[..., nn.Module]:
    def factory(
        num_outputs: int,
        *,
        width: int = 64,
        stem: str = "imagenet",
        in_channels: int = 3,
        dropout: float = 0.0,
        head: str = "linear",
        grid: Sequence[int] | None = None,
        padding: str = "zeros",
    ) -> nn.Module:
        return ResNet(
            layers,
            num_outputs,
            width=width,
            block=block,
            stem=stem,
            in_channels=in_channels,
            dropout=dropout,
            head=head,
            grid=grid,
            padding=padding,
        )

    return factory


for _name, (_layers, _block) in _DEPTHS.items():
    register_model(_name)(_make_factory(_layers, _block))


def list_models() -> list[str]:
    """Names accepted by :func:`create_model`, sorted."""
    return sorted(_REGISTRY)


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build model ``name`` with keyword arguments (``num_outputs``, ``width``, ``stem`` ...)."""
    if name not in _REGISTRY:
        raise KeyError(f"unknown model {name!r}; available: {', '.join(list_models())}")
    return _REGISTRY[name](**kwargs)
