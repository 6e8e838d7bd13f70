"""plan(): end to end on generated scenes (UTM north/south, EPSG:4326), bad input, atomic outputs."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
import torch
from pyproj import Transformer
from rasterio.transform import from_origin

from tests.conftest import shared_data
from tests.helpers.synth import utm_scene, write_aoi, write_scene
from zoomplan.errors import ZoomplanError
from zoomplan.plan.pipeline import plan

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EXAMPLE_SCENE = EXAMPLES / "s2_l1c_18SVG_20160112_accomac_crop.tif"
EXAMPLE_AOI = EXAMPLES / "aoi_accomac.geojson"


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def lonlat_boxes(epsg: int, boxes: list[tuple[float, float, float, float]]) -> list:
    """UTM boxes (minx, miny, maxx, maxy) as EPSG:4326 polygons."""
    t = Transformer.from_crs(epsg, 4326, always_xy=True)
    return [
        shapely.transform(
            shapely.segmentize(shapely.box(*b), 20.0), lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1]))
        )
        for b in boxes
    ]


@pytest.fixture
def north(tmp_path: Path) -> tuple[Path, Path]:
    """A 64 px UTM 18N scene with a nodata block, and a 2-feature EPSG:4326 AOI (one MultiPolygon) crossing tile
    edges."""
    scene = utm_scene(tmp_path / "north.tif", size=64, nodata_block=(slice(40, 64), slice(40, 64)))
    a, b1, b2 = lonlat_boxes(
        32618,
        [(440035, 4169700, 440290, 4169965), (440330, 4169420, 440610, 4169590), (440500, 4169800, 440620, 4169900)],
    )
    aoi = write_aoi(
        tmp_path / "aoi.geojson",
        [a, shapely.MultiPolygon([b1, b2])],
        "EPSG:4326",
        ids=["field-a", "farm-b"],
        names=["A", "B"],
    )
    return scene, aoi


def outputs(d: Path) -> list[str]:
    return sorted(
        p.name
        for p in d.iterdir()
        if p.suffix in (".geojson", ".png") and p.name != "aoi.geojson" or p.name.startswith(".")
    )


def test_end_to_end_utm_north(tmp_path: Path, north: tuple[Path, Path], tiny_checkpoint: Path) -> None:
    scene, aoi = north
    out_dir = tmp_path / "out"
    r = plan(
        aoi,
        [scene],
        model=tiny_checkpoint,
        device="cpu",
        out=out_dir / "order.geojson",
        patches_out=out_dir / "patches.geojson",
        quicklook=out_dir / "order.png",
        vendor="clip-50cm",
    )
    assert sorted(p.name for p in out_dir.iterdir()) == [
        "order.geojson",
        "order.png",
        "patches.geojson",
    ]  # no staging left
    fc = json.loads((out_dir / "order.geojson").read_text())
    assert fc["type"] == "FeatureCollection"
    s = r.summary
    assert s["planning_crs"] == "EPSG:32618" and s["tile_m"] == 80 and s["patch_m"] == 20
    assert s["tiles"]["skipped_nodata"] > 0 and s["tiles"]["outside_scenes"] == 0
    assert s["tiles"]["planned"] + s["tiles"]["skipped_nodata"] == s["tiles"]["total"]
    assert s["patches_total"] == len(r.table) and s["patches_selected"] == int(r.selected.sum())
    assert [f["id"] for f in s["aoi_features"]] == ["field-a", "farm-b"]
    assert s["aoi_km2"] == pytest.approx(0.255 * 0.265 + 0.28 * 0.17 + 0.12 * 0.1, rel=1e-3)
    assert s["savings_usd"] == pytest.approx(s["baseline_cost_usd"] - s["plan_cost_usd"], abs=0.011)
    assert s["model"]["policy_stage"] == "ft1" and s["model"]["card"]["tile_ground_m"] == 80
    assert s["scenes"][0]["id"] == "north" and not s["scenes"][0]["resampled"]
    assert s["parameters"]["vendor"] == "clip-50cm" and s["zoomplan_version"]
    # the request as asked (the threshold left to its default), without how it ran or where it wrote
    assert s["request"]["vendor"] == "clip-50cm" and s["request"]["threshold"] is None
    assert s["request"]["aoi"] == str(aoi) and s["request"]["scenes"] == [str(scene)] and "device" not in s["request"]
    assert fc["summary"]["request"] == s["request"]
    assert set(r.table.aoi_index.tolist()) == {0, 1}
    pfc = json.loads((out_dir / "patches.geojson").read_text())
    assert len(pfc["features"]) == len(r.table)
    assert list(r.timings) == ["inputs", "inference", "orders", "outputs"] and all(t > 0 for t in r.timings.values())
    # stable: a second run (with another torch thread count) gives the same patches and probabilities
    r2 = plan(aoi, [scene], model=tiny_checkpoint, device="cpu", vendor="clip-50cm", threads=2)
    assert r2.table.patch_ids() == r.table.patch_ids()
    np.testing.assert_array_equal(r2.table.prob, r.table.prob)


def test_threshold_extremes_and_budget_end_to_end(north: tuple[Path, Path], tiny_checkpoint: Path) -> None:
    scene, aoi = north
    everything = plan(aoi, [scene], model=tiny_checkpoint, device="cpu", vendor="clip-50cm", threshold=0.0)
    assert everything.selected.all()
    assert everything.summary["plan_cost_usd"] == pytest.approx(everything.summary["baseline_cost_usd"], abs=1e-9)
    nothing = plan(aoi, [scene], model=tiny_checkpoint, device="cpu", vendor="clip-50cm", threshold=1.01)
    assert not nothing.selected.any() and nothing.summary["plan_cost_usd"] == 0
    budget = 0.5 * everything.summary["baseline_cost_usd"]
    capped = plan(aoi, [scene], model=tiny_checkpoint, device="cpu", vendor="clip-50cm", budget_usd=budget)
    assert capped.summary["parameters"]["threshold"] == 0.0  # a budget ranks every AOI patch
    assert 0 < capped.summary["plan_cost_usd"] <= budget


def test_utm_south_scene(tmp_path: Path, tiny_checkpoint: Path) -> None:
    scene = utm_scene(tmp_path / "south.tif", epsg=32733, x0=500000.0, y0=6200000.0, size=48)
    (a,) = lonlat_boxes(32733, [(500050, 6199650, 500430, 6199950)])
    aoi = write_aoi(tmp_path / "aoi.gpkg", [a], "EPSG:4326")
    r = plan(aoi, [scene], model=tiny_checkpoint, device="cpu")
    assert r.summary["planning_crs"] == "EPSG:32733" and r.summary["tiles"]["planned"] > 0
    assert r.table.crs.to_epsg() == 32733


def test_geographic_scene_plans_in_utm_with_warning(
    tmp_path: Path, tiny_checkpoint: Path, caplog: pytest.LogCaptureFixture
) -> None:
    scene = write_scene(tmp_path / "ll.tif", "EPSG:4326", from_origin(-75.62, 37.71, 0.0001, 0.0001), 80, 80)
    aoi = write_aoi(tmp_path / "aoi.geojson", [shapely.box(-75.618, 37.703, -75.613, 37.708)], "EPSG:4326")
    with caplog.at_level(logging.WARNING):
        r = plan(aoi, [scene], model=tiny_checkpoint, device="cpu")
    assert r.summary["planning_crs"] == "EPSG:32618" and "geographic" in r.summary["planning_crs_reason"]
    assert r.summary["scenes"][0]["resampled"] is True
    assert "resampling (bilinear) from EPSG:4326" in caplog.text and "is not the planning CRS EPSG:32618" in caplog.text


def test_aoi_partly_outside_the_scene(tmp_path: Path, tiny_checkpoint: Path, caplog: pytest.LogCaptureFixture) -> None:
    scene = utm_scene(tmp_path / "s.tif", size=32)  # 320 m x 320 m
    (a,) = lonlat_boxes(32618, [(440100, 4169800, 440500, 4169950)])  # 400 m wide, 180 m outside
    aoi = write_aoi(tmp_path / "aoi.geojson", [a], "EPSG:4326")
    with caplog.at_level(logging.WARNING):
        r = plan(aoi, [scene], model=tiny_checkpoint, device="cpu")
    assert r.summary["aoi_covered_fraction"] == pytest.approx(220 / 400, abs=0.01)
    assert r.summary["tiles"]["outside_scenes"] > 0
    assert "outside the scenes" in caplog.text
    assert r.table.bounds()[:, 0].min() >= 440080 and r.table.bounds()[:, 2].max() <= 440320 + 1e-6


def test_out_dash_writes_only_geojson_to_stdout(
    north: tuple[Path, Path], tiny_checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scene, aoi = north
    plan(aoi, [scene], model=tiny_checkpoint, device="cpu", out="-")
    fc = json.loads(capsys.readouterr().out)
    assert fc["type"] == "FeatureCollection"


def _bad_cases(tmp_path: Path, scene: Path, aoi: Path) -> dict[str, tuple[dict, str]]:
    far = write_aoi(tmp_path / "far.geojson", [shapely.box(2.0, 48.0, 2.01, 48.01)], "EPSG:4326")
    nocrs = write_aoi(tmp_path / "nocrs.shp", [shapely.box(440100, 4169700, 440300, 4169900)], None)
    empty = tmp_path / "empty.geojson"
    empty.write_text(
        '{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, "geometry": null}]}'
    )
    twoband = utm_scene(tmp_path / "twoband.tif", size=32, count=2, descriptions=("B08", "B11"))
    full = utm_scene(tmp_path / "big.tif", size=256, tiled=True)
    cut = tmp_path / "cut.tif"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    allnodata = utm_scene(tmp_path / "blank.tif", size=64, nodata_block=(slice(None), slice(None)))
    return {
        "outside": (dict(aoi_path=far), "outside every scene"),
        "aoi_no_crs": (dict(aoi_path=nocrs), "has no CRS"),
        "empty_geometry": (dict(aoi_path=empty), "empty geometry"),
        "no_bands": (dict(scenes=[twoband]), "no band for red"),
        "truncated": (dict(scenes=[cut]), "truncated or corrupt|not a raster"),
        "all_nodata": (dict(scenes=[allnodata]), "no AOI tile has valid data"),
        "unknown_vendor": (dict(vendor="acme"), "unknown vendor 'acme'"),
        "bad_threshold": (dict(threshold=-0.5), "is negative"),
        "bad_threads": (dict(threads=0), "--threads must be a positive integer"),
        "bad_quicklook": (dict(quicklook=tmp_path / "out" / "q.jpg"), "must end in .png"),
        "no_model": (dict(model=tmp_path / "none.pt"), "not found"),
        "missing_scene": (dict(scenes=[tmp_path / "nope.tif"]), "not found"),
    }


CASES = [
    "outside",
    "aoi_no_crs",
    "empty_geometry",
    "no_bands",
    "truncated",
    "all_nodata",
    "unknown_vendor",
    "bad_threshold",
    "bad_threads",
    "bad_quicklook",
    "no_model",
    "missing_scene",
]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_one_line_error_and_no_output(
    tmp_path: Path, north: tuple[Path, Path], tiny_checkpoint: Path, case: str
) -> None:
    scene, aoi = north
    kw, pattern = _bad_cases(tmp_path, scene, aoi)[case]
    args = dict(
        aoi_path=aoi,
        scenes=[scene],
        model=tiny_checkpoint,
        device="cpu",
        out=tmp_path / "out" / "order.geojson",
        patches_out=tmp_path / "out" / "patches.geojson",
        quicklook=tmp_path / "out" / "order.png",
    )
    args.update(kw)
    with pytest.raises(ZoomplanError, match=pattern) as ei:
        plan(args.pop("aoi_path"), args.pop("scenes"), **args)
    assert "\n" not in str(ei.value)
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_failure_while_writing_leaves_nothing(
    tmp_path: Path, north: tuple[Path, Path], tiny_checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from zoomplan.plan.export import quicklook

    def boom(*a: object, **k: object) -> None:
        raise RuntimeError("renderer crashed")

    monkeypatch.setattr(quicklook, "render", boom)
    scene, aoi = north
    out = tmp_path / "out"
    out.mkdir()
    (out / "order.geojson").write_text("previous")
    with pytest.raises(RuntimeError, match="renderer crashed"):
        plan(
            aoi,
            [scene],
            model=tiny_checkpoint,
            device="cpu",
            out=out / "order.geojson",
            patches_out=out / "p.geojson",
            quicklook=out / "q.png",
        )
    # no output, staged or final; only the hidden inference journal a --resume needs
    assert sorted(p.name for p in out.iterdir()) == [".order.geojson.zoomplan-journal", "order.geojson"]
    assert (out / "order.geojson").read_text() == "previous"
    monkeypatch.undo()
    r = plan(
        aoi,
        [scene],
        model=tiny_checkpoint,
        device="cpu",
        out=out / "order.geojson",
        patches_out=out / "p.geojson",
        quicklook=out / "q.png",
        resume=True,
    )
    assert r.blocks_resumed == 1  # the inference was not done again
    assert sorted(p.name for p in out.iterdir()) == [
        "order.geojson",
        "p.geojson",
        "q.png",
    ]  # journal removed once written


def test_bundled_example(tmp_path: Path, tiny_checkpoint: Path) -> None:
    """The README quick start, with the test checkpoint in place of the shipped model."""
    r = plan(EXAMPLE_AOI, [EXAMPLE_SCENE], model=tiny_checkpoint, device="cpu", out=tmp_path / "order.geojson")
    s = r.summary
    assert s["planning_crs"] == "EPSG:32618" and not s["scenes"][0]["resampled"]
    assert [f["id"] for f in s["aoi_features"]] == ["accomac-town", "folly-creek"]
    assert s["tiles"]["planned"] == s["tiles"]["total"] > 500
    assert 3.5 < s["aoi_km2"] < 4.5


def test_example_crop_is_the_shared_scene() -> None:
    """The committed crop is an unmodified window of the shared scene (provenance check)."""
    full = shared_data("sentinel2/s2_l1c_18SVG_20160112_rgbn_10m.tif")
    with rasterio.open(full) as src, rasterio.open(EXAMPLE_SCENE) as crop:
        win = src.window(*crop.bounds)
        assert (int(round(win.col_off)), int(round(win.row_off))) == (491, 402)
        np.testing.assert_array_equal(src.read(window=win), crop.read())
        assert crop.descriptions == src.descriptions and crop.crs == src.crs


@pytest.mark.shared_data
def test_real_sentinel2_scene(tmp_path: Path, tiny_checkpoint: Path) -> None:
    """The full 18SVG scene with the example AOI: read window by window, no resampling."""
    full = shared_data("sentinel2/s2_l1c_18SVG_20160112_rgbn_10m.tif")
    r = plan(EXAMPLE_AOI, [full], model=tiny_checkpoint, device="cpu", out=tmp_path / "order.geojson", block_tiles=16)
    s = r.summary
    assert s["planning_crs"] == "EPSG:32618" and s["scenes"][0]["bands"] == ["red (B04)", "green (B03)", "blue (B02)"]
    assert s["scenes"][0]["resampled"] is False and s["tiles"]["skipped_nodata"] == 0
    ref = plan(EXAMPLE_AOI, [EXAMPLE_SCENE], model=tiny_checkpoint, device="cpu")
    assert r.table.patch_ids() == ref.table.patch_ids()
    np.testing.assert_allclose(r.table.prob, ref.table.prob, atol=1e-6)
