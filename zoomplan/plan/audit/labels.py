"""Labels for an audit (:mod:`zoomplan.plan.audit.audit`): labelled polygons or a label raster, and the
class under a point.

Two kinds of label file, told apart by the name: ``.tif`` / ``.tiff`` is a raster, anything else a
vector file GDAL reads.

- **Vector** (GeoPackage, GeoJSON, Shapefile, KML, FlatGeobuf; any CRS): read, validated and repaired
  by :func:`zoomplan.geo.aoi.read_aoi` (the planner's AOI reader, so the same files are accepted and
  refused; its messages are reworded to say "labels"). Attribute ``field`` names each polygon's class;
  features with no value there are left out (a warning). The audited area is the labelled polygons.
  A point takes the class of the **first polygon in file order that covers it** (boundary included).
- **Raster** (a single-band integer GeoTIFF; any CRS, north-up): each pixel value is a class, named by
  ``value_names`` (``--classes 1=water,2=land``) or else by the value written in decimal. Pixels equal
  to the raster's nodata value carry no label. The audited area is the raster's valid footprint: the
  valid pixels, pooled onto at most :data:`FOOTPRINT_CELLS` cells a side (a cell counts when any pixel in
  it is valid, so the footprint covers every valid pixel; read strip by strip, memory bounded). A point
  takes the value of the pixel holding it, the point reprojected to the raster's CRS first; the raster
  is read in windows of :data:`SAMPLE_BLOCK` pixels around the points only.

Every problem raises a :class:`~zoomplan.errors.ZoomplanError` subclass with a one-line message that
names the file and the fix.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import shapely
from pyproj import CRS, Transformer
from shapely.geometry.base import BaseGeometry

from zoomplan.errors import ConfigError, GeometryError, InputError, ZoomplanError
from zoomplan.geo.aoi import AOI, read_aoi

log = logging.getLogger(__name__)

RASTER_SUFFIXES = (".tif", ".tiff")
"""Label files with these suffixes are read as rasters; any other as a vector file."""
FOOTPRINT_CELLS = 1024
"""Largest side, in cells, of the pooled valid-pixel mask a raster's footprint is drawn from."""
SAMPLE_BLOCK = 1024
"""Side, in pixels, of the windows a label raster is read in to sample points."""
_STRIP_PIXELS = 1 << 24


def is_raster_labels(path: Path) -> bool:
    """True when ``path`` names a label raster (by its suffix, see :data:`RASTER_SUFFIXES`)."""
    return path.suffix.lower() in RASTER_SUFFIXES


def parse_classes(spec: str) -> dict[int, str]:
    """``"1=water,2=land"`` -> ``{1: "water", 2: "land"}`` (names of label raster values)."""
    out: dict[int, str] = {}
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        value, sep, name = part.partition("=")
        try:
            key = int(value.strip())
        except ValueError:
            key = None
        if not sep or key is None or not name.strip():
            raise ConfigError(
                f"--classes {spec!r}: {part!r} is not VALUE=NAME: write integer values and names, "
                "e.g. --classes 1=water,2=land"
            )
        if key in out:
            raise ConfigError(f"--classes {spec!r} names value {key} twice: give each raster value one name")
        out[key] = name.strip()
    if not out:
        raise ConfigError(f"--classes {spec!r} names no value: write VALUE=NAME pairs, e.g. --classes 1=water,2=land")
    return out


@dataclass(frozen=True)
class Labels:
    """A label file read and checked: ``aoi`` is the audited area in the file's CRS (vector: the labelled
    polygons, one feature each; raster: its valid footprint, one feature). ``kind``: ``"vector"`` or
    ``"raster"``. Vector: ``polygon_class`` is each feature's class, ``classes`` the classes in file order.
    Raster: ``value_names`` names values, ``nodata`` is the value without a label (``None``: none)."""

    kind: str
    path: Path
    aoi: AOI
    classes: tuple[str, ...] = ()
    polygon_class: tuple[str, ...] = ()
    value_names: Mapping[int, str] = field(default_factory=dict)
    nodata: int | None = None

    def classify(
        self, x: np.ndarray, y: np.ndarray, crs: CRS, geoms: Sequence[BaseGeometry]
    ) -> tuple[np.ndarray, tuple[str, ...]]:
        """The class name under each point (``x``, ``y`` in ``crs`` metres; ``None`` where there is no label),
        and every class in report order. ``geoms``: :attr:`aoi`'s features in ``crs`` (vector labels)."""
        if self.kind == "vector":
            return classify_points(x, y, geoms, self.polygon_class), self.classes
        values, ok = sample_raster(self.path, x, y, crs, self.nodata)
        seen = sorted({int(v) for v in np.unique(values[ok])} | set(self.value_names))
        names = {v: self.value_names.get(v, str(v)) for v in seen}
        out = np.full(len(values), None, dtype=object)
        for v in np.unique(values[ok]):
            out[ok & (values == v)] = names[int(v)]
        return out, tuple(dict.fromkeys(names[v] for v in seen))


