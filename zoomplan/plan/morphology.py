"""Square morphology on boolean patch masks (numpy, integral images) and mask polygonisation.

Used by :mod:`zoomplan.plan.orders` to enforce a vendor's minimum width and to consolidate nearby
selections. Masks are indexed (row, col) on the PatchTable's patch grid; a k x k square is k patches.
"""

from __future__ import annotations

import logging

import numpy as np
import rasterio.features
import shapely
from affine import Affine
from shapely.geometry import Polygon

log = logging.getLogger(__name__)


def box_sum(a: np.ndarray, ky: int, kx: int) -> np.ndarray:
    """Sum of ``a`` over every ky x kx window inside it, indexed by the window's top-left cell."""
    c = np.zeros((a.shape[0] + 1, a.shape[1] + 1), np.int32)
    c[1:, 1:] = a.cumsum(0, dtype=np.int32).cumsum(1, dtype=np.int32)
    return c[ky:, kx:] - c[:-ky, kx:] - c[ky:, :-kx] + c[:-ky, :-kx]


def paint(origins: np.ndarray, ky: int, kx: int) -> np.ndarray:
    """Union of the ky x kx windows whose top-left cells are True in ``origins`` (H-ky+1, W-kx+1)."""
    return box_sum(np.pad(origins, ((ky - 1, ky - 1), (kx - 1, kx - 1))), ky, kx) > 0


def opening(a: np.ndarray, ky: int, kx: int) -> np.ndarray:
    """Cells of ``a`` covered by a ky x kx window that lies inside ``a``."""
    if a.shape[0] < ky or a.shape[1] < kx:
        return np.zeros_like(a)
    return paint(box_sum(a, ky, kx) == ky * kx, ky, kx)


def closing(a: np.ndarray, k: int, kx: int | None = None) -> np.ndarray:
    """``a`` with every gap narrower than the k x kx window filled (kx defaults to k: a square closing;
    k x 1 closes gaps between rows only, 1 x kx between columns only; outside the array is empty)."""
    ky, kx = k, (k if kx is None else kx)
    out = ~opening(np.pad(~a, ((ky, ky), (kx, kx)), constant_values=True), ky, kx)
    return out[ky:-ky, kx:-kx]


def exteriors(a: np.ndarray, transform: Affine) -> list[dict]:
    """GeoJSON Polygons of the exteriors of the 4-connected components of mask ``a`` (holes filled),
    mapped by ``transform``, in rasterio's scan order."""
    if not a.any():
        return []
    src = np.ascontiguousarray(a, dtype=np.uint8)
    return [{"type": "Polygon", "coordinates": [g["coordinates"][0]]}
            for g, _ in rasterio.features.shapes(src, mask=a, connectivity=4, transform=transform)]


def _polygons(ext: list[dict], transform: Affine | None = None) -> list[Polygon]:
    """Shapely Polygons of GeoJSON-like exteriors; ``transform`` maps their coordinates first (as
    GDAL maps pixel corners: x = c + col a + row b, y = f + col d + row e, the same floats)."""
    if not ext:
        return []
    rings = [np.asarray(e["coordinates"][0], np.float64) for e in ext]
    idx = np.repeat(np.arange(len(rings)), [len(r) for r in rings])
    xy = np.concatenate(rings)
    if transform is not None:
        t = transform
        xy = np.column_stack((t.c + xy[:, 0] * t.a + xy[:, 1] * t.b, t.f + xy[:, 0] * t.d + xy[:, 1] * t.e))
    return list(shapely.polygons(shapely.linearrings(xy, indices=idx)))


def shapes(a: np.ndarray, transform: Affine) -> list[Polygon]:
    """Exteriors of the 4-connected components of mask ``a`` (holes filled), mapped by ``transform``."""
    return _polygons(exteriors(a, transform))


def label(a: np.ndarray, transform: Affine) -> tuple[np.ndarray, list[Polygon]]:
    """(int32 labels 1..n of the hole-filled 4-connected components of ``a``, 0 elsewhere; their n
    exteriors mapped by ``transform``, labels in the same order)."""
    ext = exteriors(a, transform)
    if not ext:
        return np.zeros(a.shape, np.int32), []
    lab = rasterio.features.rasterize(zip(ext, range(1, len(ext) + 1)), out_shape=a.shape, transform=transform, dtype=np.int32)
    return lab, _polygons(ext)


def fill_and_label(a: np.ndarray, transform: Affine) -> tuple[np.ndarray, np.ndarray, list[Polygon]]:
    """``fill_mask(a)`` and ``label(fill_mask(a), transform)`` from one polygonisation of ``a``.

    The filled mask's components are ``a``'s, less those nested in another's holes (absorbed by it):
    their exteriors are the same rings in the same order, so the nested ones are dropped and the rest
    numbered 1..n. GDAL lists a polygon when the scan passes its last row, so a nested component comes
    before the one enclosing it, whose exterior, drawn later, covers it: the nested are the labels
    that do not survive rasterising the exteriors in order.
    """
    ext = exteriors(a, Affine.identity())
    if not ext:
        return a, np.zeros(a.shape, np.int32), []
    n = len(ext)
    raw = rasterio.features.rasterize(zip(ext, range(1, n + 1)), out_shape=a.shape, dtype=np.int32)
    present = np.bincount(raw.ravel(), minlength=n + 1) > 0
    present[0] = False
    ids = np.nonzero(present)[0]
    renumber = np.zeros(n + 1, np.int32)
    renumber[ids] = np.arange(1, ids.size + 1, dtype=np.int32)
    labels = renumber[raw]
    return labels > 0, labels, _polygons([ext[j - 1] for j in ids.tolist()], transform)


