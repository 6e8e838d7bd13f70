"""Streaming inference: the right patches, the right chips, the same answer for any block size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import shapely
import torch
from pyproj import CRS
from rasterio.transform import from_origin

from tests.conftest import tiny_card
from tests.helpers.synth import utm_scene, write_scene
from zoomplan.data.lowres import normalize
from zoomplan.errors import CheckpointError
from zoomplan.geo.grid import PlanGrid
from zoomplan.geo.scene import open_scene
from zoomplan.models.checkpoint import build_component, load_checkpoint, save_checkpoint
from zoomplan.plan.inference.blocks import cut_tiles, valid_fraction
from zoomplan.plan.inference.infer import infer_patches

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def test_cut_tiles_is_a_reshape() -> None:
    block = np.arange(2 * 16 * 24, dtype=np.float32).reshape(2, 16, 24)
    tiles = cut_tiles(block, 8)
    assert tiles.shape == (2, 3, 2, 8, 8)
    np.testing.assert_array_equal(tiles[1, 2], block[:, 8:16, 16:24])
    valid = np.zeros((16, 24), bool)
    valid[8:16, 16:20] = True
    vf = valid_fraction(valid, 8)
    assert vf[1, 2] == 0.5 and vf.sum() == 0.5


def brute_force_patches(grid: PlanGrid, feats: list) -> set[tuple[int, int]]:
    """Every patch overlapping a feature with positive area, by looping over the AOI's bounds."""
    union = shapely.union_all(feats)
    tr = grid.tile_range(union.bounds)
    rows, cols = tr.indices()
    prow, pcol = grid.patches_of_tiles(rows, cols)
    boxes = grid.patch_boxes(prow, pcol)
    area = shapely.area(shapely.intersection(boxes, union))
    keep = area > 1e-6
    return set(zip(prow[keep].tolist(), pcol[keep].tolist()))


@pytest.mark.parametrize(("epsg", "x0", "y0"), [(32618, 440000.0, 4170000.0), (32733, 500000.0, 6200000.0)])
def test_utm_scenes_multipolygon_aoi_across_tile_edges(
    tmp_path: Path, tiny_checkpoint: Path, epsg: int, x0: float, y0: float
) -> None:
    ck = load_checkpoint(tiny_checkpoint)
    sc = open_scene(utm_scene(tmp_path / "s.tif", epsg=epsg, x0=x0, y0=y0, size=64), ck.card)
    grid = PlanGrid.from_card(CRS.from_epsg(epsg), ck.card)
    a = shapely.box(x0 + 35, y0 - 275, x0 + 213, y0 - 61)  # crosses tile edges on every side
    b = shapely.MultiPolygon(
        [shapely.box(x0 + 300, y0 - 500, x0 + 390, y0 - 410), shapely.Point(x0 + 500, y0 - 150).buffer(50)]
    )
    inf = infer_patches(ck, [sc], [a, b], grid, CPU, block_tiles=3, batch_size=7)
    t = inf.table
    assert set(zip(t.row.tolist(), t.col.tolist())) == brute_force_patches(grid, [a, b])
    assert len(set(t.patch_ids())) == len(t)
    # features: patches of `a` get 0, of `b` 1
    boxes = grid.patch_boxes(t.row, t.col)
    assert (shapely.intersects(boxes[t.aoi_index == 0], a)).all()
    assert (shapely.intersects(boxes[t.aoi_index == 1], b)).all()
    assert set(t.aoi_index.tolist()) == {0, 1}
    assert ((t.prob >= 0) & (t.prob <= 1)).all() and ((t.tile_conf > 0) & (t.tile_conf <= 1)).all()
    assert set(t.tile_class.tolist()) <= {0, 1, 2}
    s = inf.stats
    assert s.tiles_planned == s.tiles_total == len(set(zip(t.tile_row.tolist(), t.tile_col.tolist())))
    assert s.tiles_nodata == s.tiles_outside == 0 and s.resampled_scenes == ()


