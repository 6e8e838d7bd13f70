"""``zoomplan budget``: plan every region of a polygon layer, cost per region and vendor, with totals.

A thin command: it parses options, calls :func:`zoomplan.plan.budget.budget` and renders two tables
(regions, then plan/baseline cost per vendor) and the notes on stderr. stdout carries only data (the
CSV with ``--csv -``).
"""

from __future__ import annotations

import logging
import math
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


@app.command("budget")
def budget_command(
    regions: Path = typer.Argument(..., help="Regions vector file (GeoJSON, GeoPackage, Shapefile, KML, FlatGeobuf; any CRS; Polygon/MultiPolygon): districts, farm blocks..."),
    lr: list[Path] = typer.Option(..., "--lr", help="LR scene (GeoTIFF/COG/JP2). Repeat for several; the first that has data for a tile is used."),
    by: Optional[str] = typer.Option(None, "--by", help="Attribute naming each region; features sharing a value are merged (default: one region per feature, by its id)."),
    vendor: Optional[list[str]] = typer.Option(None, "--vendor", help="Vendor profile to price; repeat for several (default: every profile in the catalogue). The first colours the map."),
    vendors: Optional[Path] = typer.Option(None, "--vendors", help="Vendor catalogue TOML (default: the packaged configs/vendors.toml)."),
    csv: Optional[str] = typer.Option(None, "--csv", help="Write the table as CSV: one row per region, per-vendor columns, a TOTAL row ('-' for stdout)."),
    gpkg: Optional[Path] = typer.Option(None, "--gpkg", help="Write the regions with the same columns as a GeoPackage (EPSG:4326; layer 'budget', and 'totals')."),
    map_png: Optional[Path] = typer.Option(None, "--map", help="Draw a PNG choropleth of plan cost per km2 (first vendor) over the LR scene."),
    model: Optional[Path] = typer.Option(None, "--model", help="Checkpoint (default: the shipped model)."),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="Buy patches whose policy probability is above P (default 0.5)."),
    bands: Optional[str] = typer.Option(None, "--bands", help="Scene bands for red,green,blue: numbers or names, e.g. 4,3,2 or B04,B03,B02."),
    sensor: Optional[str] = typer.Option(None, "--sensor", help="Model card sensor mapping, e.g. sentinel2_toa or rgb8 (default: by data type)."),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda | cuda:N | mps."),
    batch_size: int = typer.Option(512, "--batch-size", help="Tiles per network batch."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No tables or progress bar."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress details (INFO) on stderr."),
) -> None:
    """Plan each region from LR scenes and print (and write) its cost per vendor against buying it whole."""
    from zoomplan.plan.budget import budget

    if verbose:
        logging.getLogger("zoomplan").setLevel(logging.INFO)
    show = not quiet and console.is_terminal
    progress = Progress(TextColumn("inference"), BarColumn(), MofNCompleteColumn(), TextColumn("blocks"), TimeElapsedColumn(), console=console, transient=True, disable=not show)
    task = progress.add_task("blocks", total=None)

    def on_block(done: int, total: int) -> None:
        progress.update(task, completed=done, total=total)

    try:
        with progress:
            result = budget(
                regions, lr, by=by, vendors=vendor or None, vendors_file=vendors, model=model, threshold=threshold, device=device,
                out_csv=csv, out_gpkg=gpkg, map_png=map_png, bands=bands, sensor=sensor, batch_size=batch_size, progress=on_block,
            )
    except ZoomplanError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None
    if not quiet:
        recs = result.records()
        console.print(regions_table(recs, f"zoomplan budget: {regions.name} (threshold {result.threshold:g})"))
        console.print(costs_table(recs, result.vendors))
        for n in result.notes:
            console.print(f"* {n}", highlight=False)
        for w in result.written:
            if w != "-":
                console.print(f"wrote {w}")


def _num(v: Any, fmt: str) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return format(v, fmt)


def regions_table(recs: list[dict[str, Any]], title: str) -> Table:
    """Per-region areas (km^2), tiles and patches, the TOTAL record last."""
    t = Table(title=title, title_justify="left")
    for col in ("region", "status", "own km2", "shared km2", "tiles", "patches selected"):
        t.add_column(col, justify="left" if col in ("region", "status") else "right")
    for i, r in enumerate(recs):
        total = r["region"] == "TOTAL"
        sel = f"{_num(r['patches_selected'], ',')} of {_num(r['patches_total'], ',')}" + (f" ({100 * r['fraction_selected']:.1f}%)" if _num(r["fraction_selected"], "") != "-" else "")
        status = r["status"] + (f", {100 * r['covered_fraction']:.0f}% covered" if r["status"] == "partly outside scenes" else "")
        t.add_row(str(r["region"]), status, _num(r["area_km2"], ".3f"), _num(r["overlap_km2"], ".3f"), _num(r["tiles"], ","), sel,
                  style="bold" if total else None, end_section=i == len(recs) - 2)
    return t


def costs_table(recs: list[dict[str, Any]], vendors: tuple[str, ...]) -> Table:
    """Plan cost of baseline cost (USD) and the saving in percent, per region and vendor."""
    from zoomplan.plan.budget import vendor_slug

    t = Table(title="plan / baseline USD (saving %)", title_justify="left")
    t.add_column("region")
    for v in vendors:
        t.add_column(v, justify="right")
    for i, r in enumerate(recs):
        cells = []
        for v in vendors:
            s = vendor_slug(v)
            p, b, pct = r[f"plan_usd_{s}"], r[f"baseline_usd_{s}"], r[f"savings_pct_{s}"]
            cells.append("-" if _num(p, "") == "-" else f"{p:,.2f} / {b:,.2f} ({pct:.1f}%)")
        t.add_row(str(r["region"]), *cells, style="bold" if r["region"] == "TOTAL" else None, end_section=i == len(recs) - 2)
    return t
