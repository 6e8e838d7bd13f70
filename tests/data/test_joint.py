"""The joint dataset: crops to the tile footprint, the joint label space, both real split CSVs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import shared_data
from zoomplan.data.joint import JointDataset, SourceSpec, crop_box, parse_sources, sources_from_recipe
from zoomplan.errors import DatasetError
from zoomplan.train.config import load_config


def test_crop_box_hand_values() -> None:
    assert crop_box(400, 400, 0.25, 80.0) == (40, 40, 360, 360)  # RSSCN7 level 1: 320 px of 0.25 m
    assert crop_box(400, 400, 2.0, 80.0) == (180, 180, 220, 220)  # level 4: 40 px of 2 m
    assert crop_box(256, 256, 0.3048, 80.0) == (0, 0, 256, 256)  # UC Merced's 78 m: used whole
    assert crop_box(247, 256, 0.3048, 80.0) == (0, 4, 247, 251)  # 75 m: still whole (>= 90% of the tile)
    assert crop_box(200, 200, 0.3048, 80.0) is None  # 61 m: too small for an 80 m tile


def _source(tmp_path: Path, name: str, classes: dict[str, tuple[int, int, int]], px: float) -> Path:
    root = tmp_path / name
    rows = ["path,label,split,gsd"]
    for c, colour in classes.items():
        (root / c).mkdir(parents=True)
        for i, split in enumerate(("train", "val", "test")):
            Image.new("RGB", (100, 100), colour).save(root / c / f"{i}.png")
            rows.append(f"{c}/{i}.png,{c},{split},{px}")
    (root / "splits.csv").write_text("\n".join(rows) + "\n")
    return root


def test_joint_labels_merge_sources_and_crop(tmp_path: Path) -> None:
    a = _source(tmp_path, "a", {"forest": (10, 80, 10), "parkinglot": (120, 120, 120)}, 1.0)
    b = _source(tmp_path, "b", {"trees": (20, 90, 20), "lake": (10, 20, 90)}, 0.5)
    specs = [
        SourceSpec("a", {"forest": "forest", "parkinglot": "parking"}, pixel_m=1.0),
        SourceSpec("b", {"trees": "forest", "lake": "water"}, pixel_column="gsd"),
    ]
    ds = JointDataset({"a": a, "b": b}, specs, "train", tile_ground_m=40.0, size=16)
    assert ds.class_names == ("forest", "parking", "water")
    assert len(ds) == 4 and ds.source_of.tolist() == [0, 0, 1, 1]
    by_label = {ds.samples[i].source_label: int(ds.labels[i]) for i in range(len(ds))}
    assert by_label == {"forest": 0, "trees": 0, "parkinglot": 1, "lake": 2}
    img, y = ds[3]
    assert img.shape == (3, 16, 16) and y == 2 and img[:, 8, 8].tolist() == [10, 20, 90]


def test_joint_errors_name_the_fix(tmp_path: Path) -> None:
    a = _source(tmp_path, "a", {"forest": (10, 80, 10), "river": (0, 0, 99)}, 1.0)
    with pytest.raises(DatasetError, match="river have no joint class: add them to"):
        JointDataset({"a": a}, [SourceSpec("a", {"forest": "forest"}, pixel_m=1.0)], "train", tile_ground_m=40.0)
    with pytest.raises(DatasetError, match="pass --source NAME=DIR"):
        JointDataset({}, [SourceSpec("a", {"forest": "forest"}, pixel_m=1.0)], "train", tile_ground_m=40.0)
    with pytest.raises(DatasetError, match="covers 100 m, less than the 200 m tile"):
        JointDataset(
            {"a": a}, [SourceSpec("a", {"forest": "f", "river": "w"}, pixel_m=1.0)], "train", tile_ground_m=200.0
        )
    with pytest.raises(DatasetError, match="must be NAME=DIR"):
        parse_sources(["rsscn7"])
    with pytest.raises(DatasetError, match="either pixel_m"):
        SourceSpec.from_dict("a", {"labels": {"x": "y"}})


def test_shipped_recipe_reads_the_real_split_csv_at_160_m() -> None:
    roots = {"rsscn7": shared_data("rsscn7")}
    cfg = load_config("joint")
    assert cfg.model.tile_ground_m == 160.0
    specs = sources_from_recipe(cfg.raw)
    sizes, skipped = {}, {}
    for split in ("train", "val", "test"):
        ds = JointDataset(roots, specs, split, tile_ground_m=cfg.model.tile_ground_m, size=32, cache=False)
        sizes[split], skipped[split] = len(ds), ds.skipped_smaller
        # grass is merged into field (open vegetation): six classes
        assert ds.class_names == ("field", "forest", "industrial", "parking", "residential", "water")
    # RSSCN7's fixed split 1680/560/560, stratified by scale: the 100 m scale (a quarter) cannot hold a
    # 160 m tile and is left out; every image of the 200, 400 and 800 m scales is kept.
    assert sizes == {"train": 1260, "val": 420, "test": 420}
    assert skipped == {"train": 420, "val": 140, "test": 140}
    assert {s.pixel_m for s in ds.samples} == {0.5, 1.0, 2.0}
    water = ds.class_names.index("water")
    lakes = [i for i, s in enumerate(ds.samples) if s.source_label == "riverlake"]
    assert len(lakes) == 60 and all(int(ds.labels[i]) == water for i in lakes)
    img, _ = ds[lakes[0]]
    assert img.shape == (3, 32, 32) and np.asarray(img).std() > 0


def test_skip_smaller_leaves_out_images_smaller_than_the_tile(tmp_path: Path) -> None:
    a = _source(tmp_path, "a", {"forest": (10, 80, 10)}, 1.0)  # 100 m images
    b = _source(tmp_path, "b", {"forest": (10, 80, 10)}, 0.5)  # 50 m images
    specs = [
        SourceSpec("a", {"forest": "forest"}, pixel_m=1.0),
        SourceSpec.from_dict("b", {"labels": {"forest": "forest"}, "pixel_column": "gsd", "skip_smaller": True}),
    ]
    ds = JointDataset({"a": a, "b": b}, specs, "train", tile_ground_m=80.0, size=8)
    assert [s.source for s in ds.samples] == ["a"] and ds.skipped_smaller == 1
    with pytest.raises(DatasetError, match="covers 50 m, less than the 80 m tile"):  # without it, an error
        JointDataset(
            {"a": a, "b": b},
            specs[:1] + [SourceSpec("b", {"forest": "forest"}, pixel_column="gsd")],
            "train",
            tile_ground_m=80.0,
        )
    with pytest.raises(DatasetError, match="skip_smaller must be true or false"):
        SourceSpec.from_dict("b", {"labels": {"forest": "forest"}, "pixel_m": 1.0, "skip_smaller": "yes"})


def test_min_footprint_keeps_only_images_that_hold_it(tmp_path: Path) -> None:
    a = _source(tmp_path, "a", {"forest": (10, 80, 10)}, 1.0)  # 100 m images
    b = _source(tmp_path, "b", {"forest": (10, 80, 10)}, 0.5)  # 50 m images
    specs = [
        SourceSpec("a", {"forest": "forest"}, pixel_m=1.0),
        SourceSpec("b", {"forest": "forest"}, pixel_column="gsd"),
    ]
    ds = JointDataset({"a": a, "b": b}, specs, "train", tile_ground_m=40.0, size=8, min_footprint_m=80.0)
    assert [s.source for s in ds.samples] == ["a"]  # the same 40 m tiles, cut only from images that hold 80 m
    assert len(JointDataset({"a": a, "b": b}, specs, "train", tile_ground_m=40.0, size=8)) == 2
