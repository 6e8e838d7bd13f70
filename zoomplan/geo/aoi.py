"""Areas of interest: read any vector file GDAL reads, validate, repair, reproject.

An AOI is one or many polygonal features (Polygon or MultiPolygon), each with an id and an optional
name carried through to the purchase order. Reading checks, in this order: the file exists and GDAL can
read it; it has features and a CRS; coordinates are plausible for that CRS; every geometry is non-empty
and polygonal; invalid geometries are repaired with ``shapely.make_valid`` (with a warning) when the
repair keeps a polygon of positive area, and refused otherwise. Any problem raises
:class:`~zoomplan.errors.GeometryError` / :class:`~zoomplan.errors.InputError` with a one-line fix.

Repairs and refusals, each listed with its test in ``docs/inputs.md``: Z coordinates are dropped (a
warning); the non-polygon parts of a GeometryCollection are dropped (a warning); holes are kept;
features that overlap are kept (a warning; the planner plans each patch once); an AOI in degrees whose
coordinates are out of range is refused, with a hint to swap the axes when they look like lat/lon; an
AOI beyond the UTM latitudes (:data:`LAT_LIMITS`) or crossing the antimeridian is refused. The checks and
repairs themselves are in :mod:`zoomplan.geo.aoi_checks`.
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
from zoomplan.geo.aoi_checks import (
    LAT_LIMITS,
    check_coordinates,
    check_earth_extent,
    check_geometry,
    crs_name,
    first_line,
    polygonal_parts,
    warn_overlaps,
)

__all__ = ["AOI", "DENSIFY_DEG", "DENSIFY_M", "ID_FIELDS", "KML_REFUSED", "LAT_LIMITS", "NAME_FIELDS", "read_aoi"]

log = logging.getLogger(__name__)

ID_FIELDS = ("id", "ID", "Id", "fid", "FID", "aoi_id")
NAME_FIELDS = ("name", "Name", "NAME", "title", "label", "Description")
DENSIFY_DEG = 0.001
"""Maximum edge length (degrees) before reprojecting a geographic AOI: edges are straight in lon/lat
(RFC 7946) and must stay so on the ground after projection."""
DENSIFY_M = 100.0
"""Maximum edge length (metres) before reprojecting a projected AOI to another CRS."""


@dataclass(frozen=True)
class AOI:
    """Polygonal features in one CRS, with their ids and names (``None`` where the file has none).

    ``properties`` holds each feature's attributes as read (plain Python values, ``None`` for nulls),
    by feature; empty when the AOI was not read from a file.
    """

    geoms: tuple[BaseGeometry, ...]
    ids: tuple[str, ...]
    names: tuple[str | None, ...]
    crs: CRS
    source: str = ""
    properties: tuple[dict[str, Any], ...] = ()

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
                raise GeometryError(
                    f"AOI {self.source} feature {fid!r} cannot be projected to {crs_name(crs)} (it lies outside that "
                    "CRS's area of use): use an AOI near the scene"
                )
            if not p.is_valid:
                p = polygonal_parts(shapely.make_valid(p))
            out.append(p)
        return replace(self, geoms=tuple(out), crs=crs)


def _unit_m(crs: CRS) -> float:
    try:
        return float(crs.axis_info[0].unit_conversion_factor) or 1.0
    except (IndexError, AttributeError):
        return 1.0


KML_REFUSED = ("Model",)
"""KML elements refused before GDAL reads the file: GDAL 3.12's LIBKML driver crashes the process
(segmentation fault) on a ``<Model>`` inside a ``<MultiGeometry>``, found by fuzzing
(``benchmarks/fuzz_readers.py``); a 3D model is never an area anyway."""


def _check_kml(path: Path) -> None:
    """Parse a KML file with the standard library first: malformed XML and elements that crash GDAL
    are refused with an :class:`InputError`. External entities are not fetched; expat (>= 2.4) bounds
    entity expansion."""
    import xml.etree.ElementTree as ET

    try:
        with open(path, "rb") as fh:
            head = fh.read(2048)
    except OSError as exc:
        raise InputError(
            f"AOI {path} cannot be read ({exc.strerror or exc}): check the path and its permissions"
        ) from exc
    if path.suffix.lower() != ".kml" and b"<kml" not in head:
        return
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise InputError(
            f"AOI {path} is not well-formed KML ({first_line(exc)}): re-export it from the tool that made it"
        ) from exc
    except (RecursionError, ValueError, LookupError, OSError) as exc:  # LookupError: an unknown declared encoding
        raise InputError(
            f"AOI {path} is not KML zoomplan can read ({first_line(exc)}): re-export it from the tool that made it"
        ) from exc
    for el in root.iter():
        tag = el.tag.rsplit("}", 1)[-1] if isinstance(el.tag, str) else ""
        if tag in KML_REFUSED:
            raise InputError(
                f"AOI {path} holds a KML <{tag}> (a 3D model, not an area): remove it and draw the AOI as Polygons"
            )


def _read_layers(path: Path) -> list[tuple[str, Any]]:
    import pyogrio
    from pyogrio.errors import DataLayerError, DataSourceError

    _check_kml(path)

    try:
        layers = pyogrio.list_layers(path)
    except (DataSourceError, DataLayerError, OSError, RuntimeError, ValueError, UnicodeError) as exc:
        raise InputError(
            f"AOI {path} is not a vector file GDAL can read ({first_line(exc)}): pass a GeoJSON, GeoPackage, "
            "Shapefile, KML or FlatGeobuf"
        ) from exc
    with_geom = [str(name) for name, gtype in layers if gtype is not None]
    if not with_geom:
        raise GeometryError(f"AOI {path} has no layer with geometries: pass a file of polygon features")
    polygonal = [
        str(name)
        for name, gtype in layers
        if gtype is not None and ("Polygon" in str(gtype) or str(gtype) in ("Unknown", "GeometryCollection"))
    ]
    chosen = polygonal or with_geom
    if len(with_geom) > len(chosen):
        log.warning(
            "AOI %s: reading polygon layer(s) %s; ignoring layer(s) %s",
            path,
            ", ".join(chosen),
            ", ".join(n for n in with_geom if n not in chosen),
        )
    out = []
    for name in chosen:
        try:
            try:
                df = pyogrio.read_dataframe(path, layer=name, fid_as_index=True)
            except UnicodeDecodeError:  # attribute text that is not UTF-8 (GeoJSON must be): Latin-1 decodes every byte
                df = pyogrio.read_dataframe(path, layer=name, fid_as_index=True, encoding="latin-1")
                log.warning(
                    "AOI %s layer %r: attribute text is not UTF-8; read as Latin-1 (check the names in the order)",
                    path,
                    name,
                )
        except (
            DataSourceError,
            DataLayerError,
            OSError,
            RuntimeError,
            ValueError,
            TypeError,
            UnicodeError,
            OverflowError,
            shapely.errors.GEOSException,
        ) as exc:
            raise InputError(
                f"AOI {path} layer {name!r} cannot be read ({first_line(exc)}): re-export the file"
            ) from exc
        out.append((name, df))
    return out


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
        raise InputError(
            f"AOI file {p} not found: pass the path of a vector file (GeoJSON, GeoPackage, Shapefile, KML, FlatGeobuf)"
        )
    layers = _read_layers(p)
    crs: CRS | None = None
    geoms: list[BaseGeometry] = []
    ids: list[str] = []
    names: list[str | None] = []
    props: list[dict[str, Any]] = []
    for lname, df in layers:
        if len(df) == 0:
            continue
        if df.crs is None:
            raise GeometryError(
                f'AOI {p} has no CRS: save it with its CRS (e.g. python -c "import geopandas as g; '
                f"g.read_file('{p.name}').set_crs('EPSG:4326').to_file('aoi_crs.gpkg')\" with the EPSG code of its "
                f"coordinates), or add the .prj of a Shapefile"
            )
        try:
            lcrs = CRS.from_user_input(df.crs)
            if crs is not None and lcrs != crs:
                df = df.to_crs(crs)
        except (
            ValueError,
            TypeError,
            RuntimeError,
        ) as exc:  # pyproj CRSError / ProjError are ValueError / RuntimeError
            raise GeometryError(
                f"AOI {p} layer {lname!r} has a CRS that cannot be used ({first_line(exc)}): save it in EPSG:4326 or a "
                "UTM zone"
            ) from exc
        crs = crs or lcrs
        prefix = f"{lname}/" if len(layers) > 1 else ""
        for fid, row in df.iterrows():
            fid_s = _field(row, ID_FIELDS) or f"{prefix}{fid}"
            geoms.append(check_geometry(row.geometry, p, fid_s))
            ids.append(fid_s)
            names.append(_field(row, NAME_FIELDS))
            props.append({str(k): _plain(v) for k, v in row.items() if k != df.geometry.name})
    if not geoms or crs is None:
        raise GeometryError(f"AOI {p} has no features: draw at least one polygon")
    check_coordinates(geoms, crs, p)
    check_earth_extent(geoms, crs, p)
    ids = _unique(ids, p)
    warn_overlaps(geoms, ids, p)
    return AOI(geoms=tuple(geoms), ids=tuple(ids), names=tuple(names), crs=crs, source=str(p), properties=tuple(props))


def _plain(v: Any) -> Any:
    """An attribute value as plain Python: numpy scalars unwrapped, NaN / NaT / NA as ``None``."""
    import pandas as pd  # geopandas' dependency, already loaded by pyogrio.read_dataframe

    if isinstance(v, np.generic):
        v = v.item()
    na = pd.isna(v) if v is not None else True
    return None if isinstance(na, (bool, np.bool_)) and na else v


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
