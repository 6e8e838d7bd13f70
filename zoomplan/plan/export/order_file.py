"""An order GeoJSON written by ``zoomplan plan``, read back and checked for export.

:func:`read_order_file` returns an :class:`OrderFile` of :class:`OrderFeature` (lon/lat, EPSG:4326),
what both exports take: GIS copies (:mod:`zoomplan.plan.export.gis_formats`) and vendors' request bodies
(:mod:`zoomplan.plan.export.payloads`). Both import it from here, so neither imports the other.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from zoomplan.errors import InputError
from zoomplan.plan.types import PathLike


@dataclass(frozen=True)
class OrderFeature:
    """One order of an order file: its id, lon/lat geometry (EPSG:4326) and GeoJSON properties."""

    order_id: str
    geometry: BaseGeometry
    properties: dict[str, Any]


@dataclass(frozen=True)
class OrderFile:
    """An order GeoJSON as read: its orders and the plan's ``summary`` member (empty if absent)."""

    path: Path
    orders: tuple[OrderFeature, ...]
    summary: dict[str, Any] = field(default_factory=dict)


def fix_hint(path: Path) -> str:
    return "pass the GeoJSON written by 'zoomplan plan --out'"


def read_order_file(path: PathLike) -> OrderFile:
    """Read and check an order GeoJSON: a FeatureCollection of Polygon/MultiPolygon orders in lon/lat.

    Raises :class:`~zoomplan.errors.InputError` (one line naming the file and the fix) when the file is
    missing, not JSON, not a FeatureCollection, empty, or holds a feature that is not a valid
    (Multi)Polygon within lon [-180, 180] and lat [-90, 90] degrees.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"order file {p} does not exist: {fix_hint(p)}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(
            f"order file {p} cannot be read ({getattr(exc, 'strerror', None) or exc}): {fix_hint(p)}"
        ) from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"order file {p} is not JSON ({exc.msg} at line {exc.lineno} column {exc.colno}): {fix_hint(p)}"
        ) from None
    except RecursionError:
        raise InputError(f"order file {p} nests JSON arrays or objects too deep to read: {fix_hint(p)}") from None
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection" or not isinstance(doc.get("features"), list):
        found = doc.get("type") if isinstance(doc, dict) else type(doc).__name__
        raise InputError(f"order file {p} is not a GeoJSON FeatureCollection (found {found!r}): {fix_hint(p)}")
    crs = doc.get("crs")
    if crs is not None:
        name = str((crs.get("properties") or {}).get("name", "")) if isinstance(crs, dict) else str(crs)
        if not any(k in name.upper() for k in ("CRS84", "4326")):
            raise InputError(
                f"order file {p} declares CRS {name!r}; orders are read in lon/lat (EPSG:4326): reproject it to "
                f"EPSG:4326"
            )
    if not doc["features"]:
        raise InputError(
            f"order file {p} has no orders, so there is nothing to export: re-run 'zoomplan plan' with a lower "
            f"--threshold or a --budget"
        )
    orders = [_feature(f, i, p) for i, f in enumerate(doc["features"])]
    summary = doc.get("summary") if isinstance(doc.get("summary"), dict) else {}
    return OrderFile(p, tuple(orders), summary)


def _feature(f: Any, i: int, path: Path) -> OrderFeature:
    where = f"order file {path}: feature {i}"
    if not isinstance(f, dict) or not isinstance(f.get("geometry"), dict):
        raise InputError(f"{where} has no geometry: {fix_hint(path)}")
    props = f.get("properties") if isinstance(f.get("properties"), dict) else {}
    oid = str(props.get("order_id") or f.get("id") or f"order-{i + 1}")
    where = f"{where} ({oid})"
    kind = f["geometry"].get("type")
    if kind not in ("Polygon", "MultiPolygon"):
        raise InputError(f"{where} is a {kind}; orders must be Polygon or MultiPolygon: {fix_hint(path)}")
    try:
        g = shape(f["geometry"])
    except RecursionError:  # coordinates nested thousands deep
        raise InputError(f"{where} has coordinates nested too deep: {fix_hint(path)}") from None
    except (
        ValueError,
        TypeError,
        IndexError,
        KeyError,
        AttributeError,
        OverflowError,
        shapely.errors.GEOSException,
    ) as exc:  # malformed coordinates
        raise InputError(
            f"{where} has malformed coordinates "
            f"({str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__}): {fix_hint(path)}"
        ) from None
    xy = shapely.get_coordinates(g)
    if g.is_empty or not np.isfinite(xy).all():
        raise InputError(f"{where} is empty or has non-finite coordinates: {fix_hint(path)}")
    if (np.abs(xy[:, 0]) > 180).any() or (np.abs(xy[:, 1]) > 90).any():
        raise InputError(
            f"{where} has coordinates outside lon [-180, 180] / lat [-90, 90]; the file must be RFC 7946 lon/lat: "
            f"reproject it to EPSG:4326"
        )
    if not g.is_valid:
        raise InputError(
            f"{where} is not a valid polygon ({shapely.is_valid_reason(g)}): fix it (e.g. QGIS 'Fix geometries') or "
            f"re-run 'zoomplan plan'"
        )
    return OrderFeature(oid, g, dict(props))
