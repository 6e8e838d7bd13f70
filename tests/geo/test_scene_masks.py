"""The reader's nodata rule computed from the pixels equals GDAL's masks (what read_masks returns)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from zoomplan.geo.scene import _mask_rule, _nodata_valid


def _write(path: Path, dtype: str, nodata: float | None, *, internal_mask: bool = False) -> Path:
    rng = np.random.default_rng(3)
    arr = rng.integers(1, 200, (3, 40, 48)).astype(dtype)
    if nodata is not None:  # nodata in some bands only, and in every band elsewhere
        arr[0, :5, :] = nodata
        arr[1, 10:12, 20:30] = nodata
        arr[:, 30:, 40:] = nodata
    profile = dict(driver="GTiff", width=48, height=40, count=3, dtype=dtype, crs="EPSG:32618",
                   transform=from_origin(440000, 4170000, 10, 10), tiled=True, blockxsize=16, blockysize=16, compress="zstd")
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(arr)
        if internal_mask:
            m = np.full((40, 48), 255, np.uint8)
            m[:8, :8] = 0
            dst.write_mask(m)
    return path


@pytest.mark.parametrize(("dtype", "nodata"), [("uint16", 0), ("uint16", 65535), ("int16", -32768), ("uint8", 255),
                                               ("float32", math.nan), ("float32", -9999.5), ("float64", 0.1), ("uint16", None)])
def test_nodata_rule_equals_read_masks(tmp_path: Path, dtype: str, nodata: float | None) -> None:
    p = _write(tmp_path / "s.tif", dtype, nodata)
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
    p = _write(tmp_path / "m.tif", "uint16", None, internal_mask=True)
    with rasterio.open(p) as ds:
        assert _mask_rule(ds, [1, 2, 3]) is None  # a per-dataset mask: GridReader keeps read_masks
