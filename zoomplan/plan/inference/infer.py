"""Streaming, batched inference: LR scenes on a tile grid -> policy probabilities per HR patch.

For each block of tiles (:mod:`zoomplan.plan.inference.blocks`: read, cut, which scene supplies each tile and
each cloudy patch) the AOI's tiles are sent in batches through the checkpoint's final policy
(sigmoid -> P patch probabilities) and its LR classifier (softmax -> class and confidence). Memory is
bounded by the block size and the batch size; only the result table grows with the AOI.

Runs under ``torch.inference_mode()``, with float16 autocast on CUDA (:func:`zoomplan.device.autocast`).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from dataclasses import dataclass
from typing import Callable, Generic, Iterator, Sequence, TypeVar

import numpy as np
import torch
from shapely.geometry.base import BaseGeometry

from zoomplan.device import autocast
from zoomplan.errors import CheckpointError
from zoomplan.geo.grid import PlanGrid
from zoomplan.geo.scene import Scene
from zoomplan.models.checkpoint import Checkpoint
from zoomplan.plan.inference.blocks import MIN_VALID, BlockGeometry, BlockWork, block_works, open_readers
from zoomplan.plan.inference.journal import BlockJournal, BlockResult
from zoomplan.plan.types import PatchTable

log = logging.getLogger(__name__)

PREFETCH_BLOCKS = 4
"""Blocks the reader thread may prepare ahead of the networks (bounds memory: a 64 x 64-tile block of
3-band chips is about 3 MB)."""

T = TypeVar("T")


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
    blocks_resumed: int = 0
    """Blocks taken from a journal instead of read and planned (:mod:`zoomplan.plan.inference.journal`)."""


class TileModels:
    """The checkpoint's final policy and LR classifier on ``device``, called on batches of LR chips."""

    def __init__(self, ckpt: Checkpoint, device: torch.device, *, batch_size: int = 512) -> None:
        stage = ckpt.deploy_stage
        if stage is None:
            raise CheckpointError(
                f"{ckpt.path}: checkpoint has no trained policy (policy_pt/ft1/ft2): train the policy stages first"
            )
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
            x = torch.from_numpy(np.ascontiguousarray(chips[i : i + self.batch_size])).to(
                self.device, non_blocking=True
            )
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


