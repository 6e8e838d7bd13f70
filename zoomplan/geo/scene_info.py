"""What :func:`zoomplan.geo.scene.open_scene` finds out about an LR scene: a :class:`Scene` record
(holding no open file), and the GDAL options every scene read uses (:data:`GDAL_ENV`).

The lowest layer of the scene modules: :mod:`zoomplan.geo.opener` opens and validates a scene,
:mod:`zoomplan.geo.scene` reads one on the planning grid (and is where both are imported from).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

import numpy as np
import shapely
from pyproj import CRS, Transformer

from zoomplan.models.card import SensorMapping

if TYPE_CHECKING:
    from zoomplan.geo.products.clouds import CloudMask

GDAL_ENV: Mapping[str, object] = {
    "GDAL_CACHEMAX": 256,  # MB: bounds GDAL's block cache
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",  # no directory listing for COGs on remote storage
}
"""GDAL options used for every scene read (``rasterio.Env(**GDAL_ENV)``)."""


@dataclass(frozen=True)
class Scene:
    """A validated LR scene: where it is, its georeferencing, which bands feed the model and how.

    ``bounds`` are (minx, miny, maxx, maxy) in ``crs`` units; ``res`` is the pixel size (x, y) in the
    same units; ``band_indexes`` are 1-based, in the order of ``sensor.bands``.
    """

    path: Path
    scene_id: str
    crs: CRS
    bounds: tuple[float, float, float, float]
    res: tuple[float, float]
    width: int
    height: int
    dtype: str
    nodata: float | None
    band_indexes: tuple[int, ...]
    band_labels: tuple[str, ...]
    sensor: SensorMapping
    source: str = ""
    """What GDAL opens when it is not ``path``: a VRT (XML) stacking one-band files
    (:mod:`zoomplan.geo.products.bands`)."""
    cloud_mask: "CloudMask | None" = None
    """The scene's cloud mask (:mod:`zoomplan.geo.products.clouds`): the product's, or the user's ``--cloud-mask``."""

    def footprint(self, crs: CRS) -> shapely.Polygon:
        """The scene's bounding box as a polygon in ``crs`` (edges densified before projecting)."""
        box = shapely.box(*self.bounds)
        if CRS.from_user_input(crs) == self.crs:
            return box
        t = Transformer.from_crs(self.crs, crs, always_xy=True)
        step = max((self.bounds[2] - self.bounds[0]), (self.bounds[3] - self.bounds[1])) / 64

        def fwd(xy: np.ndarray) -> np.ndarray:
            x, y = t.transform(xy[:, 0], xy[:, 1])
            return np.column_stack([x, y])

        return shapely.transform(shapely.segmentize(box, step), fwd)


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none), for one-line errors."""
    s = str(exc).strip()
    return s.splitlines()[0] if s else type(exc).__name__
