"""Scenes: band choice, sensor mapping, validation errors, reads on the planning grid (direct and warped)."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pytest
import rasterio
from pyproj import CRS
from rasterio.transform import from_origin

from tests.conftest import tiny_card
from tests.helpers.synth import S2_DESCRIPTIONS, utm_scene, write_scene
from zoomplan.errors import InputError
from zoomplan.geo.grid import PlanGrid, TileRange
from zoomplan.geo.scene import GridReader, _mask_rule, _nodata_valid, choose_sensor, open_scene, resolve_bands, to_unit
from zoomplan.models.card import SENTINEL2_BAND_ALIASES, SensorMapping

RGB = ("red", "green", "blue")
UNDEF = ("undefined",) * 4


def test_resolve_bands_from_descriptions_and_spec() -> None:
    a = SENTINEL2_BAND_ALIASES
    assert resolve_bands(list(S2_DESCRIPTIONS), UNDEF, RGB, a) == (1, 2, 3)
    assert resolve_bands(["B02", "B03", "B04", "B08"], UNDEF, RGB, a) == (3, 2, 1)
    assert resolve_bands(["Sentinel-2 B08", "Sentinel-2 B04", "band 3", "B2"], UNDEF, RGB, a) == (2, 3, 4)
    assert resolve_bands(["B02", "B03", "B04", "B08"], UNDEF, RGB, a, ["4", "2", "1"]) == (4, 2, 1)
    assert resolve_bands(["B02", "B03", "B04", "B08"], UNDEF, RGB, a, ["B04", "B03", "B02"]) == (3, 2, 1)
    assert resolve_bands(["B02", "B03", "B04", "B08"], UNDEF, RGB, a, ["red", "green", "blue"]) == (3, 2, 1)
    # colour interpretation of an RGB GeoTIFF
    assert resolve_bands([None, None, None], ("red", "green", "blue"), RGB, {}) == (1, 2, 3)


def test_resolve_bands_errors_and_unlabelled() -> None:
    a = SENTINEL2_BAND_ALIASES
    with pytest.raises(InputError, match=r"no band for blue .*pass --bands"):
        resolve_bands(["B04", "B03", "B08"], UNDEF[:3], RGB, a, scene="scene x.tif")
    with pytest.raises(InputError, match="has bands 1..4"):
        resolve_bands(list(S2_DESCRIPTIONS), UNDEF, RGB, a, ["5", "3", "2"])
    with pytest.raises(InputError, match="lists 2 band"):
        resolve_bands(list(S2_DESCRIPTIONS), UNDEF, RGB, a, ["4", "3"])
    with pytest.raises(InputError, match="no band described so"):
        resolve_bands(list(S2_DESCRIPTIONS), UNDEF, RGB, a, ["B11", "B03", "B02"])
    for n in (3, 4):  # band order is never guessed (issue 18): red-green-blue and blue-green-red look alike
        with pytest.raises(
            InputError,
            match=r"does not say which band is which .*pass --bands .*rio edit-info --colorinterp red,green,blue",
        ):
            resolve_bands([None] * n, ("gray",) + ("undefined",) * (n - 1), RGB, a)
    assert resolve_bands([None] * 4, ("red", "green", "blue", "undefined"), RGB, a) == (
        1,
        2,
        3,
    )  # colour interpretation says


def test_choose_sensor() -> None:
    card = tiny_card()
    assert choose_sensor(card, "uint16").name == "sentinel2_toa"
    assert choose_sensor(card, "uint8").name == "rgb8"
    assert choose_sensor(card, "float32", "sentinel2_toa").name == "sentinel2_toa"
    with pytest.raises(InputError, match="pass --sensor"):
        choose_sensor(card, "float32")
    with pytest.raises(InputError, match="unknown sensor mapping 'l2a'"):
        choose_sensor(card, "uint16", "l2a")


def test_to_unit() -> None:
    s = tiny_card().sensor("sentinel2_toa")  # scale 1e-4, gain 3
    out = to_unit(np.array([0, 1000, 3000, 5000], dtype=np.uint16), s)
    np.testing.assert_allclose(out, [0.0, 0.3, 0.9, 1.0], atol=1e-6)
    assert out.dtype == np.float32


def test_to_unit_per_band_offset_and_gain() -> None:
    """The shipped Sentinel-2 mapping's form: a dark-object offset and a gain per band (red, green, blue)."""
    s = SensorMapping("s2", scale=1e-4, offset=(-0.02, -0.04, -0.06), gain=(5.0, 6.0, 7.0))
    raw = np.array([[[1000]], [[2000]], [[3000]]], dtype=np.uint16)  # (C, 1, 1)
    out = to_unit(raw, s)
    # (0.1 - 0.02) * 5 = 0.4; (0.2 - 0.04) * 6 = 0.96; (0.3 - 0.06) * 7 = 1.68 -> clipped to 1
    np.testing.assert_allclose(out[:, 0, 0], [0.4, 0.96, 1.0], atol=1e-6)
    back = SensorMapping.from_dict(s.to_dict())
    assert back == s and back.to_dict()["gain"] == [5.0, 6.0, 7.0]


