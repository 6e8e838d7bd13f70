"""Inference spread over a Dask distributed cluster (``zoomplan plan --workers N`` / ``--dask ADDRESS``).

The expensive step of a plan, :func:`zoomplan.plan.inference.infer.infer_patches`, walks the AOI's blocks of
tiles in row-major order. Here the block list is cut into contiguous ranges, each range is planned by a
worker (which loads the checkpoint once and keeps it), and the partial tables are merged
(:func:`~zoomplan.plan.inference.infer.merge_inferences`: a sort by patch row and column, counts summed). Each
block's chips go through the same batches as in a single process (a local cluster's workers share the
cores' torch threads; the results do not depend on the thread count, which a test checks), so the
merged table, and therefore the plan's outputs, are byte-identical to a single-process run.

Workers must see the scene and checkpoint paths (a shared file system, or a local cluster). Dask is an
optional extra: ``pip install zoomplan[dask]``; without it, asking for a cluster raises a one-line
:class:`~zoomplan.errors.ConfigError` saying so.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Sequence

import torch
from shapely.geometry.base import BaseGeometry

from zoomplan.errors import ConfigError
from zoomplan.geo.grid import PlanGrid
from zoomplan.geo.scene import Scene
from zoomplan.plan.inference.blocks import count_blocks
from zoomplan.plan.inference.infer import Inference, default_threads, infer_patches, merge_inferences

log = logging.getLogger(__name__)

CHUNKS_PER_WORKER = 4
"""Block ranges per worker: enough to balance uneven blocks (nodata, AOI edges), few enough to keep
per-task overhead small."""

_CKPTS: dict[tuple[str, float], Any] = {}
"""A worker's loaded checkpoints, by (path, modification time): loaded once per worker process."""


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise ConfigError(
            "--workers/--dask need Dask distributed, which is not installed: pip install 'zoomplan[dask]'"
        ) from None
    return distributed


def _worker_infer(
    ckpt_path: str,
    scenes: Sequence[Scene],
    aoi_geoms: Sequence[BaseGeometry],
    grid: PlanGrid,
    device: str,
    batch_size: int,
    block_tiles: int,
    threads: int | None,
    block_range: tuple[int, int],
) -> Inference:
    """One block range on a worker (the checkpoint is loaded on the worker's first task)."""
    from zoomplan.models.checkpoint import load_checkpoint

    key = (ckpt_path, os.path.getmtime(ckpt_path))
    if key not in _CKPTS:
        _CKPTS[key] = load_checkpoint(ckpt_path)
    return infer_patches(
        _CKPTS[key],
        scenes,
        aoi_geoms,
        grid,
        torch.device(device),
        batch_size=batch_size,
        block_tiles=block_tiles,
        threads=threads,
        block_range=block_range,
    )


def infer_on_cluster(
    cluster: str | int,
    ckpt_path: str | os.PathLike[str],
    scenes: Sequence[Scene],
    aoi_geoms: Sequence[BaseGeometry],
    grid: PlanGrid,
    device: torch.device,
    *,
    batch_size: int = 512,
    block_tiles: int = 64,
    threads: int | None = None,
) -> Inference:
    """:func:`~zoomplan.plan.inference.infer.infer_patches` over a Dask cluster: ``cluster`` is a scheduler address
    (``tcp://host:8786``) or a number of local worker processes (one thread each).

    ``threads``: torch threads per task (default: what a single process would use here, divided among
    the local workers when ``cluster`` is a number, so they do not oversubscribe the cores; the shipped
    model's outputs on CPU do not depend on the thread count, a test checks it). Raises
    :class:`ConfigError` when Dask is missing or the scheduler cannot be reached.
    """
    distributed = _import_distributed()
    if threads is None:
        threads = default_threads(device)
        if threads is not None and isinstance(cluster, int) and cluster > 0:
            threads = max(1, threads // cluster)
    n_blocks = count_blocks(aoi_geoms, grid, block_tiles)
    owned = None
    try:
        if isinstance(cluster, int):
            if cluster < 1:
                raise ConfigError(f"--workers {cluster}: pass a positive number of worker processes, e.g. --workers 2")
            owned = distributed.LocalCluster(
                n_workers=cluster, threads_per_worker=1, processes=True, dashboard_address=None
            )
            client = distributed.Client(owned)
        else:
            try:
                client = distributed.Client(cluster, timeout="20s")
            except (OSError, TimeoutError) as exc:
                raise ConfigError(
                    f"--dask {cluster}: no Dask scheduler answered ({exc.__class__.__name__}): start one (dask "
                    f"scheduler) or pass its address"
                ) from None
        with client:
            n_workers = max(1, len(client.scheduler_info().get("workers", {})))
            k = max(1, min(n_blocks, n_workers * CHUNKS_PER_WORKER))
            edges = [round(i * n_blocks / k) for i in range(k + 1)]
            ranges = [(a, b) for a, b in zip(edges[:-1], edges[1:]) if b > a]
            log.info("inference on %d Dask worker(s): %d blocks in %d ranges", n_workers, n_blocks, len(ranges))
            args = (str(ckpt_path), list(scenes), list(aoi_geoms), grid, str(device), batch_size, block_tiles, threads)
            futures = [client.submit(_worker_infer, *args, r, pure=False) for r in ranges]
            parts = client.gather(futures)
    finally:
        if owned is not None:
            owned.close()
    return merge_inferences(parts)
