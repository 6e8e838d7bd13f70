"""The data passed from inference to selection, orders and export: one row per AOI patch.

Grid convention (stable across runs and machines): in a projected CRS with metre units, HR patch
(row, col) covers x in [col * patch_m, (col + 1) * patch_m] and y in [-(row + 1) * patch_m, -row * patch_m]
(rows grow southwards, the grid is anchored at the CRS origin). A tile is a block of
``patch_grid`` patches: tile (row // gr, col // gc), patch index (row % gr) * gc + (col % gc), the
row-by-row order of the paper. Ids are therefore a pure function of (CRS, patch size, row, col).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import numpy as np
from pyproj import CRS

PathLike = str | os.PathLike[str]
"""A file path as the library's functions take it (a string or a path object)."""

CLEAR, CLOUDY, FILLED = 0, 1, 2
"""A patch's cloud state (:attr:`PatchTable.cloud`): clear in the scene that supplied its tile (or no
mask said otherwise); cloudy in every scene with data there (:mod:`zoomplan.geo.products.clouds`); cloudy in the
tile's first scene but decided by a later one where it is clear (filled in)."""


@dataclass(frozen=True)
class PatchTable:
    """Every HR patch that touches the AOI, with the policy's probability and the tile's LR class.

    Arrays all have length N. ``crs`` is projected with metre units; ``patch_m`` is the patch edge in
    metres; ``patch_grid`` is the (rows, cols) of patches per tile (4, 4).
    """

    crs: CRS
    patch_m: float
    patch_grid: tuple[int, int]
    row: np.ndarray  # int64, global patch row (southwards)
    col: np.ndarray  # int64, global patch column (eastwards)
    prob: np.ndarray  # float32 in [0, 1], policy probability of acquiring the patch
    tile_class: np.ndarray  # int32, LR classifier's class index for the patch's tile
    tile_conf: np.ndarray  # float32 in [0, 1], its softmax confidence
    aoi_index: np.ndarray  # int32, index of the AOI feature the patch serves
    class_names: tuple[str, ...] = ()
    cloud: np.ndarray | None = None  # uint8 CLEAR / CLOUDY / FILLED; None when no scene had a cloud mask

    def __len__(self) -> int:
        return int(self.row.shape[0])

    @property
    def cloudy(self) -> np.ndarray:
        """bool (N,): under cloud or shadow in every scene with data there (all False without a mask)."""
        return np.zeros(len(self), bool) if self.cloud is None else self.cloud == CLOUDY

    @property
    def patch_index(self) -> np.ndarray:
        """Index of each patch inside its tile, 0..P-1 row by row."""
        gr, gc = self.patch_grid
        return (self.row % gr) * gc + (self.col % gc)

    @property
    def tile_row(self) -> np.ndarray:
        return self.row // self.patch_grid[0]

    @property
    def tile_col(self) -> np.ndarray:
        return self.col // self.patch_grid[1]

    def bounds(self, idx: np.ndarray | None = None) -> np.ndarray:
        """(N, 4) patch bounds (minx, miny, maxx, maxy) in ``crs`` metres; of the patches ``idx`` only
        (table indices) when given, the same values as ``bounds()[idx]``."""
        col, row = (self.col, self.row) if idx is None else (self.col[idx], self.row[idx])
        x0 = col * self.patch_m
        y1 = -row * self.patch_m
        return np.stack([x0, y1 - self.patch_m, x0 + self.patch_m, y1], axis=1).astype(np.float64)

    def patch_ids(self) -> list[str]:
        """Stable string ids ``<epsg or crs-hash>/<tile_row>_<tile_col>/<patch_index>``."""
        epsg = self.crs.to_epsg()
        tag = f"EPSG{epsg}" if epsg else "CRS" + hashlib.sha1(self.crs.to_wkt().encode()).hexdigest()[:8]
        return [
            f"{tag}/{tr}_{tc}/{p}"
            for tr, tc, p in zip(self.tile_row.tolist(), self.tile_col.tolist(), self.patch_index.tolist())
        ]
