"""Consolidation: the cheapest orderable plan for one AOI feature, over a family of candidate plans.

Input: the feature's selected patches on the PatchTable's patch grid (cells of ``patch_m`` metres in
the planning CRS), the feature F (holes filled) and a vendor profile. Patches with no area inside F
(they only touch its outline) need nothing and are ignored; pieces of a patch inside F smaller than
10% of a patch (crumbs, :mod:`zoomplan.plan.orders.crumbs`) are ordered for no one, and a patch that is only
crumbs (a sliver) is left out. Candidates:

- ``per-patch`` (a): one order per selected patch: its part inside F or, under a width rule, a square
  of the minimum width holding it (clipped to F);
- ``union`` (b): the union of the selected patches, holes filled (orders have none), grown to the
  minimum width; also as it is, where it already holds the width once clipped to F;
- ``bbox`` (c): the bounding box of the feature's selection, clipped to F, made orderable the same way;
- ``closing KxK``, ``Kx1``, ``1xK``: the union with the gaps narrower than a K x K square, K rows or
  K columns closed, K = 2, 3, 5, 9, ... up to twice the side of a minimum order (vendors with a
  minimum order only). Each is priced on its mask (sum over components of max(area, minimum)); the
  two cheapest are made orderable and billed exactly;
- for a MultiPolygon feature, its parts that hold selected patches, each whole;
- the whole feature (:func:`zoomplan.plan.orders.orders.whole_aoi_orders`), compared in ``build_orders``.

Every candidate is made orderable the same way: a component cut by F's outline becomes one piece per
part, a piece serving no selected patch is dropped, and :func:`zoomplan.plan.orders.orderable.orderable`
applies the vertex limit, settles overlapping orders (no area billed twice, :mod:`zoomplan.plan.orders.disjoint`)
and MultiPolygon packing, and bills it exactly, sum over orders of max(area, min_order_km2) x price
(USD, km^2 on the ellipsoid, :mod:`zoomplan.plan.orders.area`). Minimum width, k = ceil(width / patch) cells:
narrow parts are grown with k x k squares of cells wholly inside F and clear of its holes (so that
splitting an order around a hole keeps them, :mod:`zoomplan.plan.orders.holes`), or near its outline with
(k + 2) x (k + 2) squares of cells touching F (:func:`~zoomplan.plan.orders.morphology.widen`); a piece F's
outline still leaves narrower than the rule is cut to its wide parts when they hold its patches (their
pieces that are not crumbs), or grown inside F around its narrow parts (:func:`zoomplan.plan.orders.window._trim`).
What stays
narrow lies where F itself is.

Guarantee: the plan kept is the cheapest candidate, so its bill is at most that of (a), (b), (c),
the whole feature and every closing made orderable. (a) is first billed as each patch's part inside F
(crumbs aside) alone, sum of max(area, minimum) x price, the bill of (a) where those parts are orders
(the squares and fitted shapes only hold more, though merging squares that overlap may bill less); it
is built only when that bill beats every other candidate, so the guarantee holds without building one
order per patch for large selections. For vendors without a
width rule, and for those whose minimum order holds a square of the minimum width (every shipped
profile) where such squares lie inside F, that bound is (a)'s orderable bill. This is a heuristic with
that bound, not an optimum: the cheapest cover of a selection by orderable polygons under minimum
charges (a set-cover problem) is not searched for, and no ratio to it is claimed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from shapely.geometry.base import BaseGeometry

from zoomplan.plan.orders.morphology import closing, fill_and_label, fill_mask, widen
from zoomplan.plan.orders.orderable import Candidate, bill_usd, orderable
from zoomplan.plan.orders.polygons import polygons
from zoomplan.plan.orders.pricing import VendorProfile
from zoomplan.plan.orders.window import Window, finish_mask, mask_cost, overlap, per_patch, width_cells
from zoomplan.plan.types import PatchTable

N_EXACT_CLOSINGS = 2
"""Closings made orderable and billed exactly (the cheapest by their mask bill)."""


@dataclass(frozen=True)
class Search:
    """The cheapest candidate (None when no selected patch has area inside the feature) and the bill
    (USD) of every candidate evaluated, by kind. ``per-patch`` is (a)'s orderable bill when (a) was
    built, else its lower bound, which is then no less than the best candidate's bill. ``crumbs``: the
    crumbs of the selection (:mod:`zoomplan.plan.orders.crumbs`, Polygons), ordered for no one; ``slivers``:
    how many selected patches were only crumbs."""

    best: Candidate | None
    costs: dict[str, float]
    crumbs: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    slivers: int = 0


def components(
    table: PatchTable,
    sel: np.ndarray,
    filled: BaseGeometry,
    vendor: VendorProfile,
    *,
    drawn: BaseGeometry | None = None,
) -> Candidate | None:
    """(b) unpacked: each polygon of the union of the selected patches (holes filled, grown to the
    minimum width, clipped to F, fitted to the vertex limit) an order of its own; None when no
    selected patch has area inside F. Arguments as :func:`search`."""
    kw = width_cells(vendor, float(table.patch_m))
    w = Window(table, sel, filled, kw + 1, drawn)
    if not w.pos.any():
        return None
    mask = fill_mask(w.a)
    c = finish_mask(w, widen(mask, w.d, kw, core=w.core()) if kw else mask, vendor, "union", pack=False)
    return c.drawn() if c is not None else None


def search(
    table: PatchTable,
    sel: np.ndarray,
    filled: BaseGeometry,
    vendor: VendorProfile,
    *,
    bound: float = math.inf,
    drawn: BaseGeometry | None = None,
) -> Search:
    """The cheapest candidate plan of one feature's selected patches (table indices ``sel``).

    ``filled``: the feature, holes filled, in ``table.crs`` (metres); ``bound``: the bill of another
    plan (the whole feature, USD) under which (a) must fall to be built. See the module docstring.
    """
    pm = float(table.patch_m)
    kw = width_cells(vendor, pm)
    side = math.ceil(math.sqrt(vendor.min_order_km2) * 1e3 / pm) if vendor.min_order_km2 > 0 else 0
    ks = [2**j + 1 for j in range(12) if 2**j + 1 <= 2 * side + 1]
    w = Window(table, sel, filled, kw + (ks[-1] if ks else 0) + 1, drawn)
    if not w.pos.any():
        return Search(None, {}, w.crumbs, w.slivers)
    cands: list[Candidate] = []

    def grow(mask: np.ndarray) -> np.ndarray:
        return widen(mask, w.d, kw, core=w.core()) if kw else mask

    def add(
        mask: np.ndarray,
        kind: str,
        width: float = 0.0,
        labelled: tuple[np.ndarray, int] | None = None,
        bound: float = math.inf,
    ) -> None:
        c = finish_mask(w, mask, vendor, kind, width=width, labelled=labelled, bound=bound)
        if c is not None:
            cands.append(c)

    def add_filled(mask: np.ndarray, kind: str, pre: np.ndarray | None = None, bound: float = math.inf) -> np.ndarray:
        """``mask`` with its holes filled (``pre`` when given) and grown to the width rule, added as a
        candidate; returned. Without a width rule one polygonisation serves the filling and the labels."""
        if kw:
            grown = grow(pre if pre is not None else fill_mask(mask))
            add(grown, kind, bound=bound)
            return grown
        f, lab, n = fill_and_label(mask)
        add(f, kind, labelled=(lab, n), bound=bound)
        return f

    rr, cc = w.rows[w.pos], w.cols[w.pos]
    box = np.zeros(w.shape, bool)
    box[rr.min() : rr.max() + 1, cc.min() : cc.max() + 1] = True
    plain = {"union": fill_mask(w.a), "bbox": fill_mask(box & w.d)} if kw else {}
    base = add_filled(w.a, "union", plain.get("union"))
    if ks:
        cx, cy = w.transform.c + 0.5 * w.shape[1] * w.transform.a, w.transform.f + 0.5 * w.shape[0] * w.transform.e
        cell_m2 = pm * pm / float(w.measure.scale(cx, cy)[0])
        tried: list[tuple[float, int, int, int]] = []
        for window in ((1, 1), (1, 0), (0, 1)):  # K x K squares, K-row and K-column windows
            for k in ks:
                cy, cx = max(k * window[0], 1), max(k * window[1], 1)
                cost, n = mask_cost(
                    grow(closing(base, cy, cx) & w.d), vendor, cell_m2
                )  # exteriors: holes need no filling
                tried.append((cost, len(tried), cy, cx))
                if n <= 1:  # larger windows only add area to a single component
                    break
        exact = sorted(tried)[:N_EXACT_CLOSINGS]
        slot = len(cands)
        for _, _, cy, cx in reversed(exact):
            # A closing sure to bill more than the cheapest plan so far or the whole feature could not be
            # chosen (it would cost strictly more): its fitting stops there (it is not a reference plan).
            # The dearer mask goes first: a coarser closing has fewer vertices to fit, so it is often the
            # cheaper plan once fitted, and its bill then stops the other's fitting sooner. Each is kept
            # at its rank by mask bill, so ties go as before.
            cut = min([bound] + [cd.cost_usd for cd in cands])
            before = len(cands)
            add_filled(closing(base, cy, cx) & w.d, f"closing {cy}x{cx}", bound=cut)
            if len(cands) > before:
                cands.insert(slot, cands.pop())
    add_filled(box & w.d, "bbox", plain.get("bbox"))
    for (
        kind,
        mask,
    ) in (
        plain.items()
    ):  # the union and the box as they are, where they already hold the minimum width once clipped to F
        add(mask, kind, vendor.min_width_m)
    parts = sorted(polygons(filled), key=lambda p: (-p.bounds[3], p.bounds[0]))
    if len(parts) > 1:  # a MultiPolygon feature: its parts that hold selected patches, each whole
        at = np.nonzero(w.pos)[0]
        cells = w.box(w.rows[at], w.cols[at], 1, 1)
        held = [(p, w.sel[at[overlap(p, cells, 1e-6 * pm * pm)]]) for p in parts]
        held = [h for h in held if h[1].size]
        if len(held) < len(parts):
            cands.append(
                orderable(
                    [h[0] for h in held],
                    [h[1] for h in held],
                    filled,
                    vendor,
                    pm / 4,
                    "feature parts",
                    measure=w.measure,
                )
            )
    costs: dict[str, float] = {}
    for cd in cands:
        costs[cd.kind] = min(costs.get(cd.kind, math.inf), cd.cost_usd)
    costs["per-patch"] = bill_usd(w.area[w.pos], vendor)  # (a)'s lower bound: each patch's part inside F billed alone
    best = min(cands, key=lambda cd: cd.cost_usd)
    if costs["per-patch"] < min(best.cost_usd, bound):
        per = per_patch(w, vendor, kw)
        costs["per-patch"] = per.cost_usd
        if per.cost_usd < best.cost_usd:
            best = per
    return Search(best.drawn(), costs, w.crumbs, w.slivers)