def read_labels(path: Path, field: str | None = None, value_names: Mapping[int, str] | None = None) -> Labels:
    """Read the label file ``path`` (see the module docstring); ``field`` for a vector file, ``value_names``
    (optional) for a raster. Raises :class:`~zoomplan.errors.ZoomplanError` subclasses."""
    if not path.exists():
        raise InputError(
            f"labels file {path} not found: pass --labels with a vector file of labelled polygons "
            "(GeoPackage, GeoJSON, Shapefile ...) or a single-band integer GeoTIFF"
        )
    if is_raster_labels(path):
        if field is not None:
            raise ConfigError(
                f"--field {field!r}: {path} is a raster, whose pixel values are its classes: "
                "drop --field (name the values with --classes 1=water,2=land)"
            )
        return _read_raster(path, dict(value_names or {}))
    if value_names:
        raise ConfigError(
            f"--classes names the values of a label raster (.tif); {path} is a vector file, whose "
            "--field values name the classes: drop --classes"
        )
    return _read_vector(path, field)


def _as_labels(msg: str) -> str:
    """An AOI reader's message reworded for a label file."""
    if msg.startswith("AOI "):
        msg = "labels " + msg[4:]
    return msg.replace("AOIs must", "labels must")


def _class_name(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


def _read_vector(path: Path, field_name: str | None) -> Labels:
    try:
        aoi = read_aoi(path)
    except ZoomplanError as exc:
        raise type(exc)(_as_labels(str(exc))) from exc
    fields = dict.fromkeys(k for props in aoi.properties for k in props)
    have = ", ".join(fields) or "(none)"
    if field_name is None:
        raise ConfigError(
            f"labels file {path} is a vector file: pass --field with the attribute that holds each "
            f"polygon's class; its fields are: {have}"
        )
    if field_name not in fields:
        raise ConfigError(
            f"--field {field_name!r}: labels file {path} has no such field; its fields are: {have}; pass one of them"
        )
    keep = [
        i
        for i, props in enumerate(aoi.properties)
        if props.get(field_name) is not None and str(props[field_name]).strip()
    ]
    if not keep:
        raise InputError(
            f"--field {field_name!r}: no feature of {path} has a value in that field: fill it in, or pick "
            f"another field ({have})"
        )
    if len(keep) < len(aoi):
        log.warning(
            "labels %s: %d of %d feature(s) have no %r value; they are not labels and are left out",
            path,
            len(aoi) - len(keep),
            len(aoi),
            field_name,
        )
    sub = replace(
        aoi,
        geoms=tuple(aoi.geoms[i] for i in keep),
        ids=tuple(aoi.ids[i] for i in keep),
        names=tuple(aoi.names[i] for i in keep),
        properties=tuple(aoi.properties[i] for i in keep),
    )
    classes = tuple(_class_name(aoi.properties[i][field_name]) for i in keep)
    return Labels(kind="vector", path=path, aoi=sub, classes=tuple(dict.fromkeys(classes)), polygon_class=classes)


def classify_points(
    x: np.ndarray, y: np.ndarray, geoms: Sequence[BaseGeometry], polygon_class: Sequence[str]
) -> np.ndarray:
    """Class of the first polygon (in the order of ``geoms``) covering each point, boundary included;
    ``None`` where no polygon covers it. Points and polygons in one CRS."""
    n = len(x)
    out = np.full(n, None, dtype=object)
    if n == 0 or not len(geoms):
        return out
    polys = np.asarray(list(geoms), dtype=object)
    shapely.prepare(polys)
    pi, gi = shapely.STRtree(polys).query(shapely.points(np.asarray(x), np.asarray(y)), predicate="intersects")
    if pi.size:
        order = np.lexsort((gi, pi))
        pi, gi = pi[order], gi[order]
        first = np.ones(pi.size, bool)
        first[1:] = pi[1:] != pi[:-1]
        names = np.asarray(list(polygon_class), dtype=object)
        out[pi[first]] = names[gi[first]]
    return out


def _first_line(exc: BaseException) -> str:
    s = str(exc).strip()
    return s.splitlines()[0][:160] if s else type(exc).__name__


def _read_raster(path: Path, value_names: dict[int, str]) -> Labels:
    import rasterio
    from rasterio.errors import RasterioError

    from zoomplan.geo.scene import GDAL_ENV

    try:
        with rasterio.Env(**GDAL_ENV), rasterio.open(path) as ds:
            if ds.count != 1:
                raise InputError(
                    f"labels {path} has {ds.count} bands: pass a single-band integer raster (one class value per pixel)"
                )
            dtype = np.dtype(ds.dtypes[0])
            if dtype.kind not in "iu":
                raise InputError(
                    f"labels {path} holds {dtype.name} values: a label raster holds integer classes; "
                    f"convert it (e.g. rio convert --dtype int16 {path.name} labels_int.tif) or pass the "
                    "labels as polygons"
                )
            if ds.crs is None:
                raise GeometryError(
                    f"labels {path} has no CRS: assign one "
                    f"(e.g. rio edit-info --crs EPSG:32618 {path.name}, with the EPSG code of its grid)"
                )
            t = ds.transform
            if t.is_identity or t.b != 0 or t.d != 0:
                what = "no georeferencing" if t.is_identity else "a rotated geotransform"
                raise GeometryError(
                    f"labels {path} has {what}: warp it to a north-up grid first "
                    f"(e.g. rio warp --resampling nearest {path.name} labels_north_up.tif)"
                )
            nodata = None if ds.nodata is None or not math.isfinite(ds.nodata) else int(ds.nodata)
            crs = CRS.from_user_input(ds.crs.to_wkt())
            fp = _footprint(ds, nodata)
    except RasterioError as exc:
        raise InputError(
            f"labels {path} is not a raster GDAL can read ({_first_line(exc)}): pass a single-band "
            "integer GeoTIFF, or the labels as polygons"
        ) from exc
    if fp.is_empty:
        raise InputError(
            f"labels {path} has no labelled pixel (every value is its nodata {nodata}): pass a label "
            "raster with classes"
        )
    aoi = AOI(geoms=(fp,), ids=("labelled area",), names=(None,), crs=crs, source=str(path))
    return Labels(kind="raster", path=path, aoi=aoi, value_names=value_names, nodata=nodata)


def _footprint(ds: Any, nodata: int | None) -> BaseGeometry:
    """Polygon(s) in the raster's CRS covering every valid pixel (see the module docstring)."""
    from affine import Affine
    from rasterio.features import shapes
    from rasterio.windows import Window

    H, W = ds.height, ds.width
    left, bottom, right, top = ds.bounds
    bbox = shapely.box(min(left, right), min(bottom, top), max(left, right), max(bottom, top))
    if nodata is None:
        return bbox
    f = max(1, math.ceil(max(H, W) / FOOTPRINT_CELLS))
    h, w = math.ceil(H / f), math.ceil(W / f)
    coarse = np.zeros((h, w), bool)
    rows = f * max(1, _STRIP_PIXELS // (f * f * max(w, 1)))
    for r0 in range(0, H, rows):
        n = min(rows, H - r0)
        valid = ds.read(1, window=Window(0, r0, W, n)) != nodata
        pad = np.zeros((math.ceil(n / f) * f, w * f), bool)
        pad[:n, :W] = valid
        coarse[r0 // f : r0 // f + pad.shape[0] // f] = pad.reshape(pad.shape[0] // f, f, w, f).any(axis=(1, 3))
    if not coarse.any():
        return shapely.Polygon()
    cells = shapes(coarse.astype(np.uint8), mask=coarse, transform=ds.transform @ Affine.scale(f))
    polys = [shapely.geometry.shape(g) for g, _ in cells]
    return shapely.make_valid(shapely.union_all(polys).intersection(bbox))


def sample_raster(
    path: Path, x: np.ndarray, y: np.ndarray, crs: CRS, nodata: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """(value, labelled) of the label raster at points ``x``, ``y`` in ``crs``: the pixel holding each point
    after reprojecting it to the raster's CRS; ``labelled`` is False outside the raster and on nodata."""
    import rasterio
    from rasterio.windows import Window

    from zoomplan.geo.scene import GDAL_ENV

    n = len(x)
    values = np.zeros(n, np.int64)
    ok = np.zeros(n, bool)
    with rasterio.Env(**GDAL_ENV), rasterio.open(path) as ds:
        rcrs = CRS.from_user_input(ds.crs.to_wkt())
        xs, ys = np.asarray(x, np.float64), np.asarray(y, np.float64)
        if rcrs != crs:
            tx, ty = Transformer.from_crs(crs, rcrs, always_xy=True).transform(xs, ys)
            xs, ys = np.asarray(tx, np.float64), np.asarray(ty, np.float64)
        inv = ~ds.transform
        col = np.floor(inv.a * xs + inv.b * ys + inv.c)
        row = np.floor(inv.d * xs + inv.e * ys + inv.f)
        inside = np.isfinite(col) & np.isfinite(row) & (col >= 0) & (col < ds.width) & (row >= 0) & (row < ds.height)
        idx = np.nonzero(inside)[0]
        r, c = row[idx].astype(np.int64), col[idx].astype(np.int64)
        nbc = -(-ds.width // SAMPLE_BLOCK)
        keys = (r // SAMPLE_BLOCK) * nbc + c // SAMPLE_BLOCK
        for k in np.unique(keys):
            at = keys == k
            r0, c0 = int(k // nbc) * SAMPLE_BLOCK, int(k % nbc) * SAMPLE_BLOCK
            win = Window(c0, r0, min(SAMPLE_BLOCK, ds.width - c0), min(SAMPLE_BLOCK, ds.height - r0))
            block = ds.read(1, window=win)
            values[idx[at]] = block[r[at] - r0, c[at] - c0]
        ok[idx] = True
    if nodata is not None:
        ok &= values != nodata
    return values, ok
