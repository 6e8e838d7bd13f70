"""Selection: which HR patches to buy, from the policy's probabilities.

Three rules, applied in this order to the patches of a :class:`~zoomplan.plan.types.PatchTable`:

1. ``threshold`` P (the paper's test-time rule): candidates are the patches with probability > P.
   P <= 0 takes every patch (probability 0 included); P >= 1 takes none.
2. ``max_fraction`` F: at most floor(F * N) candidates, N = all patches of the table, best first.
3. ``budget_usd`` B: the candidates' orders, built and billed as the vendor bills
   (:func:`~zoomplan.plan.orders.orders.build_orders`, :func:`~zoomplan.plan.orders.pricing.bill`), cost at most
   B USD. Never above B: an empty selection (USD 0) is the floor. If every candidate fits, all are
   bought; else the orders of best-first prefixes of the candidates are chosen by value per USD
   (:mod:`zoomplan.plan.selection.knapsack`: a greedy knapsack, a 1/2-approximation over each prefix's orders,
   never worth less than the largest prefix that fits whole), and the patches left out are reported
   (:attr:`Selection.dropped`).

"Best first" ranks by probability per billed dollar. Within one vendor every km^2 costs the same, and
a patch is worth its probability times the share of it inside the AOI while it is billed for that same
share, so the ratio is probability / (price * patch area): the ranking is by probability, ties broken
by (row, col) so that it is stable. Minimum orders, widths and consolidation are not per patch: they
enter through the orders of each prefix, valued at the sum of the probabilities they serve. To rank
the whole AOI by budget alone, pass ``threshold=0``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from shapely.geometry.base import BaseGeometry

from zoomplan.errors import ConfigError
from zoomplan.plan.orders.orders import build_orders
from zoomplan.plan.orders.pricing import VendorProfile, bill
from zoomplan.plan.selection.knapsack import Dropped, spend
from zoomplan.plan.types import PatchTable

log = logging.getLogger(__name__)


def rank(table: PatchTable) -> np.ndarray:
    """Patch indices best first: probability descending (NaN last), then row, then column."""
    p = np.nan_to_num(table.prob.astype(np.float64), nan=-1.0)
    return np.lexsort((table.col, table.row, -p))


def plan_cost(
    table: PatchTable, selected: np.ndarray, aoi_geoms: Sequence[BaseGeometry], vendor: VendorProfile
) -> float:
    """USD cost of the orders that buy ``selected`` from ``vendor`` (0 for an empty selection)."""
    if not selected.any():
        return 0.0
    return bill(build_orders(table, selected, aoi_geoms, vendor), vendor).cost_usd


@dataclass(frozen=True)
class Selection:
    """The patches to buy (boolean, ``len(table)``) and, under a budget, those left out for their
    value per USD (:class:`~zoomplan.plan.selection.knapsack.Dropped`; ``None`` without a budget)."""

    selected: np.ndarray
    dropped: Dropped | None = field(default=None)

    def report(self) -> dict[str, Any] | None:
        """JSON-ready report of the dropped patches for a plan's summary (``None`` without a budget)."""
        return None if self.dropped is None else self.dropped.to_dict()


def select_patches(
    table: PatchTable,
    aoi_geoms: Sequence[BaseGeometry],
    vendor: VendorProfile,
    *,
    threshold: float = 0.5,
    budget_usd: float | None = None,
    max_fraction: float | None = None,
) -> np.ndarray:
    """Boolean array (len(table)) of the patches to buy; see the module docstring for the rules.

    ``aoi_geoms`` are the AOI features in ``table.crs`` (projected, metres), needed to price a budget;
    ``budget_usd`` in USD; ``max_fraction`` in [0, 1] of all the table's patches. :func:`select`
    also returns the patches a budget left out.
    """
    return select(
        table, aoi_geoms, vendor, threshold=threshold, budget_usd=budget_usd, max_fraction=max_fraction
    ).selected


