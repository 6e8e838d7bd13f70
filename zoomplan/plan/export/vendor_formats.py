"""Exporting an order GeoJSON written by ``zoomplan plan``: :func:`export_order`, the one entry point.

GIS copies (KML, GeoPackage, Shapefile, CSV; :mod:`zoomplan.plan.export.gis_formats`) or request bodies for
vendors' APIs (:mod:`zoomplan.plan.export.payloads`, where the payloads and their geometry limits are
described), from the order file as read by :mod:`zoomplan.plan.export.order_file`. The names of those
modules that callers use are re-exported here (``__all__``).
"""

from __future__ import annotations

import datetime as _dt
import logging
from dataclasses import dataclass
from pathlib import Path

from zoomplan.atomic import write_text_atomic
from zoomplan.errors import ConfigError
from zoomplan.plan.export import gis_formats
from zoomplan.plan.export.order_file import OrderFeature, OrderFile, read_order_file
from zoomplan.plan.export.payloads import (
    FORMAT_LIMITS,
    PAYLOAD_FORMATS,
    TO_FILL,
    build_payloads,
    count_placeholders,
    default_window,
    dumps,
    limits_for,
    parse_window,
)
from zoomplan.plan.export.vendor_geometry import Limits, fit_geometry, geojson_geometry, n_coords, n_vertices
from zoomplan.plan.orders.pricing import load_vendors
from zoomplan.plan.types import PathLike

__all__ = [
    "EXTENSIONS",
    "FORMATS",
    "FORMAT_LIMITS",
    "GIS_FORMATS",
    "PAYLOAD_FORMATS",
    "TO_FILL",
    "ExportResult",
    "Limits",
    "OrderFeature",
    "OrderFile",
    "build_payloads",
    "check_target",
    "count_placeholders",
    "default_window",
    "dumps",
    "export_order",
    "fit_geometry",
    "geojson_geometry",
    "limits_for",
    "n_coords",
    "n_vertices",
    "parse_window",
    "read_order_file",
    "resolve_format",
]

log = logging.getLogger(__name__)


GIS_FORMATS = ("kml", "gpkg", "shp", "csv")
FORMATS = GIS_FORMATS + PAYLOAD_FORMATS
EXTENSIONS = {"kml": (".kml",), "gpkg": (".gpkg",), "shp": (".shp", ".zip"), "csv": (".csv",)}
"""File name endings of the GIS formats (a Shapefile is ``PATH.shp`` + sidecars, or one ``.zip``)."""


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_order` wrote: files, records (features or request bodies), placeholders left."""

    format: str
    written: tuple[Path, ...]
    n_records: int
    placeholders: int


# ---------------------------------------------------------------- formats and targets


def resolve_format(fmt: str | None, out: PathLike) -> str:
    """The export format: ``fmt`` checked against :data:`FORMATS`, or inferred from ``out``'s ending."""
    name = str(out).lower()
    if fmt is None:
        for f, exts in EXTENSIONS.items():
            if name.endswith(exts):
                return f
        raise ConfigError(
            f"cannot tell the format from --out {out}: name it .kml, .gpkg, .shp, .zip (zipped Shapefile) or .csv, "
            f"or pass --format (one of {', '.join(FORMATS)}; the JSON payloads {', '.join(PAYLOAD_FORMATS)} always "
            f"need --format)"
        )
    f = fmt.strip().lower()
    if f not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    if f in EXTENSIONS and not name.endswith(EXTENSIONS[f]):
        raise ConfigError(
            f"--format {f} writes {' or '.join(EXTENSIONS[f])} files but --out is {out}: name it "
            f"{Path(out).stem}{EXTENSIONS[f][0]}"
        )
    return f


def check_target(out: PathLike, order_path: PathLike) -> Path:
    """``out`` as a Path, refused (ConfigError) if it is a folder, its folder is missing, or it is the order file."""
    p = Path(out)
    if str(out) == "-":
        raise ConfigError("--out - is not supported by export: pass a file path")
    if p.is_dir():
        raise ConfigError(f"--out {p} is a folder: pass a file path inside it")
    if not p.parent.is_dir():
        what = "is a file, not a folder" if p.parent.exists() else "does not exist"
        raise ConfigError(f"--out {p}: folder {p.parent} {what}: create it or choose another output path")
    if p.exists() and p.resolve() == Path(order_path).resolve():
        raise ConfigError(f"--out {p} is the order file itself: choose another output path")
    return p


# ---------------------------------------------------------------- the one entry point


def export_order(
    order_path: PathLike,
    out: PathLike,
    fmt: str | None = None,
    *,
    vendors_file: PathLike | None = None,
    window: tuple[_dt.datetime, _dt.datetime] | None = None,
    now: _dt.datetime | None = None,
) -> ExportResult:
    """Write the orders of ``order_path`` (an order GeoJSON) to ``out`` in format ``fmt``.

    ``fmt`` is one of :data:`FORMATS`, or None to infer a GIS format from ``out``'s ending. GIS formats
    copy the orders as planned (EPSG:4326); payload formats go through :func:`build_payloads` with
    the catalogue ``vendors_file`` (default: the packaged one). Everything is checked before anything
    is written, and every file is written atomically: on any error ``out`` is left as it was.
    An existing ``out`` is replaced, as ``zoomplan plan --out`` does.
    """
    f = resolve_format(fmt, out)
    target = check_target(out, order_path)
    order = read_order_file(order_path)
    if f in GIS_FORMATS:
        written = gis_formats.write(order, f, target)
        return ExportResult(f, tuple(written), len(order.orders), 0)
    vendors = load_vendors(Path(vendors_file) if vendors_file is not None else None)
    bodies = build_payloads(order, f, vendors, window=window, now=now)
    write_text_atomic(target, dumps(bodies))
    log.info("wrote %d %s request bodies to %s", len(bodies), f, target)
    return ExportResult(f, (target,), len(bodies), count_placeholders(bodies))
