"""Shapes that survive reprojection (issue 17): areas billed on the ellipsoid, order polygons densified before
they are written in lon/lat, so that what a vendor measures of the written polygon is what zoomplan billed."""

from __future__ import annotations

import json

import numpy as np
import pytest
import shapely
from pyproj import CRS, Geod, Proj, Transformer
from shapely.geometry import shape

from zoomplan.plan.export.geojson import order_feature_collection
from zoomplan.plan.export.lonlat import TOLERANCE_M, densify, snap, written
from zoomplan.plan.orders.area import areal_scale, ellipsoidal_m2
from zoomplan.plan.orders.orders import whole_aoi_orders
from zoomplan.plan.orders.pricing import load_vendors

GEOD = Geod(ellps="WGS84")
KM_PER_DEG = 80.0  # about, at these latitudes: x offsets of whole degrees from the central meridian

SITES = [(32618, 4150000.0), (32755, 6100000.0), (32633, 7500000.0)]  # 37 N, 35 S, 68 N


def geodesic_m2(ll: shapely.Geometry) -> float:
    return abs(GEOD.geometry_area_perimeter(ll)[0])


def equal_area_m2(ll: shapely.Geometry) -> float:
    """Area of the lon/lat polygon's vertices in EPSG:6933 (cylindrical equal area), edges straight there."""
    tr = Transformer.from_crs(4326, 6933, always_xy=True)
    return shapely.transform(ll, lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1]))).area


def as_read_in_utm(ll: shapely.Geometry, epsg: int) -> shapely.Geometry:
    """The written polygon as an RFC 7946 reader sees it (edges straight in degrees), back in UTM metres."""
    fine = shapely.segmentize(ll, 1e-4)  # about 10 m: the straight lon/lat edges, traced
    tr = Transformer.from_crs(4326, epsg, always_xy=True)
    return shapely.transform(fine, lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1])))


def strips(x: float, y: float) -> dict[str, shapely.Polygon]:
    """Long thin orders centred at (x, y): 61 km north-south and east-west by 200 m, one at 30 degrees, and a 60 km
    square."""
    ns = shapely.box(x - 100, y - 30500, x + 100, y + 30500)
    return {
        "ns": ns,
        "ew": shapely.box(x - 30500, y - 100, x + 30500, y + 100),
        "slant": shapely.affinity.rotate(ns, 30.0),
        "square": shapely.box(x - 30000, y - 30000, x + 30000, y + 30000),
    }


@pytest.mark.parametrize("epsg,y", SITES)
@pytest.mark.parametrize("off", [0, 3, 5, -5])
def test_billed_area_is_the_geodesic_area_far_from_the_central_meridian(epsg: int, y: float, off: int) -> None:
    """Planar UTM areas are off by up to 0.4% five degrees from the central meridian; the billed area is
    within 1e-4 of the geodesic area of the densified lon/lat polygon (7.5e-6 measured for 61 km strips)."""
    crs = CRS.from_epsg(epsg)
    tr = Transformer.from_crs(crs, 4326, always_xy=True)
    for name, g in strips(500000.0 + off * KM_PER_DEG * 1000, y).items():
        ll = densify(g, tr, 0.01)
        e = ellipsoidal_m2([g], crs)[0]
        assert e == pytest.approx(geodesic_m2(ll), rel=1e-4), name
        if off == 5:
            assert g.area / geodesic_m2(ll) - 1 > 2e-3, "planar UTM areas are too far off here to bill"


def test_areal_scale_is_pyprojs() -> None:
    for epsg, y in SITES:
        crs = CRS.from_epsg(epsg)
        x = np.array([500000.0, 740000.0, 100000.0])
        lon, lat = Transformer.from_crs(crs, 4326, always_xy=True).transform(x, np.full(3, y))
        want = Proj(crs).get_factors(lon, lat).areal_scale
        np.testing.assert_allclose(areal_scale(crs, x, np.full(3, y)), want, rtol=1e-9)


@pytest.mark.parametrize("epsg,y", SITES)
@pytest.mark.parametrize("off", [0, 5])
def test_written_orders_keep_their_shape_and_area(epsg: int, y: float, off: int) -> None:
    """Every long thin order of a plan, written as zoomplan writes it (GeoJSON, 7 decimals): read back as
    straight lon/lat edges it lies within a few cm of the planned polygon, and the vendor's measure of it
    (geodesic, or EPSG:6933) agrees with area_km2 and billed_km2 within 0.1%. Vertex by vertex, without
    densifying, the east-west edges stray by tens of metres."""
    crs = CRS.from_epsg(epsg)
    v = load_vendors()["clip-30cm"]
    shapes = strips(500000.0 + off * KM_PER_DEG * 1000, y)
    orders = [o for i, g in enumerate(shapes.values()) for o in whole_aoi_orders(g, i, v, crs)]
    fc = json.loads(json.dumps(order_feature_collection(orders, {}, crs, max_vertices=v.max_vertices)))
    for f, o, (name, g) in zip(fc["features"], orders, shapes.items()):
        ll = shape(f["geometry"])
        assert ll.is_valid and len(ll.exterior.coords) - 1 <= v.max_vertices
        p = f["properties"]
        for measured in (geodesic_m2(ll), equal_area_m2(ll)):
            assert p["area_km2"] == pytest.approx(measured / 1e6, rel=1e-3), name
            assert p["billed_km2"] == pytest.approx(max(measured / 1e6, v.min_order_km2), rel=1e-3), name
        assert o.area_km2 == pytest.approx(geodesic_m2(ll) / 1e6, rel=1e-4)
        back = as_read_in_utm(ll, epsg)
        assert back.hausdorff_distance(g) < TOLERANCE_M + 0.02, name  # 7 decimals of degree: about 1 cm more
        naive = snap(
            shapely.transform(
                g,
                lambda xy: np.column_stack(
                    Transformer.from_crs(crs, 4326, always_xy=True).transform(xy[:, 0], xy[:, 1])
                ),
            )
        )
        if name in ("ew", "square"):
            assert as_read_in_utm(naive, epsg).hausdorff_distance(g) > 10.0, "without densifying, edges stray"


def test_densifying_stays_within_the_vertex_limit() -> None:
    """A 60 km square needs vertices along its edges; under a tight limit the tolerance is relaxed, never the limit."""
    crs = CRS.from_epsg(32618)
    tr = Transformer.from_crs(crs, 4326, always_xy=True)
    g = strips(740000.0, 4150000.0)["square"]
    free = written(g, tr)
    assert len(free.exterior.coords) - 1 > 20
    tight = written(g, tr, max_vertices=12)
    assert 4 <= len(tight.exterior.coords) - 1 <= 12 and tight.is_valid


def test_snapping_to_7_decimals_keeps_rings_valid() -> None:
    """A hole 3e-8 degree from its shell snaps into the shell at 1e-7: still one valid polygon."""
    g = shapely.Polygon(
        [(0, 0), (1e-3, 0), (1e-3, 1e-3), (0, 1e-3)], [[(1e-4, 3e-8), (5e-4, 3e-8), (5e-4, 4e-4), (1e-4, 4e-4)]]
    )
    s = snap(g)
    assert s.is_valid and s.geom_type in ("Polygon", "MultiPolygon") and s.area == pytest.approx(g.area, rel=1e-3)
