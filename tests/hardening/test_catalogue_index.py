"""docs/inputs.md: every row of the catalogue's tables names a test, and every test it names exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ALIASES = {
    "T_aoi": "tests/hardening/test_catalogue_aoi.py",
    "T_scene": "tests/hardening/test_catalogue_scene.py",
    "T_models": "tests/hardening/test_catalogue_models.py",
    "T_clouds": "tests/geo/test_clouds.py",
    "T_masks": "tests/geo/test_cloud_masks.py",
    "T_cplan": "tests/plan/selection/test_clouds_plan.py",
}
NODE = re.compile(r"`((?:T_\w+)|(?:tests/[\w/]+\.py))::(test_\w+)(?:\[[^\]]*\])?`")


def _tests_in(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")}


def test_every_catalogue_row_names_an_existing_test() -> None:
    rows, header = [], ""
    for line in (ROOT / "docs" / "inputs.md").read_text(encoding="utf-8").splitlines():
        if not line.startswith("|"):
            header = ""
        elif not header:
            header = line
        elif not line.startswith("|---") and header.rstrip().endswith(
            "| test |"
        ):  # the catalogue's tables (not the fuzzing figures)
            rows.append(line)
    assert len(rows) >= 55  # 50 input rows, 9 crash rows when written
    found: dict[Path, set[str]] = {}
    for row in rows:
        nodes = NODE.findall(row)
        assert nodes, f"catalogue row without a test: {row[:100]}"
        for file, name in nodes:
            path = ROOT / ALIASES.get(file, file)
            assert path.is_file(), f"{file} (row {row[:60]}...) is not a test file"
            assert name in found.setdefault(path, _tests_in(path)), f"{path.relative_to(ROOT)}::{name} does not exist"
