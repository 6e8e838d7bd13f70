"""Input catalogue, models and configs (docs/inputs.md): checkpoints and vendor catalogues through ``zoomplan plan``."""
# ruff: noqa: F811 - the fixtures imported from catalogue are redefined as test arguments

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest
import shapely
import torch

from tests.hardening.catalogue import X0, Y0, assert_refused, run_plan, scene  # noqa: F401 (fixtures)
from tests.helpers.synth import write_aoi

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def aoi(tmp_path: Path) -> Path:
    return write_aoi(
        tmp_path / "aoi.gpkg", [shapely.box(X0 + 40, Y0 - 400, X0 + 360, Y0 - 80)], "EPSG:32618", ids=["a"]
    )


class _Evil:
    """Unpickling this runs ``touch PWNED`` in the current folder."""

    def __reduce__(self):  # noqa: D105
        return (os.system, ("touch PWNED",))


def test_checkpoint_from_another_version_is_refused(
    run_plan: Callable, scene: Path, aoi: Path, tiny_checkpoint: Path, tmp_path: Path
) -> None:
    obj = torch.load(tiny_checkpoint, weights_only=True)
    obj["format_version"] = 99
    p = tmp_path / "v99.pt"
    torch.save(obj, p)
    r, out = run_plan(aoi, scene, model=p)
    assert_refused(
        r, out, str(p), "checkpoint format version 99 is not supported", "retrain or use the matching zoomplan release"
    )


def test_tampered_checkpoint_is_refused(
    run_plan: Callable, scene: Path, aoi: Path, tiny_checkpoint: Path, tmp_path: Path
) -> None:
    obj = torch.load(tiny_checkpoint, weights_only=True)
    obj["weights"]["policy_ft1"]["fc.bias"] += 0.5
    p = tmp_path / "tampered.pt"
    torch.save(obj, p)
    r, out = run_plan(aoi, scene, model=p)
    assert_refused(r, out, str(p), "does not match its digest", "use an unmodified copy")


def test_truncated_checkpoint_is_refused(
    run_plan: Callable, scene: Path, aoi: Path, tiny_checkpoint: Path, tmp_path: Path
) -> None:
    p = tmp_path / "cut.pt"
    p.write_bytes(tiny_checkpoint.read_bytes()[:5000])
    r, out = run_plan(aoi, scene, model=p)
    assert_refused(r, out, str(p), "not a readable checkpoint", "truncated or not a zoomplan checkpoint")


def test_foreign_checkpoint_is_refused(run_plan: Callable, scene: Path, aoi: Path, tmp_path: Path) -> None:
    p = tmp_path / "resnet.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, p)
    r, out = run_plan(aoi, scene, model=p)
    assert_refused(r, out, str(p), "not a zoomplan checkpoint", "pass a file written by 'zoomplan train'")


@pytest.mark.parametrize("how", ["pickle", "torch.save"])
def test_pickle_with_code_is_refused_not_run(
    run_plan: Callable, scene: Path, aoi: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    monkeypatch.chdir(tmp_path)
    p = tmp_path / "evil.pt"
    payload = {"format": "zoomplan.checkpoint", "format_version": 1, "x": _Evil()}
    if how == "pickle":
        with open(p, "wb") as fh:
            pickle.dump(payload, fh)
    else:
        torch.save(payload, p)
    r, out = run_plan(aoi, scene, model=p)
    line = assert_refused(r, out, str(p))
    assert "refused to load" in line or "not a readable checkpoint" in line
    assert not (tmp_path / "PWNED").exists()


def test_pickle_with_code_through_the_real_command(scene: Path, aoi: Path, tmp_path: Path) -> None:
    """The installed ``zoomplan`` entry point, in a subprocess: exit 2, one line, no code run."""
    p = tmp_path / "evil.pt"
    torch.save({"format": "zoomplan.checkpoint", "x": _Evil()}, p)
    exe = Path(sys.executable).with_name("zoomplan")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "zoomplan.cli"]
    out = tmp_path / "out" / "order.geojson"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [*cmd, "plan", str(aoi), "--lr", str(scene), "--model", str(p), "--out", str(out), "--device", "cpu"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "refused to load" in lines[0], proc.stderr
    assert proc.stdout == "" and not out.exists() and not (tmp_path / "PWNED").exists()


PROFILE = """[[vendor]]
name = "acme"
product = "30 cm archive"
resolution_m = 0.3
kind = "archive"
currency = "USD"
{price}min_order_km2 = 0.1
min_width_m = 0
max_vertices = 1000
allows_multipolygon = true
cloud_max_pct = 20
off_nadir_max_deg = 30
source = "test"
as_of = "2026-11"
"""


@pytest.mark.parametrize(
    ("price", "needles"),
    [
        ("", ("profile 'acme': missing field(s) price_per_km2", "every profile needs all of")),
        ("price_per_km2 = -3.0\n", ("profile 'acme': field 'price_per_km2' is -3.0", "set a finite number >= 0")),
        ("price_per_km2 = nan\n", ("field 'price_per_km2' is nan", "set a finite number >= 0")),
        ('price_per_km2 = "12"\n', ("field 'price_per_km2' is '12'", "set a finite number >= 0")),
    ],
    ids=["missing", "negative", "nan", "string"],
)
def test_vendors_toml_with_bad_prices_is_refused(
    run_plan: Callable, scene: Path, aoi: Path, tmp_path: Path, price: str, needles: tuple[str, ...]
) -> None:
    v = tmp_path / "vendors.toml"
    v.write_text(PROFILE.format(price=price))
    r, out = run_plan(aoi, scene, "--vendors", str(v), "--vendor", "acme")
    assert_refused(r, out, f"vendors file {v}", *needles)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[[vendor]\nname = ", "not valid TOML"),
        ("", "no [[vendor]] tables found"),
        (PROFILE.format(price="price_per_km2 = 5\n") * 2, "profile 'acme' is defined twice"),
    ],
    ids=["syntax", "empty", "duplicate"],
)
def test_vendors_toml_malformed_is_refused(
    run_plan: Callable, scene: Path, aoi: Path, tmp_path: Path, text: str, needle: str
) -> None:
    v = tmp_path / "vendors.toml"
    v.write_text(text)
    r, out = run_plan(aoi, scene, "--vendors", str(v), "--vendor", "acme")
    assert_refused(r, out, f"vendors file {v}", needle)
