"""docs/cli.md, the generated command-line reference: current, complete, the same on every terminal, and
help texts that read as written, in the reference and in the terminal's ``--help``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest
import typer
from rich.text import Text

from zoomplan.cli.docs import COMMAND, literal, render

CLI_MD = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def _commands(cmd: Any, path: str) -> Iterator[tuple[str, Any]]:
    yield path, cmd
    for name, sub in (getattr(cmd, "commands", None) or {}).items():
        yield from _commands(sub, f"{path} {name}")


@pytest.fixture(scope="module")
def root(cli: typer.Typer) -> Any:
    return typer.main.get_command(cli)


def test_cli_md_is_current() -> None:
    assert CLI_MD.read_text(encoding="utf-8") == render(), f"docs/cli.md is out of date: regenerate it with `{COMMAND}`"


def test_every_command_and_option_is_documented(root: Any) -> None:
    text = render()
    sections = text.split("\n#")
    paths = [p for p, _ in _commands(root, "zoomplan")]
    assert len(paths) >= 10  # zoomplan, its commands, train's subcommands
    for path, cmd in _commands(root, "zoomplan"):
        section = next((s for s in sections if s.lstrip("#").startswith(f" `{path}`")), None)
        assert section is not None, f"no section for {path}"
        for p in cmd.params:
            if p.param_type_name == "option":
                assert all(f"{o}" in section for o in p.opts), f"{path}: {p.opts} missing"
            else:
                assert p.name.upper() in section
            if p.help:
                assert " ".join(literal(p.help).split()[:4]) in " ".join(section.split()), (
                    f"{path} {p.name}: help missing"
                )


def test_rendering_does_not_depend_on_the_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "40")
    narrow = render()
    monkeypatch.setenv("COLUMNS", "250")
    assert render() == narrow
    assert max(len(line) for line in narrow.splitlines() if not line.startswith("<!--")) <= 110


def test_help_texts_render_literally_in_the_terminal(root: Any) -> None:
    """What Rich prints for each help text (Typer's markup mode) is the text as written: no bracketed word,
    such as ``[dask]`` or ``[data.sources.NAME]``, is swallowed as a markup tag."""
    texts = []
    for path, cmd in _commands(root, "zoomplan"):
        texts += [(path, cmd.help)] + [(f"{path} {p.name}", p.help) for p in cmd.params]
    for where, help_text in texts:
        if help_text:
            assert " ".join(Text.from_markup(help_text).plain.split()) == literal(help_text), where


def test_literal_removes_only_the_escape() -> None:
    assert literal("pip install 'zoomplan\\[dask]'") == "pip install 'zoomplan[dask]'"
    assert literal("a <class>/<image>  *b* [c]\n d") == "a <class>/<image> *b* [c] d"
