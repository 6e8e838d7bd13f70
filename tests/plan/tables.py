"""Shared builders for the plan tests: vendor profiles and patch tables over an AOI (UTM metres)."""

from __future__ import annotations

import numpy as np
import shapely
from pyproj import CRS

from zoomplan.plan.orders.pricing import VendorProfile
from zoomplan.plan.types import PatchTable


def vendor(**over: object) -> VendorProfile:
    """A plain archive profile (USD 10/km^2, 0.1 km^2 minimum, no width rule); ``over`` replaces fields."""
    kw: dict = dict(
        name="t",
        product="p",
        resolution_m=0.5,
        kind="archive",
        currency="USD",
        price_per_km2=10.0,
        min_order_km2=0.1,
        min_width_m=0.0,
        max_vertices=200,
        allows_multipolygon=False,
        cloud_max_pct=20.0,
        off_nadir_max_deg=30.0,
        source="test",
        as_of="2026-11",
    )
    kw.update(over)
    return VendorProfile(**kw)


def grid_cells(aoi: shapely.Geometry, pm: float) -> tuple[np.ndarray, np.ndarray]:
    """(row, col) of every patch of edge ``pm`` metres that intersects ``aoi`` (PatchTable convention)."""
    x0, y0, x1, y1 = aoi.bounds
    r, c = np.meshgrid(
        np.arange(np.floor(-y1 / pm), np.ceil(-y0 / pm)), np.arange(np.floor(x0 / pm), np.ceil(x1 / pm)), indexing="ij"
    )
    r, c = r.ravel().astype(np.int64), c.ravel().astype(np.int64)
    hit = shapely.intersects(aoi, shapely.box(c * pm, -(r + 1) * pm, (c + 1) * pm, -r * pm))
    return r[hit], c[hit]


def random_table(aoi: shapely.Geometry, pm: float = 100.0, seed: int = 0, epsg: int = 32618) -> PatchTable:
    """Every patch touching ``aoi`` with seeded random probabilities, classes and confidences."""
    r, c = grid_cells(aoi, pm)
    n = len(r)
    rng = np.random.default_rng(seed)
    return PatchTable(
        CRS.from_epsg(epsg),
        pm,
        (4, 4),
        r,
        c,
        rng.random(n).astype(np.float32),
        rng.integers(0, 3, n).astype(np.int32),
        rng.random(n).astype(np.float32),
        np.zeros(n, np.int32),
        ("a", "b", "c"),
    )


def needed(t: PatchTable, idx: np.ndarray, f: shapely.Geometry) -> shapely.Geometry:
    """What the orders must buy of patches ``idx`` (table indices) of feature ``f``: each patch's part
    inside ``f`` without its crumbs (pieces under CRUMB_SHARE of a patch, zoomplan.plan.orders.crumbs)."""
    from zoomplan.plan.orders.crumbs import CRUMB_SHARE

    if not len(idx):
        return shapely.Polygon()
    b = t.bounds(idx)
    parts = shapely.get_parts(shapely.intersection(shapely.box(b[:, 0], b[:, 1], b[:, 2], b[:, 3]), f))
    parts = parts[(shapely.get_type_id(parts) == 3) & (shapely.area(parts) >= CRUMB_SHARE * t.patch_m**2)]
    return shapely.union_all(parts) if parts.size else shapely.Polygon()


def km2(geoms, crs: CRS) -> float:
    """Billed area (km^2 on the ellipsoid, zoomplan.plan.orders.area) of geometries in projected ``crs``, summed."""
    from zoomplan.plan.orders.area import ellipsoidal_m2

    return float(ellipsoidal_m2(list(geoms), crs).sum()) / 1e6


def overlap_m2(orders) -> float:
    """Sum of the orders' areas minus the area of their union (m^2, planar): 0 when no area is bought twice."""
    from zoomplan.plan.orders.disjoint import disjoint_area_gap

    return disjoint_area_gap([o.geometry for o in orders])


def lonlat_aoi(path, geoms_utm, epsg: int = 32618):
    """An AOI file of ``geoms_utm`` (metres, EPSG ``epsg``) written in lon/lat, as users draw them; its path."""
    from pyproj import Transformer

    from tests.helpers.synth import write_aoi

    tr = Transformer.from_crs(epsg, 4326, always_xy=True)
    ll = [shapely.transform(g, lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1]))) for g in geoms_utm]
    return write_aoi(path, ll, "EPSG:4326", ids=[f"f{i}" for i in range(len(ll))])
