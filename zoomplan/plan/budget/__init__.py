"""Budgets: every region of a polygon layer planned at once and billed per vendor (``zoomplan budget``).

Regions grouped and made disjoint (:mod:`.regions`), planned and billed (:mod:`.budget`), the result
(:mod:`.result`) written as CSV, GeoPackage and a choropleth map (:mod:`.outputs`).
"""

from zoomplan.plan.budget.budget import budget
from zoomplan.plan.budget.outputs import render_map, write_csv, write_gpkg
from zoomplan.plan.budget.regions import DisjointRegion, Region, disjoint_regions, group_regions
from zoomplan.plan.budget.result import COUNTED, BudgetResult, RegionBudget, VendorCost, vendor_slug

__all__ = [
    "COUNTED",
    "BudgetResult",
    "DisjointRegion",
    "Region",
    "RegionBudget",
    "VendorCost",
    "budget",
    "disjoint_regions",
    "group_regions",
    "render_map",
    "vendor_slug",
    "write_csv",
    "write_gpkg",
]
