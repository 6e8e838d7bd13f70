"""fMoW-rgb reader: pinned labels, JSON quirks, context-crop arithmetic, index cache, errors."""

from __future__ import annotations

import json
import logging
import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from zoomplan.data import fmow
from zoomplan.data.fmow import FMOW_CLASSES, FmowDataset, context_box, context_multiplier
from zoomplan.data.synthetic import make_fmow_tree
from zoomplan.errors import DatasetError

CLASSES = ("airport", "dam", "park")  # make_fmow_tree's defaults
N_TRAIN = 3 * 3 * 2  # classes x locations x views: one usable box per rgb JSON


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_fmow_tree(tmp_path / "fmow", size=48, seed=0)


def _no_scan(*args, **kwargs):
    raise AssertionError("scan_split was called: the index cache was not reused")


# ------------------------------------------------------------------------------ pinned labels


def test_classes_are_the_62_pinned_alphabetical_names() -> None:
    assert len(FMOW_CLASSES) == 62 == len(set(FMOW_CLASSES))
    assert list(FMOW_CLASSES) == sorted(FMOW_CLASSES)
    spots = {
        0: "airport",
        1: "airport_hangar",
        12: "dam",
        30: "multi-unit_residential",
        34: "park",
        35: "parking_lot_or_garage",
        47: "single-unit_residential",
        61: "zoo",
    }
    assert {i: FMOW_CLASSES[i] for i in spots} == spots
    assert "false_detection" not in FMOW_CLASSES


# --------------------------------------------------------------------------- context crop math


@pytest.mark.parametrize(
    ("box_px", "image_px", "mult"),
    [
        (60, 100, Fraction(3, 20)),
        (50, 100, Fraction(3, 20)),
        (49, 100, Fraction(1, 5)),
        (40, 100, Fraction(1, 5)),
        (39, 100, Fraction(3, 10)),
        (30, 100, Fraction(3, 10)),
        (20, 100, Fraction(1, 2)),
        (19, 100, Fraction(1)),
        (10, 100, Fraction(1)),
        (9, 100, Fraction(2)),
        (1, 1000, Fraction(2)),
    ],
)
def test_context_multiplier_thresholds(box_px: int, image_px: int, mult: Fraction) -> None:
    assert context_multiplier(box_px, image_px) == mult


@pytest.mark.parametrize(
    ("box", "img_wh", "expected"),
    [
        # ratio 0.25 -> 0.5: buffer floor(50 * 0.5 / 2) = 12 each side
        ((100, 100, 50, 50), (200, 200), (88, 88, 162, 162)),
        # ratio 0.05 -> 2: buffer 10; x0 = 10 - 10 = 0, y0 = 20 - 10 = 10
        ((10, 20, 10, 10), (200, 200), (0, 10, 30, 40)),
        # w: 0.6 -> 0.15, buffer floor(9.0) = 9, x0 clipped to 0; h: 0.3 -> 0.3, buffer floor(9.0) = 9
        ((0, 0, 120, 60), (200, 200), (0, 0, 129, 69)),
        # non-square: w 45/1000 -> 2, buffer 45; h 130/400 = 0.325 -> 0.3, buffer floor(19.5) = 19
        ((300, 50, 45, 130), (1000, 400), (255, 31, 390, 199)),
        # ratio exactly 0.1 -> 1: buffer 10, clipped at the far edges
        ((180, 180, 20, 20), (200, 200), (170, 170, 200, 200)),
    ],
)
def test_context_box_by_hand(box, img_wh, expected) -> None:
    assert context_box(box, *img_wh) == expected


def test_context_box_outside_the_image_is_empty() -> None:
    x0, y0, x1, y1 = context_box((250, 10, 20, 20), 200, 200)
    assert x0 >= x1 and y0 < y1


# ------------------------------------------------------------------------------- reading + quirks


