"""Spending a budget on the orders worth their price: a greedy knapsack over consolidated orders.

Under a budget B (USD), :func:`zoomplan.plan.selection.select.select` ranks the candidate patches best first
(probability) and finds by bisection the largest prefix S_k0 whose consolidated orders cost at most B.
That prefix can waste the budget on minimum charges: at USD 27/km^2 and a 0.25 km^2 minimum, an
isolated patch of probability 0.9 costs USD 6.75 for 0.13 of value per USD, while a cluster of 100
patches of probability 0.6 under the same minimum buys 8.9 per USD. So :func:`spend` also
consolidates the larger prefixes S_k, k = 2 k0, 4 k0, ... (at most :data:`LADDER` of them, and all the
candidates), and treats each prefix's orders as knapsack items, twice: the cheapest consolidation
(:func:`~zoomplan.plan.orders.orders.build_orders`, which may merge far clusters into one order the budget
cannot hold) and the finest, one order per polygon of the union of the patches
(:func:`~zoomplan.plan.orders.orders.component_orders`). An item's value v is the sum of the probabilities of
the prefix's patches the order serves, its cost c its bill (USD).

Greedy (:func:`greedy`): items by v / c, highest first, each taken when it fits in what is left of B;
and the same fill started from the single most valuable item that fits alone; the more valuable of the
two is kept. This is the classic 1/2-approximation of the 0/1 knapsack (greedy by density, or the
best single item): the value taken is at least half the best value of any subset of the same orders
within B. The prefix and item set with the largest value are kept.

The selection is the kept prefix's patches served by the orders taken. The orders are then built again
on it (consolidation may change), and should that plan bill above B, its order of lowest v / c is
dropped and the plan rebuilt until it fits: never above B is a hard guarantee. What consolidation
saved is offered to the orders left out, best v / c first, kept if the rebuilt plan still fits and
is worth more. Should the result be worth less than the plain prefix S_k0 (whose orders all fit), S_k0
is bought instead: the value is never below the best-first rule's. The prefix's patches left out are
reported (:class:`Dropped`) with their orders, values, costs and why: below the plan's marginal value
per USD (the lowest v / c taken), or more than what was left of the budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from shapely.geometry.base import BaseGeometry

from zoomplan.plan.orders.orders import Order, build_orders, component_orders
from zoomplan.plan.orders.pricing import VendorProfile, bill
from zoomplan.plan.types import PatchTable

LADDER = 8
"""Prefixes consolidated beyond the plain budget prefix: k0 doubled up to this many times."""
LISTED = 100
"""Dropped orders listed in a report (the most valuable first); the counts cover them all."""
TOP_UPS = 16
"""Rounds offering what consolidation saved to the orders left out."""


@dataclass(frozen=True)
class Dropped:
    """Patches left out under a budget: table indices, and a JSON-ready report (:meth:`to_dict`).

    ``considered``: size of the best-first prefix the plan was chosen from; ``marginal_value_per_usd``:
    the lowest value per USD among the orders taken (NaN when none); ``orders``: one entry per dropped
    order (``order_id``, ``n_patches``, ``value``, ``cost_usd``, ``value_per_usd``, ``reason``), the most
    valuable first. Values are sums of policy probabilities, money USD.
    """

    patches: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    orders: list[dict[str, Any]] = field(default_factory=list)
    considered: int = 0
    marginal_value_per_usd: float = math.nan
    budget_usd: float = math.nan

    def to_dict(self) -> dict[str, Any]:
        """The report for a plan's summary: counts, value, cost, the reason in one line, the orders."""
        value = sum(o["value"] for o in self.orders)
        cost = sum(o["cost_usd"] for o in self.orders)
        n = int(self.patches.size)
        marg = self.marginal_value_per_usd
        reason = (
            ""
            if not n
            else (
                f"their orders' value (sum of probabilities) per USD is below the plan's marginal {marg:.3g} per USD, "
                "or they did not fit in what was left of the budget"
                if math.isfinite(marg)
                else f"no order of them fits in the budget (USD {self.budget_usd:,.2f})"
            )
        )
        return {
            "n_patches": n,
            "n_orders": len(self.orders),
            "value": round(value, 4),
            "cost_usd": round(cost, 2),
            "considered_patches": self.considered,
            "marginal_value_per_usd": round(marg, 6) if math.isfinite(marg) else None,
            "reason": reason,
            "orders": self.orders[:LISTED],
            "orders_listed": min(len(self.orders), LISTED),
        }


def greedy(values: np.ndarray, costs: np.ndarray, budget: float) -> np.ndarray:
    """0/1 knapsack, 1/2-approximation: items by value per USD while they fit; and, started from the
    single most valuable item that fits, the same; the more valuable of the two. Returns the boolean
    mask of the items taken."""
    values, costs = np.asarray(values, np.float64), np.asarray(costs, np.float64)
    dens = np.where(costs > 0, values / np.where(costs > 0, costs, 1.0), np.inf)
    rank = np.lexsort((-values, -dens)).tolist()

    def fill(take: np.ndarray) -> np.ndarray:
        left = budget - float(costs[take].sum())
        for j in rank:
            if not take[j] and costs[j] <= left + 1e-9 * max(budget, 1.0):  # rounding only: the caller checks the bill
                take[j] = True
                left -= costs[j]
        return take

    best = fill(np.zeros(values.size, bool))
    fits = costs <= budget
    if fits.any():
        seed = np.zeros(values.size, bool)
        seed[int(np.argmax(np.where(fits, values, -np.inf)))] = True
        other = fill(seed)
        if values[other].sum() > values[best].sum():
            best = other
    return best


