"""Areas of interest: read any vector file GDAL reads, validate, repair, reproject.

An AOI is one or many polygonal features (Polygon or MultiPolygon), each with an id and an optional
name carried through to the purchase order. Reading checks, in this order: the file exists and GDAL can
read it; it has features and a CRS; coordinates are plausible for that CRS; every geometry is non-empty
and polygonal; invalid geometries are repaired with ``shapely.make_valid`` (with a warning) when the
repair keeps a polygon of positive area, and refused otherwise. Any problem raises
:class:`~zoomplan.errors.GeometryError` / :class:`~zoomplan.errors.InputError` with a one-line fix.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import shapely
from pyproj import CRS, Transformer
from shapely.geometry.base import BaseGeometry

from zoomplan.errors import GeometryError, InputError

log = logging.getLogger(__name__)

ID_FIELDS = ("id", "ID", "Id", "fid", "FID", "aoi_id")
NAME_FIELDS = ("name", "Name", "NAME", "title", "label", "Description")
DENSIFY_DEG = 0.001
"""Maximum edge length (degrees) before reprojecting a geographic AOI: edges are straight in lon/lat
(RFC 7946) and must stay so on the ground after projection."""
DENSIFY_M = 100.0
"""Maximum edge length (metres) before reprojecting a projected AOI to another CRS."""

_POLYGONAL = ("Polygon", "MultiPolygon")


@dataclass(frozen=True)
class AOI:
    """Polygonal features in one CRS, with their ids and names (``None`` where the file has none)."""

    geoms: tuple[BaseGeometry, ...]
    ids: tuple[str, ...]
    names: tuple[str | None, ...]
    crs: CRS
    source: str = ""

    def __len__(self) -> int:
        return len(self.geoms)

    def union(self) -> BaseGeometry:
        """All features merged (overlaps counted once)."""
        return shapely.union_all(np.asarray(self.geoms, dtype=object))

    def bounds(self) -> tuple[float, float, float, float]:
        """(minx, miny, maxx, maxy) of all features in the AOI's CRS units."""
        b = shapely.total_bounds(np.asarray(self.geoms, dtype=object))
        return (float(b[0]), float(b[1]), float(b[2]), float(b[3]))

    def centroid_lonlat(self) -> tuple[float, float]:
        """Longitude and latitude (degrees, WGS 84) of the centroid of the AOI's union."""
        c = self.union().centroid
        t = Transformer.from_crs(self.crs, CRS.from_epsg(4326), always_xy=True)
        lon, lat = t.transform(c.x, c.y)
        return float(lon), float(lat)

    def area_km2(self) -> list[float]:
        """Area of each feature in km^2 (meaningful only in a projected metre CRS)."""
        return [float(g.area) / 1e6 for g in self.geoms]

    def to_crs(self, crs: CRS) -> "AOI":
        """The same features in ``crs``; edges are densified first so they keep their shape."""
        crs = CRS.from_user_input(crs)
        if crs == self.crs:
            return self
        t = Transformer.from_crs(self.crs, crs, always_xy=True)
        step = DENSIFY_DEG if self.crs.is_geographic else DENSIFY_M / _unit_m(self.crs)

        def fwd(xy: np.ndarray) -> np.ndarray:
            x, y = t.transform(xy[:, 0], xy[:, 1])
            return np.column_stack([x, y])

        out = []
        for fid, g in zip(self.ids, self.geoms):
            p = shapely.transform(shapely.segmentize(g, step), fwd)
            if not np.isfinite(shapely.get_coordinates(p)).all():
                raise GeometryError(f"AOI {self.source} feature {fid!r} cannot be projected to {_crs_name(crs)} (it lies outside that CRS's area of use): use an AOI near the scene")
            if not p.is_valid:
                p = _polygonal(shapely.make_valid(p))
            out.append(p)
        return replace(self, geoms=tuple(out), crs=crs)


def _unit_m(crs: CRS) -> float:
    try:
        return float(crs.axis_info[0].unit_conversion_factor) or 1.0
    except (IndexError, AttributeError):
        return 1.0


def _crs_name(crs: CRS) -> str:
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.name


def _polygonal(g: BaseGeometry) -> BaseGeometry:
    """Only the polygonal parts of ``g`` (a Polygon/MultiPolygon, possibly empty)."""
    if g.geom_type in _POLYGONAL:
        return g
    if g.geom_type == "GeometryCollection":
        parts = [p for p in shapely.get_parts(g) if p.geom_type in _POLYGONAL and not p.is_empty]
        return shapely.union_all(parts) if parts else shapely.Polygon()
    return shapely.Polygon()


def _read_layers(path: Path) -> list[tuple[str, Any]]:
    import pyogrio
    from pyogrio.errors import DataLayerError, DataSourceError

    try:
        layers = pyogrio.list_layers(path)
    except (DataSourceError, DataLayerError, OSError) as exc:
        raise InputError(f"AOI {path} is not a vector file GDAL can read ({_first_line(exc)}): pass a GeoJSON, GeoPackage, Shapefile, KML or FlatGeobuf") from exc
    with_geom = [str(name) for name, gtype in layers if gtype is not None]
    if not with_geom:
        raise GeometryError(f"AOI {path} has no layer with geometries: pass a file of polygon features")
    polygonal = [str(name) for name, gtype in layers if gtype is not None and ("Polygon" in str(gtype) or str(gtype) in ("Unknown", "GeometryCollection"))]
    chosen = polygonal or with_geom
    if len(with_geom) > len(chosen):
        log.warning("AOI %s: reading polygon layer(s) %s; ignoring layer(s) %s", path, ", ".join(chosen), ", ".join(n for n in with_geom if n not in chosen))
    out = []
    for name in chosen:
        try:
            df = pyogrio.read_dataframe(path, layer=name, fid_as_index=True)
        except (DataSourceError, DataLayerError, OSError, ValueError) as exc:
            raise InputError(f"AOI {path} layer {name!r} cannot be read ({_first_line(exc)}): re-export the file") from exc
        out.append((name, df))
    return out


