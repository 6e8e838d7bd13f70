"""Selection: which HR patches to buy, from the policy's probabilities.

A threshold, a fraction or a budget (:mod:`.select`; a budget is spent on the consolidated orders
worth their price, :mod:`.knapsack`), with cloudy patches skipped, bought or asked about
(:mod:`.clouds`). The function ``select`` stays under its module (``selection.select.select``) so
that ``zoomplan.plan.selection.select`` names the module.
"""

from zoomplan.plan.selection.clouds import check_mode, selection_table
from zoomplan.plan.selection.knapsack import Dropped, greedy, spend
from zoomplan.plan.selection.select import Selection, plan_cost, rank, select_patches

__all__ = [
    "Dropped",
    "Selection",
    "check_mode",
    "greedy",
    "plan_cost",
    "rank",
    "select_patches",
    "selection_table",
    "spend",
]