def test_open_scene_ok_and_errors(tmp_path: Path) -> None:
    card = tiny_card()
    sc = open_scene(utm_scene(tmp_path / "s2.tif"), card)
    assert sc.band_indexes == (1, 2, 3) and sc.sensor.name == "sentinel2_toa" and sc.crs.to_epsg() == 32618
    assert sc.scene_id == "s2" and sc.nodata == 0 and sc.res == (10.0, 10.0)
    with pytest.raises(InputError, match="not found"):
        open_scene(tmp_path / "missing.tif", card)
    junk = tmp_path / "junk.tif"
    junk.write_bytes(b"this is not a tiff" * 10)
    with pytest.raises(InputError, match="not a raster GDAL can read"):
        open_scene(junk, card)
    nocrs = write_scene(tmp_path / "nocrs.tif", None, from_origin(0, 0, 10, 10), 16, 16)
    with pytest.raises(InputError, match="has no CRS"):
        open_scene(nocrs, card)
    two = utm_scene(tmp_path / "two.tif", count=2, descriptions=("B04", "B08"))
    with pytest.raises(InputError, match="no band for green, blue"):
        open_scene(two, card)


def tile_scene(
    path: Path,
    epsg: int = 32618,
    x0: float = 440000.0,
    y0: float = 4170000.0,
    tiles: int = 4,
    nodata_tile: tuple[int, int] | None = None,
) -> Path:
    """Scene whose 8x8-pixel tiles (80 m at 10 m) hold constants 1000 + 100 * (row * tiles + col)."""
    n = tiles * 8
    arr = (1000 + 100 * np.arange(tiles * tiles).reshape(tiles, tiles)).repeat(8, 0).repeat(8, 1).astype("uint16")
    if nodata_tile is not None:
        i, j = nodata_tile
        arr[i * 8 : i * 8 + 8, j * 8 : j * 8 + 8] = 0
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=n,
        height=n,
        count=3,
        dtype="uint16",
        crs=f"EPSG:{epsg}",
        transform=from_origin(x0, y0, 10, 10),
        nodata=0,
    ) as d:
        for b in range(3):
            d.write(arr, b + 1)
            d.set_band_description(b + 1, S2_DESCRIPTIONS[b])
    return path


