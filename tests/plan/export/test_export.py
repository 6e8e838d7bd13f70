"""GeoJSON export: RFC 7946 as an independent reader (GDAL via pyogrio) sees it."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import shapely
from pyproj import CRS, Transformer
from shapely.geometry import shape

from tests.plan.tables import km2, vendor
from zoomplan.plan.export.geojson import order_feature_collection, patches_feature_collection, write_geojson
from zoomplan.plan.orders.orders import baseline_cost, build_orders
from zoomplan.plan.orders.pricing import VendorProfile, bill, cost_summary
from zoomplan.plan.types import PatchTable

SITES = {32618: (500000.0, 4500000.0), 32755: (330000.0, 6100000.0)}


def make_table(aoi: shapely.Polygon, epsg: int, pm: float = 100.0, seed: int = 0) -> PatchTable:
    x0, y0, x1, y1 = aoi.bounds
    r, c = np.meshgrid(
        np.arange(np.floor(-y1 / pm), np.ceil(-y0 / pm)), np.arange(np.floor(x0 / pm), np.ceil(x1 / pm)), indexing="ij"
    )
    r, c = r.ravel().astype(np.int64), c.ravel().astype(np.int64)
    hit = shapely.intersects(aoi, shapely.box(c * pm, -(r + 1) * pm, (c + 1) * pm, -r * pm))
    r, c = r[hit], c[hit]
    n = len(r)
    rng = np.random.default_rng(seed)
    b = np.stack([c * pm + pm / 2, -r * pm - pm / 2], 1)
    bump = lambda dx, dy: np.exp(-(((b - b.mean(0) - (dx, dy)) / 400.0) ** 2).sum(1))  # noqa: E731
    prob = np.maximum(bump(-700, -500), bump(700, 600)) * 0.8 + 0.2 * rng.random(n)  # two clustered bumps
    return PatchTable(
        CRS.from_epsg(epsg),
        pm,
        (4, 4),
        r,
        c,
        prob.astype(np.float32),
        rng.integers(0, 3, n).astype(np.int32),
        rng.random(n).astype(np.float32),
        np.zeros(n, np.int32),
        ("field", "town", "water"),
    )


def plan(epsg: int, v: VendorProfile, threshold: float = 0.5):
    x, y = SITES[epsg]
    aoi = shapely.Polygon([(x, y), (x + 3000, y + 300), (x + 2900, y + 3000), (x + 200, y + 2800)])
    t = make_table(aoi, epsg)
    sel = t.prob > threshold if threshold > 0 else np.ones(len(t), bool)
    orders = build_orders(t, sel, [aoi], v)
    summary = {
        "aoi_km2": aoi.area / 1e6,
        "patches_selected": int(sel.sum()),
        "nan": float("nan"),
        **cost_summary(bill(orders, v), baseline_cost([aoi], v, t.crs), v),
    }
    return aoi, t, sel, orders, summary


def lonlat_aoi(aoi: shapely.Polygon, epsg: int) -> shapely.Geometry:
    tr = Transformer.from_crs(epsg, 4326, always_xy=True)
    return shapely.transform(aoi, lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1])))


def area_6933_km2(g: shapely.Geometry) -> float:
    tr = Transformer.from_crs(4326, 6933, always_xy=True)
    return shapely.transform(g, lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1]))).area / 1e6


def decimals_ok(coords) -> bool:
    return all(round(v, 7) == v for xy in coords for v in xy)


@pytest.mark.parametrize("epsg", sorted(SITES))
@pytest.mark.parametrize("multi", [False, True])
def test_order_geojson_is_rfc7946(tmp_path: Path, epsg: int, multi: bool) -> None:
    v = vendor(allows_multipolygon=multi)
    aoi, t, sel, orders, summary = plan(epsg, v)
    fc = order_feature_collection(orders, summary, t.crs, aoi_ids=["field-7"])
    out = tmp_path / "order.geojson"
    write_geojson(fc, out)
    assert [p.name for p in tmp_path.iterdir()] == ["order.geojson"]  # atomic: no temporary left
    raw = json.loads(out.read_text())
    assert raw["type"] == "FeatureCollection" and "crs" not in raw
    assert raw["summary"]["nan"] is None and raw["summary"]["plan_cost_usd"] == summary["plan_cost_usd"]
    assert raw["summary"]["plan_cost_usd"] <= raw["summary"]["baseline_cost_usd"]
    aoi_ll = lonlat_aoi(aoi, epsg)
    lon0 = -75.0 if epsg == 32618 else 147.0
    for f, o in zip(raw["features"], orders):
        p = f["properties"]
        assert p["order_id"] == o.order_id and p["aoi_id"] == "field-7" and p["vendor"] == "t"
        assert p["est_cost_usd"] == round(o.cost_usd, 2) and p["n_patches"] == o.n_patches
        assert set(p["dominant_classes"]) <= {"field", "town", "water"} and 0 <= p["mean_probability"] <= 1
        g = shape(f["geometry"])
        assert g.is_valid
        for poly in getattr(g, "geoms", [g]):
            assert poly.exterior.is_ccw and not poly.interiors
            assert decimals_ok(poly.exterior.coords)
            lon, lat = np.asarray(poly.exterior.coords).T
            assert np.all(np.abs(lon - lon0) < 3) and np.all((lat > 0) == (epsg == 32618))  # lon first, lat second
        assert g.difference(aoi_ll.buffer(1e-6)).area <= 1e-12  # inside the AOI up to rounding
        assert area_6933_km2(g) == pytest.approx(p["area_km2"], rel=5e-3)
    df = pyogrio.read_dataframe(out)  # GDAL, an independent reader
    assert len(df) == len(orders) and df.crs.to_epsg() == 4326
    assert list(df["order_id"]) == [o.order_id for o in orders]
    assert df.geometry.is_valid.all()
    assert df.to_crs(6933).area.sum() / 1e6 == pytest.approx(sum(o.area_km2 for o in orders), rel=5e-3)


def test_patches_geojson_and_stdout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    v = vendor()
    aoi, t, sel, orders, summary = plan(32755, v)
    t = dataclasses.replace(t, prob=t.prob.copy())
    t.prob[0] = np.nan
    fc = patches_feature_collection(t, sel)
    assert len(fc["features"]) == len(t)
    out = tmp_path / "patches.geojson"
    write_geojson(fc, out)
    df = pyogrio.read_dataframe(out)
    assert len(df) == len(t) and int(df["selected"].sum()) == int(sel.sum())
    assert df["probability"].isna().sum() == 1
    raw = json.loads(out.read_text())
    for f in raw["features"][:50]:
        ring = shapely.LinearRing(f["geometry"]["coordinates"][0])
        assert ring.is_ccw and decimals_ok(ring.coords)
    a = area_6933_km2(shape(raw["features"][1]["geometry"]))
    assert a == pytest.approx(0.01, rel=5e-3)  # a 100 m patch
    write_geojson(order_feature_collection(orders, summary, t.crs), "-")
    back = json.loads(capsys.readouterr().out)
    assert len(back["features"]) == len(orders)


def test_threshold_zero_export_costs_the_baseline() -> None:
    v = vendor()
    aoi, t, sel, orders, summary = plan(32618, v, threshold=0)
    assert summary["savings_usd"] == 0.0 and summary["plan_cost_usd"] == summary["baseline_cost_usd"]
    fc = order_feature_collection(orders, summary, t.crs)
    assert all(f["properties"]["whole_aoi"] for f in fc["features"])
    assert math.isclose(
        sum(f["properties"]["area_km2"] for f in fc["features"]), km2([aoi], t.crs), rel_tol=1e-6
    )  # on the ellipsoid
