"""Exports: a plan's orders as GeoJSON and a quicklook PNG, and an order file as GIS copies or vendors' payloads.

GeoJSON in lon/lat (:mod:`.geojson`, coordinates by :mod:`.lonlat`), the quicklook (:mod:`.quicklook`
laying out :mod:`.map_layers`), and ``zoomplan export`` (:mod:`.vendor_formats`: the order file read
back by :mod:`.order_file`, written by :mod:`.gis_formats` or :mod:`.payloads` with geometries fitted
by :mod:`.vendor_geometry`).
"""

from zoomplan.plan.export.geojson import order_feature_collection, patches_feature_collection, write_geojson
from zoomplan.plan.export.quicklook import render
from zoomplan.plan.export.vendor_formats import (
    FORMATS,
    GIS_FORMATS,
    PAYLOAD_FORMATS,
    ExportResult,
    OrderFeature,
    OrderFile,
    build_payloads,
    export_order,
    parse_window,
    read_order_file,
)

__all__ = [
    "FORMATS",
    "GIS_FORMATS",
    "PAYLOAD_FORMATS",
    "ExportResult",
    "OrderFeature",
    "OrderFile",
    "build_payloads",
    "export_order",
    "order_feature_collection",
    "parse_window",
    "patches_feature_collection",
    "read_order_file",
    "render",
    "write_geojson",
]
