"""``zoomplan audit``: what the model would buy over a labelled area, class by class, before buying.

A thin command: it parses options, calls :func:`zoomplan.plan.audit.audit` and renders the per-class
table on stderr; ``--out DIR`` writes ``audit.md``, ``audit.json`` (and ``audit.png`` with ``--png``).
stdout stays empty.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table

from zoomplan.cli._progress import BlockProgress, console
from zoomplan.cli.app import app
from zoomplan.cli.errors import handle_errors
from zoomplan.cli.options import Bands, Device, LrScenes, Model, Sensor, Threads, Threshold, TileBatchSize, Verbose

_H = {
    "labels": "Labelled polygons (GeoPackage, GeoJSON, Shapefile...; any CRS) or a single-band integer GeoTIFF "
    "(.tif/.tiff) whose values are classes (nodata ignored).",
    "field": "Attribute of the vector labels naming each polygon's class (required for vector labels).",
    "classes": "Names of a label raster's values, e.g. 1=water,2=land (default: the values themselves).",
    "out": "Folder to write audit.md and audit.json into (nothing is written on error).",
    "png": "Also draw DIR/audit.png: the fraction selected per class (needs --out).",
}


@app.command("audit")
@handle_errors
def audit_command(
    lr: LrScenes = ...,
    labels: Path = typer.Option(..., "--labels", help=_H["labels"]),
    field: Optional[str] = typer.Option(None, "--field", help=_H["field"]),
    classes: Optional[str] = typer.Option(None, "--classes", help=_H["classes"]),
    model: Model = None,
    threshold: Threshold = 0.5,
    out: Optional[Path] = typer.Option(None, "--out", "-o", help=_H["out"]),
    png: bool = typer.Option(False, "--png", help=_H["png"]),
    bands: Bands = None,
    sensor: Sensor = None,
    device: Device = "auto",
    batch_size: TileBatchSize = 512,
    threads: Threads = None,
    verbose: Verbose = False,
) -> None:
    """Audit a model's choices on a labelled area: per class, how many HR patches it would select."""
    from zoomplan.plan.audit import audit

    with BlockProgress() as progress:
        result = audit(
            lr,
            labels,
            field=field,
            classes=classes,
            model=model,
            threshold=threshold,
            device=device,
            out_dir=out,
            png=png,
            bands=bands,
            sensor=sensor,
            batch_size=batch_size,
            threads=threads,
            progress=progress,
        )
    console.print(audit_table(result.rows, result.parameters))
    for w in result.written:
        console.print(f"wrote {w}")


def audit_table(rows: Any, params: dict[str, Any]) -> Table:
    """Per-class rows (areas km^2, fractions and probabilities 0-1), TOTAL last and bold."""
    from zoomplan.plan.audit.outputs import COLUMNS, cells

    m = params["model"]
    title = (
        f"zoomplan audit: {Path(params['labels']).name} (threshold {params['threshold']:g}, model {m['id']}, "
        f"policy {m['policy_stage']})"
    )
    caption = (
        f"{params['patches_labelled']:,} of {params['patches_planned']:,} planned patches have a label under "
        f"their centre; area = patches x {params['patch_area_km2']:g} km2"
    )
    t = Table(title=title, title_justify="left", caption=caption, caption_justify="left")
    for i, col in enumerate(COLUMNS):
        t.add_column(col, justify="left" if i in (0, len(COLUMNS) - 1) else "right")
    for i, r in enumerate(rows):
        t.add_row(*cells(r), style="bold" if r.label == "TOTAL" else None, end_section=i == len(rows) - 2)
    return t