def select(
    table: PatchTable,
    aoi_geoms: Sequence[BaseGeometry],
    vendor: VendorProfile,
    *,
    threshold: float = 0.5,
    budget_usd: float | None = None,
    max_fraction: float | None = None,
    exclude: np.ndarray | None = None,
) -> Selection:
    """The patches to buy and, under ``budget_usd``, those left out with why; arguments as
    :func:`select_patches`. ``exclude`` (bool, ``len(table)``): patches never selected (cloudy patches
    under ``--cloudy skip``, :mod:`zoomplan.plan.selection.clouds`), whatever the threshold."""
    raw = threshold
    try:
        threshold = float(threshold)
    except (TypeError, ValueError):
        threshold = math.nan
    if math.isnan(threshold):
        raise ConfigError(f"threshold must be a number; found {raw!r}; pass e.g. --threshold 0.5")
    if budget_usd is not None and (not math.isfinite(budget_usd) or budget_usd < 0):
        raise ConfigError(f"budget must be a finite amount >= 0 USD; found {budget_usd!r}; pass e.g. --budget 500")
    if max_fraction is not None and (not math.isfinite(max_fraction) or not 0 <= max_fraction <= 1):
        raise ConfigError(f"max fraction must lie in [0, 1]; found {max_fraction!r}; pass e.g. --max-fraction 0.3")
    n = len(table)
    if threshold <= 0:
        cand = np.ones(n, bool)
    else:
        cand = np.asarray(table.prob > threshold, bool)  # NaN compares False
    if exclude is not None:
        cand &= ~np.asarray(exclude, bool)
    if max_fraction is None and budget_usd is None:  # every candidate is bought: ranking them is not needed
        order = np.nonzero(cand)[0]
    else:
        order = rank(table)
        order = order[cand[order]]
    if max_fraction is not None:
        order = order[: math.floor(max_fraction * n + 1e-9)]
    dropped = None
    if budget_usd is not None:
        order, dropped = _budget(table, order, aoi_geoms, vendor, budget_usd)
    out = np.zeros(n, bool)
    out[order] = True
    log.info(
        "selected %d of %d patches (threshold %s, budget %s USD, max fraction %s)",
        out.sum(),
        n,
        threshold,
        budget_usd,
        max_fraction,
    )
    if dropped is not None and dropped.patches.size:
        log.info(
            "budget: %d patch(es) of the %d most probable left out for their value per USD",
            dropped.patches.size,
            dropped.considered,
        )
    return Selection(out, dropped)


def _budget(
    table: PatchTable, order: np.ndarray, aoi_geoms: Sequence[BaseGeometry], vendor: VendorProfile, budget: float
) -> tuple[np.ndarray, Dropped]:
    """(the candidates to buy within ``budget`` USD, those left out): all when they fit, else
    :func:`zoomplan.plan.selection.knapsack.spend` from the largest best-first prefix that fits."""
    if not order.size:
        return order, Dropped(budget_usd=budget)
    k0 = _budget_prefix(table, order, aoi_geoms, vendor, budget)
    if k0 == order.size:
        return order, Dropped(considered=k0, budget_usd=budget)
    return spend(table, order, k0, aoi_geoms, vendor, budget)


def _budget_prefix(
    table: PatchTable, order: np.ndarray, aoi_geoms: Sequence[BaseGeometry], vendor: VendorProfile, budget: float
) -> int:
    """Largest k found by bisection with cost(order[:k]) <= budget; cost(order[:0]) = 0 always fits.

    The bill is not strictly monotone in k (consolidation can make a larger selection cheaper), so
    bisection finds a feasible prefix, the largest in the monotone case; only priced prefixes are
    returned, so the budget is never exceeded.
    """

    def cost(k: int) -> float:
        sel = np.zeros(len(table), bool)
        sel[order[:k]] = True
        return plan_cost(table, sel, aoi_geoms, vendor)

    if not order.size:
        return 0
    if cost(order.size) <= budget:
        return int(order.size)
    lo, hi = 0, order.size - 1  # cost(lo) <= budget < cost(hi + 1)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if cost(mid) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo
