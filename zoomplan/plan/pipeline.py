"""``plan()``: from an AOI and LR scenes to a priced purchase order, in one library call.

Order of work (everything that can be checked is checked before anything is computed or written):

1. parameters, output paths, vendor catalogue and vendor, device, checkpoint;
2. AOI (read, validated, repaired) and scenes (readable, georeferenced, with the model's bands);
3. planning CRS (the scene's projected CRS, or the AOI's UTM zone), AOI reprojected, AOI x scene overlap;
4. streamed inference on the tile grid (:func:`zoomplan.plan.inference.infer.infer_patches`);
5. selection, orders and pricing (:mod:`zoomplan.plan.selection.select`, :mod:`~zoomplan.plan.orders.orders`,
   :mod:`~zoomplan.plan.orders.pricing`) over the AOI's part inside the scenes; baseline = that part bought
   whole from the same vendor (the whole AOI when the scenes cover it; an AOI partly outside them is
   neither planned nor priced there, so savings are not overstated);
6. outputs rendered into hidden staging files beside their targets, then renamed into place together:
   an error at any step leaves no output behind.

Areas are km^2, money USD, lengths metres.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import shapely

from zoomplan import __version__
from zoomplan.device import resolve_device
from zoomplan.errors import ConfigError, InputError, ZoomplanError
from zoomplan.geo.aoi import AOI
from zoomplan.geo.products.clouds import CLOUDY_SHARE
from zoomplan.models.checkpoint import load_checkpoint
from zoomplan.plan.export import geojson as export
from zoomplan.plan.export import quicklook as quicklook_mod
from zoomplan.plan.inference.blocks import MIN_VALID, count_blocks, count_cloudy
from zoomplan.plan.inference.infer import InferenceStats, default_threads, infer_patches
from zoomplan.plan.inference.journal import BlockJournal, default_folder, journal_meta
from zoomplan.plan.inputs import Staging, check_outputs, file_sha256, inside_scenes, open_plan_inputs
from zoomplan.plan.orders import orders as orders_mod
from zoomplan.plan.orders import pricing
from zoomplan.plan.request import PlanRequest
from zoomplan.plan.selection import clouds as clouds_mod
from zoomplan.plan.selection import select
from zoomplan.plan.summary import plan_summary
from zoomplan.plan.types import PatchTable, PathLike

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlanResult:
    """Everything a plan produced. ``aoi`` is in the planning CRS (``table.crs``)."""

    summary: dict[str, Any]
    table: PatchTable
    selected: np.ndarray
    orders: list[Any]
    aoi: AOI
    plan_bill: pricing.Bill
    baseline_bill: pricing.Bill
    stats: InferenceStats
    order_collection: dict[str, Any]
    written: tuple[str, ...] = field(default=())
    blocks_resumed: int = 0
    """Blocks of inference taken from the journal of an interrupted run (``resume=True``)."""
    timings: dict[str, float] = field(default_factory=dict)
    """Wall time per stage, seconds: ``inputs`` (checkpoint, AOI, scenes, grid), ``inference``
    (decode, tile and networks, overlapped), ``orders`` (selection, consolidation, pricing, GeoJSON
    built), ``outputs`` (files written). Kept out of the summary, so outputs stay byte-identical."""


def _journal_folder(
    journal: PathLike | None, out: Path | str | None, *, resume: bool, cluster: str | int | None
) -> Path | None:
    """Where the inference journal lives: ``journal``, else beside a file ``out``; ``None`` for no journal."""
    if cluster is not None:
        if resume or journal is not None:
            raise ConfigError("--resume/--journal work in a single process: drop --workers/--dask to resume a plan")
        return None
    if journal is not None:
        j = Path(journal)
        if j.exists() and not j.is_dir():
            raise ConfigError(
                f"--journal {j} is a file: pass a folder for the plan's journal, e.g. --journal plan.journal"
            )
        return j
    if isinstance(out, Path):
        return default_folder(out)
    if resume:
        raise ConfigError(
            "--resume needs the interrupted run's journal: pass the same --out FILE as that run, or its --journal DIR"
        )
    return None


def plan(
    aoi_path: PathLike,
    scenes: Sequence[PathLike],
    *,
    progress: Callable[[int, int], None] | None = None,
    ask_cloudy: Callable[[dict[str, float]], str] | None = None,
    **options: Any,
) -> PlanResult:
    """Plan which HR patches to buy over the AOI in ``aoi_path`` from LR ``scenes`` and price them.

    ``model``: checkpoint (default: the shipped model). ``vendor``/``vendors_file``: pricing profile
    and catalogue (default: :data:`zoomplan.plan.orders.pricing.DEFAULT_VENDOR`, packaged catalogue).
    Selection: ``threshold`` on the policy probability (default 0.5, or 0 when ``budget_usd`` or
    ``max_fraction`` is given, so that those rank every AOI patch), optionally capped by
    ``budget_usd`` (USD) or ``max_fraction`` (share of the AOI's patches). ``bands``: the scene bands for
    the model's inputs (indexes or names, e.g. ``"B04,B03,B02"``; default: from band descriptions); ``sensor``: the
    card's sensor mapping (default: by data type). ``scenes`` are used in the order given: each tile
    comes from the first with valid data; ``scene_rule`` (how that order was chosen, e.g.
    :data:`zoomplan.geo.scenelist.RULE`) is recorded in the summary's parameters. ``cluster``: run inference on
    a Dask cluster (scheduler address, or a number of local worker processes; needs ``zoomplan[dask]``),
    with byte-identical results. Outputs: ``out`` (order GeoJSON, ``"-"`` for
    stdout), ``patches_out`` (patch GeoJSON), ``quicklook`` (PNG); written only if every step succeeds.
    Crash safety (:mod:`zoomplan.plan.inference.journal`): in a single process, each finished block of inference is
    journalled in ``journal`` (a folder; default: a hidden folder beside ``out`` when it is a file), and
    the journal is removed once the outputs are written. After a crash or a kill, the same call with
    ``resume=True`` takes the finished blocks from it and plans only the rest; the outputs are
    byte-identical to an uninterrupted run's. ``PlanResult.blocks_resumed`` says how many were reused.
    ``threads``: torch intra-op threads for the networks (default
    :func:`~zoomplan.plan.inference.infer.default_threads`: every core on CPU; 1 on a machine busy with other work).
    ``force``: plan a scene whose values look like garbage (:mod:`zoomplan.geo.values`); the override
    is recorded in the summary (``value_checks_overridden``).
    Clouds (:mod:`zoomplan.plan.selection.clouds`): ``cloud_masks``, the k-th for the k-th scene (as grouped: the
    band files of one product are one scene), win over the masks the products carry
    (:func:`zoomplan.geo.products.clouds.find_cloud_mask`); ``cloudy`` ``"buy"`` (``None``: the default, buy),
    ``"skip"`` or ``"ask"``: then ``ask_cloudy(counts)`` (counts of
    :func:`~zoomplan.plan.inference.blocks.count_cloudy`, read before inference) returns ``"buy"`` or
    ``"skip"``, or raises; without it ``"ask"`` raises a one-line ConfigError with the counts.
    Raises :class:`~zoomplan.errors.ZoomplanError` subclasses with one-line messages.

    ``options`` are the fields of :class:`~zoomplan.plan.request.PlanRequest` (the keyword names above): the
    request is made and validated once, then :func:`run` runs it.
    """
    return run(PlanRequest.of(aoi_path, scenes, **options), progress=progress, ask_cloudy=ask_cloudy)


def run(
    request: PlanRequest,
    *,
    progress: Callable[[int, int], None] | None = None,
    ask_cloudy: Callable[[dict[str, float]], str] | None = None,
) -> PlanResult:
    """Run a validated :class:`~zoomplan.plan.request.PlanRequest` (what :func:`plan` and ``zoomplan plan``
    do): ``progress(done, total)`` per block of inference; ``ask_cloudy`` as :func:`plan` says. The order
    file's summary records the request (``summary["request"]``)."""
    r = request
    # 1. Cheap checks first (the request checked itself when made): nothing is read or computed before these pass.
    clock = [time.perf_counter()]
    threshold = r.effective_threshold
    mode = r.cloudy or clouds_mod.DEFAULT
    targets = check_outputs({"--out": r.out, "--patches": r.patches_out, "--quicklook": r.quicklook})
    journal_dir = _journal_folder(r.journal, targets.get("--out"), resume=r.resume, cluster=r.cluster)
    band_spec = list(r.bands) if r.bands else None
    vendors = pricing.load_vendors(r.vendors_file)
    vp = pricing.get_vendor(r.vendor or pricing.DEFAULT_VENDOR, vendors)
    dev = resolve_device(r.device)
    n_threads = r.threads if r.threads is not None else default_threads(dev)
    ckpt = load_checkpoint(r.model)

    # 2-3. Inputs and the planning grid.
    inputs = open_plan_inputs(
        r.aoi, r.scenes, ckpt, bands=band_spec, sensor=r.sensor, force=r.force, cloud_masks=r.cloud_masks
    )
    aoi, used, covered, crs, why, grid = (
        inputs.aoi,
        inputs.used,
        inputs.covered,
        inputs.crs,
        inputs.crs_reason,
        inputs.grid,
    )
    chosen_by = f"--cloudy {mode}" + (" (default)" if r.cloudy is None else "")
    if mode == "ask" and any(
        s.cloud_mask is not None for s in used
    ):  # asked before the long step, from the masks alone
        counts: dict[str, float] = {
            **count_cloudy(used, aoi.geoms, grid, block_tiles=r.block_tiles),
            "patch_m": grid.patch_m,
        }
        if not counts["cloudy"]:
            mode, chosen_by = clouds_mod.DEFAULT, "--cloudy ask: no cloudy patch, nothing to ask"
        elif ask_cloudy is None:
            raise clouds_mod.undecided(counts)
        else:
            mode = clouds_mod.check_mode(ask_cloudy(counts))
            chosen_by = f"--cloudy ask: answered {mode}"
    clock.append(time.perf_counter())

    # 4. Inference (journalled block by block when there is a journal folder).
    book = None
    if journal_dir is not None:
        meta = journal_meta(
            version=__version__,
            model_sha256=file_sha256(ckpt.path),
            aoi_wkb=[shapely.to_wkb(g) for g in aoi.geoms],
            aoi_ids=list(aoi.ids),
            scenes=used,
            grid={
                "crs": crs.to_wkt(),
                "tile_m": grid.tile_m,
                "patch_grid": list(grid.patch_grid),
                "lr_size_px": grid.lr_size_px,
            },
            block_tiles=r.block_tiles,
            n_blocks=count_blocks(aoi.geoms, grid, r.block_tiles),
            batch_size=r.batch_size,
            device=str(dev),
            threads=n_threads,
            min_valid=MIN_VALID,
            cloudy_share=CLOUDY_SHARE if any(s.cloud_mask is not None for s in used) else None,
        )
        book = BlockJournal.open(journal_dir, meta, resume=r.resume)
        if book.resumed:
            log.info("resuming: %d of %d blocks already planned in %s", book.resumed, book.n_blocks, journal_dir)
    try:
        if r.cluster is None:
            inf = infer_patches(
                ckpt,
                used,
                aoi.geoms,
                grid,
                dev,
                batch_size=r.batch_size,
                block_tiles=r.block_tiles,
                progress=progress,
                journal=book,
                threads=n_threads,
            )
        else:  # the same blocks on Dask workers, merged into the same table (zoomplan.plan.inference.distributed)
            from zoomplan.plan.inference.distributed import infer_on_cluster

            inf = infer_on_cluster(
                r.cluster,
                ckpt.path,
                used,
                aoi.geoms,
                grid,
                dev,
                batch_size=r.batch_size,
                block_tiles=r.block_tiles,
                threads=r.threads,
            )
        table, stats = inf.table, inf.stats
        clock.append(time.perf_counter())
        if stats.tiles_planned == 0:
            raise InputError(
                f"no AOI tile has valid data in the scenes ({stats.tiles_nodata} mostly nodata, "
                f"{stats.tiles_outside} outside): pass a scene with data over the AOI"
            )

        # 5. Selection, orders, pricing, over the AOI's part inside the scenes (baseline: that part bought whole).
        geoms = inside_scenes(list(aoi.geoms), inputs.cover)
        ranked, exclude = clouds_mod.selection_table(
            table, mode
        )  # cloudy patches: bought or skipped, whatever the policy says
        chosen = select.select(
            ranked,
            geoms,
            vp,
            threshold=threshold,
            budget_usd=r.budget_usd,
            max_fraction=r.max_fraction,
            exclude=exclude,
        )
        selected = np.asarray(chosen.selected, dtype=bool)
        planned = orders_mod.plan_orders(table, selected, geoms, vp)
        order_list = list(planned.orders)
        plan_bill = pricing.bill(order_list, vp)
        base_bill = orders_mod.baseline_cost(geoms, vp, crs)
        summary = plan_summary(
            aoi=aoi,
            aoi_path=r.aoi,
            table=table,
            selected=selected,
            stats=stats,
            covered=covered,
            ckpt=ckpt,
            scenes=used,
            crs=crs,
            crs_why=why,
            grid=grid,
            costs=pricing.cost_summary(plan_bill, base_bill, vp, orders=order_list),
            version=__version__,
            params={
                "threshold": threshold,
                "budget_usd": r.budget_usd,
                "max_fraction": r.max_fraction,
                "vendor": vp.name,
                "vendors_file": str(r.vendors_file) if r.vendors_file is not None else None,
                "device": stats.device,
                "bands": band_spec,
                "sensor": used[0].sensor.name,
            },
        )
        summary["request"] = r.record()  # what was asked, as given (parameters: what was used)
        clipped = any(a is not b for a, b in zip(geoms, aoi.geoms))
        summary["order_rules"] = planned.rules  # what the buyer's rules did (overlaps, crumbs, holes, width)
        summary["baseline_scope"] = (
            "the AOI's part inside the scenes, bought whole" if clipped else "the whole AOI, bought whole"
        )
        if r.force:  # --force: the value checks it overrode (zoomplan.geo.values)
            summary["parameters"]["force"] = True
            summary["value_checks_overridden"] = [
                {"scene": c.scene_id, "check": c.message} for c in inputs.value_checks if c.message
            ]
        if table.cloud is not None:  # a scene had a cloud mask (zoomplan.plan.selection.clouds)
            summary["clouds"] = clouds_mod.report(table, selected, clouds_mod.mask_names(used), mode, chosen_by)
            summary["parameters"]["cloudy"] = mode
        if r.scene_rule is not None:  # how overlapping scenes were ordered (zoomplan.geo.scenelist)
            summary["parameters"]["scene_rule"] = r.scene_rule
        if chosen.dropped is not None:  # under a budget: the patches left out for their value per USD, and why
            summary["dropped"] = chosen.report()
        fc = export.order_feature_collection(
            order_list, summary, crs, aoi_ids=list(aoi.ids), max_vertices=vp.max_vertices
        )
        clock.append(time.perf_counter())

        # 6. Outputs: staged, then renamed into place together.
        staging = Staging()
        written: list[str] = []
        o = targets.get("--out")
        try:
            if isinstance(o, Path):
                export.write_geojson(fc, staging.path(o))
            pp = targets.get("--patches")
            if isinstance(pp, Path):
                export.write_geojson(export.patches_feature_collection(table, selected), staging.path(pp))
            ql = targets.get("--quicklook")
            if isinstance(ql, Path):
                quicklook_mod.render(
                    used[0].source or used[0].path,
                    table,
                    selected,
                    order_list,
                    list(aoi.geoms),
                    crs,
                    summary,
                    staging.path(ql),
                    bands=used[0].band_indexes,
                )
            written = staging.commit()
        except BaseException:
            staging.abort()
            raise
        if o == "-":
            export.write_geojson(fc, "-")
            sys.stdout.flush()
            written.append("-")
    except ZoomplanError:  # bad input found after inference started: a rerun needs other inputs, so no journal to keep
        if book is not None:
            book.remove()
        raise
    if book is not None:  # every output is in place: the journal has done its job
        book.remove()
    clock.append(time.perf_counter())
    timings = {k: b - a for k, a, b in zip(("inputs", "inference", "orders", "outputs"), clock[:-1], clock[1:])}
    return PlanResult(
        summary=summary,
        table=table,
        selected=selected,
        orders=order_list,
        aoi=aoi,
        plan_bill=plan_bill,
        baseline_bill=base_bill,
        stats=stats,
        order_collection=fc,
        written=tuple(written),
        blocks_resumed=inf.blocks_resumed,
        timings=timings,
    )
