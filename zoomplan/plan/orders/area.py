"""Ellipsoidal areas of order polygons planned in a projected CRS: what a vendor bills.

A vendor measures the lon/lat polygon it receives on the WGS84 ellipsoid (a geodesic area, or the
area in an equal-area projection, which agree once the edges are densified: :mod:`zoomplan.plan.export.lonlat`).
The planning CRS (UTM) is conformal, not equal-area: its planar areas are off by its areal scale factor,
+0.08% on the central meridian and -0.4% five degrees away from it. So every area that is billed
(orders, baselines, the plans consolidation compares) is a polygon's planar area divided by the
areal scale factor at its centroid (:func:`ellipsoidal_m2`): within 1e-5 of the geodesic area of the
same polygon for orders up to 60 km long, anywhere in a UTM zone (``tests/plan/test_area.py``).

The factor is the CRS's own: the ratio of a planar area element to the WGS84 ellipsoid's (M N cos(lat)
dlat dlon) under the CRS's inverse projection, by central differences over 50 m, for any projected CRS.
Pure functions; areas in m^2, coordinates in the CRS's metres (:func:`check_metres` checks the CRS's units).
"""

from __future__ import annotations

import functools
import math
from typing import Sequence

import numpy as np
import shapely
from pyproj import CRS, Transformer
from shapely.geometry.base import BaseGeometry

from zoomplan.errors import GeometryError

_A = 6378137.0  # WGS84 semi-major axis, metres
_E2 = 0.00669437999014  # WGS84 first eccentricity squared
_H = 50.0  # central-difference step, metres


@functools.lru_cache(maxsize=16)
def _inverse(crs_wkt: str) -> Transformer:
    return Transformer.from_crs(CRS.from_wkt(crs_wkt), CRS.from_epsg(4326), always_xy=True)


def _wkt(crs: CRS) -> str:
    return crs.to_wkt()


def areal_scale(crs: CRS, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The CRS's areal scale factor at points (x, y) (metres): planar m^2 per m^2 on the WGS84 ellipsoid."""
    x, y = np.atleast_1d(np.asarray(x, np.float64)), np.atleast_1d(np.asarray(y, np.float64))
    tr = _inverse(_wkt(crs))
    xs = np.concatenate([x + _H, x - _H, x, x])
    ys = np.concatenate([y, y, y + _H, y - _H])
    lon, lat = tr.transform(xs, ys)
    lon, lat = np.radians(np.asarray(lon).reshape(4, -1)), np.radians(np.asarray(lat).reshape(4, -1))
    dlon = (lon[0] - lon[1] + math.pi) % (2 * math.pi) - math.pi  # across the antimeridian too
    dlon_y = (lon[2] - lon[3] + math.pi) % (2 * math.pi) - math.pi
    det = np.abs(dlon * (lat[2] - lat[3]) - dlon_y * (lat[0] - lat[1])) / (4 * _H * _H)  # rad^2 per planar m^2
    phi = 0.25 * lat.sum(axis=0)
    s2 = 1.0 - _E2 * np.sin(phi) ** 2
    m = _A * (1 - _E2) / s2**1.5  # meridional radius of curvature
    n = _A / np.sqrt(s2)  # prime vertical radius of curvature
    return 1.0 / (det * m * n * np.cos(phi))


def ellipsoidal_m2(geoms: Sequence[BaseGeometry] | np.ndarray, crs: CRS) -> np.ndarray:
    """Area (m^2) on the WGS84 ellipsoid of each (Multi)Polygon in projected ``crs``: each polygon's
    planar area over the areal scale factor at its centroid, summed over a MultiPolygon's parts."""
    arr = np.asarray(list(geoms) if not isinstance(geoms, np.ndarray) else geoms, dtype=object)
    if not arr.size:
        return np.zeros(0)
    parts, idx = shapely.get_parts(arr, return_index=True)
    if not parts.size:
        return np.zeros(arr.size)
    planar = shapely.area(parts)
    out = np.zeros(arr.size)
    ok = planar > 0
    if ok.any():
        c = shapely.get_coordinates(shapely.centroid(parts[ok]))
        np.add.at(out, idx[ok], planar[ok] / areal_scale(crs, c[:, 0], c[:, 1]))
    return out


class Measure:
    """:func:`ellipsoidal_m2` bound to one planning CRS: ``m(geoms)`` -> m^2 on the ellipsoid;
    ``m.scale(x, y)`` the areal scale factor (planar per ellipsoidal m^2)."""

    def __init__(self, crs: CRS) -> None:
        self.crs = crs

    def __call__(self, geoms: Sequence[BaseGeometry] | np.ndarray) -> np.ndarray:
        return ellipsoidal_m2(geoms, self.crs)

    def one(self, g: BaseGeometry) -> float:
        """Ellipsoidal m^2 of one geometry."""
        return float(self([g])[0])

    def scale(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return areal_scale(self.crs, x, y)


def check_metres(crs: CRS) -> None:
    """Orders are built and measured in a projected CRS with metre units (the planning CRS, UTM)."""
    if not crs.is_projected:
        raise GeometryError(
            f"orders need a projected CRS in metres; found {crs.name!r}; reproject the AOI and table to UTM"
        )
    f = crs.axis_info[0].unit_conversion_factor if crs.axis_info else 1.0
    if abs(f - 1.0) > 1e-9:
        raise GeometryError(
            f"orders need a CRS in metres; {crs.name!r} uses {crs.axis_info[0].unit_name}; reproject to UTM"
        )
