"""Cloud mask rules and reading (issue 18 item 5, zoomplan.geo.products.clouds), on small generated rasters: SCL
classes, QA_PIXEL bits, MSK_CLASSI bands and user masks; a patch's share of cloud; a mask on another grid
and CRS read onto the LR grid through a WarpedVRT, nodata and the outside never cloud."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from pyproj import CRS
from rasterio.enums import Resampling
from rasterio.warp import reproject, transform_bounds

from zoomplan.errors import InputError
from zoomplan.geo.grid import PlanGrid, TileRange
from zoomplan.geo.products.clouds import (
    CLOUDY_SHARE,
    CloudMask,
    CloudReader,
    cloud_pixels,
    find_cloud_mask,
    kind_of,
    open_cloud_mask,
    patch_cloud_share,
    split_mask_files,
)
from zoomplan.geo.products.files import BandSet

UTM = CRS.from_epsg(32618)
X0, Y0 = 440000.0, 4170000.0  # on the 80 m tile grid


def _write(
    path: Path, data: np.ndarray, transform: Affine | None, crs: object, nodata: float | None = None, **kw: object
) -> Path:
    prof = dict(
        driver="GTiff",
        count=data.shape[0],
        height=data.shape[1],
        width=data.shape[2],
        dtype=str(data.dtype),
        crs=crs,
        transform=transform,
        **kw,
    )
    if nodata is not None:
        prof["nodata"] = nodata
    with rasterio.open(path, "w", **prof) as dst:
        dst.write(data)
    return path


def test_scl_classes_qa_bits_classi_and_nonzero() -> None:
    scl = np.arange(12, dtype=np.uint8)[None, None, :]
    assert np.nonzero(cloud_pixels(scl, "scl")[0])[0].tolist() == [3, 8, 9, 10]  # not 2 (dark area), 7, 11 (snow)
    qa = np.array(
        [[[21824, 1 << 1, 1 << 2, 1 << 3, 1 << 4, 1 << 5, 1 << 7, 3 << 8, 1 | (1 << 3), 55052 & ~0b11110, 22280]]],
        dtype=np.uint16,
    )
    # clear land, dilated cloud, cirrus, cloud, shadow, snow, water, cloud confidence only, fill, a value without bits
    # 1-4, cloud + conf
    got = cloud_pixels(qa, "qa_pixel")[0].tolist()
    assert got == [False, True, True, True, True, False, False, False, False, False, bool(22280 & 0b11110)]
    classi = np.zeros((3, 1, 4), np.uint8)
    classi[0, 0, 0] = classi[1, 0, 1] = classi[2, 0, 2] = 1  # opaque, cirrus, snow
    assert cloud_pixels(classi, "classi")[0].tolist() == [True, True, False, False]
    user = np.array([[[0, 1, 255, np.nan]]], dtype=np.float32)
    assert cloud_pixels(user, "nonzero", valid=np.array([[True, True, False, True]]))[0].tolist() == [
        False,
        True,
        False,
        False,
    ]
    with pytest.raises(ValueError, match="unknown cloud mask kind"):
        cloud_pixels(user, "fog")


def test_names_choose_the_rule() -> None:
    assert kind_of(Path("T18SVG_20230112T160652_SCL_20m.jp2")) == "scl"
    assert kind_of(Path("SCL.tif")) == "scl"
    assert kind_of(Path("LC08_L1TP_014033_20160112_20200907_02_T1_QA_PIXEL.TIF")) == "qa_pixel"
    assert kind_of(Path("MSK_CLASSI_B00.jp2")) == "classi"
    assert kind_of(Path("clouds.tif")) == kind_of(Path("SCLERA.tif")) == "nonzero"


def test_patch_share_in_patch_order() -> None:
    """2 tiles of 8 x 8 LR pixels, 4 x 4 patches of 2 x 2 pixels: shares per patch, row by row in the tile."""
    cloud = np.zeros((8, 16), bool)
    cloud[0:2, 0:2] = True  # tile 0, patch 0: 4 of 4
    cloud[0, 2] = True  # tile 0, patch 1: 1 of 4
    cloud[6, 14:16] = True  # tile 1, patch 15: 2 of 4
    share = patch_cloud_share(cloud, 8, (4, 4))
    assert share.shape == (1, 2, 16)
    assert share[0, 0, 0] == 1.0 and share[0, 0, 1] == 0.25 and share[0, 1, 15] == 0.5
    cloudy = share > CLOUDY_SHARE
    assert cloudy.sum() == 2 and not cloudy[0, 0, 1]  # one pixel of four is not cloudy; two are


def _grid_and_extent() -> tuple[PlanGrid, TileRange]:
    grid = PlanGrid(UTM, 80.0)
    return grid, grid.tile_range((X0, Y0 - 480.0, X0 + 480.0, Y0))


def test_a_mask_on_another_grid_and_crs_is_read_onto_the_lr_grid(tmp_path: Path) -> None:
    """A 30 m mask (cloud block, nodata strip) in UTM, and the same warped to EPSG:4326: read on the 10 m LR grid
    by nearest neighbour; nodata and the outside are not cloud; the whole mask is never read at once."""
    grid, ext = _grid_and_extent()
    m = np.zeros((1, 16, 16), np.uint8)
    m[0, 4:8, 4:8] = 1  # x, y in [120, 240) m from the corner: LR pixels 12..23 (centres 125..235 m)
    m[0, 0:2, :] = 255  # nodata: never cloud
    t30 = Affine(30.0, 0, X0, 0, -30.0, Y0)
    utm = _write(tmp_path / "m30.tif", m, t30, UTM, nodata=255)
    with CloudReader(open_cloud_mask(utm), grid, ext) as r:
        got = r.read(ext)
    want = np.zeros((48, 48), bool)
    want[12:24, 12:24] = True
    np.testing.assert_array_equal(got, want)
    with CloudReader(open_cloud_mask(utm), grid, ext) as r:  # a sub-range, as the planner reads block by block
        np.testing.assert_array_equal(
            r.read(TileRange(ext.r0 + 1, ext.r0 + 3, ext.c0 + 1, ext.c0 + 2)), want[8:24, 8:16]
        )
    # the same mask in lon/lat at about 3 m: the same pixels but at the block's edges
    ll = CRS.from_epsg(4326)
    west, south, east, north = transform_bounds(UTM, ll, X0, Y0 - 480.0, X0 + 480.0, Y0)
    tll = Affine(0.00003, 0, west - 0.0003, 0, -0.00003, north + 0.0003)
    dst = np.full(
        (1, math.ceil((north - south + 0.0006) / 0.00003), math.ceil((east - west + 0.0006) / 0.00003)), 255, np.uint8
    )
    reproject(
        m,
        dst,
        src_transform=t30,
        src_crs=UTM,
        dst_transform=tll,
        dst_crs=ll,
        src_nodata=255,
        dst_nodata=255,
        resampling=Resampling.nearest,
    )
    geo = _write(tmp_path / "m_ll.tif", dst, tll, ll, nodata=255)
    with CloudReader(open_cloud_mask(geo), grid, ext) as r:
        got = r.read(ext)
    assert abs(int(got.sum()) - 144) <= 24 and got[14:22, 14:22].all() and not got[:10].any()


def test_masks_found_with_the_product(tmp_path: Path) -> None:
    """SCL in a SAFE's R20m (finest of 20 m and 60 m) for band files in R10m; QA_PIXEL beside Landsat band
    files; MSK_CLASSI in an L1C's QI_DATA; a stack's band described SCL; mask files listed among band files."""
    one = np.ones((1, 8, 8), np.uint16)
    safe = tmp_path / "S2A_MSIL2A_X.SAFE"
    g = safe / "GRANULE" / "L2A_T18SVG" / "IMG_DATA"
    for sub, name, res in (
        ("R10m", "T18SVG_B04_10m.tif", 10),
        ("R20m", "T18SVG_SCL_20m.tif", 20),
        ("R60m", "T18SVG_SCL_60m.tif", 60),
    ):
        (g / sub).mkdir(parents=True)
        _write(g / sub / name, one, Affine(res, 0, X0, 0, -res, Y0), UTM)
    (safe / "MTD_MSIL2A.xml").write_text("<x/>")
    band = BandSet((g / "R10m" / "T18SVG_B04_10m.tif",))
    assert find_cloud_mask(band) == CloudMask(g / "R20m" / "T18SVG_SCL_20m.tif", "scl")
    assert find_cloud_mask(BandSet(band.files, root=safe)).path.name == "T18SVG_SCL_20m.tif"
    l1c = tmp_path / "L1C"
    (l1c / "QI_DATA").mkdir(parents=True)
    _write(l1c / "T18SVG_B04.tif", one, Affine(10, 0, X0, 0, -10, Y0), UTM)
    _write(l1c / "QI_DATA" / "MSK_CLASSI_B00.tif", np.ones((3, 2, 2), np.uint8), Affine(60, 0, X0, 0, -60, Y0), UTM)
    assert find_cloud_mask(BandSet((l1c / "T18SVG_B04.tif",), root=l1c)) == CloudMask(
        l1c / "QI_DATA" / "MSK_CLASSI_B00.tif", "classi", (1, 2)
    )
    ls = tmp_path / "LC08_L1TP_014033_20160112_20200907_02_T1"
    ls.mkdir()
    b4 = _write(ls / f"{ls.name}_B4.TIF", one, Affine(30, 0, X0, 0, -30, Y0), UTM)
    assert find_cloud_mask(BandSet((b4,))) is None
    _write(ls / f"{ls.name}_QA_PIXEL.TIF", one, Affine(30, 0, X0, 0, -30, Y0), UTM)
    assert find_cloud_mask(BandSet((b4,))).kind == "qa_pixel"
    stack = _write(tmp_path / "stack.tif", np.ones((5, 8, 8), np.uint16), Affine(10, 0, X0, 0, -10, Y0), UTM)
    with rasterio.open(stack, "r+") as ds:
        ds.set_band_description(5, "SCL")
    assert find_cloud_mask(stack) == CloudMask(stack, "scl", (5,))
    rest, listed = split_mask_files(BandSet((b4, ls / f"{ls.name}_QA_PIXEL.TIF")))
    assert rest == BandSet((b4,)) and listed.kind == "qa_pixel"
    with pytest.raises(InputError, match="cloud mask file.* without band files"):
        split_mask_files(BandSet((ls / f"{ls.name}_QA_PIXEL.TIF",)))


def test_user_masks_are_checked(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        open_cloud_mask(tmp_path / "nope.tif")
    (tmp_path / "text.tif").write_text("not a raster")
    with pytest.raises(InputError, match="not a raster GDAL can read"):
        open_cloud_mask(tmp_path / "text.tif")
    bare = _write(tmp_path / "bare.tif", np.ones((1, 8, 8), np.uint8), None, None)
    with pytest.raises(InputError, match=r"has no CRS.*rio edit-info --like scene.tif --crs like --transform like"):
        open_cloud_mask(bare, like="scene.tif")
    rot = _write(tmp_path / "rot.tif", np.ones((1, 8, 8), np.uint8), Affine(10, 2, X0, 2, -10, Y0), UTM)
    with pytest.raises(InputError, match="rotated geotransform"):
        open_cloud_mask(rot)
