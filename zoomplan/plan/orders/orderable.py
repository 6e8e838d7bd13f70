"""Orderable plans: pieces made into the orders a vendor accepts, and billed exactly.

Pieces are hole-free Polygons in the planning CRS (metres). A piece over the vendor's vertex limit is
simplified outwards (:func:`~zoomplan.plan.orders.polygons.fit_vertices`); pieces that then overlap are
settled (:func:`zoomplan.plan.orders.disjoint.resolve`: no area billed twice); where the vendor accepts
MultiPolygons, consecutive pieces are packed into MultiPolygon orders of at most ``max_vertices``
vertices. The bill is the vendor's: the sum over orders of max(area, min_order_km2) x price (USD,
km^2 as the caller's measure gives them: on the ellipsoid in the planner, :mod:`zoomplan.plan.orders.area`).
Used by :mod:`zoomplan.plan.orders.consolidate` and :mod:`zoomplan.plan.orders.orders`.
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

from zoomplan.plan.orders import disjoint
from zoomplan.plan.orders.polygons import fit_vertices
from zoomplan.plan.orders.pricing import VendorProfile

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

Measure = Callable[[Sequence[BaseGeometry]], np.ndarray]
"""Billed area (m^2) of each geometry (:class:`zoomplan.plan.orders.area.Measure`)."""


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
        cells = [
            c
            for g in self.geoms
            for c in ((g,) if isinstance(g, Cells) else g.parts if isinstance(g, _Pack) else ())
            if isinstance(c, Cells)
        ]
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


def _planar(geoms: Sequence[BaseGeometry]) -> np.ndarray:
    return shapely.area(np.asarray(list(geoms), dtype=object)) if len(geoms) else np.zeros(0)


def orderable(
    pieces: Sequence[Polygon | Cells],
    members: list[np.ndarray],
    within: BaseGeometry,
    vendor: VendorProfile,
    t0: float,
    kind: str,
    *,
    pack: bool = True,
    bound: float = math.inf,
    resolve: Resolve | None = None,
    measure: Measure | None = None,
) -> Candidate | None:
    """Hole-free pieces (in this order) as orders under ``vendor``'s vertex and MultiPolygon rules,
    pairwise disjoint (no area billed twice).

    A piece over ``max_vertices`` is fitted alone (:func:`fit_vertices`, from ``t0`` metres, clipped to
    ``within`` when possible). Pieces that then overlap (a fitted piece and its neighbours, or pieces
    given overlapping, such as squares of the minimum width around nearby patches) are merged, cut or
    fitted together by :func:`zoomplan.plan.orders.disjoint.resolve`. With ``pack`` and a vendor that accepts
    MultiPolygons, consecutive pieces are packed into orders of at most ``max_vertices`` vertices; if
    that bills more than one order could (max(total area, minimum)), one fitted MultiPolygon of every
    piece is also tried. ``measure`` gives the billed area (m^2) of geometries (default: planar; the
    planner bills ellipsoidal areas, :mod:`zoomplan.plan.orders.area`).
    ``bound`` (USD): None as soon as the bill is sure to exceed it before overlaps are settled
    (fitting only grows pieces, so unpacked pieces bill at least sum(max(area, minimum)) x price of
    the pieces as fitted so far), which spares fitting a plan that cannot be chosen; settling overlaps
    may only lower a bill, so this drops no plan that bills less than ``bound`` without overlaps; the
    default never returns None. Pieces may be :class:`Cells` (within the limit by construction, billed
    by their ``area``) when ``resolve`` draws them; the plan then keeps them undrawn (:meth:`Candidate.drawn`).
    """
    if not pieces:
        return Candidate(kind, [], [], [], 0.0)
    meter: Measure = measure if measure is not None else _planar
    geoms: list[BaseGeometry | Cells] = list(pieces)
    members = list(members)
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
        area0[real] = meter(arr)
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
    if todo:
        with ThreadPoolExecutor(max_workers=max(1, min(FIT_THREADS, len(todo)))) as pool:
            fitted = pool.map(
                lambda j: fit_vertices(geoms[j], within, limit, t0, True), todo
            )  # results in submission order
            for j, (g, ins) in zip(todo, fitted):
                geoms[j], inside[j] = g, ins
                if areas is not None and not packs:
                    areas[j] = meter([g])[0]
                    if bill_usd(areas, vendor) > bound:
                        pool.shutdown(wait=False, cancel_futures=True)
                        return None
    geoms, members, inside, lazy = _disjoint(geoms, members, inside, lazy, over, within, vendor, meter, t0, resolve)
    later = resolve if lazy.any() else None
    nv = np.array([g.nv if isinstance(g, Cells) else shapely.get_num_coordinates(g) - 1 for g in geoms], np.int64)
    area = np.array([g.area if isinstance(g, Cells) else 0.0 for g in geoms])
    drawn = np.nonzero(~lazy)[0]
    if drawn.size:
        area[drawn] = meter([geoms[j] for j in drawn])
    if not packs:
        return Candidate(kind, geoms, members, inside, bill_usd(area, vendor), resolve=later)
    out_g: list[BaseGeometry | _Pack] = []
    out_m: list[np.ndarray] = []
    out_i: list[bool] = []
    out_a: list[float] = []
    group: list[int] = []
    used = 0

    def flush() -> None:
        if group:
            parts = [geoms[j] for j in group]
            whole = not lazy[group].any()
            out_g.append(_multi(parts) if whole else _Pack(tuple(parts)) if len(parts) > 1 else parts[0])
            out_m.append(np.concatenate([members[j] for j in group]))
            out_i.append(all(inside[j] for j in group))
            out_a.append(float(area[group].sum()))  # as GEOS sums a MultiPolygon's parts
            group.clear()

    for j in range(len(geoms)):
        if used + nv[j] > limit:
            flush()
            used = 0
        group.append(j)
        used += int(nv[j])
    flush()
    cost = bill_usd(np.array(out_a), vendor)
    if len(out_g) > 1 and cost > bill_usd(np.array([area.sum()]), vendor) * (1 + 1e-12) and nv.sum() <= 20 * limit:
        at = [j for j, b in enumerate(base) if isinstance(b, Cells)]
        if at:
            for j, g in zip(at, resolve([base[j].key for j in at])):  # type: ignore[misc, union-attr]
                base[j] = g
        g, ins = fit_vertices(
            shapely.simplify(shapely.union_all(np.asarray(base, dtype=object)), 0.0), within, limit, t0, False
        )
        one = bill_usd(meter([g]), vendor)
        if one < cost:
            return Candidate(kind, [g], [np.concatenate(list(members))], [ins], one)
    return Candidate(kind, out_g, out_m, out_i, cost, resolve=later)


def _disjoint(
    geoms: list[BaseGeometry | Cells],
    members: list[np.ndarray],
    inside: list[bool],
    lazy: np.ndarray,
    fitted: np.ndarray,
    within: BaseGeometry,
    vendor: VendorProfile,
    meter: Measure,
    t0: float,
    resolve: Resolve | None,
) -> tuple[list[BaseGeometry | Cells], list[np.ndarray], list[bool], np.ndarray]:
    """The pieces with overlaps settled (:func:`zoomplan.plan.orders.disjoint.resolve`), in their order.

    Pieces known by their cells never overlap one another (components of one mask); one is drawn
    only where its bounds meet a fitted piece's, the only pieces that grew."""
    if fitted.any() and lazy.any():
        lz = np.nonzero(lazy)[0]
        boxes = shapely.box(*np.array([geoms[j].bounds for j in lz]).T)  # type: ignore[union-attr]
        grown = np.asarray([geoms[j] for j in np.nonzero(fitted)[0]], dtype=object)
        near = np.unique(shapely.STRtree(grown).query(boxes, predicate="intersects")[0])
        if near.size:
            keys = [geoms[lz[k]].key for k in near]  # type: ignore[union-attr]
            for k, g in zip(near, resolve(keys)):  # type: ignore[misc]
                geoms[lz[k]] = g
            lazy = lazy.copy()
            lazy[lz[near]] = False
    real = np.nonzero(~lazy)[0].tolist()
    if len(real) < 2:
        return geoms, members, inside, lazy
    g, m, ins, at, n = disjoint.resolve(
        [geoms[j] for j in real],
        [members[j] for j in real],
        [inside[j] for j in real],
        within,
        vendor,
        meter,
        t0,
        owner=real,
    )
    if not n:
        return geoms, members, inside, lazy  # (pieces drawn above stay drawn: lazy says so)
    rows = [(j, geoms[j], members[j], inside[j], True) for j in np.nonzero(lazy)[0].tolist()]
    rows += [(o, gg, mm, ii, False) for o, gg, mm, ii in zip(at, g, m, ins)]
    rows.sort(key=lambda r: r[0])  # stable: an order's pieces stay where it was
    return [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows], np.array([r[4] for r in rows], bool)
