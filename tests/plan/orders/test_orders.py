"""Orders: consolidation of selected patches into polygons a vendor sells, and their bill."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import CRS, Transformer

from tests.plan.tables import km2, needed, overlap_m2, vendor
from zoomplan.errors import GeometryError, InputError
from zoomplan.plan.orders.orders import (
    baseline_cost,
    build_orders,
    component_orders,
    is_wide,
    n_vertices,
    plan_orders,
    whole_aoi_orders,
)
from zoomplan.plan.orders.pricing import VendorProfile, bill, cost_summary, load_vendors
from zoomplan.plan.types import PatchTable


def make_table(aois: list, epsg: int, pm: float = 100.0, seed: int = 0) -> PatchTable:
    """Every patch touching each AOI feature (first feature wins), random probabilities."""
    rows, cols, idx = [], [], []
    seen: set = set()
    for i, a in enumerate(aois):
        x0, y0, x1, y1 = a.bounds
        r, c = np.meshgrid(
            np.arange(np.floor(-y1 / pm), np.ceil(-y0 / pm)),
            np.arange(np.floor(x0 / pm), np.ceil(x1 / pm)),
            indexing="ij",
        )
        r, c = r.ravel().astype(np.int64), c.ravel().astype(np.int64)
        hit = shapely.intersects(a, shapely.box(c * pm, -(r + 1) * pm, (c + 1) * pm, -r * pm))
        for rr, cc in zip(r[hit].tolist(), c[hit].tolist()):
            if (rr, cc) not in seen:
                seen.add((rr, cc))
                rows.append(rr)
                cols.append(cc)
                idx.append(i)
    n = len(rows)
    rng = np.random.default_rng(seed)
    return PatchTable(
        CRS.from_epsg(epsg),
        pm,
        (4, 4),
        np.array(rows, np.int64),
        np.array(cols, np.int64),
        rng.random(n).astype(np.float32),
        rng.integers(0, 3, n).astype(np.int32),
        rng.random(n).astype(np.float32),
        np.array(idx, np.int32),
        ("field", "town", "water"),
    )


def blobby(t: PatchTable, n: int = 4, seed: int = 1) -> PatchTable:
    """Spatially clustered probabilities (a few Gaussian bumps), like a real policy's."""
    rng = np.random.default_rng(seed)
    b = t.bounds()
    cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    p = np.zeros(len(t))
    for _ in range(n):
        x, y, s = rng.uniform(cx.min(), cx.max()), rng.uniform(cy.min(), cy.max()), rng.uniform(150, 400)
        p = np.maximum(p, np.exp(-((cx - x) ** 2 + (cy - y) ** 2) / (2 * s * s)))
    return dataclasses.replace(t, prob=p.astype(np.float32))


SITES = {32618: (500000.0, 4500000.0), 32755: (330000.0, 6100000.0)}  # New York-ish; south-east Australia


def quad(epsg: int, w: float = 3000.0) -> shapely.Polygon:
    x, y = SITES[epsg]
    return shapely.Polygon([(x, y), (x + w, y + 0.1 * w), (x + 0.95 * w, y + w), (x + 0.1 * w, y + 0.9 * w)])


def area_6933_km2(g: shapely.Geometry, epsg: int) -> float:
    tr = Transformer.from_crs(epsg, 6933, always_xy=True)
    return (
        shapely.transform(g.segmentize(50.0), lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1]))).area / 1e6
    )


