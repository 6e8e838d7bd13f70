"""orderable: the bound drops only plans sure to bill more; fitting in threads; pieces known by their cells; the
collinear test."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
import shapely.affinity
from shapely.geometry import Polygon

from tests.plan.tables import vendor
from zoomplan.plan.orders.orderable import Cells, _collinear, bill_usd, orderable

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
    assert (
        orderable(pieces, members, WITHIN, v, 5.0, "k", bound=floor * 0.99) is None
    )  # below the floor: no fitting needed to know
    assert orderable(pieces, members, WITHIN, v, 5.0, "k", bound=free.cost_usd * 0.999) is None  # above once fitted
    kept = orderable(
        pieces, members, WITHIN, v, 5.0, "k", bound=free.cost_usd
    )  # equal is not more: kept, the same plan
    assert kept is not None and kept.cost_usd == free.cost_usd
    assert [g.wkb for g in kept.geoms] == [g.wkb for g in free.geoms]
    assert orderable(pieces, members, WITHIN, v, 5.0, "k", bound=math.inf) is not None


def test_pieces_fitted_in_threads_are_those_fitted_one_by_one(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import zoomplan.plan.orders.orderable as mod

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


def _cells_of(pieces: list[Polygon], which: set[int]) -> tuple[list, object]:
    """The pieces, those in ``which`` as Cells (area, vertices, bounds), and the resolve that draws them."""
    out: list = [
        Cells(p.area, len(p.exterior.coords) - 1, p.bounds, j) if j in which else p for j, p in enumerate(pieces)
    ]
    return out, lambda keys: [pieces[k] for k in keys]


def test_pieces_known_by_their_cells_give_the_plan_of_the_drawn_pieces() -> None:
    """Cells stand for pieces within the limit: the bill, the packing and, once drawn, every order are
    those of the same plan made from the polygons (a packing vendor and one that does not pack)."""
    boxes = [shapely.box(300.0 * i, 0.0, 300.0 * i + 100.0 + 20 * i, 120.0) for i in range(6)]
    pieces = [*boxes[:3], _staircase(2000.0, 10), *boxes[3:]]  # the staircase (22 vertices) is fitted
    members = [np.array([i]) for i in range(len(pieces))]
    for multi in (False, True):
        v = vendor(max_vertices=12, min_order_km2=0.02, allows_multipolygon=multi)
        want = orderable(pieces, members, WITHIN, v, 5.0, "k")
        lazy, resolve = _cells_of(pieces, {0, 1, 2, 4, 6})
        got = orderable(lazy, members, WITHIN, v, 5.0, "k", resolve=resolve)
        assert want is not None and got is not None and got.resolve is not None
        assert any(isinstance(g, Cells) for g in got.geoms) or multi  # undrawn until asked
        assert got.cost_usd == pytest.approx(want.cost_usd, rel=1e-12)
        drawn = got.drawn()
        assert [g.wkb for g in drawn.geoms] == [g.wkb for g in want.geoms]
        assert [m.tolist() for m in drawn.members] == [m.tolist() for m in want.members] and drawn.inside == want.inside
        if not multi:  # the bound prunes as pieces are fitted, with Cells billed by their area
            assert orderable(lazy, members, WITHIN, v, 5.0, "k", resolve=resolve, bound=want.cost_usd * 0.999) is None
        assert orderable(lazy, members, WITHIN, v, 5.0, "k", resolve=resolve, bound=want.cost_usd) is not None


def test_cells_over_the_limit_or_without_resolve_are_refused() -> None:
    v = vendor(max_vertices=12)
    p = _staircase(0.0, 10)
    with pytest.raises(ValueError, match="resolve"):
        orderable([Cells(p.area, 22, p.bounds, 0)], [np.array([0])], WITHIN, v, 5.0, "k")
    with pytest.raises(ValueError, match="vertex limit"):
        orderable([Cells(p.area, 22, p.bounds, 0)], [np.array([0])], WITHIN, v, 5.0, "k", resolve=lambda keys: [p])


def test_collinear_flags_every_polygon_simplify_would_change() -> None:
    """The cheap test before simplify(g, 0.0): a polygon it passes is one simplify returns unchanged."""
    rng = np.random.default_rng(5)
    polys = [
        _staircase(0.0, 4),
        shapely.box(0, 0, 2, 2),
        Polygon([(0, 0), (1, 0), (2, 0), (2, 2), (0, 2)]),
        Polygon([(0, 1), (0, 0), (2, 0), (2, 2), (0, 2)]),
        Polygon([(0, 0), (2, 0), (2, 0), (2, 2), (0, 2)]),
        shapely.box(0, 0, 3, 3).difference(shapely.box(1, 1, 2, 2)),
        Polygon(),
    ]
    for _ in range(300):  # grid polygons clipped by a slanted square: GDAL-like rings and GEOS overlay output
        cells = rng.random((8, 8)) < 0.6
        g = shapely.union_all([shapely.box(c, r, c + 1, r + 1) for r, c in zip(*np.nonzero(cells))])
        clip = shapely.affinity.rotate(shapely.box(1, 1, 7, 7), float(rng.uniform(-30, 30)))
        polys += [
            Polygon(p.exterior)
            for p in getattr(g.intersection(clip), "geoms", [g.intersection(clip)])
            if isinstance(p, Polygon)
        ]
    arr = np.asarray(polys, dtype=object)
    flagged = _collinear(arr)
    changed = np.array([shapely.simplify(p, 0.0).wkb != p.wkb for p in polys])
    assert not (changed & ~flagged).any()
    assert flagged[[2, 3, 4, 5, 6]].all() and not flagged[[0, 1]].any()
    assert (~flagged).sum() > 100  # most pass: the test is worth having


def test_threaded_shapely_calls_equal_one_call(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import zoomplan.plan.orders.orderable as mod

    rng = np.random.default_rng(3)
    clip = shapely.Point(50, 50).buffer(40)
    for n in (0, 1, 3, 4, 7, 50):
        arr = np.asarray(
            [shapely.box(*xy, *(xy + rng.uniform(5, 30, 2))) for xy in rng.uniform(0, 90, (n, 2))], dtype=object
        )
        want = shapely.intersection(arr, clip)
        for threads in (1, 2, 3):
            monkeypatch.setattr(mod, "FIT_THREADS", threads)
            got = mod.threaded(shapely.intersection, arr, clip)
            assert got.shape == want.shape and [g.wkb for g in got] == [g.wkb for g in want]