def test_probabilities_are_the_policy_on_the_tile_chip(tmp_path: Path, tiny_checkpoint: Path) -> None:
    ck = load_checkpoint(tiny_checkpoint)
    path = utm_scene(tmp_path / "s.tif", size=32)
    sc = open_scene(path, ck.card)
    grid = PlanGrid.from_card(sc.crs, ck.card)
    aoi = [shapely.box(440085, 4169845, 440155, 4169915)]  # inside tile (row 1, col 1) of the scene
    t = infer_patches(ck, [sc], aoi, grid, CPU).table
    assert set(t.tile_row.tolist()) == {-52125 + 1} and set(t.tile_col.tolist()) == {5500 + 1}
    import rasterio

    with rasterio.open(path) as src:
        raw = src.read([1, 2, 3], window=((8, 16), (8, 16))).astype(np.float32)
    x = torch.from_numpy(np.clip(raw * 1e-4 * 3.0, 0, 1))[None]
    x = normalize(x, ck.card.lr_norm)
    with torch.inference_mode():
        p = torch.sigmoid(ck.build("policy_ft1")(x))[0].numpy()
        conf, cls = torch.softmax(ck.build("lr")(x), 1).max(1)
    np.testing.assert_allclose(t.prob, p[t.patch_index], atol=1e-5)
    assert (t.tile_class == int(cls)).all()
    np.testing.assert_allclose(t.tile_conf, float(conf), atol=1e-5)


def test_block_size_does_not_change_the_result(tmp_path: Path, tiny_checkpoint: Path) -> None:
    ck = load_checkpoint(tiny_checkpoint)
    sc = open_scene(utm_scene(tmp_path / "s.tif", size=64), ck.card)
    grid = PlanGrid.from_card(sc.crs, ck.card)
    aoi = [shapely.Point(440300, 4169700).buffer(220)]
    a = infer_patches(ck, [sc], aoi, grid, CPU, block_tiles=2, batch_size=5).table
    b = infer_patches(ck, [sc], aoi, grid, CPU, block_tiles=64).table
    np.testing.assert_array_equal(a.row, b.row)
    np.testing.assert_array_equal(a.col, b.col)
    np.testing.assert_allclose(a.prob, b.prob, atol=1e-6)


def test_nodata_block_partly_outside_and_gap_filling(tmp_path: Path, tiny_checkpoint: Path) -> None:
    ck = load_checkpoint(tiny_checkpoint)
    # 64 px scene, pixels 0..24 x 0..24 nodata: tiles (0..2, 0..2) fully nodata, row/col 3 tiles 1/8 nodata
    holed = open_scene(utm_scene(tmp_path / "holed.tif", size=64, nodata_block=(slice(0, 24), slice(0, 24))), ck.card)
    grid = PlanGrid.from_card(holed.crs, ck.card)
    aoi = [shapely.box(440000, 4169400, 440800, 4170000)]  # 10 x 7.5 tiles: the east part lies outside the scene
    inf = infer_patches(ck, [holed], aoi, grid, CPU, block_tiles=4)
    s = inf.stats
    assert s.tiles_total == 10 * 8
    assert s.tiles_nodata == 9  # the 3x3 nodata tiles
    assert s.tiles_outside == 2 * 8  # columns 8 and 9 are east of the 640 m scene
    assert s.tiles_planned == 80 - 9 - 16
    tiles = set(zip(inf.table.tile_row.tolist(), inf.table.tile_col.tolist()))
    assert (-52125, 5500) not in tiles and (-52125 + 3, 5500 + 3) in tiles
    # A second scene covering the hole fills it; the first scene still wins where it has data.
    filler = open_scene(utm_scene(tmp_path / "filler.tif", size=32, seed=5), ck.card)
    inf2 = infer_patches(ck, [holed, filler], aoi, grid, CPU, block_tiles=4)
    assert inf2.stats.tiles_nodata == 0 and inf2.stats.tiles_planned == 80 - 16
    assert inf2.stats.tiles_by_scene == {"holed": 80 - 9 - 16, "filler": 9}


