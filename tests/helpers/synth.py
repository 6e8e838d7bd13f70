"""Small seeded scenes and AOIs with real CRSs, written in tmp_path, for the geo/plan/cli tests.

Import as ``from tests.helpers.synth import ...``.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Sequence

import geopandas as gpd
import numpy as np
import rasterio
from rasterio.transform import Affine, from_origin

S2_DESCRIPTIONS = ("red (B04)", "green (B03)", "blue (B02)", "nir (B08)")


def write_scene(
    path: Path,
    crs: str,
    transform: Affine,
    width: int,
    height: int,
    *,
    count: int = 4,
    dtype: str = "uint16",
    descriptions: Sequence[str | None] | None = S2_DESCRIPTIONS,
    nodata: float | None = 0,
    nodata_block: tuple[slice, slice] | None = None,
    seed: int = 0,
    tiled: bool = False,
) -> Path:
    """A smooth random scene (Sentinel-2-like digital numbers 300..3000, or 0..255 for uint8)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = 0.5 + 0.25 * np.sin(xx / 7.0) * np.cos(yy / 11.0)
    data = np.stack([base + 0.1 * rng.standard_normal((height, width)) for _ in range(count)])
    data = np.clip(data, 0.02, 1.0)
    if dtype == "uint8":
        arr = (data * 250 + 1).astype("uint8")
    else:
        arr = (data * 3000).astype(dtype)
    if nodata_block is not None:
        arr[(slice(None),) + tuple(nodata_block)] = nodata if nodata is not None else 0
    profile = dict(
        driver="GTiff",
        width=width,
        height=height,
        count=count,
        dtype=dtype,
        crs=crs,
        transform=transform,
        compress="deflate",
    )
    if nodata is not None:
        profile["nodata"] = nodata
    if tiled:
        profile.update(tiled=True, blockxsize=32, blockysize=32)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(arr)
        if descriptions:
            for i, d in enumerate(descriptions[:count]):
                if d:
                    dst.set_band_description(i + 1, d)
    return path


def utm_scene(
    path: Path, epsg: int = 32618, x0: float = 440000.0, y0: float = 4170000.0, size: int = 64, res: float = 10.0, **kw
) -> Path:
    """A ``size`` x ``size`` px scene at ``res`` m whose top-left corner is (x0, y0) in EPSG:``epsg``."""
    return write_scene(path, f"EPSG:{epsg}", from_origin(x0, y0, res, res), size, size, **kw)


def write_aoi(
    path: Path,
    geoms: Sequence,
    crs: str | None,
    ids: Sequence[str] | None = None,
    names: Sequence[str] | None = None,
    driver: str | None = None,
) -> Path:
    """Write polygons (shapely) to a vector file; ``crs=None`` writes none."""
    data: dict = {}
    if ids is not None:
        data["id"] = list(ids)
    if names is not None:
        data["name"] = list(names)
    gdf = gpd.GeoDataFrame(data, geometry=list(geoms), crs=crs)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*crs.*not provided", category=UserWarning)
        gdf.to_file(path, driver=driver)
    return path
