"""Pure grid functions: planning CRS, tile ranges, patch indices, feature assignment."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from pyproj import CRS

from tests.conftest import tiny_card
from zoomplan.errors import CheckpointError
from zoomplan.geo.grid import PlanGrid, TileRange, assign_features, planning_crs, utm_epsg
from zoomplan.plan.types import PatchTable


@pytest.mark.parametrize(
    ("lon", "lat", "epsg"),
    [
        (-75.6, 37.7, 32618),
        (13.4, 52.5, 32633),
        (18.4, -33.9, 32734),
        (-180.0, 0.0, 32601),
        (179.99, -1.0, 32760),
        (3.0, 0.0, 32631),
    ],
)
def test_utm_epsg(lon: float, lat: float, epsg: int) -> None:
    assert utm_epsg(lon, lat) == epsg


def test_planning_crs_choices() -> None:
    utm = CRS.from_epsg(32618)
    assert planning_crs(utm, -75.6, 37.7) == (utm, "scene CRS")
    crs, why = planning_crs(CRS.from_epsg(4326), -75.6, 37.7)
    assert crs.to_epsg() == 32618 and "geographic" in why
    crs, why = planning_crs(CRS.from_epsg(4326), 18.4, -33.9)
    assert crs.to_epsg() == 32734
    # Web Mercator is in metres but 25% off scale at 37.7 N: not a ground grid.
    crs, why = planning_crs(CRS.from_epsg(3857), -75.6, 37.7)
    assert crs.to_epsg() == 32618 and "scale error" in why
    # US survey feet
    crs, _ = planning_crs(CRS.from_epsg(2283), -77.4, 37.5)
    assert crs.to_epsg() == 32618


def test_tile_range_and_bounds() -> None:
    g = PlanGrid(CRS.from_epsg(32618), 80.0)
    tr = g.tile_range((160.0, -250.0, 330.0, -80.0))
    # x 160..330 -> cols 2..4 ; y -250..-80 -> rows 1..3
    assert tr == TileRange(1, 4, 2, 5)
    assert g.range_bounds(tr) == (160.0, -320.0, 400.0, -80.0)
    # exact edges do not add a tile
    assert g.tile_range((0.0, -80.0, 80.0, 0.0)) == TileRange(0, 1, 0, 1)
    # southern hemisphere style (large positive northings): rows are negative
    tr2 = g.tile_range((500000.0, 6200000.0, 500100.0, 6200050.0))
    assert tr2 == TileRange(-77501, -77500, 6250, 6252)
    t = g.lr_transform(tr)
    assert (t.a, t.e, t.c, t.f) == (10.0, -10.0, 160.0, -80.0)


def test_blocks_cover_range_once() -> None:
    g = PlanGrid(CRS.from_epsg(32618), 80.0)
    tr = TileRange(-3, 7, 5, 18)
    seen = np.zeros((10, 13), dtype=int)
    for b in g.blocks(tr, 4):
        assert b.shape[0] <= 4 and b.shape[1] <= 4
        seen[b.r0 + 3 : b.r1 + 3, b.c0 - 5 : b.c1 - 5] += 1
    assert (seen == 1).all()


def test_patches_match_patchtable_convention() -> None:
    g = PlanGrid(CRS.from_epsg(32618), 80.0)
    prow, pcol = g.patches_of_tiles(np.array([2, -1]), np.array([3, 0]))
    assert prow.size == 32
    table = PatchTable(
        crs=g.crs,
        patch_m=g.patch_m,
        patch_grid=g.patch_grid,
        row=prow,
        col=pcol,
        prob=np.zeros(32, np.float32),
        tile_class=np.zeros(32, np.int32),
        tile_conf=np.zeros(32, np.float32),
        aoi_index=np.zeros(32, np.int32),
    )
    assert table.patch_index.tolist() == list(range(16)) * 2
    assert set(table.tile_row.tolist()) == {2, -1} and set(table.tile_col.tolist()) == {3, 0}
    # patch boxes agree with the table's bounds and sit inside their tile
    boxes = g.patch_boxes(prow, pcol)
    np.testing.assert_allclose(shapely.bounds(boxes), table.bounds())
    tiles = g.tile_boxes(np.array([2, -1]), np.array([3, 0]))
    assert shapely.within(boxes[:16], tiles[0]).all() and shapely.within(boxes[16:], tiles[1]).all()
    # patch 0 is the north-west corner of the tile
    assert shapely.bounds(boxes[0])[0] == shapely.bounds(tiles[0])[0]
    assert shapely.bounds(boxes[0])[3] == shapely.bounds(tiles[0])[3]
    assert table.patch_ids()[0] == "EPSG32618/2_3/0"


def test_assign_features_edges_and_overlaps() -> None:
    g = PlanGrid(CRS.from_epsg(32618), 80.0)
    rows, cols = TileRange(0, 1, 0, 2).indices()
    prow, pcol = g.patches_of_tiles(rows, cols)
    boxes = g.patch_boxes(prow, pcol)
    a = shapely.box(0, -80, 30, 0)  # covers patch col 0 and half of col 1
    b = shapely.box(30, -80, 80, 0)  # covers the other half of col 1, cols 2-3 of tile 0
    edge = shapely.box(160, -80, 200, 0)  # touches tile (0, 1)'s east edge only
    idx = assign_features(boxes, [a, b, edge])
    cols_of = pcol
    assert (idx[cols_of == 0] == 0).all()
    assert (idx[cols_of == 1] == 0).all()  # 10 m in a, 10 m in b: a tie goes to the lowest index
    assert (idx[(cols_of >= 2) & (cols_of <= 3)] == 1).all()
    assert (idx[cols_of >= 4] == -1).all()  # tile (0, 1) only touched by `edge`


def test_assign_features_tie_goes_to_lowest_index() -> None:
    box = np.array([shapely.box(0, 0, 20, 20)])
    left, right = shapely.box(-5, 0, 10, 20), shapely.box(10, 0, 25, 20)
    assert assign_features(box, [right, left]).tolist() == [0]
    assert assign_features(box, [left, right]).tolist() == [0]
    assert assign_features(box, [shapely.box(0, 0, 5, 20), right]).tolist() == [1]


def test_from_card_checks() -> None:
    g = PlanGrid.from_card(CRS.from_epsg(32618), tiny_card())
    assert (g.tile_m, g.patch_m, g.lr_pixel_m, g.patches_per_tile) == (80.0, 20.0, 10.0, 16)
    with pytest.raises(CheckpointError, match="inconsistent"):
        PlanGrid.from_card(CRS.from_epsg(32618), tiny_card(lr_pixel_m=5.0))
