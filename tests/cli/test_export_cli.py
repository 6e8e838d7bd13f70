"""``zoomplan export``: plan -> export end to end, one line per file on stderr, errors exit 2 with nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pyogrio
import pytest
import shapely
import typer
from typer.testing import CliRunner

from tests.helpers.synth import utm_scene, write_aoi
from tests.plan.order_synth import write_order_file


@pytest.fixture
def planned(cli: typer.Typer, tiny_checkpoint: Path, tmp_path: Path) -> Path:
    """An order file written by the real `zoomplan plan` on a generated UTM scene (two AOI features)."""
    scene = utm_scene(tmp_path / "scene.tif", size=48)
    aoi = write_aoi(
        tmp_path / "aoi.gpkg",
        [shapely.box(440030, 4169600, 440410, 4169950), shapely.box(440100, 4169560, 440300, 4169590)],
        "EPSG:32618",
        ids=["a", "b"],
    )
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
            "--vendor",
            "clip-50cm",
            "-q",
        ],
    )
    assert r.exit_code == 0, r.stderr
    return out


def test_help_lists_the_formats(cli: typer.Typer) -> None:
    r = CliRunner().invoke(cli, ["export", "--help"])
    assert r.exit_code == 0
    for word in (
        "--format",
        "--out",
        "--vendors",
        "--window",
        "kml",
        "gpkg",
        "shp",
        "csv",
        "planet",
        "up42",
        "skyfi",
        "stapi",
    ):
        assert word in r.stdout


def test_plan_then_every_format(cli: typer.Typer, planned: Path, tmp_path: Path) -> None:
    n = len(json.loads(planned.read_text())["features"])
    assert n >= 1
    out = tmp_path / "exports"
    out.mkdir()
    runs = [(["--out", str(out / name)], name) for name in ("o.kml", "o.gpkg", "o.shp", "o.zip", "o.csv")]
    runs += [
        (["--format", f, "--out", str(out / f"{f}.json")], f"{f}.json") for f in ("planet", "up42", "skyfi", "stapi")
    ]
    for args, name in runs:
        r = CliRunner().invoke(cli, ["export", str(planned), *args])
        assert r.exit_code == 0, r.stderr
        assert r.stdout == ""
        wrote = [ln.removeprefix("wrote ") for ln in r.stderr.splitlines() if ln.startswith("wrote ")]
        assert str(out / name) in wrote and all(Path(w).is_file() for w in wrote)
        if name.endswith(".json"):
            bodies = json.loads((out / name).read_text())
            assert isinstance(bodies, list) and len(bodies) >= n and "TO_FILL" in r.stderr
        else:
            assert len(pyogrio.read_dataframe(out / name)) == n
    assert sorted(p.suffix for p in out.iterdir() if p.stem == "o") == [
        ".cpg",
        ".csv",
        ".dbf",
        ".gpkg",
        ".kml",
        ".prj",
        ".shp",
        ".shx",
        ".zip",
    ]
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        ("missing", ["--out", "{d}/o.kml"], "does not exist"),
        ("text", ["--out", "{d}/o.kml"], "is not JSON"),
        ("points", ["--out", "{d}/o.kml"], "is a Point; orders must be Polygon or MultiPolygon"),
        (
            "good",
            ["--format", "dxf", "--out", "{d}/o.dxf"],
            "unknown export format 'dxf'; choose one of: kml, gpkg, shp, csv, planet, up42, skyfi, stapi",
        ),
        ("good", ["--out", "{d}/o.json"], "always need --format"),
        ("good", ["--format", "kml", "--out", "{d}/o.gpkg"], "name it o.kml"),
        ("good", ["--out", "{d}/no/such/dir/o.kml"], "does not exist: create it"),
        ("good", ["--format", "planet", "--out", "{d}/p.json", "--vendors", "{d}/nope.toml"], "vendors file"),
        (
            "good",
            ["--format", "stapi", "--out", "{d}/p.json", "--window", "2027-01-01/2026-01-01"],
            "ends before it starts",
        ),
    ],
)
def test_errors_are_one_line_exit_2_nothing_written(
    cli: typer.Typer, tmp_path: Path, setup: str, args: list[str], message: str
) -> None:
    src = tmp_path / "order.geojson"
    if setup == "text":
        src.write_text("id,wkt\n1,POINT (1 2)\n")
    elif setup == "points":
        src.write_text(
            json.dumps(
                {
                    "type": "FeatureCollection",
                    "features": [
                        {
                            "type": "Feature",
                            "properties": {},
                            "geometry": {"type": "Point", "coordinates": [-75.6, 37.7]},
                        }
                    ],
                }
            )
        )
    elif setup == "good":
        write_order_file(src)
    before = sorted(p.name for p in tmp_path.iterdir())
    r = CliRunner().invoke(cli, ["export", str(src), *[a.format(d=tmp_path) for a in args]])
    assert r.exit_code == 2, r.stderr
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written, no staging left