def default_threads(device: torch.device) -> int | None:
    """torch intra-op threads :func:`infer_patches` uses by default: on CPU ``torch.get_num_threads()``
    (every core: the reader thread needs little, decoding being tens of times cheaper than the networks
    in benchmarks/plan_throughput.py);
    ``None`` (unchanged) elsewhere. Recorded in plan journals, so a resumed run uses the same count."""
    return max(1, torch.get_num_threads()) if device.type == "cpu" else None


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
    threads: int | None = None,
    block_range: tuple[int, int] | None = None,
    journal: BlockJournal | None = None,
) -> Inference:
    """Policy probabilities for every HR patch overlapping ``aoi_geoms`` (polygons in ``grid.crs``).

    Each patch is assigned to the AOI feature it overlaps most (``aoi_index``). ``block_tiles`` sets
    the read window (``block_tiles`` x ``block_tiles`` tiles); ``batch_size`` the network batch.
    ``progress(blocks_done, blocks_total)`` is called after each block (from the calling thread).
    ``threads``: torch intra-op threads while the networks run (default: :func:`default_threads`;
    restored afterwards).
    ``journal``: finished blocks are loaded from it instead of read and planned, and every block planned
    here is saved to it (:mod:`zoomplan.plan.inference.journal`; the table is the same either way).
    """
    card = ckpt.card
    P = grid.patches_per_tile
    models = TileModels(ckpt, device, batch_size=batch_size)
    mean = np.asarray(card.lr_norm.mean, dtype=np.float32)[None, :, None, None]
    std = np.asarray(card.lr_norm.std, dtype=np.float32)[None, :, None, None]

    g = BlockGeometry.of(scenes, aoi_geoms, grid)
    parts: list[tuple[np.ndarray, ...]] = []
    n_total = n_nodata = n_outside = 0
    by_scene = {s.scene_id: 0 for s in scenes}
    blocks = list(grid.blocks(g.full, block_tiles))
    if block_range is not None:  # a share of the work (zoomplan.plan.inference.distributed): blocks [start, stop) only
        blocks = blocks[block_range[0] : block_range[1]]
    readers, clouds = open_readers(scenes, grid, g.extents)
    if threads is None:
        threads = default_threads(device)
    cached = None
    if journal is not None:
        if journal.n_blocks != len(blocks):
            raise ValueError(f"the journal expects {journal.n_blocks} blocks, this run has {len(blocks)}")
        done = journal.done()
        cached = lambda i: journal.load(i) if i in done else None  # noqa: E731
    scene_ids = [s.scene_id for s in scenes]
    resumed = 0
    works = block_works(grid, blocks, readers, g, min_valid=min_valid, mean=mean, std=std, cached=cached, clouds=clouds)
    # Decoding, tile geometry and chip cutting run ahead in a reader thread (a bounded queue of
    # blocks) while this thread runs the networks: the two overlap instead of adding up.
    with _Prefetch(works, depth=PREFETCH_BLOCKS) as ready, _inference_threads(threads):
        for w in ready:
            r = w.cached
            resumed += r is not None
            if r is None:
                r = _run_block(w, models, P, scene_ids)
                if journal is not None:
                    journal.save(w.index, r)
            n_total += r.total
            n_outside += r.outside
            n_nodata += r.nodata
            for sid, k in r.by_scene.items():
                by_scene[sid] += k
            if r.row.size:
                parts.append((r.row, r.col, r.prob, r.tile_class, r.tile_conf, r.aoi_index, r.cloud))
            if progress is not None:
                progress(w.index + 1, len(blocks))

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
        cloud=cat(6, np.uint8)[order] if any(c is not None for c in clouds) else None,
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
        log.warning(
            "%d of %d AOI tiles skipped: %d mostly nodata, %d outside every scene",
            n_nodata + n_outside,
            n_total,
            n_nodata,
            n_outside,
        )
    log.info(
        "inference: %d tiles planned, %d patches, policy stage %s on %s", planned, len(table), models.stage, device
    )
    return Inference(table=table, stats=stats, blocks_resumed=resumed)


def _run_block(w: BlockWork, models: TileModels, P: int, scene_ids: Sequence[str]) -> BlockResult:
    """The networks over one read block: its patches' probabilities, classes and confidences, and counts.

    Runs are applied in scene order; a run that decides only some patches of its tiles (a later scene
    filling in cloudy patches) writes only those."""
    by_scene = dict.fromkeys(scene_ids, 0)
    if w.keep is None:
        e64, e32 = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int32)
        return BlockResult(
            e64,
            e64,
            np.zeros(0, dtype=np.float32),
            e32,
            np.zeros(0, dtype=np.float32),
            e32,
            np.zeros(0, dtype=np.uint8),
            total=w.total,
            outside=w.outside,
            nodata=w.nodata,
            by_scene=by_scene,
        )
    t_prob = np.zeros(w.shape + (P,), dtype=np.float32)
    t_cls = np.zeros(w.shape + (P,), dtype=np.int32)
    t_conf = np.zeros(w.shape + (P,), dtype=np.float32)
    for run in w.runs:
        probs, cls, conf = models(run.chips)
        if run.take is None:
            t_prob[run.ii, run.jj], t_cls[run.ii, run.jj], t_conf[run.ii, run.jj] = probs, cls[:, None], conf[:, None]
        else:
            r, p = np.nonzero(run.take)
            i, j = run.ii[r], run.jj[r]
            t_prob[i, j, p], t_cls[i, j, p], t_conf[i, j, p] = probs[r, p], cls[r], conf[r]
        by_scene[run.scene_id] += run.first
    d_li, d_lj, m, prow, pcol, paoi = w.keep
    cloud = w.cloud[d_li, d_lj][m] if w.cloud is not None else np.zeros(int(m.sum()), dtype=np.uint8)
    return BlockResult(
        prow[m].astype(np.int64, copy=False),
        pcol[m].astype(np.int64, copy=False),
        t_prob[d_li, d_lj][m],
        t_cls[d_li, d_lj][m],
        t_conf[d_li, d_lj][m],
        paoi[m].astype(np.int32, copy=False),
        cloud,
        total=w.total,
        outside=w.outside,
        nodata=w.nodata,
        by_scene=by_scene,
    )


