"""PlanRequest (issue 19): one frozen request, validated once when made, recorded in the order's summary."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from zoomplan.errors import ConfigError, InputError
from zoomplan.plan.pipeline import plan
from zoomplan.plan.request import HOW_AND_WHERE, PlanRequest


def test_values_are_normalised_and_frozen() -> None:
    r = PlanRequest.of("aoi.geojson", ["a.tif", Path("b.tif")], bands="B04, B03,B02", out="-", cloud_masks=["m.tif"])
    assert r.aoi == Path("aoi.geojson") and r.scenes == (Path("a.tif"), Path("b.tif"))
    assert r.bands == ("B04", "B03", "B02") and r.out == "-" and r.cloud_masks == (Path("m.tif"),)
    assert r.effective_threshold == 0.5
    assert PlanRequest.of("a", ["s"], budget_usd=100.0).effective_threshold == 0.0  # a budget ranks every patch
    assert PlanRequest.of("a", ["s"], threshold=0.7, max_fraction=0.2).effective_threshold == 0.7
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.threshold = 0.9  # type: ignore[misc]


@pytest.mark.parametrize(
    ("options", "error", "words"),
    [
        ({"threshold": -0.1}, ConfigError, "--threshold -0.1 is negative"),
        ({"budget_usd": 0.0}, ConfigError, "--budget 0.0 USD is not positive"),
        ({"max_fraction": 1.5}, ConfigError, "--max-fraction 1.5 is outside (0, 1]"),
        ({"threads": 0}, ConfigError, "--threads must be a positive integer"),
        ({"batch_size": 0}, ConfigError, "batch_size and block_tiles must be positive"),
        ({"cloudy": "maybe"}, ConfigError, "--cloudy 'maybe' is not one of skip, buy, ask"),
    ],
)
def test_bad_values_are_refused_when_the_request_is_made(options: dict, error: type, words: str) -> None:
    with pytest.raises(error, match=None) as exc:
        PlanRequest.of("aoi.geojson", ["a.tif"], **options)
    assert words in str(exc.value) and "\n" not in str(exc.value)


def test_no_scene_and_unknown_options_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no LR scene given"):
        PlanRequest.of("aoi.geojson", [])
    with pytest.raises(TypeError):
        plan(tmp_path / "aoi.geojson", [tmp_path / "a.tif"], treshold=0.5)  # a typo is not silently ignored


def test_record_is_what_was_asked() -> None:
    r = PlanRequest.of("aoi.geojson", ["a.tif"], vendor="clip-50cm", device="cpu", threads=2, resume=True, out="o.json")
    rec = r.record()
    assert json.loads(json.dumps(rec)) == rec  # JSON-ready
    assert rec["vendor"] == "clip-50cm" and rec["scenes"] == ["a.tif"] and rec["cloud_masks"] == []
    assert not set(HOW_AND_WHERE) & set(rec)  # how it ran and where it wrote do not change the plan
    assert set(rec) | set(HOW_AND_WHERE) == {f.name for f in dataclasses.fields(PlanRequest)}
