"""Holes respected: an order around an AOI hole is split around it or filled, whichever bills less, and says which."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import shapely

from zoomplan.plan.disjoint import disjoint_area_gap
from zoomplan.plan.orders import plan_orders, whole_aoi_orders
from zoomplan.plan.pricing import bill, load_vendors

from conftest import shared_data
from plan.tables import random_table, vendor

X, Y = 500000.0, 4500000.0
V = load_vendors()


def ring(side: float, hole: float, x: float = X, y: float = Y) -> shapely.Polygon:
    c = side / 2
    return shapely.box(x, y, x + side, y + side).difference(shapely.box(x + c - hole / 2, y + c - hole / 2, x + c + hole / 2, y + c + hole / 2))


def in_hole_km2(orders, aoi: shapely.Geometry) -> float:
    filled = shapely.union_all([shapely.Polygon(q.exterior) for q in getattr(aoi, "geoms", [aoi])])
    hole = filled.difference(aoi)
    return sum(o.geometry.intersection(hole).area for o in orders) / 1e6


@pytest.mark.parametrize("vname", ["clip-30cm", "clip-50cm"])
def test_a_ring_bought_whole_does_not_buy_its_hole(vname: str) -> None:
    """4 x 4 km with a 2 x 2 km hole, every patch selected: 12 km^2 billed, not 16; the summary says split."""
    aoi = ring(4000, 2000)
    t = random_table(aoi, pm=100.0)
    p = plan_orders(t, np.ones(len(t), bool), [aoi], V[vname])
    assert in_hole_km2(p.orders, aoi) == pytest.approx(0.0, abs=1e-9)
    assert bill(p.orders, V[vname]).billed_km2 == pytest.approx(12.0, rel=1e-6)
    assert disjoint_area_gap([o.geometry for o in p.orders]) <= 1e-6
    assert all(not q.interiors for o in p.orders for q in getattr(o.geometry, "geoms", [o.geometry]))
    rep = p.rules["holes"]
    assert rep["orders_split"] >= 1 and rep["hole_km2_not_bought"] == pytest.approx(4.0, rel=1e-6)
    if V[vname].allows_multipolygon:
        assert len(p.orders) == 1 and p.orders[0].geometry.geom_type == "MultiPolygon"


def test_a_small_hole_under_a_large_minimum_is_filled_and_says_so() -> None:
    """5 x 5 km with a 0.6 x 0.6 km hole under a 25 km^2 minimum: two pieces would bill 50 km^2, the filled square 25."""
    aoi = ring(5000, 600)
    v = V["archive-50cm"]
    (o,) = whole_aoi_orders(aoi, 0, v, random_table(aoi).crs)
    assert o.area_km2 == pytest.approx(25.0)
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
    v = V["clip-30cm"]
    p = plan_orders(t, t.prob > 0.3, [aoi], v)
    rep = p.rules["holes"]
    assert rep["orders_split"] + rep["orders_filled"] == len(rep["choices"])
    assert in_hole_km2(p.orders, aoi) == pytest.approx(rep["hole_km2_bought"], abs=1e-6)
    for row in rep["choices"]:
        assert (row["choice"] == "split") == (row["split_usd"] is not None and row["split_usd"] < row["filled_usd"])


def test_the_real_scene_ring_plans(tmp_path: Path) -> None:
    """The ring of issue 17 over the real Sentinel-2 scene (4 x 4 km, 2 x 2 km hole, clip-30cm): it plans,
    writes valid lon/lat orders, and buys no hole area where splitting is cheaper."""
    from zoomplan.plan.pipeline import plan

    from plan.test_disjoint import REAL_SCENE, _write_aoi

    scene = shared_data(REAL_SCENE)
    g = ring(4000, 2000, 446644.0 - 2000, 4166968.0 - 2000)
    out = tmp_path / "order.geojson"
    r = plan(_write_aoi(tmp_path / "ring.geojson", [g]), [scene], vendor="clip-30cm", out=out, threads=1)
    fc = json.loads(out.read_text())
    assert fc["features"] and all(shapely.geometry.shape(f["geometry"]).is_valid for f in fc["features"])
    rep = r.summary["order_rules"]["holes"]
    assert in_hole_km2(r.orders, r.aoi.geoms[0]) == pytest.approx(rep["hole_km2_bought"], abs=1e-3)
