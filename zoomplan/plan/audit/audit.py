"""``audit()``: what a model would buy over a labelled area, class by class, before money is spent.

An analyst with a few labelled polygons (or a label raster) runs the planner's policy over them and
sees, per class, how many HR patches it would select: does it buy the towns and skip the water?

How it reuses the planner (and why not :func:`zoomplan.plan.pipeline.plan` itself): ``plan()`` takes
an AOI file and goes on to consolidate, price and export orders, the costly half of a plan, which an
audit does not need. The audit runs the same first steps, with the same functions: the checkpoint
(:func:`~zoomplan.models.checkpoint.load_checkpoint`, the shipped model by default), the scenes
(:func:`~zoomplan.geo.scene.open_scene`), the planning CRS and grid
(:func:`~zoomplan.geo.grid.planning_crs` on the first scene and the labels' centroid,
:meth:`~zoomplan.geo.grid.PlanGrid.from_card`), the area reprojected
(:meth:`~zoomplan.geo.aoi.AOI.to_crs`) and the streamed inference
(:func:`~zoomplan.plan.inference.infer.infer_patches`), with the labelled area as the AOI's features: vector
labels are read by the planner's AOI reader, so ``zoomplan plan LABELS`` plans exactly the patch
table audited here (the tests check it). Nothing is written but the audit's own outputs.

Rules:

- The audited area is the labelled area (:mod:`zoomplan.plan.audit.labels`) inside the scenes; the
  planner's patch table over it is every 20 m patch that overlaps it in a tile with valid LR data.
- A patch belongs to the class under its **centre point** (planning CRS); patches whose centre has no
  label are planned but not counted.
- ``selected``: the planner's threshold rule (:mod:`zoomplan.plan.selection.select`): probability > threshold;
  a threshold <= 0 selects every patch, one >= 1 none.
- ``area_km2`` = patches x patch area (km^2, patch edge from the model card, e.g. 20 m -> 0.0004 km^2):
  a patch counts whole for the class under its centre.
- ``top_lr_class``: the LR classifier's most frequent class (the patch's tile class, the card's
  ``class_names``) over the class's patches, ties to the lower class index; ``top_lr_share`` its share.

Areas km^2, lengths metres; geometry in the planning CRS (projected, metres).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from zoomplan import __version__
from zoomplan.device import resolve_device
from zoomplan.errors import ConfigError, InputError
from zoomplan.geo.grid import PlanGrid, planning_crs
from zoomplan.geo.scene import Scene, open_scene
from zoomplan.models.checkpoint import load_checkpoint
from zoomplan.plan.audit import outputs as audit_io
from zoomplan.plan.audit.labels import Labels, parse_classes, read_labels
from zoomplan.plan.audit.rows import AuditResult, aggregate, selected_mask
from zoomplan.plan.inference.infer import infer_patches
from zoomplan.plan.inputs import crs_tag, file_sha256, resolve_threshold
from zoomplan.plan.types import PathLike

log = logging.getLogger(__name__)

AREA_RULE = "area_km2 = patches x patch area; a patch counts whole for the class under its centre point"
THRESHOLD_RULE = "selected: policy probability > threshold (threshold <= 0: every patch; >= 1: none), as zoomplan plan"
OUTPUT_NAMES = ("audit.md", "audit.json", "audit.png")


def _check_out_dir(out_dir: PathLike | None, png: bool) -> Path | None:
    if out_dir is None:
        if png:
            raise ConfigError("--png draws DIR/audit.png: pass --out DIR as well")
        return None
    d = Path(out_dir)
    first = next((a for a in [d, *d.parents] if a.exists()), None)
    if first is not None and not first.is_dir():
        raise ConfigError(f"--out {d}: {first} is a file, not a folder: pass a folder for audit.md and audit.json")
    for name in OUTPUT_NAMES:
        if (d / name).is_dir():
            raise ConfigError(f"--out {d}: {d / name} is a folder: remove it or choose another --out folder")
    return d


def _used_scenes(labels: Labels, area: Any, scenes: Sequence[Scene], grid: PlanGrid) -> list[Scene]:
    """The scenes whose footprint overlaps the labelled area (planning CRS), or an error."""
    fps = [s.footprint(grid.crs) for s in scenes]
    used = [s for s, fp in zip(scenes, fps) if fp.intersection(area).area > 0]
    if not used:
        lon, lat = labels.aoi.centroid_lonlat()
        names = ", ".join(str(s.path) for s in scenes)
        raise InputError(
            f"--labels {labels.path}: no labelled area overlaps the scenes (labels centred at {lon:.4f}, "
            f"{lat:.4f}; scenes {names}): pass labels inside the scenes, or --lr scenes that cover them"
        )
    for s in scenes:
        if s not in used:
            log.warning("scene %s does not overlap the labels; ignored", s.scene_id)
    return used


def audit(
    lr_paths: Sequence[PathLike],
    labels_path: PathLike,
    *,
    field: str | None = None,
    classes: str | Mapping[int, str] | None = None,
    model: PathLike | None = None,
    threshold: float | None = None,
    device: str = "auto",
    out_dir: PathLike | None = None,
    png: bool = False,
    bands: Sequence[str] | str | None = None,
    sensor: str | None = None,
    batch_size: int = 512,
    block_tiles: int = 64,
    threads: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> AuditResult:
    """Audit the policy of ``model`` (default: the shipped model) over the labels in ``labels_path``,
    planned from the LR scenes ``lr_paths`` (see the module docstring for the rules).

    ``labels_path``: a vector file of labelled (Multi)Polygons, any CRS, whose attribute ``field`` names
    each polygon's class; or a single-band integer GeoTIFF (``.tif``/``.tiff``) whose values are the
    classes, named by ``classes`` (``"1=water,2=land"`` or a mapping; default: the values as text).
    ``threshold``: selection threshold (default 0.5). ``device``, ``bands``, ``sensor``, ``batch_size``,
    ``block_tiles``, ``threads``, ``progress``: as :func:`zoomplan.plan.pipeline.plan`.
    ``out_dir``: write ``audit.md`` and ``audit.json`` there (and ``audit.png`` with ``png``), atomically,
    only when every step succeeded. Raises :class:`~zoomplan.errors.ZoomplanError` subclasses with
    one-line messages; nothing is written then.
    """
    # 1. Cheap checks first: nothing is read or computed before these pass.
    thr = resolve_threshold(threshold, None, None)
    if not thr >= 0.0:  # also NaN
        raise ConfigError(
            f"--threshold {thr} is negative: pass a probability such as 0.5 (0 selects every patch, above 1 none)"
        )
    if not lr_paths:
        raise InputError("no LR scene given: pass --lr SCENE (a Sentinel-2 GeoTIFF, COG or JP2) at least once")
    if batch_size <= 0 or block_tiles <= 0:
        raise ConfigError("batch_size and block_tiles must be positive integers")
    if threads is not None and threads <= 0:
        raise ConfigError(
            f"--threads must be a positive integer, got {threads}: pass 1 or more (default: every CPU core)"
        )
    out = _check_out_dir(out_dir, png)
    value_names = parse_classes(classes) if isinstance(classes, str) else dict(classes or {})
    if isinstance(bands, str):
        band_spec: list[str] | None = [b.strip() for b in bands.split(",") if b.strip()]
    else:
        band_spec = list(bands) if bands else None
    lp = Path(labels_path)
    dev = resolve_device(device)
    ckpt = load_checkpoint(model)

    # 2. Labels, scenes, planning CRS and grid (as zoomplan.plan.inputs.open_plan_inputs).
    labels = read_labels(lp, field, value_names)
    scenes = [open_scene(p, ckpt.card, bands=band_spec, sensor=sensor) for p in lr_paths]
    ids = [s.scene_id for s in scenes]
    if len(set(ids)) != len(ids):
        raise InputError(f"--lr lists the same scene name twice ({', '.join(ids)}): pass each scene once")
    lon, lat = labels.aoi.centroid_lonlat()
    crs, why = planning_crs(scenes[0].crs, lon, lat)
    grid = PlanGrid.from_card(crs, ckpt.card)
    aoi = labels.aoi.to_crs(crs)
    area = aoi.union()
    used = _used_scenes(labels, area, scenes, grid)

    # 3. The planner's inference over the labelled area.
    inf = infer_patches(
        ckpt,
        used,
        aoi.geoms,
        grid,
        dev,
        batch_size=batch_size,
        block_tiles=block_tiles,
        progress=progress,
        threads=threads,
    )
    table, stats = inf.table, inf.stats
    if stats.tiles_planned == 0:
        raise InputError(
            f"--labels {lp}: no labelled tile has valid data in the scenes ({stats.tiles_nodata} mostly "
            f"nodata, {stats.tiles_outside} outside): pass --lr scenes with data over the labels"
        )

    # 4. Each patch's class (under its centre), then the rows.
    b = table.bounds()
    patch_class, order = labels.classify((b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2, crs, aoi.geoms)
    n_labelled = int(sum(c is not None for c in patch_class))
    if n_labelled == 0:
        raise InputError(
            f"--labels {lp}: none of the {len(table)} planned patches has its centre on a label "
            f"(labelled areas narrower than a {grid.patch_m:g} m patch, or labels where the scenes have "
            "no data): pass larger labelled areas"
        )
    patch_km2 = grid.patch_m**2 / 1e6
    rows = aggregate(
        patch_class, table.prob, thr, patch_km2, lr_class=table.tile_class, lr_names=table.class_names, classes=order
    )
    digest = file_sha256(ckpt.path)
    params = {
        "zoomplan_version": __version__,
        "model": {
            "file": str(ckpt.path),
            "id": f"{ckpt.path.stem}-{digest[:12]}",
            "sha256": digest,
            "policy_stage": ckpt.deploy_stage,
        },
        "threshold": thr,
        "threshold_rule": THRESHOLD_RULE,
        "area_rule": AREA_RULE,
        "scenes": [str(s.path) for s in used],
        "labels": str(lp),
        "labels_kind": labels.kind,
        "labels_km2": float(area.area) / 1e6,
        "field": field,
        "classes": {str(k): v for k, v in value_names.items()} or None,
        "planning_crs": crs_tag(crs),
        "planning_crs_reason": why,
        "patch_m": grid.patch_m,
        "patch_area_km2": patch_km2,
        "patches_planned": len(table),
        "patches_labelled": n_labelled,
        "patches_unlabelled": len(table) - n_labelled,
        "tiles": {
            "total": stats.tiles_total,
            "planned": stats.tiles_planned,
            "skipped_nodata": stats.tiles_nodata,
            "outside_scenes": stats.tiles_outside,
        },
        "device": stats.device,
        "bands": band_spec,
        "sensor": used[0].sensor.name,
    }
    empty = [r.label for r in rows[:-1] if r.patches == 0]
    if empty:
        log.warning(
            "class(es) %s: no planned patch has its centre there (outside the scenes, on nodata, or narrower "
            "than a patch)",
            ", ".join(empty),
        )
    result = AuditResult(
        rows=tuple(rows),
        parameters=params,
        table=table,
        patch_class=patch_class,
        selected=selected_mask(table.prob, thr),
        stats=stats,
    )

    # 5. Outputs: every file rendered in memory first, then written together (zoomplan.atomic).
    if out is None:
        return result

    return replace(result, written=audit_io.write_outputs(result, out, png=png))
