"""One feature's selection on the patch grid, and masks of it made orderable candidates.

:class:`Window` rasterises the selected patches of one AOI feature F (holes filled) with a margin and
measures each patch's billed part inside F (crumbs left out, :mod:`zoomplan.plan.orders.crumbs`);
:func:`finish_mask` turns a cell mask into orders (cut by F's outline, grown or trimmed to the
vendor's minimum width, fitted and billed by :func:`zoomplan.plan.orders.orderable.orderable`) and
:func:`per_patch` builds candidate (a), one order per patch. :func:`zoomplan.plan.orders.consolidate.search`
chooses among the candidates; its module text gives the rules.
"""

from __future__ import annotations

import math

import numpy as np
import rasterio.features
import shapely
from affine import Affine
from scipy import ndimage
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry

from zoomplan.plan.orders.area import Measure
from zoomplan.plan.orders.crumbs import CRUMB_SHARE as _CRUMB
from zoomplan.plan.orders.crumbs import pieces_inside
from zoomplan.plan.orders.morphology import (
    box_sum,
    fill_and_label,
    label_polygons,
    opening,
    paint,
    shapes,
    vertex_counts,
)
from zoomplan.plan.orders.orderable import Candidate, Cells, orderable, threaded
from zoomplan.plan.orders.polygons import fill_holes, is_wide, polygons
from zoomplan.plan.orders.pricing import VendorProfile
from zoomplan.plan.types import PatchTable


