"""A hand-built order GeoJSON shaped like `zoomplan plan --out` writes (lon/lat, 7 decimals, summary).

Four orders near Accomac, Virginia (UTM 18N), built in metres and reprojected: a plain rectangle, a
MultiPolygon of two parts (the rectangle written clockwise), a polygon with a hole, and a wavy polygon of 1500 vertices.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry import MultiPolygon, Polygon, mapping
from shapely.geometry.polygon import orient

X0, Y0 = 440000.0, 4175000.0  # UTM 18N metres, near Accomac


def utm_orders() -> dict[str, shapely.Geometry]:
    theta = np.linspace(0.0, 2 * np.pi, 1500, endpoint=False)
    r = 500.0 + 40.0 * np.sin(37 * theta) + 15.0 * np.cos(91 * theta)
    wavy = Polygon(np.column_stack([X0 + 3000 + r * np.cos(theta), Y0 + 2000 + r * np.sin(theta)]))
    return {
        "a0_rect": shapely.box(X0, Y0, X0 + 600, Y0 + 400),
        "a0_multi": MultiPolygon(
            [shapely.box(X0 + 1000, Y0, X0 + 1400, Y0 + 300), shapely.box(X0 + 1600, Y0 + 100, X0 + 1900, Y0 + 500)]
        ),
        "a1_hole": Polygon(
            shapely.box(X0, Y0 + 1000, X0 + 800, Y0 + 1800).exterior,
            [shapely.box(X0 + 300, Y0 + 1300, X0 + 500, Y0 + 1500).exterior.coords[::-1]],
        ),
        "a1_wavy": wavy,
    }


def lonlat(g: shapely.Geometry, ccw: bool = True) -> shapely.Geometry:
    """UTM 18N -> lon/lat, snapped to 7 decimals, CCW exteriors as zoomplan writes (CW: as a legacy writer might)."""
    t = Transformer.from_crs(32618, 4326, always_xy=True)
    ll = shapely.set_precision(shapely.transform(g, lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1]))), 1e-7)
    sign = 1.0 if ccw else -1.0
    if isinstance(ll, Polygon):
        return orient(ll, sign)
    return MultiPolygon([orient(p, sign) for p in ll.geoms])


def write_order_file(path: Path, vendor: str = "clip-50cm", price: float = 15.0) -> dict[str, shapely.Geometry]:
    """Write the order file; returns {order_id: lon/lat geometry}."""
    feats, geoms = [], {}
    for i, (oid, g) in enumerate(utm_orders().items()):
        ll = lonlat(g, ccw=oid != "a0_rect")  # one order clockwise: exports must orient it
        geoms[oid] = ll
        km2 = g.area / 1e6
        feats.append(
            {
                "type": "Feature",
                "id": oid,
                "geometry": json.loads(json.dumps(mapping(ll))),
                "properties": {
                    "order_id": oid,
                    "vendor": vendor,
                    "product": "50 cm archive clip",
                    "area_km2": round(km2, 6),
                    "billed_km2": round(max(km2, 0.1), 6),
                    "price_per_km2": price,
                    "est_cost_usd": round(max(km2, 0.1) * price, 2),
                    "n_patches": 100 + i,
                    "mean_probability": 0.7,
                    "aoi_index": i // 2,
                    "dominant_classes": ["forest", "beach"],
                    "whole_aoi": False,
                    "width_ok": True,
                    "inside_aoi": True,
                    "aoi_id": f"field-{i // 2}",
                },
            }
        )
    summary = {"vendor": vendor, "n_orders": len(feats), "parameters": {"vendor": vendor, "vendors_file": None}}
    path.write_text(json.dumps({"type": "FeatureCollection", "features": feats, "summary": summary}))
    return geoms
