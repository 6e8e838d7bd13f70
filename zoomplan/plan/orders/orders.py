"""Orders: selected patches consolidated into polygons a vendor sells, billed as the vendor bills.

Per AOI feature (holes filled: vendors sell polygons without holes), on the PatchTable's patch grid:
:func:`zoomplan.plan.orders.consolidate.search` builds a family of candidate plans, makes each orderable under
the vendor's rules and bills it exactly; :func:`build_orders` keeps the cheapest, or the whole feature
(:func:`whole_aoi_orders`) when that costs no more or every patch of the feature is selected. The
family: (a) one order per patch, (b) the union of the patches, (c) the bounding box of the selection,
closings of the union at several sizes and shapes, and the whole feature.

Guarantee (a heuristic with a bound, tested with hypothesis): each order is a valid, hole-free Polygon
(MultiPolygon only for vendors that allow it) with at most ``max_vertices`` vertices, at least
``min_width_m`` wide except where the AOI itself is narrower (``width_ok`` False), billed
max(area, min_order_km2) x price; no two orders overlap (:mod:`zoomplan.plan.orders.disjoint`; within a
feature and across features, the whole-feature baseline included); together the orders cover every
selected patch's part inside its AOI feature, crumbs aside (:mod:`zoomplan.plan.orders.crumbs`); an order
around a hole of its feature is split around it where that bills less (:mod:`zoomplan.plan.orders.holes`);
orders lie inside the feature (holes filled) unless ``inside_aoi`` is False; and each feature's bill
is at most that of (a), (b), (c) and of ordering the feature whole, each made orderable the same way
(:func:`orders_with_references` prices them), so plan <= baseline. It is not a global optimum.
Areas are km^2 on the WGS84 ellipsoid (:mod:`zoomplan.plan.orders.area`), what a vendor measures of the
polygon written in lon/lat; money USD. :func:`plan_orders` also reports what each rule did. Each order
is a :class:`~zoomplan.plan.orders.pricing.Order`, made by :func:`~zoomplan.plan.orders.pricing.make_orders`.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import shapely
from pyproj import CRS
from shapely.geometry.base import BaseGeometry

from zoomplan.errors import GeometryError, InputError
from zoomplan.plan.orders import consolidate, disjoint, holes
from zoomplan.plan.orders.area import Measure, check_metres
from zoomplan.plan.orders.crumbs import report as report_crumbs
from zoomplan.plan.orders.morphology import patch_mask_polygons
from zoomplan.plan.orders.orderable import Candidate, orderable
from zoomplan.plan.orders.polygons import assign, fill_holes, is_wide, n_vertices, polygons, rep_points
from zoomplan.plan.orders.pricing import Bill, Order, VendorProfile, bill, make_orders
from zoomplan.plan.types import PatchTable

__all__ = [
    "Order",
    "baseline_cost",
    "build_orders",
    "component_orders",
    "fill_holes",
    "is_wide",
    "n_vertices",
    "orders_with_references",
    "patch_mask_polygons",
    "whole_aoi_orders",
]

log = logging.getLogger(__name__)


def _check_aoi(g: BaseGeometry, i: int) -> BaseGeometry:
    if g is None or g.is_empty or not polygons(g):
        raise GeometryError(f"AOI feature {i} is empty or not polygonal; give Polygon or MultiPolygon features")
    if not g.is_valid:
        raise GeometryError(
            f"AOI feature {i} is not a valid polygon ({shapely.is_valid_reason(g)}); "
            "repair it (zoomplan.geo.aoi reads and repairs AOIs)"
        )
    return fill_holes(g)


def _whole(
    aoi_geom: BaseGeometry,
    aoi_index: int,
    vendor: VendorProfile,
    measure: Measure,
    table: PatchTable | None = None,
    patches: np.ndarray | None = None,
) -> tuple[Candidate, list[dict[str, Any]]]:
    """AOI feature ``aoi_index`` bought whole, orderable (vertex limit, packing, no overlaps), with its
    holes respected (:mod:`zoomplan.plan.orders.holes`); and the holes report rows. The geometry never
    depends on ``table`` and ``patches``, which only share the feature's patches among its orders."""
    filled = _check_aoi(aoi_geom, aoi_index)
    pieces = sorted(polygons(filled), key=lambda p: (-p.bounds[3], p.bounds[0]))
    if table is not None and patches is not None and len(pieces) == 1:
        members = [np.asarray(patches)]
    elif table is not None and patches is not None and len(patches):
        members = _members_of(table, np.asarray(patches), pieces)
    else:
        members = [np.zeros(0, np.int64) for _ in pieces]
    c = orderable(pieces, members, filled, vendor, _t0(filled), "whole", measure=measure)
    assert c is not None
    share = (lambda m, parts: _members_of(table, m, parts)) if table is not None else None  # noqa: E731
    return holes.respect_holes(c.drawn(), aoi_geom, vendor, measure, share)


