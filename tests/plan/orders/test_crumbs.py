"""No minimum charge for a crumb (issue 17): a patch is bought only for its part inside the AOI; pieces of it the
outline cuts off, under 10% of a patch, are ordered for no one (merged into a neighbour's order, or dropped)."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.plan.tables import km2, needed, random_table, vendor
from zoomplan.plan.orders.crumbs import CRUMB_SHARE
from zoomplan.plan.orders.orders import plan_orders
from zoomplan.plan.orders.pricing import bill, load_vendors

X, Y = 500000.0, 4500000.0
PROFILES = [*load_vendors().values(), vendor(min_order_km2=0.05), vendor(min_order_km2=0.0, allows_multipolygon=True)]


def tilted(angle: float, w: float = 1700.0, h: float = 1300.0) -> shapely.Polygon:
    """A rectangle turned by ``angle`` degrees off the patch grid, so its outline cuts patches anywhere."""
    from shapely import affinity

    return affinity.rotate(shapely.box(X + 137.0, Y + 61.0, X + 137.0 + w, Y + 61.0 + h), angle, origin="centroid")


def pieces(t, aoi) -> tuple[np.ndarray, np.ndarray]:
    """Per patch: the area of its pieces inside ``aoi`` that are crumbs, and of those that are not (m^2)."""
    b = t.bounds()
    parts, idx = shapely.get_parts(
        shapely.intersection(shapely.box(b[:, 0], b[:, 1], b[:, 2], b[:, 3]), aoi), return_index=True
    )
    a = shapely.area(parts)
    small = a < CRUMB_SHARE * t.patch_m**2
    return np.bincount(idx[small], a[small], minlength=len(t)), np.bincount(idx[~small], a[~small], minlength=len(t))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    angle=st.floats(1.0, 44.0),
    seed=st.integers(0, 10**6),
    threshold=st.floats(0.2, 0.9),
    k=st.integers(0, len(PROFILES) - 1),
)
def test_the_plan_never_costs_more_than_the_selection_without_slivers(
    angle: float, seed: int, threshold: float, k: int
) -> None:
    """bill(plan(selection)) <= bill(plan(selection - slivers)) + the cheapest way to cover the slivers
    (each crumb alone, at the vendor's minimum); the report adds up."""
    v = PROFILES[k]
    aoi = tilted(angle)
    t = random_table(aoi, seed=seed)
    sel = t.prob > threshold
    crumb, kept = pieces(t, aoi)
    slivers = sel & (kept == 0) & (crumb > 0)
    full = plan_orders(t, sel, [aoi], v)
    lean = plan_orders(t, sel & ~slivers, [aoi], v)
    b = t.bounds()[slivers]
    cover = (
        sum(max(km2([p], t.crs), v.min_order_km2) for p in shapely.intersection(shapely.box(*b.T), aoi))
        * v.price_per_km2
    )
    assert bill(full.orders, v).cost_usd <= bill(lean.orders, v).cost_usd + cover + 1e-9
    assert needed(t, np.nonzero(sel)[0], aoi).difference(
        shapely.union_all([o.geometry for o in full.orders])
    ).area <= 1e-6 * max(kept[sel].sum(), 1.0)
    rep = full.rules["crumbs"]
    if sel.sum() < len(t):  # a feature bought whole needs no crumb rule
        assert rep["slivers"] == slivers.sum()
        assert rep["merged"] + rep["dropped"] == rep["crumbs"] >= rep["slivers"]
        assert rep["area_km2"] == pytest.approx(crumb[sel].sum() / 1e6, abs=1e-6)
        assert rep["dropped_km2"] >= 0 and rep["merged_km2"] + rep["dropped_km2"] == pytest.approx(
            rep["area_km2"], abs=2e-6
        )


def test_crumbs_along_the_outline_are_dropped_and_reported() -> None:
    """Only patches with a crumb inside the AOI selected: no order (no minimum paid), all reported as dropped;
    with the rows beside them selected too, their orders take some crumbs in for free (merged)."""
    aoi = tilted(17.0)
    t = random_table(aoi, seed=0)
    crumb, kept = pieces(t, aoi)
    sel = (kept == 0) & (crumb > 0)
    assert sel.sum() >= 10
    v = load_vendors()["clip-30cm"]
    p = plan_orders(t, sel, [aoi], v)
    assert p.orders == []
    rep = p.rules["crumbs"]
    assert rep["slivers"] == sel.sum() == rep["crumbs"] == rep["dropped"] and rep["merged"] == 0
    assert rep["dropped_km2"] == pytest.approx(crumb[sel].sum() / 1e6, abs=1e-6)
    assert f"{CRUMB_SHARE:.0%}" in rep["rule"]
    p2 = plan_orders(t, sel | (t.prob > 0.5), [aoi], v)
    assert p2.rules["crumbs"]["merged"] + p2.rules["crumbs"]["dropped"] == p2.rules["crumbs"]["crumbs"] >= sel.sum()


def test_a_curved_aoi_pays_no_minimum_for_a_crumb() -> None:
    """Issue 17's case: a curved AOI (a buffered hull) with 20 m patches, clip-30cm (0.25 km^2 minimum): every
    order holds a piece of a selected patch of at least 10% of a patch; before the rule, orders of under 1 m^2
    were billed the minimum."""
    aoi = shapely.MultiPoint(
        [(X, Y), (X + 1900, Y + 300), (X + 1200, Y + 1700), (X + 200, Y + 1400)]
    ).convex_hull.buffer(250, quad_segs=32)
    t = random_table(aoi, pm=20.0, seed=3)
    v = load_vendors()["clip-30cm"]
    sel = t.prob > 0.97  # scattered single patches, many cut by the outline
    p = plan_orders(t, sel, [aoi], v)
    need = needed(t, np.nonzero(sel)[0], aoi)
    assert p.orders and p.rules["crumbs"]["crumbs"] > 0
    for o in p.orders:
        assert o.geometry.intersection(need).area >= CRUMB_SHARE * t.patch_m**2 * (1 - 1e-9)
