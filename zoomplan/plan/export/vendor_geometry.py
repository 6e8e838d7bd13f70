"""Payload geometry rules: lon/lat (Multi)Polygons brought within a vendor API's limits, still covering the order.

Pure functions on shapely geometries in lon/lat (EPSG:4326, RFC 7946). Holes are filled; one Polygon
per request where required; vertex caps met by simplifying outwards in metres in the geometry's UTM
zone, ``simplify(buffer(g, 1.5 t), t)`` on the polygon or its convex hull with ``t`` growing from 1 m
by sqrt 2, the tightest that fits winning, the minimum rotated rectangle last; counter-clockwise
exteriors; coordinates snapped to 7 decimals of degree (about 1 cm); a simplified polygon is written back
with vertices along its long edges (:func:`zoomplan.plan.export.lonlat.densify`). Every change is logged.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from pyproj import CRS, Transformer
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.geometry.polygon import orient

from zoomplan.errors import GeometryError
from zoomplan.geo.grid import utm_epsg
from zoomplan.plan.export.lonlat import densify

log = logging.getLogger(__name__)

DECIMALS = 7
"""Decimals of degree written (1e-7 degree is about 1 cm)."""


@dataclass(frozen=True)
class Limits:
    """What a payload geometry must obey: one Polygon or not, distinct vertices, coordinates as written."""

    single_polygon: bool
    max_vertices: int  # distinct vertices (the vendor profile's rule)
    max_coords: int | None  # every coordinate written, closing ones included (the API's published cap)


def _parts(g: BaseGeometry) -> list[Polygon]:
    if isinstance(g, Polygon):
        return [g] if not g.is_empty else []
    return [p for p in getattr(g, "geoms", []) if isinstance(p, Polygon) and not p.is_empty]


def n_coords(g: BaseGeometry) -> int:
    """Coordinates written for a (Multi)Polygon, the closing one of every ring included."""
    return sum(len(p.exterior.coords) + sum(len(r.coords) for r in p.interiors) for p in _parts(g))


def n_vertices(g: BaseGeometry) -> int:
    """Distinct vertices of a (Multi)Polygon (closing points not counted), as vendor profiles count them."""
    return n_coords(g) - sum(1 + len(p.interiors) for p in _parts(g))


def _within(g: BaseGeometry, lim: Limits) -> bool:
    return (
        not g.is_empty
        and g.is_valid
        and n_vertices(g) <= lim.max_vertices
        and (lim.max_coords is None or n_coords(g) <= lim.max_coords)
        and (isinstance(g, Polygon) or (not lim.single_polygon and isinstance(g, MultiPolygon)))
        and not any(p.interiors for p in _parts(g))
    )


def _rounded(g: BaseGeometry) -> BaseGeometry:
    """``g`` snapped to the 1e-7 degree grid, CCW exteriors; GeometryError if that breaks it."""
    s = shapely.set_precision(g, 10.0**-DECIMALS)
    parts = [orient(p, sign=1.0) for p in _parts(s)]
    if not parts or not s.is_valid:
        raise GeometryError(
            f"a polygon of {g.area:.3g} square degrees collapses or turns invalid at {DECIMALS} decimals; it is too "
            f"small to order"
        )
    return parts[0] if len(parts) == 1 and isinstance(s, Polygon) else MultiPolygon(parts)


def _covers(big: BaseGeometry, small: BaseGeometry) -> bool:
    return small.difference(big).area <= 1e-9 * max(small.area, 1.0)


def _limit_text(lim: Limits) -> str:
    cap = f", {lim.max_coords} coordinates per request" if lim.max_coords is not None else ""
    return f"{lim.max_vertices} vertices{cap}"


def _fit(piece: BaseGeometry, lim: Limits, label: str) -> BaseGeometry:
    """A lon/lat geometry within ``lim`` that covers ``piece`` (hole-free already)."""
    s = _rounded(piece)
    if _within(s, lim):
        return s
    lon, lat = piece.centroid.x, piece.centroid.y
    utm = CRS.from_epsg(utm_epsg(lon, lat))
    fwd = Transformer.from_crs(4326, utm, always_xy=True)
    back = Transformer.from_crs(utm, 4326, always_xy=True)

    def tr(g: BaseGeometry, t: Transformer) -> BaseGeometry:
        return shapely.transform(g, lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1])))

    gm = tr(piece, fwd)

    def attempt(cand: BaseGeometry) -> BaseGeometry | None:
        cand = shapely.union_all([Polygon(p.exterior) for p in _parts(cand)])
        try:
            ll = _rounded(
                densify(cand, back)
            )  # vertices along long edges: the shape (and area) survive (zoomplan.plan.export.lonlat)
        except GeometryError:
            return None
        return ll if _within(ll, lim) and _covers(tr(ll, fwd), gm) else None

    # Last resort, 4 vertices; then the tightest simplification of the polygon or of its convex hull
    # at the smallest tolerance t (metres, growing by sqrt 2) that meets the limits.
    best, how = (
        attempt(gm.buffer(1.0, join_style="mitre").minimum_rotated_rectangle),
        "ordered as its minimum rotated rectangle",
    )
    hull = gm.convex_hull
    x0, y0, x1, y1 = gm.bounds
    t, diag = 1.0, max(math.hypot(x1 - x0, y1 - y0), 1.0)
    while t <= diag:
        found = [
            c
            for c in (attempt(shapely.simplify(src.buffer(1.5 * t, join_style="mitre"), t)) for src in (gm, hull))
            if c is not None
        ]
        if found:
            c = min(found, key=lambda g: g.area)
            if best is None or c.area < best.area:
                best, how = c, f"simplified outwards by at most {2.5 * t:.1f} m"
            break
        t *= math.sqrt(2.0)
    if best is None:
        raise GeometryError(
            f"order {label} cannot be brought within {_limit_text(lim)} while covering it; please report this order "
            f"file"
        )
    log.warning(
        "order %s has %d vertices, over the limit (%s): %s to %d vertices (+%.1f%% area)",
        label,
        n_vertices(piece),
        _limit_text(lim),
        how,
        n_vertices(best),
        100.0 * (tr(best, fwd).area / gm.area - 1.0),
    )
    return best


def fit_geometry(g: BaseGeometry, lim: Limits, *, label: str = "?") -> list[BaseGeometry]:
    """Lon/lat (Multi)Polygon ``g`` as the geometries one payload format accepts, covering ``g``.

    Holes are filled (logged); with ``single_polygon`` each part becomes its own geometry (a part
    nested in another's hole is dropped, being covered once holes are filled); each geometry is
    simplified outwards in its UTM zone (metres) when over the vertex limits. Every result is valid,
    hole-free, counter-clockwise and rounded to 7 decimals of degree.
    """
    parts = _parts(g)
    holes = sum(len(p.interiors) for p in parts)
    if holes:
        log.warning("order %s: %d hole(s) filled (vendors sell polygons without holes)", label, holes)
    filled = sorted((Polygon(p.exterior) for p in parts), key=lambda p: -p.area)
    if lim.single_polygon:
        pieces: list[BaseGeometry] = []
        for p in filled:
            if not any(k.covers(p) for k in pieces):
                pieces.append(p)
    else:
        pieces = [shapely.union_all(filled)]
    return [_fit(p, lim, label if len(pieces) == 1 else f"{label}-{i + 1}") for i, p in enumerate(pieces)]


def geojson_geometry(g: BaseGeometry) -> dict[str, Any]:
    """RFC 7946 dict of a lon/lat (Multi)Polygon, coordinates rounded to 7 decimals."""

    def poly(p: Polygon) -> list[list[list[float]]]:
        return [[[round(x, DECIMALS), round(y, DECIMALS)] for x, y in r.coords] for r in (p.exterior, *p.interiors)]

    if isinstance(g, Polygon):
        return {"type": "Polygon", "coordinates": poly(g)}
    return {"type": "MultiPolygon", "coordinates": [poly(p) for p in _parts(g)]}
