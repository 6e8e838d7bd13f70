"""`zoomplan train joint` and `zoomplan evaluate --source` end to end on two generated sources (tiny models, CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from zoomplan.cli import app, register
from zoomplan.data.synthetic import make_folder_dataset
from zoomplan.errors import ConfigError
from zoomplan.train.checkpoint import load_checkpoint
from zoomplan.train.config import load_config

TINY = Path(__file__).with_name("tiny_recipe.toml").read_text()
runner = CliRunner()
register()


def _recipe(tmp: Path, policy_init: str, ft2_epochs: int = 0) -> Path:
    """The tiny recipe as a joint one: two sources, the PSF, radiometry, a per-band mapping, and Ft-2's policy_init."""
    text = TINY.replace("[model]\n", "[model]\nlr_psf_sigma = 0.5\n", 1)
    text = text.replace(
        "[sensor.sentinel2_toa]\nscale = 1e-4\ngain = 5.0\n",
        "[model.lr_radiometry]\ngain = [0.8, 1.2]\nhaze = [0.0, 0.05]\nnoise = 0.01\n\n"
        "[sensor.sentinel2_toa]\nscale = 1e-4\noffset = [-0.03, -0.05, -0.08]\ngain = [5.0, 6.5, 8.0]\n",
    )
    text = text.replace(
        "[stage.ft2]\nepochs = 1\n", f'[stage.ft2]\nepochs = {ft2_epochs}\npolicy_init = "{policy_init}"\n'
    )
    text += (
        '\n[data.sources.a]\npixel_m = 2.5\nlabels = { field = "field", town = "town", water = "water" }\n'
        '[data.sources.b]\npixel_m = 1.25\nlabels = { field = "field", town = "town", water = "water" }\n'
    )
    p = tmp / f"joint-{policy_init}.toml"
    p.write_text(text)
    return p


def _sources(tmp: Path) -> list[str]:
    """Two UC Merced-like folders (with their seeded split CSVs) of 80 m images at 2.5 m and 1.25 m."""
    out = []
    for name, size in (("a", 32), ("b", 64)):
        root = make_folder_dataset(tmp / name, per_class=5, size=size, seed=len(out))
        out += ["--source", f"{name}={root}"]
    return out


def _n_test(src: list[str]) -> int:
    return sum(
        line.split(",")[2] == "test"
        for p in src[1::2]
        for line in (Path(p.split("=", 1)[1]) / "splits.csv").read_text().splitlines()[1:]
    )


@pytest.mark.parametrize("policy_init", ["previous", "fresh", "lr"])
def test_train_joint_every_stage_then_evaluate(tmp_path: Path, policy_init: str) -> None:
    torch.set_num_threads(1)
    out = tmp_path / "run"
    src = _sources(tmp_path)
    res = runner.invoke(
        app,
        ["train", "joint", *src, "--config", str(_recipe(tmp_path, policy_init)), "--out", str(out), "--device", "cpu"],
        catch_exceptions=False,
    )
    assert res.exit_code == 0, res.output
    ck = load_checkpoint(out / "model.pt")
    card = ck.card
    assert card.dataset == "joint" and card.class_names == ("field", "town", "water") and card.lr_psf_sigma == 0.5
    assert card.sensor("sentinel2_toa").gain == (5.0, 6.5, 8.0)
    same = all(torch.equal(ck.weights["policy_ft2"][k], ck.weights["policy_ft1"][k]) for k in ck.weights["policy_ft1"])
    # Ft-2 with 0 epochs keeps its initial policy: Ft-1's when continued, a newly initialised one when fresh,
    # one whose body is the LR classifier's (and whose output layer is new) when "lr".
    assert same == (policy_init == "previous")
    body = [k for k in ck.weights["lr"] if not k.startswith("fc.")]
    from_lr = all(torch.equal(ck.weights["policy_ft2"][k], ck.weights["lr"][k]) for k in body)
    assert from_lr == (policy_init == "lr")
    res = runner.invoke(
        app,
        ["evaluate", str(out / "model.pt"), *src, "--split", "test", "--out", str(tmp_path / "ev"), "--device", "cpu"],
        catch_exceptions=False,
    )
    assert res.exit_code == 0, res.output
    table = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    assert table["n_images"] == _n_test(src) > 0  # every test image of both sources


def test_evaluate_a_joint_model_without_sources_says_how(tmp_path: Path) -> None:
    out = tmp_path / "run"
    src = _sources(tmp_path)
    runner.invoke(
        app,
        ["train", "joint", *src, "--config", str(_recipe(tmp_path, "fresh")), "--out", str(out), "--stage", "hr"],
        catch_exceptions=False,
    )
    res = runner.invoke(app, ["evaluate", str(out / "model.pt"), "--split", "test"])
    assert res.exit_code == 2 and res.stderr.splitlines()[-1].startswith("error: ")  # one line on stderr, exit code 2
    assert "trained on a joint dataset: pass --source NAME=DIR for each of its sources (a, b)" in res.stderr


def test_policy_init_must_be_known(tmp_path: Path) -> None:
    p = _recipe(tmp_path, "warm")
    with pytest.raises(ConfigError, match="policy_init must be one of 'previous', 'fresh', 'lr'"):
        load_config(p)
    p.write_text(p.read_text().replace('policy_init = "warm"', 'policy_init = "lr"\ncost_power = 0'))
    with pytest.raises(ConfigError, match="cost_power must be > 0"):
        load_config(p)