def _items(
    orders: list[Order], prob: np.ndarray, member: np.ndarray
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """(values, costs USD, served patches) of orders; only patches flagged in ``member`` count."""
    served = [o.patches[member[o.patches]] for o in orders]
    return np.array([prob[s].sum() for s in served]), np.array([o.cost_usd for o in orders]), served


def _reason(o: Order, n: int, v: float, c: float, why: str) -> dict[str, Any]:
    """A dropped order's report entry: ``n`` patches worth ``v`` (sum of probabilities) for ``c`` USD."""
    minimum = " minimum charge" if o.billed_km2 > o.area_km2 else ""
    return {
        "order_id": o.order_id,
        "n_patches": n,
        "value": round(v, 4),
        "cost_usd": round(c, 2),
        "value_per_usd": round(v / c, 6) if c > 0 else None,
        "reason": f"value {v:.2f} for USD {c:,.2f}{minimum}; {why}",
    }


def spend(
    table: PatchTable,
    order: np.ndarray,
    k0: int,
    aoi_geoms: Sequence[BaseGeometry],
    vendor: VendorProfile,
    budget: float,
) -> tuple[np.ndarray, Dropped]:
    """Patches to buy within ``budget`` USD from the best-first candidates ``order`` (table indices).

    ``k0``: the largest prefix of ``order`` whose orders cost at most ``budget`` (found by the caller);
    ``aoi_geoms`` in ``table.crs`` (metres). Returns (selected table indices, the considered prefix's
    patches left out, with why). See the module docstring.
    """
    n = len(table)
    prob = np.nan_to_num(table.prob.astype(np.float64), nan=0.0)
    ks = [k0] if k0 > 0 else [1]
    while len(ks) <= LADDER and ks[-1] * 2 < order.size:
        ks.append(ks[-1] * 2)
    if ks[-1] < order.size:
        ks.append(int(order.size))
    best: tuple[float, int, list[Order], np.ndarray, np.ndarray] | None = None
    for k in ks:
        member = np.zeros(n, bool)
        member[order[:k]] = True
        for orders in (
            build_orders(table, member, aoi_geoms, vendor),
            component_orders(table, member, aoi_geoms, vendor),
        ):
            values, costs, _ = _items(orders, prob, member)
            take = greedy(values, costs, budget)
            v = float(values[take].sum())
            if best is None or v > best[0] + 1e-12:
                best = (v, k, orders, member, take)
    assert best is not None
    _, k, orders, member, take = best
    values, costs, served = _items(orders, prob, member)
    idle = member.copy()  # the prefix's patches no order serves (no area inside the AOI): they cost nothing
    for s in served:
        idle[s] = False

    def fit(chosen: np.ndarray) -> tuple[np.ndarray, float, list[dict[str, Any]]]:
        """``chosen`` less what must go for its own orders (consolidation may change) to fit the budget."""
        rows: list[dict[str, Any]] = []
        while chosen.size and not idle[chosen].all():
            sel = np.zeros(n, bool)
            sel[chosen] = True
            plan = build_orders(table, sel, aoi_geoms, vendor)
            cost = bill(plan, vendor).cost_usd
            if cost <= budget:
                return chosen, cost, rows
            pv, pc, ps = _items(plan, prob, sel)
            serving = np.array([x.size > 0 for x in ps])  # a feature bought whole may have parts serving none
            if not serving.any():
                break
            j = int(np.argmin(np.where(serving, pv / np.maximum(pc, 1e-12), np.inf)))
            rows.append(
                _reason(
                    plan[j],
                    int(ps[j].size),
                    float(pv[j]),
                    float(pc[j]),
                    "dropped so that the re-consolidated plan fits in the budget",
                )
            )
            chosen = np.setdiff1d(chosen, ps[j])
        return chosen[idle[chosen]], 0.0, rows

    chosen, spent, rows = fit(
        np.unique(np.concatenate([served[j] for j in np.nonzero(take)[0]] + [np.nonzero(idle)[0]]))
    )
    for _ in range(
        TOP_UPS
    ):  # what consolidating the chosen orders saved, for the orders left out, best value per USD first
        left, extra = budget - spent, []
        for j in np.lexsort((-values, -values / np.maximum(costs, 1e-12))).tolist():
            if not take[j] and costs[j] <= left:
                extra.append(j)
                left -= costs[j]
        if not extra:
            break
        more, more_spent, more_rows = fit(np.union1d(chosen, np.concatenate([served[j] for j in extra])))
        if prob[more].sum() <= prob[chosen].sum():
            break
        chosen, spent, rows = more, more_spent, rows + more_rows
        take[extra] = True
    if k != k0 and k0 > 0 and prob[chosen].sum() < prob[order[:k0]].sum():
        return order[:k0], Dropped(considered=k0, budget_usd=budget)  # the plain prefix is worth more
    taken = np.nonzero(take)[0]
    marg = float(np.min(values[taken] / np.maximum(costs[taken], 1e-12))) if taken.size else math.nan
    left = budget - spent
    for j in np.nonzero(~take)[0]:
        d = values[j] / costs[j] if costs[j] > 0 else math.inf
        why = (
            f"{d:.3g} per USD, below the plan's marginal value per USD ({marg:.3g})"
            if math.isfinite(marg) and d < marg
            else f"more than the USD {max(left, 0.0):,.2f} left in the budget"
            if costs[j] > left
            else f"not reached in {TOP_UPS} rounds of spending what consolidation saved (USD {left:,.2f} unspent)"
        )
        rows.append(_reason(orders[j], int(served[j].size), float(values[j]), float(costs[j]), why))
    rows.sort(key=lambda r: -r["value"])
    out = np.setdiff1d(order[:k], chosen)
    return chosen, Dropped(patches=out, orders=rows, considered=k, marginal_value_per_usd=marg, budget_usd=budget)
