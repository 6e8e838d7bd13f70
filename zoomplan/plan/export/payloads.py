"""Request bodies for vendors' APIs (planet, up42, skyfi, stapi), one builder per vendor, from an order file.

Nothing here calls a network: it writes files to submit. Each JSON file is a **list of request
bodies, one per request** (``jq '.[0]'`` gives the first), always a list whatever the count. The
bodies are *shaped like* each vendor's public API as documented when this was written (sources
below); they are not guaranteed identical to what a vendor accepts today. Values zoomplan cannot
know offline (catalogue image ids, data product ids...) are strings starting with ``TO_FILL`` that
say what to put there: a body still holding one is refused by the vendor instead of buying the
wrong thing.

``planet`` (Planet Orders API v2, ``POST https://api.planet.com/compute/ops/orders/v2``), one body
per order (a MultiPolygon order stays one body: the clip tool takes a Polygon or MultiPolygon)::

    {"name": ORDER_ID, "source_type": "scenes",
     "products": [{"item_ids": [TO_FILL], "item_type": TO_FILL, "product_bundle": TO_FILL}],
     "tools": [{"clip": {"aoi": <GeoJSON Polygon | MultiPolygon>}}]}

``up42`` (UP42 orders v2, ``POST /v2/orders?workspaceId=...``, as the up42-py SDK builds it), one
body per polygon; ``params`` is ``{"id": TO_FILL}`` (catalogue image) for archive profiles and
``{"acquisitionStart", "acquisitionEnd"}`` for tasking ones::

    {"dataProduct": TO_FILL, "displayName": ORDER_ID, "params": {...},
     "featureCollection": {"type": "FeatureCollection",
                           "features": [{"type": "Feature", "properties": {}, "geometry": <Polygon>}]},
     "tags": ["zoomplan", ORDER_ID]}

``skyfi`` (SkyFi Platform API, ``POST /order-archive`` or ``POST /order-tasking``), one body per
polygon, the AOI as WKT::

    archive: {"aoi": "POLYGON ((lon lat, ...))", "archiveId": TO_FILL, "label": ORDER_ID, "metadata": {...}}
    tasking: {"aoi": ..., "windowStart": ISO, "windowEnd": ISO, "productType": "DAY", "resolution": TO_FILL,
              "maxCloudCoveragePercent": PCT, "maxOffNadirAngle": DEG, "label": ORDER_ID, "metadata": {...}}

``stapi`` (STAPI order payload, ``POST /products/{product_id}/orders``; ``product_id`` is also kept in
the body as the early STAPI drafts had it), one body per polygon::

    {"product_id": TO_FILL, "datetime": "START/END", "geometry": <Polygon>,
     "filter": {"op": "and", "args": [{"op": "<=", "args": [{"property": "eo:cloud_cover"}, PCT]},
                                      {"op": "<=", "args": [{"property": "view:off_nadir"}, DEG]}]},
     "order_parameters": {}}

``datetime``, ``windowStart/End`` and ``acquisitionStart/End`` come from ``window`` (UTC); by default
the last 365 days for archive profiles and the 30 days from tomorrow for tasking ones. Cloud cover
(percent) and off-nadir angle (degrees) are the vendor profile's ``cloud_max_pct`` and
``off_nadir_max_deg``.

Limits every payload geometry obeys (lon/lat WGS84, RFC 7946):

- no holes: interior rings are filled (a warning is logged);
- one Polygon per body for ``up42``, ``skyfi`` and ``stapi`` (and ``planet`` when the profile does not
  allow MultiPolygons): a MultiPolygon order becomes one body per part, ids suffixed ``-1``, ``-2``...;
- vertices: at most the profile's ``max_vertices`` distinct vertices (the profile named by the order's
  ``vendor`` property, from ``load_vendors``), and at most the published cap counting every
  coordinate written, closing ones included (the strictest reading): Planet clip 500 (Planet support,
  "Example payload for using the clip tool"), UP42 999 (docs.up42.com, geometry types), SkyFi 500
  (SkyFi support, "What is an Area of Interest"); STAPI publishes none. A geometry over a cap is
  simplified outwards in metres in its UTM zone (:mod:`zoomplan.plan.export.vendor_geometry`), so it still
  covers the order; a warning gives the vertices and the area added;
- counter-clockwise exteriors, closed rings, coordinates rounded to 7 decimals (about 1 cm).

SkyFi's support pages also say an AOI "should be" convex: the polygon is sent as planned (its convex
hull would buy more area); check with SkyFi if an order is refused.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry

from zoomplan.errors import ConfigError, InputError
from zoomplan.plan.export.order_file import OrderFeature, OrderFile, fix_hint
from zoomplan.plan.export.vendor_geometry import DECIMALS, Limits, fit_geometry, geojson_geometry
from zoomplan.plan.orders.pricing import VendorProfile

PAYLOAD_FORMATS = ("planet", "up42", "skyfi", "stapi")


TO_FILL = "TO_FILL"
"""Prefix of every placeholder value a payload holds."""


FORMAT_LIMITS: dict[str, tuple[bool, int | None]] = {
    "planet": (False, 500),
    "up42": (True, 999),
    "skyfi": (True, 500),
    "stapi": (True, None),
}
"""Per payload format: (a single Polygon per body, published coordinate cap or None)."""


def _iso(t: _dt.datetime) -> str:
    return t.astimezone(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def default_window(kind: str, now: _dt.datetime) -> tuple[_dt.datetime, _dt.datetime]:
    """UTC window of a request: the last 365 days (archive) or the 30 days from tomorrow (tasking)."""
    day = now.astimezone(_dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if kind == "tasking":
        return day + _dt.timedelta(days=1), day + _dt.timedelta(days=31)
    return day - _dt.timedelta(days=365), day


def parse_window(text: str) -> tuple[_dt.datetime, _dt.datetime]:
    """``START/END`` (ISO dates or datetimes; naive means UTC; a date-only END is inclusive) -> UTC datetimes."""

    def one(s: str, end: bool) -> _dt.datetime:
        s = s.strip()
        try:
            t = _dt.datetime.fromisoformat(s)
        except ValueError:
            raise ConfigError(
                f"--window {text!r}: {s!r} is not an ISO date or datetime; use e.g. 2026-12-01/2027-01-31"
            ) from None
        if end and len(s) == 10:
            t += _dt.timedelta(days=1, seconds=-1)
        return t if t.tzinfo else t.replace(tzinfo=_dt.UTC)

    a, sep, b = text.partition("/")
    if not sep:
        raise ConfigError(f"--window {text!r} is not START/END; use e.g. 2026-12-01/2027-01-31")
    start, end = one(a, False), one(b, True)
    if end <= start:
        raise ConfigError(f"--window {text!r} ends before it starts: give START/END in order")
    return start, end


def _fill(what: str) -> str:
    return f"{TO_FILL}: {what}"


def _meta(o: OrderFeature, v: VendorProfile) -> dict[str, Any]:
    p = o.properties
    return {
        "zoomplan_order_id": o.order_id,
        "vendor_profile": v.name,
        "planned_area_km2": p.get("area_km2"),
        "est_cost_usd": p.get("est_cost_usd"),
    }


def _planet(
    o: OrderFeature, oid: str, g: BaseGeometry, v: VendorProfile, window: tuple[_dt.datetime, _dt.datetime]
) -> dict[str, Any]:
    return {
        "name": oid,
        "source_type": "scenes",
        "products": [
            {
                "item_ids": [_fill("Planet item id(s) over this AOI, from a Data API search")],
                "item_type": _fill("item type, e.g. SkySatCollect"),
                "product_bundle": _fill("product bundle, e.g. pansharpened"),
            }
        ],
        "tools": [{"clip": {"aoi": geojson_geometry(g)}}],
    }


def _up42(
    o: OrderFeature, oid: str, g: BaseGeometry, v: VendorProfile, window: tuple[_dt.datetime, _dt.datetime]
) -> dict[str, Any]:
    params: dict[str, Any] = (
        {"acquisitionStart": _iso(window[0]), "acquisitionEnd": _iso(window[1])}
        if v.kind == "tasking"
        else {"id": _fill("UP42 catalogue image id over this AOI, from a catalogue search")}
    )
    return {
        "dataProduct": _fill("UP42 data product id"),
        "displayName": oid,
        "params": params,
        "featureCollection": {
            "type": "FeatureCollection",
            "features": [{"type": "Feature", "properties": {}, "geometry": geojson_geometry(g)}],
        },
        "tags": ["zoomplan", oid],
    }


def _skyfi(
    o: OrderFeature, oid: str, g: BaseGeometry, v: VendorProfile, window: tuple[_dt.datetime, _dt.datetime]
) -> dict[str, Any]:
    body: dict[str, Any] = {"aoi": shapely.to_wkt(g, rounding_precision=DECIMALS, trim=True)}
    if v.kind == "tasking":
        body.update(
            {
                "windowStart": _iso(window[0]),
                "windowEnd": _iso(window[1]),
                "productType": "DAY",
                "resolution": _fill(f"SkyFi resolution class for {v.resolution_m:g} m, e.g. VERY HIGH"),
                "maxCloudCoveragePercent": v.cloud_max_pct,
                "maxOffNadirAngle": min(v.off_nadir_max_deg, 45.0),
            }
        )
    else:
        body["archiveId"] = _fill("SkyFi archive id over this AOI, from POST /archives")
    body.update({"label": oid, "metadata": _meta(o, v)})
    return body


def _stapi(
    o: OrderFeature, oid: str, g: BaseGeometry, v: VendorProfile, window: tuple[_dt.datetime, _dt.datetime]
) -> dict[str, Any]:
    return {
        "product_id": _fill("STAPI product id (also the {productId} of POST /products/{productId}/orders)"),
        "datetime": f"{_iso(window[0])}/{_iso(window[1])}",
        "geometry": geojson_geometry(g),
        "filter": {
            "op": "and",
            "args": [
                {"op": "<=", "args": [{"property": "eo:cloud_cover"}, v.cloud_max_pct]},
                {"op": "<=", "args": [{"property": "view:off_nadir"}, v.off_nadir_max_deg]},
            ],
        },
        "order_parameters": {},
    }


_BUILDERS: dict[str, Callable[..., dict[str, Any]]] = {
    "planet": _planet,
    "up42": _up42,
    "skyfi": _skyfi,
    "stapi": _stapi,
}


def limits_for(fmt: str, vendor: VendorProfile) -> Limits:
    """The geometry limits of payload format ``fmt`` for orders of ``vendor``."""
    single, cap = FORMAT_LIMITS[fmt]
    return Limits(
        single_polygon=single or not vendor.allows_multipolygon, max_vertices=vendor.max_vertices, max_coords=cap
    )


def _vendor_of(o: OrderFeature, order: OrderFile, vendors: Mapping[str, VendorProfile]) -> VendorProfile:
    name = o.properties.get("vendor") or order.summary.get("vendor")
    if not name:
        raise InputError(
            f"order file {order.path}: order {o.order_id} names no vendor (property 'vendor'): {fix_hint(order.path)}"
        )
    if name not in vendors:
        used = (order.summary.get("parameters") or {}).get("vendors_file")
        hint = (
            f"pass --vendors {used} (the catalogue the plan used)"
            if used
            else "pass --vendors with the catalogue the plan used"
        )
        raise InputError(
            f"order file {order.path}: vendor {name!r} is not in the vendor catalogue ({', '.join(sorted(vendors))}): "
            f"{hint}"
        )
    return vendors[name]


def build_payloads(
    order: OrderFile,
    fmt: str,
    vendors: Mapping[str, VendorProfile],
    *,
    window: tuple[_dt.datetime, _dt.datetime] | None = None,
    now: _dt.datetime | None = None,
) -> list[dict[str, Any]]:
    """Request bodies of payload format ``fmt`` for every order of ``order`` (see the module docstring).

    ``vendors`` is the catalogue holding each order's vendor profile (its vertex limit, kind, cloud
    and off-nadir limits). ``window`` (UTC) defaults to :func:`default_window` of the profile's kind at
    ``now`` (default: the current time).
    """
    if fmt not in _BUILDERS:
        raise ConfigError(f"unknown payload format {fmt!r}; choose one of: {', '.join(PAYLOAD_FORMATS)}")
    now = now or _dt.datetime.now(_dt.UTC)
    bodies = []
    for o in order.orders:
        v = _vendor_of(o, order, vendors)
        win = window or default_window(v.kind, now)
        geoms = fit_geometry(o.geometry, limits_for(fmt, v), label=o.order_id)
        for i, g in enumerate(geoms):
            oid = o.order_id if len(geoms) == 1 else f"{o.order_id}-{i + 1}"
            bodies.append(_BUILDERS[fmt](o, oid, g, v, win))
    return bodies


_PAIR = re.compile(r"\[\s+(-?[0-9][0-9.eE+-]*),\s+(-?[0-9][0-9.eE+-]*)\s+\]")


def dumps(bodies: Sequence[Mapping[str, Any]]) -> str:
    """Request bodies as indented JSON with each ``[lon, lat]`` pair on one line."""
    return _PAIR.sub(r"[\1, \2]", json.dumps(list(bodies), ensure_ascii=False, allow_nan=False, indent=2)) + "\n"


def count_placeholders(x: Any) -> int:
    """Values starting with :data:`TO_FILL` anywhere in ``x`` (nested dicts and lists)."""
    if isinstance(x, str):
        return int(x.startswith(TO_FILL))
    if isinstance(x, dict):
        return sum(count_placeholders(v) for v in x.values())
    if isinstance(x, list):
        return sum(count_placeholders(v) for v in x)
    return 0