class Window:
    """The feature's selection rasterised on the patch grid, (row - r0, col - c0), with a margin.

    ``d``: cells touching F (all-touched) or selected; ``edge``: cells of ``d`` that may not lie wholly
    inside F (the outline's cells and their neighbours);
    ``rows``/``cols``: window cells of the selected patches ``sel`` (table indices); ``area``: each
    selected patch's billed area inside F, crumbs left out (m^2 on the ellipsoid, ``measure``);
    ``pos``: the patches with a piece inside F that is not a crumb (:mod:`zoomplan.plan.orders.crumbs`),
    the only ones ordered for themselves; ``a``: their cells; ``crumbs``: the crumbs (Polygons) and
    ``slivers``, how many patches are only crumbs.
    """

    def __init__(
        self, table: PatchTable, sel: np.ndarray, filled: BaseGeometry, margin: int, drawn: BaseGeometry | None = None
    ) -> None:
        pm = self.pm = float(table.patch_m)
        self.holes = (
            filled.difference(drawn) if drawn is not None and any(p.interiors for p in polygons(drawn)) else None
        )
        self.measure = Measure(table.crs)
        rows, cols = table.row[sel], table.col[sel]
        x0, y0, x1, y1 = filled.bounds
        r0 = min(max(int(rows.min()) - margin, math.floor(-y1 / pm)), int(rows.min()))
        r1 = max(min(int(rows.max()) + margin, math.ceil(-y0 / pm) - 1), int(rows.max()))
        c0 = min(max(int(cols.min()) - margin, math.floor(x0 / pm)), int(cols.min()))
        c1 = max(min(int(cols.max()) + margin, math.ceil(x1 / pm) - 1), int(cols.max()))
        self.shape = (r1 - r0 + 1, c1 - c0 + 1)
        self.transform = Affine(pm, 0.0, c0 * pm, 0.0, -pm, -r0 * pm)
        self.filled, self.sel, self.rows, self.cols = filled, sel, rows - r0, cols - c0
        picked = np.zeros(self.shape, bool)
        picked[self.rows, self.cols] = True
        raster = rasterio.features.rasterize(
            [filled], out_shape=self.shape, transform=self.transform, all_touched=True, dtype=np.uint8
        )
        self.d = raster.astype(bool) | picked
        line = rasterio.features.rasterize(
            [filled.boundary], out_shape=self.shape, transform=self.transform, all_touched=True, dtype=np.uint8
        )
        edge = line.astype(bool) | ~raster.astype(bool)
        edge[1:] |= edge[:-1].copy()  # and their 8 neighbours: a cell that only touches F at a corner is not missed
        edge[:-1] |= edge[1:].copy()
        edge[:, 1:] |= edge[:, :-1].copy()
        edge[:, :-1] |= edge[:, 1:].copy()
        self.edge = edge & self.d
        b = table.bounds(sel)
        self.area = pm * pm / self.measure.scale(0.5 * (b[:, 0] + b[:, 2]), 0.5 * (b[:, 1] + b[:, 3]))
        self.crumbs, self.slivers = np.zeros(0, dtype=object), 0
        # index into sel -> its pieces inside F that are not crumbs, where F cuts it
        self.kept: dict[int, BaseGeometry] = {}
        cut = np.nonzero(self.edge[self.rows, self.cols])[0]
        # near F's outline: a cell F covers keeps its area; the others keep their pieces that are not crumbs
        if cut.size:
            boxes = shapely.box(b[cut, 0], b[cut, 1], b[cut, 2], b[cut, 3])
            shapely.prepare(filled)
            part = ~shapely.covers(filled, boxes)
            kept, self.crumbs, self.slivers = pieces_inside(boxes[part], filled, pm)
            at = cut[part]
            self.area[at] = self.measure(kept)
            self.kept = dict(zip(at.tolist(), kept))
        self.pos = self.area > 0
        self._core: np.ndarray | None = None
        self.a = np.zeros(self.shape, bool)
        self.a[self.rows[self.pos], self.cols[self.pos]] = True

    def core(self) -> np.ndarray:
        """Cells wholly inside F (exact areas along its outline) and clear of its holes (where squares
        of the minimum width are placed, so that splitting an order around a hole keeps them: see
        :mod:`zoomplan.plan.orders.holes`), computed on first use."""
        if self._core is None:
            core = self.d & ~self.edge
            er, ec = np.nonzero(self.edge)
            full = shapely.area(shapely.intersection(self.box(er, ec, 1, 1), self.filled)) >= self.pm * self.pm * (
                1 - 1e-9
            )
            core[er[full], ec[full]] = True
            if self.holes is not None and not self.holes.is_empty:
                near = (
                    rasterio.features.rasterize(
                        [self.holes], out_shape=self.shape, transform=self.transform, all_touched=True, dtype=np.uint8
                    ).astype(bool)
                    & core
                )
                hr, hc = np.nonzero(near)
                hit = shapely.area(shapely.intersection(self.box(hr, hc, 1, 1), self.holes)) > 0
                core[hr[hit], hc[hit]] = False
            self._core = core
        return self._core

    def box(self, r: np.ndarray, c: np.ndarray, ky: int | np.ndarray, kx: int | np.ndarray) -> np.ndarray:
        """Boxes (metres) of the ky x kx windows with top-left cells (r, c)."""
        t = self.transform
        x0, y1 = t.c + c * t.a, t.f + r * t.e
        return shapely.box(x0, y1 - ky * self.pm, x0 + kx * self.pm, y1)


def overlap(region: BaseGeometry, cells: np.ndarray, tiny: float) -> np.ndarray:
    """Which ``cells`` (boxes) overlap ``region`` by more than ``tiny`` m^2 (exact areas only along its outline)."""
    shapely.prepare(region)
    hit = shapely.covers(region, cells)
    edge = np.nonzero(~hit & shapely.intersects(region, cells))[0]
    hit[edge] = shapely.area(shapely.intersection(cells[edge], region)) > tiny
    return hit


def _holds(region: BaseGeometry, cells: np.ndarray, piece: BaseGeometry) -> bool:
    """True if ``region`` covers each cell's part inside ``piece`` (up to 1e-9 of a cell)."""
    shapely.prepare(region)
    rest = cells[~shapely.covers(region, cells)]
    if not rest.size:
        return True
    left = shapely.area(shapely.difference(shapely.intersection(rest, piece), region))
    return bool((left <= 1e-9 * shapely.area(rest)).all())


def _opening(g: BaseGeometry, width: float) -> BaseGeometry:
    """The parts of ``g`` within a square of side ``width`` metres inside it (a mitre opening, as
    :func:`~zoomplan.plan.orders.polygons.is_wide` measures)."""
    r = 0.5 * width * (1 - 1e-3)
    return g.buffer(-r, join_style="mitre").buffer(r, join_style="mitre").intersection(g)


