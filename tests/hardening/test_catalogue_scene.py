"""Input catalogue, scenes (docs/inputs.md): each row's exact behaviour through ``zoomplan plan``."""
# ruff: noqa: F811 - the fixtures imported from catalogue are redefined as test arguments

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import rasterio
import shapely
from pyproj import CRS
from rasterio.transform import Affine, from_origin

from tests.hardening.catalogue import X0, Y0, assert_refused, planned, run_plan, scene, warnings_log  # noqa: F401 (fixtures)
from tests.helpers.synth import S2_DESCRIPTIONS, utm_scene, write_aoi
from zoomplan.geo.grid import PlanGrid
from zoomplan.geo.scene import GridReader, open_scene
from zoomplan.models.checkpoint import load_checkpoint

AOI_BOX = shapely.box(X0 + 40, Y0 - 400, X0 + 360, Y0 - 80)  # inside the 480 m scene, EPSG:32618


@pytest.fixture
def aoi(tmp_path: Path) -> Path:
    return write_aoi(tmp_path / "aoi.gpkg", [AOI_BOX], "EPSG:32618", ids=["a"])


def _raw(
    path: Path,
    data: np.ndarray,
    *,
    crs: str | None = "EPSG:32618",
    transform: Affine | None = from_origin(X0, Y0, 10, 10),
    nodata: float | None = None,
    descriptions: tuple[str | None, ...] = S2_DESCRIPTIONS,
) -> Path:
    """Write ``data`` (bands, rows, cols) as a GeoTIFF, as is."""
    profile: dict[str, Any] = dict(
        driver="GTiff", count=data.shape[0], height=data.shape[1], width=data.shape[2], dtype=str(data.dtype)
    )
    if crs is not None:
        profile["crs"] = crs
    if transform is not None:
        profile["transform"] = transform
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        for i, d in enumerate(descriptions[: data.shape[0]]):
            if d:
                dst.set_band_description(i + 1, d)
    return path


def _dn(shape: tuple[int, int] = (48, 48), bands: int = 4, dtype: str = "uint16", seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.uniform(300, 3000, (bands, *shape))).astype(dtype)


def test_truncated_geotiff_is_refused(run_plan: Callable, aoi: Path, tmp_path: Path) -> None:
    full = utm_scene(tmp_path / "full.tif", size=256, tiled=True)
    cut = tmp_path / "cut.tif"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    r, out = run_plan(aoi, cut)
    line = assert_refused(r, out, str(cut))
    assert "truncated or corrupt" in line or "not a raster GDAL can read" in line


def test_corrupted_pixels_are_refused(run_plan: Callable, aoi: Path, tmp_path: Path) -> None:
    """A deflate-compressed tile whose bytes were overwritten: the header reads, the pixels do not."""
    good = utm_scene(tmp_path / "good.tif", size=64, tiled=True)
    data = bytearray(good.read_bytes())
    with rasterio.open(good) as src:
        offset = int(src.get_tag_item("BLOCK_OFFSET_0_0", "TIFF", bidx=1))
    data[offset + 2 : offset + 200] = bytes(198)
    bad = tmp_path / "bad.tif"
    bad.write_bytes(bytes(data))
    r, out = run_plan(aoi, bad)
    assert_refused(r, out, str(bad), "reading pixels failed", "the file is truncated or corrupt; re-download it")


def test_not_a_raster_is_refused(run_plan: Callable, aoi: Path, tmp_path: Path) -> None:
    fake = tmp_path / "fake.tif"
    fake.write_text("this is not a GeoTIFF\n")
    r, out = run_plan(aoi, fake)
    assert_refused(r, out, str(fake), "is not a raster GDAL can read", "pass a GeoTIFF, COG or JP2")


def test_missing_scene_is_refused(run_plan: Callable, aoi: Path, tmp_path: Path) -> None:
    r, out = run_plan(aoi, tmp_path / "nope.tif")
    assert_refused(r, out, "nope.tif", "not found", "pass --lr with the path")


def _run_fix(line: str) -> None:
    """Run the ``rio ...`` command an error line suggests, as printed (issue 18: hints that work)."""
    import shlex
    import subprocess
    import sys

    cmd = shlex.split(line[line.index("rio ") :].rstrip(")"))
    subprocess.run([str(Path(sys.executable).parent / "rio"), *cmd[1:]], check=True)


def test_no_crs_is_refused(run_plan: Callable, aoi: Path, tmp_path: Path) -> None:
    p = _raw(tmp_path / "nocrs.tif", _dn(), crs=None)
    r, out = run_plan(aoi, p)
    line = assert_refused(r, out, str(p), "has no CRS", f"rio edit-info --crs EPSG:32618 {p}")
    _run_fix(line.split(") or use")[0])
    planned(*run_plan(aoi, p))


def test_no_geotransform_is_refused(run_plan: Callable, aoi: Path, tmp_path: Path) -> None:
    p = _raw(tmp_path / "nogt.tif", _dn(), transform=None)
    r, out = run_plan(aoi, p)
    line = assert_refused(
        r, out, str(p), "has no georeferencing", f"rio edit-info --transform '[10, 0, 440000, 0, -10, 4170000]' {p}"
    )
    _run_fix(line)
    planned(*run_plan(aoi, p))


