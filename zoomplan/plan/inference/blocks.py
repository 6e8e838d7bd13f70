"""The AOI's tiles block by block, read and cut into chips for the networks (no networks here).

A block is many tiles, one window read per scene; the tiles that overlap the AOI are cut from it with
array reshapes and normalised to the network's input. Scenes are used in the order given: a tile is
taken from the first scene where it is at least ``min_valid`` valid; tiles mostly nodata in every scene
are skipped and counted.

Clouds (:mod:`zoomplan.geo.products.clouds`): where a scene has a cloud mask, each patch of a tile it supplies is
cloudy when more than :data:`~zoomplan.geo.products.clouds.CLOUDY_SHARE` of its LR pixels are cloud or shadow.
A cloudy patch is decided by the next scene, in the same order, that has valid data for its tile and
where the patch is clear (a scene without a mask counts as clear): that scene's tile goes through the
networks too, and only those patches take its probabilities. A patch cloudy in every scene with data
keeps the first scene's and is flagged (:data:`~zoomplan.plan.types.CLOUDY`); one filled in from a later
scene is flagged :data:`~zoomplan.plan.types.FILLED`.

:func:`zoomplan.plan.inference.infer.infer_patches` runs the networks over what :func:`block_works` yields.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from zoomplan.errors import GeometryError
from zoomplan.geo.grid import PlanGrid, TileRange, assign_features, intersecting
from zoomplan.geo.products.clouds import CLOUDY_SHARE, CloudReader, patch_cloud_share
from zoomplan.geo.scene import GridReader, Scene
from zoomplan.plan.inference.journal import BlockResult
from zoomplan.plan.types import CLEAR, CLOUDY, FILLED

MIN_VALID = 0.5
"""A tile is planned only when at least this fraction of its LR pixels is valid data."""


def cut_tiles(block: np.ndarray, lr_size: int) -> np.ndarray:
    """(C, h*L, w*L) -> (h, w, C, L, L) tiles of a block, by reshape (a view where possible)."""
    c, H, W = block.shape
    h, w = H // lr_size, W // lr_size
    return block.reshape(c, h, lr_size, w, lr_size).transpose(1, 3, 0, 2, 4)


def valid_fraction(valid: np.ndarray, lr_size: int) -> np.ndarray:
    """(h*L, w*L) bool -> (h, w) fraction of valid pixels per tile."""
    H, W = valid.shape
    return valid.reshape(H // lr_size, lr_size, W // lr_size, lr_size).mean(axis=(1, 3))


@dataclass
class SceneRun:
    """One scene's tiles of a block for the networks: ``chips`` (n, C, L, L), their block rows and cols,
    ``take`` (n, P): the patches this run decides (None: all), ``first``: how many of the tiles it is the
    first scene with data for (the tile counts per scene)."""

    chips: np.ndarray | None
    ii: np.ndarray
    jj: np.ndarray
    scene_id: str
    take: np.ndarray | None
    first: int


@dataclass
class BlockWork:
    """One block, read and cut, waiting for the networks.

    ``total``/``outside``/``nodata``: AOI tile counts of the block; ``shape``: block shape in tiles;
    ``runs``: one :class:`SceneRun` per scene that supplied tiles or patches, in scene order; ``keep``: the
    planned tiles' (block rows, block cols, patch mask (n, P), patch rows, patch cols, aoi index), or
    ``None`` when the block has none; ``cloud``: (rows, cols, P) uint8 cloud state of every patch of the
    block (:data:`~zoomplan.plan.types.CLOUDY` ...), ``None`` when no scene has a cloud mask.
    """

    index: int
    cached: BlockResult | None = None
    total: int = 0
    outside: int = 0
    nodata: int = 0
    shape: tuple[int, int] = (0, 0)
    runs: list[SceneRun] = field(default_factory=list)
    keep: tuple[np.ndarray, ...] | None = None
    cloud: np.ndarray | None = None


@dataclass(frozen=True)
class BlockGeometry:
    """What the block walk needs of the AOI and scenes on the grid: features (planning CRS), their STRtree
    and prepared union, the AOI's tile range, each scene's tile range inside it and the scenes' prepared cover."""

    feats: np.ndarray
    tree: shapely.STRtree
    union: BaseGeometry
    full: TileRange
    extents: list[TileRange]
    cover: BaseGeometry

    @classmethod
    def of(cls, scenes: Sequence[Scene], aoi_geoms: Sequence[BaseGeometry], grid: PlanGrid) -> "BlockGeometry":
        feats = np.asarray(list(aoi_geoms), dtype=object)
        if feats.size == 0 or shapely.union_all(feats).is_empty:
            raise GeometryError(
                "the AOI is empty in the planning CRS: pass an AOI with at least one polygon of positive area"
            )
        union = shapely.union_all(feats)
        shapely.prepare(union)
        full = grid.tile_range(union.bounds)
        footprints = [s.footprint(grid.crs) for s in scenes]
        cover = shapely.union_all(np.asarray(footprints, dtype=object)) if footprints else shapely.Polygon()
        shapely.prepare(cover)
        return cls(
            feats,
            shapely.STRtree(feats),
            union,
            full,
            [grid.tile_range(f.bounds).intersection(full) for f in footprints],
            cover,
        )


