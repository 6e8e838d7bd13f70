"""``zoomplan evaluate CHECKPOINT --root DIR``: the paper's table (accuracy and S per method)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from zoomplan.cli._progress import BlockProgress, console
from zoomplan.cli.app import app
from zoomplan.cli.errors import handle_errors
from zoomplan.cli.options import Device, ImageBatchSize, Sources, Splits


@app.command("evaluate")
@handle_errors
def evaluate(
    checkpoint: Optional[Path] = typer.Argument(None, help="Checkpoint file (default: the shipped model)."),
    root: Optional[Path] = typer.Option(
        None, "--root", help="Dataset root (class folders, or fMoW-rgb for fMoW models)."
    ),
    source: Sources = None,
    splits: Splits = None,
    split: str = typer.Option("test", "--split", help="train | val | test."),
    out: Path = typer.Option(Path("evaluation"), "--out", help="Folder for evaluation.md and evaluation.json."),
    device: Device = "auto",
    seed: int = typer.Option(0, "--seed", help="Seed of the random baselines' patch draws."),
    batch_size: ImageBatchSize = 128,
    baselines: Optional[Path] = typer.Option(
        None,
        "--baselines",
        help="RUN/baselines.pt from 'zoomplan train ... --stage baselines': "
        "the baselines' own fine-tuned classifiers for the Ft columns (the paper's protocol).",
    ),
) -> None:
    """Print and write the results table of CHECKPOINT on one split."""
    from zoomplan.device import resolve_device
    from zoomplan.errors import InputError
    from zoomplan.models.checkpoint import load_checkpoint
    from zoomplan.train.evaluate import evaluate_checkpoint, write_result

    ckpt = load_checkpoint(checkpoint)
    base = load_checkpoint(baselines) if baselines is not None else None
    dev = resolve_device(device)
    card = ckpt.card
    source_size = int(card.recipe.get("data", {}).get("source_size", 256))
    if card.dataset == "joint":
        from zoomplan.data.joint import JointDataset, parse_sources, sources_from_recipe

        if not source:
            raise InputError(
                f"{ckpt.path.name} was trained on a joint dataset: pass --source NAME=DIR for each of its sources "
                f"({', '.join(s.name for s in sources_from_recipe(card.recipe))})"
            )
        ds = JointDataset(
            parse_sources(source),
            sources_from_recipe(card.recipe),
            split,
            tile_ground_m=card.tile_ground_m,
            size=source_size,
            cache=False,
        )
        classes = ds.class_names
    elif root is None:
        raise InputError("--root DIR is required (the dataset the checkpoint was trained on)")
    elif card.dataset == "fmow":
        from zoomplan.data.fmow import FmowDataset

        ds = FmowDataset(root, split, size=source_size)
        classes = tuple(ds.class_names)
    else:
        from zoomplan.data.folder import FolderDataset

        ds = FolderDataset(root, split, splits_csv=splits, size=source_size, cache=False, seed=card.seed)
        classes = ds.class_names
    with BlockProgress(f"evaluating {split}", "images, two passes") as progress:
        result = evaluate_checkpoint(
            ckpt,
            ds,
            split=split,
            device=dev,
            batch_size=batch_size,
            seed=seed,
            class_names=classes,
            baselines=base,
            progress=progress,
        )
    own = "own fine-tuned classifiers" if base is not None else "PatchDrop's classifier (no --baselines file)"
    table = Table(
        title=f"{ckpt.path.name} on {split} ({result.n_images} images)", caption=f"Baselines in the Ft columns: {own}"
    )
    table.add_column("Method")
    table.add_column("Classifier")
    table.add_column("Accuracy %", justify="right")
    table.add_column(f"S (of {result.num_patches})", justify="right")
    for r in result.rows:
        style = "bold" if r.method == "PatchDrop" else None
        table.add_row(r.method, r.stage, f"{100 * r.accuracy:.1f}", f"{r.S:.2f}", style=style)
    console.print(table)
    md, js = write_result(result, out)
    console.print(f"wrote {md} and {js}")
