"""Checkpoints: round trip, integrity, refusal of code, mismatches."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch

from tests.conftest import tiny_card
from zoomplan.errors import CheckpointError
from zoomplan.models.card import check_compatible
from zoomplan.train.checkpoint import build_component, default_checkpoint_path, load_checkpoint, save_checkpoint


def test_round_trip_rebuilds_identical_models(tiny_checkpoint: Path) -> None:
    ck = load_checkpoint(tiny_checkpoint)
    assert ck.policy_stages == ("pt", "ft1") and ck.final_stage == "ft1"
    assert ck.hr_for_stage("pt") == "hr" and ck.hr_for_stage("ft1") == "hr_ft1"
    pol = ck.build("policy_ft1")
    for k, v in pol.state_dict().items():
        torch.testing.assert_close(v, ck.weights["policy_ft1"][k])
    assert not pol.training


def test_half_precision_storage_is_smaller_and_loads_as_float32(tmp_path: Path) -> None:
    card = tiny_card()
    w = {"hr": build_component(card, "hr").state_dict()}
    full = save_checkpoint(tmp_path / "f.pt", card, w)
    half = save_checkpoint(tmp_path / "h.pt", card, w, half=True)
    assert half.stat().st_size < 0.75 * full.stat().st_size
    ck = load_checkpoint(half)
    assert ck.weights["hr"]["fc.weight"].dtype == torch.float32


def test_tampered_checkpoint_is_refused(tiny_checkpoint: Path, tmp_path: Path) -> None:
    obj = torch.load(tiny_checkpoint, weights_only=True)
    obj["weights"]["policy_ft1"]["fc.bias"] += 1.0
    bad = tmp_path / "tampered.pt"
    torch.save(obj, bad)
    with pytest.raises(CheckpointError, match="does not match its digest"):
        load_checkpoint(bad)


def test_truncated_checkpoint_is_refused(tiny_checkpoint: Path, tmp_path: Path) -> None:
    data = tiny_checkpoint.read_bytes()
    bad = tmp_path / "cut.pt"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or not a zoomplan checkpoint"):
        load_checkpoint(bad)


class _Evil:
    def __reduce__(self):  # noqa: D105
        return (os.system, ("touch PWNED_BY_CHECKPOINT",))


def test_pickle_with_code_is_refused_and_not_executed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "evil.pt"
    with open(bad, "wb") as fh:
        pickle.dump({"format": "zoomplan.checkpoint", "x": _Evil()}, fh)
    with pytest.raises(CheckpointError, match="refused|not a readable"):
        load_checkpoint(bad)
    assert not (tmp_path / "PWNED_BY_CHECKPOINT").exists()


def test_other_version_and_foreign_files_are_refused(tiny_checkpoint: Path, tmp_path: Path) -> None:
    obj = torch.load(tiny_checkpoint, weights_only=True)
    obj["format_version"] = 99
    p = tmp_path / "v99.pt"
    torch.save(obj, p)
    with pytest.raises(CheckpointError, match="format version 99"):
        load_checkpoint(p)
    q = tmp_path / "plain.pt"
    torch.save({"state_dict": {}}, q)
    with pytest.raises(CheckpointError, match="not a zoomplan checkpoint"):
        load_checkpoint(q)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_weights_that_do_not_fit_the_card_are_refused(tmp_path: Path) -> None:
    card = tiny_card()
    other = tiny_card(policy=tiny_card().hr_classifier)  # a different architecture under the policy's name
    w = {"policy_pt": build_component(other, "hr").state_dict()}
    p = save_checkpoint(tmp_path / "mixed.pt", card, w)
    with pytest.raises(CheckpointError, match="do not fit the architecture"):
        load_checkpoint(p).build("policy_pt")


def test_class_mismatch_is_a_clear_error(tiny_checkpoint: Path) -> None:
    card = load_checkpoint(tiny_checkpoint).card
    with pytest.raises(CheckpointError, match="classes"):
        check_compatible(card, class_names=("a", "b"))


def test_shipped_default_model_loads_and_is_small() -> None:
    p = default_checkpoint_path()
    if not p.exists():
        pytest.skip("the default model has not been trained into zoomplan/weights yet")
    assert p.stat().st_size <= 25 * 1024 * 1024
    ck = load_checkpoint(p)
    assert ck.card.lr_pixel_m == 10.0 and ck.card.num_patches == 16
    assert ck.card.sensor("sentinel2_toa").scale == pytest.approx(1e-4)
    assert ck.deploy_stage in ("ft1", "ft2")
