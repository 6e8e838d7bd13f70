"""Orders: selected patches -> orderable polygons a vendor bills, and the vendor rules that bill them.

Per AOI feature the cheapest of a family of candidate plans (:mod:`.consolidate` over the patch
window of :mod:`.window`), each made orderable (:mod:`.orderable`: vertex limit, no area billed twice
(:mod:`.disjoint`), holes (:mod:`.holes`), crumbs (:mod:`.crumbs`)) and billed on the ellipsoid
(:mod:`.area`) under the vendor's profile (:mod:`.pricing`); :mod:`.orders` is the entry point.
The functions ``orderable`` and ``polygons`` stay under their modules, whose names they share.
"""

from zoomplan.plan.orders.area import Measure
from zoomplan.plan.orders.orders import (
    Order,
    OrderPlan,
    baseline_cost,
    build_orders,
    component_orders,
    orders_with_references,
    plan_orders,
    whole_aoi_orders,
)
from zoomplan.plan.orders.pricing import (
    DEFAULT_VENDOR,
    Bill,
    VendorProfile,
    bill,
    billed_km2,
    cost_summary,
    default_catalogue,
    get_vendor,
    load_vendors,
)

__all__ = [
    "DEFAULT_VENDOR",
    "Bill",
    "Measure",
    "Order",
    "OrderPlan",
    "VendorProfile",
    "baseline_cost",
    "bill",
    "billed_km2",
    "build_orders",
    "component_orders",
    "cost_summary",
    "default_catalogue",
    "get_vendor",
    "load_vendors",
    "orders_with_references",
    "plan_orders",
    "whole_aoi_orders",
]