def fill_mask(a: np.ndarray) -> np.ndarray:
    """``a`` with the holes of its 4-connected components filled."""
    ext = exteriors(a, Affine.identity())
    if not ext:
        return a
    return a | rasterio.features.rasterize(ext, out_shape=a.shape, dtype=np.uint8).astype(bool)


def _place(narrow: np.ndarray, valid: np.ndarray, ky: int, kx: int) -> np.ndarray:
    """Top-left cells of ky x kx windows, each True in ``valid``, that together cover every ``narrow``
    cell (each must lie in some valid window): block by block (k x k blocks aligned to the array), one
    window per block centred on its narrow cells when valid, else the nearest valid one; a block no
    single window can serve is split in two, recursively."""
    h, w = narrow.shape
    origins = np.zeros_like(valid)
    hb, wb = -(-h // ky), -(-w // kx)
    blocks = np.zeros((hb * ky, wb * kx), bool)
    blocks[:h, :w] = narrow
    blocks = blocks.reshape(hb, ky, wb, kx)
    rows_any, cols_any = blocks.any(axis=3).transpose(0, 2, 1), blocks.any(axis=1)
    by, bx = np.nonzero(rows_any.any(axis=2))
    ra, ca = rows_any[by, bx], cols_any[by, bx]
    y0, y1 = by * ky + ra.argmax(1), by * ky + ky - ra[:, ::-1].argmax(1)
    x0, x1 = bx * kx + ca.argmax(1), bx * kx + kx - ca[:, ::-1].argmax(1)
    oy, ox = np.clip((y0 + y1 - ky) // 2, 0, h - ky), np.clip((x0 + x1 - kx) // 2, 0, w - kx)
    good = valid[oy, ox]
    origins[oy[good], ox[good]] = True
    todo = [(int(y0[i]), int(y1[i]), int(x0[i]), int(x1[i])) for i in np.nonzero(~good)[0]]
    while todo:
        ry0, ry1, rx0, rx1 = todo.pop()
        ys, xs = np.nonzero(narrow[ry0:ry1, rx0:rx1])
        if not ys.size:
            continue
        ty0, ty1, tx0, tx1 = ry0 + int(ys.min()), ry0 + int(ys.max()) + 1, rx0 + int(xs.min()), rx0 + int(xs.max()) + 1
        sy, sx = max(ty1 - ky, 0), max(tx1 - kx, 0)
        cy, cx = np.nonzero(valid[sy : min(ty0, h - ky) + 1, sx : min(tx0, w - kx) + 1])
        if cy.size:
            cy0, cx0 = (ty0 + ty1 - ky) // 2 - sy, (tx0 + tx1 - kx) // 2 - sx
            j = int(np.argmin((cy - cy0) ** 2 + (cx - cx0) ** 2))
            origins[cy[j] + sy, cx[j] + sx] = True
        elif ty1 - ty0 >= tx1 - tx0:  # a single cell always fits: it lies in a valid window
            m = (ty0 + ty1) // 2
            todo += [(ty0, m, tx0, tx1), (m, ty1, tx0, tx1)]
        else:
            m = (tx0 + tx1) // 2
            todo += [(ty0, ty1, tx0, m), (ty0, ty1, m, tx1)]
    return origins


def widen(a: np.ndarray, d: np.ndarray, k: int, *, core: np.ndarray | None = None) -> np.ndarray:
    """``a`` grown inside ``d`` so every cell lies in a k x k square of the result, where ``d`` allows.

    ``core`` (default ``d``): the cells of ``d`` lying wholly inside the AOI, where a k x k square keeps
    its width once clipped to the AOI. Narrow cells (in no k x k square of ``core`` cells inside ``a``)
    are covered by k x k squares inside ``core`` (:func:`_place`); those no such square holds (near
    the AOI's outline) by (k + 2) x (k + 2) squares inside ``d``, which keep k cells' width once their
    partly-outside rows and columns are clipped away. Narrow cells no square holds (the AOI is narrower
    than the rule there) get the centred square clipped to ``d``. A window smaller than k uses its size.
    """
    h, w = a.shape
    core = d if core is None else core
    if k < 1 or (k == 1 and core is d) or not a.any():
        return a
    ky, kx = min(k, h), min(k, w)
    narrow = a & ~opening(a & core, ky, kx)
    if not narrow.any():
        return a
    out = a.copy()
    levels = [(ky, kx, core)] + ([(min(k + 2, h), min(k + 2, w), d)] if core is not d else [])
    for ly, lx, dom in levels:
        valid = box_sum(dom, ly, lx) == ly * lx
        can = narrow & paint(valid, ly, lx)
        if can.any():
            out |= paint(_place(can, valid, ly, lx), ly, lx)
            narrow &= ~can
    if narrow.any():
        log.info("%d patch(es) lie where the AOI is narrower than the vendor's minimum width", int(narrow.sum()))
        ly, lx = levels[-1][:2]
        sy, sx = np.nonzero(narrow)
        forced = np.zeros((h - ly + 1, w - lx + 1), bool)
        forced[np.clip(sy - ly // 2, 0, h - ly), np.clip(sx - lx // 2, 0, w - lx)] = True
        out |= paint(forced, ly, lx) & d
    return out
