"""``zoomplan plan --resume``: a plan killed mid-run (SIGKILL, in another process) finishes without redoing
finished blocks, and its outputs are byte-identical to an uninterrupted run's (zoomplan.plan.inference.journal)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import shapely
import torch
import typer
from typer.testing import CliRunner

from tests.helpers.synth import utm_scene, write_aoi
from zoomplan.errors import ConfigError
from zoomplan.plan.inference import infer
from zoomplan.plan.inference.journal import BlockJournal, BlockResult, default_folder
from zoomplan.plan.pipeline import plan

BLOCK_TILES = 2  # 8 x 8 tiles of the scene -> 16 blocks


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)  # as the killed subprocess: the journal is keyed on the thread count


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[Path, Path]:
    """A 64 px (8 x 8 tiles) UTM scene with a nodata corner and an AOI over most of it (two features)."""
    scene = utm_scene(tmp_path / "scene.tif", size=64, nodata_block=(slice(48, 64), slice(0, 20)))
    aoi = write_aoi(
        tmp_path / "aoi.geojson",
        [shapely.box(440010, 4169370, 440630, 4169700), shapely.box(440010, 4169700, 440630, 4169990)],
        "EPSG:32618",
        ids=["south", "north"],
    )
    return scene, aoi


def _args(aoi: Path, scene: Path, ckpt: Path, out: Path) -> list[str]:
    return [
        "plan",
        str(aoi),
        "--lr",
        str(scene),
        "--model",
        str(ckpt),
        "--device",
        "cpu",
        "--block-tiles",
        str(BLOCK_TILES),
        "--out",
        str(out),
        "--patches",
        str(out.with_suffix(".patches.geojson")),
        "--quiet",
    ]


_KILLED_AFTER_BLOCKS = """
import os, signal, sys
import torch
from zoomplan.cli import main
from zoomplan.plan.inference import journal

torch.set_num_threads(1)
after = int(sys.argv[1])
save = journal.BlockJournal.save

def save_then_die(self, index, result):
    save(self, index, result)
    if len(self.done()) >= after:
        os.kill(os.getpid(), signal.SIGKILL)  # no clean-up, no flush: as a crash or the OOM killer would

