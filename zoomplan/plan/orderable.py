"""Orderable plans: pieces made into the orders a vendor accepts, and billed exactly.

Pieces are hole-free Polygons in the planning CRS (metres). A piece over the vendor's vertex limit is
simplified outwards (:func:`~zoomplan.plan.polygons.fit_vertices`); where the vendor accepts
MultiPolygons, consecutive pieces are packed into MultiPolygon orders of at most ``max_vertices``
vertices. The bill is the vendor's: the sum over orders of max(area, min_order_km2) x price (USD,
planar km^2). Used by :mod:`zoomplan.plan.consolidate` and :mod:`zoomplan.plan.orders`.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from zoomplan.plan.polygons import fit_vertices
from zoomplan.plan.pricing import VendorProfile


FIT_THREADS = os.cpu_count() or 1
"""Threads that fit pieces to the vertex limit side by side (GEOS releases the GIL; the results are the
same as one by one: each piece is fitted alone). On 2 cores the 4x benchmark's consolidation runs
1.12-1.14x faster than with one thread, the 1x one 0.99-1.09x (benchmarks/plan_stages.py)."""


@dataclass(frozen=True)
class Candidate:
    """One orderable plan of one AOI feature: order geometries (planning CRS, metres), the table
    indices of the selected patches each order serves, whether each lies inside the feature (False
    only where the vertex limit forced a shape beyond it), and the bill in USD."""

    kind: str
    geoms: list[BaseGeometry]
    members: list[np.ndarray]
    inside: list[bool]
    cost_usd: float


def bill_usd(areas_m2: np.ndarray, vendor: VendorProfile) -> float:
    """USD bill of orders of ``areas_m2`` (m^2): sum of max(area, minimum) x price, 0 for no area."""
    a = np.asarray(areas_m2, np.float64) * 1e-6
    a = a[a > 0]
    return float(np.maximum(a, vendor.min_order_km2).sum() * vendor.price_per_km2)


def orderable(pieces: list[Polygon], members: list[np.ndarray], within: BaseGeometry, vendor: VendorProfile, t0: float,
              kind: str, *, pack: bool = True, bound: float = math.inf) -> Candidate | None:
    """Hole-free pieces (in this order) as orders under ``vendor``'s vertex and MultiPolygon rules.

    A piece over ``max_vertices`` is fitted alone (:func:`fit_vertices`, from ``t0`` metres, clipped to
    ``within`` when possible). With ``pack`` and a vendor that accepts MultiPolygons, consecutive
    pieces are packed into orders of at most ``max_vertices`` vertices; if that bills more than one
    order could (max(total area, minimum)), one fitted MultiPolygon of every piece is also tried.
    ``bound`` (USD): None as soon as the bill is sure to exceed it (fitting only grows pieces, so
    unpacked pieces bill at least sum(max(area, minimum)) x price of the pieces as fitted so far), which
    spares fitting a plan that cannot be chosen; the default never returns None.
    """
    if not pieces:
        return Candidate(kind, [], [], [], 0.0)
    arr = shapely.simplify(np.asarray(pieces, dtype=object), 0.0)  # no collinear vertices, as fit_vertices expects
    nv = shapely.get_num_coordinates(arr) - 1
    limit = vendor.max_vertices
    geoms: list[BaseGeometry] = list(arr)
    inside = [True] * len(geoms)
    over = nv > limit
    packs = pack and vendor.allows_multipolygon and len(geoms) > 1
    areas = shapely.area(arr) if math.isfinite(bound) else None
    if areas is not None and bill_usd(np.array([areas.sum()]) if packs else areas, vendor) > bound:
        return None
    todo = np.nonzero(over)[0].tolist()
    if todo:
        with ThreadPoolExecutor(max_workers=max(1, min(FIT_THREADS, len(todo)))) as pool:
            fitted = pool.map(lambda j: fit_vertices(geoms[j], within, limit, t0, True), todo)  # results in submission order
            for j, (g, ins) in zip(todo, fitted):
                geoms[j], inside[j] = g, ins
                if areas is not None and not packs:
                    areas[j] = g.area
                    if bill_usd(areas, vendor) > bound:
                        pool.shutdown(wait=False, cancel_futures=True)
                        return None
    if not packs:
        return Candidate(kind, geoms, list(members), inside, bill_usd(shapely.area(np.asarray(geoms, dtype=object)), vendor))
    out_g: list[BaseGeometry] = []
    out_m: list[np.ndarray] = []
    out_i: list[bool] = []
    group: list[int] = []
    used = 0

    def flush() -> None:
        if group:
            parts = [geoms[j] for j in group]
            g = parts[0] if len(parts) == 1 else MultiPolygon(parts)
            if not g.is_valid:  # pieces of distinct components only touch at corners; never expected
                g = shapely.union_all(parts)
            out_g.append(g)
            out_m.append(np.concatenate([members[j] for j in group]))
            out_i.append(True)
            group.clear()

    for j in range(len(geoms)):
        if over[j]:  # fitted alone: it may overlap its neighbours, so it is an order of its own
            out_g.append(geoms[j])
            out_m.append(members[j])
            out_i.append(inside[j])
            continue
        if used + nv[j] > limit:
            flush()
            used = 0
        group.append(j)
        used += int(nv[j])
    flush()
    cost = bill_usd(shapely.area(np.asarray(out_g, dtype=object)), vendor)
    total = float(shapely.area(arr).sum())
    if len(out_g) > 1 and cost > bill_usd(np.array([total]), vendor) * (1 + 1e-12) and nv.sum() <= 20 * limit:
        g, ins = fit_vertices(shapely.simplify(shapely.union_all(arr), 0.0), within, limit, t0, False)
        one = bill_usd(np.array([g.area]), vendor)
        if one < cost:
            return Candidate(kind, [g], [np.concatenate(list(members))], [ins], one)
    return Candidate(kind, out_g, out_m, out_i, cost)
