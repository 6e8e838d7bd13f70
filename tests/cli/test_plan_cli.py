"""``zoomplan plan``: stdout carries only data, people's messages go to stderr, errors exit 2 with one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import shapely
import typer
from typer.testing import CliRunner

from tests.helpers.synth import utm_scene, write_aoi


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[Path, Path]:
    scene = utm_scene(tmp_path / "scene.tif", size=48)
    aoi = write_aoi(
        tmp_path / "aoi.gpkg",
        [shapely.box(440030, 4169600, 440410, 4169950), shapely.box(440100, 4169560, 440300, 4169590)],
        "EPSG:32618",
        ids=["a", "b"],
        names=["A", "B"],
    )
    return scene, aoi


def test_help_lists_the_options(cli: typer.Typer) -> None:
    r = CliRunner().invoke(cli, ["plan", "--help"])
    assert r.exit_code == 0
    for opt in (
        "--lr",
        "--out",
        "--patches",
        "--quicklook",
        "--model",
        "--vendor",
        "--vendors",
        "--threshold",
        "--budget",
        "--max-fraction",
        "--bands",
        "--device",
    ):
        assert opt in r.stdout


def test_out_dash_pipes_geojson(
    cli: typer.Typer, inputs: tuple[Path, Path], tiny_checkpoint: Path, tmp_path: Path
) -> None:
    scene, aoi = inputs
    r = CliRunner().invoke(
        cli,
        [
            "plan",
            str(aoi),
            "--lr",
            str(scene),
            "--model",
            str(tiny_checkpoint),
            "--device",
            "cpu",
            "--out",
            "-",
            "--patches",
            str(tmp_path / "p.geojson"),
            "--vendor",
            "clip-50cm",
        ],
    )
    assert r.exit_code == 0, r.stderr
    fc = json.loads(r.stdout)  # stdout is exactly one GeoJSON document
    assert fc["type"] == "FeatureCollection" and fc["summary"]["parameters"]["vendor"] == "clip-50cm"
    assert "Savings" in r.stderr and "Plan cost" in r.stderr and "AOI features" in r.stderr
    assert (tmp_path / "p.geojson").is_file()


def test_writes_files_and_table(
    cli: typer.Typer, inputs: tuple[Path, Path], tiny_checkpoint: Path, tmp_path: Path
) -> None:
    scene, aoi = inputs
    out = tmp_path / "o" / "order.geojson"
    r = CliRunner().invoke(
        cli,
        [
            "plan",
            str(aoi),
            "--lr",
            str(scene),
            "--model",
            str(tiny_checkpoint),
            "--device",
            "cpu",
            "--out",
            str(out),
            "--max-fraction",
            "0.25",
            "--bands",
            "B04,B03,B02",
        ],
    )
    assert r.exit_code == 0, r.stderr
    assert r.stdout == ""
    s = json.loads(out.read_text())["summary"]
    assert s["fraction_selected"] <= 0.25 and s["parameters"]["bands"] == ["B04", "B03", "B02"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--vendor", "acme"], "unknown vendor 'acme'"),
        (["--bands", "1,2"], "lists 2 band(s)"),
        (["--threshold", "-1"], "is negative"),
        (["--device", "tpu"], "unknown device"),
    ],
)
def test_errors_are_one_line_exit_2_no_output(
    cli: typer.Typer, inputs: tuple[Path, Path], tiny_checkpoint: Path, tmp_path: Path, extra: list[str], message: str
) -> None:
    scene, aoi = inputs
    out = tmp_path / "o" / "order.geojson"
    r = CliRunner().invoke(
        cli, ["plan", str(aoi), "--lr", str(scene), "--model", str(tiny_checkpoint), "--out", str(out), *extra]
    )
    assert r.exit_code == 2
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert not out.exists() and not out.parent.exists()


def test_aoi_outside_every_scene(cli: typer.Typer, tiny_checkpoint: Path, tmp_path: Path) -> None:
    scene = utm_scene(tmp_path / "scene.tif", size=16)
    far = write_aoi(tmp_path / "far.geojson", [shapely.box(2.0, 48.0, 2.01, 48.01)], "EPSG:4326")
    r = CliRunner().invoke(
        cli,
        ["plan", str(far), "--lr", str(scene), "--model", str(tiny_checkpoint), "--out", str(tmp_path / "x.geojson")],
    )
    assert r.exit_code == 2 and "outside every scene" in r.stderr and "pass --lr scenes that cover the AOI" in r.stderr
    assert not (tmp_path / "x.geojson").exists()


def test_missing_lr_is_a_usage_error(cli: typer.Typer, inputs: tuple[Path, Path]) -> None:
    _, aoi = inputs
    r = CliRunner().invoke(cli, ["plan", str(aoi)])
    assert r.exit_code == 2 and "--lr" in r.stderr


def test_budget_reports_what_it_drops(
    cli: typer.Typer, inputs: tuple[Path, Path], tiny_checkpoint: Path, tmp_path: Path
) -> None:
    """Under --budget the summary carries the dropped patches, and the table gives them one line."""
    from rich.console import Console

    from zoomplan.cli.commands.plan import summary_table

    scene, aoi = inputs
    out = tmp_path / "order.geojson"
    r = CliRunner().invoke(
        cli,
        [
            "plan",
            str(aoi),
            "--lr",
            str(scene),
            "--model",
            str(tiny_checkpoint),
            "--device",
            "cpu",
            "--out",
            str(out),
            "--budget",
            "7",
            "--bands",
            "B04,B03,B02",
        ],
    )
    assert r.exit_code == 0, r.stderr
    s = json.loads(out.read_text())["summary"]
    assert s["plan_cost_usd"] <= 7 and {"n_patches", "n_orders", "value", "cost_usd", "reason", "orders"} <= set(
        s["dropped"]
    )
    s["dropped"].update(
        n_patches=3,
        n_orders=1,
        considered_patches=9,
        value=0.62,
        cost_usd=6.75,
        reason="below the plan's marginal 2.1 per USD",
    )
    console = Console(width=200, record=True)
    console.print(summary_table(s, "aoi"))
    (line,) = [x for x in console.export_text().splitlines() if "Dropped (budget)" in x]
    assert (
        "3 of the 9 most probable patches, in 1 order(s) worth 0.62 for 6.75 USD: below the plan's marginal 2.1 per USD"
        in line
    )


def test_the_table_says_what_the_order_rules_did(
    cli: typer.Typer, inputs: tuple[Path, Path], tiny_checkpoint: Path, tmp_path: Path
) -> None:
    """Issue 17: the summary's order_rules, one line each where a rule did something (crumbs, holes, shared
    areas, orders narrower than the width), none where nothing happened."""
    from rich.console import Console

    from zoomplan.cli.commands.plan import summary_table

    scene, aoi = inputs
    out = tmp_path / "order.geojson"
    r = CliRunner().invoke(
        cli,
        [
            "plan",
            str(aoi),
            "--lr",
            str(scene),
            "--model",
            str(tiny_checkpoint),
            "--device",
            "cpu",
            "--out",
            str(out),
            "--bands",
            "B04,B03,B02",
        ],
    )
    assert r.exit_code == 0, r.stderr
    s = json.loads(out.read_text())["summary"]
    assert {"overlaps", "crumbs", "holes", "width"} <= set(s["order_rules"])
    rules = s["order_rules"]
    rules["crumbs"].update(crumbs=5, merged=2, dropped=3, dropped_km2=0.000123)
    rules["holes"].update(orders_split=1, orders_filled=0, hole_km2_not_bought=0.36, choices=[{"choice": "split"}])
    rules["overlaps"].update(shared_area_km2=0.0, billed_twice_km2=0.0)
    rules["width"].update(orders_narrower=0)
    console = Console(width=240, record=True)
    console.print(summary_table(s, "aoi"))
    text = console.export_text()
    assert "5 crumb(s) under 10% of a patch not ordered for themselves: 2 merged, 3 dropped (0.000123 km2)" in text
    assert "AOI holes: 1 order(s) split around (0.360 km2 not bought), 0 filled (0.000 km2 bought)" in text
    assert "billed twice" not in text and "narrower than" not in text