def _t0(g: BaseGeometry) -> float:
    """The first tolerance (metres) of fitting shapes around ``g`` to a vertex limit."""
    x0, y0, x1, y1 = g.bounds
    return max(1e-5 * math.hypot(x1 - x0, y1 - y0), 0.01)


def whole_aoi_orders(
    aoi_geom: BaseGeometry,
    aoi_index: int,
    vendor: VendorProfile,
    crs: CRS,
    *,
    table: PatchTable | None = None,
    patches: np.ndarray | None = None,
) -> list[Order]:
    """Orders that buy AOI feature ``aoi_index`` whole (the baseline): vertex limit, one order per
    polygon, or MultiPolygon orders of at most ``max_vertices`` vertices where the vendor accepts them
    (:func:`zoomplan.plan.orders.orderable.orderable`), holes filled or split around, whichever bills less
    (:mod:`zoomplan.plan.orders.holes`). ``aoi_geom`` in the projected ``crs`` (metres); areas ellipsoidal
    (:mod:`zoomplan.plan.orders.area`). ``table`` and ``patches`` (indices of the feature's patches) only
    fill in ``n_patches``, ``mean_probability``, classes and ids; the geometry and bill never depend on them.
    """
    check_metres(crs)
    measure = Measure(crs)
    c, _ = _whole(aoi_geom, aoi_index, vendor, measure, table, patches)
    return make_orders(c.geoms, c.members, c.inside, aoi_index, vendor, table, True, measure)


def _check_inputs(table: PatchTable, selected: np.ndarray, aoi_geoms: Sequence[BaseGeometry]) -> np.ndarray:
    check_metres(table.crs)
    selected = np.asarray(selected)
    if selected.shape != (len(table),) or selected.dtype != bool:
        raise InputError(
            f"selection must be a boolean array of length {len(table)}; found {selected.dtype} {selected.shape}; "
            "pass select_patches(...)'s result"
        )
    if len(table) and (table.aoi_index.min() < 0 or table.aoi_index.max() >= len(aoi_geoms)):
        raise InputError(
            f"patch table refers to AOI features 0..{int(table.aoi_index.max())} but {len(aoi_geoms)} were given; "
            "pass the AOI the table was built from"
        )
    return selected


def build_orders(
    table: PatchTable, selected: np.ndarray, aoi_geoms: Sequence[BaseGeometry], vendor: VendorProfile
) -> list[Order]:
    """Consolidate the selected patches into orderable polygons under ``vendor``'s rules.

    ``selected`` is a boolean array of ``len(table)``; ``aoi_geoms`` are the AOI features in
    ``table.crs`` (projected, metres), indexed by ``table.aoi_index``. Returns orders by AOI feature,
    north to south; ids are stable, ``a<feature>_r<row>_c<col>`` of the north-west-most patch an
    order serves (``a<feature>_aoi_...`` for a feature bought whole). No two orders overlap. See the
    module docstring for the algorithm and its guarantee; :func:`zoomplan.plan.orders.pricing.bill` prices the result.
    """
    return plan_orders(table, selected, aoi_geoms, vendor).orders


REFERENCES = ("per_patch", "union", "bbox", "whole")
"""The reference plans of :func:`orders_with_references`: (a), (b), (c) and the whole AOI."""


@dataclass(frozen=True)
class OrderPlan:
    """:func:`plan_orders`'s result: the orders, the USD bills of the reference plans (as
    :func:`orders_with_references`) and what the buyer's rules did (``rules``: JSON-ready, areas
    km^2), for the summary's ``order_rules``."""

    orders: list[Order]
    references: dict[str, float]
    rules: dict[str, Any]


