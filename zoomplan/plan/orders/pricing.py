"""Vendor catalogue and billing: what an order of high-resolution imagery costs.

A vendor bills each order polygon as ``billed_km2 = max(area_km2, min_order_km2)`` at
``price_per_km2`` (USD per km^2); geometric rules (minimum width, vertex limit, single polygons) are
applied when orders are built (:mod:`zoomplan.plan.orders.orders`). The baseline is the whole AOI ordered
from the same vendor under the same rules (:func:`zoomplan.plan.orders.orders.baseline_cost`, beside the orders
it is made of). Everything here is pure; areas are km^2, money USD.
"""

from __future__ import annotations

import datetime as _dt
import logging
import math
import tomllib
from dataclasses import dataclass, fields
from importlib.resources import files
from pathlib import Path
from typing import Any, Iterable, Mapping, Protocol

from zoomplan.errors import ConfigError, InputError

log = logging.getLogger(__name__)

DEFAULT_VENDOR = "clip-30cm"
"""Profile used when none is named: a 30 cm online archive clip with a small minimum order."""

KINDS = ("archive", "tasking")


@dataclass(frozen=True)
class VendorProfile:
    """How one vendor sells one product. Prices USD per km^2, areas km^2, widths metres."""

    name: str
    product: str
    resolution_m: float  # ground sample distance, metres
    kind: str  # "archive" | "tasking"
    currency: str  # "USD"
    price_per_km2: float  # USD per billed km^2
    min_order_km2: float  # minimum billed area per order, km^2
    min_width_m: float  # minimum width of every order polygon, metres (0: none)
    max_vertices: int  # most vertices per order polygon
    allows_multipolygon: bool  # several polygons in one order
    cloud_max_pct: float  # percent
    off_nadir_max_deg: float  # degrees
    source: str
    as_of: str

    def __post_init__(self) -> None:
        where = f"vendor profile {self.name!r}"
        for f in (
            "price_per_km2",
            "min_order_km2",
            "min_width_m",
            "resolution_m",
            "cloud_max_pct",
            "off_nadir_max_deg",
        ):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ConfigError(f"{where}: field {f!r} is {v!r}; set a finite number >= 0")
        if self.resolution_m <= 0:
            raise ConfigError(
                f"{where}: field 'resolution_m' is {self.resolution_m!r}; set the product's pixel size in metres (> 0)"
            )
        if self.cloud_max_pct > 100 or self.off_nadir_max_deg > 90:
            raise ConfigError(
                f"{where}: cloud_max_pct must be <= 100 and off_nadir_max_deg <= 90; found {self.cloud_max_pct}, "
                f"{self.off_nadir_max_deg}"
            )
        if isinstance(self.max_vertices, bool) or not isinstance(self.max_vertices, int) or self.max_vertices < 4:
            raise ConfigError(f"{where}: field 'max_vertices' is {self.max_vertices!r}; set an integer >= 4")
        if self.kind not in KINDS:
            raise ConfigError(f"{where}: field 'kind' is {self.kind!r}; use one of {', '.join(KINDS)}")
        if self.currency != "USD":
            raise ConfigError(
                f"{where}: field 'currency' is {self.currency!r}; zoomplan bills in USD, convert the prices and set "
                f'currency = "USD"'
            )
        if not isinstance(self.allows_multipolygon, bool):
            raise ConfigError(
                f"{where}: field 'allows_multipolygon' is {self.allows_multipolygon!r}; set true or false"
            )


_FIELDS = {f.name: f for f in fields(VendorProfile)}
_NUMBERS = ("resolution_m", "price_per_km2", "min_order_km2", "min_width_m", "cloud_max_pct", "off_nadir_max_deg")
_STRINGS = ("name", "product", "kind", "currency", "source")


def default_catalogue() -> Path:
    """Path of the packaged catalogue ``zoomplan/configs/vendors.toml``."""
    return Path(str(files("zoomplan.configs") / "vendors.toml"))


def _profile(raw: Any, where: str) -> VendorProfile:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a [[vendor]] table, found {type(raw).__name__}; see configs/vendors.toml")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}: a [[vendor]] table has no 'name'; add name = \"...\"")
    where = f"{where}: profile {name!r}"
    unknown = sorted(set(raw) - set(_FIELDS))
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(unknown)}; known fields are {', '.join(_FIELDS)}")
    missing = [f for f in _FIELDS if f not in raw]
    if missing:
        raise ConfigError(
            f"{where}: missing field(s) {', '.join(missing)}; every profile needs all of {', '.join(_FIELDS)}"
        )
    kw = dict(raw)
    for f in _NUMBERS:
        v = kw[f]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise ConfigError(f"{where}: field {f!r} is {v!r}; set a finite number >= 0")
        kw[f] = float(v)
    for f in _STRINGS:
        if not isinstance(kw[f], str):
            raise ConfigError(f"{where}: field {f!r} is {kw[f]!r}; set a string")
    if isinstance(kw["as_of"], (_dt.date, _dt.datetime)):
        kw["as_of"] = kw["as_of"].isoformat()
    if not isinstance(kw["as_of"], str):
        raise ConfigError(f"{where}: field 'as_of' is {kw['as_of']!r}; set a date such as \"2026-11\"")
    try:
        return VendorProfile(**kw)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {str(exc).split(': ', 1)[-1]}") from None


