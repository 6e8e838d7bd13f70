"""No area billed twice: the orders of one plan made pairwise disjoint (they may touch, with zero area).

Pure functions on hole-free (Multi)Polygons in the planning CRS (projected, metres; areas m^2).

- Within an AOI feature (:func:`merge_overlaps`), two orders that overlap are merged into their union:
  max(area(a | b), min) <= max(area(a), min) + max(area(b), min), so a merge never bills more, and the
  union of two orders at least ``min_width_m`` wide is as wide. Where the union is over the vertex
  limit (or not one Polygon for a vendor without MultiPolygons), the later order is cut by the earlier
  one instead (``b - a``, one order per part where one Polygon is required); where a cut part is itself
  over the limit, the union is fitted outwards (:func:`~zoomplan.plan.polygons.fit_vertices`) and the
  check runs again, so the loop ends with fewer orders each time.
- Across AOI features (:func:`cut_across`), an order of a later feature loses the area that orders of
  earlier features already buy: the area two features share is bought once, by the first.

Every geometry returned is valid (``shapely.is_valid``), hole-free (a cut that would leave a hole is
split into hole-free pieces, :func:`split_holes`), without parts under :data:`MIN_PART_M2`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from zoomplan.plan.polygons import fill_holes, fit_vertices, n_vertices, polygons
from zoomplan.plan.pricing import VendorProfile

MIN_PART_M2 = 1e-3
"""A part of a cut under this area (m^2, a few cm by a few cm) is rounding noise, not an order: dropped."""

OVERLAP_M2 = 1e-3
"""Two orders overlapping by at most this area (m^2) are taken as touching (rounding noise)."""


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


def _fits(g: BaseGeometry, vendor: VendorProfile) -> bool:
    return n_vertices(g) <= vendor.max_vertices and (isinstance(g, Polygon) or vendor.allows_multipolygon)


def _as_geometry(parts: Sequence[Polygon]) -> BaseGeometry:
    return parts[0] if len(parts) == 1 else MultiPolygon(list(parts))


def _pairs(geoms: Sequence[BaseGeometry]) -> list[tuple[int, int]]:
    """Index pairs (i < j) of geometries overlapping by more than :data:`OVERLAP_M2`."""
    if len(geoms) < 2:
        return []
    arr = np.asarray(geoms, dtype=object)
    a, b = shapely.STRtree(arr).query(arr, predicate="intersects")
    keep = a < b
    a, b = a[keep], b[keep]
    if not a.size:
        return []
    area = shapely.area(shapely.intersection(arr[a], arr[b]))
    return [(int(i), int(j)) for i, j in zip(a[area > OVERLAP_M2], b[area > OVERLAP_M2])]


def merge_overlaps(geoms: list[BaseGeometry], members: list[np.ndarray], inside: list[bool], within: BaseGeometry,
                   vendor: VendorProfile, t0: float) -> tuple[list[BaseGeometry], list[np.ndarray], list[bool], int]:
    """One feature's orders (planning CRS, metres) made pairwise disjoint, in their order: overlapping
    pairs merged, else cut, else fitted (module docstring). ``within``: the feature (holes filled),
    where fitting clips to; ``t0``: the first fitting tolerance, metres. Returns (geometries, patch
    table indices each serves, inside the feature, number of overlapping pairs resolved)."""
    geoms, members, inside = list(geoms), list(members), list(inside)
    fixed = 0
    for _ in range(4 * len(geoms) + 4):
        pairs = _pairs(geoms)
        if not pairs:
            break
        i, j = pairs[0]
        fixed += 1
        union = clean(fill_holes(shapely.union(geoms[i], geoms[j])))
        u = _as_geometry(union)
        if _fits(u, vendor):
            geoms[i], members[i], inside[i] = u, np.concatenate([members[i], members[j]]), inside[i] and inside[j]
            del geoms[j], members[j], inside[j]
            continue
        parts = clean(geoms[j].difference(geoms[i]))
        if all(n_vertices(p) <= vendor.max_vertices for p in parts):
            pieces: list[BaseGeometry] = list(parts)
            if len(parts) > 1 and vendor.allows_multipolygon and _fits(_as_geometry(parts), vendor):
                pieces = [_as_geometry(parts)]
            geoms[j:j + 1], inside[j:j + 1] = pieces, [inside[j]] * len(pieces)
            members[j:j + 1] = [members[j]] + [np.zeros(0, np.int64)] * (len(pieces) - 1) if pieces else []
            continue
        g, ins = fit_vertices(u, within, vendor.max_vertices, t0, not vendor.allows_multipolygon)
        geoms[i], members[i], inside[i] = g, np.concatenate([members[i], members[j]]), ins and inside[i] and inside[j]
        del geoms[j], members[j], inside[j]
    return geoms, members, inside, fixed


def cut_across(geoms: Sequence[BaseGeometry], feature: Sequence[int], vendor: VendorProfile) -> tuple[list[list[Polygon]], float]:
    """Orders of several AOI features (planning CRS) cut so that no two overlap: each order, taken
    by feature (``feature[k]``, then as given), loses what the orders of earlier features cover.

    Returns, for each order, its parts (valid, hole-free Polygons; an order may lose all of them) and
    the area (m^2) removed, which was billed twice before. Orders of one feature must already be
    disjoint (:func:`merge_overlaps`)."""
    order = sorted(range(len(geoms)), key=lambda k: feature[k])
    out: list[list[Polygon]] = [[] for _ in geoms]
    done: list[BaseGeometry] = []
    removed = 0.0
    current: int | None = None
    seen: list[BaseGeometry] = []
    for k in order:
        if feature[k] != current:
            done.extend(seen)
            seen, current = [], feature[k]
        g = geoms[k]
        hits = [d for d in done if d.intersects(g)] if done else []
        prior = shapely.union_all(hits) if hits else None
        if prior is not None and g.intersection(prior).area > OVERLAP_M2:
            parts = clean(g.difference(prior))
            removed += g.area - sum(p.area for p in parts)
        else:
            parts = clean(g)
        out[k] = parts
        seen.append(g)
    return out, removed


def disjoint_area_gap(geoms: Sequence[BaseGeometry]) -> float:
    """Sum of the areas minus the area of the union (m^2): 0 for pairwise disjoint geometries."""
    if not geoms:
        return 0.0
    arr = np.asarray(list(geoms), dtype=object)
    return float(shapely.area(arr).sum() - shapely.union_all(arr).area)


__all__ = ["MIN_PART_M2", "OVERLAP_M2", "clean", "cut_across", "disjoint_area_gap", "merge_overlaps", "split_holes"]
