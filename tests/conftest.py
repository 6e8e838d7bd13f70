"""Shared fixtures. Data are generated small, seeded, with real CRSs, in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from zoomplan.models.card import SENTINEL2_BAND_ALIASES, ModelCard, ModelSpec, Normalization, SensorMapping
from zoomplan.models.checkpoint import build_component, save_checkpoint

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_data(sub: str) -> Path:
    """Path under ../shared/data, or skip the test with the reason when it is absent."""
    p = SHARED_DATA / sub
    if not p.exists():
        pytest.skip(f"needs {p} (the project's shared real data beside the checkout); absent here")
    return p


def tiny_card(classes: tuple[str, ...] = ("field", "town", "water"), **over) -> ModelCard:
    """A small card shaped like the default model's: 80 m tiles, 8x8 LR at 10 m, 4x4 patches."""
    kw = dict(
        class_names=classes,
        policy=ModelSpec("resnet8", {"width": 8, "stem": "small"}),
        hr_classifier=ModelSpec("resnet8", {"width": 8, "stem": "medium"}),
        lr_classifier=ModelSpec("resnet8", {"width": 8, "stem": "small"}),
        hr_size_px=32,
        lr_size_px=8,
        hr_pixel_m=2.5,
        lr_pixel_m=10.0,
        tile_ground_m=80.0,
        hr_norm=Normalization((0.45, 0.45, 0.42), (0.2, 0.2, 0.2)),
        lr_norm=Normalization((0.45, 0.45, 0.42), (0.15, 0.15, 0.15)),
        lr_sensors=(
            SensorMapping(
                "sentinel2_toa",
                scale=1e-4,
                gain=3.0,
                bands=("red", "green", "blue"),
                band_aliases=SENTINEL2_BAND_ALIASES,
            ),
            SensorMapping("rgb8", scale=1 / 255),
        ),
        dataset="tiny",
        seed=0,
        stages=("hr", "lr", "pt", "ft1"),
    )
    kw.update(over)
    return ModelCard(**kw)


@pytest.fixture(scope="session")
def cli():
    """The full ``zoomplan`` Typer app, every command registered (as on the command line); torch on one
    thread, so results do not depend on the machine's core count."""
    from zoomplan.cli import app, register

    torch.set_num_threads(1)
    register()
    return app


@pytest.fixture
def tiny_checkpoint(tmp_path: Path) -> Path:
    """A randomly initialised, card-complete checkpoint with policy_pt/ft1, hr, hr_ft1 and lr."""
    torch.manual_seed(0)
    card = tiny_card()
    comps = ("hr", "lr", "policy_pt", "policy_ft1", "hr_ft1")
    weights = {c: build_component(card, c).state_dict() for c in comps}
    return save_checkpoint(tmp_path / "tiny.pt", card, weights)
