"""No area billed twice: the orders of a plan made pairwise disjoint (they may touch, with zero area).

Pure functions on hole-free (Multi)Polygons in the planning CRS (projected, metres; areas m^2).
Orders overlap where a piece over the vertex limit was fitted outwards, where squares of the minimum
width around nearby patches overlap, or where orders of two AOI features that overlap meet. Each
cluster of overlapping orders (:func:`resolve`) is settled, cheapest first:

- merged into one order, its union (holes filled), where that is orderable (within the vertex limit,
  one Polygon unless the vendor accepts MultiPolygons, as wide as its parts): max(area(a | b), min)
  <= max(area(a), min) + max(area(b), min), so a merge never bills more;
- else, pair by pair, the cheapest of: merging the pair; cutting the later order by the earlier one,
  or the earlier by the later, where every piece left is orderable and, under a width rule, at least
  the minimum width wide (a cut keeps the width: it never leaves a sliver);
- else the pair's union fitted outwards to the vertex limit (:func:`~zoomplan.plan.orders.polygons.fit_vertices`),
  which leaves one order fewer each time, so the loop ends;
- even where every way to settle the pair costs more than billing the area they share twice (a union
  over the vertex limit fitted outwards adds more area than the overlap: on the whole real scene under
  clip-30cm, a 99 km^2 order at its 1,000 vertices and a 120 m square overlapping it by 60 x 60 m,
  whose cut would leave a piece narrower than the 100 m width): a plan never bills an area twice.
  What is still shared after the pairs are settled (only where the loop's bound runs out) is reported
  (``order_rules.overlaps``, :func:`report`).

Every geometry returned is valid, hole-free (a cut that would leave a hole is split into hole-free
pieces, :func:`split_holes`) and without parts under :data:`MIN_PART_M2`.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from zoomplan.plan.orders.polygons import fill_holes, fit_vertices, is_wide, n_vertices, polygons
from zoomplan.plan.orders.pricing import VendorProfile

MIN_PART_M2 = 1e-3
"""A part of a cut under this area (m^2, a few cm by a few cm) is rounding noise, not an order: dropped."""

OVERLAP_M2 = 1e-3
"""Two orders overlapping by at most this area (m^2) are taken as touching (rounding noise)."""

Measure = Callable[[Sequence[BaseGeometry]], np.ndarray]
"""Billed area (m^2) of each geometry (:class:`zoomplan.plan.orders.area.Measure`)."""

Share = Callable[[np.ndarray, Sequence[BaseGeometry]], list[np.ndarray]]
"""Splits an order's patches (table indices) among the pieces it is cut into."""


def clean(g: BaseGeometry | None, min_area: float = MIN_PART_M2) -> list[Polygon]:
    """The valid hole-free polygons of ``g`` with area > ``min_area`` (m^2): repaired with
    ``make_valid``, collinear vertices removed, holes split away (:func:`split_holes`)."""
    if g is None or g.is_empty:
        return []
    if not g.is_valid:
        g = shapely.make_valid(g)
    out: list[Polygon] = []
    for p in polygons(g, min_area):
        p = shapely.simplify(p, 0.0)
        for q in polygons(p if p.is_valid else shapely.make_valid(p), min_area):
            out.extend(split_holes(q, min_area))
    return out


def split_holes(p: Polygon, min_area: float = MIN_PART_M2) -> list[Polygon]:
    """``p`` cut into hole-free polygons covering exactly ``p`` (holes excluded): each hole is cut by
    the vertical line through a point inside it, which opens it on both sides; repeated until no
    piece has a hole. Pieces of at most ``min_area`` m^2 are dropped."""
    todo, out = [p], []
    while todo:
        q = todo.pop()
        if not q.interiors:
            if q.area > min_area:
                out.append(q)
            continue
        x = Polygon(q.interiors[0]).representative_point().x
        x0, y0, x1, y1 = q.bounds
        pad = 1.0 + (x1 - x0) + (y1 - y0)
        for half in (shapely.box(x0 - pad, y0 - pad, x, y1 + pad), shapely.box(x, y0 - pad, x1 + pad, y1 + pad)):
            cut = q.intersection(half)
            todo.extend(polygons(cut if cut.is_valid else shapely.make_valid(cut), min_area))
    return out


