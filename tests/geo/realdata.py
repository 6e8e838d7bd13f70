"""Real-format inputs made from the real Sentinel-2 scene in ../shared/data, written in tmp_path.

Import as ``from geo.realdata import ...``. Every helper skips the calling test, with the reason, when
the shared data are absent (a user's clone has no ``../shared``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import rasterio
import shapely
from rasterio.windows import Window

from conftest import shared_data
from geo.synth import write_aoi

REAL_SCENE = "sentinel2/s2_l1c_18SVG_20160112_rgbn_10m.tif"
"""Sentinel-2A L1C, 18SVG, 2016-01-12: bands red (B04), green (B03), blue (B02), nir (B08), x 10000, nodata 0."""
WINDOW = Window(491, 402, 96, 96)
"""The north-west 960 m of the bundled example's crop (pixel edges on the 80 m tile grid): town, fields, creek."""


def real_pixels(window: Window = WINDOW) -> tuple[np.ndarray, Any, Any]:
    """(data (4, H, W) uint16 reflectance x 10000, transform, crs) of ``window`` of the real scene."""
    with rasterio.open(shared_data(REAL_SCENE)) as src:
        return src.read(window=window), src.window_transform(window), src.crs


def write_raster(path: Path, data: np.ndarray, transform: Any, crs: Any, *, descriptions: Sequence[str | None] = (),
                 nodata: float | None = 0, **profile: Any) -> Path:
    """``data`` (bands, rows, cols) as a GeoTIFF (or ``profile['driver']``), written as is."""
    prof: dict[str, Any] = dict(driver="GTiff", count=data.shape[0], height=data.shape[1], width=data.shape[2], dtype=str(data.dtype),
                                crs=crs, transform=transform)
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
    return write_aoi(path, [shapely.box(x0 + margin, y0 - side + margin, x0 + side - margin, y0 - margin)], "EPSG:32618", ids=["a"])
