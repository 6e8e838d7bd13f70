"""Planar polygon helpers for orders: parts, holes, vertices, width, vertex fitting, point assignment.

Every geometry is in a projected CRS with metre units (the planning CRS); tolerances are metres.
Used by :mod:`zoomplan.plan.orders.orders` and :mod:`zoomplan.plan.orders.consolidate`.
"""

from __future__ import annotations

import logging
import math
from typing import Sequence

import numpy as np
import shapely
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry

log = logging.getLogger(__name__)

WIDTH_TOL = 0.02  # share of an order's area allowed to be narrower than the vendor's minimum width


def polygons(g: BaseGeometry | None, min_area: float = 0.0) -> list[Polygon]:
    """The polygonal parts of any geometry with area > ``min_area`` (m^2)."""
    if g is None or g.is_empty:
        return []
    if isinstance(g, Polygon):
        return [g] if g.area > min_area else []
    if not hasattr(g, "geoms"):  # points and lines
        return []
    out: list[Polygon] = []
    for p in g.geoms:
        out.extend(polygons(p, min_area))
    return out


def fill_holes(g: BaseGeometry) -> BaseGeometry:
    """``g`` without interior rings (Polygon or MultiPolygon; empty Polygon if nothing is left)."""
    parts = [Polygon(p.exterior) for p in polygons(g)]
    if not parts:
        return Polygon()
    return parts[0] if len(parts) == 1 else shapely.union_all(parts)


def n_vertices(g: BaseGeometry) -> int:
    """Vertices of a (Multi)Polygon, closing points not counted."""
    return sum(len(p.exterior.coords) - 1 + sum(len(r.coords) - 1 for r in p.interiors) for p in polygons(g))


def covers(big: BaseGeometry, small: BaseGeometry) -> bool:
    """True if ``small`` lies inside ``big`` up to 1e-9 of its area."""
    return small.difference(big).area <= 1e-9 * max(small.area, 1.0)


def is_wide(g: BaseGeometry, width: float, tol: float = WIDTH_TOL) -> bool:
    """True if at most ``tol`` of ``g``'s area is narrower than ``width`` metres (mitre opening)."""
    if width <= 0 or g.is_empty:
        return True
    r = 0.5 * width * (1 - 1e-3)  # GEOS collapses an erosion to a sliver thinner than ~1e-3 of it
    opened = g.buffer(-r, join_style="mitre").buffer(r, join_style="mitre")
    return g.difference(opened).area <= tol * g.area


def fit_vertices(
    g: BaseGeometry, within: BaseGeometry, limit: int, t0: float, single: bool
) -> tuple[BaseGeometry, bool]:
    """A hole-free superset of ``g`` with at most ``limit`` vertices; (geometry, inside ``within``).

    ``g`` comes without collinear vertices (``shapely.simplify(g, 0.0)``, which the caller has done:
    on a 1,000-vertex piece it costs as much as one fitting step). simplify(buffer(g, t), t) clipped
    to ``within``, t doubling from ``t0`` metres; then the convex hull, the minimum rotated rectangle
    or the bounding box clipped to ``within``; then the same buffers unclipped (beyond ``within``,
    logged); last the minimum rotated rectangle (4 vertices). ``single``: the result must be one Polygon.
    """
    if n_vertices(g) <= limit:
        return g, True
    x0, y0, x1, y1 = g.bounds
    diag = math.hypot(x1 - x0, y1 - y0)
    ts = [t0 * 2.0**i for i in range(64) if t0 * 2.0**i <= diag] or [t0]

    def ok(s: BaseGeometry) -> bool:
        return (
            s.is_valid
            and not s.is_empty
            and n_vertices(s) <= limit
            and (not single or isinstance(s, Polygon))
            and covers(s, g)
        )

    for clip in (True, False):
        for t in ts:
            s = fill_holes(shapely.simplify(g.buffer(t, join_style="mitre"), t))
            if clip:
                s = fill_holes(shapely.union_all(polygons(s.intersection(within))))
            if ok(s):
                if not clip:
                    log.warning(
                        "an order needed %d vertices (limit %d): simplified with %.1f m beyond the AOI",
                        n_vertices(g),
                        limit,
                        t,
                    )
                return s, clip
        if clip:
            for box in (g.convex_hull, g.minimum_rotated_rectangle, g.envelope):
                s = fill_holes(shapely.union_all(polygons(box.intersection(within))))
                if ok(s):
                    return s, True
    log.warning(
        "an order needed %d vertices (limit %d): ordered as its minimum rotated rectangle, beyond the AOI",
        n_vertices(g),
        limit,
    )
    return g.minimum_rotated_rectangle, False


def rep_points(boxes: np.ndarray, aoi: BaseGeometry) -> np.ndarray:
    """A point inside each box's part inside ``aoi`` (None where that part has no area)."""
    pts = shapely.centroid(boxes)
    shapely.prepare(aoi)
    edge = ~shapely.contains_properly(aoi, boxes)
    if edge.any():
        inter = shapely.intersection(boxes[edge], aoi)
        p = shapely.point_on_surface(inter)
        p[shapely.area(inter) <= 0] = None
        pts[edge] = p
    return pts


def assign(points: np.ndarray, geoms: Sequence[BaseGeometry]) -> np.ndarray:
    """Index of the first geometry holding each point, -1 for none."""
    out = np.full(len(points), -1, np.int64)
    if not len(geoms) or not len(points):
        return out
    have = ~shapely.is_missing(points)
    idx = np.nonzero(have)[0]
    src, dst = shapely.STRtree(list(geoms)).query(points[idx], predicate="intersects")
    order = np.lexsort((dst, src))
    src, dst = src[order], dst[order]
    first = np.unique(src, return_index=True)[1]
    out[idx[src[first]]] = dst[first]
    return out
