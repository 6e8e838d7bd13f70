"""Mask morphology and polygonisation: the fused fill-and-label equals filling then labelling."""

from __future__ import annotations

import numpy as np
import pytest
from affine import Affine

from zoomplan.plan.morphology import closing, fill_and_label, fill_mask, label, opening

T = Affine(20.0, 0.0, 440000.0 + 1 / 3, 0.0, -20.0, 4170000.0)  # a UTM patch grid, off-integer origin


def _masks() -> list[np.ndarray]:
    rng = np.random.default_rng(11)
    out = []
    for i in range(60):
        h, w = (int(v) for v in rng.integers(1, 70, 2))
        if i % 2:
            out.append(rng.random((h, w)) < rng.uniform(0.1, 0.8))
        else:  # rings inside rings: holes holding components (nested ones are absorbed by the filling)
            yy, xx = np.mgrid[0:h, 0:w]
            out.append((np.hypot(yy - h / 2, xx - w / 2) % 10 < 4) ^ (rng.random((h, w)) < 0.05))
    ring = np.zeros((9, 9), bool)
    ring[1:8, 1:8] = True
    ring[2:7, 2:7] = False
    ring[4, 4] = True  # an island in the hole
    out.append(ring)
    return out


@pytest.mark.parametrize("i", range(61))
def test_fill_and_label_is_fill_then_label(i: int) -> None:
    a = _masks()[i]
    want_fill = fill_mask(a)
    want_lab, want = label(want_fill, T)
    got_fill, got_lab, got = fill_and_label(a, T)
    np.testing.assert_array_equal(got_fill, want_fill)
    assert len(got) == len(want)
    by_wkb = {p.wkb: k + 1 for k, p in enumerate(want)}  # same polygons, bit for bit, in any numbering
    perm = np.zeros(len(got) + 1, np.int64)
    perm[1:] = [by_wkb[p.wkb] for p in got]
    np.testing.assert_array_equal(perm[got_lab], want_lab)


def test_nested_island_is_absorbed() -> None:
    a = _masks()[-1]
    filled, lab, comps = fill_and_label(a, T)
    assert len(comps) == 1 and filled[2:7, 2:7].all() and (lab[filled] == 1).all()
    assert comps[0].area == pytest.approx(49 * 400.0)


def test_closing_and_opening_by_hand() -> None:
    a = np.zeros((5, 7), bool)
    a[1:4, 0:2] = a[1:4, 3:5] = True  # two 3x2 blocks, one column apart
    assert closing(a, 1, 3)[1:4, 2].all() and not closing(a, 1, 1)[1:4, 2].any()
    assert (opening(a, 3, 2) == a).all() and not opening(a, 3, 3).any()