def open_readers(
    scenes: Sequence[Scene], grid: PlanGrid, extents: Sequence[TileRange]
) -> tuple[list[GridReader], list[CloudReader | None]]:
    """A pixel reader per scene, and a cloud-mask reader per scene that has a mask (else None)."""
    readers = [GridReader(s, grid, e) for s, e in zip(scenes, extents)]
    clouds = [CloudReader(s.cloud_mask, grid, e) if s.cloud_mask is not None else None for s, e in zip(scenes, extents)]
    return readers, clouds


def block_works(
    grid: PlanGrid,
    blocks: Sequence[TileRange],
    readers: Sequence[GridReader],
    g: BlockGeometry,
    *,
    min_valid: float,
    mean: np.ndarray,
    std: np.ndarray,
    cached: Callable[[int], BlockResult | None] | None = None,
    clouds: Sequence[CloudReader | None] = (),
    chips: bool = True,
) -> Iterator[BlockWork]:
    """Every block's AOI tiles, read (first scene with valid data per tile; cloudy patches from the next
    scene where they are clear, see the module doc) and cut into normalised chips, in block order.

    Which scene supplies a tile or a patch depends only on validity and cloud masks, never on the
    networks' output, so this runs ahead of them. Readers open on first use and close in reverse order
    (their GDAL environments nest), all in the thread that iterates this generator. A block for which
    ``cached(index)`` returns a result (finished in a journal) is yielded with it as ``cached`` and not
    read. ``chips=False``: runs carry no chips (the cloud count of :func:`count_cloudy`).
    """
    L = grid.lr_size_px
    P = grid.patches_per_tile
    masked = any(c is not None for c in clouds)
    opened: set[int] = set()
    with contextlib.ExitStack() as stack:
        for bi, block in enumerate(blocks):
            w = BlockWork(index=bi, shape=block.shape)
            if cached is not None:
                w.cached = cached(bi)
                if w.cached is not None:
                    yield w
                    continue
            found = _block_tiles(grid, block, g.union, g.cover, g.feats, g.tree)
            if isinstance(found, int):  # AOI tiles of a block no scene touches: only counted
                w.total = w.outside = found
            elif found[0].size:
                trow, tcol, prow, pcol, paoi = found
                w.total = int(trow.size)
                li, lj = trow - block.r0, tcol - block.c0
                pending = np.zeros(block.shape, dtype=bool)
                pending[li, lj] = True
                cloud = np.zeros(block.shape + (P,), dtype=np.uint8) if masked else None
                for k, reader in enumerate(readers):
                    need = pending if cloud is None else pending | (cloud == CLOUDY).any(axis=2)
                    if not need.any():
                        break
                    sub = _pending_range(block, need).intersection(g.extents[k])
                    if sub.empty:
                        continue
                    if k not in opened:
                        stack.enter_context(reader)
                        if masked and clouds[k] is not None:
                            stack.enter_context(clouds[k])
                        opened.add(k)
                    data, valid = reader.read(sub)
                    sl = (slice(sub.r0 - block.r0, sub.r1 - block.r0), slice(sub.c0 - block.c0, sub.c1 - block.c0))
                    ok = need[sl] & (valid_fraction(valid, L) >= min_valid)
                    first = ok & pending[sl]
                    take = None
                    if cloud is not None and ok.any():
                        cr = clouds[k]
                        cl = (
                            patch_cloud_share(cr.read(sub), L, grid.patch_grid) > CLOUDY_SHARE
                            if cr is not None
                            else np.zeros(ok.shape + (P,), bool)
                        )
                        here = cloud[sl]  # a view: the block's cloud states under this read
                        again = (ok & ~pending[sl])[..., None] & (here == CLOUDY) & ~cl  # cloudy so far, clear here
                        here[first] = np.where(cl[first], CLOUDY, CLEAR)
                        here[again] = FILLED
                        todo = first | again.any(axis=2)
                        take = again[todo] | first[todo][:, None]
                        take = None if take.all() else take
                    else:
                        todo = first
                    if not todo.any():
                        continue
                    ii, jj = np.nonzero(todo)
                    ii, jj = ii + sl[0].start, jj + sl[1].start
                    pending[ii, jj] = False
                    w.runs.append(
                        SceneRun(
                            _chips(data, valid, todo, L, mean, std) if chips else None,
                            ii,
                            jj,
                            reader.scene.scene_id,
                            take,
                            int(first.sum()),
                        )
                    )
                done = ~pending[li, lj]
                if (~done).any():
                    left = grid.tile_boxes(trow[~done], tcol[~done])
                    inside = shapely.contains_properly(g.cover, left)  # prepared: cheap; only edge tiles need areas
                    edge = ~inside
                    if edge.any():
                        inside[edge] = shapely.area(shapely.intersection(left[edge], g.cover)) > 1e-6 * grid.tile_m**2
                    w.outside = int((~inside).sum())
                    w.nodata = int(inside.sum())
                w.keep = (li[done], lj[done], paoi[done] >= 0, prow[done], pcol[done], paoi[done])
                w.cloud = cloud
            yield w


