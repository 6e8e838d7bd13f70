"""`zoomplan train` and `zoomplan evaluate` end to end on generated data (tiny models, CPU)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from zoomplan.cli import app, register
from zoomplan.data.synthetic import make_fmow_tree, make_folder_dataset
from zoomplan.train.checkpoint import load_checkpoint

RECIPE = str(Path(__file__).with_name("tiny_recipe.toml"))
runner = CliRunner()
register()


def _invoke(*args: str):
    res = runner.invoke(app, list(args), catch_exceptions=False)
    return res


def _metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_train_fmow_every_stage_then_evaluate(tmp_path: Path) -> None:
    root = make_fmow_tree(tmp_path / "fmow", size=64)
    out = tmp_path / "run"
    res = _invoke("train", "fmow", "--root", str(root), "--config", RECIPE, "--out", str(out), "--device", "cpu")
    assert res.exit_code == 0, res.output
    ck = load_checkpoint(out / "model.pt")
    assert ck.card.stages == ("hr", "lr", "policy", "ft1", "ft2")
    assert set(ck.weights) == {"hr", "lr", "policy_pt", "policy_ft1", "hr_ft1", "policy_ft2", "hr_ft2"}
    assert ck.card.class_names[:3] == ("airport", "airport_hangar", "airport_terminal")  # the pinned 62-class order
    assert len(ck.card.class_names) == 62 and ck.card.dataset == "fmow"
    assert [m["stage"] for m in _metrics(out)] == ["hr", "lr", "policy", "ft1", "ft2"]
    assert set(ck.card.metrics["val"]) == {"hr", "lr", "policy", "ft1", "ft2"}
    deploy = ck.card.metrics["deploy"]  # the planner's stage: best val reward, all stages under one sigma
    assert deploy["sigma"] == 5.0 and set(deploy["val_reward"]) == {"pt", "ft1", "ft2"}
    assert ck.card.deploy_stage == max(deploy["val_reward"], key=deploy["val_reward"].get) == ck.deploy_stage
    ev = tmp_path / "ev"
    res = _invoke(
        "evaluate", str(out / "model.pt"), "--root", str(root), "--split", "val", "--out", str(ev), "--device", "cpu"
    )
    assert res.exit_code == 0, res.output
    table = json.loads((ev / "evaluation.json").read_text())
    methods = {(r["method"], r["stage"]) for r in table["rows"]}
    for m in ("Fixed-H", "Fixed-V", "Stochastic", "Random", "PatchDrop"):
        assert {(m, "Pt"), (m, "Ft-1"), (m, "Ft-2")} <= methods
    rows = {(r["method"], r["stage"]): r for r in table["rows"]}
    for st in ("Pt", "Ft-1", "Ft-2"):  # baselines are evaluated at PatchDrop's S (exactly, in the mean)
        s = rows[("PatchDrop", st)]["S"]
        for m in ("Fixed-H", "Fixed-V", "Random"):
            assert rows[(m, st)]["S"] == pytest.approx(s, abs=0.5 / table["n_images"] + 1e-9)
    assert "| **PatchDrop** |" in (ev / "evaluation.md").read_text()
    for st in ("Pt", "Ft-1", "Ft-2"):  # where the policy looks: per-patch shares sum to S; S per image within 0..16
        rate = table["patch_rate"][st]
        assert len(rate) == 16 and all(0 <= v <= 1 for v in rate)
        assert sum(rate) == pytest.approx(rows[("PatchDrop", st)]["S"], abs=16 * 5e-5)
        lo, mid, hi = table["s_percentiles"][st]
        assert 0 <= lo <= mid <= hi <= 16 and mid == int(mid)
    assert "| Ft-2 | " in (ev / "evaluation.md").read_text()


class _Crash(Exception):
    pass


def test_folder_resume_continues_where_it_stopped(tmp_path: Path) -> None:
    root = make_folder_dataset(tmp_path / "ds", per_class=10, size=32)
    splits = root / "splits.csv"
    common = [
        "train",
        "folder",
        "--root",
        str(root),
        "--splits",
        str(splits),
        "--config",
        RECIPE,
        "--device",
        "cpu",
        "--epochs",
        "3",
    ]
    full = tmp_path / "full"
    res = runner.invoke(app, [*common, "--out", str(full), "--stage", "policy"])
    assert res.exit_code == 2 and "run --stage hr first" in res.stderr  # Pt needs the HR classifier
    assert not full.exists()  # nothing written
    assert _invoke(*common, "--out", str(full), "--stage", "hr").exit_code == 0
    assert _invoke(*common, "--out", str(full), "--stage", "policy").exit_code == 0

    # The same run, killed after Pt's epoch 2 (an exception out of the progress hook stands in for the kill).
    from zoomplan.data.folder import FolderDataset
    from zoomplan.train.config import load_config
    from zoomplan.train.runner import train

    part = tmp_path / "part"
    assert _invoke(*common, "--out", str(part), "--stage", "hr").exit_code == 0
    cfg = load_config(RECIPE).with_epochs(3)
    tr = FolderDataset(root, "train", splits_csv=splits, size=32)
    va = FolderDataset(root, "val", splits_csv=splits, size=32)

    def crash(event: str, info: dict) -> None:
        if event == "epoch_end" and info["stage"] == "policy" and info["epoch"] == 2:
            raise _Crash()

    with pytest.raises(_Crash):
        train(cfg, tr, va, tr.class_names, part, stage="policy", dataset="ds", progress=crash)
    assert "policy" not in load_checkpoint(part / "model.pt").card.stages
    res = _invoke(*common, "--out", str(part), "--stage", "policy", "--resume")
    assert res.exit_code == 0, res.output
    rows = [(m["stage"], m["epoch"]) for m in _metrics(part)]
    # Pt epochs 1-2 ran before the crash; after resuming, only epoch 3
    assert rows == [("hr", 1), ("hr", 2), ("hr", 3), ("policy", 1), ("policy", 2), ("policy", 3)]
    assert "policy" in load_checkpoint(part / "model.pt").card.stages
    a = [m for m in _metrics(full) if m["stage"] == "policy"][-1]
    b = [m for m in _metrics(part) if m["stage"] == "policy"][-1]
    for key in ("train_loss", "train_acc", "train_S", "val_acc", "val_S", "val_reward"):
        assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-6), key

    # A real SIGKILL in the middle of Pt's epoch 2 (step 2), in another process; then --resume.
    killed = tmp_path / "killed"
    assert _invoke(*common, "--out", str(killed), "--stage", "hr").exit_code == 0
    proc = subprocess.run(
        [sys.executable, "-c", _KILL_MID_EPOCH, str(root), str(killed), RECIPE],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == -9, proc.stderr  # killed, not finished
    assert [(m["stage"], m["epoch"]) for m in _metrics(killed)] == [("hr", 1), ("hr", 2), ("hr", 3), ("policy", 1)]
    res = _invoke(*common, "--out", str(killed), "--stage", "policy", "--resume")
    assert res.exit_code == 0, res.output
    assert [(m["stage"], m["epoch"]) for m in _metrics(killed)][3:] == [("policy", 1), ("policy", 2), ("policy", 3)]
    c = [m for m in _metrics(killed) if m["stage"] == "policy"][-1]
    for key in ("train_loss", "train_acc", "train_S", "val_acc", "val_S", "val_reward"):
        assert a[key] == pytest.approx(c[key], rel=1e-4, abs=1e-6), key


_KILL_MID_EPOCH = """
import os, signal, sys
from pathlib import Path
from zoomplan.data.folder import FolderDataset
from zoomplan.train.config import load_config
from zoomplan.train.runner import train

