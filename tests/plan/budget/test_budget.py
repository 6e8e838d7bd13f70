"""budget(): per-region rows add up to the totals, overlaps are billed once, regions outside the scenes
are reported, --by groups, outputs read back; on a generated UTM 18N scene with the tiny checkpoint."""

from __future__ import annotations

import csv
import logging
import math
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import shapely
import torch
from PIL import Image

from tests.helpers.synth import utm_scene, write_aoi
from zoomplan.errors import ConfigError, GeometryError, ZoomplanError
from zoomplan.plan.budget import budget
from zoomplan.plan.budget.regions import Region, disjoint_regions
from zoomplan.plan.budget.result import COUNTED, BudgetResult, vendor_slug
from zoomplan.plan.pipeline import plan

A = shapely.box(440040, 4169600, 440360, 4169960)
B = shapely.box(440200, 4169400, 440600, 4169760)  # shares 160 m x 160 m with A
FAR = shapely.box(445000, 4169400, 445300, 4169700)  # 5 km east of the 640 m scene
EDGE = shapely.box(440400, 4169800, 440800, 4169990)  # 60% inside the scene (it ends at x = 440640)
INNER = shapely.box(440100, 4169800, 440200, 4169900)  # inside A

VENDORS = """
[[vendor]]
name = "flat"
product = "no minimum, MultiPolygons"
resolution_m = 0.5
kind = "archive"
currency = "USD"
price_per_km2 = 10.0
min_order_km2 = 0.0
min_width_m = 0.0
max_vertices = 1000
allows_multipolygon = true
cloud_max_pct = 20.0
off_nadir_max_deg = 30.0
source = "test"
as_of = "2026-11"

[[vendor]]
name = "clip-min"
product = "0.05 km2 minimum per polygon"
resolution_m = 0.3
kind = "archive"
currency = "USD"
price_per_km2 = 27.0
min_order_km2 = 0.05
min_width_m = 0.0
max_vertices = 1000
allows_multipolygon = false
cloud_max_pct = 20.0
off_nadir_max_deg = 30.0
source = "test"
as_of = "2026-11"
"""
SUMMED = ("area_km2", "region_km2", "overlap_km2", "tiles", "patches_total", "patches_selected")
PER_VENDOR = ("orders", "plan_usd", "baseline_usd", "savings_usd")


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture
def setup(tmp_path: Path) -> dict[str, Path]:
    scene = utm_scene(tmp_path / "scene.tif", size=64)  # x 440000-440640, y 4169360-4170000
    vendors = tmp_path / "vendors.toml"
    vendors.write_text(VENDORS)
    regions = write_aoi(
        tmp_path / "regions.gpkg",
        [A, B, FAR, EDGE],
        "EPSG:32618",
        ids=["a", "b", "far", "edge"],
        names=["North", "South", "Far", "Edge"],
    )
    return {"scene": scene, "vendors": vendors, "regions": regions, "dir": tmp_path}


def run(s: dict[str, Path], ckpt: Path, regions: Path | None = None, **kw: object) -> BudgetResult:
    return budget(regions or s["regions"], [s["scene"]], model=ckpt, device="cpu", vendors_file=s["vendors"], **kw)