journal.BlockJournal.save = save_then_die
sys.argv = ["zoomplan", *sys.argv[2:]]
main()
"""


def test_sigkill_then_resume_is_byte_identical(
    cli: typer.Typer, inputs: tuple[Path, Path], tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scene, aoi = inputs
    ref = tmp_path / "ref" / "order.geojson"
    r = CliRunner().invoke(cli, _args(aoi, scene, tiny_checkpoint, ref))
    assert r.exit_code == 0, r.output
    assert not default_folder(ref).exists()  # a finished plan leaves no journal

    out = tmp_path / "run" / "order.geojson"
    proc = subprocess.run(
        [sys.executable, "-c", _KILLED_AFTER_BLOCKS, "5", *_args(aoi, scene, tiny_checkpoint, out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == -9, proc.stderr  # killed, not finished
    assert not out.exists() and not out.with_suffix(".patches.geojson").exists()  # no order from a killed run
    assert len(list(default_folder(out).glob("block-*.npz"))) == 5

    # Without --resume the finished work is not thrown away silently.
    r = CliRunner().invoke(cli, _args(aoi, scene, tiny_checkpoint, out))
    assert r.exit_code == 2 and "pass --resume to finish it" in r.stderr and not out.exists()

    planned: list[int] = []
    run_block = infer._run_block

    def counting(w, *a, **k):  # a spy: the real function runs
        planned.append(w.index)
        return run_block(w, *a, **k)

    monkeypatch.setattr(infer, "_run_block", counting)
    r = CliRunner().invoke(cli, [*_args(aoi, scene, tiny_checkpoint, out)[:-1], "--resume"])
    assert r.exit_code == 0, r.output
    assert "resumed: 5 block(s)" in r.stderr
    assert len(planned) == 11 and set(planned).isdisjoint(range(0, 5))  # only the unfinished blocks were planned
    assert out.read_bytes() == ref.read_bytes()
    assert out.with_suffix(".patches.geojson").read_bytes() == ref.with_suffix(".patches.geojson").read_bytes()
    assert not default_folder(out).exists()


def test_resume_rereads_a_damaged_block_and_ignores_stray_temporaries(
    inputs: tuple[Path, Path], tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scene, aoi = inputs
    kw = dict(model=tiny_checkpoint, device="cpu", block_tiles=BLOCK_TILES)
    ref = plan(aoi, [scene], out=tmp_path / "ref.geojson", **kw)
    out = tmp_path / "o.geojson"
    journal = default_folder(out)

    def crash(*a: object, **k: object) -> None:
        raise KeyboardInterrupt  # a crash after inference: the journal stays, complete

    monkeypatch.setattr("zoomplan.plan.selection.select.select", crash)
    with pytest.raises(KeyboardInterrupt):
        plan(aoi, [scene], out=out, **kw)
    monkeypatch.undo()
    blocks = sorted(journal.glob("block-*.npz"))
    assert len(blocks) == 16
    blocks[3].write_bytes(blocks[3].read_bytes()[:40])  # truncated
    (journal / ".block-000009.abc.tmp").write_bytes(b"half a block")  # a kill mid-write leaves this
    r = plan(aoi, [scene], out=out, resume=True, **kw)
    assert r.blocks_resumed == 15
    assert out.read_bytes() == (tmp_path / "ref.geojson").read_bytes()
    np.testing.assert_array_equal(r.table.prob, ref.table.prob)
    assert not journal.exists()


def test_resume_refuses_a_journal_for_other_inputs(
    inputs: tuple[Path, Path],
    tiny_checkpoint: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    scene, aoi = inputs
    out = tmp_path / "o.geojson"
    monkeypatch.setattr(
        "zoomplan.plan.selection.select.select", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt())
    )
    with pytest.raises(KeyboardInterrupt):
        plan(aoi, [scene], out=out, model=tiny_checkpoint, device="cpu", block_tiles=BLOCK_TILES)
    monkeypatch.undo()
    other = utm_scene(tmp_path / "scene.tif", size=64, seed=1)  # the scene changed on disk since
    assert other == scene
    with pytest.raises(ConfigError, match=r"written for other inputs \(scene scene.tif .*differ\)"):
        plan(aoi, [scene], out=out, model=tiny_checkpoint, device="cpu", block_tiles=BLOCK_TILES, resume=True)
    with pytest.raises(ConfigError, match="written for other inputs .*the block size"):
        plan(aoi, [scene], out=out, model=tiny_checkpoint, device="cpu", block_tiles=4, resume=True)
    assert default_folder(out).is_dir() and not out.exists()
    # without --resume a stale journal is replaced, with a warning, and the plan runs
    with caplog.at_level(logging.WARNING, logger="zoomplan"):
        r = plan(aoi, [scene], out=out, model=tiny_checkpoint, device="cpu", block_tiles=BLOCK_TILES)
    assert r.blocks_resumed == 0 and out.is_file() and not default_folder(out).exists()
    assert any("replacing the stale journal" in m for m in caplog.messages)


@pytest.mark.parametrize("case", ["stdout", "cluster", "journal_is_file", "not_a_journal"])
def test_resume_bad_requests_are_refused(
    case: str, inputs: tuple[Path, Path], tiny_checkpoint: Path, tmp_path: Path
) -> None:
    scene, aoi = inputs
    kw: dict = dict(model=tiny_checkpoint, device="cpu", resume=True)
    if case == "stdout":
        kw["out"], msg = "-", "--resume needs the interrupted run's journal"
    elif case == "cluster":
        kw["cluster"], msg = 2, "drop --workers/--dask"
    elif case == "journal_is_file":
        (tmp_path / "j").write_text("x")
        kw["journal"], msg = tmp_path / "j", "is a file"
    else:
        (tmp_path / "j").mkdir()
        (tmp_path / "j" / "notes.txt").write_text("mine")
        kw["journal"], kw["resume"], msg = tmp_path / "j", False, "is not a zoomplan journal"
    with pytest.raises(ConfigError, match=msg):
        plan(aoi, [scene], **kw)
    if case == "not_a_journal":
        assert (tmp_path / "j" / "notes.txt").read_text() == "mine"  # never deleted


def test_resume_without_a_journal_plans_from_the_start(
    inputs: tuple[Path, Path], tiny_checkpoint: Path, tmp_path: Path
) -> None:
    scene, aoi = inputs
    j = tmp_path / "journal"
    r = plan(
        aoi, [scene], model=tiny_checkpoint, device="cpu", out="-", journal=j, resume=True, block_tiles=BLOCK_TILES
    )
    assert r.blocks_resumed == 0 and r.summary["tiles"]["planned"] > 0 and not j.exists()


def test_block_result_round_trip(tmp_path: Path) -> None:
    meta = {"n_blocks": 3, "x": 1}
    j = BlockJournal.open(tmp_path / "j", meta, resume=False)
    r = BlockResult(
        np.array([5, 6]),
        np.array([7, 8]),
        np.array([0.25, 0.5], dtype=np.float32),
        np.array([1, 2], dtype=np.int32),
        np.array([0.9, 0.8], dtype=np.float32),
        np.array([0, 1], dtype=np.int32),
        np.array([0, 2], dtype=np.uint8),
        total=4,
        outside=1,
        nodata=1,
        by_scene={"a": 1, "b": 1},
    )
    j.save(1, r)
    again = BlockJournal.open(tmp_path / "j", meta, resume=True)
    assert again.done() == {1} and again.resumed == 1
    got = again.load(1)
    assert got is not None and got.by_scene == {"a": 1, "b": 1} and (got.total, got.outside, got.nodata) == (4, 1, 1)
    for k in BlockResult._ARRAYS:
        np.testing.assert_array_equal(getattr(got, k), getattr(r, k))
        assert getattr(got, k).dtype == dict(zip(BlockResult._ARRAYS, BlockResult._DTYPES))[k]
    assert again.load(2) is None
    # a block file from another journal (other key) is not taken
    other = BlockJournal.open(tmp_path / "k", {"n_blocks": 3, "x": 2}, resume=False)
    (tmp_path / "j" / "block-000001.npz").replace(other.folder / "block-000001.npz")
    assert BlockJournal.open(other.folder, {"n_blocks": 3, "x": 2}, resume=True).load(1) is None
    assert json.loads((tmp_path / "j" / "manifest.json").read_text())["meta"] == meta
