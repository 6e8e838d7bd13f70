"""GeoJSON output (RFC 7946): orders and patches in lon/lat (EPSG:4326), written atomically.

Geometries are reprojected from the planning CRS with vertices added along long edges, so that the
lon/lat polygon keeps the planned shape and area (:mod:`zoomplan.plan.export.lonlat`; within the vendor's
vertex limit where it is given), snapped to a 1e-7 degree grid (about 1 cm) so they stay valid,
oriented with counter-clockwise exteriors, checked again, and written with 7 decimals. The order collection carries a
top-level ``summary`` member
(an RFC 7946 foreign member, ignored by GIS readers).
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import math
import os
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import shapely
from pyproj import CRS, Transformer
from shapely.geometry import MultiPolygon, Polygon, shape
from shapely.geometry.base import BaseGeometry
from shapely.geometry.polygon import orient

from zoomplan.atomic import write_text_atomic
from zoomplan.errors import GeometryError
from zoomplan.plan.export.lonlat import DECIMALS, written
from zoomplan.plan.orders.orders import Order
from zoomplan.plan.types import PatchTable

log = logging.getLogger(__name__)

_WGS84 = CRS.from_epsg(4326)


def _to_lonlat(crs: CRS) -> Transformer:
    return Transformer.from_crs(crs, _WGS84, always_xy=True)


def _ring(coords: Any) -> list[list[float]]:
    return [[round(float(x), DECIMALS), round(float(y), DECIMALS)] for x, y in coords]


def _geojson(g: BaseGeometry) -> dict[str, Any]:
    """RFC 7946 geometry of a lon/lat (Multi)Polygon: CCW exteriors, CW holes, 7 decimals."""
    if isinstance(g, Polygon):
        p = orient(g, sign=1.0)
        return {"type": "Polygon", "coordinates": [_ring(p.exterior.coords)] + [_ring(r.coords) for r in p.interiors]}
    if isinstance(g, MultiPolygon):
        return {"type": "MultiPolygon", "coordinates": [_geojson(p)["coordinates"] for p in g.geoms]}
    raise GeometryError(
        f"an order geometry is a {g.geom_type}; orders must be Polygon or MultiPolygon (zoomplan bug: please report)"
    )


def lonlat_geometry(
    g: BaseGeometry, crs: CRS, *, tr: Transformer | None = None, max_vertices: int | None = None
) -> dict[str, Any]:
    """``g`` (in projected ``crs``) as an RFC 7946 GeoJSON geometry dict: densified (within
    ``max_vertices`` when given), rounded and re-validated (:func:`zoomplan.plan.export.lonlat.written`)."""
    snapped = written(g, tr or _to_lonlat(crs), max_vertices)
    if isinstance(snapped, shapely.GeometryCollection) or snapped.is_empty:
        raise GeometryError(
            f"a polygon of {g.area:.3g} m^2 collapses when rounded to {DECIMALS} decimals of degree; it is too small "
            f"to order"
        )
    out = _geojson(snapped)
    back = shape(out)
    if not back.is_valid:
        raise GeometryError(
            f"a polygon is invalid after rounding to {DECIMALS} decimals ({shapely.is_valid_reason(back)}); please "
            f"report this AOI"
        )
    return out


def jsonable(x: Any) -> Any:
    """``x`` made JSON-serialisable: numpy scalars/arrays, paths, dates, CRSs; NaN and inf become null."""
    if isinstance(x, Mapping):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist())
    if isinstance(x, np.generic):
        return jsonable(x.item())
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if x is None or isinstance(x, (bool, int, str)):
        return x
    if isinstance(x, (_dt.date, _dt.datetime)):
        return x.isoformat()
    if isinstance(x, CRS):
        return x.to_string()
    if isinstance(x, os.PathLike):
        return os.fspath(x)
    return str(x)


def order_feature_collection(
    orders: Sequence[Order],
    summary: Mapping[str, Any],
    crs: CRS,
    *,
    aoi_ids: Sequence[str] | None = None,
    max_vertices: int | None = None,
) -> dict[str, Any]:
    """Orders as an RFC 7946 FeatureCollection (lon/lat), with ``summary`` as a top-level member.

    ``crs`` is the planning CRS the order geometries are in. ``aoi_ids`` (optional) names the AOI
    features by index, added to each feature as ``aoi_id``; ``max_vertices``, the vendor's vertex
    limit, caps the vertices added along long edges (:mod:`zoomplan.plan.export.lonlat`). Areas km^2 on the
    ellipsoid (:mod:`zoomplan.plan.orders.area`), money USD.
    """
    tr = _to_lonlat(crs)
    feats = []
    for o in orders:
        props: dict[str, Any] = {
            "order_id": o.order_id,
            "vendor": o.vendor,
            "product": o.product,
            "area_km2": round(o.area_km2, 6),
            "billed_km2": round(o.billed_km2, 6),
            "price_per_km2": o.price_per_km2,
            "est_cost_usd": round(o.cost_usd, 2),
            "n_patches": o.n_patches,
            "mean_probability": round(o.mean_probability, 4) if math.isfinite(o.mean_probability) else None,
            "aoi_index": o.aoi_index,
            "dominant_classes": list(o.dominant_classes),
            "whole_aoi": o.whole_aoi,
            "width_ok": o.width_ok,
            "inside_aoi": o.inside_aoi,
        }
        if aoi_ids is not None:
            props["aoi_id"] = aoi_ids[o.aoi_index]
        feats.append(
            {
                "type": "Feature",
                "id": o.order_id,
                "geometry": lonlat_geometry(o.geometry, crs, tr=tr, max_vertices=max_vertices),
                "properties": props,
            }
        )
    return {"type": "FeatureCollection", "features": feats, "summary": jsonable(summary)}


_CLOUD_STATES = ("clear", "cloudy", "filled")  # zoomplan.plan.types.CLEAR, CLOUDY, FILLED


def patches_feature_collection(table: PatchTable, selected: np.ndarray) -> dict[str, Any]:
    """Every patch of ``table`` as a lon/lat square with its probability and decision (``selected``); with a
    cloud mask (``table.cloud``), its ``cloud`` state: ``clear``, ``cloudy`` (under cloud or shadow in every
    scene with data) or ``filled`` (cloudy in its tile's first scene, decided by a later clear one)."""
    sel = np.asarray(selected, bool)
    b = table.bounds()
    tr = _to_lonlat(table.crs)
    xs = np.stack([b[:, 0], b[:, 2], b[:, 2], b[:, 0], b[:, 0]], axis=1)  # counter-clockwise from SW
    ys = np.stack([b[:, 1], b[:, 1], b[:, 3], b[:, 3], b[:, 1]], axis=1)
    lon, lat = tr.transform(xs.ravel(), ys.ravel())
    rings = np.round(
        np.stack([np.asarray(lon).reshape(xs.shape), np.asarray(lat).reshape(ys.shape)], axis=2), DECIMALS
    ).tolist()
    names = table.class_names
    ids = table.patch_ids()
    cols = (
        table.tile_class.tolist(),
        table.prob.tolist(),
        table.row.tolist(),
        table.col.tolist(),
        table.aoi_index.tolist(),
        sel.tolist(),
        table.tile_conf.tolist(),
    )  # Python numbers once, not one numpy scalar per field
    feats = []
    for i, (c, p, r, q, a, s, conf) in enumerate(zip(*cols)):
        feats.append(
            {
                "type": "Feature",
                "id": ids[i],
                "geometry": {"type": "Polygon", "coordinates": [rings[i]]},
                "properties": {
                    "patch_id": ids[i],
                    "row": r,
                    "col": q,
                    "aoi_index": a,
                    "probability": round(p, 4) if math.isfinite(p) else None,
                    "selected": s,
                    "tile_class": names[c] if 0 <= c < len(names) else str(c),
                    "tile_conf": round(conf, 4),
                },
            }
        )
    if table.cloud is not None:
        for f, c in zip(feats, table.cloud.tolist()):
            f["properties"]["cloud"] = _CLOUD_STATES[c]
    return {"type": "FeatureCollection", "features": feats}


def write_geojson(obj: Mapping[str, Any], path_or_dash: str | os.PathLike[str]) -> None:
    """Write ``obj`` as JSON to a file atomically, or to stdout when ``path_or_dash`` is ``"-"``."""
    try:
        text = json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError):  # numpy values, NaN, paths...: convert once, only when needed
        text = json.dumps(jsonable(obj), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    text += "\n"
    if os.fspath(path_or_dash) == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    write_text_atomic(Path(path_or_dash), text)
    log.info("wrote %s", path_or_dash)