class _Prefetch(Generic[T]):
    """Iterate a generator in a background thread, at most ``depth`` items ahead; use as a context manager.

    Items come out in the generator's order; an exception raised by the generator is raised again in the
    consumer. Leaving the ``with`` block early stops the generator (closed in its own thread, so its
    ``finally``/``with`` clean-up runs there) and joins the thread.
    """

    _END = object()

    def __init__(self, gen: Iterator[T], depth: int = PREFETCH_BLOCKS) -> None:
        self._gen = gen
        self._q: queue.Queue[tuple[bool, object]] = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="zoomplan-reader", daemon=True)

    def _put(self, item: tuple[bool, object]) -> bool:
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for item in self._gen:
                if not self._put((True, item)):
                    break
        except BaseException as exc:  # handed to the consumer, raised there
            self._put((False, exc))
            return
        finally:
            close = getattr(self._gen, "close", None)
            if close is not None:
                close()
        self._put((True, self._END))

    def __enter__(self) -> Iterator[T]:
        self._thread.start()
        return self._items()

    def _items(self) -> Iterator[T]:
        while True:
            ok, item = self._q.get()
            if not ok:
                raise item  # type: ignore[misc]
            if item is self._END:
                return
            yield item  # type: ignore[misc]

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@contextlib.contextmanager
def _inference_threads(n: int | None) -> Iterator[None]:
    """torch intra-op threads set to ``n`` inside the block (unchanged for ``None``), restored after.

    On an idle 2-core CPU two threads run the networks ~1.6x faster than one (benchmarks/plan_throughput.py); on
    a machine already busy with other work, OpenMP threads that wait for each other can be much slower
    than one (measured under load: 1 thread ~4,000 tiles/s, 2 threads ~400): pass ``threads=1``
    (``zoomplan plan --threads 1``) there.
    """
    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(max(1, int(n)))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def merge_inferences(parts: Sequence[Inference]) -> Inference:
    """One Inference from those of disjoint block ranges of the same run (any order): the same table and
    counts as a single :func:`infer_patches` over all the blocks (rows sorted by patch row, then column)."""
    if not parts:
        raise ValueError("merge_inferences needs at least one Inference")
    t0 = parts[0].table
    row = np.concatenate([p.table.row for p in parts])
    col = np.concatenate([p.table.col for p in parts])
    order = np.lexsort((col, row))
    table = PatchTable(
        crs=t0.crs,
        patch_m=t0.patch_m,
        patch_grid=t0.patch_grid,
        row=row[order],
        col=col[order],
        prob=np.concatenate([p.table.prob for p in parts])[order],
        tile_class=np.concatenate([p.table.tile_class for p in parts])[order],
        tile_conf=np.concatenate([p.table.tile_conf for p in parts])[order],
        aoi_index=np.concatenate([p.table.aoi_index for p in parts])[order],
        class_names=t0.class_names,
        cloud=None if t0.cloud is None else np.concatenate([p.table.cloud for p in parts])[order],
    )
    by_scene: dict[str, int] = {}
    for p in parts:
        for k, v in p.stats.tiles_by_scene.items():
            by_scene[k] = by_scene.get(k, 0) + v
    resampled = {r for p in parts for r in p.stats.resampled_scenes}
    stats = InferenceStats(
        tiles_total=sum(p.stats.tiles_total for p in parts),
        tiles_planned=sum(p.stats.tiles_planned for p in parts),
        tiles_nodata=sum(p.stats.tiles_nodata for p in parts),
        tiles_outside=sum(p.stats.tiles_outside for p in parts),
        tiles_by_scene=by_scene,
        resampled_scenes=tuple(k for k in by_scene if k in resampled),
        device=parts[0].stats.device,
    )
    return Inference(table=table, stats=stats)