def test_rotated_geotransform_is_refused(run_plan: Callable, aoi: Path, tmp_path: Path) -> None:
    p = _raw(tmp_path / "rot.tif", _dn(), transform=Affine(10.0, 1.5, X0, 1.5, -10.0, Y0))
    r, out = run_plan(aoi, p)
    line = assert_refused(r, out, str(p), "has a rotated geotransform", f"rio warp {p} {tmp_path / 'rot_north_up.tif'}")
    _run_fix(line)
    planned(*run_plan(aoi, tmp_path / "rot_north_up.tif", "--bands", "1,2,3"))  # rio warp drops band descriptions


def test_nodata_unset_zero_border_is_nodata(run_plan: Callable, aoi: Path, tmp_path: Path, warnings_log: Any) -> None:
    """No nodata value; the western 16 columns are 0 in every band (a Sentinel-2 tile edge): those tiles are skipped."""
    data = _dn()
    data[:, :, :16] = 0
    p = _raw(tmp_path / "border.tif", data, nodata=None)
    r, out = run_plan(aoi, p)
    s = planned(r, out)
    assert "sets no nodata value: pixels that are 0 in every model band" in warnings_log.text
    # AOI x 40..360 m, y -400..-80 m: 5 x 4 tiles of 80 m; 16 px = 160 m: tile columns 0 and 1 are all zero
    assert s["tiles"]["skipped_nodata"] == 2 * 4 and s["tiles"]["planned"] == 3 * 4


def test_zero_in_one_band_is_data(tmp_path: Path, tiny_checkpoint: Path) -> None:
    """The zero rule needs 0 in every model band: a pixel with red 0 but green and blue > 0 is data."""
    data = _dn()
    data[0] = 0
    p = _raw(tmp_path / "red0.tif", data, nodata=None)
    card = load_checkpoint(tiny_checkpoint).card
    sc = open_scene(p, card)
    grid = PlanGrid.from_card(CRS.from_epsg(32618), card)
    tr = grid.tile_range((X0, Y0 - 480, X0 + 480, Y0))
    with GridReader(sc, grid, tr) as rd:
        _, valid = rd.read(tr)
    assert valid.all()


def test_nan_and_inf_are_nodata(run_plan: Callable, aoi: Path, tmp_path: Path) -> None:
    data = _dn(dtype="float32")
    data[:, :, :16] = np.nan
    data[1, 8:16, 24:32] = np.inf  # one whole tile (row 1, column 3) infinite in green
    data[2, 16:18, 24:26] = -np.inf  # a few pixels of the next tile: under the tile's valid share, it is still planned
    p = _raw(tmp_path / "nan.tif", data, nodata=None)
    r, out = run_plan(aoi, p, "--sensor", "sentinel2_toa", "--patches", str(tmp_path / "out" / "p.geojson"))
    s = planned(r, out)
    assert s["tiles"]["skipped_nodata"] == 2 * 4 + 1 and s["tiles"]["planned"] == 3 * 4 - 1
    probs = [
        f["properties"]["probability"] for f in json.loads((tmp_path / "out" / "p.geojson").read_text())["features"]
    ]
    assert probs and np.isfinite(probs).all()


@pytest.mark.parametrize(
    ("dtype", "sensor"), [("uint8", "rgb8"), ("uint16", "sentinel2_toa"), ("int16", "sentinel2_toa")]
)
def test_integer_types_choose_the_sensor_mapping(
    run_plan: Callable, aoi: Path, tmp_path: Path, dtype: str, sensor: str
) -> None:
    p = utm_scene(tmp_path / f"{dtype}.tif", size=48, dtype=dtype)
    r, out = run_plan(aoi, p)
    s = planned(r, out)
    assert s["parameters"]["sensor"] == sensor and s["scenes"][0]["sensor"] == sensor


def test_float_without_sensor_is_refused(run_plan: Callable, aoi: Path, tmp_path: Path) -> None:
    p = _raw(tmp_path / "float.tif", _dn(dtype="float32"), nodata=None)
    r, out = run_plan(aoi, p)
    assert_refused(r, out, str(p), "holds float32 values", "pass --sensor with one of sentinel2_toa, rgb8")


def test_float_with_sensor_is_planned(run_plan: Callable, aoi: Path, tmp_path: Path) -> None:
    p = _raw(tmp_path / "float.tif", _dn(dtype="float32"), nodata=None)
    r, out = run_plan(aoi, p, "--sensor", "sentinel2_toa")
    assert planned(r, out)["tiles"]["planned"] == 20


