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
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from zoomplan.plan.polygons import fit_vertices
from zoomplan.plan.pricing import VendorProfile


FIT_THREADS = os.cpu_count() or 1
"""Threads for consolidation's GEOS work: fitting pieces to the vertex limit side by side, and clipping
and simplifying arrays of pieces in chunks (:func:`threaded`). GEOS releases the GIL, and the results
are the same as on one thread: each piece is handled alone."""


def threaded(fn: Callable[..., np.ndarray], arr: np.ndarray, *args: object) -> np.ndarray:
    """``fn(arr, *args)`` for a vectorised shapely function, over ``FIT_THREADS`` contiguous chunks of
    ``arr`` in threads (GEOS releases the GIL): the same array as one call, element for element. Used
    to clip pieces to the AOI and to simplify them (``benchmarks/plan_stages.py`` times consolidation
    with ``FIT_THREADS`` threads against one)."""
    n = max(1, FIT_THREADS)
    if n == 1 or arr.size < 2 * n:
        return fn(arr, *args)
    with ThreadPoolExecutor(max_workers=n) as pool:
        return np.concatenate(list(pool.map(lambda a: fn(a, *args), np.array_split(arr, n))))


@dataclass(frozen=True)
class Cells:
    """A hole-free piece of a mask, known by its cells until its outline is needed (only the chosen
    plan's are drawn): ``area`` (m^2), ``nv`` vertices of its ring as GDAL traces it (no collinear ones,
    within the vertex limit: it needs no fitting), ``bounds`` (minx, miny, maxx, maxy, metres) and
    ``key``, which the plan's ``resolve`` draws."""

    area: float
    nv: int
    bounds: tuple[float, float, float, float]
    key: int


@dataclass(frozen=True)
class _Pack:
    """A MultiPolygon order of consecutive pieces, some not drawn yet."""

    parts: tuple[BaseGeometry | Cells, ...]


Resolve = Callable[[list[int]], list[Polygon]]
"""Draws pieces known by their cells: their keys -> their Polygons, in the same order."""


def _area(g: BaseGeometry | Cells | _Pack) -> float:
    if isinstance(g, Cells):
        return g.area
    if isinstance(g, _Pack):
        return sum(_area(p) for p in g.parts)  # as GEOS sums a MultiPolygon's parts
    return float(g.area)


def _multi(parts: Sequence[BaseGeometry]) -> BaseGeometry:
    g = parts[0] if len(parts) == 1 else MultiPolygon(list(parts))
    if not g.is_valid:  # pieces of distinct components only touch at corners; never expected
        g = shapely.union_all(list(parts))
    return g


@dataclass(frozen=True)
class Candidate:
    """One orderable plan of one AOI feature: order geometries (planning CRS, metres), the table
    indices of the selected patches each order serves, whether each lies inside the feature (False
    only where the vertex limit forced a shape beyond it), and the bill in USD.

    With ``resolve``, some orders are still :class:`Cells` (or packs of them): billed, not drawn;
    :meth:`drawn` draws them. Their areas are cell counts x cell area, which may differ from the drawn
    polygons' in the last bits, so such a bill is for comparing plans; orders are billed from geometry.
    """

    kind: str
    geoms: list[BaseGeometry]
    members: list[np.ndarray]
    inside: list[bool]
    cost_usd: float
    resolve: Resolve | None = field(default=None, compare=False, repr=False)

    def drawn(self) -> Candidate:
        """This plan with every order a geometry (pieces known by their cells drawn in one go)."""
        if self.resolve is None:
            return self
        cells = [c for g in self.geoms for c in ((g,) if isinstance(g, Cells) else g.parts if isinstance(g, _Pack) else ()) if isinstance(c, Cells)]
        got = dict(zip((c.key for c in cells), self.resolve([c.key for c in cells])))

        def draw(g: BaseGeometry | Cells) -> BaseGeometry:
            return got[g.key] if isinstance(g, Cells) else g

        geoms = [_multi([draw(p) for p in g.parts]) if isinstance(g, _Pack) else draw(g) for g in self.geoms]
        return Candidate(self.kind, geoms, self.members, self.inside, self.cost_usd)


def bill_usd(areas_m2: np.ndarray, vendor: VendorProfile) -> float:
    """USD bill of orders of ``areas_m2`` (m^2): sum of max(area, minimum) x price, 0 for no area."""
    a = np.asarray(areas_m2, np.float64) * 1e-6
    a = a[a > 0]
    return float(np.maximum(a, vendor.min_order_km2).sum() * vendor.price_per_km2)


def _collinear(arr: np.ndarray) -> np.ndarray:
    """Which polygons ``shapely.simplify(g, 0.0)`` may change: a hole, a repeated vertex or a vertex in
    line with its two neighbours (GEOS's point-to-segment numerator exactly 0), or fewer than 3 vertices.

    The others it returns as they are, and this test is far cheaper: GDAL's rings have no such vertex,
    and on the 4x benchmark's closings simplifying them cost more than clipping them to the AOI.
    """
    ext = shapely.get_exterior_ring(arr)
    xy, idx = shapely.get_coordinates(ext, return_index=True)
    n = np.bincount(idx, minlength=arr.size)
    bad = (n < 4) | (shapely.get_num_interior_rings(arr) > 0)
    keep = np.ones(len(xy), bool)
    keep[(np.cumsum(n) - 1)[n > 0]] = False  # the closing point
    p, ring = xy[keep], idx[keep]
    m = np.maximum(n - 1, 1)
    first = np.concatenate([[0], np.cumsum(n - (n > 0))[:-1]])
    pos = np.arange(len(p)) - first[ring]
    a = p[first[ring] + (pos - 1) % m[ring]]
    b = p[first[ring] + (pos + 1) % m[ring]]
    s = (a[:, 1] - p[:, 1]) * (b[:, 0] - a[:, 0]) - (a[:, 0] - p[:, 0]) * (b[:, 1] - a[:, 1])
    hit = (s == 0) | (p == a).all(axis=1) | (p == b).all(axis=1)
    return bad | (np.bincount(ring[hit], minlength=arr.size) > 0)


