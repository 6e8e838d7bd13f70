"""Holes respected (issue 17): an order around an AOI hole is split around it or filled, whichever bills less, and says
which."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import shapely

from tests.conftest import shared_data
from tests.plan.tables import km2, lonlat_aoi, overlap_m2, random_table, vendor
from zoomplan.plan.orders.orders import plan_orders, whole_aoi_orders
from zoomplan.plan.orders.pricing import bill, load_vendors

X, Y = 500000.0, 4500000.0
V = load_vendors()
REAL_SCENE = "sentinel2/s2_l1c_18SVG_20160112_rgbn_10m.tif"


def ring(side: float, hole: float, x: float = X, y: float = Y) -> shapely.Polygon:
    c = side / 2
    return shapely.box(x, y, x + side, y + side).difference(
        shapely.box(x + c - hole / 2, y + c - hole / 2, x + c + hole / 2, y + c + hole / 2)
    )


def in_hole_km2(orders, aoi: shapely.Geometry) -> float:
    filled = shapely.union_all([shapely.Polygon(q.exterior) for q in getattr(aoi, "geoms", [aoi])])
    hole = filled.difference(aoi)
    return sum(o.geometry.intersection(hole).area for o in orders) / 1e6


@pytest.mark.parametrize("vname", ["clip-30cm", "clip-50cm"])
def test_a_ring_bought_whole_does_not_buy_its_hole(vname: str) -> None:
    """4 x 4 km with a 2 x 2 km hole, every patch selected: 12 km^2 bought, not 16; the summary says split.
    (Pieces around a hole share an edge, which a MultiPolygon may not: separate orders for clip-50cm too.)"""
    aoi = ring(4000, 2000)
    t = random_table(aoi, pm=100.0)
    v = V[vname]
    p = plan_orders(t, np.ones(len(t), bool), [aoi], v)
    assert in_hole_km2(p.orders, aoi) == pytest.approx(0.0, abs=1e-9)
    assert sum(o.geometry.area for o in p.orders) == pytest.approx(12e6, rel=1e-9)
    assert bill(p.orders, v).cost_usd == pytest.approx(km2([aoi], t.crs) * v.price_per_km2, rel=1e-6)
    assert overlap_m2(p.orders) <= 1e-6
    assert all(not q.interiors for o in p.orders for q in getattr(o.geometry, "geoms", [o.geometry]))
    assert all(o.geometry.is_valid for o in p.orders)
    rep = p.rules["holes"]
    assert rep["orders_split"] >= 1 and rep["hole_km2_not_bought"] == pytest.approx(4.0, rel=1e-6)
    assert [o.billed_km2 for o in whole_aoi_orders(aoi, 0, v, t.crs)] == [
        o.billed_km2 for o in p.orders
    ]  # the baseline too


def test_a_small_hole_under_a_large_minimum_is_filled_and_says_so() -> None:
    """5 x 5 km with a 0.6 x 0.6 km hole under a 25 km^2 minimum: two pieces would bill 50 km^2, the filled square
    25."""
    aoi = ring(5000, 600)
    v = V["archive-50cm"]
    (o,) = whole_aoi_orders(aoi, 0, v, random_table(aoi).crs)
    assert o.geometry.area == pytest.approx(25e6)
    t = random_table(aoi, pm=100.0)
    p = plan_orders(t, np.ones(len(t), bool), [aoi], v)
    (row,) = p.rules["holes"]["choices"]
    assert row["choice"] == "filled" and row["split_usd"] is None and "width" in row["why"]  # 2.5 km pieces, 5 km rule
    v = vendor(min_order_km2=25.0, max_vertices=500)  # no width rule: the bill decides
    p = plan_orders(t, np.ones(len(t), bool), [aoi], v)
    (row,) = p.rules["holes"]["choices"]
    assert row["choice"] == "filled" and row["split_usd"] > row["filled_usd"] and "cost no less" in row["why"]


def test_a_multipolygon_feature_with_holes_and_a_partial_selection() -> None:
    """Two holed parts, a selection of half the patches: no order buys a hole where splitting is cheaper."""
    aoi = shapely.union_all([ring(2000, 800), ring(1500, 500, X + 3000, Y)])
    t = random_table(aoi, pm=100.0, seed=4)
    for v in (V["clip-30cm"], V["clip-50cm"], vendor(min_order_km2=0.0, min_width_m=300.0)):
        p = plan_orders(t, t.prob > 0.3, [aoi], v)
        rep = p.rules["holes"]
        assert rep["orders_split"] + rep["orders_filled"] == len(rep["choices"])
        assert in_hole_km2(p.orders, aoi) == pytest.approx(rep["hole_km2_bought"], abs=1e-6)
        assert overlap_m2(p.orders) <= 1e-6
        for row in rep["choices"]:
            assert (row["choice"] == "split") == (row["split_usd"] is not None and row["split_usd"] < row["filled_usd"])


def test_the_real_scene_ring_plans(tmp_path: Path) -> None:
    """Issue 17, item 6: a 4 x 4 km square AOI with a 2 x 2 km hole over the real Sentinel-2 scene, clip-30cm,
    stopped with "collapses when rounded to 7 decimals of degree". It plans, writes valid lon/lat orders that
    do not overlap, and buys no hole area where splitting is cheaper."""
    from zoomplan.plan.pipeline import plan

    scene = shared_data(REAL_SCENE)
    g = ring(4000, 2000, 446644.0 - 2000, 4166968.0 - 2000)
    out = tmp_path / "order.geojson"
    for threshold in (None, 0.0):
        r = plan(
            lonlat_aoi(tmp_path / "ring.geojson", [g]),
            [scene],
            vendor="clip-30cm",
            out=out,
            threshold=threshold,
            threads=1,
        )
        fc = json.loads(out.read_text())
        written = [shapely.geometry.shape(f["geometry"]) for f in fc["features"]]
        assert written and all(w.is_valid and not w.is_empty for w in written)
        assert overlap_m2(r.orders) <= 1e-6
        rep = r.summary["order_rules"]["holes"]
        assert in_hole_km2(r.orders, r.aoi.geoms[0]) == pytest.approx(rep["hole_km2_bought"], abs=1e-3)
    assert (
        rep["hole_km2_bought"] == 0.0 and r.summary["baseline_billed_km2"] < 12.1
    )  # bought whole: the ring, not its hole
