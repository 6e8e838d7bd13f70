"""Clouds in plan() (issue 18 item 5), on small generated scenes with the tiny model: what ``--cloudy ask``
is told before inference is what the plan then finds; the answer is applied; buy ranks cloudy patches first
under a budget; a resumed plan keeps the cloud states; the fill-in rule patch by patch across three scenes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
from rasterio.transform import from_origin

from tests.helpers.synth import utm_scene, write_aoi
from zoomplan.errors import ConfigError
from zoomplan.plan.pipeline import plan
from zoomplan.plan.types import CLOUDY, FILLED

X0, Y0 = 440000.0, 4170000.0


def _mask(path: Path, rows: slice, cols: slice, size: int = 48) -> Path:
    """A 10 m mask on the scenes' grid: 1 (cloud) over ``rows`` x ``cols`` pixels."""
    m = np.zeros((1, size, size), np.uint8)
    m[0, rows, cols] = 1
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        count=1,
        width=size,
        height=size,
        dtype="uint8",
        crs="EPSG:32618",
        transform=from_origin(X0, Y0, 10, 10),
    ) as dst:
        dst.write(m)
    return path


@pytest.fixture
def aoi(tmp_path: Path) -> Path:
    """The whole 480 m scene but a 20 m margin: patches 1..22 of 24 in rows and columns."""
    return write_aoi(
        tmp_path / "aoi.geojson", [shapely.box(X0 + 20, Y0 - 460, X0 + 460, Y0 - 20)], "EPSG:32618", ids=["a"]
    )


def test_ask_is_told_what_the_plan_finds(tmp_path: Path, aoi: Path, tiny_checkpoint: Path) -> None:
    a = utm_scene(tmp_path / "a.tif", size=48, seed=1)
    b = utm_scene(tmp_path / "b.tif", size=48, seed=2)
    ma = _mask(tmp_path / "ma.tif", slice(0, 24), slice(0, 48))  # north half of a: patch rows 0..11
    mb = _mask(tmp_path / "mb.tif", slice(12, 36), slice(0, 48))  # b clouded on pixel rows 12..35: patch rows 6..17
    told: list[dict] = []

    def answer(counts: dict) -> str:
        told.append(counts)
        return "skip"

    r = plan(aoi, [a, b], model=tiny_checkpoint, device="cpu", cloud_masks=[ma, mb], cloudy="ask", ask_cloudy=answer)
    # rows 1..5 cloudy in a, clear in b: filled; rows 6..11 cloudy in both: cloudy; the AOI has 22 columns
    assert told == [{"patches": 22 * 22, "cloudy": 6 * 22, "filled": 5 * 22, "patch_m": 20.0}]
    c = r.summary["clouds"]
    assert (c["patches_cloudy"], c["patches_filled"], c["handling"], c["chosen_by"]) == (
        6 * 22,
        5 * 22,
        "skip",
        "--cloudy ask: answered skip",
    )
    assert not (r.selected & (r.table.cloud == CLOUDY)).any()
    assert r.stats.tiles_by_scene == {"a": 36, "b": 0}  # tiles counted for the first scene with data
    with pytest.raises(
        ConfigError, match=r"--cloudy ask: 132 of 484 AOI patches \(0.053 km2\) .*110 more were filled in"
    ):
        plan(aoi, [a, b], model=tiny_checkpoint, device="cpu", cloud_masks=[ma, mb], cloudy="ask")
    called: list[dict] = []
    clear = plan(
        aoi,
        [b],
        model=tiny_checkpoint,
        device="cpu",
        cloud_masks=[_mask(tmp_path / "none.tif", slice(0, 0), slice(0, 0))],
        cloudy="ask",
        ask_cloudy=lambda c: called.append(c) or "skip",
    )
    assert not called and clear.summary["clouds"]["chosen_by"] == "--cloudy ask: no cloudy patch, nothing to ask"


