"""The ``zoomplan`` command line: a thin Typer layer over the library.

This package is the only place that imports typer and rich. Each command lives in its own module and
registers itself on :data:`app`; a command parses options, calls one library function and renders the
result. Errors derived from :class:`zoomplan.errors.ZoomplanError` are printed as one line on stderr
with exit code 2; nothing is written.
"""

from __future__ import annotations

import logging
import sys

import typer

from zoomplan.errors import ZoomplanError

app = typer.Typer(
    name="zoomplan",
    help="Plan which high-resolution imagery to buy from free low-resolution scenes (PatchDrop).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from zoomplan import __version__

        typer.echo(f"zoomplan {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit.")) -> None:
    """Plan which high-resolution imagery to buy from free low-resolution scenes (PatchDrop)."""


def _register() -> None:
    # Imported for their side effect of adding commands to `app`.
    from zoomplan.cli import evaluate, train  # noqa: F401

    import importlib
    import importlib.util

    for name in ("plan", "vendors", "export", "budget", "audit"):  # commands that land in their own change
        if importlib.util.find_spec(f"zoomplan.cli.{name}") is not None:
            importlib.import_module(f"zoomplan.cli.{name}")


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    _register()
    try:
        app(args=argv, standalone_mode=True)
    except ZoomplanError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