root, out, recipe = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
cfg = load_config(recipe).with_epochs(3)
tr = FolderDataset(root, "train", splits_csv=root / "splits.csv", size=32)
va = FolderDataset(root, "val", splits_csv=root / "splits.csv", size=32)

def kill(event, info):
    if event == "step" and info["stage"] == "policy" and info["epoch"] == 1 and info["step"] == 2:
        os.kill(os.getpid(), signal.SIGKILL)

train(cfg, tr, va, tr.class_names, out, stage="policy", dataset="ds", progress=kill)
"""


def test_resume_skips_finished_stages(tmp_path: Path) -> None:
    root = make_folder_dataset(tmp_path / "ds", per_class=6, size=32)
    out = tmp_path / "run"
    args = ["train", "folder", "--root", str(root), "--config", RECIPE, "--out", str(out), "--device", "cpu"]
    assert _invoke(*args, "--stage", "hr").exit_code == 0
    assert _invoke(*args, "--stage", "all", "--resume").exit_code == 0
    stages = [m["stage"] for m in _metrics(out)]
    assert stages == ["hr", "lr", "policy", "ft1", "ft2"]  # hr not trained twice
    assert (out / "splits.csv").is_file()  # a generated split is kept with the run


def test_stage_needing_a_previous_stage_says_which(tmp_path: Path) -> None:
    root = make_folder_dataset(tmp_path / "ds", per_class=6, size=32)
    res = runner.invoke(
        app,
        ["train", "folder", "--root", str(root), "--config", RECIPE, "--out", str(tmp_path / "r"), "--stage", "ft1"],
    )
    assert res.exit_code == 2
    assert "needs 'policy_pt'" in res.stderr and "run --stage policy first" in res.stderr


@pytest.mark.parametrize("case", ["missing_root", "empty_class", "bad_image", "absent_in_csv"])
def test_bad_dataset_input_is_one_clear_line(tmp_path: Path, case: str) -> None:
    root = make_folder_dataset(tmp_path / "ds", per_class=6, size=32)
    splits = root / "splits.csv"
    if case == "missing_root":
        root = tmp_path / "nope"
    elif case == "empty_class":
        (root / "images" / "ghost").mkdir()
        splits = None
    elif case == "bad_image":
        first = next((root / "images" / "field").glob("*.jpg"))
        first.write_bytes(b"not a jpeg")
    elif case == "absent_in_csv":
        with open(splits, "a") as fh:
            fh.write("images/field/missing99.jpg,field,train\n")
    cmd = [
        sys.executable,
        "-m",
        "zoomplan.cli",
        "train",
        "folder",
        "--root",
        str(root),
        "--config",
        RECIPE,
        "--out",
        str(tmp_path / "r"),
    ]
    if splits is not None:
        cmd += ["--splits", str(splits)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert p.returncode == 2
    err = p.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    expected = {
        "missing_root": "nope",
        "empty_class": "ghost",
        "bad_image": first.name if case == "bad_image" else "",
        "absent_in_csv": "missing99.jpg",
    }[case]
    assert expected in err[0]
    assert not (tmp_path / "r" / "model.pt").exists()


def test_fmow_without_usable_boxes_is_one_clear_line(tmp_path: Path) -> None:
    root = make_fmow_tree(tmp_path / "fmow", size=64)
    for js in (root / "train").rglob("*_rgb.json"):
        meta = json.loads(js.read_text())
        meta["bounding_boxes"] = []
        js.write_text(json.dumps(meta))
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "zoomplan.cli",
            "train",
            "fmow",
            "--root",
            str(root),
            "--config",
            RECIPE,
            "--out",
            str(tmp_path / "r"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and "no usable samples" in lines[-1] and str(root / "train") in lines[-1]
    assert "Traceback" not in p.stderr and not (tmp_path / "r").exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (mixed-precision training path)")
def test_train_on_cuda_with_mixed_precision(tmp_path: Path) -> None:
    root = make_folder_dataset(tmp_path / "ds", per_class=6, size=32)
    out = tmp_path / "run"
    res = _invoke("train", "folder", "--root", str(root), "--config", RECIPE, "--out", str(out), "--device", "cuda")
    assert res.exit_code == 0, res.output
    assert load_checkpoint(out / "model.pt").card.stages == ("hr", "lr", "policy", "ft1", "ft2")


@pytest.mark.slow
def test_torchrun_two_processes_gloo(tmp_path: Path) -> None:
    if shutil.which("torchrun") is None and not (Path(sys.executable).parent / "torchrun").exists():
        pytest.skip("torchrun not on PATH")
    root = make_folder_dataset(tmp_path / "ds", per_class=8, size=32)
    out = tmp_path / "ddp"
    torchrun = str(Path(sys.executable).parent / "torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.run(
        [
            torchrun,
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "zoomplan.cli",
            "train",
            "folder",
            "--root",
            str(root),
            "--config",
            RECIPE,
            "--out",
            str(out),
            "--stage",
            "hr",
            "--epochs",
            "2",
            "--device",
            "cpu",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert p.returncode == 0, p.stderr[-2000:]
    rows = _metrics(out)
    assert [r["epoch"] for r in rows] == [1, 2]  # rank 0 alone writes
    ck = load_checkpoint(out / "model.pt")
    assert ck.card.stages == ("hr",)
    assert rows[0]["train_S"] == pytest.approx(16.0)
    assert "hr" in ck.weights and "last.pt" in {p.name for p in out.iterdir()}


def test_baselines_fine_tuned_on_their_own_masks_serve_the_ft_columns(tmp_path: Path) -> None:
    from zoomplan.train.baselines import BASELINE_COMPONENTS, weights_digest
    from zoomplan.train.checkpoint import save_checkpoint

    root = make_folder_dataset(tmp_path / "ds", per_class=6, size=32)
    out = tmp_path / "run"
    args = ["train", "folder", "--root", str(root), "--config", RECIPE, "--out", str(out), "--device", "cpu"]
    res = runner.invoke(app, [*args, "--stage", "baselines"])
    assert res.exit_code == 2 and "run --stage hr first" in res.stderr  # needs stage 1 and Ft-1
    assert _invoke(*args, "--stage", "all").exit_code == 0
    assert _invoke(*args, "--stage", "baselines", "--epochs", "2").exit_code == 0
    base = load_checkpoint(out / "baselines.pt")
    ck = load_checkpoint(out / "model.pt")
    assert set(base.weights) == set(BASELINE_COMPONENTS.values())
    info = base.card.metrics["baselines"]
    assert info["fine_tuned_from_hr_sha256"] == weights_digest(ck.weights["hr"])
    assert set(info["val"]) == {"Fixed-H", "Fixed-V", "Stochastic", "Random"}
    for comp in BASELINE_COMPONENTS.values():  # each was trained away from the stage-1 classifier
        assert any(
            not torch.equal(base.weights[comp][k], ck.weights["hr"][k])
            for k in ck.weights["hr"]
            if ck.weights["hr"][k].is_floating_point()
        )
    rows = [m for m in _metrics(out) if m["stage"] == "baselines"]
    assert [(m["baseline"], m["epoch"]) for m in rows] == [
        (b, e) for b in ("Fixed-H", "Fixed-V", "Stochastic", "Random") for e in (1, 2)
    ]
    assert load_checkpoint(out / "model.pt").weights.keys() == ck.weights.keys()  # model.pt is untouched

    def table(*extra: str) -> dict:
        ev = tmp_path / f"ev{len(extra)}"
        res = _invoke(
            "evaluate",
            str(out / "model.pt"),
            "--root",
            str(root),
            "--split",
            "val",
            "--out",
            str(ev),
            "--device",
            "cpu",
            *extra,
        )
        assert res.exit_code == 0, res.output
        return json.loads((ev / "evaluation.json").read_text())

    # A baselines file whose classifiers always answer class 0 shows which classifier each column uses.
    rigged = {}
    for comp in BASELINE_COMPONENTS.values():
        sd = {k: v.clone() for k, v in base.weights[comp].items()}
        last_bias = [k for k in sd if k.endswith("bias") and sd[k].shape == (len(ck.card.class_names),)][-1]
        sd[last_bias][:] = -1e4
        sd[last_bias][0] = 1e4
        rigged[comp] = sd
    save_checkpoint(tmp_path / "rigged.pt", base.card, rigged)
    plain, own = table(), table("--baselines", str(tmp_path / "rigged.pt"))
    assert plain["baselines"] == "" and own["baselines"].endswith("rigged.pt")
    p = {(r["method"], r["stage"]): r["accuracy"] for r in plain["rows"]}
    o = {(r["method"], r["stage"]): r["accuracy"] for r in own["rows"]}
    share0 = 1 / len(ck.card.class_names)  # the generated val split is balanced
    for m in ("Fixed-H", "Fixed-V", "Stochastic", "Random"):
        assert o[(m, "Pt")] == p[(m, "Pt")]  # Pt: the stage-1 classifier either way
        assert o[(m, "Ft-1")] == pytest.approx(share0)  # Ft-1: the baseline's own classifier
    assert "own classifier fine-tuned on its own masks" in (tmp_path / "ev2" / "evaluation.md").read_text()

    other = {
        c: {k: v.clone() for k, v in sd.items()} for c, sd in ck.weights.items()
    }  # another model: its HR classifier differs
    other["hr"]["fc.bias"] += 0.5
    save_checkpoint(tmp_path / "other.pt", ck.card, other)
    res = runner.invoke(
        app,
        [
            "evaluate",
            str(tmp_path / "other.pt"),
            "--root",
            str(root),
            "--split",
            "val",
            "--out",
            str(tmp_path / "ev9"),
            "--baselines",
            str(out / "baselines.pt"),
        ],
    )
    assert res.exit_code == 2 and "fine-tuned from another model" in res.stderr
    assert not (tmp_path / "ev9").exists()
