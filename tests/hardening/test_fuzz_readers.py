"""Fuzzing the AOI reader (GeoJSON, KML) and the order-file reader: a clean error every time, never a traceback.

The cases come from ``benchmarks/fuzz_readers.py`` (seeded mutations of valid files); this test runs
the first few hundred, time-boxed, and prints how many ran. The script runs thousands (docs/inputs.md).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
CASES = 450
TIME_BOX_S = 10.0


def _fuzz_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fuzz_readers", ROOT / "benchmarks" / "fuzz_readers.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["fuzz_readers"] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.filterwarnings("ignore::RuntimeWarning", "ignore::UserWarning")
def test_mutated_files_end_in_a_zoomplan_error_or_valid_polygons(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fz = _fuzz_module()
    bugs: list[str] = []

    def note(case: object, outcome: str, detail: str) -> None:
        if outcome == "BUG":
            bugs.append(f"case {case.index} ({case.reader}, {case.mutation}): {detail}")  # type: ignore[attr-defined]

    counts = fz.fuzz(CASES, seed=0, time_limit_s=TIME_BOX_S, workdir=tmp_path, on_case=note)
    total = sum(counts.values())
    with capsys.disabled():
        print(
            f"\nfuzz_readers: {total} cases ran: " + ", ".join(f"{r}/{o} {n}" for (r, o), n in sorted(counts.items()))
        )
    assert not bugs, "\n".join(bugs[:20])
    assert total >= 150, f"only {total} cases ran in {TIME_BOX_S} s"
    readers = {r for r, _ in counts}
    assert readers == {"aoi-geojson", "aoi-kml", "order"}
    assert all(counts[(r, "ok")] > 0 for r in readers)  # the seeds and mild mutations still read


def test_seed_files_read_as_expected(tmp_path: Path) -> None:
    fz = _fuzz_module()
    from zoomplan.geo.aoi import read_aoi
    from zoomplan.plan.export.vendor_formats import read_order_file

    (tmp_path / "a.geojson").write_text(fz._dump(fz.SEED_AOI))
    (tmp_path / "a.kml").write_text(fz.SEED_KML)
    (tmp_path / "o.geojson").write_text(fz._dump(fz.SEED_ORDER))
    assert len(read_aoi(tmp_path / "a.geojson")) == 2
    kml = read_aoi(tmp_path / "a.kml")
    assert len(kml) == 2 and len(kml.geoms[0].interiors) == 1
    assert len(read_order_file(tmp_path / "o.geojson").orders) == 2
