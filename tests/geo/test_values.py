"""Never plan on garbage (issue 18): raw DN, 8-bit mapping on 16-bit data and a constant scene stop with
one line, exit 2, nothing written; the real scene and the bundled example still plan; --force plans and
says so in the summary. Inputs are made from the real Sentinel-2 scene; the shipped model is used."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import typer
from pyproj import CRS
from typer.testing import CliRunner, Result

from tests.conftest import shared_data
from tests.hardening.catalogue import assert_refused
from tests.helpers.realdata import REAL_SCENE, real_pixels, window_aoi, write_raster
from zoomplan.geo.grid import PlanGrid
from zoomplan.geo.scene import open_scene
from zoomplan.geo.values import BAD_SHARE, check_scene_values, sample_ranges
from zoomplan.models.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[2]
S2 = ("red (B04)", "green (B03)", "blue (B02)", "nir (B08)")


def _plan(cli: typer.Typer, aoi: Path, scene: Path, out: Path, *extra: str) -> Result:
    args = ["plan", str(aoi), "--lr", str(scene), "--device", "cpu", "--threads", "1", "--out", str(out), "-q", *extra]
    return CliRunner().invoke(cli, args)


def _landsat_like_dn(data: np.ndarray) -> np.ndarray:
    """Real reflectance as Landsat 8 Collection 2 Level-1 digital numbers would hold it:
    DN = (rho * sin(30 deg) + 0.1) / 2e-5, i.e. 2.5 x the Sentinel-2 DN + 5000 (median about 7,000)."""
    return np.where(data > 0, data.astype(np.float64) * 2.5 + 5000, 0).round().astype(np.uint16)


@pytest.mark.shared_data
@pytest.mark.parametrize("case", ["raw_dn", "rgb8_on_uint16", "constant"])
def test_garbage_values_stop_the_plan_with_one_line(cli: typer.Typer, tmp_path: Path, case: str) -> None:
    data, transform, crs = real_pixels()
    extra: tuple[str, ...] = ()
    if case == "raw_dn":
        data = _landsat_like_dn(data)
        needles = ["are saturated (white)", "digital numbers, not reflectance x 10,000"]
    elif case == "rgb8_on_uint16":
        extra = ("--sensor", "rgb8")
        needles = ["are saturated", "16-bit values, not 8-bit RGB", "pass --sensor sentinel2_toa"]
    else:
        data = np.full_like(data, 1500)
        needles = ["are constant", "median 1,500, no pixel-to-pixel variation: the file holds no image"]
    scene = write_raster(tmp_path / f"{case}.tif", data, transform, crs, descriptions=S2)
    aoi = window_aoi(tmp_path / "aoi.gpkg", transform)
    out = tmp_path / "out" / "order.geojson"
    r = _plan(cli, aoi, scene, out, *extra)
    line = assert_refused(r, out, f"scene {scene}", *needles, "or pass --force to plan anyway")
    assert "100% of the " in line  # every sampled tile is bad: far past the BAD_SHARE threshold
    assert not list(tmp_path.glob("**/*zoomplan*")), "a journal or staging folder was left"


@pytest.mark.shared_data
def test_force_plans_and_records_the_override(
    cli: typer.Typer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data, transform, crs = real_pixels()
    scene = write_raster(tmp_path / "dn.tif", _landsat_like_dn(data), transform, crs, descriptions=S2)
    out = tmp_path / "out" / "order.geojson"
    r = _plan(cli, window_aoi(tmp_path / "aoi.gpkg", transform), scene, out, "--force")
    assert r.exit_code == 0, (r.stderr, r.exception)
    s: dict[str, Any] = json.loads(out.read_text())["summary"]
    assert s["parameters"]["force"] is True
    (over,) = s["value_checks_overridden"]
    assert over["scene"] == "dn" and "digital numbers, not reflectance" in over["check"]
    assert any(m.startswith("--force: planning although scene") for m in caplog.messages)


@pytest.mark.shared_data
def test_the_real_scene_passes_the_check() -> None:
    """The whole real scene, sampled over its full extent: almost no tile is saturated or constant."""
    path = shared_data(REAL_SCENE)
    card = load_checkpoint(None).card
    sc = open_scene(path, card)
    grid = PlanGrid.from_card(CRS.from_epsg(32618), card)
    chk = check_scene_values(sc, grid, grid.tile_range(sc.bounds))
    assert chk.sampled >= 200 and chk.message == ""
    assert chk.bad_share < 0.05 < BAD_SHARE
    assert 900 < chk.median_raw < 1100  # median of red, green, blue reflectance x 10000


def test_the_bundled_example_still_plans(cli: typer.Typer, tmp_path: Path) -> None:
    out = tmp_path / "order.geojson"
    r = _plan(
        cli,
        ROOT / "examples" / "aoi_accomac.geojson",
        ROOT / "examples" / "s2_l1c_18SVG_20160112_accomac_crop.tif",
        out,
    )
    assert r.exit_code == 0, (r.stderr, r.exception)
    s = json.loads(out.read_text())["summary"]
    assert s["tiles"]["planned"] > 150 and "value_checks_overridden" not in s and "force" not in s["parameters"]


def test_sample_lattice_covers_the_extent_evenly() -> None:
    from zoomplan.geo.grid import TileRange

    tiles = sample_ranges(TileRange(10, 210, 5, 105), n=200)
    rows = sorted({t.r0 for t in tiles})
    cols = sorted({t.c0 for t in tiles})
    assert 150 <= len(tiles) <= 200 and rows[0] < 20 and rows[-1] > 195 and cols[0] < 15 and cols[-1] > 95
    assert sample_ranges(TileRange(0, 1, 0, 1)) == [TileRange(0, 1, 0, 1)]
