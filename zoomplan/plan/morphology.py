"""Square morphology on boolean patch masks (numpy, integral images) and mask polygonisation.

Used by :mod:`zoomplan.plan.orders` to enforce a vendor's minimum width and to consolidate nearby
selections. Masks are indexed (row, col) on the PatchTable's patch grid; a k x k square is k patches.
"""

from __future__ import annotations

import logging

import numpy as np
import rasterio.features
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


def closing(a: np.ndarray, k: int) -> np.ndarray:
    """``a`` with every gap narrower than k cells filled (square closing; outside the array is empty)."""
    return ~opening(np.pad(~a, k, constant_values=True), k, k)[k:-k, k:-k]


def shapes(a: np.ndarray, transform: Affine) -> list[Polygon]:
    """Exteriors of the 4-connected components of mask ``a`` (holes filled), mapped by ``transform``."""
    if not a.any():
        return []
    src = np.ascontiguousarray(a, dtype=np.uint8)
    return [Polygon(g["coordinates"][0]) for g, _ in rasterio.features.shapes(src, mask=a, connectivity=4, transform=transform)]


def fill_mask(a: np.ndarray) -> np.ndarray:
    polys = shapes(a, Affine.identity())
    if not polys:
        return a
    return a | rasterio.features.rasterize(polys, out_shape=a.shape, dtype=np.uint8).astype(bool)


def widen(a: np.ndarray, d: np.ndarray, k: int) -> np.ndarray:
    """``a`` grown inside ``d`` so every cell lies in a k x k square of the result, where ``d`` allows.

    Narrow cells (in no k x k square inside ``a``) that some k x k square inside ``d`` can hold are
    covered block by block (blocks of k x k aligned to the array): one square per block, centred on
    its narrow cells when that fits in ``d``, else the nearest that does; a block no single square can
    serve is split in two, recursively. Narrow cells no square inside ``d`` holds (the AOI is narrower
    than k there) get the centred square clipped to ``d``. A window smaller than k uses its own size.
    """
    h, w = a.shape
    ky, kx = min(k, h), min(k, w)
    if k <= 1 or not a.any():
        return a
    narrow = a & ~opening(a, ky, kx)
    if not narrow.any():
        return a
    valid = box_sum(d, ky, kx) == ky * kx
    stuck = narrow & ~paint(valid, ky, kx)
    narrow &= ~stuck
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
        elif ty1 - ty0 >= tx1 - tx0:  # a single cell always fits: it is not stuck
            m = (ty0 + ty1) // 2
            todo += [(ty0, m, tx0, tx1), (m, ty1, tx0, tx1)]
        else:
            m = (tx0 + tx1) // 2
            todo += [(ty0, ty1, tx0, m), (ty0, ty1, m, tx1)]
    out = a | paint(origins, ky, kx)
    if stuck.any():
        log.info("%d patch(es) lie where the AOI is narrower than the vendor's minimum width", int(stuck.sum()))
        sy, sx = np.nonzero(stuck)
        forced = np.zeros_like(valid)
        forced[np.clip(sy - ky // 2, 0, h - ky), np.clip(sx - kx // 2, 0, w - kx)] = True
        out |= paint(forced, ky, kx) & d
    return out


# ---------------------------------------------------------------- patches and orders