def test_reads_the_published_layout_and_its_quirks(tree: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="zoomplan.data.fmow"):
        ds = FmowDataset(tree, "train", size=32)
    assert ds.class_names == FMOW_CLASSES
    assert len(ds) == N_TRAIN
    names = [Path(s.image_path).name for s in ds.samples]
    # labels follow the pinned order, from the category folder the sample lives in
    for s in ds.samples:
        folder_cat = Path(s.image_path).parents[1].name
        assert s.label == FMOW_CLASSES.index(folder_cat) and s.category == folder_cat
    assert sorted({s.label for s in ds.samples}) == [0, 12, 34]
    # bounding_boxes given as a single dict is read
    assert "airport_0_0_rgb.jpg" in names
    # the 2-px-wide box is skipped, its JSON's other box kept
    assert ds.skipped["tiny_boxes"] == 1
    assert all(s.box[2] > 2 and s.box[3] > 2 for s in ds.samples)
    assert names.count("park_2_1_rgb.jpg") == 1
    # the empty-box JSON is skipped, counted and named in a warning
    assert ds.skipped["json_without_boxes"] == 1
    assert "dam_0_2_rgb.jpg" not in names
    assert any("dam_0_2_rgb.json" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    # msrgb siblings are ignored
    assert not any("msrgb" in n for n in names)
    # visible is a string in the JSON, parsed to bool and kept (not filtered)
    assert {s.visible for s in ds.samples} == {True, False}
    assert all(isinstance(s.gsd, float) and s.gsd > 0 for s in ds.samples)
    s0 = ds.samples[0]
    meta = json.loads(Path(s0.json_path).read_text())
    bbs = meta["bounding_boxes"] if isinstance(meta["bounding_boxes"], list) else [meta["bounding_boxes"]]
    assert list(s0.box) == bbs[0]["box"] and s0.gsd == meta["gsd"]

    visible = FmowDataset(tree, "train", size=32, visible_only=True)
    assert 0 < len(visible) < len(ds) and all(s.visible for s in visible.samples)


def test_item_is_the_resized_context_crop(tree: Path) -> None:
    ds = FmowDataset(tree, "val", size=40)
    image, label = ds[3]
    assert image.dtype == torch.uint8 and image.shape == (3, 40, 40)
    assert isinstance(label, int) and label == ds.samples[3].label
    s = ds.samples[3]
    with Image.open(s.image_path) as im:
        rgb = im.convert("RGB")
    crop = rgb.crop(context_box(s.box, rgb.width, rgb.height)).resize((40, 40), Image.Resampling.BILINEAR)
    assert torch.equal(image, torch.from_numpy(np.asarray(crop).copy()).permute(2, 0, 1))


def test_one_sample_per_usable_box_and_category_fallback(tmp_path: Path) -> None:
    loc = tmp_path / "train" / "port" / "port_7"
    loc.mkdir(parents=True)
    Image.new("RGB", (100, 80), (90, 90, 90)).save(loc / "port_7_0_rgb.jpg")
    boxes = [
        {"box": [10, 10, 30, 20], "category": "port", "ID": 1, "visible": "True"},
        {"box": [50, 30, 20, 20], "ID": 2, "visible": "False"},  # no category: the folder's
        {"box": [5, 5, 20, 20], "category": "false_detection", "ID": 3},  # not one of the 62
        {"box": [60, 10, 30, 2], "category": "port", "ID": 4},  # h <= 2
    ]
    (loc / "port_7_0_rgb.json").write_text(
        json.dumps({"gsd": 0.5, "img_width": 100, "img_height": 80, "bounding_boxes": boxes})
    )
    ds = FmowDataset(tmp_path, "train", size=16)
    assert [s.box for s in ds.samples] == [(10, 10, 30, 20), (50, 30, 20, 20)]
    assert [s.label for s in ds.samples] == [FMOW_CLASSES.index("port")] * 2
    assert [s.visible for s in ds.samples] == [True, False]
    assert ds.skipped["unknown_category"] == 1 and ds.skipped["tiny_boxes"] == 1


# ---------------------------------------------------------------------------------- index cache


def test_index_cache_is_written_then_reused(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = FmowDataset(tree, "train", size=32)
    cache = tree / ".zoomplan-index-train.json"
    assert first.index_path == cache and cache.is_file()
    doc = json.loads(cache.read_text())
    assert doc["split"] == "train" and len(doc["rows"]) == N_TRAIN and doc["fingerprint"]

    monkeypatch.setattr(fmow, "scan_split", _no_scan)
    second = FmowDataset(tree, "train", size=32)
    assert second.samples == first.samples and second.counts == first.counts

    # a changed top-level listing (a new category) invalidates the cache
    zoo = tree / "train" / "zoo" / "zoo_0"
    zoo.mkdir(parents=True)
    Image.new("RGB", (48, 48)).save(zoo / "zoo_0_0_rgb.jpg")
    (zoo / "zoo_0_0_rgb.json").write_text(
        json.dumps({"img_width": 48, "img_height": 48, "bounding_boxes": [{"box": [5, 5, 20, 20], "category": "zoo"}]})
    )
    with pytest.raises(AssertionError, match="scan_split was called"):
        FmowDataset(tree, "train", size=32)
    monkeypatch.undo()
    third = FmowDataset(tree, "train", size=32)
    assert len(third) == N_TRAIN + 1 and third.samples[-1].label == 61


def test_index_cache_falls_back_to_user_cache_dir(tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(fmow, "_dir_writable", lambda p: Path(p) != tree)
    ds = FmowDataset(tree, "val", size=32)
    assert ds.index_path is not None and ds.index_path.parent == tmp_path / "xdg" / "zoomplan"
    assert ds.index_path.is_file() and not (tree / ".zoomplan-index-val.json").exists()
    monkeypatch.setattr(fmow, "scan_split", _no_scan)
    assert FmowDataset(tree, "val", size=32).samples == ds.samples


def test_explicit_and_corrupt_index_cache(tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "idx" / "train.json"
    ds = FmowDataset(tree, "train", index_cache=path)
    assert ds.index_path == path and path.is_file() and not (tree / ".zoomplan-index-train.json").exists()
    path.write_text("{ not json")
    rebuilt = FmowDataset(tree, "train", index_cache=path)  # rebuilt, not a crash
    assert rebuilt.samples == ds.samples and json.loads(path.read_text())["rows"]


# ------------------------------------------------------------------------------------- errors


def test_test_split_has_no_labels(tree: Path) -> None:
    with pytest.raises(DatasetError, match="no labels.*--split val"):
        FmowDataset(tree, "test")
    ds = FmowDataset(tree, "test", size=32, allow_unlabelled=True)
    assert len(ds) == 3 * 2 and set(ds.labels) == {-1} and {s.category for s in ds.samples} == {""}
    assert all(
        Path(s.image_path).parent.name.isdigit() and len(Path(s.image_path).parent.name) == 7 for s in ds.samples
    )
    assert ds[0][1] == -1


def test_missing_root_and_split(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(DatasetError, match=re.escape(str(missing))):
        FmowDataset(missing)
    root = make_fmow_tree(
        tmp_path / "only_train", splits=("train",), quirks=False, locations_per_class=1, views=1, size=32
    )
    with pytest.raises(DatasetError, match=re.escape(str(root / "val"))):
        FmowDataset(root, "val")
    with pytest.raises(DatasetError, match="unknown fMoW split"):
        FmowDataset(root, "seq")


def test_split_without_usable_samples(tmp_path: Path) -> None:
    loc = tmp_path / "train" / "dam" / "dam_0"
    loc.mkdir(parents=True)
    Image.new("RGB", (32, 32)).save(loc / "dam_0_0_rgb.jpg")
    (loc / "dam_0_0_rgb.json").write_text(json.dumps({"bounding_boxes": []}))
    with pytest.raises(DatasetError, match=re.escape(f"{tmp_path / 'train'} has no usable samples")):
        FmowDataset(tmp_path, "train")


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_image_names_the_file(tree: Path, damage: str) -> None:
    ds = FmowDataset(tree, "train", size=32)
    bad = Path(ds.samples[4].image_path)
    data = bad.read_bytes()
    bad.write_bytes(b"this is not a jpeg" if damage == "garbage" else data[: len(data) // 3])
    with pytest.raises(DatasetError, match=re.escape(str(bad))):
        ds[4]
    assert ds[5][0].shape == (3, 32, 32)  # the others still read