def load_vendors(path: Path | None = None) -> dict[str, VendorProfile]:
    """Read a vendor catalogue (TOML, ``[[vendor]]`` tables) into ``{name: VendorProfile}``.

    ``path`` defaults to the packaged ``zoomplan/configs/vendors.toml``. Raises
    :class:`~zoomplan.errors.ConfigError` naming the file, the profile and the field on a missing,
    unknown, negative or mistyped value, or on a duplicate name.
    """
    p = Path(path) if path is not None else default_catalogue()
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"vendors file {p}: cannot be read ({exc.strerror or exc}); pass an existing TOML file to --vendors"
        ) from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"vendors file {p}: not valid TOML ({exc}); fix the syntax") from None
    raws = doc.get("vendor")
    if not isinstance(raws, list) or not raws:
        raise ConfigError(
            f"vendors file {p}: no [[vendor]] tables found; add at least one profile (see the packaged "
            f"configs/vendors.toml)"
        )
    out: dict[str, VendorProfile] = {}
    for raw in raws:
        v = _profile(raw, f"vendors file {p}")
        if v.name in out:
            raise ConfigError(
                f"vendors file {p}: profile {v.name!r} is defined twice; give each [[vendor]] a unique name"
            )
        out[v.name] = v
    return out


def get_vendor(name: str, vendors: Mapping[str, VendorProfile]) -> VendorProfile:
    """The profile called ``name``; :class:`~zoomplan.errors.InputError` listing the known names otherwise."""
    try:
        return vendors[name]
    except KeyError:
        raise InputError(
            f"unknown vendor {name!r}; choose one of: {', '.join(sorted(vendors)) or '(none loaded)'}"
        ) from None


@dataclass(frozen=True)
class Bill:
    """What a set of orders costs: areas km^2, money USD."""

    area_km2: float  # ordered area
    billed_km2: float  # area the vendor bills (minimums applied)
    cost_usd: float
    n_orders: int


class _HasArea(Protocol):
    area_km2: float


def billed_km2(area_km2: float, vendor: VendorProfile) -> float:
    """Billed area (km^2) of one order polygon of ``area_km2``: ``max(area, min_order_km2)``; 0 for no area."""
    if area_km2 <= 0:
        return 0.0
    return max(float(area_km2), vendor.min_order_km2)


def bill(orders: Iterable[_HasArea], vendor: VendorProfile) -> Bill:
    """Bill a sequence of orders (anything with ``area_km2``, km^2) under ``vendor``'s rules (USD)."""
    area = billed = cost = 0.0
    n = 0
    for o in orders:
        b = billed_km2(o.area_km2, vendor)
        area += float(o.area_km2)
        billed += b
        cost += b * vendor.price_per_km2
        n += 1
    return Bill(area_km2=area, billed_km2=billed, cost_usd=cost, n_orders=n)


def cost_summary(
    plan: Bill, baseline: Bill, vendor: VendorProfile, *, orders: Iterable[Any] | None = None
) -> dict[str, Any]:
    """Plan against baseline, JSON-ready: areas km^2, money USD, savings in USD and percent of baseline.

    With ``orders`` (:class:`~zoomplan.plan.orders.orders.Order`), ``whole_aoi_features`` lists the AOI
    features bought whole and ``note`` says so when the whole AOI is bought (the plan is the baseline).
    """
    saving = baseline.cost_usd - plan.cost_usd
    out: dict[str, Any] = {
        "vendor": vendor.name,
        "product": vendor.product,
        "currency": vendor.currency,
        "price_per_km2": vendor.price_per_km2,
        "price_source": vendor.source,
        "price_as_of": vendor.as_of,
        "n_orders": plan.n_orders,
        "plan_area_km2": round(plan.area_km2, 6),
        "plan_billed_km2": round(plan.billed_km2, 6),
        "plan_cost_usd": round(plan.cost_usd, 2),
        "baseline_billed_km2": round(baseline.billed_km2, 6),
        "baseline_cost_usd": round(baseline.cost_usd, 2),
        "savings_usd": round(saving, 2),
        "savings_pct": round(100.0 * saving / baseline.cost_usd, 2) if baseline.cost_usd > 0 else 0.0,
    }
    if orders is not None:
        orders = list(orders)
        whole = sorted({int(o.aoi_index) for o in orders if o.whole_aoi})
        out["whole_aoi_features"] = whole
        if orders and all(o.whole_aoi for o in orders):
            out["note"] = (
                "the plan buys the whole AOI: every patch is selected, or consolidated orders would cost no less than "
                f"the baseline under {vendor.name}'s minimum order ({vendor.min_order_km2:g} km^2) and width "
                f"({vendor.min_width_m:g} m)"
            )
    return out
