"""audit(): per-class figures from hand-computed numbers (aggregate), then end to end with the tiny
checkpoint on a generated UTM 18N scene, checked against plan()'s own patch table and selection over the
same labels (vector in EPSG:4326; raster in UTM and in EPSG:4326)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
import torch
from pyproj import CRS
from rasterio.transform import from_origin

from tests.plan.audit_synth import VALUES, expected, raster_labels, scene, vector_labels
from tests.plan.tables import random_table, vendor
from zoomplan.errors import ZoomplanError
from zoomplan.plan.audit import audit
from zoomplan.plan.audit import labels as audit_labels
from zoomplan.plan.audit import outputs as audit_io
from zoomplan.plan.audit.labels import parse_classes, read_labels
from zoomplan.plan.audit.rows import TOTAL, aggregate, selected_mask
from zoomplan.plan.pipeline import plan
from zoomplan.plan.selection.select import select_patches


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def test_aggregate_by_hand() -> None:
    cls = ["a", "a", "b", None, "b", "b"]
    probs = [0.9, 0.2, 0.5, 0.99, 0.7, 0.51]
    lr = [0, 1, 1, 2, 2, 1]
    rows = aggregate(cls, probs, 0.5, 0.0004, lr_class=lr, lr_names=("x", "y", "z"), classes=["b", "a", "c"])
    assert [r.label for r in rows] == ["b", "a", "c", TOTAL]
    b, a, c, t = rows
    assert (b.patches, b.selected) == (3, 2)  # 0.5 is not above 0.5
    assert b.area_km2 == pytest.approx(0.0012) and b.fraction_selected == pytest.approx(2 / 3)
    assert b.mean_probability == pytest.approx((0.5 + 0.7 + 0.51) / 3)
    assert (b.top_lr_class, b.top_lr_share) == ("y", pytest.approx(2 / 3))
    assert (a.patches, a.selected, a.fraction_selected) == (2, 1, 0.5)
    assert a.mean_probability == pytest.approx(0.55) and a.area_km2 == pytest.approx(0.0008)
    assert (a.top_lr_class, a.top_lr_share) == ("x", 0.5)  # a tie between x and y goes to the lower index
    assert (c.patches, c.selected, c.area_km2, c.top_lr_class) == (0, 0, 0.0, None)
    assert math.isnan(c.fraction_selected) and math.isnan(c.mean_probability)
    assert c.to_dict()["fraction_selected"] is None
    assert (t.patches, t.selected) == (5, 3)  # the unlabelled 0.99 is not counted
    assert t.area_km2 == pytest.approx(0.002) and t.fraction_selected == pytest.approx(0.6)
    assert t.mean_probability == pytest.approx(2.81 / 5)
    assert (t.top_lr_class, t.top_lr_share) == ("y", pytest.approx(0.6))
    assert [r.selected for r in aggregate(cls, probs, 0.0, 0.0004)] == [2, 3, 5]
    assert [r.selected for r in aggregate(cls, probs, 1.0, 0.0004)] == [0, 0, 0]
    assert [r.label for r in aggregate(cls, probs, 0.5, 0.0004)] == ["a", "b", TOTAL]


@pytest.mark.parametrize("threshold", [0.0, 0.25, 0.5, 0.75, 1.0, 1.5])
def test_threshold_rule_is_the_planners(threshold: float) -> None:
    table = random_table(shapely.box(0, 0, 2000, 2000), seed=3)
    p = table.prob.copy()
    p[:5] = [0.0, 0.25, 0.5, 1.0, np.nan]  # values on the thresholds, and NaN
    table = type(table)(**{**table.__dict__, "prob": p})
    assert np.array_equal(selected_mask(p, threshold), select_patches(table, [], vendor(), threshold=threshold))


def test_parse_classes() -> None:
    assert parse_classes("1=water, 2=land,") == {1: "water", 2: "land"}
    for bad in ("water", "1=", "x=water", "1=a,1=b", ","):
        with pytest.raises(ZoomplanError, match="--classes"):
            parse_classes(bad)


def test_features_without_a_class_are_left_out(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = vector_labels(tmp_path / "labels.gpkg", extra=[(shapely.box(440100, 4169600, 440200, 4169700), None)])
    labels = read_labels(path, "landuse")
    assert labels.polygon_class == ("town", "water") and len(labels.aoi) == 2 and labels.classes == ("town", "water")
    assert "1 of 3 feature(s) have no 'landuse' value" in caplog.text


def _check(result, exp: dict, table, selected: np.ndarray) -> None:
    """The audit's rows equal the figures computed from plan()'s table and selection."""
    for name, e in exp.items():
        r = result.row(name)
        assert (r.patches, r.selected) == (e["patches"], e["selected"]), name
        assert r.mean_probability == pytest.approx(e["mean"], rel=1e-9, abs=1e-12)
        assert r.area_km2 == pytest.approx(e["patches"] * 0.0004) and r.top_lr_class == e["top"]
    t = result.row(TOTAL)
    lab = exp["town"]["mask"] | exp["water"]["mask"]
    assert (t.patches, t.selected) == (int(lab.sum()), int((selected & lab).sum()))
    # the edge patches are planned, not counted
    assert result.parameters["patches_unlabelled"] == len(table) - int(lab.sum()) > 0


def test_vector_labels_match_the_plan(tmp_path: Path, tiny_checkpoint: Path) -> None:
    sc, labels = scene(tmp_path), vector_labels(tmp_path / "labels.gpkg")
    base = plan(labels, [sc], model=tiny_checkpoint, device="cpu", threshold=0.0)
    thr = float(np.median(base.table.prob))  # a threshold that splits the patches
    ref = plan(labels, [sc], model=tiny_checkpoint, device="cpu", threshold=thr)
    exp = expected(ref.table, ref.selected)
    assert 0 < exp["town"]["selected"] + exp["water"]["selected"] < exp["town"]["patches"] + exp["water"]["patches"]

    res = audit([sc], labels, field="landuse", model=tiny_checkpoint, device="cpu", threshold=thr)
    assert [r.label for r in res.rows] == ["town", "water", TOTAL]
    assert np.array_equal(res.table.row, ref.table.row) and np.array_equal(res.table.col, ref.table.col)
    assert np.array_equal(res.table.prob, ref.table.prob) and np.array_equal(res.selected, ref.selected)
    _check(res, exp, ref.table, ref.selected)
    p = res.parameters
    assert p["labels_kind"] == "vector" and p["field"] == "landuse" and p["threshold"] == thr
    assert p["planning_crs"] == "EPSG:32618"
    assert p["model"]["policy_stage"] == "ft1" and len(p["model"]["sha256"]) == 64 and p["scenes"] == [str(sc)]
    assert res.written == () and not any(tmp_path.glob("audit.*"))

    for t, every in ((0.0, True), (1.5, False)):
        rows = audit([sc], labels, field="landuse", model=tiny_checkpoint, device="cpu", threshold=t).rows
        assert all(r.selected == (r.patches if every else 0) for r in rows), t


@pytest.mark.parametrize("crs", ["EPSG:32618", "EPSG:4326"])
def test_raster_labels_give_the_vector_numbers(tmp_path: Path, tiny_checkpoint: Path, crs: str) -> None:
    sc, labels = scene(tmp_path), vector_labels(tmp_path / "labels.gpkg")
    ref = plan(labels, [sc], model=tiny_checkpoint, device="cpu", threshold=0.0)
    thr = float(np.median(ref.table.prob))
    exp = expected(ref.table, ref.table.prob > thr)
    vec = audit([sc], labels, field="landuse", model=tiny_checkpoint, device="cpu", threshold=thr)
    ras_path = raster_labels(tmp_path / "labels.tif", crs)
    ras = audit([sc], ras_path, classes="1=town,2=water", model=tiny_checkpoint, device="cpu", threshold=thr)
    assert [r.label for r in ras.rows] == ["town", "water", TOTAL]
    assert [r.to_dict() for r in ras.rows] == [r.to_dict() for r in vec.rows]
    _check(ras, exp, ras.table, ras.selected)
    assert ras.parameters["labels_kind"] == "raster" and ras.parameters["classes"] == {"1": "town", "2": "water"}
    if crs == "EPSG:32618":  # the footprint of the valid pixels is exactly the two halves: the same patches are planned
        assert np.array_equal(ras.table.row, vec.table.row) and np.array_equal(ras.table.col, vec.table.col)
    unnamed = audit([sc], ras_path, model=tiny_checkpoint, device="cpu", threshold=thr)  # class names are the values
    assert [r.label for r in unnamed.rows] == [str(v) for v in VALUES] + [TOTAL]
    assert [r.patches for r in unnamed.rows] == [r.patches for r in ras.rows]


def test_outputs_are_written_together_or_not_at_all(
    tmp_path: Path, tiny_checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sc, labels = scene(tmp_path), vector_labels(tmp_path / "labels.gpkg")
    out = tmp_path / "out"
    res = audit([sc], labels, field="landuse", model=tiny_checkpoint, device="cpu", out_dir=out, png=True)
    assert sorted(p.name for p in out.iterdir()) == ["audit.json", "audit.md", "audit.png"]
    assert json.loads((out / "audit.json").read_text()) == json.loads(json.dumps(res.to_dict()))

    def broken(*a: object, **k: object) -> bytes:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(audit_io, "png_bytes", broken)
    out2 = tmp_path / "out2"
    with pytest.raises(RuntimeError, match="disk on fire"):
        audit([sc], labels, field="landuse", model=tiny_checkpoint, device="cpu", out_dir=out2, png=True)
    assert not out2.exists()


def test_raster_footprint_and_sampling_work_in_pieces(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Footprint pooled onto few cells and read in strips, and sampling read in small windows: the footprint
    still covers every valid pixel, and every sampled value is the pixel's."""
    rng = np.random.default_rng(1)
    data = np.zeros((70, 100), np.int16)
    data[rng.random(data.shape) < 0.02] = 7
    data[10:20, 30:60] = 3
    path = tmp_path / "sparse.tif"
    t = from_origin(440000, 4170000, 4, 4)
    with rasterio.open(
        path, "w", driver="GTiff", width=100, height=70, count=1, dtype="int16", crs="EPSG:32618", transform=t, nodata=0
    ) as dst:
        dst.write(data, 1)
    monkeypatch.setattr(audit_labels, "FOOTPRINT_CELLS", 16)  # 7 px cells
    monkeypatch.setattr(audit_labels, "_STRIP_PIXELS", 7 * 7 * 15 * 2)  # strips of 14 rows
    monkeypatch.setattr(audit_labels, "SAMPLE_BLOCK", 16)
    labels = read_labels(path, value_names={3: "roof"})
    fp = labels.aoi.geoms[0]
    rr, cc = np.nonzero(data)
    xs, ys = 440000 + 4 * (cc + 0.5), 4170000 - 4 * (rr + 0.5)
    assert shapely.contains_xy(fp, xs, ys).all() and fp.area < 0.9 * 400 * 280
    qr, qc = rng.integers(0, 70, 500), rng.integers(0, 100, 500)
    qx, qy = 440000 + 4 * (qc + rng.random(500)), 4170000 - 4 * (qr + rng.random(500))
    values, ok = audit_labels.sample_raster(path, np.r_[qx, 439990.0], np.r_[qy, 4169990.0], CRS.from_epsg(32618), 0)
    assert np.array_equal(values[:-1], data[qr, qc]) and np.array_equal(ok[:-1], data[qr, qc] != 0) and not ok[-1]
    names, order = labels.classify(np.r_[qx, 439990.0], np.r_[qy, 4169990.0], CRS.from_epsg(32618), ())
    assert order == ("roof", "7") and set(names[:-1][data[qr, qc] == 3]) == {"roof"} and names[-1] is None


def test_a_point_takes_the_first_polygon_covering_it() -> None:
    a, b = shapely.box(0, 0, 10, 10), shapely.box(5, 0, 15, 10)  # overlapping in 5 <= x <= 10
    x, y = np.array([2.0, 7.0, 12.0, 15.0, 20.0]), np.full(5, 5.0)
    got = audit_labels.classify_points(x, y, [a, b], ["a", "b"])
    assert got.tolist() == ["a", "a", "b", "b", None]  # the overlap to the first; the edge x = 15 included
    assert audit_labels.classify_points(x, y, [b, a], ["b", "a"]).tolist() == ["a", "b", "b", "b", None]
