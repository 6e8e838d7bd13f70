"""Streaming, batched inference: LR scenes on a tile grid -> policy probabilities per HR patch.

For each block of tiles (many tiles, one window read per scene) the tiles that overlap the AOI are cut
from the block with array reshapes, mapped to the network's input, and sent in batches through the
checkpoint's final policy (sigmoid -> P patch probabilities) and its LR classifier (softmax -> class and
confidence). Memory is bounded by the block size and the batch size; only the result table grows with
the AOI. Scenes are used in the order given: a tile is taken from the first scene where it is at least
``min_valid`` valid; tiles mostly nodata in every scene are skipped and counted.

Clouds (:mod:`zoomplan.geo.clouds`): where a scene has a cloud mask, each patch of a tile it supplies is
cloudy when more than :data:`~zoomplan.geo.clouds.CLOUDY_SHARE` of its LR pixels are cloud or shadow.
A cloudy patch is decided by the next scene, in the same order, that has valid data for its tile and
where the patch is clear (a scene without a mask counts as clear): that scene's tile goes through the
networks too, and only those patches take its probabilities. A patch cloudy in every scene with data
keeps the first scene's and is flagged (:data:`~zoomplan.plan.types.CLOUDY`); one filled in from a later
scene is flagged :data:`~zoomplan.plan.types.FILLED`.

Runs under ``torch.inference_mode()``, with float16 autocast on CUDA (:func:`zoomplan.device.autocast`).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from dataclasses import dataclass, field
from typing import Callable, Generic, Iterator, Sequence, TypeVar

import numpy as np
import shapely
import torch
from shapely.geometry.base import BaseGeometry

from zoomplan.device import autocast
from zoomplan.errors import CheckpointError, GeometryError
from zoomplan.geo.clouds import CLOUDY_SHARE, CloudReader, patch_cloud_share
from zoomplan.geo.grid import PlanGrid, TileRange, assign_features, intersecting
from zoomplan.geo.scene import GridReader, Scene
from zoomplan.plan.journal import BlockJournal, BlockResult
from zoomplan.plan.types import CLEAR, CLOUDY, FILLED, PatchTable
from zoomplan.models.checkpoint import Checkpoint

log = logging.getLogger(__name__)

MIN_VALID = 0.5
"""A tile is planned only when at least this fraction of its LR pixels is valid data."""

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
    """Blocks taken from a journal instead of read and planned (:mod:`zoomplan.plan.journal`)."""


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


def default_threads(device: torch.device) -> int | None:
    """torch intra-op threads :func:`infer_patches` uses by default: on CPU ``torch.get_num_threads()``
    (every core: the reader thread needs little, decoding being tens of times cheaper than the networks
    in benchmarks/plan_throughput.py);
    ``None`` (unchanged) elsewhere. Recorded in plan journals, so a resumed run uses the same count."""
    return max(1, torch.get_num_threads()) if device.type == "cpu" else None


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
    here is saved to it (:mod:`zoomplan.plan.journal`; the table is the same either way).
    """
    card = ckpt.card
    P = grid.patches_per_tile
    models = TileModels(ckpt, device, batch_size=batch_size)
    mean = np.asarray(card.lr_norm.mean, dtype=np.float32)[None, :, None, None]
    std = np.asarray(card.lr_norm.std, dtype=np.float32)[None, :, None, None]

    g = _Geometry.of(scenes, aoi_geoms, grid)
    parts: list[tuple[np.ndarray, ...]] = []
    n_total = n_nodata = n_outside = 0
    by_scene = {s.scene_id: 0 for s in scenes}
    blocks = list(grid.blocks(g.full, block_tiles))
    if block_range is not None:  # a share of the work (zoomplan.plan.distributed): blocks [start, stop) only
        blocks = blocks[block_range[0] : block_range[1]]
    readers, clouds = _readers(scenes, grid, g.extents)
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
    works = _block_works(grid, blocks, readers, g, min_valid=min_valid, mean=mean, std=std, cached=cached, clouds=clouds)
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
        log.warning("%d of %d AOI tiles skipped: %d mostly nodata, %d outside every scene", n_nodata + n_outside, n_total, n_nodata, n_outside)
    log.info("inference: %d tiles planned, %d patches, policy stage %s on %s", planned, len(table), models.stage, device)
    return Inference(table=table, stats=stats, blocks_resumed=resumed)


