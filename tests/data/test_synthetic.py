"""Generated test data: published fMoW layout with its quirks; UC Merced-like folders with a
learnable, patch-localised class signal; both seeded."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import shapely.wkt
from PIL import Image

from zoomplan.data.synthetic import _class_colour, _split_counts, class_patches, make_fmow_tree, make_folder_dataset

FIELDS = (
    "gsd",
    "utm",
    "country_code",
    "cloud_cover",
    "timestamp",
    "img_width",
    "img_height",
    "raw_location",
    "bounding_boxes",
)


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _boxes(meta: dict) -> list[dict]:
    bbs = meta["bounding_boxes"]
    return [bbs] if isinstance(bbs, dict) else bbs


# ------------------------------------------------------------------------------------- fMoW


def test_fmow_tree_layout_fields_and_quirks(tmp_path: Path) -> None:
    root = make_fmow_tree(tmp_path, size=48)
    rgb = sorted((root / "train").glob("*/*/*_rgb.json"))
    assert len(rgb) == 3 * 3 * 2 + 1  # + the empty-box extra view
    for path in rgb + sorted((root / "val").glob("*/*/*_rgb.json")):
        cat, loc = path.parents[1].name, path.parent.name
        assert loc.startswith(f"{cat}_") and path.name.startswith(f"{loc}_")
        meta = json.loads(path.read_text())
        assert set(FIELDS) <= set(meta)
        with Image.open(path.with_suffix(".jpg")) as im:
            assert im.size == (meta["img_width"], meta["img_height"]) and im.mode == "RGB"
        footprint = shapely.wkt.loads(meta["raw_location"])
        assert footprint.geom_type == "Polygon" and footprint.is_valid and footprint.area > 0
        assert -84 < footprint.centroid.x < -78 and 24 < footprint.centroid.y < 32  # UTM 17R
        for bb in _boxes(meta):
            assert bb["category"] == cat and bb["visible"] in ("True", "False")
            x, y, w, h = bb["box"]
            assert x >= 0 and y >= 0 and x + w <= meta["img_width"] and y + h <= meta["img_height"]

    def meta_of(rel: str) -> dict:
        return json.loads((root / "train" / rel).read_text())

    assert isinstance(meta_of("airport/airport_0/airport_0_0_rgb.json")["bounding_boxes"], dict)
    tiny = meta_of("park/park_2/park_2_1_rgb.json")["bounding_boxes"]
    assert len(tiny) == 2 and tiny[1]["box"][2] <= 2
    assert meta_of("dam/dam_0/dam_0_2_rgb.json")["bounding_boxes"] == []
    assert (root / "train/airport/airport_0/airport_0_0_msrgb.jpg").is_file()
    assert (root / "train/airport/airport_0/airport_0_0_msrgb.json").is_file()
    visible = Counter(bb["visible"] for p in rgb for bb in _boxes(json.loads(p.read_text())))
    assert visible["True"] > 0 and visible["False"] > 0
    # val carries no quirks
    assert all(
        isinstance(json.loads(p.read_text())["bounding_boxes"], list) for p in (root / "val").rglob("*_rgb.json")
    )
    assert not list((root / "val").rglob("*msrgb*"))

    test_ids = sorted(p.name for p in (root / "test").iterdir())
    assert test_ids == ["0000000", "0000001", "0000002"]
    for path in (root / "test").glob("*/*_rgb.json"):
        assert path.name.startswith(path.parent.name + "_") and path.with_suffix(".jpg").is_file()
        assert all("category" not in bb for bb in _boxes(json.loads(path.read_text())))


def test_fmow_tree_without_quirks_is_clean(tmp_path: Path) -> None:
    root = make_fmow_tree(tmp_path, quirks=False, size=32, locations_per_class=2, views=1)
    assert not (root / "test").exists() and not list(root.rglob("*msrgb*"))
    metas = [json.loads(p.read_text()) for p in root.rglob("*_rgb.json")]
    assert len(metas) == 2 * 3 * 2 * 1
    assert all(isinstance(m["bounding_boxes"], list) and len(m["bounding_boxes"]) == 1 for m in metas)
    assert {m["bounding_boxes"][0]["visible"] for m in metas} == {"True"}


def test_fmow_tree_is_seeded(tmp_path: Path) -> None:
    a = _files(make_fmow_tree(tmp_path / "a", size=32, locations_per_class=1))
    b = _files(make_fmow_tree(tmp_path / "b", size=32, locations_per_class=1))
    c = _files(make_fmow_tree(tmp_path / "c", size=32, locations_per_class=1, seed=1))
    assert a == b
    assert a.keys() == c.keys() and a != c


def test_fmow_boxes_carry_class_colour(tmp_path: Path) -> None:
    classes = ("airport", "dam", "park")
    root = make_fmow_tree(tmp_path, classes=classes, size=48, quirks=False)
    palette = np.stack([_class_colour(i) for i in range(len(classes))])
    for path in root.rglob("*_rgb.json"):
        x, y, w, h = json.loads(path.read_text())["bounding_boxes"][0]["box"]
        inside = (
            np.asarray(Image.open(path.with_suffix(".jpg")), dtype=float)[y : y + h, x : x + w].reshape(-1, 3).mean(0)
        )
        nearest = int(np.argmin(((palette - inside) ** 2).sum(1)))
        assert classes[nearest] == path.parents[1].name


# ------------------------------------------------------------------------------ class folders


def _read_split(root: Path) -> list[dict[str, str]]:
    with open(root / "splits.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_split_counts_apportion_by_largest_remainder() -> None:
    assert _split_counts(10, (0.6, 0.2, 0.2)) == [6, 2, 2]
    assert _split_counts(12, (0.6, 0.2, 0.2)) == [7, 3, 2]
    assert _split_counts(1, (0.6, 0.2, 0.2)) == [1, 0, 0]
    assert _split_counts(7, (0.0, 0.5, 0.5)) == [0, 4, 3]


def test_folder_dataset_layout_and_stratified_split(tmp_path: Path) -> None:
    root = make_folder_dataset(tmp_path, per_class=12, size=64)
    rows = _read_split(root)
    assert list(rows[0]) == ["path", "label", "split", "width", "height"]
    assert len(rows) == 36 and len({r["path"] for r in rows}) == 36
    for r in rows:
        p = root / r["path"]
        assert p.is_file() and p.parent.name == r["label"] and p.name == f"{r['label']}{p.stem[-2:]}.jpg"
        with Image.open(p) as im:
            assert im.size == (64, 64) and im.mode == "RGB" and (r["width"], r["height"]) == ("64", "64")
    per = Counter((r["label"], r["split"]) for r in rows)
    for cls in ("field", "town", "water"):
        assert (per[cls, "train"], per[cls, "val"], per[cls, "test"]) == (7, 3, 2)
    with pytest.raises(ValueError, match="sum"):
        make_folder_dataset(tmp_path / "bad", splits=(0.5, 0.2, 0.2))


def test_folder_dataset_is_seeded(tmp_path: Path) -> None:
    a = _files(make_folder_dataset(tmp_path / "a", per_class=5, size=32))
    b = _files(make_folder_dataset(tmp_path / "b", per_class=5, size=32))
    c = _files(make_folder_dataset(tmp_path / "c", per_class=5, size=32, seed=3))
    assert a == b
    assert a.keys() == c.keys() and all(a[k] != c[k] for k in a if k.endswith(".jpg"))


def test_folder_signal_is_in_class_patches_and_weakly_at_low_resolution(tmp_path: Path) -> None:
    classes = ("field", "town", "water")
    root = make_folder_dataset(tmp_path, classes=classes, per_class=30, size=64, seed=0)
    assert len({class_patches(i) for i in range(3)}) == 3
    rows = _read_split(root)
    lr_colour, labels, splits, inside, outside = [], [], [], [], []
    for r in rows:
        a = np.asarray(Image.open(root / r["path"]), dtype=float)
        lr = a.reshape(16, 4, 16, 4, 3).mean(axis=(1, 3))  # 4x area-averaged "LR"
        detail = np.abs(a - lr.repeat(4, 0).repeat(4, 1)).mean(-1).reshape(4, 16, 4, 16).mean(axis=(1, 3)).ravel()
        ci = classes.index(r["label"])
        own = np.zeros(16, bool)
        own[list(class_patches(ci))] = True
        inside.append(detail[own].mean())
        outside.append(detail[~own].mean())
        lr_colour.append(lr.mean(axis=(0, 1)))
        labels.append(ci)
        splits.append(r["split"])
    # HR detail (what LR cannot see) concentrates in the class's patches
    assert np.mean(inside) > 2 * np.mean(outside)
    # the LR mean colour alone separates classes better than chance, but not perfectly
    x, y, s = np.array(lr_colour), np.array(labels), np.array(splits)
    centroids = np.stack([x[(y == c) & (s == "train")].mean(0) for c in range(3)])
    accuracy = (np.argmin(((x[:, None] - centroids[None]) ** 2).sum(-1), 1) == y).mean()
    assert 0.5 < accuracy < 0.95
