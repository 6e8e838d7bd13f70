"""``budget()``: plan every region of a polygon layer at once and bill each region per vendor.

Order of work (as :func:`zoomplan.plan.pipeline.plan`: every check before any computation, outputs
staged and renamed into place together only when every step succeeded):

1. parameters, output paths, vendor catalogue and vendors, device, checkpoint;
2. regions and scenes (:func:`zoomplan.plan.inputs.open_plan_inputs`), regions grouped (``by``)
   and made disjoint (:mod:`zoomplan.plan.budget.regions`: an area shared by several regions belongs to the
   first in file order);
3. one streamed inference over every region that touches a scene (the regions' pieces are the AOI
   features of one plan; probabilities and the threshold selection do not depend on the vendor);
4. for each vendor: orders (:func:`zoomplan.plan.orders.orders.build_orders`), billed per region
   (:func:`zoomplan.plan.orders.pricing.bill`), against buying the region's part whole
   (:func:`zoomplan.plan.orders.orders.baseline_cost`);
5. outputs: CSV (one row per region, per-vendor columns, a TOTAL row), GeoPackage (layer ``budget``:
   the regions' billed parts in EPSG:4326 with the same columns; layer ``totals``: the TOTAL row),
   and a choropleth PNG of plan cost per km^2 over the LR scene.

Each region is ordered separately, so vendor minimums apply per region. A region outside every scene,
or with no valid LR data, is reported with its status and empty (NaN) figures and left out of the
totals; the totals are the sums of the rows that carry figures. Areas km^2, money USD (rounded to
cents per row, so a TOTAL is exactly the sum of its rows), lengths metres.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from zoomplan.device import resolve_device
from zoomplan.errors import ConfigError, InputError
from zoomplan.models.checkpoint import load_checkpoint
from zoomplan.plan.budget import outputs as budget_io
from zoomplan.plan.budget.regions import SLIVER_M2, DisjointRegion, disjoint_regions, group_regions
from zoomplan.plan.budget.result import (
    INSIDE,
    NODATA,
    OK,
    OUTSIDE,
    PARTLY,
    BudgetResult,
    RegionBudget,
    VendorCost,
    vendor_slug,
)
from zoomplan.plan.inference.infer import infer_patches
from zoomplan.plan.inputs import Staging, check_outputs, inside_scenes, open_plan_inputs, resolve_threshold
from zoomplan.plan.orders import pricing
from zoomplan.plan.orders.orders import baseline_cost, build_orders
from zoomplan.plan.selection import select
from zoomplan.plan.types import PatchTable, PathLike

log = logging.getLogger(__name__)


OVERLAP_RULE = (
    "regions that overlap are billed once: a shared area (and its patches) belongs to the first of them in file order"
)


def _check_targets(
    out_csv: PathLike | None, out_gpkg: PathLike | None, map_png: PathLike | None
) -> dict[str, Path | str]:
    csv_dash = out_csv is not None and os.fspath(out_csv) == "-"
    targets = check_outputs({"--csv": None if csv_dash else out_csv, "--gpkg": out_gpkg, "--map": map_png})
    m = targets.get("--map")
    if isinstance(m, Path) and m.suffix.lower() != ".png":
        raise ConfigError(f"--map {m} must end in .png: e.g. --map budget.png")
    g = targets.get("--gpkg")
    if isinstance(g, Path) and g.suffix.lower() != ".gpkg":
        raise ConfigError(f"--gpkg {g} must end in .gpkg: e.g. --gpkg budget.gpkg")
    if csv_dash:
        targets["--csv"] = "-"
    return targets


def _vendors(names: Sequence[str] | None, vendors_file: PathLike | None) -> list[pricing.VendorProfile]:
    catalogue = pricing.load_vendors(Path(vendors_file) if vendors_file is not None else None)
    chosen = [pricing.get_vendor(n, catalogue) for n in dict.fromkeys(names or catalogue)]
    slugs: dict[str, str] = {}
    for v in chosen:
        s = vendor_slug(v.name)
        if s in slugs:
            raise ConfigError(
                f"vendors {slugs[s]!r} and {v.name!r} give the same column name {s!r}: rename one of them in the "
                f"catalogue"
            )
        slugs[s] = v.name
    return chosen


def _tiles_per_region(table: PatchTable, region_of: np.ndarray, n: int) -> np.ndarray:
    """Planned tiles per region, each tile counted once: in the region holding most of its patches (ties: the first)."""
    if not len(table):
        return np.zeros(n, np.int64)
    reg = region_of[table.aoi_index]
    keys = np.stack([table.tile_row, table.tile_col, reg], axis=1)
    uniq, counts = np.unique(keys, axis=0, return_counts=True)
    order = np.lexsort((uniq[:, 2], -counts, uniq[:, 1], uniq[:, 0]))
    uniq = uniq[order]
    first = np.ones(len(uniq), bool)
    first[1:] = (uniq[1:, :2] != uniq[:-1, :2]).any(axis=1)
    return np.bincount(uniq[first, 2], minlength=n)


def _inside_area(boxes: np.ndarray, g: BaseGeometry) -> float:
    """Total area (m^2) of ``boxes`` inside ``g``."""
    if not len(boxes) or g.is_empty:
        return 0.0
    shapely.prepare(g)
    inside = shapely.contains_properly(g, boxes)
    area = float(shapely.area(boxes[inside]).sum())
    edge = boxes[~inside]
    return area + (float(shapely.area(shapely.intersection(edge, g)).sum()) if len(edge) else 0.0)


def _overlap_text(regions: Sequence[DisjointRegion], i: int) -> str:
    """Where region ``i``'s shared areas went: ``<km2> billed to <earlier>`` / ``<km2> shared with <later>, kept
    here``."""
    d = regions[i]
    out = []
    for j, _ in d.shared:
        other = regions[j]
        a = (
            d.region.geometry.intersection(other.part).area
            if j < i
            else d.part.intersection(other.region.geometry).area
        )
        if a > SLIVER_M2:
            out.append(
                f"{a / 1e6:.4f} km2 billed to {other.region.key}"
                if j < i
                else f"{a / 1e6:.4f} km2 shared with {other.region.key}, kept here"
            )
    return "; ".join(out)


def _status(d: DisjointRegion, covered_m2: float, n_patches: int) -> str:
    if d.part.is_empty:
        return INSIDE
    if covered_m2 <= 0:
        return OUTSIDE
    if n_patches == 0:
        return NODATA
    return PARTLY if covered_m2 < 0.999 * d.part.area else OK


def budget(
    regions_path: PathLike,
    lr_paths: Sequence[PathLike],
    *,
    by: str | None = None,
    vendors: Sequence[str] | None = None,
    vendors_file: PathLike | None = None,
    model: PathLike | None = None,
    threshold: float | None = None,
    device: str = "auto",
    out_csv: PathLike | None = None,
    out_gpkg: PathLike | None = None,
    map_png: PathLike | None = None,
    bands: Sequence[str] | str | None = None,
    sensor: str | None = None,
    batch_size: int = 512,
    block_tiles: int = 64,
    progress: Callable[[int, int], None] | None = None,
) -> BudgetResult:
    """Plan each region of ``regions_path`` from LR scenes ``lr_paths`` and price it under each vendor.

    ``by``: the attribute naming each region (features sharing a value are merged into one region;
    default: one region per feature, named by its ``id``-like field or feature id). ``vendors``: profile
    names (default: every profile of the catalogue, ``vendors_file`` or the packaged one; the first
    colours the map). ``threshold``: buy patches whose policy probability is above it (default 0.5).
    ``model``, ``device``, ``bands``, ``sensor``, ``batch_size``, ``block_tiles``: as
    :func:`zoomplan.plan.pipeline.plan`. Outputs ``out_csv`` (``"-"``: stdout), ``out_gpkg``,
    ``map_png``: written only if every step succeeds. See the module docstring for the rules; raises
    :class:`~zoomplan.errors.ZoomplanError` subclasses with one-line messages.
    """
    # 1. Cheap checks first.
    thr = resolve_threshold(threshold, None, None)
    if not thr >= 0.0:
        raise ConfigError(
            f"--threshold {thr} is negative: pass a probability such as 0.5 (0 buys every patch, above 1 none)"
        )
    if not lr_paths:
        raise InputError("no LR scene given: pass --lr SCENE (a Sentinel-2 GeoTIFF, COG or JP2) at least once")
    if batch_size <= 0 or block_tiles <= 0:
        raise ConfigError("batch_size and block_tiles must be positive integers")
    targets = _check_targets(out_csv, out_gpkg, map_png)
    band_spec = (
        [b.strip() for b in bands.split(",") if b.strip()]
        if isinstance(bands, str)
        else (list(bands) if bands else None)
    )
    profiles = _vendors(vendors, vendors_file)
    dev = resolve_device(device)
    ckpt = load_checkpoint(model)

    # 2. Regions, scenes, the overlap rule.
    inp = open_plan_inputs(regions_path, lr_paths, ckpt, bands=band_spec, sensor=sensor)
    regions = disjoint_regions(group_regions(inp.aoi, by))
    cover = inp.cover
    covered = [float(d.part.intersection(cover).area) if not d.part.is_empty else 0.0 for d in regions]

    # 3. One inference over the pieces of every region that touches a scene.
    pieces: list[BaseGeometry] = []
    owner: list[int] = []
    for i, d in enumerate(regions):
        if covered[i] > 0:
            pieces.extend(d.pieces)
            owner.extend([i] * len(d.pieces))
    region_of = np.asarray(owner, np.int64)
    inf = infer_patches(
        ckpt, inp.used, pieces, inp.grid, dev, batch_size=batch_size, block_tiles=block_tiles, progress=progress
    )
    table, stats = inf.table, inf.stats
    if stats.tiles_planned == 0:
        raise InputError(
            f"no tile of any region has valid data in the scenes ({stats.tiles_nodata} mostly nodata, "
            f"{stats.tiles_outside} outside): pass a scene with data over the regions"
        )
    selected = np.asarray(select.select_patches(table, pieces, profiles[0], threshold=thr), dtype=bool)
    reg = region_of[table.aoi_index] if len(table) else np.zeros(0, np.int64)
    n_total = np.bincount(reg, minlength=len(regions))
    n_sel = np.bincount(reg[selected], minlength=len(regions))
    tiles = _tiles_per_region(table, region_of, len(regions))
    b = table.bounds()
    by_reg = np.argsort(reg, kind="stable")
    boxes = np.split(
        shapely.box(b[by_reg, 0], b[by_reg, 1], b[by_reg, 2], b[by_reg, 3]), np.cumsum(n_total)[:-1]
    )  # per region

    # 4. Orders and bills per vendor, per region, over the regions' parts inside the scenes (as plan()).
    inside = inside_scenes(pieces, cover)
    statuses = [_status(d, covered[i], int(n_total[i])) for i, d in enumerate(regions)]
    costs: list[dict[str, VendorCost]] = [{} for _ in regions]
    for vp in profiles:
        by_region: dict[int, list[Any]] = {}
        for o in build_orders(table, selected, inside, vp):
            by_region.setdefault(int(region_of[o.aoi_index]), []).append(o)
        for i, d in enumerate(regions):
            if statuses[i] == INSIDE:
                costs[i][vp.name] = VendorCost(0, 0.0, 0.0)
            elif statuses[i] in (OK, PARTLY):
                plan_bill = pricing.bill(by_region.get(i, []), vp)
                base = baseline_cost(inside_scenes(list(d.pieces), cover), vp, inp.crs)
                costs[i][vp.name] = VendorCost(
                    plan_bill.n_orders, round(plan_bill.cost_usd, 2), round(base.cost_usd, 2)
                )

    rows = []
    for i, d in enumerate(regions):
        area = d.part.area
        rows.append(
            RegionBudget(
                region=d.region.key,
                name=d.region.name,
                status=statuses[i],
                region_km2=round(d.region.geometry.area / 1e6, 6),
                area_km2=round(area / 1e6, 6),
                overlap_km2=round(d.overlap_m2 / 1e6, 6),
                overlap_with=_overlap_text(regions, i),
                covered_fraction=round(covered[i] / area, 4) if area > 0 else math.nan,
                planned_fraction=round(min(1.0, _inside_area(boxes[i], d.part) / area), 4) if area > 0 else math.nan,
                tiles=int(tiles[i]),
                patches_total=int(n_total[i]),
                patches_selected=int(n_sel[i]),
                costs=costs[i],
                geometry=d.part,
            )
        )
    result = BudgetResult(
        rows=rows,
        vendors=tuple(v.name for v in profiles),
        notes=tuple(_notes(rows, regions, profiles)),
        crs=inp.crs,
        threshold=thr,
        table=table,
        selected=selected,
        stats=stats,
    )
    for r in rows:
        if not r.counted:
            log.warning("region %r: %s; reported without figures and left out of the totals", r.region, r.status)

    # 5. Outputs, staged and renamed into place together.

    staging = Staging()
    try:
        c = targets.get("--csv")
        if isinstance(c, Path):
            budget_io.write_csv(result, staging.path(c))
        g = targets.get("--gpkg")
        if isinstance(g, Path):
            budget_io.write_gpkg(result, staging.path(g))
        m = targets.get("--map")
        if isinstance(m, Path):
            budget_io.render_map(
                result, inp.used[0].source or inp.used[0].path, staging.path(m), bands=inp.used[0].band_indexes
            )
        written = staging.commit()
    except BaseException:
        staging.abort()
        raise
    if targets.get("--csv") == "-":
        budget_io.write_csv(result, "-")
        written.append("-")
    return replace(result, written=tuple(written))


def _few(names: Sequence[str], k: int = 4) -> str:
    return ", ".join(names[:k]) + (f" and {len(names) - k} more" if len(names) > k else "")


def _notes(
    rows: Sequence[RegionBudget], regions: Sequence[DisjointRegion], profiles: Sequence[pricing.VendorProfile]
) -> list[str]:
    """What a reader of the table must know: the overlap rule, rows left out, cuts, minimums, missing data."""
    notes = []
    if any(d.shared for d in regions):
        notes.append(
            f"{OVERLAP_RULE}; each region is billed for its remaining part (area_km2) and overlap_with says where its "
            f"shared areas went"
        )
    else:
        notes.append("no regions overlap")
    left = [r for r in rows if not r.counted]
    if left:
        notes.append(
            "not in the totals (no figures): "
            + ", ".join(f"{r.region} ({r.status})" for r in left)
            + "; pass --lr scenes with data over them"
        )
    for d in regions:
        if d.cut:
            notes.append(
                f"{d.region.key} encloses other regions: it is ordered as {len(d.pieces)} hole-free pieces so they "
                f"are not bought twice"
            )
    counted = [r for r in rows if r.counted and r.area_km2 > 0]
    minimums = [
        f"{v.name} {v.min_order_km2:g} km2 ({sum(r.area_km2 < v.min_order_km2 for r in counted)} regions below it)"
        for v in profiles
        if any(r.area_km2 < v.min_order_km2 for r in counted)
    ]
    if minimums:
        notes.append("each region is ordered separately, so minimum orders apply per region: " + ", ".join(minimums))
    for r in counted:
        if r.planned_fraction < 0.9 * r.covered_fraction:
            notes.append(
                f"{r.region}: only {100 * r.planned_fraction:.0f}% of its area has valid LR data; its baseline still "
                f"prices all of it"
            )
    return notes