def as_geometry(parts: Sequence[Polygon]) -> BaseGeometry:
    """One Polygon, or a MultiPolygon of several (valid when the parts only touch at points)."""
    return parts[0] if len(parts) == 1 else MultiPolygon(list(parts))


def overlapping_pairs(geoms: Sequence[BaseGeometry]) -> list[tuple[int, int]]:
    """Index pairs (i < j) of geometries whose interiors overlap by more than :data:`OVERLAP_M2`."""
    if len(geoms) < 2:
        return []
    arr = np.asarray(list(geoms), dtype=object)
    a, b = shapely.STRtree(arr).query(arr, predicate="intersects")
    keep = a < b
    a, b = a[keep], b[keep]
    if not a.size:
        return []
    inner = ~shapely.touches(arr[a], arr[b])
    a, b = a[inner], b[inner]
    if not a.size:
        return []
    big = shapely.area(shapely.intersection(arr[a], arr[b])) > OVERLAP_M2
    return sorted(zip(a[big].tolist(), b[big].tolist()))


def disjoint_area_gap(geoms: Sequence[BaseGeometry]) -> float:
    """Sum of the areas minus the area of the union (m^2): 0 for pairwise disjoint geometries."""
    if not geoms:
        return 0.0
    arr = np.asarray(list(geoms), dtype=object)
    return float(shapely.area(arr).sum() - shapely.union_all(arr).area)


def report(geoms: Sequence[BaseGeometry], shared: float, settled: int) -> dict[str, Any]:
    """The summary's ``order_rules.overlaps`` (JSON-ready, km^2) for a plan's orders ``geoms``: the pairs
    of orders of different AOI features settled (``settled``), the area they shared (``shared``, m^2)
    and the area still billed twice (0 unless a vertex limit left no cheaper way to settle it), and why."""
    twice = disjoint_area_gap(geoms)
    twice = twice if twice > 1e-6 * max(sum(g.area for g in geoms), 1.0) else 0.0
    return {
        "rule": "no area is billed twice: orders that overlap are merged where the union is orderable "
        "and no dearer, else cut, else fitted together; orders of AOI features that overlap are settled "
        "the same way",
        "pairs_across_features": settled,
        "shared_area_km2": round(shared * 1e-6, 6),
        "billed_twice_km2": round(twice * 1e-6, 6),
        "why": (
            "none: no two orders overlap"
            if twice <= 0
            else "the vendor's vertex limit leaves no orderable way to settle some overlaps that costs less than "
            "billing the shared area twice, so those orders are kept as they are"
        ),
    }


class _Rules:
    """What an order must be for ``vendor`` (vertex limit, Polygon unless MultiPolygons, width) and its bill."""

    def __init__(self, vendor: VendorProfile, measure: Measure) -> None:
        self.vendor, self.measure = vendor, measure

    def bill(self, geoms: Sequence[BaseGeometry]) -> float:
        a = np.asarray(self.measure(list(geoms)), np.float64) * 1e-6 if len(geoms) else np.zeros(0)
        a = a[a > 0]
        return float(np.maximum(a, self.vendor.min_order_km2).sum() * self.vendor.price_per_km2)

    def fits(self, g: BaseGeometry) -> bool:
        return n_vertices(g) <= self.vendor.max_vertices and (isinstance(g, Polygon) or self.vendor.allows_multipolygon)

    def wide(self, g: BaseGeometry) -> bool:
        return is_wide(g, self.vendor.min_width_m)


def _union(geoms: Sequence[BaseGeometry]) -> BaseGeometry | None:
    """The union of ``geoms`` with holes filled, one valid geometry of hole-free parts (None if empty)."""
    parts = clean(fill_holes(shapely.union_all(np.asarray(list(geoms), dtype=object))))
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else shapely.union_all(parts)


def _largest(m: np.ndarray, parts: Sequence[BaseGeometry]) -> list[np.ndarray]:
    """Default :data:`Share`: every patch to the largest piece."""
    k = int(np.argmax([p.area for p in parts]))
    return [m if j == k else m[:0] for j in range(len(parts))]