def test_geographic_scene_is_resampled(tmp_path: Path, tiny_checkpoint: Path) -> None:
    ck = load_checkpoint(tiny_checkpoint)
    p = write_scene(tmp_path / "ll.tif", "EPSG:4326", from_origin(-75.62, 37.71, 0.0001, 0.0001), 80, 80)
    sc = open_scene(p, ck.card)
    grid = PlanGrid.from_card(CRS.from_epsg(32618), ck.card)
    fp = sc.footprint(grid.crs)
    aoi = [fp.buffer(-100)]
    inf = infer_patches(ck, [sc], aoi, grid, CPU)
    assert inf.stats.resampled_scenes == ("ll",)
    assert inf.stats.tiles_planned == inf.stats.tiles_total > 0
    assert inf.table.crs.to_epsg() == 32618


def test_checkpoint_without_policy(tmp_path: Path) -> None:
    card = tiny_card()
    p = save_checkpoint(tmp_path / "cls.pt", card, {c: build_component(card, c).state_dict() for c in ("hr", "lr")})
    ck = load_checkpoint(p)
    sc = open_scene(utm_scene(tmp_path / "s.tif", size=16), card)
    with pytest.raises(CheckpointError, match="no trained policy"):
        infer_patches(ck, [sc], [shapely.box(440000, 4169900, 440100, 4170000)], PlanGrid.from_card(sc.crs, card), CPU)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_autocast_matches_cpu(tmp_path: Path, tiny_checkpoint: Path) -> None:
    ck = load_checkpoint(tiny_checkpoint)
    sc = open_scene(utm_scene(tmp_path / "s.tif", size=64), ck.card)
    grid = PlanGrid.from_card(sc.crs, ck.card)
    aoi = [shapely.box(440000, 4169400, 440640, 4170000)]
    a = infer_patches(ck, [sc], aoi, grid, CPU).table
    b = infer_patches(ck, [sc], aoi, grid, torch.device("cuda")).table
    np.testing.assert_allclose(a.prob, b.prob, atol=5e-3)


def test_blocks_without_scene_are_counted_not_cut(tmp_path: Path, tiny_checkpoint: Path) -> None:
    ck = load_checkpoint(tiny_checkpoint)
    sc = open_scene(utm_scene(tmp_path / "s.tif", size=16), ck.card)  # 2 x 2 tiles
    grid = PlanGrid.from_card(sc.crs, ck.card)
    aoi = [shapely.box(440000, 4169840, 441600, 4170000)]  # 20 x 2 tiles, 18 columns east of the scene
    for bt in (2, 64):
        s = infer_patches(ck, [sc], aoi, grid, CPU, block_tiles=bt).stats
        assert (s.tiles_total, s.tiles_planned, s.tiles_outside, s.tiles_nodata) == (40, 4, 36, 0)


def test_thread_count_does_not_change_the_shipped_models_output() -> None:
    """The planner runs every core on CPU, journals record the count and Dask workers split it: the
    shipped model's table must agree at 1 and 2 torch threads for those runs to agree: the same patches,
    classes and selections, probabilities to float32 rounding (oneDNN may sum a convolution in another
    order on another thread count: measured 3 of 2,726 probabilities apart, by under 2e-13)."""
    from zoomplan.plan.inputs import open_plan_inputs

    root = Path(__file__).resolve().parents[3] / "examples"
    ck = load_checkpoint(None)
    inp = open_plan_inputs(root / "aoi_accomac.geojson", [root / "s2_l1c_18SVG_20160112_accomac_crop.tif"], ck)
    one = infer_patches(ck, inp.used, inp.aoi.geoms, inp.grid, CPU, threads=1, batch_size=100).table
    two = infer_patches(ck, inp.used, inp.aoi.geoms, inp.grid, CPU, threads=2, batch_size=100).table
    assert len(one) > 1000 and torch.get_num_threads() == 1  # restored after the run
    for name in ("row", "col", "tile_class"):
        np.testing.assert_array_equal(getattr(one, name), getattr(two, name), err_msg=name)
    for name in ("prob", "tile_conf"):
        np.testing.assert_allclose(getattr(one, name), getattr(two, name), rtol=1e-5, atol=1e-9, err_msg=name)
    np.testing.assert_array_equal(one.prob > 0.5, two.prob > 0.5, err_msg="selection at the default threshold")