def test_totals_are_the_sum_of_the_rows_and_outside_regions_are_reported(
    setup: dict[str, Path], tiny_checkpoint: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        r = run(setup, tiny_checkpoint)
    assert r.vendors == ("flat", "clip-min")  # every profile of the catalogue, in its order
    assert [(x.region, x.status) for x in r.rows] == [
        ("a", "ok"),
        ("b", "ok"),
        ("far", "outside scenes"),
        ("edge", "partly outside scenes"),
    ]
    assert r.rows[3].covered_fraction == pytest.approx(0.6, abs=1e-3) and r.rows[3].counted
    recs = r.records()
    rows, total = recs[:-1], recs[-1]
    assert (
        total["region"] == "TOTAL"
        and "sum of 3 of 4 regions" in total["status"]
        and "far (outside scenes)" in total["status"]
    )
    counted = [rec for rec, row in zip(rows, r.rows) if row.status in COUNTED]
    assert len(counted) == 3
    for col in SUMMED + tuple(f"{m}_{vendor_slug(v)}" for v in r.vendors for m in PER_VENDOR):
        assert total[col] == pytest.approx(sum(rec[col] for rec in counted), abs=1e-6), col
    for v in r.vendors:
        s = vendor_slug(v)
        assert total[f"savings_usd_{s}"] == pytest.approx(total[f"baseline_usd_{s}"] - total[f"plan_usd_{s}"], abs=1e-6)
        assert 0 <= total[f"plan_usd_{s}"] <= total[f"baseline_usd_{s}"]
    # the region outside the scene: reported with its status and area, no figures (not 0), not in the totals
    far = rows[2]
    assert far["tiles"] == 0 and far["patches_total"] == 0 and far["area_km2"] == pytest.approx(0.09)
    assert all(math.isnan(far[f"{m}_{vendor_slug(v)}"]) for v in r.vendors for m in PER_VENDOR)
    assert total["area_km2"] == pytest.approx(rows[0]["area_km2"] + rows[1]["area_km2"] + rows[3]["area_km2"])
    assert "'far': outside scenes" in caplog.text
    assert any("not in the totals" in n and "far (outside scenes)" in n for n in r.notes)


def test_overlapping_regions_are_billed_once(setup: dict[str, Path], tiny_checkpoint: Path) -> None:
    d = setup["dir"]
    two = write_aoi(d / "two.gpkg", [A, B, INNER], "EPSG:32618", ids=["a", "b", "inner"])
    r = run(setup, tiny_checkpoint, regions=two)
    a, b, inner = r.rows
    # a region inside an earlier one: all its area went to that one; zeros, counted, said so
    assert inner.status == "inside earlier regions" and inner.area_km2 == 0 and inner.region_km2 == pytest.approx(0.01)
    assert (
        inner.patches_total == 0
        and all(c.plan_usd == c.baseline_usd == 0 for c in inner.costs.values())
        and inner.counted
    )
    assert "billed to a" in inner.overlap_with
    # the shared 160 m x 160 m belongs to the first region in file order
    assert a.overlap_km2 == pytest.approx(0.0256 + 0.01) and b.overlap_km2 == pytest.approx(0.0256)
    assert a.area_km2 == pytest.approx(A.area / 1e6) and b.area_km2 == pytest.approx((B.area - 160 * 160) / 1e6)
    assert "kept here" in a.overlap_with and "billed to a" in b.overlap_with
    assert any("billed once" in n for n in r.notes)
    # every patch once: the rows' patches are the distinct patches of the union
    union = write_aoi(d / "union.gpkg", [A.union(B)], "EPSG:32618")
    u = plan(
        union,
        [setup["scene"]],
        model=tiny_checkpoint,
        device="cpu",
        vendor="flat",
        vendors_file=setup["vendors"],
        threshold=0.0,
    )
    assert a.patches_total + b.patches_total == len(r.table) == len(u.table)
    assert len(set(r.table.patch_ids())) == len(r.table)
    assert a.patches_selected + b.patches_selected == int(r.selected.sum())
    # buying everything costs exactly the union bought whole: no km2 is billed twice
    everything = run(setup, tiny_checkpoint, regions=two, threshold=0.0)
    t = everything.totals()
    assert (
        t["plan_usd_flat"]
        == t["baseline_usd_flat"]
        == pytest.approx(round(u.summary["baseline_cost_usd"], 2), abs=0.011)
    )
    assert t["baseline_usd_flat"] == pytest.approx(A.union(B).area / 1e6 * 10.0, abs=0.011)
    # at the default threshold the totals are exactly `zoomplan plan` over the disjoint parts (one feature each)
    parts = write_aoi(d / "parts.gpkg", [x.geometry for x in r.rows if not x.geometry.is_empty], "EPSG:32618")
    for v in r.vendors:
        p = plan(parts, [setup["scene"]], model=tiny_checkpoint, device="cpu", vendor=v, vendors_file=setup["vendors"])
        s = vendor_slug(v)
        assert r.totals()[f"plan_usd_{s}"] == pytest.approx(p.summary["plan_cost_usd"], abs=0.011)
        assert r.totals()[f"baseline_usd_{s}"] == pytest.approx(p.summary["baseline_cost_usd"], abs=0.011)


def test_enclosed_region_is_not_bought_again_with_its_neighbour() -> None:
    inner, outer = shapely.box(200, 200, 400, 400), shapely.box(0, 0, 1000, 1000)
    d_inner, d_outer = disjoint_regions([Region("inner", None, inner), Region("outer", None, outer)])
    assert d_inner.part.equals(inner) and not d_inner.cut
    assert d_outer.cut and len(d_outer.pieces) >= 2 and all(not p.interiors for p in d_outer.pieces)
    assert sum(p.area for p in d_outer.pieces) == pytest.approx(outer.area - inner.area)
    assert shapely.union_all(list(d_outer.pieces)).intersection(inner).area == pytest.approx(0.0, abs=1e-6)
    # a region inside an earlier one is billed nothing; a hole over no region is kept (and filled when ordered)
    lake = shapely.Polygon(outer.exterior, [inner.exterior])
    d_big, d_small = disjoint_regions([Region("big", None, outer), Region("small", None, inner)])
    assert d_small.part.is_empty and d_small.pieces == () and d_big.pieces == (outer,)
    (d_lake,) = disjoint_regions([Region("lake", None, lake)])
    assert d_lake.pieces == (lake,) and not d_lake.cut


def test_by_field_merges_features_and_missing_field_is_one_line(setup: dict[str, Path], tiny_checkpoint: Path) -> None:
    import geopandas as gpd

    d = setup["dir"]
    path = d / "blocks.gpkg"
    gpd.GeoDataFrame(
        {"block": ["x", "y", "x"], "name": ["n1", "n2", "n3"]}, geometry=[A, FAR, B], crs="EPSG:32618"
    ).to_file(path)
    r = run(setup, tiny_checkpoint, regions=path, by="block", vendors=["flat"])
    assert [(x.region, x.name, x.status) for x in r.rows] == [("x", "n1", "ok"), ("y", "n2", "outside scenes")]
    assert r.rows[0].area_km2 == pytest.approx(A.union(B).area / 1e6) and r.rows[0].overlap_km2 == 0
    assert r.vendors == ("flat",) and r.columns()[-1] == "plan_usd_per_km2_flat"
    with pytest.raises(ConfigError, match=r"--by 'district'.*no such field; its fields are: block, name") as ei:
        run(setup, tiny_checkpoint, regions=path, by="district", out_csv=d / "out" / "b.csv")
    assert "\n" not in str(ei.value) and not (d / "out").exists()


def test_outputs_read_back(setup: dict[str, Path], tiny_checkpoint: Path) -> None:
    out = setup["dir"] / "out"
    r = run(setup, tiny_checkpoint, out_csv=out / "b.csv", out_gpkg=out / "b.gpkg", map_png=out / "b.png")
    assert sorted(Path(w).name for w in r.written) == ["b.csv", "b.gpkg", "b.png"]
    assert sorted(p.name for p in out.iterdir()) == ["b.csv", "b.gpkg", "b.png"]  # nothing staged left behind
    with open(out / "b.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [x["region"] for x in rows] == ["a", "b", "far", "edge", "TOTAL"] and list(rows[0]) == r.columns()
    assert rows[2]["plan_usd_flat"] == "" and rows[2]["status"] == "outside scenes"  # empty, not 0
    assert float(rows[4]["plan_usd_flat"]) == pytest.approx(
        sum(float(rows[i]["plan_usd_flat"]) for i in (0, 1, 3)), abs=1e-6
    )
    assert {tuple(x) for x in pyogrio.list_layers(out / "b.gpkg")} == {("budget", "MultiPolygon"), ("totals", None)}
    g = pyogrio.read_dataframe(out / "b.gpkg", layer="budget")
    assert g.crs.to_epsg() == 4326 and list(g["region"]) == ["a", "b", "far", "edge"]
    assert g.to_crs(32618).area.iloc[1] == pytest.approx(r.rows[1].area_km2 * 1e6, rel=1e-6)  # b's billed part
    assert math.isnan(g["plan_usd_flat"].iloc[2])
    t = pyogrio.read_dataframe(out / "b.gpkg", layer="totals")
    assert t["region"].tolist() == ["TOTAL"] and t["plan_usd_flat"].iloc[0] == pytest.approx(
        float(rows[4]["plan_usd_flat"])
    )
    png = out / "b.png"
    assert png.stat().st_size > 20_000
    img = np.asarray(Image.open(png).convert("RGB"), dtype=np.float32)
    assert min(img.shape[:2]) > 400 and img.std() > 20 and len(np.unique(img.reshape(-1, 3), axis=0)) > 1000


def test_bad_input_writes_nothing(
    setup: dict[str, Path], tiny_checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = setup["dir"] / "out"
    far = write_aoi(setup["dir"] / "far.gpkg", [FAR], "EPSG:32618")
    with pytest.raises(GeometryError, match="outside every scene"):
        run(setup, tiny_checkpoint, regions=far, out_csv=out / "b.csv")
    for kw, pattern in [
        ({"vendors": ["acme"]}, "unknown vendor 'acme'"),
        ({"map_png": out / "m.jpg"}, "must end in .png"),
        ({"out_gpkg": out / "b.shp"}, "must end in .gpkg"),
        ({"threshold": -1.0}, "is negative"),
    ]:
        with pytest.raises(ZoomplanError, match=pattern):
            run(setup, tiny_checkpoint, out_csv=out / "b.csv", **kw)

    from zoomplan.plan.budget import outputs as budget_io

    def boom(*a: object, **k: object) -> None:
        raise RuntimeError("renderer crashed")

    monkeypatch.setattr(budget_io, "render_map", boom)
    with pytest.raises(RuntimeError, match="renderer crashed"):
        run(setup, tiny_checkpoint, out_csv=out / "b.csv", out_gpkg=out / "b.gpkg", map_png=out / "b.png")
    assert not out.exists() or list(out.iterdir()) == []


def test_region_without_valid_data_is_reported(setup: dict[str, Path], tiny_checkpoint: Path) -> None:
    d = setup["dir"]
    scene = utm_scene(
        d / "holes.tif", size=64, nodata_block=(slice(40, 64), slice(40, 64))
    )  # nodata: x >= 440400, y <= 4169600
    regions = write_aoi(
        d / "r.gpkg", [A, shapely.box(440450, 4169400, 440600, 4169550)], "EPSG:32618", ids=["a", "blank"]
    )
    r = budget(regions, [scene], model=tiny_checkpoint, device="cpu", vendors_file=setup["vendors"])
    assert [(x.region, x.status, x.counted) for x in r.rows] == [("a", "ok", True), ("blank", "no valid data", False)]
    blank = r.records()[1]
    assert blank["tiles"] == 0 and blank["covered_fraction"] == 1.0 and math.isnan(blank["plan_usd_flat"])
    assert r.totals()["plan_usd_flat"] == r.rows[0].costs["flat"].plan_usd