def orderable(pieces: Sequence[Polygon | Cells], members: list[np.ndarray], within: BaseGeometry, vendor: VendorProfile, t0: float,
              kind: str, *, pack: bool = True, bound: float = math.inf, resolve: Resolve | None = None) -> Candidate | None:
    """Hole-free pieces (in this order) as orders under ``vendor``'s vertex and MultiPolygon rules.

    A piece over ``max_vertices`` is fitted alone (:func:`fit_vertices`, from ``t0`` metres, clipped to
    ``within`` when possible). With ``pack`` and a vendor that accepts MultiPolygons, consecutive
    pieces are packed into orders of at most ``max_vertices`` vertices; if that bills more than one
    order could (max(total area, minimum)), one fitted MultiPolygon of every piece is also tried.
    ``bound`` (USD): None as soon as the bill is sure to exceed it (fitting only grows pieces, so
    unpacked pieces bill at least sum(max(area, minimum)) x price of the pieces as fitted so far), which
    spares fitting a plan that cannot be chosen; the default never returns None. Pieces may be
    :class:`Cells` (within the limit by construction) when ``resolve`` draws them; the plan then keeps
    them undrawn (:meth:`Candidate.drawn`).
    """
    if not pieces:
        return Candidate(kind, [], [], [], 0.0)
    geoms: list[BaseGeometry | Cells] = list(pieces)
    lazy = np.array([isinstance(p, Cells) for p in geoms])
    if lazy.any() and resolve is None:
        raise ValueError("pieces known by their cells need a resolve to draw them")
    nv = np.empty(len(geoms), np.int64)
    area0 = np.empty(len(geoms))
    real = np.nonzero(~lazy)[0].tolist()
    if real:
        arr = np.asarray([geoms[j] for j in real], dtype=object)
        dirty = _collinear(arr)
        arr[dirty] = threaded(shapely.simplify, arr[dirty], 0.0)  # no collinear vertices, as fit_vertices expects
        nv[real] = shapely.get_num_coordinates(arr) - 1
        area0[real] = shapely.area(arr)
        for j, g in zip(real, arr):
            geoms[j] = g
    for j in np.nonzero(lazy)[0].tolist():
        nv[j], area0[j] = geoms[j].nv, geoms[j].area  # type: ignore[union-attr]
    base = list(geoms)  # as given, simplified: what one MultiPolygon of every piece is fitted from
    limit = vendor.max_vertices
    inside = [True] * len(geoms)
    over = nv > limit
    if (over & lazy).any():
        raise ValueError("a piece known by its cells is over the vertex limit; draw it first")
    packs = pack and vendor.allows_multipolygon and len(geoms) > 1
    areas = area0.copy() if math.isfinite(bound) else None
    if areas is not None and bill_usd(np.array([areas.sum()]) if packs else areas, vendor) > bound:
        return None
    todo = np.nonzero(over)[0].tolist()
    fitted_area = area0.copy()
    if todo:
        with ThreadPoolExecutor(max_workers=max(1, min(FIT_THREADS, len(todo)))) as pool:
            fitted = pool.map(lambda j: fit_vertices(geoms[j], within, limit, t0, True), todo)  # results in submission order
            for j, (g, ins) in zip(todo, fitted):
                geoms[j], inside[j] = g, ins
                fitted_area[j] = g.area
                if areas is not None and not packs:
                    areas[j] = g.area
                    if bill_usd(areas, vendor) > bound:
                        pool.shutdown(wait=False, cancel_futures=True)
                        return None
    later = resolve if lazy.any() else None
    if not packs:
        return Candidate(kind, geoms, list(members), inside, bill_usd(fitted_area, vendor), resolve=later)
    out_g: list[BaseGeometry | _Pack] = []
    out_m: list[np.ndarray] = []
    out_i: list[bool] = []
    group: list[int] = []
    used = 0

    def flush() -> None:
        if group:
            parts = [geoms[j] for j in group]
            drawn = not lazy[group].any()
            out_g.append(_multi(parts) if drawn else _Pack(tuple(parts)) if len(parts) > 1 else parts[0])
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
    cost = bill_usd(np.array([_area(g) for g in out_g]), vendor)
    total = float(area0.sum())
    if len(out_g) > 1 and cost > bill_usd(np.array([total]), vendor) * (1 + 1e-12) and nv.sum() <= 20 * limit:
        if later is not None:
            at = np.nonzero(lazy)[0].tolist()
            for j, g in zip(at, later([base[j].key for j in at])):  # type: ignore[union-attr]
                base[j] = g
        g, ins = fit_vertices(shapely.simplify(shapely.union_all(np.asarray(base, dtype=object)), 0.0), within, limit, t0, False)
        one = bill_usd(np.array([g.area]), vendor)
        if one < cost:
            return Candidate(kind, [g], [np.concatenate(list(members))], [ins], one)
    return Candidate(kind, out_g, out_m, out_i, cost, resolve=later)