def _trim(
    w: Window, found: list[tuple[Polygon, np.ndarray]], width: float, blocks: BaseGeometry
) -> list[tuple[Polygon, np.ndarray]]:
    """Pieces made at least ``width`` metres wide around every patch they serve, where F's outline cut
    their squares: a piece whose patches lie in its wide parts is kept if it is wide, else cut to those
    parts and the squares of whole cells of the minimum width it holds (``blocks``); else it is grown
    by ``width`` around its narrow parts, inside F, and tried again (twice at most); else, the AOI
    being narrower than the rule there, it is kept as it is."""
    out: list[tuple[Polygon, np.ndarray]] = []
    for q, m in found:
        at = np.nonzero(np.isin(w.sel, m))[0]
        cells = w.box(w.rows[at], w.cols[at], 1, 1)
        # where F's outline cuts a patch, what needs the width is its part that is not crumbs
        for k, j in enumerate(at.tolist()):
            if j in w.kept:
                cells[k] = w.kept[j] if not w.kept[j].is_empty else cells[k].intersection(w.filled)
        g = q
        for _ in range(3):
            opened = _opening(g, width)
            if _holds(opened, cells, q):
                if is_wide(g, width):
                    out.append((g, m))
                    break
                kept = shapely.union_all([opened, blocks.intersection(g)]) if not blocks.is_empty else opened
                for p in (Polygon(p.exterior) for p in polygons(kept, 1e-6 * w.pm * w.pm)):
                    hit = overlap(p, cells, 1e-6 * w.pm * w.pm)
                    if hit.any():
                        out.append((p, w.sel[at[hit]]))
                break
            thin = shapely.union_all(polygons(g.difference(opened), 1e-3 * width * width))
            grown = polygons(fill_holes(g.union(thin.buffer(width, join_style="mitre").intersection(w.filled))))
            if len(grown) != 1:
                out.append((q, m))
                break
            g = grown[0]
        else:
            out.append((q, m))  # the AOI is narrower than the rule around some of these patches
    return out