def _run_block(w: _BlockWork, models: TileModels, P: int, scene_ids: Sequence[str]) -> BlockResult:
    """The networks over one read block: its patches' probabilities, classes and confidences, and counts.

    Runs are applied in scene order; a run that decides only some patches of its tiles (a later scene
    filling in cloudy patches) writes only those."""
    by_scene = dict.fromkeys(scene_ids, 0)
    if w.keep is None:
        e64, e32 = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int32)
        return BlockResult(e64, e64, np.zeros(0, dtype=np.float32), e32, np.zeros(0, dtype=np.float32), e32, np.zeros(0, dtype=np.uint8),
                           total=w.total, outside=w.outside, nodata=w.nodata, by_scene=by_scene)
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
        prow[m].astype(np.int64, copy=False), pcol[m].astype(np.int64, copy=False), t_prob[d_li, d_lj][m],
        t_cls[d_li, d_lj][m], t_conf[d_li, d_lj][m], paoi[m].astype(np.int32, copy=False), cloud,
        total=w.total, outside=w.outside, nodata=w.nodata, by_scene=by_scene,
    )


@dataclass
class _Run:
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
class _BlockWork:
    """One block, read and cut, waiting for the networks.

    ``total``/``outside``/``nodata``: AOI tile counts of the block; ``shape``: block shape in tiles;
    ``runs``: one :class:`_Run` per scene that supplied tiles or patches, in scene order; ``keep``: the
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
    runs: list[_Run] = field(default_factory=list)
    keep: tuple[np.ndarray, ...] | None = None
    cloud: np.ndarray | None = None


@dataclass(frozen=True)
class _Geometry:
    """What the block walk needs of the AOI and scenes on the grid: features (planning CRS), their STRtree
    and prepared union, the AOI's tile range, each scene's tile range inside it and the scenes' prepared cover."""

    feats: np.ndarray
    tree: shapely.STRtree
    union: BaseGeometry
    full: TileRange
    extents: list[TileRange]
    cover: BaseGeometry

    @classmethod
    def of(cls, scenes: Sequence[Scene], aoi_geoms: Sequence[BaseGeometry], grid: PlanGrid) -> "_Geometry":
        feats = np.asarray(list(aoi_geoms), dtype=object)
        if feats.size == 0 or shapely.union_all(feats).is_empty:
            raise GeometryError("the AOI is empty in the planning CRS: pass an AOI with at least one polygon of positive area")
        union = shapely.union_all(feats)
        shapely.prepare(union)
        full = grid.tile_range(union.bounds)
        footprints = [s.footprint(grid.crs) for s in scenes]
        cover = shapely.union_all(np.asarray(footprints, dtype=object)) if footprints else shapely.Polygon()
        shapely.prepare(cover)
        return cls(feats, shapely.STRtree(feats), union, full, [grid.tile_range(f.bounds).intersection(full) for f in footprints], cover)


def _readers(scenes: Sequence[Scene], grid: PlanGrid, extents: Sequence[TileRange]) -> tuple[list[GridReader], list[CloudReader | None]]:
    """A pixel reader per scene, and a cloud-mask reader per scene that has a mask (else None)."""
    readers = [GridReader(s, grid, e) for s, e in zip(scenes, extents)]
    clouds = [CloudReader(s.cloud_mask, grid, e) if s.cloud_mask is not None else None for s, e in zip(scenes, extents)]
    return readers, clouds


