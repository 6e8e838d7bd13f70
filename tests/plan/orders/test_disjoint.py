"""No area billed twice (issue 17): the orders of one plan never overlap, within a feature and across features."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import shapely
from pyproj import CRS
from shapely.geometry import shape

from tests.conftest import shared_data
from tests.plan.tables import grid_cells, lonlat_aoi, vendor
from zoomplan.plan.orders.area import Measure
from zoomplan.plan.orders.disjoint import clean, disjoint_area_gap, overlapping_pairs, resolve, split_holes
from zoomplan.plan.orders.orders import baseline_cost, plan_orders
from zoomplan.plan.orders.polygons import is_wide
from zoomplan.plan.orders.pricing import bill, load_vendors
from zoomplan.plan.types import PatchTable

X, Y = 500000.0, 4500000.0  # UTM 18N metres
UTM18 = CRS.from_epsg(32618)
REAL_SCENE = "sentinel2/s2_l1c_18SVG_20160112_rgbn_10m.tif"


def table_of(aois: list, pm: float = 100.0, seed: int = 0, epsg: int = 32618) -> PatchTable:
    """Every patch touching each AOI feature, each patch for the first feature it touches (as the planner
    plans a shared area once); seeded clustered probabilities."""
    rows, cols, idx, seen = [], [], [], set()
    for i, a in enumerate(aois):
        r, c = grid_cells(a, pm)
        for rr, cc in zip(r.tolist(), c.tolist()):
            if (rr, cc) not in seen:
                seen.add((rr, cc))
                rows.append(rr)
                cols.append(cc)
                idx.append(i)
    r, c = np.array(rows, np.int64), np.array(cols, np.int64)
    rng = np.random.default_rng(seed)
    cx, cy = (c + 0.5) * pm, -(r + 0.5) * pm
    p = np.zeros(r.size)
    for _ in range(5):
        x, y, s = rng.uniform(cx.min(), cx.max()), rng.uniform(cy.min(), cy.max()), rng.uniform(300, 1200)
        p = np.maximum(p, np.exp(-((cx - x) ** 2 + (cy - y) ** 2) / (2 * s * s)))
    n = r.size
    return PatchTable(
        CRS.from_epsg(epsg),
        pm,
        (4, 4),
        r,
        c,
        p.astype(np.float32),
        rng.integers(0, 3, n).astype(np.int32),
        rng.random(n).astype(np.float32),
        np.array(idx, np.int32),
        ("a", "b", "c"),
    )


def union_gap(orders) -> float:
    geoms = [o.geometry for o in orders]
    return disjoint_area_gap(geoms) / max(sum(g.area for g in geoms), 1.0)


def overlapping_features(scale: float) -> list:
    a = shapely.Polygon(
        [(X, Y), (X + 6000 * scale, Y + 300), (X + 5600 * scale, Y + 5000 * scale), (X + 200, Y + 4800 * scale)]
    )
    b = shapely.Point(X + 5000 * scale, Y + 2500 * scale).buffer(2600 * scale, quad_segs=16)
    c = shapely.box(X + 1000, Y + 1000, X + 2500 * scale, Y + 2500 * scale)  # wholly inside a
    return [a, b, c]


@pytest.mark.parametrize("vname", sorted(load_vendors()))
@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.6])
def test_packaged_vendors_never_bill_an_area_twice(vname: str, threshold: float) -> None:
    """Sum of order areas == area of their union (1e-6 relative), every packaged profile, three overlapping AOI
    features (one inside another), every selection from everything to clusters; never dearer than the baseline."""
    v = load_vendors()[vname]
    aois = overlapping_features(2.0 if v.min_order_km2 >= 25 else 1.0)
    t = table_of(aois, pm=100.0, seed=3)
    p = plan_orders(t, t.prob >= threshold, aois, v)
    assert p.orders
    assert union_gap(p.orders) <= 1e-6 and p.rules["overlaps"]["billed_twice_km2"] == 0.0
    for o in p.orders:
        assert o.geometry.is_valid and not o.geometry.is_empty
        assert o.geometry.geom_type == "Polygon" or v.allows_multipolygon
    assert bill(p.orders, v).cost_usd <= baseline_cost(aois, v, t.crs).cost_usd * (1 + 1e-9)
    if threshold == 0.0:
        assert p.rules["overlaps"]["shared_area_km2"] > 0  # the features' shared area was bought once, not twice


def test_two_small_overlapping_features_under_a_large_minimum_are_one_order() -> None:
    """The property tests' counter-example: two overlapping features under archive-50cm's 25 km^2 minimum cost
    700 USD bought whole (two minimums); cutting one by the other left two pieces and 1050 USD. Merged, they are
    one order at the minimum (350 USD)."""
    v = load_vendors()["archive-50cm"]
    a = shapely.box(X, Y, X + 1500, Y + 1500)
    b = shapely.box(X + 500, Y - 500, X + 1000, Y + 2500)  # crosses a: b minus a is two pieces
    t = table_of([a, b], pm=100.0, seed=1)
    base = baseline_cost([a, b], v, t.crs).cost_usd
    assert base == pytest.approx(2 * 25 * v.price_per_km2)
    for threshold in (0.0, 0.5):
        p = plan_orders(t, t.prob >= threshold, [a, b], v)
        assert len(p.orders) == 1 and bill(p.orders, v).cost_usd == pytest.approx(25 * v.price_per_km2)
        assert union_gap(p.orders) <= 1e-6


def test_fitted_orders_that_overlap_are_merged_and_never_cost_more() -> None:
    """A tight vertex limit fits pieces outwards, so neighbours overlap; they are merged (or cut)."""
    aoi = shapely.box(X, Y, X + 3000, Y + 3000)
    t = table_of([aoi], pm=100.0, seed=1)
    r, c = t.row - t.row.min(), t.col - t.col.min()
    sel = ((r + c) % 7 < 2) & (r > 2) & (c > 2)  # diagonal staircases
    for multi in (False, True):
        v = vendor(max_vertices=8, min_order_km2=0.0, allows_multipolygon=multi)
        p = plan_orders(t, sel, [aoi], v)
        assert union_gap(p.orders) <= 1e-6
        assert all(o.geometry.is_valid for o in p.orders)
        assert sum(o.cost_usd for o in p.orders) <= p.references["union"] + 1e-9


def test_resolve_merges_cuts_and_keeps_the_width() -> None:
    m = Measure(UTM18)
    a, b = shapely.box(X, Y, X + 100, Y + 100), shapely.box(X + 50, Y, X + 150, Y + 100)
    g, mm, ins, owner, n = resolve(
        [a, b],
        [np.array([0]), np.array([1])],
        [True, True],
        shapely.box(X, Y, X + 200, Y + 200),
        vendor(),
        m,
        1.0,
        owner=[0, 1],
    )
    assert (
        n == 1
        and len(g) == 1
        and g[0].area == pytest.approx(150 * 100)
        and sorted(mm[0].tolist()) == [0, 1]
        and owner == [0]
    )
    # over the vertex limit the union is no order: the later order is cut, unless that leaves a sliver under the width
    comb = shapely.union_all(
        [shapely.box(X + 20 * i, Y, X + 20 * i + 10, Y + 200) for i in range(6)] + [shapely.box(X, Y, X + 120, Y + 20)]
    )
    big = shapely.box(X - 100, Y + 100, X + 300, Y + 400)
    g, _, _, _, n = resolve(
        [big, comb],
        [np.array([0]), np.array([1])],
        [True, True],
        shapely.box(X - 500, Y - 500, X + 500, Y + 500),
        vendor(max_vertices=16, min_order_km2=0.0),
        m,
        1.0,
    )
    assert n == 1 and not overlapping_pairs(g) and disjoint_area_gap(g) == pytest.approx(0.0, abs=1e-6)
    ring = shapely.box(0, 0, 100, 100).difference(shapely.box(40, 40, 60, 60))
    pieces = split_holes(ring)
    assert len(pieces) >= 2 and all(not p.interiors and p.is_valid for p in pieces)
    assert sum(p.area for p in pieces) == pytest.approx(ring.area) and disjoint_area_gap(pieces) == pytest.approx(
        0.0, abs=1e-6
    )
    assert clean(shapely.Polygon([(0, 0), (10, 10), (10, 0), (0, 10)]))  # a bow-tie is repaired into its triangles


@pytest.mark.parametrize("vname", sorted(load_vendors()))
def test_real_scene_plan_never_bills_twice_and_writes_valid_geometry(tmp_path: Path, vname: str) -> None:
    """The shipped model on the real Sentinel-2 scene: a ring AOI (4 x 4 km, 2 x 2 km hole) and two overlapping
    squares, every packaged profile. Orders disjoint; every written lon/lat geometry valid after rounding and
    disjoint too; the plan no dearer than the baseline."""
    from zoomplan.plan.pipeline import plan

    scene = shared_data(REAL_SCENE)
    cx, cy = 442597.0, 4168650.0
    ring = shapely.box(cx - 2000, cy - 2000, cx + 2000, cy + 2000).difference(
        shapely.box(cx - 1000, cy - 1000, cx + 1000, cy + 1000)
    )
    a = shapely.box(cx + 2500, cy - 1500, cx + 4500, cy + 500)
    b = shapely.box(cx + 3500, cy - 500, cx + 5500, cy + 1500)
    aoi = lonlat_aoi(tmp_path / "aoi.geojson", [ring, a, b])
    out = tmp_path / "order.geojson"
    r = plan(aoi, [scene], vendor=vname, out=out, threads=1)
    assert r.orders and union_gap(r.orders) <= 1e-6
    assert r.summary["order_rules"]["overlaps"]["billed_twice_km2"] == 0.0
    assert r.summary["plan_cost_usd"] <= r.summary["baseline_cost_usd"]
    fc = json.loads(out.read_text())
    written = [shape(f["geometry"]) for f in fc["features"]]
    assert all(g.is_valid and not g.is_empty for g in written)
    assert disjoint_area_gap(written) <= 1e-6 * sum(g.area for g in written)


def test_a_narrow_cut_is_regrown_clear_of_the_order_it_overlapped() -> None:
    """The real scene's case (clip-30cm, whole scene): an order at its vertex limit and a 120 m square (a patch
    grown to the 100 m width) overlapping it by 60 x 120 m. Their union is over the limit (fitting it fills a
    0.3 km^2 gap between teeth, dearer than the square's 0.25 km^2 minimum) and cutting the square leaves a piece
    60 m wide: the piece is regrown to 100 m clear of the big order, not billed twice (as it was) and not fitted."""
    m = Measure(UTM18)
    teeth = [shapely.box(X + 400 * i, Y + 400, X + 400 * i + 100, Y + 1400) for i in range(3)]  # gaps 300 x 1000 m
    big = shapely.union_all([shapely.box(X, Y, X + 900, Y + 400), *teeth])  # 12 vertices, at the limit
    square = shapely.box(X + 440, Y + 800, X + 560, Y + 920)  # on the middle tooth, 60 m of it inside
    v = vendor(max_vertices=12, min_order_km2=0.25, min_width_m=100.0)
    within = shapely.box(X - 1000, Y - 1000, X + 3000, Y + 3000)
    g, _, _, _, n = resolve([big, square], [np.array([0]), np.array([1])], [True, True], within, v, m, 1.0)
    assert n == 1 and len(g) == 2 and disjoint_area_gap(g) == pytest.approx(0.0, abs=1e-6)
    assert g[0].equals(big)  # the big order untouched
    assert g[1].covers(square.difference(big)) and g[1].intersection(big).area == pytest.approx(0.0, abs=1e-6)
    assert is_wide(g[1], 100.0) and g[1].area < 2 * square.area  # regrown to the width, not much more
