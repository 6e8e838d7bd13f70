"""Square morphology on boolean patch masks (numpy, integral images), labelling and polygonisation.

Used by :mod:`zoomplan.plan.orders.orders` to enforce a vendor's minimum width and to consolidate nearby
selections. Masks are indexed (row, col) on the PatchTable's patch grid; a k x k square is k patches.
Components are 4-connected with holes filled, as GDAL polygonises them: :func:`fill_and_label` labels
them with ``scipy.ndimage`` (areas, vertex counts and bounds follow from the labels), and
:func:`label_polygons` draws only the components a caller needs, with GDAL; :func:`patch_mask_polygons`
draws a selection of the table's patches, holes kept.
"""

from __future__ import annotations

import logging

import numpy as np
import rasterio.features
import shapely
from affine import Affine
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from shapely.geometry import Polygon, shape

from zoomplan.plan.types import PatchTable

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
    return [
        {"type": "Polygon", "coordinates": [g["coordinates"][0]]}
        for g, _ in rasterio.features.shapes(src, mask=a, connectivity=4, transform=transform)
    ]


def _polygons(ext: list[dict]) -> list[Polygon]:
    """Shapely Polygons of GeoJSON-like exteriors, built in one vectorised call."""
    if not ext:
        return []
    rings = [np.asarray(e["coordinates"][0], np.float64) for e in ext]
    idx = np.repeat(np.arange(len(rings)), [len(r) for r in rings])
    return list(shapely.polygons(shapely.linearrings(np.concatenate(rings), indices=idx)))


def shapes(a: np.ndarray, transform: Affine) -> list[Polygon]:
    """Exteriors of the 4-connected components of mask ``a`` (holes filled), mapped by ``transform``."""
    return _polygons(exteriors(a, transform))


FOUR = ndimage.generate_binary_structure(2, 1)
"""4-connectivity (edge neighbours), as GDAL polygonises with ``connectivity=4``."""


def fill_and_label(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """(``a`` with the holes of its 4-connected components filled; int32 labels 1..n of the filled
    components, 0 elsewhere; n), in raster scan order of each component's first cell.

    The semantics are GDAL's polygoniser's (4-connectivity; a test compares them): a hole of a
    component C is a bounded region of the plane outside C's closed squares, so C pinches a hole shut
    where two of its cells meet at a corner, and a component in another's hole is absorbed. Computed
    with ``scipy.ndimage`` labels, no polygons: background cells 4-connected, and linked across a
    corner whose two foreground cells belong to different components; the background not linked to
    the outside is filled.
    """
    a = np.asarray(a, bool)
    fg, n = ndimage.label(a, FOUR)
    if n == 0:
        return a, np.zeros(a.shape, np.int32), 0
    bg, nb = ndimage.label(np.pad(~a, 1, constant_values=True), FOUR)  # the frame is the outside
    f = np.pad(fg, 1)
    b_tl, b_tr, b_bl, b_br = bg[:-1, :-1], bg[:-1, 1:], bg[1:, :-1], bg[1:, 1:]
    f_tl, f_tr, f_bl, f_br = f[:-1, :-1], f[:-1, 1:], f[1:, :-1], f[1:, 1:]
    down = (b_tl > 0) & (b_br > 0) & (f_tr > 0) & (f_bl > 0) & (f_tr != f_bl)  # background top-left and bottom-right
    up = (b_tr > 0) & (b_bl > 0) & (f_tl > 0) & (f_br > 0) & (f_tl != f_br)  # background top-right and bottom-left
    src = np.concatenate([b_tl[down], b_tr[up]])
    dst = np.concatenate([b_br[down], b_bl[up]])
    links = coo_matrix((np.ones(src.size, np.int8), (src, dst)), shape=(nb + 1, nb + 1))
    comp = connected_components(links, directed=False)[1]
    hole = comp != comp[bg[0, 0]]
    hole[0] = False
    filled = a | hole[bg[1:-1, 1:-1]]
    labels, n = ndimage.label(filled, FOUR)
    return filled, labels.astype(np.int32, copy=False), int(n)


def fill_mask(a: np.ndarray) -> np.ndarray:
    """``a`` with the holes of its 4-connected components filled (:func:`fill_and_label`)."""
    return fill_and_label(a)[0]


def vertex_counts(labels: np.ndarray, n: int) -> np.ndarray:
    """Vertices of each labelled component's exterior ring as GDAL traces it (no collinear ones),
    int64 of length n + 1 (index 0 unused, 0). ``labels``: hole-free components (:func:`fill_and_label`).

    A grid corner is a vertex of a component's ring where 1 or 3 of the 4 cells around it are the
    component's, twice where 2 are, on a diagonal (the ring passes it twice; not in filled labels).
    """
    p = np.pad(labels, 1)
    v = (p[:-1, :-1], p[:-1, 1:], p[1:, :-1], p[1:, 1:])
    out = np.zeros(n + 1, np.int64)
    for k in range(4):
        same = sum((v[k] == v[j]).astype(np.int8) for j in range(4))
        first = np.ones(v[k].shape, bool)
        for j in range(k):
            first &= v[j] != v[k]
        out += np.bincount(v[k][first & ((same == 1) | (same == 3))], minlength=n + 1)
        if k < 2:
            diag = first & (same == 2) & (v[3 - k] == v[k])
            out += 2 * np.bincount(v[k][diag], minlength=n + 1)
    out[0] = 0
    return out


def label_polygons(labels: np.ndarray, ids: np.ndarray, transform: Affine) -> list[Polygon]:
    """Exteriors of the hole-free components ``ids`` (1..n) of ``labels``, mapped by ``transform``, in the
    order of ``ids``: GDAL's rings (one polygonisation of those components only), the same vertices in
    the same order as polygonising the mask they came from."""
    ids = np.asarray(ids, np.int64)
    if not ids.size:
        return []
    keep = np.zeros(int(labels.max()) + 1, bool)
    keep[ids] = True
    got = {
        int(v): g["coordinates"][0]
        for g, v in rasterio.features.shapes(labels, mask=keep[labels], connectivity=4, transform=transform)
    }
    return _polygons([{"coordinates": [got[i]]} for i in ids.tolist()])


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


def patch_mask_polygons(table: PatchTable, selected: np.ndarray) -> list[Polygon]:
    """The selected patches merged into polygons (4-connected, holes kept), in ``table.crs`` metres."""
    sel = np.nonzero(np.asarray(selected, bool))[0]
    if not sel.size:
        return []
    pm = float(table.patch_m)
    rows, cols = table.row[sel], table.col[sel]
    r0, c0 = int(rows.min()), int(cols.min())
    a = np.zeros((int(rows.max()) - r0 + 1, int(cols.max()) - c0 + 1), np.uint8)
    a[rows - r0, cols - c0] = 1
    transform = Affine(pm, 0.0, c0 * pm, 0.0, -pm, -r0 * pm)
    return [shape(g) for g, _ in rasterio.features.shapes(a, mask=a.astype(bool), connectivity=4, transform=transform)]