def check_orders(orders, t: PatchTable, sel: np.ndarray, aois: list, v: VendorProfile, twice_km2: float = 0.0) -> None:
    """The buyer's rules on ``orders``; ``twice_km2``: the area the plan reports billed twice
    (``order_rules.overlaps.billed_twice_km2``), allowed only under a vertex limit far below any shipped profile's."""
    for o in orders:
        g = o.geometry
        assert g.is_valid and not g.is_empty
        assert all(len(p.interiors) == 0 for p in getattr(g, "geoms", [g])), "orders have no holes"
        assert g.geom_type == "Polygon" or v.allows_multipolygon
        assert n_vertices(g) <= v.max_vertices
        aoi = shapely.Polygon(aois[o.aoi_index].exterior)
        assert o.inside_aoi or v.max_vertices < 10  # only a tiny vertex limit may force an order beyond the AOI
        if o.inside_aoi:
            assert g.difference(aoi).area <= 1e-6 * g.area
        assert o.area_km2 == pytest.approx(
            km2([g], t.crs), rel=1e-12
        )  # billed on the ellipsoid (zoomplan.plan.orders.area)
        assert o.area_km2 == pytest.approx(
            area_6933_km2(g, t.crs.to_epsg()), rel=1e-3
        )  # as an equal-area CRS measures it
        assert o.billed_km2 == max(o.area_km2, v.min_order_km2) and o.cost_usd == o.billed_km2 * v.price_per_km2
    tol = 1e-6 * max(sum(o.geometry.area for o in orders), 1.0)
    if twice_km2 == 0.0:
        assert overlap_m2(orders) <= tol, "no area is billed twice"
    else:  # kept only where settling it would cost more, and then reported as it is
        assert v.max_vertices < 100 and overlap_m2(orders) == pytest.approx(twice_km2 * 1e6, abs=max(tol, 1.0))
    # every selected patch (its part inside its AOI feature, crumbs aside) is bought
    for i, a in enumerate(aois):
        need = needed(t, np.nonzero(sel & (t.aoi_index == i))[0], a)
        have = shapely.union_all([o.geometry for o in orders if o.aoi_index == i])
        assert need.difference(have).area <= 1e-6 * max(need.area, 1.0)
    # plan <= baseline
    assert bill(orders, v).cost_usd <= baseline_cost(aois, v, t.crs).cost_usd + 1e-9


@pytest.mark.parametrize("epsg", sorted(SITES))
@pytest.mark.parametrize("vname", ["clip-30cm", "clip-50cm"])
def test_orders_obey_the_vendor_rules(epsg: int, vname: str) -> None:
    aoi = quad(epsg)
    t = blobby(make_table([aoi], epsg))
    v = load_vendors()[vname]
    sel = t.prob > 0.5
    orders = build_orders(t, sel, [aoi], v)
    assert orders and not any(o.whole_aoi for o in orders)
    check_orders(orders, t, sel, [aoi], v)
    assert sum(o.n_patches for o in orders) == sel.sum()
    ids = [o.order_id for o in orders]
    assert len(set(ids)) == len(ids) and all(i.startswith("a0_r") for i in ids)
    assert ids == [o.order_id for o in build_orders(t, sel, [aoi], v)], "ids are stable"
    assert bill(orders, v).cost_usd < baseline_cost([aoi], v, t.crs).cost_usd


def test_component_orders_are_drawn_one_per_component() -> None:
    """The finest plan (the budget's items): every order a drawn Polygon (none left as cells), one per
    component of the selection (holes filled), together covering it inside the AOI."""
    aoi = quad(32618)
    t = blobby(make_table([aoi], 32618))
    sel = t.prob > 0.5
    filled = shapely.union_all(
        [shapely.Polygon(p.exterior) for p in shapely.get_parts(shapely.union_all(shapely.box(*t.bounds()[sel].T)))]
    ).intersection(aoi)
    for v in (vendor(min_order_km2=0.0), vendor(min_order_km2=0.0, allows_multipolygon=True, max_vertices=12)):
        orders = component_orders(t, sel, [aoi], v)
        assert orders and all(isinstance(o.geometry, shapely.Polygon) for o in orders)
        check_orders(orders, t, sel, [aoi], v)
        if v.max_vertices > 100:  # nothing fitted: the orders are the filled selection's parts inside the AOI
            assert len(orders) == len(shapely.get_parts(filled))
            assert sum(o.geometry.area for o in orders) == pytest.approx(filled.area, rel=1e-9)


