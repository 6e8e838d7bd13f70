"""Static check of zoomplan's sources: nothing deserialises code from a file it was handed.

Fails on ``torch.load`` without ``weights_only=True``, on ``eval`` / ``exec`` / ``compile``, on
importing ``marshal``, ``shelve``, ``dill``, ``cloudpickle`` or ``joblib``, on any use of ``pickle``
other than naming its exception classes (``pickle.UnpicklingError`` is how a refused checkpoint is
recognised), and on ``yaml.load`` / ``yaml.unsafe_load`` without ``SafeLoader``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "zoomplan"
FORBIDDEN_MODULES = {"marshal", "shelve", "dill", "cloudpickle", "joblib"}
PICKLE_OK = {"UnpicklingError", "PicklingError", "PickleError"}
FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__"}


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def problems(source: str, name: str = "<string>") -> list[str]:
    """Unsafe constructs in ``source``, one string each ('file:line: what')."""
    tree = ast.parse(source, filename=name)
    out: list[str] = []
    pickle_names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                root = a.name.split(".")[0]
                if root in FORBIDDEN_MODULES:
                    out.append(f"{name}:{node.lineno}: imports {a.name}")
                if root in ("pickle", "_pickle", "cPickle"):
                    pickle_names.add(a.asname or a.name)
        elif isinstance(node, ast.ImportFrom):
            root = (node.module or "").split(".")[0]
            if root in FORBIDDEN_MODULES:
                out.append(f"{name}:{node.lineno}: imports from {node.module}")
            if root in ("pickle", "_pickle", "cPickle"):
                bad = [a.name for a in node.names if a.name not in PICKLE_OK]
                if bad:
                    out.append(f"{name}:{node.lineno}: imports {', '.join(bad)} from pickle")
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in pickle_names
            and node.attr not in PICKLE_OK
        ):
            out.append(f"{name}:{node.lineno}: uses pickle.{node.attr}")
        if not isinstance(node, ast.Call):
            continue
        fn = _dotted(node.func)
        kw = {k.arg: k.value for k in node.keywords if k.arg}
        if fn in FORBIDDEN_CALLS or fn.endswith(".eval") and fn.split(".")[0] == "builtins":
            out.append(f"{name}:{node.lineno}: calls {fn}()")
        if fn == "torch.load" or fn.endswith(".torch.load"):
            w = kw.get("weights_only")
            if not (isinstance(w, ast.Constant) and w.value is True):
                out.append(f"{name}:{node.lineno}: torch.load without weights_only=True")
        if fn in ("yaml.load", "yaml.load_all", "yaml.unsafe_load", "yaml.full_load"):
            loader = kw.get("Loader") or (node.args[1] if len(node.args) > 1 else None)
            if fn in ("yaml.unsafe_load", "yaml.full_load") or loader is None or "Safe" not in _dotted(loader):
                out.append(f"{name}:{node.lineno}: {fn} without SafeLoader")
    return out


def test_zoomplan_sources_have_no_unsafe_loads() -> None:
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 20
    found = [p for f in files for p in problems(f.read_text(encoding="utf-8"), str(f.relative_to(PACKAGE.parent)))]
    assert not found, "\n".join(found)


@pytest.mark.parametrize(
    ("source", "what"),
    [
        ("import torch\ntorch.load('m.pt')\n", "without weights_only=True"),
        ("import torch\ntorch.load('m.pt', weights_only=False)\n", "without weights_only=True"),
        ("eval(input())\n", "calls eval()"),
        ("exec(open('x').read())\n", "calls exec()"),
        ("import pickle\npickle.load(open('x', 'rb'))\n", "uses pickle.load"),
        ("import pickle as p\np.loads(b'')\n", "uses pickle.loads"),
        ("from pickle import Unpickler\n", "imports Unpickler from pickle"),
        ("import marshal\n", "imports marshal"),
        ("import shelve\n", "imports shelve"),
        ("import dill\n", "imports dill"),
        ("import yaml\nyaml.load(open('x'))\n", "without SafeLoader"),
        ("import yaml\nyaml.load(open('x'), Loader=yaml.Loader)\n", "without SafeLoader"),
    ],
)
def test_the_scanner_catches_each_pattern(source: str, what: str) -> None:
    found = problems(source)
    assert found and any(what in f for f in found), found


@pytest.mark.parametrize(
    "source",
    [
        "import torch\ntorch.load('m.pt', map_location='cpu', weights_only=True)\n",
        "import pickle\ntry:\n    pass\nexcept pickle.UnpicklingError:\n    pass\n",
        "import yaml\nyaml.load(open('x'), Loader=yaml.SafeLoader)\n",
        "model.eval()\n",
    ],
)
def test_the_scanner_allows_safe_patterns(source: str) -> None:
    assert problems(source) == []