def test_policy_init_lr_needs_the_lr_classifiers_network(tmp_path: Path) -> None:
    src = _sources(tmp_path)
    p = _recipe(tmp_path, "lr")
    p.write_text(
        p.read_text().replace(
            'policy = { name = "resnet8", width = 4, stem = "small" }',
            'policy = { name = "resnet8", width = 8, stem = "small" }',
        )
    )
    res = runner.invoke(app, ["train", "joint", *src, "--config", str(p), "--out", str(tmp_path / "run")])
    assert res.exit_code == 2 and res.stderr.splitlines()[-1].startswith("error: ")
    assert "policy_init = 'lr' needs [model].policy to be the same network as [model].lr_classifier" in res.stderr


def test_per_band_mapping_needs_one_value_per_band(tmp_path: Path) -> None:
    p = _recipe(tmp_path, "fresh")
    p.write_text(p.read_text().replace("gain = [5.0, 6.5, 8.0]", "gain = [5.0, 6.5]"))
    with pytest.raises(ConfigError, match=r"gain has 2 values for 3 bands"):
        load_config(p)


def test_train_joint_says_what_skip_smaller_left_out(tmp_path: Path) -> None:
    src = _sources(tmp_path)
    p = _recipe(tmp_path, "fresh")
    # Source b's 64 px images at 1 m cover 64 m, under 90% of the 80 m tile: left out, and said so.
    p.write_text(
        p.read_text().replace(
            "[data.sources.b]\npixel_m = 1.25\n", "[data.sources.b]\npixel_m = 1.0\nskip_smaller = true\n"
        )
    )
    res = runner.invoke(
        app,
        ["train", "joint", *src, "--config", str(p), "--out", str(tmp_path / "run"), "--stage", "hr"],
        catch_exceptions=False,
    )
    assert res.exit_code == 0, res.output
    n_b = [
        sum(
            line.split(",")[2] == s
            for line in (Path(src[3].split("=", 1)[1]) / "splits.csv").read_text().splitlines()[1:]
        )
        for s in ("train", "val")
    ]
    assert f"left out as smaller than the 80 m tile (skip_smaller): {n_b[0]} train / {n_b[1]} val images" in " ".join(
        res.output.split()
    )


def test_a_patch_head_policy_starts_from_the_lr_body_and_trains(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    out = tmp_path / "run"
    src = _sources(tmp_path)
    p = _recipe(tmp_path, "lr", ft2_epochs=1)
    p.write_text(
        p.read_text().replace(
            'policy = { name = "resnet8", width = 4, stem = "small" }',
            'policy = { name = "resnet8", width = 4, stem = "small", head = "patch", grid = [4, 4], padding = '
            '"reflect" }',
        )
    )
    res = runner.invoke(
        app, ["train", "joint", *src, "--config", str(p), "--out", str(out), "--device", "cpu"], catch_exceptions=False
    )
    assert res.exit_code == 0, res.output
    ck = load_checkpoint(out / "model.pt")
    assert dict(ck.card.policy.kwargs)["head"] == "patch"
    policy = ck.build("policy_ft2", torch.device("cpu"))
    assert policy(torch.rand(2, 3, ck.card.lr_size_px, ck.card.lr_size_px)).shape == (2, 16)
    # The body's padding differs from the LR classifier's (reflect against zeros) but its tensors came from it,
    # then trained one Ft-2 epoch: same names and shapes, and the output layer is the patch head's own.
    assert {k for k in ck.weights["policy_ft2"] if k.startswith("fc.")} == {
        "fc.patch.weight",
        "fc.patch.bias",
        "fc.tile.weight",
        "fc.tile.bias",
    }
    body = [k for k in ck.weights["lr"] if not k.startswith("fc.")]
    assert all(ck.weights["policy_ft2"][k].shape == ck.weights["lr"][k].shape for k in body)


def test_a_run_refuses_a_recipe_that_changes_its_networks(tmp_path: Path) -> None:
    # The card holds one network per component: continuing a run with another policy network used to keep
    # the old one silently (its weights and card), so a "patch head" run trained a linear head.
    src = _sources(tmp_path)
    p = _recipe(tmp_path, "lr")
    out = tmp_path / "run"
    res = runner.invoke(
        app, ["train", "joint", *src, "--config", str(p), "--out", str(out), "--stage", "hr"], catch_exceptions=False
    )
    assert res.exit_code == 0, res.output
    p.write_text(
        p.read_text().replace(
            'policy = { name = "resnet8", width = 4, stem = "small" }',
            'policy = { name = "resnet8", width = 4, stem = "small", head = "patch", grid = [4, 4] }',
        )
    )
    res = runner.invoke(app, ["train", "joint", *src, "--config", str(p), "--out", str(out), "--stage", "lr"])
    assert res.exit_code == 2 and res.stderr.splitlines()[-1].startswith("error: ")
    assert (
        "[model] policy = { name = 'resnet8', width = 4, stem = 'small', head = 'patch', grid = [4, 4] } differs from"
        in res.stderr
    )
    assert "use a new --out directory" in res.stderr