def _block_works(
    grid: PlanGrid, blocks: Sequence[TileRange], readers: Sequence[GridReader], g: _Geometry, *, min_valid: float, mean: np.ndarray,
    std: np.ndarray, cached: Callable[[int], BlockResult | None] | None = None, clouds: Sequence[CloudReader | None] = (),
    chips: bool = True,
) -> Iterator[_BlockWork]:
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
            w = _BlockWork(index=bi, shape=block.shape)
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
                        cl = patch_cloud_share(cr.read(sub), L, grid.patch_grid) > CLOUDY_SHARE if cr is not None else np.zeros(ok.shape + (P,), bool)
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
                    w.runs.append(_Run(_chips(data, valid, todo, L, mean, std) if chips else None, ii, jj, reader.scene.scene_id, take,
                                       int(first.sum())))
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


def count_cloudy(scenes: Sequence[Scene], aoi_geoms: Sequence[BaseGeometry], grid: PlanGrid, *, block_tiles: int = 64,
                 min_valid: float = MIN_VALID) -> dict[str, int]:
    """How many AOI patches :func:`infer_patches` will flag cloudy and filled in, read without the networks
    (the pixels and masks only, block by block): ``{"patches", "cloudy", "filled"}``. What a plan asks
    about before its inference (``--cloudy ask``)."""
    g = _Geometry.of(scenes, aoi_geoms, grid)
    readers, clouds = _readers(scenes, grid, g.extents)
    zero = np.zeros((1, 1, 1, 1), np.float32)
    out = {"patches": 0, "cloudy": 0, "filled": 0}
    for w in _block_works(grid, list(grid.blocks(g.full, block_tiles)), readers, g, min_valid=min_valid, mean=zero, std=zero + 1,
                          clouds=clouds, chips=False):
        if w.keep is None:
            continue
        d_li, d_lj, m = w.keep[:3]
        out["patches"] += int(m.sum())
        if w.cloud is not None:
            c = w.cloud[d_li, d_lj][m]
            out["cloudy"] += int((c == CLOUDY).sum())
            out["filled"] += int((c == FILLED).sum())
    return out


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


def count_blocks(aoi_geoms: Sequence[BaseGeometry], grid: PlanGrid, block_tiles: int) -> int:
    """How many blocks :func:`infer_patches` walks for this AOI (polygons in ``grid.crs``) and block size."""
    union = shapely.union_all(np.asarray(list(aoi_geoms), dtype=object))
    return sum(1 for _ in grid.blocks(grid.tile_range(union.bounds), block_tiles))


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
        crs=t0.crs, patch_m=t0.patch_m, patch_grid=t0.patch_grid, row=row[order], col=col[order],
        prob=np.concatenate([p.table.prob for p in parts])[order], tile_class=np.concatenate([p.table.tile_class for p in parts])[order],
        tile_conf=np.concatenate([p.table.tile_conf for p in parts])[order], aoi_index=np.concatenate([p.table.aoi_index for p in parts])[order],
        class_names=t0.class_names, cloud=None if t0.cloud is None else np.concatenate([p.table.cloud for p in parts])[order],
    )
    by_scene: dict[str, int] = {}
    for p in parts:
        for k, v in p.stats.tiles_by_scene.items():
            by_scene[k] = by_scene.get(k, 0) + v
    resampled = {r for p in parts for r in p.stats.resampled_scenes}
    stats = InferenceStats(
        tiles_total=sum(p.stats.tiles_total for p in parts), tiles_planned=sum(p.stats.tiles_planned for p in parts),
        tiles_nodata=sum(p.stats.tiles_nodata for p in parts), tiles_outside=sum(p.stats.tiles_outside for p in parts),
        tiles_by_scene=by_scene, resampled_scenes=tuple(k for k in by_scene if k in resampled), device=parts[0].stats.device,
    )
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


def _chips(data: np.ndarray, valid: np.ndarray, todo: np.ndarray, L: int, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Normalised (n, C, L, L) chips of the ``todo`` tiles of a block; nodata pixels set to 0 (the dataset mean)."""
    h, w = todo.shape
    chips = (cut_tiles(data, L)[todo] - mean) / std
    vmask = valid.reshape(h, L, w, L).transpose(0, 2, 1, 3)[todo]
    return np.where(vmask[:, None], chips, np.float32(0.0)).astype(np.float32, copy=False)
