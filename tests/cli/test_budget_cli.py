"""``zoomplan budget``: tables and notes on stderr, CSV on stdout with ``--csv -``, one-line errors with exit 2."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
import shapely
import typer
from typer.testing import CliRunner

from tests.helpers.synth import utm_scene, write_aoi


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[Path, Path]:
    scene = utm_scene(tmp_path / "scene.tif", size=48)  # x 440000-440480, y 4169520-4170000
    regions = write_aoi(
        tmp_path / "regions.gpkg",
        [
            shapely.box(440030, 4169700, 440300, 4169950),
            shapely.box(440200, 4169560, 440450, 4169800),
            shapely.box(445000, 4169600, 445200, 4169800),
        ],
        "EPSG:32618",
        ids=["north", "south", "far"],
        names=["N", "S", "F"],
    )
    return scene, regions


def test_help_lists_the_options(cli: typer.Typer) -> None:
    r = CliRunner().invoke(cli, ["budget", "--help"])
    assert r.exit_code == 0
    for opt in (
        "--lr",
        "--by",
        "--vendor",
        "--vendors",
        "--csv",
        "--gpkg",
        "--map",
        "--model",
        "--threshold",
        "--device",
        "--quiet",
    ):
        assert opt in r.stdout


def test_table_notes_and_files(
    cli: typer.Typer, inputs: tuple[Path, Path], tiny_checkpoint: Path, tmp_path: Path
) -> None:
    scene, regions = inputs
    out = tmp_path / "out"
    r = CliRunner().invoke(
        cli,
        [
            "budget",
            str(regions),
            "--lr",
            str(scene),
            "--model",
            str(tiny_checkpoint),
            "--device",
            "cpu",
            "--vendor",
            "clip-50cm",
            "--vendor",
            "clip-30cm",
            "--csv",
            str(out / "b.csv"),
            "--gpkg",
            str(out / "b.gpkg"),
        ],
        env={"COLUMNS": "200"},
    )
    assert r.exit_code == 0, r.stderr
    assert r.stdout == ""
    for text in (
        "TOTAL",
        "north",
        "south",
        "far",
        "outside scenes",
        "clip-50cm",
        "clip-30cm",
        "billed once",
        "not in the totals",
        "wrote",
    ):
        assert text in r.stderr, text
    assert sorted(p.name for p in out.iterdir()) == ["b.csv", "b.gpkg"]


def test_csv_to_stdout(cli: typer.Typer, inputs: tuple[Path, Path], tiny_checkpoint: Path) -> None:
    scene, regions = inputs
    r = CliRunner().invoke(
        cli,
        [
            "budget",
            str(regions),
            "--lr",
            str(scene),
            "--model",
            str(tiny_checkpoint),
            "--device",
            "cpu",
            "--vendor",
            "clip-50cm",
            "--csv",
            "-",
            "-q",
        ],
    )
    assert r.exit_code == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert [x["region"] for x in rows] == ["north", "south", "far", "TOTAL"]
    total = float(rows[-1]["plan_usd_clip_50cm"])
    assert (
        total == pytest.approx(sum(float(x["plan_usd_clip_50cm"]) for x in rows[:2]), abs=1e-6)
        and rows[2]["plan_usd_clip_50cm"] == ""
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--by", "district"], "--by 'district': regions file"),
        (["--vendor", "acme"], "unknown vendor 'acme'"),
        (["--map", "m.jpg"], "must end in .png"),
    ],
)
def test_errors_are_one_line_exit_2_no_output(
    cli: typer.Typer, inputs: tuple[Path, Path], tiny_checkpoint: Path, tmp_path: Path, extra: list[str], message: str
) -> None:
    scene, regions = inputs
    out = tmp_path / "out" / "b.csv"
    r = CliRunner().invoke(
        cli,
        [
            "budget",
            str(regions),
            "--lr",
            str(scene),
            "--model",
            str(tiny_checkpoint),
            "--device",
            "cpu",
            "--csv",
            str(out),
            *extra,
        ],
    )
    assert r.exit_code == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], r.stderr
    if extra[0] == "--by":
        assert "its fields are: id, name" in lines[0]
    assert not out.parent.exists()
