"""The ``zoomplan`` command line: a thin Typer layer over the library.

This package is the only place that imports typer and rich. :mod:`zoomplan.cli.app` makes the root
:data:`app`; each command lives in its own module of :mod:`zoomplan.cli.commands`, registers itself on it and takes its
shared options
from :mod:`zoomplan.cli.options`; :func:`register` imports the command modules. Errors derived from
:class:`zoomplan.errors.ZoomplanError` are printed as one line on stderr with exit code 2
(:mod:`zoomplan.cli.errors`); nothing is written.
"""

from __future__ import annotations

import logging
import sys

from zoomplan.cli.app import app

COMMANDS = ("evaluate", "train", "plan", "vendors", "export", "budget", "audit")  # the order --help lists them in

__all__ = ["COMMANDS", "app", "main", "register"]


def register() -> None:
    """Import every command module, each adding its command to :data:`app` (idempotent)."""
    import importlib

    for name in COMMANDS:
        importlib.import_module(f"zoomplan.cli.commands.{name}")


_register = register  # the name tests and tools used before register() was public


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    register()
    app(args=argv, standalone_mode=True)
