"""Orders: selected patches consolidated into polygons a vendor sells, billed as the vendor bills.

Per AOI feature (holes filled, then respected by :mod:`zoomplan.plan.holes`), on the PatchTable's patch grid:
:func:`zoomplan.plan.consolidate.search` builds a family of candidate plans, makes each orderable under
the vendor's rules and bills it exactly; :func:`build_orders` keeps the cheapest, or the whole feature
(:func:`whole_aoi_orders`) when that costs no more or every patch of the feature is selected. The
family: (a) one order per patch, (b) the union of the patches, (c) the bounding box of the selection,
closings of the union at several sizes and shapes, and the whole feature.

Guarantee (a heuristic with a bound, tested with hypothesis): each order is a valid, hole-free Polygon
(MultiPolygon only for vendors that allow it) with at most ``max_vertices`` vertices, at least
``min_width_m`` wide except where the AOI itself is narrower (``width_ok`` False), billed
max(area, min_order_km2) x price; together the orders cover every selected patch's part inside its
AOI feature (slivers aside); they lie inside the feature (holes filled) unless ``inside_aoi`` is False; and each
feature's bill is at most that of (a), (b), (c) and of ordering the feature whole, each made orderable
the same way. Then the buyer rules: no two orders overlap (:mod:`zoomplan.plan.disjoint`), slivers
are not ordered for themselves (:mod:`zoomplan.plan.slivers`), and an order around a hole is split
around it where that bills less than filling it (:mod:`zoomplan.plan.holes`); the whole-feature plan
gets the same rules (:func:`orders_with_references` prices them), so plan <= baseline. It is not a
global optimum.
Areas are planar in the planning CRS (UTM: within ~0.1% of the true area near the central meridian),
km^2; money USD.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import rasterio.features
import shapely
from affine import Affine
from pyproj import CRS
from shapely.geometry import MultiPolygon, Polygon, shape
from shapely.geometry.base import BaseGeometry

from zoomplan.errors import GeometryError, InputError
from zoomplan.plan import consolidate, disjoint, holes, slivers
from zoomplan.plan.orderable import Candidate, bill_usd, orderable
from zoomplan.plan.polygons import assign, fill_holes, is_wide, n_vertices, polygons, rep_points
from zoomplan.plan.pricing import VendorProfile, billed_km2
from zoomplan.plan.types import PatchTable

__all__ = ["Order", "OrderPlan", "build_orders", "component_orders", "fill_holes", "is_wide", "n_vertices", "orders_with_references", "patch_mask_polygons", "plan_orders", "whole_aoi_orders"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Order:
    """One polygon (or MultiPolygon, where the vendor allows it) bought from one vendor.

    ``geometry`` is in the planning CRS (metres); areas km^2; money USD. ``n_patches`` and
    ``mean_probability`` describe the table patches the order serves (NaN without patches), whose
    table indices are ``patches``.
    """

    order_id: str
    geometry: BaseGeometry
    area_km2: float
    billed_km2: float
    cost_usd: float
    n_patches: int
    mean_probability: float
    aoi_index: int
    dominant_classes: tuple[str, ...]
    vendor: str
    product: str
    price_per_km2: float
    whole_aoi: bool = False  # the whole AOI feature is bought (threshold 0, or cheaper than a partial order)
    width_ok: bool = True  # at least min_width_m wide everywhere (False: the AOI is narrower than the rule)
    inside_aoi: bool = True  # False only when the vertex limit forced a shape beyond the AOI
    patches: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64), compare=False, repr=False)
    """Table indices of the patches the order serves (``n_patches`` of them)."""


# ---------------------------------------------------------------- orders from pieces


def _check_metres(crs: CRS) -> None:
    """Orders are built and measured in a projected CRS with metre units (the planning CRS, UTM)."""
    if not crs.is_projected:
        raise GeometryError(f"orders need a projected CRS in metres; found {crs.name!r}; reproject the AOI and table to UTM")
    f = crs.axis_info[0].unit_conversion_factor if crs.axis_info else 1.0
    if abs(f - 1.0) > 1e-9:
        raise GeometryError(f"orders need a CRS in metres; {crs.name!r} uses {crs.axis_info[0].unit_name}; reproject to UTM")


def _classes(table: PatchTable, idx: np.ndarray, top: int = 3) -> tuple[str, ...]:
    counts = Counter(table.tile_class[idx].tolist())
    names = table.class_names
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    return tuple(names[c] if 0 <= c < len(names) else str(c) for c, _ in ranked)


def _make_orders(
    geoms: list[BaseGeometry], members: list[np.ndarray], inside: list[bool], aoi_index: int, vendor: VendorProfile,
    table: PatchTable | None, whole: bool,
) -> list[Order]:
    out: list[Order] = []
    seen: Counter[str] = Counter()
    for g, m, ins in zip(geoms, members, inside):
        area = g.area * 1e-6
        billed = billed_km2(area, vendor)
        if table is not None and m.size:
            r = int(table.row[m].min())
            where = f"r{r}_c{int(table.col[m][table.row[m] == r].min())}"
            mean_p = float(np.nanmean(table.prob[m].astype(np.float64))) if np.isfinite(table.prob[m]).any() else float("nan")
            classes = _classes(table, m)
        else:
            where, mean_p, classes = f"x{int(round(g.bounds[0]))}_y{int(round(g.bounds[3]))}", float("nan"), ()
        oid = f"a{aoi_index}_{'aoi_' if whole else ''}{where}"
        seen[oid] += 1
        if seen[oid] > 1:
            oid = f"{oid}_{seen[oid]}"
        out.append(Order(
            order_id=oid, geometry=g, area_km2=area, billed_km2=billed, cost_usd=billed * vendor.price_per_km2,
            n_patches=int(m.size), mean_probability=mean_p, aoi_index=aoi_index, dominant_classes=classes,
            vendor=vendor.name, product=vendor.product, price_per_km2=vendor.price_per_km2, whole_aoi=whole,
            width_ok=is_wide(g, vendor.min_width_m), inside_aoi=ins, patches=np.asarray(m, np.int64),
        ))
    return out


def _check_aoi(g: BaseGeometry, i: int) -> BaseGeometry:
    if g is None or g.is_empty or not polygons(g):
        raise GeometryError(f"AOI feature {i} is empty or not polygonal; give Polygon or MultiPolygon features")
    if not g.is_valid:
        raise GeometryError(f"AOI feature {i} is not a valid polygon ({shapely.is_valid_reason(g)}); repair it (zoomplan.geo.aoi reads and repairs AOIs)")
    return fill_holes(g)


def _whole(aoi_geom: BaseGeometry, aoi_index: int, vendor: VendorProfile, table: PatchTable | None,
           patches: np.ndarray | None) -> Candidate:
    filled = _check_aoi(aoi_geom, aoi_index)
    pieces = sorted(polygons(filled), key=lambda p: (-p.bounds[3], p.bounds[0]))
    if table is not None and patches is not None and len(pieces) == 1:
        members = [np.asarray(patches)]
    elif table is not None and patches is not None and len(patches):
        b = table.bounds(patches)
        where = assign(rep_points(shapely.box(b[:, 0], b[:, 1], b[:, 2], b[:, 3]), filled), pieces)
        members = [patches[where == j] for j in range(len(pieces))]
    else:
        members = [np.zeros(0, np.int64) for _ in pieces]
    x0, y0, x1, y1 = filled.bounds
    return orderable(pieces, members, filled, vendor, max(1e-5 * math.hypot(x1 - x0, y1 - y0), 0.01), "whole")


def whole_aoi_orders(aoi_geom: BaseGeometry, aoi_index: int, vendor: VendorProfile, crs: CRS, *,
                     table: PatchTable | None = None, patches: np.ndarray | None = None) -> list[Order]:
    """Orders that buy AOI feature ``aoi_index`` whole (the baseline): holes filled, vertex limit,
    one order per polygon, or MultiPolygon orders of at most ``max_vertices`` vertices where the vendor
    accepts them (:func:`zoomplan.plan.consolidate.orderable`). ``aoi_geom`` in the projected ``crs``
    (metres). ``table`` and ``patches`` (indices of the feature's patches) only fill in ``n_patches``,
    ``mean_probability``, classes and ids; the geometry and bill never depend on them.
    """
    _check_metres(crs)
    filled = _check_aoi(aoi_geom, aoi_index)
    x0, y0, x1, y1 = filled.bounds
    c = _disjoint(_whole(aoi_geom, aoi_index, vendor, table, patches), filled, vendor, max(1e-5 * math.hypot(x1 - x0, y1 - y0), 0.01))[0]
    c = holes.respect_holes(c, aoi_geom, vendor, (lambda m, parts: _members_of(table, m, parts)) if table is not None else None)[0]
    return _make_orders(c.geoms, c.members, c.inside, aoi_index, vendor, table, True)


def _check_inputs(table: PatchTable, selected: np.ndarray, aoi_geoms: Sequence[BaseGeometry]) -> np.ndarray:
    _check_metres(table.crs)
    selected = np.asarray(selected)
    if selected.shape != (len(table),) or selected.dtype != bool:
        raise InputError(f"selection must be a boolean array of length {len(table)}; found {selected.dtype} {selected.shape}; pass select_patches(...)'s result")
    if len(table) and (table.aoi_index.min() < 0 or table.aoi_index.max() >= len(aoi_geoms)):
        raise InputError(f"patch table refers to AOI features 0..{int(table.aoi_index.max())} but {len(aoi_geoms)} were given; pass the AOI the table was built from")
    return selected


def build_orders(table: PatchTable, selected: np.ndarray, aoi_geoms: Sequence[BaseGeometry], vendor: VendorProfile) -> list[Order]:
    """Consolidate the selected patches into orderable polygons under ``vendor``'s rules.

    ``selected`` is a boolean array of ``len(table)``; ``aoi_geoms`` are the AOI features in
    ``table.crs`` (projected, metres), indexed by ``table.aoi_index``. Returns orders by AOI feature,
    north to south; ids are stable, ``a<feature>_r<row>_c<col>`` of the north-west-most patch an
    order serves (``a<feature>_aoi_...`` for a feature bought whole). See the module
    docstring for the algorithm and its guarantee; :func:`zoomplan.plan.pricing.bill` prices the result.
    """
    return orders_with_references(table, selected, aoi_geoms, vendor)[0]


REFERENCES = ("per_patch", "union", "bbox", "whole")
"""The reference plans of :func:`orders_with_references`: (a), (b), (c) and the whole AOI."""


@dataclass(frozen=True)
class OrderPlan:
    """:func:`plan_orders`'s result: the orders, the USD bills of the reference plans (as
    :func:`orders_with_references`) and what the buyer rules changed (``rules``: JSON-ready; areas
    km^2), for the summary."""

    orders: list[Order]
    references: dict[str, float]
    rules: dict[str, Any]


def orders_with_references(table: PatchTable, selected: np.ndarray, aoi_geoms: Sequence[BaseGeometry],
                           vendor: VendorProfile) -> tuple[list[Order], dict[str, float]]:
    """:func:`build_orders`'s orders, and the USD bills of the reference plans of the same selection,
    summed over AOI features (each at least the orders' bill, ``zoomplan``).

    ``per_patch`` (a): each selected patch's part inside its feature ordered alone, max(area, minimum)
    x price; where a width rule makes such orders larger than the minimum and this bound would beat
    every other plan, their orderable bill (squares of the minimum width). ``union`` (b): the union of
    the patches, holes filled, grown to the minimum width, clipped to the feature, simplified outwards
    over the vertex limit, one order per polygon or MultiPolygon orders where the vendor accepts them
    (the union as it is when it already holds the width, if cheaper). ``bbox`` (c): each feature's
    selection's bounding box, clipped to it, made orderable the same way. ``whole``: every feature
    that has a selected patch, bought whole. A feature whose every patch is selected is bought whole
    by every plan.
    """
    p = plan_orders(table, selected, aoi_geoms, vendor)
    return p.orders, p.references


def _disjoint(c: Candidate, within: BaseGeometry, vendor: VendorProfile, t0: float) -> tuple[Candidate, int]:
    """``c`` with overlapping orders merged (or cut): :func:`zoomplan.plan.disjoint.merge_overlaps`."""
    g, m, ins, n = disjoint.merge_overlaps(c.geoms, c.members, c.inside, within, vendor, t0)
    if not n:
        return c, 0
    return Candidate(c.kind, g, m, ins, bill_usd(np.array([x.area for x in g]), vendor)), n


def _members_of(table: PatchTable, m: np.ndarray, parts: Sequence[BaseGeometry]) -> list[np.ndarray]:
    """The patches ``m`` (table indices) split among ``parts`` by a point of each patch inside them."""
    if not m.size:
        return [m[:0] for _ in parts]
    b = table.bounds(m)
    where = assign(rep_points(shapely.box(b[:, 0], b[:, 1], b[:, 2], b[:, 3]), shapely.union_all(list(parts))), list(parts))
    return [m[where == k] for k in range(len(parts))]


def _sliver_report(crumbs: list[np.ndarray], orders: Sequence[Order]) -> dict[str, Any]:
    """:func:`zoomplan.plan.slivers.report` of the slivers' parts ``crumbs`` (m^2) against the final orders."""
    parts = np.concatenate(crumbs) if crumbs else np.zeros(0, dtype=object)
    area = shapely.area(parts) if parts.size else np.zeros(0)
    got = slivers.covered_m2(parts, [o.geometry for o in orders])
    return slivers.report(parts.size, float(area.sum()), int((got >= area * (1 - 1e-6)).sum()), float(got.sum()))


def plan_orders(table: PatchTable, selected: np.ndarray, aoi_geoms: Sequence[BaseGeometry], vendor: VendorProfile) -> OrderPlan:
    """Orders as :func:`build_orders` makes them, the reference bills (:func:`orders_with_references`)
    and the buyer rules' report: ``overlaps_merged`` (pairs of overlapping orders of one feature merged
    or cut), ``shared_area_km2`` (area of orders of a later AOI feature that an earlier feature's orders
    already buy, removed: bought once), ``slivers`` (:func:`zoomplan.plan.slivers.report`: selected
    patches with under 10% of their area inside their feature, not ordered for themselves, and which of
    them a neighbouring order covers anyway). Order polygons never overlap (zero-area touching only)."""
    selected = _check_inputs(table, selected, aoi_geoms)
    refs = dict.fromkeys((*REFERENCES, "zoomplan"), 0.0)
    plans: list[tuple[int, Candidate, bool]] = []
    merged = 0
    hole_rows: list[dict[str, Any]] = []
    crumbs: list[np.ndarray] = []  # the slivers' parts inside their features (zoomplan.plan.slivers)
    for i, g in enumerate(aoi_geoms):
        feat = np.nonzero(table.aoi_index == i)[0]
        sel = feat[selected[feat]]
        if not sel.size:
            continue
        filled = _check_aoi(g, i)
        x0, y0, x1, y1 = filled.bounds
        t0 = max(1e-5 * math.hypot(x1 - x0, y1 - y0), 0.01)
        share = lambda m, parts: _members_of(table, m, parts)  # noqa: E731
        whole, n0 = _disjoint(_whole(g, i, vendor, table, feat), filled, vendor, t0)
        whole, hw = holes.respect_holes(whole, g, vendor, share)
        found = consolidate.search(table, sel, filled, vendor, bound=whole.cost_usd) if sel.size < feat.size else None
        if found is not None and found.slivers.size:
            b = table.bounds(found.slivers)
            crumbs.append(shapely.intersection(shapely.box(b[:, 0], b[:, 1], b[:, 2], b[:, 3]), filled))
        if found is not None and found.best is None:
            continue  # no selected patch has area inside the feature: nothing to buy
        best, n1, hb = None, 0, []
        if found is not None and found.best is not None:
            best, n1 = _disjoint(found.best, filled, vendor, t0)
            best, hb = holes.respect_holes(best, g, vendor, share)
        for name, kind in zip(REFERENCES, ("per-patch", "union", "bbox", "whole")):
            refs[name] += found.costs.get(kind, whole.cost_usd) if found is not None else whole.cost_usd
        if best is not None and best.cost_usd < whole.cost_usd:
            log.debug("AOI feature %d: %s plan, USD %.2f (whole feature USD %.2f)", i, best.kind, best.cost_usd, whole.cost_usd)
            plans.append((i, best, False))
            merged += n1
            hole_rows.extend({"aoi_index": i, **r} for r in hb)
        else:
            if found is not None:
                log.info("AOI feature %d: consolidated orders cost no less than the whole feature; ordering it whole", i)
            plans.append((i, whole, True))
            merged += n0
            hole_rows.extend({"aoi_index": i, **r} for r in hw)
    flat = [(i, k) for i, c, _ in plans for k in range(len(c.geoms))]
    parts, shared = disjoint.cut_across([c.geoms[k] for (_, c, _) in plans for k in range(len(c.geoms))], [i for i, _ in flat], vendor)
    orders: list[Order] = []
    at = 0
    for i, c, whole_flag in plans:
        geoms: list[BaseGeometry] = []
        members: list[np.ndarray] = []
        inside: list[bool] = []
        for k in range(len(c.geoms)):
            got = parts[at + k]
            if len(got) == 1 and got[0].equals(c.geoms[k]) or not got and c.geoms[k].is_empty:
                geoms.append(c.geoms[k]); members.append(c.members[k]); inside.append(c.inside[k])
                continue
            pieces: list[BaseGeometry] = list(got)
            if len(got) > 1 and vendor.allows_multipolygon and n_vertices(MultiPolygon(got)) <= vendor.max_vertices:
                pieces = [MultiPolygon(got)]
            geoms.extend(pieces)
            members.extend(_members_of(table, c.members[k], pieces))
            inside.extend([c.inside[k]] * len(pieces))
        at += len(c.geoms)
        part = _make_orders(geoms, members, inside, i, vendor, table, whole_flag)
        orders.extend(part)
        refs["zoomplan"] += sum(o.cost_usd for o in part)
    rules = {"overlaps_merged": merged, "shared_area_km2": round(shared * 1e-6, 6), "slivers": _sliver_report(crumbs, orders),
             "holes": holes.report(hole_rows)}
    return OrderPlan(orders, refs, rules)


def component_orders(table: PatchTable, selected: np.ndarray, aoi_geoms: Sequence[BaseGeometry], vendor: VendorProfile) -> list[Order]:
    """The finest orderable plan: each polygon of the union of the selected patches of each feature
    (holes filled, grown to the minimum width, clipped to the feature, fitted to the vertex limit) an
    order of its own, never consolidated or packed (:func:`zoomplan.plan.consolidate.components`);
    a feature whose every patch is selected is ordered whole. Inputs as :func:`build_orders`."""
    selected = _check_inputs(table, selected, aoi_geoms)
    orders: list[Order] = []
    for i, g in enumerate(aoi_geoms):
        feat = np.nonzero(table.aoi_index == i)[0]
        sel = feat[selected[feat]]
        if sel.size == feat.size and sel.size:
            orders.extend(whole_aoi_orders(g, i, vendor, table.crs, table=table, patches=feat))
        elif sel.size:
            c = consolidate.components(table, sel, _check_aoi(g, i), vendor)
            if c is not None:
                orders.extend(_make_orders(c.geoms, c.members, c.inside, i, vendor, table, False))
    return orders


def patch_mask_polygons(table: PatchTable, selected: np.ndarray) -> list[Polygon]:
    """The selected patches merged into polygons (4-connected, holes kept), in ``table.crs`` metres."""
    sel = np.nonzero(np.asarray(selected, bool))[0]
    if not sel.size:
        return []
    pm = float(table.patch_m)
    rows, cols = table.row[sel], table.col[sel]
    r0, c0 = int(rows.min()), int(cols.min())
    a = np.zeros((int(rows.max()) - r0 + 1, int(cols.max()) - c0 + 1), np.uint8)
    a[rows - r0, cols - c0] = 1
    transform = Affine(pm, 0.0, c0 * pm, 0.0, -pm, -r0 * pm)
    return [shape(g) for g, _ in rasterio.features.shapes(a, mask=a.astype(bool), connectivity=4, transform=transform)]
