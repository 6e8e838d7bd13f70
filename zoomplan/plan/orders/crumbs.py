"""Crumbs: a selected patch is worth buying only for its part inside its AOI feature.

Rule (:data:`CRUMB_SHARE`): where the outline of an AOI feature (holes filled) cuts a selected patch,
each connected piece of the patch's part inside the feature smaller than 10% of the patch's area
(40 m^2 of a 20 m patch) is a *crumb*; a patch whose part inside is only crumbs is a *sliver*.
Consolidation (:mod:`zoomplan.plan.orders.consolidate`) orders no crumb for itself: no order, and no vendor
minimum, is paid for a piece of AOI a few metres across that the outline cut off a patch. A crumb may
still be bought because an order made for its neighbours covers it (the whole feature, a closing, a
shape fitted to the vertex limit): it is then *merged*; otherwise it is *dropped*. :func:`report`
says how many of each, with their area (km^2), for the summary's ``order_rules.crumbs``.

So a plan never costs more than the same selection with its slivers removed, plus the cheapest way
to cover them (each crumb alone at the vendor's minimum): it *is* that plan, crumbs merged for free.
Pure functions; geometry in the planning CRS (metres).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

CRUMB_SHARE = 0.1
"""A piece of a selected patch inside its AOI feature under this share of the patch's area is a crumb."""

REASON = (
    f"a piece of a selected patch inside its AOI feature smaller than {CRUMB_SHARE:.0%} of the patch (where the AOI's "
    "outline cuts it) is not ordered for itself: it would pay an order, or the vendor's minimum, for a crumb"
)


def pieces_inside(boxes: np.ndarray, feature: BaseGeometry, patch_m: float) -> tuple[np.ndarray, np.ndarray, int]:
    """The parts of patch ``boxes`` (metres) inside ``feature``: (kept, crumbs, slivers).

    ``kept``: per box, its pieces that are not crumbs (a Polygon, a MultiPolygon, or an empty geometry
    where there are none); ``crumbs``: every crumb (Polygons); ``slivers``: how many boxes with area
    inside ``feature`` have only crumbs there."""
    inter = shapely.intersection(boxes, feature)
    parts, idx = shapely.get_parts(inter, return_index=True)
    poly = shapely.get_type_id(parts) == 3
    parts, idx = parts[poly], idx[poly]
    area = shapely.area(parts)
    crumb = (area < CRUMB_SHARE * patch_m * patch_m) & (area > 0)
    kept = np.empty(len(boxes), dtype=object)
    for i in range(len(boxes)):
        mine = parts[(idx == i) & ~crumb & (area > 0)]
        kept[i] = mine[0] if mine.size == 1 else shapely.multipolygons(mine) if mine.size else shapely.Polygon()
    slivers = np.setdiff1d(idx[crumb], idx[~crumb & (area > 0)]).size
    return kept, parts[crumb], int(slivers)


def covered_m2(parts: np.ndarray, orders: Sequence[BaseGeometry]) -> np.ndarray:
    """Area (m^2) of each geometry of ``parts`` that ``orders`` cover."""
    if not len(parts):
        return np.zeros(0)
    if not orders:
        return np.zeros(len(parts))
    cover = shapely.union_all(np.asarray(list(orders), dtype=object))
    return shapely.area(shapely.intersection(parts, cover))


def report(crumbs: np.ndarray, slivers: int, orders: Sequence[BaseGeometry]) -> dict[str, Any]:
    """The summary's ``crumbs`` member: the rule, the crumbs found (and how many patches were only
    crumbs), merged into an order made for their neighbours (covered anyway) and dropped (not
    bought); areas km^2, planar, inside the AOI."""
    area = shapely.area(crumbs) if len(crumbs) else np.zeros(0)
    got = covered_m2(crumbs, orders)
    merged = got >= area * (1 - 1e-6)
    return {
        "rule": REASON,
        "share": CRUMB_SHARE,
        "crumbs": int(len(crumbs)),
        "slivers": int(slivers),
        "area_km2": round(float(area.sum()) * 1e-6, 6),
        "merged": int(merged.sum()),
        "merged_km2": round(float(got.sum()) * 1e-6, 6),
        "dropped": int((~merged).sum()),
        "dropped_km2": round(max(float(area.sum() - got.sum()), 0.0) * 1e-6, 6),  # no "-0.0" from rounding
    }
