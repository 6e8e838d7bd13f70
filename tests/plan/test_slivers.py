"""Slivers: a patch is bought only for its part inside the AOI; crumbs cut off by the outline are not ordered."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zoomplan.plan.orders import plan_orders
from zoomplan.plan.pricing import bill, load_vendors
from zoomplan.plan.slivers import SLIVER_SHARE, is_sliver

from plan.tables import random_table, vendor

X, Y = 500000.0, 4500000.0
PROFILES = [*load_vendors().values(), vendor(min_order_km2=0.05), vendor(min_order_km2=0.0, allows_multipolygon=True)]


def tilted(angle: float, w: float = 1700.0, h: float = 1300.0) -> shapely.Polygon:
    """A rectangle turned by ``angle`` degrees off the patch grid, so its outline cuts patches anywhere."""
    from shapely import affinity

    return affinity.rotate(shapely.box(X + 137.0, Y + 61.0, X + 137.0 + w, Y + 61.0 + h), angle, origin="centroid")


def in_aoi_m2(t, aoi) -> np.ndarray:
    b = t.bounds()
    return shapely.area(shapely.intersection(shapely.box(b[:, 0], b[:, 1], b[:, 2], b[:, 3]), aoi))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(angle=st.floats(1.0, 44.0), seed=st.integers(0, 10**6), threshold=st.floats(0.2, 0.9), k=st.integers(0, len(PROFILES) - 1))
def test_the_plan_never_costs_more_than_the_selection_without_slivers(angle: float, seed: int, threshold: float, k: int) -> None:
    """bill(plan(selection)) <= bill(plan(selection - slivers)) + the cheapest cover of the slivers
    (0: they are dropped or bought by a neighbouring order); the report adds up."""
    v = PROFILES[k]
    aoi = tilted(angle)
    t = random_table(aoi, seed=seed)
    sel = t.prob > threshold
    crumbs = sel & is_sliver(in_aoi_m2(t, aoi), t.patch_m) & (in_aoi_m2(t, aoi) > 0)
    full = plan_orders(t, sel, [aoi], v)
    lean = plan_orders(t, sel & ~crumbs, [aoi], v)
    assert bill(full.orders, v).cost_usd <= bill(lean.orders, v).cost_usd * (1 + 1e-9) + 1e-9
    rep = full.rules["slivers"]
    if sel.sum() < len(t):  # a feature bought whole needs no sliver rule
        assert rep["patches"] == crumbs.sum()
        assert rep["merged_patches"] + rep["dropped_patches"] == rep["patches"]
        assert rep["dropped_km2"] >= -1e-9 and rep["merged_km2"] + rep["dropped_km2"] == pytest.approx(rep["area_km2"], abs=2e-6)


def test_crumbs_along_the_outline_are_dropped_and_reported() -> None:
    """Only patches with a sliver inside the AOI selected: no order (no minimum paid), reported."""
    aoi = tilted(17.0)
    t = random_table(aoi, seed=0)
    a = in_aoi_m2(t, aoi)
    sel = (a > 0) & is_sliver(a, t.patch_m)
    assert sel.sum() >= 10
    v = load_vendors()["clip-30cm"]
    p = plan_orders(t, sel, [aoi], v)
    assert p.orders == []
    rep = p.rules["slivers"]
    assert rep["patches"] == sel.sum() == rep["dropped_patches"] and rep["merged_patches"] == 0
    assert rep["dropped_km2"] == pytest.approx(a[sel].sum() / 1e6, abs=1e-6)
    assert f"{SLIVER_SHARE:.0%}" in rep["rule"]
    # with the rest of a row beside them, they are merged into its order instead (no extra order for them)
    p2 = plan_orders(t, sel | (t.prob > 0.5), [aoi], v)
    assert p2.rules["slivers"]["merged_patches"] + p2.rules["slivers"]["dropped_patches"] == sel.sum()