def count_cloudy(
    scenes: Sequence[Scene],
    aoi_geoms: Sequence[BaseGeometry],
    grid: PlanGrid,
    *,
    block_tiles: int = 64,
    min_valid: float = MIN_VALID,
) -> dict[str, int]:
    """How many AOI patches :func:`infer_patches` will flag cloudy and filled in, read without the networks
    (the pixels and masks only, block by block): ``{"patches", "cloudy", "filled"}``. What a plan asks
    about before its inference (``--cloudy ask``)."""
    g = BlockGeometry.of(scenes, aoi_geoms, grid)
    readers, clouds = open_readers(scenes, grid, g.extents)
    zero = np.zeros((1, 1, 1, 1), np.float32)
    out = {"patches": 0, "cloudy": 0, "filled": 0}
    for w in block_works(
        grid,
        list(grid.blocks(g.full, block_tiles)),
        readers,
        g,
        min_valid=min_valid,
        mean=zero,
        std=zero + 1,
        clouds=clouds,
        chips=False,
    ):
        if w.keep is None:
            continue
        d_li, d_lj, m = w.keep[:3]
        out["patches"] += int(m.sum())
        if w.cloud is not None:
            c = w.cloud[d_li, d_lj][m]
            out["cloudy"] += int((c == CLOUDY).sum())
            out["filled"] += int((c == FILLED).sum())
    return out


