"""``zoomplan --version`` and help texts that render literally."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from zoomplan import __version__


def test_version_prints_the_installed_version(cli: typer.Typer) -> None:
    r = CliRunner().invoke(cli, ["--version"])
    assert r.exit_code == 0
    assert r.stdout.strip() == f"zoomplan {__version__}" and __version__ != "0.0.0+unknown"


def test_plan_help_shows_the_dask_extra_literally(cli: typer.Typer) -> None:
    r = CliRunner().invoke(cli, ["plan", "--help"], env={"COLUMNS": "200"})
    assert r.exit_code == 0
    assert "pip install 'zoomplan[dask]'" in r.stdout  # Rich markup would swallow "[dask]"
