"""Order polygons written in lon/lat (EPSG:4326) so that their shape, and so their area, survives.

An order planned in UTM has straight edges in metres; written vertex by vertex in lon/lat, a long edge
is read back (as a straight line in degrees, RFC 7946, or as a geodesic) off the planned one: 70 m at the
middle of a 61 km east-west edge at 45 degrees of latitude. :func:`densify` adds vertices along the
planned edges until the straight lon/lat edge between any two lies within :data:`TOLERANCE_M` of the
planned edge (measured at its middle, where a smooth edge strays most), so any reader measures what
was planned: the geodesic area of the written polygon agrees with the order's ``area_km2``
(:mod:`zoomplan.plan.orders.area`) to far better than 0.1% (``tests/plan/export/test_lonlat.py``). Vertices added
count against the vendor's vertex limit: where they would break it, the tolerance is relaxed (x4 at
a time) until they fit. :func:`snap` then rounds to 7 decimals of degree (about 1 cm) and keeps the
geometry valid. Used by every GeoJSON written and every payload export.
"""

from __future__ import annotations

import logging

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

log = logging.getLogger(__name__)

DECIMALS = 7
"""Decimals of degree written (1e-7 degree is about 1 cm on the ground)."""

TOLERANCE_M = 0.05
"""Largest distance (metres) allowed between a written lon/lat edge and the planned edge, at its middle."""

_M_PER_DEG = 111_320.0  # metres per degree of latitude (and of longitude at the equator), for distances of centimetres


def _ring(xy: np.ndarray, tr: Transformer, tol: float) -> np.ndarray:
    """A closed ring (metres) densified so its lon/lat edges stay within ``tol`` metres of the planned
    edges; returned in lon/lat (closed)."""
    a, b = xy[:-1], xy[1:]
    mid = 0.5 * (a + b)
    lon, lat = tr.transform(
        np.concatenate([a[:, 0], b[:, 0], mid[:, 0]]), np.concatenate([a[:, 1], b[:, 1], mid[:, 1]])
    )
    lon, lat = np.asarray(lon).reshape(3, -1), np.asarray(lat).reshape(3, -1)
    dlon = (lon[2] - 0.5 * (lon[0] + lon[1]) + 180.0) % 360.0 - 180.0
    dev = _M_PER_DEG * np.hypot(dlon * np.cos(np.radians(lat[2])), lat[2] - 0.5 * (lat[0] + lat[1]))
    n = np.maximum(np.ceil(np.sqrt(dev / tol)), 1).astype(
        np.int64
    )  # a smooth edge strays by length^2: n pieces, dev / n^2 each
    if (n == 1).all():
        ll = np.column_stack(tr.transform(xy[:, 0], xy[:, 1]))
        return ll
    t = np.concatenate([np.arange(k) / k for k in n.tolist()])
    edge = np.repeat(np.arange(len(a)), n)
    pts = a[edge] + (b[edge] - a[edge]) * t[:, None]
    pts = np.vstack([pts, xy[-1:]])
    return np.column_stack(tr.transform(pts[:, 0], pts[:, 1]))


def densify(g: BaseGeometry, tr: Transformer, tol: float = TOLERANCE_M) -> BaseGeometry:
    """``g`` (planning CRS, metres) in lon/lat with vertices added along its edges (module docstring)."""

    def poly(p: Polygon) -> Polygon:
        ext = _ring(np.asarray(p.exterior.coords), tr, tol)
        return Polygon(ext, [_ring(np.asarray(r.coords), tr, tol) for r in p.interiors])

    if isinstance(g, Polygon):
        return poly(g)
    if isinstance(g, MultiPolygon):
        return MultiPolygon([poly(p) for p in g.geoms])
    raise TypeError(f"expected a Polygon or MultiPolygon, got {g.geom_type}")


def n_vertices(g: BaseGeometry) -> int:
    """Distinct vertices of a (Multi)Polygon, closing points not counted."""
    parts = [g] if isinstance(g, Polygon) else list(getattr(g, "geoms", []))
    return sum(len(p.exterior.coords) - 1 + sum(len(r.coords) - 1 for r in p.interiors) for p in parts)


def written(g: BaseGeometry, tr: Transformer, max_vertices: int | None = None) -> BaseGeometry:
    """``g`` (planning CRS) as it is written: densified (:func:`densify`) within ``max_vertices`` when
    given (the tolerance relaxed x4 until it fits; the vertices as planned at worst) and snapped (:func:`snap`)."""
    tol = TOLERANCE_M
    ll = densify(g, tr, tol)
    if max_vertices is not None and n_vertices(ll) > max_vertices:
        planned = n_vertices(g)
        while n_vertices(ll) > max_vertices and n_vertices(ll) > planned and tol < 1e7:
            tol *= 4.0
            ll = densify(g, tr, tol)
        if tol > TOLERANCE_M:
            log.info(
                "an order of %d vertices (limit %d) densified to %.2f m rather than %.2f m",
                planned,
                max_vertices,
                tol,
                TOLERANCE_M,
            )
    return snap(ll)


def snap(ll: BaseGeometry) -> BaseGeometry:
    """A lon/lat (Multi)Polygon snapped to the 1e-7 degree grid, valid, polygonal (empty when it
    collapses). GEOS's ``set_precision`` can fail on a ring whose snapped hole no longer fits its shell
    ("unable to assign free hole to a shell"); then the geometry is repaired (``make_valid``), snapped
    point by point and repaired again, keeping its polygonal parts."""
    grid = 10.0**-DECIMALS
    try:
        out = shapely.set_precision(ll if ll.is_valid else shapely.make_valid(ll), grid)
    except shapely.errors.GEOSException:
        out = shapely.make_valid(shapely.set_precision(shapely.make_valid(ll), grid, mode="pointwise"))
    if out.is_valid and isinstance(out, (Polygon, MultiPolygon)):
        return out
    fixed = shapely.make_valid(out)
    flat = [q for q in shapely.get_parts(fixed) if isinstance(q, Polygon) and not q.is_empty]
    return Polygon() if not flat else flat[0] if len(flat) == 1 else shapely.union_all(flat)
