"""Pure tile and patch grids: which planning CRS, which tiles and patches cover an AOI, stable indices.

Convention (the one :class:`zoomplan.plan.types.PatchTable` documents): in a projected CRS with metre
units the grid is anchored at the CRS origin. Tile ``(r, c)`` covers x in ``[c * tile_m, (c + 1) * tile_m]``
and y in ``[-(r + 1) * tile_m, -r * tile_m]`` (rows grow southwards). A tile is cut into
``patch_grid`` (rows, cols) HR patches of ``patch_m = tile_m / rows`` metres; global patch
``(R, C) = (r * rows + i, c * cols + j)``. The LR chip of a tile is ``lr_size_px`` pixels of
``tile_m / lr_size_px`` metres, so LR pixel edges fall on tile edges. Every index is a pure function of
(CRS, sizes, coordinates): the same AOI gives the same ids on every run and machine.

Nothing here reads files or touches a GPU; shapely and pyproj are used for geometry and projections.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator, Sequence

import numpy as np
import shapely
from affine import Affine
from pyproj import CRS, Proj
from pyproj.exceptions import ProjError

from zoomplan.errors import CheckpointError

if TYPE_CHECKING:
    from zoomplan.models.card import ModelCard

MAX_SCALE_ERROR = 0.01
"""A projected CRS whose ground scale differs from 1 by more than this at the AOI is not used for
planning (e.g. Web Mercator: 1.25 at 37 degrees latitude); the AOI's UTM zone is used instead."""


def utm_epsg(lon: float, lat: float) -> int:
    """EPSG code of the WGS 84 / UTM zone holding ``(lon, lat)`` in degrees (326xx north, 327xx south).

    Standard 6-degree zones (the Norway/Svalbard exceptions are not applied), so the choice is a pure
    function of the coordinates.
    """
    zone = int(math.floor((lon + 180.0) / 6.0)) % 60 + 1
    return (32600 if lat >= 0 else 32700) + zone


def _metre_units(crs: CRS) -> bool:
    units = {(a.unit_name or "").lower() for a in crs.axis_info[:2]}
    return bool(units) and units <= {"metre", "meter", "m"}


def ground_scale(crs: CRS, lon: float, lat: float) -> float:
    """Largest relative scale error of projected ``crs`` at ``(lon, lat)`` (0 = true ground metres)."""
    f = Proj(crs).get_factors(lon, lat)
    return max(abs(f.meridional_scale - 1.0), abs(f.parallel_scale - 1.0))


def planning_crs(scene_crs: CRS, lon: float, lat: float) -> tuple[CRS, str]:
    """The projected metre CRS to plan in, and why it was chosen.

    The scene's own CRS when it is projected, in metres and true to scale (error below
    :data:`MAX_SCALE_ERROR`) at the AOI centroid ``(lon, lat)`` in degrees; otherwise the UTM zone of that
    centroid (geographic scenes, feet, Web Mercator ...).
    """
    if scene_crs.is_projected and _metre_units(scene_crs):
        try:
            err = ground_scale(scene_crs, lon, lat)
        except ProjError:
            err = math.nan
        if math.isfinite(err) and err <= MAX_SCALE_ERROR:
            return scene_crs, "scene CRS"
        what = f"scene CRS scale error {err:.1%}" if math.isfinite(err) else "scene CRS scale unknown at the AOI"
        return CRS.from_epsg(utm_epsg(lon, lat)), f"UTM zone of the AOI ({what})"
    why = "geographic scene" if scene_crs.is_geographic else "scene CRS not in ground metres"
    return CRS.from_epsg(utm_epsg(lon, lat)), f"UTM zone of the AOI ({why})"


