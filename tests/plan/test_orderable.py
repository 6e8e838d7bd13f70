"""orderable's bound: a plan sure to bill more than the bound is dropped, and only such a plan."""

from __future__ import annotations

import math

import numpy as np
import shapely
from shapely.geometry import Polygon

from zoomplan.plan.orderable import bill_usd, orderable

from tables import vendor

WITHIN = shapely.box(-1000, -1000, 3000, 3000)


def _staircase(x0: float, steps: int, step: float = 20.0) -> Polygon:
    """A staircase polygon of ``steps`` 20 m steps: 2 * steps + 2 vertices."""
    pts = [(x0, 0.0)]
    for i in range(steps):
        pts += [(x0 + i * step, (i + 1) * step), (x0 + (i + 1) * step, (i + 1) * step)]
    pts += [(x0 + steps * step, 0.0), (x0, 0.0)]
    return Polygon(pts)


def test_bound_drops_only_plans_that_bill_more() -> None:
    v = vendor(max_vertices=12, min_order_km2=0.0, price_per_km2=1e6)  # 1 USD per m^2: bills are areas
    pieces = [_staircase(0.0, 20), _staircase(600.0, 3)]  # the first must be fitted (42 vertices > 12), growing it
    members = [np.array([0]), np.array([1])]
    free = orderable(pieces, members, WITHIN, v, 5.0, "k")
    assert free is not None
    floor = bill_usd(np.array([p.area for p in pieces]), v)
    assert free.cost_usd > floor * 1.01  # fitting the staircase grew it
    assert orderable(pieces, members, WITHIN, v, 5.0, "k", bound=floor * 0.99) is None  # below the floor: no fitting needed to know
    assert orderable(pieces, members, WITHIN, v, 5.0, "k", bound=free.cost_usd * 0.999) is None  # above once fitted
    kept = orderable(pieces, members, WITHIN, v, 5.0, "k", bound=free.cost_usd)  # equal is not more: kept, the same plan
    assert kept is not None and kept.cost_usd == free.cost_usd
    assert [g.wkb for g in kept.geoms] == [g.wkb for g in free.geoms]
    assert orderable(pieces, members, WITHIN, v, 5.0, "k", bound=math.inf) is not None


def test_pieces_fitted_in_threads_are_those_fitted_one_by_one(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import zoomplan.plan.orderable as mod

    v = vendor(max_vertices=12, min_order_km2=0.0)
    pieces = [_staircase(700.0 * i, 6 + i) for i in range(8)]  # 8 pieces over the limit, each fitted
    members = [np.array([i]) for i in range(8)]
    monkeypatch.setattr(mod, "FIT_THREADS", 1)
    one = orderable(pieces, members, WITHIN, v, 5.0, "k")
    monkeypatch.setattr(mod, "FIT_THREADS", 4)
    four = orderable(pieces, members, WITHIN, v, 5.0, "k")
    assert one is not None and four is not None
    assert all(shapely.get_num_coordinates(g) - 1 <= 12 for g in four.geoms)
    assert [g.wkb for g in four.geoms] == [g.wkb for g in one.geoms] and four.cost_usd == one.cost_usd
