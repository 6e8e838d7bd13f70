"""The checks and repairs :func:`zoomplan.geo.aoi.read_aoi` applies to an AOI's geometries.

Per feature (:func:`check_geometry`): non-empty, finite, 2D, polygonal, valid (repaired with
``shapely.make_valid`` when that keeps a polygon of positive area), of positive area. Over the whole AOI:
plausible coordinates for its CRS (:func:`check_coordinates`), within :data:`LAT_LIMITS` and not across the
antimeridian (:func:`check_earth_extent`); overlapping features are reported (:func:`warn_overlaps`).
Log records keep the logger name ``zoomplan.geo.aoi``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import shapely
from pyproj import CRS, Transformer
from shapely.geometry.base import BaseGeometry

from zoomplan.errors import GeometryError

log = logging.getLogger("zoomplan.geo.aoi")  # the reader's logger: one name for everything the AOI logs

_POLYGONAL = ("Polygon", "MultiPolygon")

LAT_LIMITS = (-80.0, 84.0)
"""Southern and northern latitude limits (degrees, WGS 84) of an AOI: zoomplan plans in UTM zones,
which end there (as Sentinel-2's MGRS tiles do)."""


def crs_name(crs: CRS) -> str:
    """``EPSG:<code>`` when the CRS has one, else its name."""
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.name


def polygonal_parts(g: BaseGeometry) -> BaseGeometry:
    """Only the polygonal parts of ``g`` (a Polygon/MultiPolygon, possibly empty)."""
    if g.geom_type in _POLYGONAL:
        return g
    if g.geom_type == "GeometryCollection":
        parts = [p for p in shapely.get_parts(g) if p.geom_type in _POLYGONAL and not p.is_empty]
        return shapely.union_all(parts) if parts else shapely.Polygon()
    return shapely.Polygon()


def first_line(exc: BaseException, limit: int = 160) -> str:
    """The first line of an exception's message (its type when empty), cut to ``limit`` characters."""
    s = str(exc).strip()
    line = s.splitlines()[0] if s else type(exc).__name__
    return line if len(line) <= limit else line[: limit - 3] + "..."


def check_geometry(g: object, path: Path, fid: str) -> BaseGeometry:
    try:
        return _check_geometry(g, path, fid)
    except shapely.errors.GEOSException as exc:
        raise GeometryError(
            f"AOI {path} feature {fid!r} is a geometry GEOS cannot process ({first_line(exc)}): fix it in a GIS (e.g. "
            "QGIS 'Fix geometries') and retry"
        ) from exc


def _check_geometry(g: object, path: Path, fid: str) -> BaseGeometry:
    if not isinstance(g, BaseGeometry) or g.is_empty:
        raise GeometryError(f"AOI {path} feature {fid!r} has an empty geometry: draw its polygon or remove the feature")
    if not np.isfinite(shapely.get_coordinates(g, include_z=False)).all():
        raise GeometryError(
            f"AOI {path} feature {fid!r} has non-finite coordinates (NaN or infinity): re-export the file"
        )
    if shapely.has_z(g):
        log.warning("AOI %s feature %r has Z coordinates; heights are dropped (planned in 2D)", path, fid)
        g = shapely.force_2d(g)
    if g.geom_type == "GeometryCollection":
        kinds = sorted({p.geom_type for p in shapely.get_parts(g) if p.geom_type not in _POLYGONAL})
        g = polygonal_parts(g)
        if g.is_empty:
            raise GeometryError(
                f"AOI {path} feature {fid!r} holds no polygon: AOIs must be Polygon or MultiPolygon features"
            )
        if kinds:
            log.warning(
                "AOI %s feature %r is a GeometryCollection; its %s part(s) are dropped, its polygons kept",
                path,
                fid,
                "/".join(kinds),
            )
    if g.geom_type not in _POLYGONAL:
        raise GeometryError(
            f"AOI {path} feature {fid!r} is a {g.geom_type}: AOIs must be Polygon or MultiPolygon features (buffer "
            "points or lines into polygons first)"
        )
    if not g.is_valid:
        reason = shapely.is_valid_reason(g)
        fixed = polygonal_parts(shapely.make_valid(g))
        if fixed.is_empty or fixed.area <= 0:
            raise GeometryError(
                f"AOI {path} feature {fid!r} is invalid ({reason}) and cannot be repaired into a polygon: fix it in a "
                "GIS (e.g. QGIS 'Fix geometries') and retry"
            )
        log.warning("AOI %s feature %r was invalid (%s); repaired with make_valid", path, fid, reason)
        g = fixed
    if g.area <= 0:
        raise GeometryError(f"AOI {path} feature {fid!r} has zero area: draw a polygon with an inside")
    return g


def check_coordinates(geoms: Sequence[BaseGeometry], crs: CRS, path: Path) -> None:
    b = shapely.total_bounds(np.asarray(geoms, dtype=object))
    if not np.isfinite(b).all():
        raise GeometryError(f"AOI {path} has non-finite coordinates: re-export the file")
    if crs.is_geographic and (b[0] < -180.5 or b[2] > 360.5 or b[1] < -90.5 or b[3] > 90.5):
        if -90.5 <= b[0] and b[2] <= 90.5 and -180.5 <= b[1] and b[3] <= 180.5:
            raise GeometryError(
                f"AOI {path} says {crs_name(crs)} (degrees) but its y coordinates reach ({b[1]:.2f}, {b[3]:.2f}), "
                "beyond +-90, while x stays within +-90: the axes look swapped (latitude, longitude): write every "
                "point longitude first (RFC 7946) in the tool that made the file"
            )
        raise GeometryError(
            f"AOI {path} says {crs_name(crs)} (degrees) but its coordinates reach "
            f"({b[0]:.0f}, {b[1]:.0f}, {b[2]:.0f}, {b[3]:.0f}): GeoJSON must be longitude/latitude (RFC 7946); "
            "reproject it, or save it as a GeoPackage with its real CRS"
        )


def _lonlat(geoms: Sequence[BaseGeometry], crs: CRS, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Longitudes and latitudes (degrees) of every vertex: as written for a geographic CRS, else WGS 84."""
    xy = shapely.get_coordinates(np.asarray(geoms, dtype=object))
    if crs.is_geographic:
        return xy[:, 0], xy[:, 1]
    try:
        t = Transformer.from_crs(crs, CRS.from_epsg(4326), always_xy=True)
        lon, lat = t.transform(xy[:, 0], xy[:, 1], errcheck=False)
    except Exception as exc:  # pyproj raises ProjError (RuntimeError) and others, by PROJ version
        raise GeometryError(
            f"AOI {path} cannot be placed on Earth from {crs_name(crs)} ({first_line(exc)}): save it in EPSG:4326 or a "
            "UTM zone"
        ) from exc
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    if not (np.isfinite(lon).all() and np.isfinite(lat).all()):
        raise GeometryError(
            f"AOI {path} has points that {crs_name(crs)} cannot place on Earth (outside its area of use): check the "
            "CRS the file declares"
        )
    return lon, lat


def check_earth_extent(geoms: Sequence[BaseGeometry], crs: CRS, path: Path) -> None:
    """Refuse AOIs beyond :data:`LAT_LIMITS` and AOIs crossing the antimeridian (+-180 degrees).

    Crossing: the vertices' longitudes span less in the 0..360 frame than in the -180..180 frame (a
    MultiPolygon split at +-180 as RFC 7946 asks, a polygon from 179.9 to 180.1 or from 179.9 to -179.9,
    a projected AOI over the antimeridian). Such an AOI cannot be planned as one area in one UTM zone,
    and its orders, written in lon/lat, would wrap the globe.
    """
    lon, lat = _lonlat(geoms, crs, path)
    south, north = LAT_LIMITS
    if lat.max() > north or lat.min() < south:
        worst = float(lat.max()) if lat.max() > north else float(lat.min())
        raise GeometryError(
            f"AOI {path} reaches latitude {worst:.3f}, beyond {abs(south):g}S..{north:g}N where the UTM zones zoomplan "
            f"plans in end: clip the AOI to latitudes {south:g}..{north:g} (polar areas are not supported)"
        )
    l180 = np.where(lon > 180.0, lon - 360.0, np.where(lon < -180.0, lon + 360.0, lon))
    l360 = np.mod(l180, 360.0)
    span180 = float(l180.max() - l180.min())
    span360 = float(l360.max() - l360.min())
    if span360 + 1e-9 < span180:
        east, west = float(l360.min()), float(l360.max())
        raise GeometryError(
            f"AOI {path} crosses the antimeridian (longitude {east:.4f} to {west - 360.0:.4f} over +-180): zoomplan "
            "writes orders in lon/lat, where it would wrap the globe; split it at 180 degrees into two AOI files and "
            "plan each side with its own scenes"
        )


def warn_overlaps(geoms: Sequence[BaseGeometry], ids: Sequence[str], path: Path) -> None:
    """Log a warning naming the first pair of features that overlap (area > 0), and how many pairs do."""
    if len(geoms) < 2:
        return
    arr = np.asarray(geoms, dtype=object)
    tree = shapely.STRtree(arr)
    left, right = tree.query(arr, predicate="intersects")
    keep = left < right
    left, right = left[keep], right[keep]
    if left.size == 0:
        return
    try:
        areas = shapely.area(shapely.intersection(arr[left], arr[right]))
    except shapely.errors.GEOSException:
        return
    hit = np.nonzero(areas > 0)[0]
    if hit.size:
        i, j = int(left[hit[0]]), int(right[hit[0]])
        log.warning(
            "AOI %s: %d pair(s) of features overlap (first: %r and %r); a shared area is planned once, each patch for "
            "one feature",
            path,
            hit.size,
            ids[i],
            ids[j],
        )
