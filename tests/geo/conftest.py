"""Fixtures of the scene tests: the plan of the stacked real window every reader is compared with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import typer

from tests.helpers.realdata import plan_reference


@pytest.fixture
def reference(cli: typer.Typer, tmp_path: Path) -> tuple[Path, dict[str, tuple[float, bool]], np.ndarray, Any, Any]:
    """(AOI, patch id -> (probability, selected), pixels, transform, crs) of the plan of the stacked real window."""
    return plan_reference(cli, tmp_path)