def resolve(
    geoms: Sequence[BaseGeometry],
    members: Sequence[np.ndarray],
    inside: Sequence[bool],
    within: BaseGeometry,
    vendor: VendorProfile,
    measure: Measure,
    t0: float,
    *,
    share: Share | None = None,
    owner: Sequence[int] | None = None,
) -> tuple[list[BaseGeometry], list[np.ndarray], list[bool], list[int], int]:
    """Orders (planning CRS, metres) made pairwise disjoint (module docstring), in their order.

    ``within``: where fitting may grow an order (the AOI, holes filled); ``t0``: the first fitting
    tolerance, metres; ``share`` splits a cut order's patches among its pieces (default: all to the
    largest); ``owner`` (say, the AOI feature of each order) is carried along, the smaller of two
    merged orders'. Returns (geometries, patch table indices each serves, inside ``within``, owners,
    number of overlapping pairs settled)."""
    rules = _Rules(vendor, measure)
    items = [
        (g, np.asarray(m), bool(i), int(o))
        for g, m, i, o in zip(geoms, members, inside, owner if owner is not None else [0] * len(geoms))
    ]
    kept: set[frozenset[int]] = set()  # pairs (by geometry) whose overlap costs less billed twice than settled
    settled = 0
    for _ in range(4 * len(items) + 4):
        pairs = _open_pairs(items, kept)
        if not pairs:
            break
        groups = _clusters(len(items), pairs)
        done: dict[int, list[_Item]] = {}
        for group in groups:
            out, n = _settle([items[k] for k in group], rules, within, t0, share or _largest, kept)
            done[group[0]] = out
            settled += n
        gone = {k for group in groups for k in group}
        new: list[_Item] = []
        for k, it in enumerate(items):
            if k in done:
                new.extend(done[k])
            elif k not in gone:
                new.append(it)
        items = new
    return [it[0] for it in items], [it[1] for it in items], [it[2] for it in items], [it[3] for it in items], settled


_Item = tuple[BaseGeometry, np.ndarray, bool, int]


def _open_pairs(items: list[_Item], kept: set[frozenset[int]]) -> list[tuple[int, int]]:
    """Overlapping pairs of ``items`` not already kept overlapping."""
    return [
        (i, j)
        for i, j in overlapping_pairs([it[0] for it in items])
        if frozenset((id(items[i][0]), id(items[j][0]))) not in kept
    ]


def _clusters(n: int, pairs: list[tuple[int, int]]) -> list[list[int]]:
    """Connected groups (sorted, by first member) of the overlap graph's edges ``pairs`` on n nodes."""
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in pairs:
        a, b = find(i), find(j)
        if a != b:
            parent[max(a, b)] = min(a, b)
    groups: dict[int, list[int]] = {}
    for i in sorted({k for p in pairs for k in p}):
        groups.setdefault(find(i), []).append(i)
    return sorted(groups.values())


def _settle(
    items: list[_Item], rules: _Rules, within: BaseGeometry, t0: float, share: Share, kept: set[frozenset[int]]
) -> tuple[list[_Item], int]:
    """One cluster of overlapping orders made disjoint: one merged order if orderable and no dearer,
    else pair by pair (module docstring). Returns the orders and the pairs settled."""
    u = _union([it[0] for it in items])
    if (
        u is not None
        and rules.fits(u)
        and (rules.wide(u) or not all(rules.wide(it[0]) for it in items))
        and rules.bill([u]) <= rules.bill([it[0] for it in items]) * (1 + 1e-12)
    ):
        return [
            (u, np.concatenate([it[1] for it in items]), all(it[2] for it in items), min(it[3] for it in items))
        ], len(items) - 1
    settled = 0
    for _ in range(4 * len(items) + 4):
        pairs = _open_pairs(items, kept)
        if not pairs:
            break
        i, j = pairs[0]
        repl = _pair(items[i], items[j], rules, within, t0, share)
        if repl is None:  # cheaper billed twice: kept as they are
            kept.add(frozenset((id(items[i][0]), id(items[j][0]))))
            continue
        settled += 1
        items = [it for k, it in enumerate(items) if k not in (i, j)]
        items[i:i] = repl
    return items, settled


