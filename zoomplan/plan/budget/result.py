"""A budget's result: one row per region with its costs per vendor, the TOTAL record, column names.

What :func:`zoomplan.plan.budget.budget.budget` returns and :mod:`zoomplan.plan.budget.outputs` writes; both import
it from here. Areas km^2, money USD rounded to cents per row (a TOTAL is exactly the sum of its rows).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from pyproj import CRS
from shapely.geometry.base import BaseGeometry

from zoomplan.plan.inference.infer import InferenceStats
from zoomplan.plan.types import PatchTable

OK, PARTLY, OUTSIDE, NODATA, INSIDE = (
    "ok",
    "partly outside scenes",
    "outside scenes",
    "no valid data",
    "inside earlier regions",
)
"""Region statuses. ``OUTSIDE`` and ``NODATA`` rows carry no cost figures and are not in the totals."""


COUNTED = (OK, PARTLY, INSIDE)


BASE_COLUMNS = (
    "region",
    "name",
    "status",
    "region_km2",
    "area_km2",
    "overlap_km2",
    "overlap_with",
    "covered_fraction",
    "planned_fraction",
    "tiles",
    "patches_total",
    "patches_selected",
    "fraction_selected",
)


VENDOR_METRICS = ("orders", "plan_usd", "baseline_usd", "savings_usd", "savings_pct", "plan_usd_per_km2")


_SUMMED = ("region_km2", "area_km2", "overlap_km2", "tiles", "patches_total", "patches_selected")


def vendor_slug(name: str) -> str:
    """Column-safe form of a vendor name: ``clip-30cm`` -> ``clip_30cm``."""
    return re.sub(r"[^0-9A-Za-z]+", "_", name).strip("_").lower() or "vendor"


@dataclass(frozen=True)
class VendorCost:
    """One region under one vendor: orders, plan and baseline (buy the region's part whole), USD rounded to cents."""

    orders: int
    plan_usd: float
    baseline_usd: float

    @property
    def savings_usd(self) -> float:
        return round(self.baseline_usd - self.plan_usd, 2)

    @property
    def savings_pct(self) -> float:
        return round(100.0 * self.savings_usd / self.baseline_usd, 2) if self.baseline_usd > 0 else 0.0


@dataclass(frozen=True)
class RegionBudget:
    """One row: a region's areas (km^2), coverage, tiles, patches and costs per vendor (USD).

    ``area_km2`` is the part billed to this region (the region minus earlier regions it overlaps);
    ``region_km2`` its whole area; ``overlap_km2`` the area it shares with any other region;
    ``covered_fraction`` the share of ``area_km2`` inside the scenes; ``planned_fraction`` the share
    covered by planned patches (valid LR data). ``tiles`` counts each planned tile once, in the region
    holding most of its patches. ``costs`` is empty when the row is not counted (see ``status``).
    ``geometry``: the billed part, planning CRS (metres).
    """

    region: str
    name: str | None
    status: str
    region_km2: float
    area_km2: float
    overlap_km2: float
    overlap_with: str
    covered_fraction: float
    planned_fraction: float
    tiles: int
    patches_total: int
    patches_selected: int
    costs: dict[str, VendorCost]
    geometry: BaseGeometry

    @property
    def counted(self) -> bool:
        """True when the row carries figures and is part of the totals."""
        return self.status in COUNTED

    @property
    def fraction_selected(self) -> float:
        return round(self.patches_selected / self.patches_total, 4) if self.patches_total else math.nan


@dataclass(frozen=True)
class BudgetResult:
    """Rows by region (file order), the TOTAL record, notes for people, and what was planned."""

    rows: list[RegionBudget]
    vendors: tuple[str, ...]
    notes: tuple[str, ...]
    crs: CRS
    threshold: float
    table: PatchTable
    selected: np.ndarray
    stats: InferenceStats
    written: tuple[str, ...] = field(default=())

    def columns(self) -> list[str]:
        """Column names of :meth:`records`: the base columns, then ``<metric>_<vendor slug>`` per vendor."""
        return [*BASE_COLUMNS, *(f"{m}_{vendor_slug(v)}" for v in self.vendors for m in VENDOR_METRICS)]

    def records(self, total: bool = True) -> list[dict[str, Any]]:
        """One flat dict per region (NaN where a row carries no figure), then the TOTAL record."""
        out = [_record(r, self.vendors) for r in self.rows]
        return out + [self.totals()] if total else out

    def totals(self) -> dict[str, Any]:
        """The TOTAL record: sums over the counted rows (ratios recomputed from those sums)."""
        rows = [r for r in self.rows if r.counted]
        left = [f"{r.region} ({r.status})" for r in self.rows if not r.counted]
        t: dict[str, Any] = {"region": "TOTAL", "name": None, "overlap_with": None}
        t["status"] = f"sum of {len(rows)} of {len(self.rows)} regions" + (
            f"; not included: {', '.join(left)}" if left else ""
        )
        for c in _SUMMED:
            vals = [getattr(r, c) for r in rows]
            t[c] = round(sum(vals), 6) if c.endswith("km2") else int(sum(vals))
        area = t["area_km2"]
        t["covered_fraction"] = (
            round(sum(r.covered_fraction * r.area_km2 for r in rows) / area, 4) if area > 0 else math.nan
        )
        t["planned_fraction"] = (
            round(sum(r.planned_fraction * r.area_km2 for r in rows) / area, 4) if area > 0 else math.nan
        )
        t["fraction_selected"] = (
            round(t["patches_selected"] / t["patches_total"], 4) if t["patches_total"] else math.nan
        )
        for v in self.vendors:
            s = vendor_slug(v)
            plan = round(sum(r.costs[v].plan_usd for r in rows), 2)
            base = round(sum(r.costs[v].baseline_usd for r in rows), 2)
            t[f"orders_{s}"] = sum(r.costs[v].orders for r in rows)
            t[f"plan_usd_{s}"], t[f"baseline_usd_{s}"] = plan, base
            t[f"savings_usd_{s}"] = round(sum(r.costs[v].savings_usd for r in rows), 2)
            t[f"savings_pct_{s}"] = round(100.0 * (base - plan) / base, 2) if base > 0 else 0.0
            t[f"plan_usd_per_km2_{s}"] = round(plan / area, 2) if area > 0 else math.nan
        return t


def _record(r: RegionBudget, vendors: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {c: getattr(r, c) for c in BASE_COLUMNS}
    for v in vendors:
        s = vendor_slug(v)
        c = r.costs.get(v)
        out[f"orders_{s}"] = c.orders if c else math.nan
        out[f"plan_usd_{s}"] = c.plan_usd if c else math.nan
        out[f"baseline_usd_{s}"] = c.baseline_usd if c else math.nan
        out[f"savings_usd_{s}"] = c.savings_usd if c else math.nan
        out[f"savings_pct_{s}"] = c.savings_pct if c else math.nan
        out[f"plan_usd_per_km2_{s}"] = round(c.plan_usd / r.area_km2, 2) if c and r.area_km2 > 0 else math.nan
    return out