def count_blocks(aoi_geoms: Sequence[BaseGeometry], grid: PlanGrid, block_tiles: int) -> int:
    """How many blocks :func:`infer_patches` walks for this AOI (polygons in ``grid.crs``) and block size."""
    union = shapely.union_all(np.asarray(list(aoi_geoms), dtype=object))
    return sum(1 for _ in grid.blocks(grid.tile_range(union.bounds), block_tiles))


def _pending_range(block: TileRange, pending: np.ndarray) -> TileRange:
    """The smallest tile range (absolute indices) holding every pending tile of ``block``."""
    ii = np.nonzero(pending.any(axis=1))[0]
    jj = np.nonzero(pending.any(axis=0))[0]
    return TileRange(
        block.r0 + int(ii[0]), block.r0 + int(ii[-1]) + 1, block.c0 + int(jj[0]), block.c0 + int(jj[-1]) + 1
    )


def _block_tiles(
    grid: PlanGrid, block: TileRange, union: BaseGeometry, cover: BaseGeometry, feats: np.ndarray, tree: shapely.STRtree
) -> int | tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The AOI's tiles in ``block``: (tile rows, tile cols, patch rows (n, P), patch cols (n, P), aoi index (n, P)).

    A tile belongs to the AOI when one of its patches overlaps a feature with positive area. Where no
    scene touches the block, only their number is returned (patches are not cut).
    """
    trow, tcol = block.indices()
    boxes = grid.tile_boxes(trow, tcol)
    hit = shapely.intersects(union, boxes)
    if not hit.any():
        empty = np.zeros(0, dtype=np.int64)
        return (
            empty,
            empty,
            empty.reshape(0, grid.patches_per_tile),
            empty.reshape(0, grid.patches_per_tile),
            empty.reshape(0, grid.patches_per_tile),
        )
    if not cover.intersects(shapely.box(*grid.range_bounds(block))):
        return int((hit & ~shapely.touches(union, boxes)).sum())
    P = grid.patches_per_tile
    trow, tcol = trow[hit], tcol[hit]
    prow, pcol = grid.patches_of_tiles(trow, tcol)
    paoi = _tile_features(boxes[hit], feats, tree, P)
    rest = paoi[:, 0] == -2
    if rest.any():  # tiles on a feature's edge or under several features: patch by patch
        sub = grid.patch_boxes(prow.reshape(-1, P)[rest].ravel(), pcol.reshape(-1, P)[rest].ravel())
        paoi[rest] = assign_features(sub, feats, tree).reshape(-1, P)
    keep = (paoi >= 0).any(axis=1)
    return trow[keep], tcol[keep], prow.reshape(-1, P)[keep], pcol.reshape(-1, P)[keep], paoi[keep]


def _tile_features(tiles: np.ndarray, feats: np.ndarray, tree: shapely.STRtree, P: int) -> np.ndarray:
    """(n, P) int32 feature index of every patch of tiles lying wholly inside one feature and meeting no
    other (all P patches serve that feature, as :func:`assign_features` would find patch by patch, at
    1/P of the geometry work); -2 for every other tile (to be decided patch by patch)."""
    out = np.full((len(tiles), P), -2, dtype=np.int32)
    ti, fi = intersecting(tree, feats, tiles)
    if ti.size == 0:
        return out
    n_hits = np.bincount(ti, minlength=len(tiles))
    one = n_hits[ti] == 1
    ti, fi = ti[one], fi[one]
    inside = shapely.contains_properly(feats[fi], tiles[ti])
    out[ti[inside]] = fi[inside, None]
    return out


def _chips(
    data: np.ndarray, valid: np.ndarray, todo: np.ndarray, L: int, mean: np.ndarray, std: np.ndarray
) -> np.ndarray:
    """Normalised (n, C, L, L) chips of the ``todo`` tiles of a block; nodata pixels set to 0 (the dataset mean)."""
    h, w = todo.shape
    chips = (cut_tiles(data, L)[todo] - mean) / std
    vmask = valid.reshape(h, L, w, L).transpose(0, 2, 1, 3)[todo]
    return np.where(vmask[:, None], chips, np.float32(0.0)).astype(np.float32, copy=False)
