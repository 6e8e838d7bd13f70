"""Inference on a Dask cluster (``--workers`` / ``--dask``): byte-identical to the single-process run."""

from __future__ import annotations

from pathlib import Path

import pytest
import shapely
import torch
from typer.testing import CliRunner

from tests.helpers.synth import utm_scene, write_aoi
from zoomplan.plan.pipeline import plan

distributed = pytest.importorskip("distributed", reason="needs the optional extra zoomplan[dask]")


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Two overlapping scenes (one with a nodata block) and a two-feature AOI spanning many 2 x 2-tile blocks."""
    a = utm_scene(tmp_path / "a.tif", size=64, seed=1, nodata_block=(slice(40, 64), slice(0, 24)))
    b = utm_scene(tmp_path / "b.tif", x0=440320.0, size=64, seed=2)
    aoi = write_aoi(
        tmp_path / "aoi.geojson",
        [shapely.box(440030, 4169420, 440600, 4169950), shapely.box(440610, 4169500, 440900, 4169700)],
        "EPSG:32618",
        ids=["p", "q"],
    )
    return a, b, aoi


@pytest.mark.slow
def test_local_cluster_output_is_byte_identical(
    tmp_path: Path, inputs: tuple[Path, Path, Path], tiny_checkpoint: Path
) -> None:
    torch.set_num_threads(1)
    a, b, aoi = inputs
    kw = dict(model=tiny_checkpoint, device="cpu", block_tiles=2, vendor="clip-50cm")
    one = plan(aoi, [a, b], out=tmp_path / "one.geojson", patches_out=tmp_path / "one_p.geojson", **kw)
    two = plan(aoi, [a, b], out=tmp_path / "two.geojson", patches_out=tmp_path / "two_p.geojson", cluster=2, **kw)
    assert one.stats.tiles_by_scene["a"] > 0 and one.stats.tiles_by_scene["b"] > 0 and one.stats.tiles_nodata > 0
    assert two.stats == one.stats
    assert (tmp_path / "two.geojson").read_bytes() == (tmp_path / "one.geojson").read_bytes()
    assert (tmp_path / "two_p.geojson").read_bytes() == (tmp_path / "one_p.geojson").read_bytes()


def test_cli_workers_and_dask_are_exclusive(tmp_path: Path, inputs: tuple[Path, Path, Path]) -> None:
    from zoomplan.cli import _register, app

    _register()
    a, _, aoi = inputs
    r = CliRunner().invoke(
        app,
        [
            "plan",
            str(aoi),
            "--lr",
            str(a),
            "--workers",
            "2",
            "--dask",
            "tcp://127.0.0.1:1",
            "--out",
            str(tmp_path / "x.geojson"),
        ],
    )
    assert (
        r.exit_code == 2
        and r.stderr.startswith("error: --workers and --dask")
        and not (tmp_path / "x.geojson").exists()
    )