def finish_mask(
    w: Window,
    mask: np.ndarray,
    vendor: VendorProfile,
    kind: str,
    *,
    width: float = 0.0,
    pack: bool = True,
    labelled: tuple[np.ndarray, int] | None = None,
    bound: float = math.inf,
) -> Candidate | None:
    """The components of ``mask`` made orderable: clipped to F, each part serving selected patches.
    With ``width`` (metres), None unless every order is at least that wide (:func:`is_wide`); ``pack``
    and ``bound`` (None when it is sure to bill more) as :func:`orderable`. ``labelled``: ``(labels, n)``
    of :func:`fill_and_label` when the caller has them (the orders are sorted by position before they
    are made orderable, so the numbering does not matter).

    Without a width rule, a component F's outline does not cut and that is within the vertex limit is
    an order as it is: it stays :class:`Cells` (area, vertices and bounds from its labels) until this
    plan is chosen; only the others are polygonised here.
    """
    labels, n = labelled if labelled is not None else fill_and_label(mask)[1:]
    if not n:
        return Candidate(kind, [], [], [], 0.0)
    lab = labels[w.rows, w.cols] - 1
    cut = np.bincount(labels[w.edge], minlength=n + 1)[1:] > 0
    order = np.argsort(lab, kind="stable")
    start = np.searchsorted(lab[order], np.arange(n + 1))
    has = np.bincount(lab[w.pos], minlength=n) > 0  # components holding a patch with area inside F
    k = width_cells(vendor, w.pm)
    lazy = not k and width <= 0  # width rules check and trim every piece's outline
    nv = vertex_counts(labels, n)[1:] if lazy else np.zeros(n, np.int64)
    simple = has & ~cut & (nv <= vendor.max_vertices) & lazy
    drawn = np.nonzero(has & ~simple)[0]
    comps = dict(zip(drawn.tolist(), label_polygons(labels, drawn + 1, w.transform)))
    if width > 0:  # a component narrower than the rule across its bounding box has no wide part
        b = shapely.bounds(np.asarray([comps[j] for j in drawn.tolist()], dtype=object))
        if (np.minimum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]) < width * (1 - 1e-3)).any():
            return None
    todo = np.nonzero(has & cut)[0].tolist()
    clipped = dict(
        zip(todo, threaded(shapely.intersection, np.asarray([comps[j] for j in todo], dtype=object), w.filled))
    )
    cells = _cells(w, labels, nv, simple)
    found: list[tuple[Polygon | Cells, np.ndarray]] = []
    for j in np.nonzero(has)[0].tolist():
        at = order[start[j] : start[j + 1]]
        m = w.sel[at]
        if simple[j]:
            found.append((cells[j], m))
            continue
        if not cut[j]:
            found.append((comps[j], m))
            continue
        parts = [Polygon(q.exterior) for q in polygons(clipped[j], 1e-6 * w.pm * w.pm)]
        if len(parts) == 1:
            found.append((parts[0], m))
        # F's outline cut the component: each part serves the patches with area in it (a patch may span two)
        elif parts:
            src, dst = shapely.STRtree(parts).query(w.box(w.rows[at], w.cols[at], 1, 1), predicate="intersects")
            boxes = w.box(w.rows[at][src], w.cols[at][src], 1, 1)
            hit = (
                shapely.area(shapely.intersection(boxes, np.asarray(parts, dtype=object)[dst])) >= _CRUMB * w.pm * w.pm
            )
            found.extend((q, m[np.unique(src[hit & (dst == k)])]) for k, q in enumerate(parts))
    found = [f for f in found if f[1].size]
    if k:  # every selected patch that a square of k x k whole cells can hold keeps one in its order
        held = opening(mask & w.core(), k, k)
        if width > 0:  # as it is: only if every order is wide and holds those squares already
            valid = box_sum(w.core(), k, k) == k * k if min(w.shape) >= k else np.zeros((1, 1), bool)
            if (paint(valid, k, k) & w.a & ~held).any() or not all(is_wide(q, width) for q, _ in found):
                return None
        else:
            found = _trim(w, found, vendor.min_width_m, shapely.union_all(shapes(held, w.transform)))
    # north to south, west to east; then the first patch
    found.sort(key=lambda f: (-f[0].bounds[3], f[0].bounds[0], int(f[1].min())))
    return orderable(
        [f[0] for f in found],
        [f[1] for f in found],
        w.filled,
        vendor,
        w.pm / 4,
        kind,
        pack=pack,
        bound=bound,
        resolve=lambda keys: label_polygons(labels, np.asarray(keys, np.int64) + 1, w.transform),
        measure=w.measure,
    )


def _cells(w: Window, labels: np.ndarray, nv: np.ndarray, which: np.ndarray) -> dict[int, Cells]:
    """:class:`Cells` of the components ``which`` (bool, n) of ``labels`` with ``nv`` vertices, keyed by
    component (0..n-1): area = cells x cell area over the areal scale at the cells' centroid
    (``w.measure``, as the drawn polygon is billed); bounds mapped as GDAL maps pixel corners
    (x = c + col a, y = f + row e), so they equal the drawn ring's on a grid of whole metres."""
    ids = np.nonzero(which)[0]
    if not ids.size:
        return {}
    flat = labels.ravel()
    count = np.bincount(flat, minlength=nv.size + 1)[1:]
    rr, cc = np.indices(labels.shape)
    t = w.transform
    cx = t.c + (np.bincount(flat, cc.ravel() + 0.5, minlength=nv.size + 1)[1:][ids] / count[ids]) * t.a
    cy = t.f + (np.bincount(flat, rr.ravel() + 0.5, minlength=nv.size + 1)[1:][ids] / count[ids]) * t.e
    area = count[ids] * w.pm * w.pm / w.measure.scale(cx, cy)
    slices = ndimage.find_objects(labels)
    out: dict[int, Cells] = {}
    for a, j in zip(area.tolist(), ids.tolist()):
        rs, cs = slices[j]
        out[j] = Cells(
            a, int(nv[j]), (t.c + cs.start * t.a, t.f + rs.stop * t.e, t.c + cs.stop * t.a, t.f + rs.start * t.e), j
        )
    return out