def test_fill_in_patch_by_patch_across_three_scenes(tmp_path: Path, aoi: Path, tiny_checkpoint: Path) -> None:
    """Three dates: each patch is decided by the first scene where it is clear; its probability is that scene's own."""
    scenes = [utm_scene(tmp_path / f"s{k}.tif", size=48, seed=k) for k in range(3)]
    masks = [
        _mask(tmp_path / "m0.tif", slice(0, 48), slice(0, 16)),
        _mask(tmp_path / "m1.tif", slice(0, 48), slice(0, 8)),
    ]
    r = plan(aoi, scenes, model=tiny_checkpoint, device="cpu", cloud_masks=masks)
    alone = [plan(aoi, [s], model=tiny_checkpoint, device="cpu").table for s in scenes]
    col = r.table.col - r.table.col.min() + 1  # the AOI's patch columns 1..22
    src = np.where(col < 4, 2, np.where(col < 8, 1, 0))  # cloudy in s0 below column 8, in s1 below column 4
    want = np.choose(src, [t.prob for t in alone])
    np.testing.assert_array_equal(r.table.prob, want)
    np.testing.assert_array_equal(r.table.tile_class, np.choose(src, [t.tile_class for t in alone]))
    assert ((r.table.cloud == FILLED) == (src > 0)).all() and not (r.table.cloud == CLOUDY).any()
    assert r.summary["clouds"]["handling"] == "buy" and r.summary["clouds"]["chosen_by"] == "--cloudy buy (default)"


def test_buy_ranks_cloudy_patches_first_under_a_budget(tmp_path: Path, aoi: Path, tiny_checkpoint: Path) -> None:
    a = utm_scene(tmp_path / "a.tif", size=48, seed=1)
    m = _mask(tmp_path / "m.tif", slice(16, 32), slice(16, 32))  # patches 8..15 x 8..15: 64
    base = plan(aoi, [a], model=tiny_checkpoint, device="cpu", vendor="clip-50cm")
    cost = base.summary["baseline_cost_usd"]
    r = plan(aoi, [a], model=tiny_checkpoint, device="cpu", vendor="clip-50cm", cloud_masks=[m], budget_usd=0.6 * cost)
    cloudy = r.table.cloud == CLOUDY
    assert cloudy.sum() == 64 and r.selected[cloudy].all() and r.summary["clouds"]["cloudy_selected"] == 64
    np.testing.assert_array_equal(r.table.prob, base.table.prob)  # the table keeps the policy's probabilities
    s = plan(
        aoi,
        [a],
        model=tiny_checkpoint,
        device="cpu",
        vendor="clip-50cm",
        cloud_masks=[m],
        budget_usd=0.6 * cost,
        cloudy="skip",
    )
    assert not s.selected[cloudy].any() and s.selected.sum() > 0


def test_a_resumed_plan_keeps_the_cloud_states(
    tmp_path: Path, aoi: Path, tiny_checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Journalled blocks carry each patch's cloud state: a plan killed after its inference and resumed from the
    journal writes the same patch layer as an uninterrupted one."""
    from zoomplan.plan.export import geojson as export

    a = utm_scene(tmp_path / "a.tif", size=48, seed=1)
    m = _mask(tmp_path / "m.tif", slice(0, 20), slice(0, 48))  # patch rows 0..9
    kw = dict(model=tiny_checkpoint, device="cpu", cloud_masks=[m], block_tiles=2)
    first = plan(aoi, [a], **kw, out=tmp_path / "o" / "order.geojson", patches_out=tmp_path / "o" / "patches.geojson")
    want = (tmp_path / "o" / "patches.geojson").read_bytes()
    out, pp, j = tmp_path / "y" / "order.geojson", tmp_path / "y" / "patches.geojson", tmp_path / "j"

    def killed(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(export, "write_geojson", killed)
    with pytest.raises(KeyboardInterrupt):
        plan(aoi, [a], **kw, out=out, patches_out=pp, journal=j)
    monkeypatch.undo()
    assert j.is_dir() and not pp.exists()
    again = plan(aoi, [a], **kw, out=out, patches_out=pp, journal=j, resume=True)
    assert again.blocks_resumed == 9 and pp.read_bytes() == want
    assert (again.table.cloud == first.table.cloud).all() and int((first.table.cloud == CLOUDY).sum()) == 9 * 22
