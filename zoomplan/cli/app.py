"""The root Typer app of ``zoomplan``: its name, help and ``--version``.

Command modules import :data:`app` from here and register on it; :mod:`zoomplan.cli` imports the
command modules (:func:`zoomplan.cli.register`). Nothing here imports a command, so there is no cycle.
"""

from __future__ import annotations

import typer

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
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Plan which high-resolution imagery to buy from free low-resolution scenes (PatchDrop)."""
