"""Property tests of whole plans (hypothesis): random AOIs, given in lon/lat, over generated scenes in random
UTM zones of both hemispheres, planned end to end by ``plan()`` with a small random-weight model.

Invariants: every selected patch lies (with positive area) in the AOI feature it serves; the orders cover
every selected patch's part inside the AOI and the scene (AOIs may reach beyond it; that part is neither
planned nor priced); each order is billed at least its area and the vendor's
minimum; the plan never costs more than the baseline (the whole AOI); and the cost never rises with the
threshold (a higher threshold buys a subset of the patches).
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import pytest
import shapely
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyproj import Transformer

from tests.helpers.synth import utm_scene, write_aoi
from tests.plan.tables import km2, needed, overlap_m2
from zoomplan.plan.orders.pricing import get_vendor, load_vendors
from zoomplan.plan.pipeline import PlanResult, plan

REL = 1e-9

CASES = st.fixed_dictionaries(
    {
        "epsg": st.sampled_from([32600, 32700]).flatmap(lambda h: st.integers(h + 1, h + 60)),
        "x0": st.integers(300, 660).map(
            lambda k: k * 1000.0 + 37.0
        ),  # not on the 80 m grid: tiles straddle the scene edge
        "y0": st.integers(1200, 9200).map(lambda k: k * 1000.0 + 13.0),
        "n_vertices": st.integers(3, 14),
        "radius": st.floats(0.15, 0.7),  # of the scene's half-width: AOIs from one tile to beyond the scene
        "centre": st.tuples(st.floats(0.25, 0.75), st.floats(0.25, 0.75)),
        "two": st.booleans(),
        "seed": st.integers(0, 2**32 - 1),
        "thresholds": st.tuples(st.floats(0.0, 1.0), st.floats(0.0, 1.0)).map(sorted),
        "vendor": st.sampled_from(
            ["clip-30cm", "clip-50cm", "archive-50cm", "archive-30cm", "tasking-30cm"]
        ),  # the shipped profiles
    }
)

SIZE, RES = 64, 10.0


def star(rng: np.random.Generator, cx: float, cy: float, r: float, n: int) -> shapely.Polygon:
    a = np.sort(rng.uniform(0, 2 * np.pi, n))
    rr = r * rng.uniform(0.3, 1.0, n)
    g = shapely.make_valid(shapely.Polygon(np.column_stack([cx + rr * np.cos(a), cy + rr * np.sin(a)])))
    parts = [p for p in getattr(g, "geoms", [g]) if p.geom_type == "Polygon" and p.area > 1.0]
    return max(parts, key=lambda p: p.area) if parts else shapely.box(cx - r / 2, cy - r / 2, cx + r / 2, cy + r / 2)


def _plan(aoi: Path, scene: Path, ckpt: Path, vendor: str, threshold: float) -> PlanResult:
    return plan(aoi, [scene], model=ckpt, device="cpu", vendor=vendor, threshold=threshold)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(case=CASES)
def test_plans_keep_their_invariants(case: dict, tiny_checkpoint: Path) -> None:
    torch.set_num_threads(1)
    v = get_vendor(case["vendor"], load_vendors())
    rng = np.random.default_rng(case["seed"])
    epsg, x0, y0 = case["epsg"], case["x0"], case["y0"]
    half = SIZE * RES / 2
    cx, cy = x0 + 2 * half * case["centre"][0], y0 - 2 * half * case["centre"][1]
    feats = [star(rng, cx, cy, case["radius"] * half, case["n_vertices"])]
    if case["two"]:
        feats.append(star(rng, cx + half * 0.3, cy - half * 0.2, 0.4 * case["radius"] * half, case["n_vertices"]))
    to_ll = Transformer.from_crs(epsg, 4326, always_xy=True)
    ll = [
        shapely.transform(shapely.segmentize(f, 10.0), lambda xy: np.column_stack(to_ll.transform(xy[:, 0], xy[:, 1])))
        for f in feats
    ]
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        scene = utm_scene(d / "s.tif", epsg=epsg, x0=x0, y0=y0, size=SIZE, res=RES, seed=case["seed"] % 1000)
        aoi = write_aoi(d / "aoi.geojson", ll, "EPSG:4326")
        t_lo, t_hi = case["thresholds"]
        lo = _plan(aoi, scene, tiny_checkpoint, v.name, t_lo)
        hi = _plan(aoi, scene, tiny_checkpoint, v.name, t_hi)

    for r, t in ((lo, t_lo), (hi, t_hi)):
        assert r.table.crs.to_epsg() == epsg  # planned in the scene's UTM zone
        geoms = list(r.aoi.geoms)
        sel = np.nonzero(r.selected)[0]
        np.testing.assert_array_equal(r.selected, r.table.prob > t)
        boxes = shapely.box(*r.table.bounds()[sel].T) if sel.size else np.zeros(0, dtype=object)
        inside = [shapely.intersection(b, geoms[i]).area for b, i in zip(boxes, r.table.aoi_index[sel])]
        assert all(a > 0 for a in inside), "every selected patch lies in its AOI feature"
        footprint = shapely.box(x0, y0 - SIZE * RES, x0 + SIZE * RES, y0)
        # Every selected patch's part inside its feature is bought, crumbs aside (zoomplan.plan.orders.crumbs), by the
        # feature's own orders or, where features overlap, by an order merged with another feature's.
        have = shapely.union_all([o.geometry for o in r.orders])
        for i, g in enumerate(geoms):
            need = needed(r.table, sel[r.table.aoi_index[sel] == i], g.intersection(footprint))
            assert need.difference(have).area <= 1e-6 * max(need.area, 1.0), "the orders cover the selection"
        assert overlap_m2(r.orders) <= 1e-6 * max(have.area, 1.0), "no area is bought twice"
        for o in r.orders:
            assert o.billed_km2 >= o.area_km2 * (1 - REL) and o.billed_km2 >= v.min_order_km2 * (1 - REL)
            assert math.isclose(o.cost_usd, o.billed_km2 * v.price_per_km2, rel_tol=1e-9)
        assert r.plan_bill.cost_usd <= r.baseline_bill.cost_usd * (1 + REL) + 1e-9, "plan <= baseline"
        inside = km2(
            [g.intersection(footprint) for g in geoms], r.table.crs
        )  # per feature: the baseline buys overlaps twice
        assert r.baseline_bill.area_km2 == pytest.approx(inside, rel=1e-6), (
            "the baseline buys each feature's part inside the scene"
        )
        if t == 0.0 and not case["two"]:
            assert r.plan_bill.cost_usd == pytest.approx(
                r.baseline_bill.cost_usd, rel=1e-9
            )  # everything selected: the baseline
        # (with two overlapping features the plan buys their shared area once: it may cost less than the baseline)
        assert r.summary["savings_usd"] >= -0.005

    np.testing.assert_array_equal(lo.table.prob, hi.table.prob)
    assert not (hi.selected & ~lo.selected).any()  # a higher threshold selects a subset
    assert hi.plan_bill.cost_usd <= lo.plan_bill.cost_usd * (1 + REL) + 1e-9, "cost is monotone in the threshold"