def test_salt_and_pepper_is_consolidated_against_minimums() -> None:
    aoi = quad(32618, 2000.0)
    t = make_table([aoi], 32618)
    v = vendor(min_order_km2=0.25)
    sel = t.prob > 0.8  # scattered single patches, each 0.01 km^2
    orders = build_orders(t, sel, [aoi], v)
    check_orders(orders, t, sel, [aoi], v)
    assert bill(orders, v).cost_usd < sel.sum() * 0.25 * 10.0  # cheaper than one minimum per patch


def test_threshold_zero_is_the_baseline_and_nothing_costs_nothing() -> None:
    aois = [quad(32618), shapely.box(506000, 4500000, 507000, 4501500)]
    t = make_table(aois, 32618)
    for v in (vendor(), vendor(allows_multipolygon=True), load_vendors()["archive-50cm"]):
        orders = build_orders(t, np.ones(len(t), bool), aois, v)
        assert all(o.whole_aoi for o in orders) and {o.aoi_index for o in orders} == {0, 1}
        assert bill(orders, v).cost_usd == baseline_cost(aois, v, t.crs).cost_usd
        assert build_orders(t, np.zeros(len(t), bool), aois, v) == []


def test_large_minimum_on_a_small_aoi_saves_nothing() -> None:
    aoi = quad(32618)  # about 8 km^2, under a 25 km^2 minimum
    t = blobby(make_table([aoi], 32618))
    v = load_vendors()["archive-30cm"]
    orders = build_orders(t, t.prob > 0.5, [aoi], v)
    assert [o.whole_aoi for o in orders] == [True]
    assert bill(orders, v).cost_usd == baseline_cost([aoi], v, t.crs).cost_usd == 25 * v.price_per_km2
    s = cost_summary(bill(orders, v), baseline_cost([aoi], v, t.crs), v, orders=orders)
    assert s["savings_usd"] == 0.0 and s["whole_aoi_features"] == [0] and "whole AOI" in s["note"]


def test_min_width_grows_inside_the_aoi() -> None:
    x, y = SITES[32618]
    aoi = shapely.box(x, y, x + 4000, y + 4000)
    t = make_table([aoi], 32618)
    sel = np.zeros(len(t), bool)
    corner = (t.col == t.col.min()) & (t.row == t.row.min())  # the NW corner patch
    strip = (t.row == t.row.min() + 20) & (t.col < t.col.min() + 30)  # a 100 m x 3 km strip
    sel[corner | strip] = True
    v = vendor(min_width_m=1000.0, min_order_km2=0.0)
    orders = build_orders(t, sel, [aoi], v)
    check_orders(orders, t, sel, [aoi], v)
    for o in orders:
        assert o.width_ok and is_wide(o.geometry, 1000.0, tol=1e-9)
    nw = [o for o in orders if o.geometry.contains(shapely.Point(x + 50, y + 3950))]
    assert len(nw) == 1 and nw[0].geometry.equals(shapely.box(x, y + 3000, x + 1000, y + 4000))  # shifted inside
    assert sum(o.geometry.area for o in orders) / 1e6 == pytest.approx(1.0 + 3.0)


def test_vertex_limit_and_holes() -> None:
    x, y = SITES[32755]
    aoi = shapely.box(x, y, x + 3000, y + 3000)
    t = make_table([aoi], 32755)
    r, c = t.row - t.row.min(), t.col - t.col.min()
    ring = ((r >= 5) & (r <= 20) & (c >= 5) & (c <= 20)) & ~((r > 6) & (r < 19) & (c > 6) & (c < 19))
    stairs = (r + c >= 24) & (r + c <= 26) & (r >= 3) & (c >= 3) & (r < 27) & (c < 27)
    sel = ring | stairs
    v = vendor(max_vertices=12, min_order_km2=0.0)
    orders = build_orders(t, sel, [aoi], v)
    check_orders(orders, t, sel, [aoi], v)
    v = vendor(max_vertices=12, min_order_km2=0.0, allows_multipolygon=True)
    orders = build_orders(t, sel, [aoi], v)
    check_orders(orders, t, sel, [aoi], v)
    patches = shapely.union_all(shapely.box(*t.bounds()[sel].T))
    assert bill(orders, v).cost_usd == pytest.approx(
        km2([patches], t.crs) * 10.0, rel=1e-6
    )  # no minimum: the patches alone, not the ring's hole
    v = vendor(max_vertices=12, min_order_km2=0.05, allows_multipolygon=True)
    orders = build_orders(t, sel, [aoi], v)
    assert len(orders) == 1
    check_orders(orders, t, sel, [aoi], v)


