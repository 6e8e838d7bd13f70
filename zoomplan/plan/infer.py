"""Streaming, batched inference: LR scenes on a tile grid -> policy probabilities per HR patch.

For each block of tiles (many tiles, one window read per scene) the tiles that overlap the AOI are cut
from the block with array reshapes, mapped to the network's input, and sent in batches through the
checkpoint's final policy (sigmoid -> P patch probabilities) and its LR classifier (softmax -> class and
confidence). Memory is bounded by the block size and the batch size; only the result table grows with
the AOI. Scenes are used in the order given: a tile is taken from the first scene where it is at least
``min_valid`` valid; tiles mostly nodata in every scene are skipped and counted.

Runs under ``torch.inference_mode()``, with float16 autocast on CUDA (:func:`zoomplan.device.autocast`).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import shapely
import torch
from shapely.geometry.base import BaseGeometry

from zoomplan.device import autocast
from zoomplan.errors import CheckpointError, GeometryError
from zoomplan.geo.grid import PlanGrid, TileRange, assign_features
from zoomplan.geo.scene import GridReader, Scene
from zoomplan.plan.types import PatchTable
from zoomplan.train.checkpoint import Checkpoint

log = logging.getLogger(__name__)

MIN_VALID = 0.5
"""A tile is planned only when at least this fraction of its LR pixels is valid data."""


@dataclass(frozen=True)
class InferenceStats:
    """Tile counts of one inference run.

    ``tiles_total``: tiles overlapping the AOI (positive area); ``tiles_planned``: tiles with
    probabilities; ``tiles_nodata``: skipped, mostly nodata (or partly outside the scenes);
    ``tiles_outside``: skipped, wholly outside every scene. ``planned + nodata + outside == total``.
    """

    tiles_total: int
    tiles_planned: int
    tiles_nodata: int
    tiles_outside: int
    tiles_by_scene: dict[str, int]
    resampled_scenes: tuple[str, ...]
    device: str


@dataclass(frozen=True)
class Inference:
    """The patch table of the planned tiles and the run's counts."""

    table: PatchTable
    stats: InferenceStats