def _cut(a: _Item, keep: _Item, cut: _Item, parts: list[Polygon], share: Share) -> list[_Item]:
    """``keep`` as it is and ``cut`` replaced by ``parts`` (clear of ``keep``), its patches shared among them."""
    if parts:
        mine = share(cut[1], [keep[0], *parts])
        kept = (keep[0], np.concatenate([keep[1], mine[0]]), keep[2], keep[3])
        pieces = [(p, m, cut[2], cut[3]) for p, m in zip(parts, mine[1:])]
    else:
        kept, pieces = (keep[0], np.concatenate([keep[1], cut[1]]), keep[2], keep[3]), []
    return [kept, *pieces] if keep is a else [*pieces, kept]


def _regrown(parts: list[Polygon], keep: BaseGeometry, within: BaseGeometry, rules: _Rules) -> list[Polygon] | None:
    """The pieces a cut left, narrower than the width rule, grown back to it clear of ``keep`` and inside
    ``within`` (a mitre opening of the pieces grown by half the width): pieces that cover what the cut left,
    orderable and wide; None where there are none."""
    r = 0.5 * rules.vendor.min_width_m
    free = within.difference(keep)
    left = shapely.union_all(parts)
    grown = left.buffer(r, join_style="mitre").intersection(free)
    opened = grown.buffer(-r * (1 - 1e-3), join_style="mitre").buffer(r * (1 - 1e-3), join_style="mitre")
    out = [p for p in clean(opened.intersection(free)) if p.intersects(left)]
    if not out or left.difference(shapely.union_all(out)).area > 1e-6 * max(left.area, 1.0):
        return None
    out = [shapely.simplify(p, 0.0) for p in out]
    return out if all(rules.fits(p) and rules.wide(p) for p in out) else None


def _pair(a: _Item, b: _Item, rules: _Rules, within: BaseGeometry, t0: float, share: Share) -> list[_Item] | None:
    """Two overlapping orders settled: the cheapest of merging them (where their union is orderable),
    cutting b by a or a by b (where every piece left is orderable and wide), else their union fitted
    to the vertex limit (even where keeping both, the shared area billed twice, would cost less). Returns
    the orders that replace both."""
    options: list[tuple[float, int, list[_Item]]] = []
    u = _union([a[0], b[0]])
    merged = np.concatenate([a[1], b[1]])
    if u is not None and rules.fits(u) and (rules.wide(u) or not (rules.wide(a[0]) and rules.wide(b[0]))):
        options.append((rules.bill([u]), 0, [(u, merged, a[2] and b[2], min(a[3], b[3]))]))
    for rank, (keep, cut) in enumerate(((a, b), (b, a)), start=1):
        parts = clean(cut[0].difference(keep[0]))
        if all(rules.fits(p) and rules.wide(p) for p in parts):  # a cut never leaves a sliver narrower than the rule
            options.append((rules.bill([keep[0], *parts]), rank, _cut(a, keep, cut, parts, share)))
        elif parts:  # a cut too narrow: what is left regrown to the width, clear of the order kept
            wider = _regrown(parts, keep[0], within, rules)
            if wider is not None:
                options.append((rules.bill([keep[0], *wider]), rank + 2, _cut(a, keep, cut, wider, share)))
    if not options:
        g, ins = fit_vertices(
            shapely.simplify(u if u is not None else a[0].union(b[0]), 0.0),
            within,
            rules.vendor.max_vertices,
            t0,
            not rules.vendor.allows_multipolygon,
        )
        options.append((rules.bill([g]), 3, [(g, merged, ins and a[2] and b[2], min(a[3], b[3]))]))
    _, _, out = min(options, key=lambda o: (o[0], o[1]))
    return out  # even where billing the shared area twice would cost less: a plan never bills an area twice


__all__ = [
    "MIN_PART_M2",
    "OVERLAP_M2",
    "as_geometry",
    "clean",
    "disjoint_area_gap",
    "overlapping_pairs",
    "resolve",
    "split_holes",
]
