"""``zoomplan train fmow|folder``: train the PatchDrop stages of a recipe into a run directory."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from zoomplan.cli._progress import TrainProgress, console
from zoomplan.cli.app import app
from zoomplan.cli.errors import handle_errors
from zoomplan.cli.options import Device, Sources, Splits

train_app = typer.Typer(help="Train PatchDrop models (classifiers, policy Pt, Ft-1, Ft-2).", no_args_is_help=True)
app.add_typer(train_app, name="train")

StageOpt = typer.Option(
    "all",
    "--stage",
    help="hr | lr | policy | ft1 | ft2 | all (in that order), or baselines (the paper's baselines fine-tuned on their "
    "own masks, after ft1; writes RUN/baselines.pt).",
)
ConfigOpt = typer.Option(None, "--config", help="Recipe TOML (default: configs/<dataset>.toml).")
OutOpt = typer.Option(Path("runs/latest"), "--out", help="Run directory (model.pt, last.pt, metrics.jsonl).")
EpochsOpt = typer.Option(None, "--epochs", help="Override every stage's epoch count.")
SeedOpt = typer.Option(None, "--seed", help="Override the recipe's seed.")
ResumeOpt = typer.Option(False, "--resume", help="Skip finished stages and continue the interrupted one.")


def _run(
    dataset: str,
    make_splits,
    config: Optional[str],
    default_config: str,
    out: Path,
    stage: str,
    epochs: Optional[int],
    device: str,
    seed: Optional[int],
    resume: bool,
) -> None:
    import dataclasses

    from zoomplan.device import resolve_device
    from zoomplan.train.config import load_config
    from zoomplan.train.runner import train

    cfg = load_config(config or default_config)
    if epochs is not None:
        cfg = cfg.with_epochs(epochs)
    if seed is not None:
        cfg = dataclasses.replace(cfg, seed=seed)
    dev = resolve_device(device)
    train_ds, val_ds, classes = make_splits(cfg)
    console.print(
        f"[bold]zoomplan train {dataset}[/]: {len(train_ds)} train / {len(val_ds)} val images, {len(classes)} classes, "
        f"recipe {cfg.source or cfg.name}, device {dev}, seed {cfg.seed} -> {out}"
    )
    with TrainProgress() as prog:
        path = train(
            cfg, train_ds, val_ds, classes, out, stage=stage, device=dev, resume=resume, dataset=dataset, progress=prog
        )
    console.print(f"checkpoint: {path}")


@train_app.command("folder")
@handle_errors
def train_folder(
    root: Path = typer.Option(..., "--root", help="Folder of <class>/<image> folders (e.g. UC Merced)."),
    splits: Splits = None,
    stage: str = StageOpt,
    config: Optional[str] = ConfigOpt,
    out: Path = OutOpt,
    epochs: Optional[int] = EpochsOpt,
    device: Device = "auto",
    seed: Optional[int] = SeedOpt,
    resume: bool = ResumeOpt,
) -> None:
    """Train on a class-folder dataset (default recipe: configs/ucmerced.toml)."""
    from zoomplan.data.folder import FolderDataset, write_split_csv

    def make_splits(cfg):
        tr = FolderDataset(
            root, "train", splits_csv=splits, size=cfg.data.source_size, cache=cfg.data.cache, seed=cfg.seed
        )
        va = FolderDataset(
            root, "val", splits_csv=splits, size=cfg.data.source_size, cache=cfg.data.cache, seed=cfg.seed
        )
        if splits is None:
            write_split_csv(tr.all_samples, out / "splits.csv", root)
        return tr, va, tr.class_names

    _run(root.name or "folder", make_splits, config, "ucmerced", out, stage, epochs, device, seed, resume)


@train_app.command("joint")
@handle_errors
def train_joint(
    source: Sources = ...,
    stage: str = StageOpt,
    config: Optional[str] = ConfigOpt,
    out: Path = OutOpt,
    epochs: Optional[int] = EpochsOpt,
    device: Device = "auto",
    seed: Optional[int] = SeedOpt,
    resume: bool = ResumeOpt,
) -> None:
    """Train on several class-folder datasets in one joint label space (default recipe: configs/joint.toml)."""
    from zoomplan.data.joint import JointDataset, parse_sources, sources_from_recipe

    roots = parse_sources(source)

    def make_splits(cfg):
        specs = sources_from_recipe(cfg.raw)
        kw = dict(tile_ground_m=cfg.model.tile_ground_m, size=cfg.data.source_size, cache=cfg.data.cache)
        tr = JointDataset(roots, specs, "train", **kw)
        va = JointDataset(roots, specs, "val", **kw)
        if tr.skipped_smaller or va.skipped_smaller:
            console.print(
                f"left out as smaller than the {cfg.model.tile_ground_m:g} m tile (skip_smaller): "
                f"{tr.skipped_smaller} train / {va.skipped_smaller} val images"
            )
        return tr, va, tr.class_names

    _run("joint", make_splits, config, "joint", out, stage, epochs, device, seed, resume)


@train_app.command("fmow")
@handle_errors
def train_fmow(
    root: Path = typer.Option(..., "--root", help="fMoW-rgb root holding train/ and val/."),
    stage: str = StageOpt,
    config: Optional[str] = ConfigOpt,
    out: Path = OutOpt,
    epochs: Optional[int] = EpochsOpt,
    device: Device = "auto",
    seed: Optional[int] = SeedOpt,
    resume: bool = ResumeOpt,
) -> None:
    """Train on fMoW-rgb as published (default recipe: configs/fmow.toml, the paper's)."""
    from zoomplan.data.fmow import FmowDataset

    def make_splits(cfg):
        tr = FmowDataset(root, "train", size=cfg.data.source_size)
        va = FmowDataset(root, "val", size=cfg.data.source_size)
        return tr, va, tuple(tr.class_names)

    _run("fmow", make_splits, config, "fmow", out, stage, epochs, device, seed, resume)
