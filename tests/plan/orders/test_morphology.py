"""Mask morphology, labelling and polygonisation: scipy labels and GDAL's polygoniser agree."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio.features
import shapely
from affine import Affine
from shapely.geometry import Polygon

from zoomplan.plan.orders.morphology import closing, fill_and_label, label_polygons, opening, vertex_counts

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
    pinch = np.zeros((5, 6), bool)  # a ring closed by a corner: (2, 4) and (3, 3) meet diagonally
    pinch[1, 1:5] = pinch[3, 1:4] = True
    pinch[2, 1] = pinch[2, 4] = True
    out.append(pinch)
    diamond = np.zeros((5, 5), bool)  # four cells meeting at the corners of the centre cell
    diamond[1, 2] = diamond[2, 1] = diamond[2, 3] = diamond[3, 2] = True
    out.append(diamond)
    return out


def _gdal(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[Polygon]]:
    """The reference: GDAL's polygoniser (4-connectivity) on ``a``; the exteriors rasterised in the order
    GDAL lists them (a nested component comes first and is covered by its host's, so it is dropped)."""
    ext = (
        [
            {"type": "Polygon", "coordinates": [g["coordinates"][0]]}
            for g, _ in rasterio.features.shapes(a.astype(np.uint8), mask=a, connectivity=4, transform=T)
        ]
        if a.any()
        else []
    )
    if not ext:
        return a, np.zeros(a.shape, np.int32), []
    raw = rasterio.features.rasterize(zip(ext, range(1, len(ext) + 1)), out_shape=a.shape, transform=T, dtype=np.int32)
    ids = [j for j in range(1, len(ext) + 1) if (raw == j).any()]
    lab = np.zeros(a.shape, np.int32)
    for k, j in enumerate(ids):
        lab[raw == j] = k + 1
    return lab > 0, lab, [Polygon(ext[j - 1]["coordinates"][0]) for j in ids]


@pytest.mark.parametrize("i", range(63))
def test_scipy_labels_match_gdal(i: int) -> None:
    """Filling, labels, rings (bit for bit, same first vertex) and vertex counts match GDAL's polygoniser."""
    a = _masks()[i]
    want_fill, want_lab, want = _gdal(a)
    got_fill, got_lab, n = fill_and_label(a)
    np.testing.assert_array_equal(got_fill, want_fill)
    assert n == len(want)
    if not n:
        return
    pairs = np.unique(np.stack([got_lab.ravel(), want_lab.ravel()]), axis=1)
    assert pairs.shape[1] == n + (0 if got_fill.all() else 1)  # a bijection of labels
    perm = dict(zip(pairs[0].tolist(), pairs[1].tolist()))
    got = label_polygons(got_lab, np.arange(1, n + 1), T)
    nv = vertex_counts(got_lab, n)
    for j in range(1, n + 1):
        ref = want[perm[j] - 1]
        assert got[j - 1].wkb == ref.wkb
        assert nv[j] == len(shapely.simplify(ref, 0.0).exterior.coords) - 1 == len(ref.exterior.coords) - 1
    some = np.arange(1, n + 1)[::3]
    assert [p.wkb for p in label_polygons(got_lab, some, T)] == [got[j - 1].wkb for j in some]


def test_nested_island_is_absorbed() -> None:
    a = _masks()[60]
    filled, lab, n = fill_and_label(a)
    assert n == 1 and filled[2:7, 2:7].all() and (lab[filled] == 1).all()
    assert label_polygons(lab, [1], T)[0].area == pytest.approx(49 * 400.0)


def test_pinched_hole_is_filled_and_open_diamond_is_not() -> None:
    a, b = _masks()[61], _masks()[62]
    assert fill_and_label(a)[0][2, 2:4].all()  # the hole meets the outside only at a corner of its own ring
    assert not fill_and_label(b)[0][2, 2]  # four components meeting at corners enclose nothing
    assert fill_and_label(b)[2] == 4


def test_closing_and_opening_by_hand() -> None:
    a = np.zeros((5, 7), bool)
    a[1:4, 0:2] = a[1:4, 3:5] = True  # two 3x2 blocks, one column apart
    assert closing(a, 1, 3)[1:4, 2].all() and not closing(a, 1, 1)[1:4, 2].any()
    assert (opening(a, 3, 2) == a).all() and not opening(a, 3, 3).any()
