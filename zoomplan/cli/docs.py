"""The command-line reference, docs/cli.md, generated from the Typer app.

    python -m zoomplan.cli.docs > docs/cli.md

Every command and subcommand with its usage, help, arguments and options, built from the command
objects Typer makes (``typer.main.get_command``), not from a terminal: the text is wrapped at a fixed
width, so the file is the same on every machine. Help texts are written as their authors meant them to
read: the one Rich markup escape they use (a backslash before ``[``, so that Rich prints ``[dask]``) is
removed and nothing else is interpreted; each command's text sits in a fenced block, where Markdown
renders it literally. ``tests/cli/test_cli_docs.py`` fails when docs/cli.md is not current.
"""

from __future__ import annotations

import re
import sys
import textwrap
from typing import Any

import typer

WIDTH = 100
COMMAND = "python -m zoomplan.cli.docs > docs/cli.md"
_RICH_ESCAPE = re.compile(r"\\(\[)")


def literal(text: str | None) -> str:
    """A help text as it reads: Rich's escape of ``[`` removed, whitespace runs collapsed."""
    return " ".join(_RICH_ESCAPE.sub(r"\1", text or "").split())


def _wrap(text: str, indent: int) -> list[str]:
    pad = " " * indent
    return textwrap.wrap(
        text, WIDTH, initial_indent=pad, subsequent_indent=pad, break_on_hyphens=False, break_long_words=False
    ) or [pad.rstrip()]


def _param_lines(param: Any, ctx: typer.Context) -> list[str]:
    """``--name <type>`` on one line, then its help, default and 'required' wrapped below it."""
    record = param.get_help_record(ctx)  # (names with type, help + "  [default: ...; required]")
    if record is None:  # hidden
        return []
    names, text = record
    raw = param.help or ""
    extra = text[len(raw) :] if text.startswith(raw) else text
    if param.param_type_name == "argument":
        names = param.name.upper() + names[len(param.name) :]
    # "[default: 64]" stays on one line: its spaces are not break points while wrapping
    body = " ".join(s for s in (literal(raw), literal(extra).replace(" ", "\0")) if s)
    return ["  " + names, *(line.replace("\0", " ") for line in (_wrap(body, 6) if body else []))]


def _usage(cmd: Any, ctx: typer.Context) -> str:
    """``Usage: zoomplan plan [OPTIONS] AOI``: arguments in capitals, optional ones in brackets."""
    args = [p for p in cmd.get_params(ctx) if p.param_type_name == "argument"]
    usage = "[OPTIONS]" if any(p.param_type_name == "option" for p in cmd.get_params(ctx)) else ""
    for a in args:
        usage += f" {a.name.upper()}" if a.required else f" [{a.name.upper()}]"
    if getattr(cmd, "commands", None):
        usage += " COMMAND [ARGS]..."
    return f"Usage: {ctx.command_path} {usage.strip()}".rstrip()


def _section(cmd: Any, ctx: typer.Context, level: int) -> list[str]:
    lines = [f"{'#' * level} `{ctx.command_path}`", "", "```text", _usage(cmd, ctx), ""]
    if cmd.help:
        for para in re.split(r"\n\s*\n", cmd.help.strip()):
            lines += [*_wrap(literal(para), 2), ""]
    params = [p for p in cmd.get_params(ctx) if not getattr(p, "hidden", False)]
    for title, kind in (("Arguments", "argument"), ("Options", "option")):
        group = [p for p in params if p.param_type_name == kind]
        if group:
            lines.append(f"{title}:")
            for p in group:
                lines += _param_lines(p, ctx)
            lines.append("")
    subs = getattr(cmd, "commands", None) or {}
    if subs:
        lines.append("Commands:")
        width = max(len(n) for n in subs) + 4
        for name, sub in subs.items():
            first = literal(sub.help or "").split(". ")[0].rstrip(".")
            wrapped = _wrap(first, width)
            lines += [f"  {name.ljust(width - 2)}{wrapped[0][width:]}", *wrapped[1:]]
        lines.append("")
    while lines[-1] == "":
        lines.pop()
    lines += ["```", ""]
    for name, sub in subs.items():
        lines += _section(sub, typer.Context(sub, info_name=name, parent=ctx), level + 1)
    return lines


def render() -> str:
    """docs/cli.md's text, from the app with every command registered."""
    from zoomplan.cli import app, register

    register()
    root = typer.main.get_command(app)
    ctx = typer.Context(root, info_name="zoomplan")
    head = [
        "# Command-line reference",
        "",
        f"<!-- Generated from the Typer app by `{COMMAND}`; do not edit by hand.",
        "     tests/cli/test_cli_docs.py checks that it is current. -->",
        "",
        "Every command of `zoomplan`, with the text its `--help` prints. What the commands do, with examples",
        "and measured figures: [the docs index](README.md).",
        "",
    ]
    return "\n".join(head + _section(root, ctx, 2)).rstrip("\n") + "\n"


def main() -> None:
    sys.stdout.write(render())


if __name__ == "__main__":
    main()
