"""``zoomplan audit``: the table on stderr, audit.md / audit.json / audit.png written, and every bad input
refused with one line, exit code 2 and nothing written."""

from __future__ import annotations

import io
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Callable

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
import typer
from PIL import Image
from rasterio.transform import from_origin
from typer.testing import CliRunner

from tests.plan.audit_synth import raster_labels, scene, to_lonlat, vector_labels
from zoomplan.plan.audit import audit

ENV = {"COLUMNS": "200"}


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[Path, Path]:
    return scene(tmp_path), vector_labels(tmp_path / "labels.gpkg")


def test_help_lists_the_options(cli: typer.Typer) -> None:
    r = CliRunner().invoke(cli, ["audit", "--help"], env=ENV)
    assert r.exit_code == 0
    for opt in (
        "--lr",
        "--labels",
        "--field",
        "--classes",
        "--model",
        "--threshold",
        "--out",
        "--png",
        "--bands",
        "--sensor",
        "--device",
        "--batch-size",
    ):
        assert opt in r.stdout, opt


def test_table_and_files(cli: typer.Typer, inputs: tuple[Path, Path], tiny_checkpoint: Path, tmp_path: Path) -> None:
    sc, labels = inputs
    out = tmp_path / "out"
    args = [
        "audit",
        "--lr",
        str(sc),
        "--labels",
        str(labels),
        "--field",
        "landuse",
        "--model",
        str(tiny_checkpoint),
        "--device",
        "cpu",
        "--threshold",
        "0",
        "--out",
        str(out),
        "--png",
    ]
    r = CliRunner().invoke(cli, args, env=ENV)
    assert r.exit_code == 0, r.stderr
    assert r.stdout == ""
    for text in ("zoomplan audit: labels.gpkg", "town", "water", "TOTAL", "fraction selected", "top LR class", "wrote"):
        assert text in r.stderr, text
    assert sorted(p.name for p in out.iterdir()) == ["audit.json", "audit.md", "audit.png"]

    ref = audit([sc], labels, field="landuse", model=tiny_checkpoint, device="cpu", threshold=0.0)
    doc = json.loads((out / "audit.json").read_text())
    assert doc["rows"] == [r.to_dict() for r in ref.rows]
    assert [x["label"] for x in doc["rows"]] == ["town", "water", "TOTAL"]
    assert all(x["selected"] == x["patches"] > 0 for x in doc["rows"])  # threshold 0 selects every patch
    assert doc["parameters"]["field"] == "landuse" and doc["parameters"]["threshold"] == 0.0
    assert doc["parameters"]["model"]["file"] == str(tiny_checkpoint)

    md = (out / "audit.md").read_text()
    assert "| class | area km2 | patches | selected | fraction selected | mean probability | top LR class |" in md
    town = ref.row("town")
    assert f"| town | {town.area_km2:.4f} | {town.patches:,} | {town.selected:,} | 1.000 |" in md
    assert "| **TOTAL** |" in md and ref.parameters["model"]["sha256"] in md

    img = Image.open(io.BytesIO((out / "audit.png").read_bytes()))
    assert img.format == "PNG" and img.width >= 600 and img.height >= 200
    px = np.asarray(img.convert("RGB")).reshape(-1, 3).astype(int)
    assert len(np.unique(px, axis=0)) > 20  # text, axes and bars, not a blank canvas
    bar = (abs(px - (217, 95, 2)).sum(axis=1) < 30).mean()
    assert bar > 0.05  # two full-length bars (fraction 1 at threshold 0)


def _points(tmp: Path) -> list[str]:
    pts = [to_lonlat(shapely.Point(440100, 4169800)), to_lonlat(shapely.Point(440300, 4169600))]
    gdf = gpd.GeoDataFrame({"landuse": ["town", "water"]}, geometry=pts, crs="EPSG:4326")
    gdf.to_file(tmp / "points.gpkg")
    return ["--labels", str(tmp / "points.gpkg"), "--field", "landuse"]


def _raster(
    tmp: Path, dtype: str = "int16", count: int = 1, crs: str | None = "EPSG:32618", fill: int | None = None
) -> list[str]:
    path = tmp / f"bad_{dtype}_{count}_{crs is None}_{fill}.tif"
    data = np.ones((count, 20, 20), dtype=dtype) if fill is None else np.full((count, 20, 20), fill, dtype=dtype)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=20,
        height=20,
        count=count,
        dtype=dtype,
        crs=crs,
        transform=from_origin(440000, 4170000, 20, 20),
        nodata=0,
    ) as dst:
        dst.write(data)
    return ["--labels", str(path)]


def _vector(tmp: Path, geom: shapely.Geometry) -> list[str]:
    gpd.GeoDataFrame({"landuse": ["town"]}, geometry=[to_lonlat(geom)], crs="EPSG:4326").to_file(tmp / "far.gpkg")
    return ["--labels", str(tmp / "far.gpkg"), "--field", "landuse"]


def _garbage(tmp: Path) -> list[str]:
    (tmp / "junk.gpkg").write_text("not a geopackage")
    return ["--labels", str(tmp / "junk.gpkg"), "--field", "landuse"]