def _squares(w: Window, r: np.ndarray, c: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(top row, left column, rows, columns) of a square holding each cell (r, c), as
    :func:`~zoomplan.plan.orders.morphology.widen` places them: k x k inside the feature's whole cells, the
    nearest to centred; else (k + 2) x (k + 2) inside its cells; else the centred (k + 2) square."""
    h, wd = w.shape
    oy, ox, sy, sx = (np.zeros(r.size, np.int64) for _ in range(4))
    todo = np.ones(r.size, bool)
    for kk, dom in ((k, w.core()), (k + 2, w.d)):
        ky, kx = min(kk, h), min(kk, wd)
        py, px = np.clip((2 * r + 1 - ky) // 2, 0, h - ky), np.clip((2 * c + 1 - kx) // 2, 0, wd - kx)
        valid = box_sum(dom, ky, kx) == ky * kx
        for i in np.nonzero(todo)[0]:
            if not valid[py[i], px[i]]:  # near F's outline: the nearest valid square holding the cell
                y0, x0 = max(r[i] - ky + 1, 0), max(c[i] - kx + 1, 0)
                vy, vx = np.nonzero(valid[y0 : min(r[i], h - ky) + 1, x0 : min(c[i], wd - kx) + 1])
                if not vy.size:
                    continue
                j = int(np.argmin((vy + y0 - py[i]) ** 2 + (vx + x0 - px[i]) ** 2))
                py[i], px[i] = vy[j] + y0, vx[j] + x0
            oy[i], ox[i], sy[i], sx[i], todo[i] = py[i], px[i], ky, kx, False
    oy[todo], ox[todo], sy[todo], sx[todo] = py[todo], px[todo], ky, kx  # the AOI is narrower than the rule here
    return oy, ox, sy, sx


def per_patch(w: Window, vendor: VendorProfile, k: int) -> Candidate:
    """(a) made orderable: one order per selected patch with area inside F, never packed: its part
    inside F where that is an order (no width rule, or a patch at least as wide as the rule whose part
    stays wide around it), else a square of the minimum width holding it (:func:`_squares`)."""
    idx = np.nonzero(w.pos)[0]
    r, c = w.rows[idx], w.cols[idx]
    cells = w.box(r, c, 1, 1)
    shapely.prepare(w.filled)
    tiny = 1e-6 * w.pm * w.pm
    own = {
        i: [Polygon(q.exterior) for q in polygons(w.kept[int(idx[i])])]
        for i in np.nonzero(~shapely.covers(w.filled, cells))[0].tolist()
    }
    as_is = np.full(idx.size, k <= 1)
    if k == 1:  # the patch is as wide as the rule; where F's outline cuts it, its part must stay wide around it
        for i, parts in own.items():
            as_is[i] = all(
                is_wide(q, vendor.min_width_m) and _holds(_opening(q, vendor.min_width_m), cells[i : i + 1], q)
                for q in parts
            )
    boxes = cells.copy()
    if (~as_is).any():
        boxes[~as_is] = w.box(*_squares(w, r[~as_is], c[~as_is], k))
    whole = shapely.covers(w.filled, boxes)
    clipped = dict(zip(np.nonzero(~whole & ~as_is)[0].tolist(), shapely.intersection(boxes[~whole & ~as_is], w.filled)))
    found: list[tuple[Polygon, np.ndarray]] = []
    for i in range(idx.size):
        m = w.sel[idx[i : i + 1]]
        if whole[i]:
            found.append((boxes[i], m))
        elif as_is[i]:
            found.extend((q, m) for q in own[i])
        else:
            found.extend(
                (Polygon(q.exterior), m)
                for q in polygons(clipped[i], tiny)
                if q.intersection(cells[i]).area >= _CRUMB * w.pm * w.pm
            )
    if vendor.min_width_m > 0:
        found = _trim(w, found, vendor.min_width_m, shapely.union_all(boxes[whole]) if whole.any() else Polygon())
    return orderable(
        [f[0] for f in found],
        [f[1] for f in found],
        w.filled,
        vendor,
        w.pm / 4,
        "per-patch",
        pack=False,
        measure=w.measure,
    )


def width_cells(vendor: VendorProfile, pm: float) -> int:
    """Minimum width in cells (0: no rule; 1: a patch is wide enough, only F's outline may cut it)."""
    return max(math.ceil(vendor.min_width_m / pm - 1e-9), 1) if vendor.min_width_m > 0 else 0
