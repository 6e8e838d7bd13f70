"""The package's shape (issue 19): no import cycle, no module over 400 lines, no folder over 12 modules,
and training imported only by training and the CLI.

Every ``import``/``from ... import`` of a module counts, wherever it is: at the top, inside a function,
under ``if TYPE_CHECKING:``. ``from package import name`` is an edge to ``package.name`` when that is
a module, else to ``package``. Importing ``a.b.c`` also runs ``a/__init__`` and ``a/b/__init__``; those
implicit edges are not counted (every module would otherwise sit in a cycle through its package).

Each rule is checked on ``zoomplan/plan`` and on all of ``zoomplan/``; a failure names every offender.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "zoomplan"
MAX_LINES = 400
MAX_MODULES = 12


def _name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES: dict[str, Path] = {_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _imports(name: str, path: Path) -> set[str]:
    """Modules of zoomplan that ``name`` imports, anywhere in its source."""
    is_pkg = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in MODULES else module for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in MODULES:  # import a.b.c where c is a name: the module a.b
                t = t.rpartition(".")[0]
            if t and t != name:
                out.add(t)
    return out


GRAPH: dict[str, set[str]] = {m: _imports(m, p) for m, p in MODULES.items()}


def _cycles(scope: str) -> list[list[str]]:
    """Import cycles among the modules under ``scope`` (one per strongly connected component, Tarjan)."""
    nodes = [m for m in GRAPH if m == scope or m.startswith(scope + ".")]
    inside = set(nodes)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:  # recursion depth is bounded by the module count (~150)
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(GRAPH[v] & inside):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(_loop(sorted(comp), inside))

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return found


def _loop(comp: list[str], inside: set[str]) -> list[str]:
    """One concrete cycle through the first module of a strongly connected component (breadth-first)."""
    start, members = comp[0], set(comp)
    prev: dict[str, str] = {}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(GRAPH[v] & members):
            if w == start:
                path = [v]
                while path[-1] != start:
                    path.append(prev[path[-1]])
                return list(reversed(path)) + [start]
            if w not in prev:
                prev[w] = v
                queue.append(w)
    return comp


def _long_modules(scope: str) -> list[str]:
    out = []
    for m, p in MODULES.items():
        if m == scope or m.startswith(scope + "."):
            n = len(p.read_text(encoding="utf-8").splitlines())
            if n > MAX_LINES:
                out.append(f"{p.relative_to(ROOT.parent)}: {n} lines")
    return out


def _crowded_folders(scope: str) -> list[str]:
    top = ROOT.parent / scope.replace(".", "/")
    out = []
    for d in [top, *sorted(p for p in top.rglob("*") if p.is_dir())]:
        n = len(list(d.glob("*.py")))
        if n > MAX_MODULES:
            out.append(f"{d.relative_to(ROOT.parent)}/: {n} modules")
    return out


def _training_importers(scope: str) -> list[str]:
    allowed = ("zoomplan.train", "zoomplan.cli")
    return [
        f"{m} imports {', '.join(sorted(t for t in GRAPH[m] if t.split('.')[:2] == ['zoomplan', 'train']))}"
        for m in sorted(GRAPH)
        if (m == scope or m.startswith(scope + "."))
        and not any(m == a or m.startswith(a + ".") for a in allowed)
        and any(t == "zoomplan.train" or t.startswith("zoomplan.train.") for t in GRAPH[m])
    ]


def test_the_graph_sees_late_and_type_checking_imports(tmp_path: Path) -> None:
    """The parser counts imports inside functions and under TYPE_CHECKING, and resolves relative ones."""
    path = tmp_path / "sample.py"
    path.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from zoomplan.errors import InputError\n"
        "def f():\n    from zoomplan import atomic\n    import zoomplan.geo.grid\n    from ..orders import pricing\n"
        "    from .types import PatchTable\n"
    )
    assert _imports("zoomplan.plan.export.sample", path) == {
        "zoomplan.errors",
        "zoomplan.atomic",
        "zoomplan.geo.grid",
        "zoomplan.plan.orders.pricing",
        "zoomplan.plan.export",
    }


@pytest.mark.parametrize("scope", ["zoomplan.plan", "zoomplan"])
def test_no_import_cycle(scope: str) -> None:
    cycles = _cycles(scope)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("scope", ["zoomplan.plan", "zoomplan"])
def test_no_module_over_400_lines(scope: str) -> None:
    long = _long_modules(scope)
    assert not long, "modules over 400 lines:\n" + "\n".join(long)


@pytest.mark.parametrize("scope", ["zoomplan.plan", "zoomplan"])
def test_no_folder_over_12_modules(scope: str) -> None:
    crowded = _crowded_folders(scope)
    assert not crowded, "folders with more than 12 modules:\n" + "\n".join(crowded)


@pytest.mark.parametrize("scope", ["zoomplan.plan", "zoomplan.models", "zoomplan"])
def test_only_training_and_the_cli_import_training(scope: str) -> None:
    bad = _training_importers(scope)
    assert not bad, "imports of zoomplan.train outside train/ and cli/:\n" + "\n".join(bad)
