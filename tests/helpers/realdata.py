"""Real-format inputs made from the real Sentinel-2 scene in ../shared/data, written in tmp_path.

Import as ``from tests.helpers.realdata import ...``. Every helper skips the calling test, with the reason, when
the shared data are absent (a user's clone has no ``../shared``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import rasterio
import shapely
import typer
from rasterio.windows import Window
from typer.testing import CliRunner, Result

from tests.conftest import shared_data
from tests.helpers.synth import write_aoi
from zoomplan.models.checkpoint import load_checkpoint

REAL_SCENE = "sentinel2/s2_l1c_18SVG_20160112_rgbn_10m.tif"
"""Sentinel-2A L1C, 18SVG, 2016-01-12: bands red (B04), green (B03), blue (B02), nir (B08), x 10000, nodata 0."""
WINDOW = Window(491, 402, 96, 96)
"""The north-west 960 m of the bundled example's crop (pixel edges on the 80 m tile grid and the 40 m patch grid):
town, fields, creek."""


def real_pixels(window: Window = WINDOW) -> tuple[np.ndarray, Any, Any]:
    """(data (4, H, W) uint16 reflectance x 10000, transform, crs) of ``window`` of the real scene."""
    with rasterio.open(shared_data(REAL_SCENE)) as src:
        return src.read(window=window), src.window_transform(window), src.crs


def write_raster(
    path: Path,
    data: np.ndarray,
    transform: Any,
    crs: Any,
    *,
    descriptions: Sequence[str | None] = (),
    nodata: float | None = 0,
    **profile: Any,
) -> Path:
    """``data`` (bands, rows, cols) as a GeoTIFF (or ``profile['driver']``), written as is."""
    prof: dict[str, Any] = dict(
        driver="GTiff",
        count=data.shape[0],
        height=data.shape[1],
        width=data.shape[2],
        dtype=str(data.dtype),
        crs=crs,
        transform=transform,
    )
    if nodata is not None:
        prof["nodata"] = nodata
    prof.update(profile)
    with rasterio.open(path, "w", **prof) as dst:
        dst.write(data)
        for i, d in enumerate(descriptions, 1):
            if d:
                dst.set_band_description(i, d)
    return path


def window_aoi(path: Path, transform: Any, size: int = 96, margin: float = 20.0) -> Path:
    """A one-feature AOI (GeoPackage, EPSG:32618) ``margin`` metres inside a ``size`` px window at ``transform``."""
    x0, y0 = transform.c, transform.f
    side = size * transform.a
    return write_aoi(
        path, [shapely.box(x0 + margin, y0 - side + margin, x0 + side - margin, y0 - margin)], "EPSG:32618", ids=["a"]
    )


S2 = ("red (B04)", "green (B03)", "blue (B02)", "nir (B08)")
"""Band descriptions of the real scene's stack."""


def plan_cli(cli: typer.Typer, aoi: Path, scenes: Path | Sequence[Path], out: Path, *extra: str) -> Result:
    """``zoomplan plan`` (shipped model, CPU, one thread) writing the order ``out`` and its patch layer beside it."""
    lr = [scenes] if isinstance(scenes, Path) else list(scenes)
    args = [
        "plan",
        str(aoi),
        *[a for s in lr for a in ("--lr", str(s))],
        "--device",
        "cpu",
        "--threads",
        "1",
        "--out",
        str(out),
        "--patches",
        str(out.with_suffix(".patches.geojson")),
        "-q",
        *extra,
    ]
    return CliRunner().invoke(cli, args)


def same_plan(
    got: dict[str, tuple[float, bool]], want: dict[str, tuple[float, bool]], tol: float = 0.0, quantised: bool = False
) -> None:
    """Two patch layers (:func:`patch_probs`) plan alike: the same patches, probabilities within ``tol`` and the
    same selection, except (``quantised``: inputs rounded to integer DN) for patches within ``tol`` of the
    0.5 threshold, which that rounding may flip."""
    assert got.keys() == want.keys()
    sure = {k for k in want if not quantised or abs(want[k][0] - 0.5) > tol}
    assert {k for k in sure if got[k][1]} == {k for k in sure if want[k][1]}  # the same selection
    assert max(abs(got[k][0] - want[k][0]) for k in want) <= tol


def patch_probs(out: Path) -> dict[str, tuple[float, bool]]:
    """Patch id -> (probability, selected) from the patch layer beside the order ``out``."""
    fc = json.loads(out.with_suffix(".patches.geojson").read_text())
    return {
        f["properties"]["patch_id"]: (f["properties"]["probability"], f["properties"]["selected"])
        for f in fc["features"]
    }


def plan_reference(
    cli: typer.Typer, tmp_path: Path, *extra: str, side: int | None = None
) -> tuple[Path, dict[str, tuple[float, bool]], np.ndarray, Any, Any]:
    """Plan the stacked real window (``extra``: more ``zoomplan plan`` options, e.g. ``--model``); ``side``:
    patches per side of its 920 m AOI (default: the shipped model's, 960 m of whole patches)."""
    data, transform, crs = real_pixels()
    aoi = window_aoi(tmp_path / "aoi.gpkg", transform)
    ref = write_raster(tmp_path / "rgbn.tif", data, transform, crs, descriptions=S2)
    out = tmp_path / "ref" / "order.geojson"
    r = plan_cli(cli, aoi, ref, out, *extra)
    assert r.exit_code == 0, r.stderr
    probs = patch_probs(out)
    side = side or 960 // int(load_checkpoint(None).card.patch_ground_m[0])
    assert len(probs) == side * side and len(set(probs.values())) > 100  # real probabilities
    return aoi, probs, data, transform, crs
