"""Generated inputs for the audit tests: a small UTM 18N scene, two labelled halves as vector labels in
EPSG:4326 and as an equivalent label raster, and the audit's figures computed independently from a patch
table. Import as ``from plan.audit_synth import ...``."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
import shapely
from pyproj import Transformer
from rasterio.features import rasterize
from rasterio.transform import from_origin

from tests.helpers.synth import utm_scene

EPSG = 32618
# The scene: 48 x 48 px at 10 m, x 440000-440480, y 4169520-4170000 (36 tiles of 80 m, 576 patches of 20 m).
# Two labelled halves split at y = 4169760 (a patch edge: every patch centre is 10 m from it); the outer
# edges are 5 m off the patch grid, so the edge patches are planned but their centres lie outside.
NORTH = shapely.box(440035.0, 4169760.0, 440445.0, 4169975.0)
SOUTH = shapely.box(440035.0, 4169545.0, 440445.0, 4169760.0)
CLASSES = {"town": NORTH, "water": SOUTH}
VALUES = {1: "town", 2: "water"}


def to_lonlat(g: shapely.Geometry) -> shapely.Geometry:
    """A UTM 18N geometry as EPSG:4326, edges densified to 10 m first."""
    t = Transformer.from_crs(EPSG, 4326, always_xy=True)
    return shapely.transform(shapely.segmentize(g, 10.0), lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1])))


def scene(tmp: Path) -> Path:
    return utm_scene(tmp / "scene.tif", epsg=EPSG, size=48)


def vector_labels(path: Path, extra: list[tuple[shapely.Geometry, str | None]] = ()) -> Path:
    """The two halves (then ``extra``) with a ``landuse`` field, written in EPSG:4326."""
    geoms = [to_lonlat(g) for g in CLASSES.values()] + [to_lonlat(g) for g, _ in extra]
    names = list(CLASSES) + [c for _, c in extra]
    ids = [f"p{i}" for i in range(len(geoms))]
    gdf = gpd.GeoDataFrame({"id": ids, "landuse": names}, geometry=geoms, crs="EPSG:4326")
    gdf.to_file(path)
    return path


def raster_labels(path: Path, crs: str, dtype: str = "uint8") -> Path:
    """The halves burnt into a single-band raster (1 town, 2 water, 0 nodata elsewhere) larger than them: in
    UTM 18N at 5 m (pixel edges on every label edge), or in EPSG:4326 at 1e-5 degrees (about 1 m)."""
    if crs == "EPSG:4326":
        x0, y0, x1, y1 = to_lonlat(shapely.box(439990, 4169500, 440500, 4170010)).bounds
        res = 1e-5
        shapes = [(to_lonlat(g), v) for v, g in zip(VALUES, CLASSES.values())]
    else:
        x0, y0, x1, y1, res = 439990.0, 4169500.0, 440500.0, 4170010.0, 5.0
        shapes = [(g, v) for v, g in zip(VALUES, CLASSES.values())]
    w, h = int(np.ceil((x1 - x0) / res)), int(np.ceil((y1 - y0) / res))
    transform = from_origin(x0, y1, res, res)
    data = rasterize(shapes, out_shape=(h, w), transform=transform, fill=0, dtype=dtype)
    with rasterio.open(
        path, "w", driver="GTiff", width=w, height=h, count=1, dtype=dtype, crs=crs, transform=transform, nodata=0
    ) as dst:
        dst.write(data, 1)
    return path


def expected(table, selected: np.ndarray) -> dict[str, dict]:
    """Per class, from a plan's patch table and selection: each patch to the half holding its centre
    (every centre is at least 5 m from any label edge), then counts, mean probability, top LR class."""
    b = table.bounds()
    cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    pts = shapely.points(cx, cy)
    for g in CLASSES.values():
        assert shapely.distance(g.boundary, pts).min() >= 5.0 - 1e-6
    out = {}
    for name, g in CLASSES.items():
        m = shapely.contains_xy(g, cx, cy)
        counts = Counter(table.tile_class[m].tolist())
        top = min(counts, key=lambda k: (-counts[k], k))
        out[name] = {
            "patches": int(m.sum()),
            "selected": int((selected & m).sum()),
            "mean": float(table.prob[m].astype(np.float64).mean()),
            "top": table.class_names[top],
            "mask": m,
        }
    return out