def orders_with_references(
    table: PatchTable, selected: np.ndarray, aoi_geoms: Sequence[BaseGeometry], vendor: VendorProfile
) -> tuple[list[Order], dict[str, float]]:
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
    by every plan. Every reference is a plan whose orders do not overlap, billed on ellipsoidal areas
    as the orders are; crumbs are ordered by none (:mod:`zoomplan.plan.orders.crumbs`).
    """
    p = plan_orders(table, selected, aoi_geoms, vendor)
    return p.orders, p.references


def _members_of(table: PatchTable, m: np.ndarray, parts: Sequence[BaseGeometry]) -> list[np.ndarray]:
    """The patches ``m`` (table indices) split among ``parts`` by a point of each patch inside them
    (a patch whose point is in none goes to the largest part)."""
    if not m.size:
        return [m[:0] for _ in parts]
    b = table.bounds(m)
    where = assign(
        rep_points(shapely.box(b[:, 0], b[:, 1], b[:, 2], b[:, 3]), shapely.union_all(list(parts))), list(parts)
    )
    where[where < 0] = int(np.argmax([p.area for p in parts]))
    return [m[where == k] for k in range(len(parts))]


@dataclass
class _Chosen:
    """One feature's plan: its orders (drawn), whether it is the whole feature, its holes report rows."""

    aoi_index: int
    plan: Candidate
    whole: bool
    holes: list[dict[str, Any]]


def plan_orders(
    table: PatchTable, selected: np.ndarray, aoi_geoms: Sequence[BaseGeometry], vendor: VendorProfile
) -> OrderPlan:
    """Orders as :func:`build_orders` makes them, the reference bills (:func:`orders_with_references`)
    and what the buyer's rules did (``rules``, for the summary's ``order_rules``):

    - ``overlaps``: orders never bill an area twice: within a feature every plan's orders are disjoint
      (:func:`zoomplan.plan.orders.orderable.orderable`); orders of AOI features that overlap are settled the
      same way (merged where orderable, else cut), here, with the area the features' orders shared
      (bought twice before, ``shared_area_km2``); ``billed_twice_km2`` is what is still bought twice
      (0 but under a vertex limit far below the shipped profiles': :func:`zoomplan.plan.orders.disjoint.report`);
    - ``crumbs``: :func:`zoomplan.plan.orders.crumbs.report`;
    - ``holes``: :func:`zoomplan.plan.orders.holes.report`;
    - ``width``: the vendor's minimum width, and the orders narrower than it (where the AOI itself is
      narrower, along its outline) and why.
    """
    selected = _check_inputs(table, selected, aoi_geoms)
    measure = Measure(table.crs)
    refs = dict.fromkeys((*REFERENCES, "zoomplan"), 0.0)
    chosen: list[_Chosen] = []
    crumbs: list[np.ndarray] = []
    slivers = 0
    for i, g in enumerate(aoi_geoms):
        feat = np.nonzero(table.aoi_index == i)[0]
        sel = feat[selected[feat]]
        if not sel.size:
            continue
        whole, whole_rows = _whole(g, i, vendor, measure, table, feat)
        found = (
            consolidate.search(table, sel, _check_aoi(g, i), vendor, bound=whole.cost_usd, drawn=g)
            if sel.size < feat.size
            else None
        )
        if found is not None:
            crumbs.append(found.crumbs)
            slivers += found.slivers
            if found.best is None:
                continue  # no selected patch has area inside the feature, crumbs aside: nothing to buy
        for name, kind in zip(REFERENCES, ("per-patch", "union", "bbox", "whole")):
            refs[name] += found.costs.get(kind, whole.cost_usd) if found is not None else whole.cost_usd
        best, rows = (
            holes.respect_holes(found.best, g, vendor, measure, lambda m, parts: _members_of(table, m, parts))
            if found is not None and found.best is not None
            else (None, [])
        )
        if best is not None and best.cost_usd < whole.cost_usd:
            log.debug(
                "AOI feature %d: %s plan, USD %.2f (whole feature USD %.2f)",
                i,
                best.kind,
                best.cost_usd,
                whole.cost_usd,
            )
            chosen.append(_Chosen(i, best, False, rows))
        else:
            if found is not None:
                log.info(
                    "AOI feature %d: consolidated orders cost no less than the whole feature; ordering it whole", i
                )
            chosen.append(_Chosen(i, whole, True, whole_rows))
    orders, shared, settled = _across(chosen, table, aoi_geoms, vendor, measure)
    refs["zoomplan"] = sum(o.cost_usd for o in orders)
    narrow = [o.order_id for o in orders if not o.width_ok]
    rules = {
        "overlaps": disjoint.report([o.geometry for o in orders], shared, settled),
        "crumbs": report_crumbs(
            np.concatenate(crumbs) if crumbs else np.zeros(0, dtype=object), slivers, [o.geometry for o in orders]
        ),
        "holes": holes.report([{"aoi_index": c.aoi_index, **r} for c in chosen for r in c.holes]),
        "width": {
            "min_width_m": vendor.min_width_m,
            "orders_narrower": len(narrow),
            "order_ids": narrow[:20],
            "why": (
                "none: every order is at least the minimum width"
                if not narrow
                else "the AOI itself is narrower than the vendor's minimum width along its outline there "
                "(or a vertex limit forced the shape): such an order is what can be bought of that part; "
                "check it with the vendor"
            ),
        },
    }
    return OrderPlan(orders, refs, rules)


