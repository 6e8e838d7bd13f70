"""Bands never guessed silently (issue 18): band order from descriptions, colour interpretation or --bands;
a 3- or 4-band file that says nothing is refused with the fix, and each fix, run as printed, plans the same
patches as the stacked red-green-blue file of the same real pixels (shipped model)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import typer

from tests.hardening.catalogue import assert_refused
from tests.helpers.realdata import patch_probs as _probs  # noqa: F401 (fixture)
from tests.helpers.realdata import plan_cli as _plan
from tests.helpers.realdata import write_raster


@pytest.mark.shared_data
def test_unlabelled_bgr_is_refused_then_each_fix_plans_the_same(cli: typer.Typer, tmp_path: Path, reference) -> None:
    aoi, want, data, transform, crs = reference
    bgr = write_raster(
        tmp_path / "bgr.tif", data[[2, 1, 0]], transform, crs
    )  # no descriptions: gray, undefined, undefined
    out = tmp_path / "out" / "order.geojson"
    line = assert_refused(
        _plan(cli, aoi, bgr, out),
        out,
        f"scene {bgr} does not say which band is which",
        "colour interpretation gray, undefined, undefined",
        "pass --bands",
        "rio edit-info --colorinterp red,green,blue FILE",
    )
    assert "reading bands" not in line
    # fix 1: --bands
    r = _plan(cli, aoi, bgr, out, "--bands", "3,2,1")
    assert r.exit_code == 0, r.stderr
    assert _probs(out) == want
    # fix 2: the rio command of the message, run as printed (with the file's real order)
    subprocess.run(
        [str(Path(sys.executable).parent / "rio"), "edit-info", "--colorinterp", "blue,green,red", str(bgr)], check=True
    )
    out2 = tmp_path / "out2" / "order.geojson"
    r = _plan(cli, aoi, bgr, out2)
    assert r.exit_code == 0, r.stderr
    assert _probs(out2) == want


@pytest.mark.shared_data
def test_four_unlabelled_bands_are_refused(cli: typer.Typer, tmp_path: Path, reference) -> None:
    aoi, _, data, transform, crs = reference
    p = write_raster(tmp_path / "four.tif", data, transform, crs)
    out = tmp_path / "out" / "order.geojson"
    assert_refused(
        _plan(cli, aoi, p, out),
        out,
        "does not say which band is which",
        "rio edit-info --colorinterp red,green,blue,undefined FILE",
    )


@pytest.mark.shared_data
def test_rgb_colour_interpretation_is_trusted(cli: typer.Typer, tmp_path: Path, reference) -> None:
    aoi, want, data, transform, crs = reference
    rgb = write_raster(tmp_path / "rgb.tif", data[:3], transform, crs, photometric="RGB")
    out = tmp_path / "out" / "order.geojson"
    r = _plan(cli, aoi, rgb, out)
    assert r.exit_code == 0, r.stderr
    assert _probs(out) == want
