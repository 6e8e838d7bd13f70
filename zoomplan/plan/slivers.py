"""Slivers: a patch is worth buying only for its part inside its AOI feature.

Rule (:data:`SLIVER_SHARE`): a selected patch whose part inside its AOI feature (holes filled) is under
10% of the patch's area (40 m^2 of a 20 m patch) is a *sliver*: consolidation does not order it for
itself (:class:`zoomplan.plan.consolidate._Window` leaves it out), so no order is made, and no vendor
minimum paid, for a crumb cut off by the AOI's outline. A sliver may still be bought because a
neighbouring order covers it (the whole feature, a closing, a fitted shape): it is then *merged*;
otherwise it is *dropped*. :func:`report` says how many of each and how much in-AOI area (km^2) for
the summary. Pure functions; geometry in the planning CRS (metres).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

SLIVER_SHARE = 0.1
"""A selected patch whose part inside its AOI feature is under this share of the patch's area is a sliver."""

REASON = (f"a selected patch whose part inside its AOI feature is under {SLIVER_SHARE:.0%} of the patch's area is not "
          "ordered for itself (it would pay an order or its minimum for a crumb cut off by the AOI's outline)")


def is_sliver(in_aoi_m2: np.ndarray, patch_m: float) -> np.ndarray:
    """Which patches, by their area inside their AOI feature (m^2), are slivers (patch side ``patch_m`` metres)."""
    return np.asarray(in_aoi_m2, np.float64) < SLIVER_SHARE * patch_m * patch_m


def covered_m2(parts: np.ndarray, orders: Sequence[BaseGeometry]) -> np.ndarray:
    """Area (m^2) of each geometry of ``parts`` (a sliver's part inside its feature) that ``orders`` cover."""
    if not len(parts):
        return np.zeros(0)
    if not orders:
        return np.zeros(len(parts))
    cover = shapely.union_all(np.asarray(list(orders), dtype=object))
    return shapely.area(shapely.intersection(parts, cover))


def report(n: int, area_m2: float, merged: int, merged_m2: float) -> dict[str, Any]:
    """The summary's ``slivers`` member: the rule, slivers found, merged into a neighbouring order
    (covered by one anyway) and dropped (not bought); areas km^2, inside the AOI."""
    return {
        "rule": REASON,
        "share": SLIVER_SHARE,
        "patches": int(n),
        "area_km2": round(area_m2 * 1e-6, 6),
        "merged_patches": int(merged),
        "merged_km2": round(merged_m2 * 1e-6, 6),
        "dropped_patches": int(n - merged),
        "dropped_km2": round(max(area_m2 - merged_m2, 0.0) * 1e-6, 6),  # no "-0.0" from rounding
    }
