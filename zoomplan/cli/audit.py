"""``zoomplan audit``: what the model would buy over a labelled area, class by class, before buying.

A thin command: it parses options, calls :func:`zoomplan.plan.audit.audit` and renders the per-class
table on stderr; ``--out DIR`` writes ``audit.md``, ``audit.json`` (and ``audit.png`` with ``--png``).
stdout stays empty.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from zoomplan.cli import app
from zoomplan.errors import ZoomplanError

console = Console(stderr=True)


_H = {
    "lr": "LR scene (GeoTIFF/COG/JP2). Repeat for several; the first that has data for a tile is used.",
    "labels": "Labelled polygons (GeoPackage, GeoJSON, Shapefile...; any CRS) or a single-band integer GeoTIFF "
              "(.tif/.tiff) whose values are classes (nodata ignored).",
    "field": "Attribute of the vector labels naming each polygon's class (required for vector labels).",
    "classes": "Names of a label raster's values, e.g. 1=water,2=land (default: the values themselves).",
    "threshold": "A patch is selected when its policy probability is above P (as zoomplan plan; 0 selects every "
                 "patch, above 1 none).",
    "out": "Folder to write audit.md and audit.json into (nothing is written on error).",
    "png": "Also draw DIR/audit.png: the fraction selected per class (needs --out).",
    "bands": "Scene bands for red,green,blue: numbers or names, e.g. 4,3,2 or B04,B03,B02 (default: from band "
             "descriptions).",
    "sensor": "Model card sensor mapping, e.g. sentinel2_toa or rgb8 (default: by data type).",
    "threads": "torch threads for the networks on CPU (default: every core).",
}


@app.command("audit")
def audit_command(
    lr: list[Path] = typer.Option(..., "--lr", help=_H["lr"]),
    labels: Path = typer.Option(..., "--labels", help=_H["labels"]),
    field: Optional[str] = typer.Option(None, "--field", help=_H["field"]),
    classes: Optional[str] = typer.Option(None, "--classes", help=_H["classes"]),
    model: Optional[Path] = typer.Option(None, "--model", help="Checkpoint (default: the shipped model)."),
    threshold: float = typer.Option(0.5, "--threshold", help=_H["threshold"]),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help=_H["out"]),
    png: bool = typer.Option(False, "--png", help=_H["png"]),
    bands: Optional[str] = typer.Option(None, "--bands", help=_H["bands"]),
    sensor: Optional[str] = typer.Option(None, "--sensor", help=_H["sensor"]),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda | cuda:N | mps."),
    batch_size: int = typer.Option(512, "--batch-size", help="Tiles per network batch."),
    threads: Optional[int] = typer.Option(None, "--threads", help=_H["threads"]),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress details (INFO) on stderr."),
) -> None:
    """Audit a model's choices on a labelled area: per class, how many HR patches it would select."""
    from zoomplan.plan.audit import audit

    if verbose:
        logging.getLogger("zoomplan").setLevel(logging.INFO)
    progress = Progress(TextColumn("inference"), BarColumn(), MofNCompleteColumn(), TextColumn("blocks"),
                        TimeElapsedColumn(), console=console, transient=True, disable=not console.is_terminal)
    task = progress.add_task("blocks", total=None)

    def on_block(done: int, total: int) -> None:
        progress.update(task, completed=done, total=total)

    try:
        with progress:
            result = audit(lr, labels, field=field, classes=classes, model=model, threshold=threshold, device=device,
                           out_dir=out, png=png, bands=bands, sensor=sensor, batch_size=batch_size, threads=threads,
                           progress=on_block)
    except ZoomplanError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None
    console.print(audit_table(result.rows, result.parameters))
    for w in result.written:
        console.print(f"wrote {w}")


def audit_table(rows: Any, params: dict[str, Any]) -> Table:
    """Per-class rows (areas km^2, fractions and probabilities 0-1), TOTAL last and bold."""
    from zoomplan.plan.audit.outputs import COLUMNS, cells

    m = params["model"]
    title = (f"zoomplan audit: {Path(params['labels']).name} (threshold {params['threshold']:g}, model {m['id']}, "
             f"policy {m['policy_stage']})")
    caption = (f"{params['patches_labelled']:,} of {params['patches_planned']:,} planned patches have a label under "
               f"their centre; area = patches x {params['patch_area_km2']:g} km2")
    t = Table(title=title, title_justify="left", caption=caption, caption_justify="left")
    for i, col in enumerate(COLUMNS):
        t.add_column(col, justify="left" if i in (0, len(COLUMNS) - 1) else "right")
    for i, r in enumerate(rows):
        t.add_row(*cells(r), style="bold" if r.label == "TOTAL" else None, end_section=i == len(rows) - 2)
    return t
