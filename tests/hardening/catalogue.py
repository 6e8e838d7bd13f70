"""Shared by the input-catalogue tests (docs/inputs.md): drive ``zoomplan plan``, check errors and repairs.

Every refusal must be: exit code 2, empty stdout, exactly one stderr line ``error: ...`` naming the
input and the fix, no traceback, and no output file. Every repair must plan and say so in a warning.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import shapely
import typer
from pyproj import Transformer
from typer.testing import CliRunner, Result

from tests.helpers.synth import utm_scene

X0, Y0 = 440000.0, 4170000.0
"""Top-left corner (EPSG:32618, metres) of the standard 48 px x 10 m test scene (Accomac, Virginia)."""


@pytest.fixture
def scene(tmp_path: Path) -> Path:
    """A 480 m x 480 m uint16 Sentinel-2-like scene in EPSG:32618 (nodata 0)."""
    return utm_scene(tmp_path / "scene.tif", size=48)


def to_lonlat(g: Any, epsg: int = 32618) -> Any:
    """A shapely geometry in EPSG:``epsg`` as lon/lat (edges densified every 20 m first)."""
    t = Transformer.from_crs(epsg, 4326, always_xy=True)
    return shapely.transform(shapely.segmentize(g, 20.0), lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1])))


@pytest.fixture
def run_plan(cli: typer.Typer, tiny_checkpoint: Path, tmp_path: Path) -> Callable[..., tuple[Result, Path]]:
    """``run_plan(aoi, scenes, *extra)``: invoke ``zoomplan plan`` (tiny model, CPU, clip-50cm) writing
    ``tmp_path/out/order.geojson``; returns (CliRunner result, order path)."""

    def run(aoi: Path, scenes: Path | list[Path], *extra: str, model: Path | None = None) -> tuple[Result, Path]:
        out = tmp_path / "out" / "order.geojson"
        lr = [scenes] if isinstance(scenes, Path) else scenes
        args = [
            "plan",
            str(aoi),
            *[a for s in lr for a in ("--lr", str(s))],
            "--model",
            str(model or tiny_checkpoint),
            "--device",
            "cpu",
            "--out",
            str(out),
            "--vendor",
            "clip-50cm",
            "-q",
            *extra,
        ]
        return CliRunner().invoke(cli, args), out

    return run


def assert_refused(r: Result, out: Path, *needles: str) -> str:
    """The one-line refusal: exit 2, stdout empty, one ``error:`` line holding every needle, nothing written."""
    assert r.exit_code == 2, (r.exit_code, r.stdout, r.stderr, r.exception)
    assert r.stdout == ""
    assert "Traceback" not in r.stderr
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1, r.stderr
    for n in needles:
        assert n in errors[0], (n, errors[0])
    assert not out.exists() and not out.parent.exists(), "an output was written"
    return errors[0]


def planned(r: Result, out: Path) -> dict[str, Any]:
    """The order's summary of a successful plan (exit 0, file written)."""
    assert r.exit_code == 0, (r.stderr, r.exception)
    assert out.is_file()
    return json.loads(out.read_text())["summary"]


@pytest.fixture
def warnings_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """caplog at WARNING for zoomplan's loggers."""
    caplog.set_level(logging.WARNING, logger="zoomplan")
    return caplog
