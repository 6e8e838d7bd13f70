"""Vendor catalogue and billing: pure functions, no geometry beyond a few rectangles."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import shapely
from pyproj import CRS

from tests.plan.tables import km2
from tests.plan.tables import vendor as base_vendor
from zoomplan.errors import ConfigError, InputError
from zoomplan.plan.orders.orders import baseline_cost
from zoomplan.plan.orders.pricing import (
    DEFAULT_VENDOR,
    Bill,
    VendorProfile,
    bill,
    billed_km2,
    cost_summary,
    get_vendor,
    load_vendors,
)

UTM18 = CRS.from_epsg(32618)

PROFILE = """
[[vendor]]
name = "v1"
product = "test product"
resolution_m = 0.5
kind = "archive"
currency = "USD"
price_per_km2 = 10.0
min_order_km2 = 1.0
min_width_m = 0.0
max_vertices = 100
allows_multipolygon = false
cloud_max_pct = 20.0
off_nadir_max_deg = 30.0
source = "test"
as_of = 2026-11-01
"""


def vendor(**over: object) -> VendorProfile:
    return base_vendor(**{"min_order_km2": 1.0, "max_vertices": 100, **over})


def test_packaged_catalogue_looks_like_the_market() -> None:
    vs = load_vendors()
    assert DEFAULT_VENDOR in vs and len(vs) >= 3
    by = {(v.kind, v.resolution_m) for v in vs.values()}
    assert {("archive", 0.5), ("archive", 0.3), ("tasking", 0.3)} <= by
    assert any(v.min_order_km2 <= 1.0 for v in vs.values()), "a small-minimum online clip profile is needed for savings"
    for v in vs.values():
        assert v.currency == "USD" and v.source and v.as_of and "indicative" in v.source
        lo, hi = {("archive", 0.5): (8, 20), ("archive", 0.3): (18, 35), ("tasking", 0.3): (30, 60)}[
            (v.kind, v.resolution_m)
        ]
        assert lo <= v.price_per_km2 <= hi, v.name
    assert all(v.min_order_km2 >= 100 for v in vs.values() if v.kind == "tasking")


def test_every_packaged_profile_documents_its_minimum_width() -> None:
    """Issue 17: no packaged profile without a minimum width (no order of 20 m strips), and the catalogue says,
    above each profile's table, where its width comes from."""
    from zoomplan.plan.orders.pricing import default_catalogue

    text = default_catalogue().read_text(encoding="utf-8")
    for v in load_vendors().values():
        assert v.min_width_m >= 60.0, v.name  # wider than the 3-patch strips of a fixed mask
        head = text[: text.index(f'name = "{v.name}"')].rsplit("[[vendor]]", 1)[0].rsplit("\n\n", 1)[-1]
        assert f"min_width_m = {v.min_width_m:g}" in head, f"{v.name}: say where its minimum width comes from"


def test_load_override_file_and_toml_date(tmp_path: Path) -> None:
    p = tmp_path / "v.toml"
    p.write_text(PROFILE)
    vs = load_vendors(p)
    assert list(vs) == ["v1"] and vs["v1"].as_of == "2026-11-01" and vs["v1"].price_per_km2 == 10.0


@pytest.mark.parametrize(
    "edit, words",
    [
        (lambda s: s.replace("price_per_km2 = 10.0\n", ""), ["price_per_km2", "missing"]),
        (lambda s: s.replace("price_per_km2 = 10.0", "price_per_km2 = -3.0"), ["price_per_km2", "-3.0"]),
        (lambda s: s.replace("min_order_km2 = 1.0", "min_order_km2 = -1"), ["min_order_km2"]),
        (lambda s: s.replace("price_per_km2 = 10.0", 'price_per_km2 = "ten"'), ["price_per_km2"]),
        (lambda s: s.replace("source", "sauce"), ["unknown field", "sauce"]),
        (lambda s: s.replace('kind = "archive"', 'kind = "spot"'), ["kind"]),
        (lambda s: s.replace('currency = "USD"', 'currency = "EUR"'), ["currency", "USD"]),
        (lambda s: s + s, ["twice"]),
        (lambda s: s + "[[[", ["TOML"]),
    ],
)
def test_bad_catalogue_names_file_profile_and_field(tmp_path: Path, edit, words) -> None:
    p = tmp_path / "bad.toml"
    p.write_text(edit(PROFILE))
    with pytest.raises(ConfigError) as e:
        load_vendors(p)
    msg = str(e.value)
    assert str(p) in msg and "\n" not in msg
    for w in words:
        assert w in msg
    if "twice" not in words and "TOML" not in words:
        assert "'v1'" in msg


def test_missing_file_and_unknown_vendor(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nope.toml"):
        load_vendors(tmp_path / "nope.toml")
    with pytest.raises(InputError, match="clip-30cm"):
        get_vendor("nope", load_vendors())
    assert get_vendor("clip-30cm", load_vendors()).name == "clip-30cm"


def test_billing_minimums_and_baseline() -> None:
    v = vendor(min_order_km2=1.0, price_per_km2=10.0)
    assert billed_km2(0.0, v) == 0.0
    assert billed_km2(0.2, v) == 1.0 and billed_km2(3.5, v) == 3.5

    @dataclasses.dataclass
    class Area:
        area_km2: float

    b = bill([Area(0.2), Area(3.0)], v)
    assert b == Bill(area_km2=3.2, billed_km2=4.0, cost_usd=40.0, n_orders=2)
    # a 3 km x 2 km AOI with a 0.25 km^2 hole: split into hole-free pieces around it (cheaper than filling it;
    # zoomplan.plan.orders.holes), so the baseline does not buy the hole; areas on the ellipsoid
    # (zoomplan.plan.orders.area)
    box = shapely.box(500000, 4400000, 503000, 4402000)
    holed = box.difference(shapely.box(501000, 4400500, 501500, 4401000))
    assert baseline_cost([holed], v, UTM18).cost_usd == pytest.approx(
        10.0 * km2([holed], UTM18), rel=1e-6
    )  # pieces measured apart
    assert baseline_cost([holed], vendor(min_order_km2=5.0, price_per_km2=10.0), UTM18).cost_usd == pytest.approx(
        10.0 * km2([box], UTM18), rel=1e-9
    )  # filled
    # two far parts: two orders, each at least the minimum, unless MultiPolygons are allowed
    two = shapely.MultiPolygon(
        [shapely.box(500000, 4400000, 500500, 4400500), shapely.box(510000, 4400000, 510500, 4400500)]
    )
    assert baseline_cost([two], v, UTM18) == Bill(pytest.approx(km2([two], UTM18)), 2.0, 20.0, 2)
    assert baseline_cost([two], vendor(allows_multipolygon=True), UTM18) == Bill(
        pytest.approx(km2([two], UTM18)), 1.0, 10.0, 1
    )
    s = cost_summary(Bill(1, 1, 25.0, 1), Bill(4, 4, 100.0, 1), v)
    assert s["savings_usd"] == 75.0 and s["savings_pct"] == 75.0 and s["plan_cost_usd"] == 25.0


def test_profile_checks_on_construction() -> None:
    with pytest.raises(ConfigError, match="max_vertices"):
        vendor(max_vertices=3)
    with pytest.raises(ConfigError, match="price_per_km2"):
        vendor(price_per_km2=float("nan"))