def test_aoi_with_hole_and_whole_orders_of_a_complex_aoi() -> None:
    x, y = SITES[32618]
    outer = shapely.Point(x + 2000, y + 2000).buffer(1500, quad_segs=64)  # 256 vertices
    holed = outer.difference(shapely.box(x + 1800, y + 1800, x + 2200, y + 2200))
    v = vendor(max_vertices=40, min_order_km2=0.0)
    (o,) = whole_aoi_orders(holed, 0, v, CRS.from_epsg(32618))
    assert n_vertices(o.geometry) <= 40 and not o.geometry.interiors and o.geometry.covers(outer)
    assert not o.inside_aoi and o.area_km2 == pytest.approx(outer.area / 1e6, rel=0.02)


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 10**6),
    threshold=st.floats(0.05, 0.95),
    multi=st.booleans(),
    min_order=st.sampled_from([0.0, 0.05, 0.5]),
    min_width=st.sampled_from([0.0, 300.0]),
    max_vertices=st.sampled_from([8, 50, 500]),
)
def test_rules_hold_for_any_selection(
    seed: int, threshold: float, multi: bool, min_order: float, min_width: float, max_vertices: int
) -> None:
    aoi = quad(32755, 2000.0)
    t = make_table([aoi], 32755, seed=seed)
    if seed % 2:
        t = blobby(t, seed=seed)
    v = vendor(allows_multipolygon=multi, min_order_km2=min_order, min_width_m=min_width, max_vertices=max_vertices)
    sel = t.prob > threshold
    p = plan_orders(t, sel, [aoi], v)
    assert bool(p.orders) == bool(sel.any())
    check_orders(p.orders, t, sel, [aoi], v, p.rules["overlaps"]["billed_twice_km2"])


def test_bad_inputs() -> None:
    aoi = quad(32618)
    t = make_table([aoi], 32618)
    with pytest.raises(InputError, match="boolean"):
        build_orders(t, np.ones(len(t) - 1, bool), [aoi], vendor())
    with pytest.raises(InputError, match="AOI features"):
        build_orders(t, np.ones(len(t), bool), [], vendor())
    with pytest.raises(GeometryError, match="metres"):
        build_orders(dataclasses.replace(t, crs=CRS.from_epsg(4326)), np.ones(len(t), bool), [aoi], vendor())


def test_long_20m_strips_become_orderable_or_are_explained() -> None:
    """Issue 17: a 20 m strip of selected patches (a fixed mask's column) under clip-30cm's 100 m minimum
    width is ordered as a strip 100 m wide; in an AOI only 40 m wide it cannot be, and the summary says why."""

    x, y = SITES[32618]
    v = load_vendors()["clip-30cm"]
    assert v.min_width_m == 100.0
    for aoi, wide in ((shapely.box(x, y, x + 2000, y + 4000), True), (shapely.box(x, y, x + 40, y + 4000), False)):
        t = make_table([aoi], 32618, pm=20.0)
        sel = t.col == t.col.min() + (50 if wide else 0)  # one patch column, 4 km long
        p = plan_orders(t, sel, [aoi], v)
        check_orders(p.orders, t, sel, [aoi], v)
        assert all(o.width_ok == wide for o in p.orders)
        if wide:
            assert p.rules["width"]["orders_narrower"] == 0 and all(
                is_wide(o.geometry, 100.0, tol=1e-9) for o in p.orders
            )
            assert sum(o.geometry.area for o in p.orders) == pytest.approx(
                100 * 4000
            )  # 5 patches wide, not the whole AOI
        else:
            assert p.rules["width"]["orders_narrower"] == len(p.orders) > 0 and "narrower" in p.rules["width"]["why"]