def test_cloud_mask_band_is_ignored_with_warning(
    run_plan: Callable, aoi: Path, tmp_path: Path, warnings_log: Any
) -> None:
    data = _dn(bands=5)
    data[4] = 0
    data[4, :24] = 1  # "cloudy" north half
    p = _raw(tmp_path / "clm.tif", data, nodata=0, descriptions=(*S2_DESCRIPTIONS, "cloud mask"))
    r, out = run_plan(aoi, p)
    s = planned(r, out)
    assert "has mask band(s) 5='cloud mask' that zoomplan does not use" in warnings_log.text
    assert s["scenes"][0]["bands"] == ["red (B04)", "green (B03)", "blue (B02)"] and s["tiles"]["planned"] == 20
    assert "clouds" not in s
    # the fix the warning names, run as printed, then the band as --cloud-mask: the north half's patches are cloudy
    hint = next(m for m in warnings_log.messages if "rio stack" in m)
    _run_fix(hint[hint.index("rio stack") :].replace("cloud_mask.tif", str(tmp_path / "cloud_mask.tif")))
    out.unlink()
    s = planned(*run_plan(aoi, p, "--cloud-mask", str(tmp_path / "cloud_mask.tif")))
    # AOI y from Y0 - 80 to Y0 - 400 m (patch rows 4..19 of the scene); mask rows 0..23 (y > Y0 - 240 m): patch rows
    # 4..11
    assert s["clouds"]["patches_cloudy"] == 8 * 16 and s["clouds"]["masks"] == {
        "clm": "--cloud-mask cloud_mask.tif: nonzero = cloud"
    }


def test_scene_that_does_not_overlap_is_ignored(
    run_plan: Callable, aoi: Path, tmp_path: Path, warnings_log: Any
) -> None:
    here = utm_scene(tmp_path / "here.tif", size=48)
    away = utm_scene(tmp_path / "away.tif", size=16, x0=X0 + 50_000)
    r, out = run_plan(aoi, [away, here])
    s = planned(r, out)
    assert "scene away does not overlap the AOI; ignored" in warnings_log.text
    assert [sc["id"] for sc in s["scenes"]] == ["here"]


def test_no_scene_overlaps_is_refused(run_plan: Callable, aoi: Path, tmp_path: Path) -> None:
    away = utm_scene(tmp_path / "away.tif", size=16, x0=X0 + 50_000)
    r, out = run_plan(aoi, away)
    assert_refused(r, out, str(aoi), "lies outside every scene", "pass --lr scenes that cover the AOI")


def test_missing_bands_are_refused(run_plan: Callable, aoi: Path, tmp_path: Path) -> None:
    p = utm_scene(tmp_path / "twoband.tif", size=48, count=2, descriptions=("B08", "B11"))
    r, out = run_plan(aoi, p)
    assert_refused(r, out, str(p), "has no band for red", "pass --bands")


def _antimeridian_scene(path: Path) -> Path:
    """EPSG:4326, 0.0001 degree pixels from 179.97 to 180.03 E (past +180), 16.00 to 16.03 S.
    Band values say the side: 1000 west of 180, 2000 east of it, +-20 in a pixel checker (a constant
    scene would be refused as holding no image, zoomplan.geo.values)."""
    w, h = 600, 300
    data = np.full((3, h, w), 1000, dtype="uint16")
    data[:, :, 300:] = 2000
    yy, xx = np.mgrid[0:h, 0:w]
    data = (data + np.where((yy + xx) % 2 == 0, 20, -20)[None]).astype("uint16")
    return _raw(path, data, crs="EPSG:4326", transform=from_origin(179.97, -16.0, 0.0001, 0.0001), nodata=0)


@pytest.mark.parametrize(
    ("side", "box", "value"),
    [("west", (179.975, -16.02, 179.995, -16.005), 1000), ("east", (-179.995, -16.02, -179.975, -16.005), 2000)],
)
def test_geographic_scene_across_the_antimeridian(
    run_plan: Callable, tmp_path: Path, tiny_checkpoint: Path, side: str, box: tuple[float, ...], value: int
) -> None:
    scene = _antimeridian_scene(tmp_path / "fiji.tif")
    aoi = tmp_path / f"{side}.geojson"
    aoi.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {"type": "Feature", "properties": {}, "geometry": shapely.geometry.mapping(shapely.box(*box))}
                ],
            }
        )
    )
    r, out = run_plan(aoi, scene)
    s = planned(r, out)
    assert s["tiles"]["planned"] == s["tiles"]["total"] > 0 and s["tiles"]["skipped_nodata"] == 0
    # the pixels read are the ones of that side of the antimeridian
    card = load_checkpoint(tiny_checkpoint).card
    sc = open_scene(scene, card)
    crs = CRS.from_epsg(32760 if side == "west" else 32701)
    grid = PlanGrid.from_card(crs, card)
    from zoomplan.geo.aoi import read_aoi

    tr = grid.tile_range(read_aoi(aoi).to_crs(crs).union().bounds)
    with GridReader(sc, grid, tr) as rd:
        unit, valid = rd.read(tr)
    inner = unit[:, 8:-8, 8:-8][:, valid[8:-8, 8:-8]]
    assert inner.size and abs(float(inner.mean()) - value * 1e-4 * 3.0) < 0.003  # the sides differ by 0.3