@pytest.mark.parametrize(("epsg", "y0"), [(32618, 4170000.0), (32733, 6200000.0)])
def test_direct_read_puts_pixels_in_their_tiles(
    tmp_path: Path, epsg: int, y0: float, caplog: pytest.LogCaptureFixture
) -> None:
    card = tiny_card()
    sc = open_scene(tile_scene(tmp_path / "t.tif", epsg=epsg, y0=y0, nodata_tile=(1, 2)), card)
    grid = PlanGrid.from_card(CRS.from_epsg(epsg), card)
    r0, c0 = int(-y0 // 80), int(440000 // 80)
    full = TileRange(r0 - 1, r0 + 5, c0 - 1, c0 + 5)  # one tile of padding all round
    with caplog.at_level(logging.WARNING), GridReader(sc, grid, full) as rd:
        data, valid = rd.read(full)
        assert not rd.resampled
    assert "resampling" not in caplog.text
    assert data.shape == (3, 48, 48) and valid.shape == (48, 48)
    tiles = data[0].reshape(6, 8, 6, 8).mean(axis=(1, 3))
    vt = valid.reshape(6, 8, 6, 8).mean(axis=(1, 3))
    expect = (1000 + 100 * np.arange(16).reshape(4, 4)) * 1e-4 * 3.0
    expect = np.clip(expect, 0, 1)
    inner = tiles[1:5, 1:5]
    m = np.ones((4, 4), bool)
    m[1, 2] = False
    np.testing.assert_allclose(inner[m], expect[m], atol=1e-6)
    assert vt[0].sum() == 0 and vt[:, 0].sum() == 0 and vt[5].sum() == 0  # padding outside the scene
    assert vt[2, 3] == 0 and vt[1:5, 1:5].sum() == 15  # the nodata tile


def test_warped_read_when_pixels_are_off_grid(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    card = tiny_card()
    sc = open_scene(tile_scene(tmp_path / "shift.tif", x0=440005.0), card)
    grid = PlanGrid.from_card(sc.crs, card)
    tr = TileRange(-52125, -52121, 5500, 5505)
    with caplog.at_level(logging.WARNING), GridReader(sc, grid, tr) as rd:
        data, valid = rd.read(TileRange(-52124, -52123, 5501, 5502))
        assert rd.resampled
    assert "resampling" in caplog.text and "EPSG:32618" in caplog.text
    assert valid.all()
    # tile (1, 1) of the grid holds half of scene tile (1, 0) and half of (1, 1): values in between
    v = data[0] / 3e-4
    assert 1400 - 1 <= v.min() and v.max() <= 1500 + 1


@pytest.mark.parametrize(("res", "method"), [(20.0, "bilinear"), (5.0, "average")])
def test_other_pixel_sizes_are_resampled_to_the_card(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, res: float, method: str
) -> None:
    card = tiny_card()
    n = int(320 / res)
    sc = open_scene(utm_scene(tmp_path / "r.tif", size=n, res=res), card)
    grid = PlanGrid.from_card(sc.crs, card)
    tr = grid.tile_range(sc.bounds)
    with caplog.at_level(logging.WARNING), GridReader(sc, grid, tr) as rd:
        data, valid = rd.read(tr)
    assert data.shape == (3, 32, 32) and valid.all()
    assert (
        f"resampling ({method})" in caplog.text and f"pixels are about {res:g} m, the model expects 10 m" in caplog.text
    )


def test_geographic_scene_is_warped_with_a_mask(tmp_path: Path) -> None:
    card = tiny_card()
    p = write_scene(tmp_path / "ll.tif", "EPSG:4326", from_origin(-75.62, 37.71, 0.0001, 0.0001), 60, 60, nodata=None)
    sc = open_scene(p, card)
    fp = sc.footprint(CRS.from_epsg(32618))
    grid = PlanGrid.from_card(CRS.from_epsg(32618), card)
    tr = grid.tile_range(fp.bounds)
    with GridReader(sc, grid, tr) as rd:
        data, valid = rd.read(tr)
        assert rd.resampled
    assert 0.5 < valid.mean() < 1.0  # the rotated-looking footprint does not fill its bounding tiles
    assert (data[:, valid] > 0).all()


def test_truncated_raster_fails_on_read(tmp_path: Path) -> None:
    card = tiny_card()
    p = write_scene(tmp_path / "full.tif", "EPSG:32618", from_origin(440000, 4170000, 10, 10), 256, 256, tiled=True)
    data = p.read_bytes()
    cut = tmp_path / "cut.tif"
    cut.write_bytes(data[: len(data) // 2])
    grid = PlanGrid.from_card(CRS.from_epsg(32618), card)
    tr = TileRange(-52125, -52093, 5500, 5532)
    with pytest.raises(InputError, match="truncated or corrupt|not a raster"):
        sc = open_scene(cut, card)
        with GridReader(sc, grid, tr) as rd:
            rd.read(tr)


# ---- The reader's nodata rule computed from the pixels equals GDAL's masks (what read_masks returns).


def _masked_scene(path: Path, dtype: str, nodata: float | None, *, internal_mask: bool = False) -> Path:
    rng = np.random.default_rng(3)
    arr = rng.integers(1, 200, (3, 40, 48)).astype(dtype)
    if nodata is not None:  # nodata in some bands only, and in every band elsewhere
        arr[0, :5, :] = nodata
        arr[1, 10:12, 20:30] = nodata
        arr[:, 30:, 40:] = nodata
    profile = dict(
        driver="GTiff",
        width=48,
        height=40,
        count=3,
        dtype=dtype,
        crs="EPSG:32618",
        transform=from_origin(440000, 4170000, 10, 10),
        tiled=True,
        blockxsize=16,
        blockysize=16,
        compress="zstd",
    )
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(arr)
        if internal_mask:
            m = np.full((40, 48), 255, np.uint8)
            m[:8, :8] = 0
            dst.write_mask(m)
    return path


@pytest.mark.parametrize(
    ("dtype", "nodata"),
    [
        ("uint16", 0),
        ("uint16", 65535),
        ("int16", -32768),
        ("uint8", 255),
        ("float32", math.nan),
        ("float32", -9999.5),
        ("float64", 0.1),
        ("uint16", None),
    ],
)
def test_nodata_rule_equals_read_masks(tmp_path: Path, dtype: str, nodata: float | None) -> None:
    p = _masked_scene(tmp_path / "s.tif", dtype, nodata)
    with rasterio.open(p) as ds:
        rule = _mask_rule(ds, [3, 1, 2])
        assert rule is not None  # nodata (or no nodata: all valid) masks take the fast path
        data = ds.read([3, 1, 2])
        want = np.all(ds.read_masks([3, 1, 2]) > 0, axis=0)
    got = _nodata_valid(data, rule)
    np.testing.assert_array_equal(got, want)
    if nodata is not None:
        assert 0 < got.sum() < got.size  # the rule masked something, and not everything


def test_internal_mask_band_is_read_not_guessed(tmp_path: Path) -> None:
    p = _masked_scene(tmp_path / "m.tif", "uint16", None, internal_mask=True)
    with rasterio.open(p) as ds:
        assert _mask_rule(ds, [1, 2, 3]) is None  # a per-dataset mask: GridReader keeps read_masks