def _across(
    chosen: list[_Chosen], table: PatchTable, aoi_geoms: Sequence[BaseGeometry], vendor: VendorProfile, measure: Measure
) -> tuple[list[Order], float, int]:
    """The features' plans as orders, those of different features that overlap settled
    (:func:`zoomplan.plan.orders.disjoint.resolve`: merged, else cut, else fitted); an order merged from
    several features' is the first feature's. Returns (orders, area the features' orders shared in
    m^2, pairs settled)."""
    flat = [(k, c) for k, c in enumerate(chosen) for _ in c.plan.geoms]
    geoms = [g for c in chosen for g in c.plan.geoms]
    shared, settled = 0.0, 0
    if len(chosen) > 1 and disjoint.overlapping_pairs(geoms):
        shared = disjoint.disjoint_area_gap(geoms)
        within = shapely.union_all([_check_aoi(aoi_geoms[c.aoi_index], c.aoi_index) for c in chosen])
        members = [m for c in chosen for m in c.plan.members]
        inside = [b for c in chosen for b in c.plan.inside]
        geoms, members, inside, owner, settled = disjoint.resolve(
            geoms,
            members,
            inside,
            within,
            vendor,
            measure,
            _t0(within),
            share=lambda m, parts: _members_of(table, m, parts),
            owner=list(range(len(flat))),
        )
        groups: dict[int, list[int]] = {}
        for j, o in enumerate(owner):
            groups.setdefault(flat[o][0], []).append(j)
        chosen = [
            _Chosen(
                chosen[k].aoi_index,
                Candidate(
                    chosen[k].plan.kind, [geoms[j] for j in js], [members[j] for j in js], [inside[j] for j in js], 0.0
                ),
                chosen[k].whole,
                chosen[k].holes,
            )
            for k, js in sorted(groups.items())
        ]
    orders: list[Order] = []
    for c in chosen:
        orders.extend(
            make_orders(c.plan.geoms, c.plan.members, c.plan.inside, c.aoi_index, vendor, table, c.whole, measure)
        )
    return orders, shared, settled


def component_orders(
    table: PatchTable, selected: np.ndarray, aoi_geoms: Sequence[BaseGeometry], vendor: VendorProfile
) -> list[Order]:
    """The finest orderable plan: each polygon of the union of the selected patches of each feature
    (holes filled, grown to the minimum width, clipped to the feature, fitted to the vertex limit) an
    order of its own, never consolidated or packed (:func:`zoomplan.plan.orders.consolidate.components`);
    a feature whose every patch is selected is ordered whole. Inputs as :func:`build_orders`."""
    selected = _check_inputs(table, selected, aoi_geoms)
    measure = Measure(table.crs)
    orders: list[Order] = []
    for i, g in enumerate(aoi_geoms):
        feat = np.nonzero(table.aoi_index == i)[0]
        sel = feat[selected[feat]]
        if sel.size == feat.size and sel.size:
            orders.extend(whole_aoi_orders(g, i, vendor, table.crs, table=table, patches=feat))
        elif sel.size:
            c = consolidate.components(table, sel, _check_aoi(g, i), vendor, drawn=g)
            if c is not None:
                orders.extend(make_orders(c.geoms, c.members, c.inside, i, vendor, table, False, measure))
    return orders


def baseline_cost(aoi_geoms: Sequence[BaseGeometry], vendor: VendorProfile, crs: CRS) -> Bill:
    """Bill for buying every AOI feature whole from ``vendor`` (the baseline), USD.

    ``aoi_geoms`` are polygonal shapely geometries in the projected ``crs`` (metre units). Each feature
    becomes the order(s) :func:`zoomplan.plan.orders.orders.whole_aoi_orders` builds (holes filled or split
    around, whichever bills less; vertex limit; one polygon per order unless the vendor allows
    MultiPolygons; areas on the ellipsoid), billed like any plan. Features that overlap are each bought
    whole, so their shared area is in the baseline twice (a plan buys it once). An empty
    feature (one wholly outside the scenes, cut by :func:`zoomplan.plan.inputs.inside_scenes`) buys nothing.
    """
    orders = [
        o for i, g in enumerate(aoi_geoms) if g is None or not g.is_empty for o in whole_aoi_orders(g, i, vendor, crs)
    ]
    return bill(orders, vendor)