@dataclass(frozen=True)
class TileRange:
    """Half-open tile index ranges: rows ``[r0, r1)`` (southwards) and columns ``[c0, c1)`` (eastwards)."""

    r0: int
    r1: int
    c0: int
    c1: int

    @property
    def shape(self) -> tuple[int, int]:
        return (max(self.r1 - self.r0, 0), max(self.c1 - self.c0, 0))

    @property
    def empty(self) -> bool:
        return self.r1 <= self.r0 or self.c1 <= self.c0

    def __len__(self) -> int:
        h, w = self.shape
        return h * w

    def intersection(self, other: "TileRange") -> "TileRange":
        return TileRange(max(self.r0, other.r0), min(self.r1, other.r1), max(self.c0, other.c0), min(self.c1, other.c1))

    def indices(self) -> tuple[np.ndarray, np.ndarray]:
        """(rows, cols) int64 arrays of every tile, row by row."""
        rr, cc = np.meshgrid(
            np.arange(self.r0, self.r1, dtype=np.int64), np.arange(self.c0, self.c1, dtype=np.int64), indexing="ij"
        )
        return rr.ravel(), cc.ravel()


@dataclass(frozen=True)
class PlanGrid:
    """A tile/patch/LR-pixel grid in a projected metre CRS, anchored at the CRS origin.

    ``tile_m``: tile edge in metres; ``patch_grid``: (rows, cols) of HR patches per tile (square
    patches, so rows == cols); ``lr_size_px``: LR pixels per tile edge.
    """

    crs: CRS
    tile_m: float
    patch_grid: tuple[int, int] = (4, 4)
    lr_size_px: int = 8

    def __post_init__(self) -> None:
        if self.tile_m <= 0 or self.lr_size_px <= 0:
            raise ValueError("tile_m and lr_size_px must be positive")
        if self.patch_grid[0] != self.patch_grid[1] or self.patch_grid[0] <= 0:
            raise ValueError(f"patch_grid must be square and positive, got {self.patch_grid}")

    @classmethod
    def from_card(cls, crs: CRS, card: "ModelCard") -> "PlanGrid":
        """The grid a model card describes, in ``crs`` (raises CheckpointError for unusable cards)."""
        if card.patch_grid[0] != card.patch_grid[1]:
            raise CheckpointError(
                f"model card patch grid {tuple(card.patch_grid)} is not square: the planner needs square HR patches; "
                f"use a model with a square patch grid"
            )
        lr_m = card.tile_ground_m / card.lr_size_px
        if not math.isclose(lr_m, card.lr_pixel_m, rel_tol=1e-3):
            raise CheckpointError(
                f"model card is inconsistent: {card.lr_size_px} LR px x {card.lr_pixel_m} m != tile "
                f"{card.tile_ground_m} m: re-export the checkpoint with a matching card"
            )
        return cls(
            crs=crs,
            tile_m=float(card.tile_ground_m),
            patch_grid=(int(card.patch_grid[0]), int(card.patch_grid[1])),
            lr_size_px=int(card.lr_size_px),
        )

    @property
    def patch_m(self) -> float:
        """HR patch edge in metres."""
        return self.tile_m / self.patch_grid[0]

    @property
    def lr_pixel_m(self) -> float:
        """LR pixel edge in metres."""
        return self.tile_m / self.lr_size_px

    @property
    def patches_per_tile(self) -> int:
        return self.patch_grid[0] * self.patch_grid[1]

    def tile_range(self, bounds: Sequence[float]) -> TileRange:
        """Tiles whose squares intersect ``bounds`` = (minx, miny, maxx, maxy) in metres."""
        minx, miny, maxx, maxy = (float(v) for v in bounds)
        t = self.tile_m
        return TileRange(math.floor(-maxy / t), math.ceil(-miny / t), math.floor(minx / t), math.ceil(maxx / t))

    def range_bounds(self, tr: TileRange) -> tuple[float, float, float, float]:
        """(minx, miny, maxx, maxy) in metres of a tile range."""
        t = self.tile_m
        return (tr.c0 * t, -tr.r1 * t, tr.c1 * t, -tr.r0 * t)

    def lr_transform(self, tr: TileRange) -> Affine:
        """Affine transform of the LR pixel raster whose top-left pixel is the top-left of tile (r0, c0)."""
        px = self.lr_pixel_m
        return Affine(px, 0.0, tr.c0 * self.tile_m, 0.0, -px, -tr.r0 * self.tile_m)

    def blocks(self, tr: TileRange, block_tiles: int) -> Iterator[TileRange]:
        """Split ``tr`` into blocks of at most ``block_tiles`` x ``block_tiles`` tiles, row-major."""
        if block_tiles <= 0:
            raise ValueError("block_tiles must be positive")
        for r in range(tr.r0, tr.r1, block_tiles):
            for c in range(tr.c0, tr.c1, block_tiles):
                yield TileRange(r, min(r + block_tiles, tr.r1), c, min(c + block_tiles, tr.c1))

    def tile_boxes(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Shapely boxes of tiles (rows, cols) in metres."""
        return _boxes(np.asarray(rows), np.asarray(cols), self.tile_m)

    def patches_of_tiles(self, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Global patch (rows, cols) of each tile, tile by tile, patches row by row (P per tile)."""
        g = self.patch_grid[0]
        i, j = np.divmod(np.arange(self.patches_per_tile, dtype=np.int64), g)
        prow = (np.asarray(rows, dtype=np.int64)[:, None] * g + i[None, :]).ravel()
        pcol = (np.asarray(cols, dtype=np.int64)[:, None] * g + j[None, :]).ravel()
        return prow, pcol

    def patch_boxes(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Shapely boxes of global patches (rows, cols) in metres."""
        return _boxes(np.asarray(rows), np.asarray(cols), self.patch_m)


def _boxes(rows: np.ndarray, cols: np.ndarray, size: float) -> np.ndarray:
    x0 = cols.astype(np.float64) * size
    y1 = -rows.astype(np.float64) * size
    return shapely.box(x0, y1 - size, x0 + size, y1)


def intersecting(tree: shapely.STRtree, feats: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(box indices, feature indices) of every intersecting pair; ``tree`` is ``shapely.STRtree(feats)``.

    The tree's envelope query, then ``intersects`` on the prepared features (prepared here): on the
    benchmark's tiles this is far cheaper than the tree's own predicate query, with the same pairs.
    """
    bi, fi = tree.query(boxes)
    shapely.prepare(feats)
    hit = shapely.intersects(feats[fi], boxes[bi])
    return bi[hit], fi[hit]


def assign_features(
    boxes: np.ndarray,
    features: Sequence[shapely.Geometry],
    tree: shapely.STRtree | None = None,
    *,
    min_fraction: float = 1e-6,
) -> np.ndarray:
    """For each box, the index of the feature it overlaps most (ties: the lowest index), else -1.

    A box serves a feature when their intersection has positive area (more than ``min_fraction`` of
    the box): boxes that only touch a feature's edge or corner serve none. ``features`` are polygonal
    geometries in the boxes' CRS; pass a prebuilt ``shapely.STRtree(features)`` to reuse it.
    """
    n = len(boxes)
    out = np.full(n, -1, dtype=np.int32)
    if n == 0 or len(features) == 0:
        return out
    feats = np.asarray(features, dtype=object)
    tree = tree if tree is not None else shapely.STRtree(feats)
    bi, fi = intersecting(tree, feats, boxes)
    if bi.size == 0:
        return out
    box_area = shapely.area(boxes[bi])
    inside = shapely.contains_properly(feats[fi], boxes[bi])
    area = box_area.copy()
    part = ~inside
    if part.any():
        area[part] = shapely.area(shapely.intersection(boxes[bi[part]], feats[fi[part]]))
    keep = area > min_fraction * box_area
    bi, fi, area = bi[keep], fi[keep], area[keep]
    # Best feature per box: sort by box, then area descending, then feature index ascending.
    order = np.lexsort((fi, -area, bi))
    bi, fi = bi[order], fi[order]
    first = np.ones(bi.size, dtype=bool)
    first[1:] = bi[1:] != bi[:-1]
    out[bi[first]] = fi[first].astype(np.int32)
    return out