def _first_line(exc: BaseException) -> str:
    s = str(exc).strip()
    return s.splitlines()[0] if s else type(exc).__name__


def _field(row: Any, names: Sequence[str]) -> str | None:
    for n in names:
        if n in row.index:
            v = row[n]
            if v is not None and not (isinstance(v, float) and np.isnan(v)) and str(v).strip() != "":
                return str(v)
    return None


def read_aoi(path: str | os.PathLike[str]) -> AOI:
    """Read, validate and repair the AOI in ``path``, in the file's own CRS.

    Ids come from an ``id``-like field, else GDAL's feature id (prefixed by the layer name when the file
    has several polygon layers); names from a ``name``-like field. Duplicate ids get a ``~k`` suffix.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"AOI file {p} not found: pass the path of a vector file (GeoJSON, GeoPackage, Shapefile, KML, FlatGeobuf)")
    layers = _read_layers(p)
    crs: CRS | None = None
    geoms: list[BaseGeometry] = []
    ids: list[str] = []
    names: list[str | None] = []
    for lname, df in layers:
        if len(df) == 0:
            continue
        if df.crs is None:
            raise GeometryError(f"AOI {p} has no CRS: save it with one (e.g. ogr2ogr -a_srs EPSG:4326 out.gpkg {p.name}, or add the .prj of a Shapefile)")
        lcrs = CRS.from_user_input(df.crs)
        if crs is not None and lcrs != crs:
            df = df.to_crs(crs)
        crs = crs or lcrs
        prefix = f"{lname}/" if len(layers) > 1 else ""
        for fid, row in df.iterrows():
            fid_s = _field(row, ID_FIELDS) or f"{prefix}{fid}"
            geoms.append(_check_geometry(row.geometry, p, fid_s))
            ids.append(fid_s)
            names.append(_field(row, NAME_FIELDS))
    if not geoms or crs is None:
        raise GeometryError(f"AOI {p} has no features: draw at least one polygon")
    _check_coordinates(geoms, crs, p)
    ids = _unique(ids, p)
    return AOI(geoms=tuple(geoms), ids=tuple(ids), names=tuple(names), crs=crs, source=str(p))


def _check_geometry(g: object, path: Path, fid: str) -> BaseGeometry:
    if not isinstance(g, BaseGeometry) or g.is_empty:
        raise GeometryError(f"AOI {path} feature {fid!r} has an empty geometry: draw its polygon or remove the feature")
    g = shapely.force_2d(g)
    if g.geom_type == "GeometryCollection":
        g = _polygonal(g)
        if g.is_empty:
            raise GeometryError(f"AOI {path} feature {fid!r} holds no polygon: AOIs must be Polygon or MultiPolygon features")
    if g.geom_type not in _POLYGONAL:
        raise GeometryError(f"AOI {path} feature {fid!r} is a {g.geom_type}: AOIs must be Polygon or MultiPolygon features (buffer points or lines into polygons first)")
    if not g.is_valid:
        reason = shapely.is_valid_reason(g)
        fixed = _polygonal(shapely.make_valid(g))
        if fixed.is_empty or fixed.area <= 0:
            raise GeometryError(f"AOI {path} feature {fid!r} is invalid ({reason}) and cannot be repaired into a polygon: fix it in a GIS (e.g. QGIS 'Fix geometries') and retry")
        log.warning("AOI %s feature %r was invalid (%s); repaired with make_valid", path, fid, reason)
        g = fixed
    if g.area <= 0:
        raise GeometryError(f"AOI {path} feature {fid!r} has zero area: draw a polygon with an inside")
    return g


def _check_coordinates(geoms: Sequence[BaseGeometry], crs: CRS, path: Path) -> None:
    b = shapely.total_bounds(np.asarray(geoms, dtype=object))
    if not np.isfinite(b).all():
        raise GeometryError(f"AOI {path} has non-finite coordinates: re-export the file")
    if crs.is_geographic and (b[0] < -180.5 or b[2] > 360.5 or b[1] < -90.5 or b[3] > 90.5):
        raise GeometryError(
            f"AOI {path} says {_crs_name(crs)} (degrees) but its coordinates reach ({b[0]:.0f}, {b[1]:.0f}, {b[2]:.0f}, {b[3]:.0f}): "
            "GeoJSON must be longitude/latitude (RFC 7946); reproject it, or save it as a GeoPackage with its real CRS"
        )


def _unique(ids: list[str], path: Path) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    dup = False
    for i in ids:
        k = seen.get(i, 0)
        seen[i] = k + 1
        if k:
            dup = True
            out.append(f"{i}~{k}")
        else:
            out.append(i)
    if dup:
        log.warning("AOI %s has duplicate feature ids; later ones were suffixed with ~1, ~2 ...", path)
    return out