LABELS = ["--labels", "{labels}"]
FIELD = [*LABELS, "--field", "landuse"]
CASES: dict[str, tuple[Callable[[Path], list[str]], str]] = {  # case: (arguments, what the error line says)
    "missing_labels": (
        lambda t: ["--labels", str(t / "nope.gpkg"), "--field", "landuse"],
        "labels file {tmp}/nope.gpkg not found",
    ),
    "unreadable_labels": (_garbage, "labels {tmp}/junk.gpkg is not a vector file GDAL can read"),
    "field_missing": (
        lambda t: [*LABELS, "--field", "colour"],
        "--field 'colour': labels file {labels} has no such field; its fields are: id, landuse; pass one of them",
    ),
    "no_field": (
        lambda t: LABELS,
        "pass --field with the attribute that holds each polygon's class; its fields are: id, landuse",
    ),
    "no_overlap": (
        lambda t: _vector(t, shapely.box(445000, 4169600, 445300, 4169900)),
        "no labelled area overlaps the scenes",
    ),
    "points": (_points, "is a Point: labels must be Polygon or MultiPolygon features"),
    "float_raster": (lambda t: _raster(t, "float32"), "holds float32 values: a label raster holds integer classes"),
    "multiband_raster": (lambda t: _raster(t, count=2), "has 2 bands: pass a single-band integer raster"),
    "raster_no_crs": (lambda t: _raster(t, crs=None), "has no CRS: assign one"),
    "raster_all_nodata": (lambda t: _raster(t, fill=0), "has no labelled pixel"),
    "raster_with_field": (
        lambda t: [*_raster(t), "--field", "landuse"],
        "is a raster, whose pixel values are its classes: drop --field",
    ),
    "vector_with_classes": (lambda t: [*FIELD, "--classes", "1=town"], "--classes names the values of a label raster"),
    "bad_classes": (lambda t: [*_raster(t), "--classes", "town"], "'town' is not VALUE=NAME"),
    "narrower_than_a_patch": (
        lambda t: _vector(t, shapely.box(440040, 4169800, 440044, 4169804)),
        "has its centre on a label",
    ),
    "negative_threshold": (lambda t: [*FIELD, "--threshold", "-0.1"], "--threshold -0.1 is negative"),
    "png_without_out": (lambda t: [*FIELD, "--png", "--no-out"], "--png draws DIR/audit.png: pass --out DIR"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_exit_2_nothing_written(
    cli: typer.Typer, inputs: tuple[Path, Path], tiny_checkpoint: Path, tmp_path: Path, case: str
) -> None:
    sc, labels = inputs
    build, message = CASES[case]
    extra = [a.format(labels=labels) for a in build(tmp_path)]
    out = ["--out", str(tmp_path / "out")]
    if "--no-out" in extra:
        extra.remove("--no-out")
        out = []
    before = sorted(tmp_path.rglob("*"))
    args = ["audit", "--lr", str(sc), "--model", str(tiny_checkpoint), "--device", "cpu", *out, *extra]
    r = CliRunner().invoke(cli, args, env=ENV)
    assert r.exit_code == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert message.format(tmp=tmp_path, labels=labels) in lines[0], lines[0]
    assert r.stdout == ""
    assert sorted(tmp_path.rglob("*")) == before  # nothing written, not even the --out folder


def test_raster_labels_through_the_command(
    cli: typer.Typer, inputs: tuple[Path, Path], tiny_checkpoint: Path, tmp_path: Path
) -> None:
    sc, _ = inputs
    ras = raster_labels(tmp_path / "labels.tif", "EPSG:32618", dtype="int16")
    args = [
        "audit",
        "--lr",
        str(sc),
        "--labels",
        str(ras),
        "--classes",
        "1=town,2=water",
        "--model",
        str(tiny_checkpoint),
        "--device",
        "cpu",
        "--out",
        str(tmp_path / "o"),
    ]
    r = CliRunner().invoke(cli, args, env=ENV)
    assert r.exit_code == 0, r.stderr
    doc = json.loads((tmp_path / "o" / "audit.json").read_text())
    assert [x["label"] for x in doc["rows"]] == ["town", "water", "TOTAL"]
    assert doc["parameters"]["labels_kind"] == "raster"
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["audit.json", "audit.md"]


@pytest.mark.parametrize("case", ["float_raster", "raster_no_crs"])
def test_raster_label_hints_work_when_run(
    cli: typer.Typer, inputs: tuple[Path, Path], tiny_checkpoint: Path, tmp_path: Path, case: str
) -> None:
    """The fix an error suggests is a command the install provides (rasterio's rio): run it as printed, then audit."""
    sc, _ = inputs
    bad = Path(CASES[case][0](tmp_path)[1])
    args = ["audit", "--lr", str(sc), "--model", str(tiny_checkpoint), "--device", "cpu"]
    r = CliRunner().invoke(cli, [*args, "--labels", str(bad)], env=ENV)
    assert r.exit_code == 2
    hint = re.search(r"\(e\.g\. (rio [^,)]*)", r.stderr)
    assert hint, r.stderr
    cmd = shlex.split(hint.group(1))
    subprocess.run(
        [str(Path(sys.executable).with_name("rio")), *cmd[1:]], cwd=bad.parent, check=True, capture_output=True
    )
    fixed = bad.parent / cmd[-1] if cmd[1] == "convert" else bad
    r = CliRunner().invoke(cli, [*args, "--labels", str(fixed), "--out", str(tmp_path / "ok")], env=ENV)
    assert r.exit_code == 0, r.stderr
    assert json.loads((tmp_path / "ok" / "audit.json").read_text())["rows"]
