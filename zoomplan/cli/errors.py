"""The one error handler of the command line: a :class:`~zoomplan.errors.ZoomplanError` (bad input,
config, checkpoint...) becomes one line ``error: MESSAGE`` on stderr and exit code 2, no traceback.

Every command is decorated with :func:`handle_errors`; :func:`user_errors` is the same rule as a
``with`` block, for the few lines of a command that need it around part of its body.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from typing import Callable, Iterator, TypeVar

import typer

from zoomplan.errors import ZoomplanError

EXIT_CODE = 2

F = TypeVar("F", bound=Callable[..., object])


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn a ZoomplanError raised inside the block into ``error: MESSAGE`` on stderr and exit 2."""
    try:
        yield
    except ZoomplanError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(EXIT_CODE) from None


def handle_errors(command: F) -> F:
    """Decorate a command function with :func:`user_errors` (its signature, hence its options, kept)."""

    @functools.wraps(command)
    def wrapper(*args: object, **kwargs: object) -> object:
        with user_errors():
            return command(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