class TileModels:
    """The checkpoint's final policy and LR classifier on ``device``, called on batches of LR chips."""

    def __init__(self, ckpt: Checkpoint, device: torch.device, *, batch_size: int = 512) -> None:
        stage = ckpt.deploy_stage
        if stage is None:
            raise CheckpointError(f"{ckpt.path}: checkpoint has no trained policy (policy_pt/ft1/ft2): train the policy stages first")
        self.stage = stage
        self.policy = ckpt.build(f"policy_{stage}", device)
        self.lr = ckpt.build("lr", device)
        self.device = device
        self.batch_size = max(1, int(batch_size))
        self.num_patches = ckpt.card.num_patches
        self.num_classes = len(ckpt.card.class_names)

    @torch.inference_mode()
    def __call__(self, chips: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(N, C, L, L) normalised float32 chips -> probs (N, P) float32, class (N,) int32, conf (N,) float32."""
        n = chips.shape[0]
        probs = np.empty((n, self.num_patches), dtype=np.float32)
        cls = np.empty(n, dtype=np.int32)
        conf = np.empty(n, dtype=np.float32)
        for i in range(0, n, self.batch_size):
            x = torch.from_numpy(np.ascontiguousarray(chips[i : i + self.batch_size])).to(self.device, non_blocking=True)
            with autocast(self.device):
                logits_p = self.policy(x)
                logits_l = self.lr(x)
            p = torch.sigmoid(logits_p.float())
            c, k = torch.softmax(logits_l.float(), dim=1).max(dim=1)
            j = slice(i, i + x.shape[0])
            probs[j] = p.cpu().numpy()
            cls[j] = k.cpu().numpy().astype(np.int32)
            conf[j] = c.cpu().numpy()
        return probs, cls, conf


def cut_tiles(block: np.ndarray, lr_size: int) -> np.ndarray:
    """(C, h*L, w*L) -> (h, w, C, L, L) tiles of a block, by reshape (a view where possible)."""
    c, H, W = block.shape
    h, w = H // lr_size, W // lr_size
    return block.reshape(c, h, lr_size, w, lr_size).transpose(1, 3, 0, 2, 4)


def valid_fraction(valid: np.ndarray, lr_size: int) -> np.ndarray:
    """(h*L, w*L) bool -> (h, w) fraction of valid pixels per tile."""
    H, W = valid.shape
    return valid.reshape(H // lr_size, lr_size, W // lr_size, lr_size).mean(axis=(1, 3))


def infer_patches(
    ckpt: Checkpoint,
    scenes: Sequence[Scene],
    aoi_geoms: Sequence[BaseGeometry],
    grid: PlanGrid,
    device: torch.device,
    *,
    batch_size: int = 512,
    block_tiles: int = 64,
    min_valid: float = MIN_VALID,
    progress: Callable[[int, int], None] | None = None,
) -> Inference:
    """Policy probabilities for every HR patch overlapping ``aoi_geoms`` (polygons in ``grid.crs``).

    Each patch is assigned to the AOI feature it overlaps most (``aoi_index``). ``block_tiles`` sets
    the read window (``block_tiles`` x ``block_tiles`` tiles); ``batch_size`` the network batch.
    ``progress(blocks_done, blocks_total)`` is called after each block.
    """
    card = ckpt.card
    L = grid.lr_size_px
    P = grid.patches_per_tile
    models = TileModels(ckpt, device, batch_size=batch_size)
    mean = np.asarray(card.lr_norm.mean, dtype=np.float32)[None, :, None, None]
    std = np.asarray(card.lr_norm.std, dtype=np.float32)[None, :, None, None]

    feats = np.asarray(list(aoi_geoms), dtype=object)
    if feats.size == 0 or shapely.union_all(feats).is_empty:
        raise GeometryError("the AOI is empty in the planning CRS: pass an AOI with at least one polygon of positive area")
    tree = shapely.STRtree(feats)
    union = shapely.union_all(feats)
    shapely.prepare(union)
    full = grid.tile_range(union.bounds)

    footprints = [s.footprint(grid.crs) for s in scenes]
    extents = [grid.tile_range(f.bounds).intersection(full) for f in footprints]
    cover = shapely.union_all(np.asarray(footprints, dtype=object)) if footprints else shapely.Polygon()
    shapely.prepare(cover)

    parts: list[tuple[np.ndarray, ...]] = []
    n_total = n_nodata = n_outside = 0
    by_scene = {s.scene_id: 0 for s in scenes}
    blocks = list(grid.blocks(full, block_tiles))
    readers = [GridReader(s, grid, e) for s, e in zip(scenes, extents)]
    opened: set[int] = set()
    # Readers open on first use and close in reverse order (their GDAL environments nest).
    with contextlib.ExitStack() as stack:
        for bi, block in enumerate(blocks):
            found = _block_tiles(grid, block, union, cover, feats, tree)
            if isinstance(found, int):  # AOI tiles of a block no scene touches: only counted
                n_total += found
                n_outside += found
            elif found[0].size:
                trow, tcol, prow, pcol, paoi = found
                n_total += trow.size
                li, lj = trow - block.r0, tcol - block.c0
                pending = np.zeros(block.shape, dtype=bool)
                pending[li, lj] = True
                t_prob = np.zeros(block.shape + (P,), dtype=np.float32)
                t_cls = np.zeros(block.shape, dtype=np.int32)
                t_conf = np.zeros(block.shape, dtype=np.float32)
                for k, reader in enumerate(readers):
                    if not pending.any():
                        break
                    sub = _pending_range(block, pending).intersection(extents[k])
                    if sub.empty:
                        continue
                    if k not in opened:
                        stack.enter_context(reader)
                        opened.add(k)
                    data, valid = reader.read(sub)
                    sl = (slice(sub.r0 - block.r0, sub.r1 - block.r0), slice(sub.c0 - block.c0, sub.c1 - block.c0))
                    todo = pending[sl] & (valid_fraction(valid, L) >= min_valid)
                    if not todo.any():
                        continue
                    probs, cls, conf = models(_chips(data, valid, todo, L, mean, std))
                    ii, jj = np.nonzero(todo)
                    ii, jj = ii + sl[0].start, jj + sl[1].start
                    t_prob[ii, jj], t_cls[ii, jj], t_conf[ii, jj] = probs, cls, conf
                    pending[ii, jj] = False
                    by_scene[reader.scene.scene_id] += int(ii.size)
                done = ~pending[li, lj]
                if (~done).any():
                    left = grid.tile_boxes(trow[~done], tcol[~done])
                    inside = shapely.area(shapely.intersection(left, cover)) > 1e-6 * grid.tile_m**2
                    n_outside += int((~inside).sum())
                    n_nodata += int(inside.sum())
                d_li, d_lj = li[done], lj[done]
                m = paoi[done] >= 0
                parts.append((
                    prow[done][m], pcol[done][m], t_prob[d_li, d_lj][m],
                    np.repeat(t_cls[d_li, d_lj], P).reshape(-1, P)[m], np.repeat(t_conf[d_li, d_lj], P).reshape(-1, P)[m], paoi[done][m],
                ))
            if progress is not None:
                progress(bi + 1, len(blocks))

    def cat(i: int, dtype: type) -> np.ndarray:
        return np.concatenate([p[i] for p in parts]).astype(dtype, copy=False) if parts else np.zeros(0, dtype=dtype)

    row, col = cat(0, np.int64), cat(1, np.int64)
    order = np.lexsort((col, row))
    table = PatchTable(
        crs=grid.crs,
        patch_m=grid.patch_m,
        patch_grid=grid.patch_grid,
        row=row[order],
        col=col[order],
        prob=cat(2, np.float32)[order],
        tile_class=cat(3, np.int32)[order],
        tile_conf=cat(4, np.float32)[order],
        aoi_index=cat(5, np.int32)[order],
        class_names=card.class_names,
    )
    planned = sum(by_scene.values())
    stats = InferenceStats(
        tiles_total=n_total,
        tiles_planned=planned,
        tiles_nodata=n_nodata,
        tiles_outside=n_outside,
        tiles_by_scene=by_scene,
        resampled_scenes=tuple(r.scene.scene_id for r in readers if r.resampled),
        device=str(device),
    )
    if n_nodata or n_outside:
        log.warning("%d of %d AOI tiles skipped: %d mostly nodata, %d outside every scene", n_nodata + n_outside, n_total, n_nodata, n_outside)
    log.info("inference: %d tiles planned, %d patches, policy stage %s on %s", planned, len(table), models.stage, device)
    return Inference(table=table, stats=stats)


def _pending_range(block: TileRange, pending: np.ndarray) -> TileRange:
    """The smallest tile range (absolute indices) holding every pending tile of ``block``."""
    ii = np.nonzero(pending.any(axis=1))[0]
    jj = np.nonzero(pending.any(axis=0))[0]
    return TileRange(block.r0 + int(ii[0]), block.r0 + int(ii[-1]) + 1, block.c0 + int(jj[0]), block.c0 + int(jj[-1]) + 1)


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
        return empty, empty, empty.reshape(0, grid.patches_per_tile), empty.reshape(0, grid.patches_per_tile), empty.reshape(0, grid.patches_per_tile)
    if not cover.intersects(shapely.box(*grid.range_bounds(block))):
        return int((hit & ~shapely.touches(union, boxes)).sum())
    P = grid.patches_per_tile
    trow, tcol = trow[hit], tcol[hit]
    prow, pcol = grid.patches_of_tiles(trow, tcol)
    paoi = assign_features(grid.patch_boxes(prow, pcol), feats, tree).reshape(-1, P)
    keep = (paoi >= 0).any(axis=1)
    return trow[keep], tcol[keep], prow.reshape(-1, P)[keep], pcol.reshape(-1, P)[keep], paoi[keep]


def _chips(data: np.ndarray, valid: np.ndarray, todo: np.ndarray, L: int, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Normalised (n, C, L, L) chips of the ``todo`` tiles of a block; nodata pixels set to 0 (the dataset mean)."""
    h, w = todo.shape
    chips = (cut_tiles(data, L)[todo] - mean) / std
    vmask = valid.reshape(h, L, w, L).transpose(0, 2, 1, 3)[todo]
    return np.where(vmask[:, None], chips, np.float32(0.0)).astype(np.float32, copy=False)
