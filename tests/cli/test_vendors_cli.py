"""``zoomplan vendors``: the catalogue as a table or JSON on stdout; a bad catalogue is one line, exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from zoomplan.plan.orders.pricing import default_catalogue, load_vendors


def test_table_lists_every_profile_and_column(cli: typer.Typer) -> None:
    r = CliRunner().invoke(cli, ["vendors"])
    assert r.exit_code == 0, r.stderr
    for name in load_vendors():
        assert name in r.stdout
    for col in (
        "name",
        "product",
        "resolution m",
        "kind",
        "USD/km2",
        "min km2",
        "min width m",
        "max vertices",
        "multipolygon",
        "cloud %",
        "off-nadir deg",
        "source",
        "as of",
    ):
        assert col in r.stdout
    assert "2026-11" in r.stdout and "tasking" in r.stdout and "archive" in r.stdout


def test_json_matches_the_catalogue(cli: typer.Typer) -> None:
    r = CliRunner().invoke(cli, ["vendors", "--json"])
    assert r.exit_code == 0
    got = json.loads(r.stdout)
    want = load_vendors()
    assert [p["name"] for p in got] == list(want)
    for p in got:
        v = want[p["name"]]
        assert p["price_per_km2"] == v.price_per_km2 and p["max_vertices"] == v.max_vertices and p["as_of"] == v.as_of
        assert p["kind"] in ("archive", "tasking") and p["source"]


def test_own_catalogue(cli: typer.Typer, tmp_path: Path) -> None:
    text = default_catalogue().read_text()
    mine = tmp_path / "mine.toml"
    mine.write_text(text.replace('name = "clip-30cm"', 'name = "acme-30cm"'))
    r = CliRunner().invoke(cli, ["vendors", "--vendors", str(mine), "--json"])
    assert r.exit_code == 0 and "acme-30cm" in [p["name"] for p in json.loads(r.stdout)]


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "cannot be read"), ("[[vendor]\n", "not valid TOML"), ('[[vendor]]\nname = "x"\n', "missing field(s)")],
)
def test_bad_catalogue_is_one_line_exit_2(cli: typer.Typer, tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "v.toml"
    if content is not None:
        path.write_text(content)
    r = CliRunner().invoke(cli, ["vendors", "--vendors", str(path)])
    assert r.exit_code == 2 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0] and str(path) in lines[0]
