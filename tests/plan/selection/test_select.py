"""Selection: threshold, max fraction and budget (never above it)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.plan.tables import km2, vendor
from tests.plan.tables import random_table as make_table
from zoomplan.errors import ConfigError
from zoomplan.plan.orders.orders import baseline_cost
from zoomplan.plan.selection.select import _budget_prefix, plan_cost, rank, select, select_patches

AOI = shapely.Polygon([(500000, 4500000), (502000, 4500200), (501900, 4502000), (500200, 4501800)])


TABLE = make_table(AOI)


def test_threshold_rule() -> None:
    t = dataclasses.replace(TABLE, prob=TABLE.prob.copy())
    t.prob[:3] = [0.0, 1.0, np.nan]
    v = vendor()
    assert select_patches(t, [AOI], v, threshold=0).all()
    assert select_patches(t, [AOI], v, threshold=-1).all()
    assert not select_patches(t, [AOI], v, threshold=1.01).any()
    assert not select_patches(t, [AOI], v, threshold=1.0).any()
    s = select_patches(t, [AOI], v)  # default 0.5: prob > 0.5
    assert np.array_equal(s, np.nan_to_num(t.prob, nan=0) > 0.5)


def test_max_fraction_takes_the_best() -> None:
    s = select_patches(TABLE, [AOI], vendor(), threshold=0, max_fraction=0.25)
    assert s.sum() == int(0.25 * len(TABLE))
    assert TABLE.prob[s].min() >= TABLE.prob[~s].max()
    assert select_patches(TABLE, [AOI], vendor(), threshold=0.9, max_fraction=1.0).sum() == (TABLE.prob > 0.9).sum()
    order = rank(TABLE)
    assert np.all(np.diff(TABLE.prob[order]) <= 0)


def test_budget_edges() -> None:
    v = vendor()
    assert not select_patches(TABLE, [AOI], v, threshold=0, budget_usd=0.0).any()
    base = baseline_cost([AOI], v, TABLE.crs).cost_usd
    assert select_patches(TABLE, [AOI], v, threshold=0, budget_usd=base).all()
    thr = select_patches(TABLE, [AOI], v, threshold=0.7)
    assert np.array_equal(select_patches(TABLE, [AOI], v, threshold=0.7, budget_usd=1e9), thr)


@pytest.mark.parametrize(
    "bad", [dict(budget_usd=-1.0), dict(budget_usd=float("inf")), dict(max_fraction=1.5), dict(threshold=float("nan"))]
)
def test_bad_options(bad: dict) -> None:
    with pytest.raises(ConfigError):
        select_patches(TABLE, [AOI], vendor(), **bad)


@settings(max_examples=25, deadline=None)
@given(
    frac=st.floats(0.0, 1.1),
    threshold=st.sampled_from([0.0, 0.3, 0.6]),
    multi=st.booleans(),
    min_order=st.sampled_from([0.0, 0.1, 1.0]),
    seed=st.integers(0, 3),
)
def test_budget_is_never_exceeded(frac: float, threshold: float, multi: bool, min_order: float, seed: int) -> None:
    t = dataclasses.replace(TABLE, prob=np.random.default_rng(seed).random(len(TABLE)).astype(np.float32))
    v = vendor(allows_multipolygon=multi, min_order_km2=min_order)
    base = baseline_cost([AOI], v, t.crs).cost_usd
    budget = frac * base
    r = select(t, [AOI], v, threshold=threshold, budget_usd=budget)
    s = r.selected
    assert np.array_equal(s, select_patches(t, [AOI], v, threshold=threshold, budget_usd=budget))
    cost = plan_cost(t, s, [AOI], v)
    assert cost <= budget
    assert cost <= base + 1e-9
    cand = t.prob > threshold if threshold > 0 else np.ones(len(t), bool)
    assert not (s & ~cand).any()
    dropped = np.zeros(len(t), bool)
    dropped[r.dropped.patches] = True
    assert not (dropped & s).any() and not (dropped & ~cand).any()
    if (
        s.any() and (~s & cand).any()
    ):  # best first: a candidate left out that beats what was taken is reported as dropped
        better = cand & ~s & (t.prob > t.prob[s].min())
        assert not (better & ~dropped).any()
    order = rank(t)
    order = order[cand[order]]
    k0 = _budget_prefix(t, order, [AOI], v, budget)  # the plain best-first rule's choice: never worth more
    assert t.prob[s].astype(float).sum() >= t.prob[order[:k0]].astype(float).sum() - 1e-6
    rep = r.report()
    assert rep["n_patches"] == dropped.sum() and rep["n_orders"] == len(r.dropped.orders)
    assert all(o["reason"].startswith("value ") for o in rep["orders"])
    assert (rep["reason"] != "") == bool(dropped.any())


def test_budget_drops_isolated_minimum_charges_for_a_cluster() -> None:
    """An isolated patch of probability 0.95 pays a whole minimum charge; a cluster of 0.6 ones is worth more per
    USD."""
    t = dataclasses.replace(TABLE, prob=np.zeros(len(TABLE), np.float32))
    r, c = TABLE.row - TABLE.row.min(), TABLE.col - TABLE.col.min()
    t.prob[(r >= 5) & (r < 10) & (c >= 5) & (c < 10)] = 0.6  # 25 patches of 0.01 km^2 = 0.25 km^2, one minimum charge
    lonely = np.nonzero((r == 15) & (c == 15))[0]
    t.prob[lonely] = 0.95
    v = vendor(min_order_km2=0.25)  # USD 2.50 per order at least
    prefix = select_patches(
        t, [AOI], v, threshold=0.5, budget_usd=3.0
    )  # what a best-first prefix would buy: the lonely patch first
    r_ = select(t, [AOI], v, threshold=0.5, budget_usd=3.0)
    assert r_.selected.sum() == 25 and not r_.selected[lonely].any() and np.array_equal(prefix, r_.selected)
    cluster = shapely.union_all(
        shapely.box(*t.bounds()[r_.selected].T)
    )  # 0.25 km^2 planar, a little more on the ellipsoid
    assert plan_cost(t, r_.selected, [AOI], v) == pytest.approx(10.0 * max(km2([cluster], t.crs), 0.25))
    assert r_.dropped.patches.tolist() == lonely.tolist()
    (o,) = r_.report()["orders"]
    assert o["n_patches"] == 1 and o["value"] == pytest.approx(0.95) and o["cost_usd"] == 2.5
    assert "minimum charge" in o["reason"] and "below the plan's marginal value per USD" in o["reason"]
