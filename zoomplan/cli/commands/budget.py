"""``zoomplan budget``: plan every region of a polygon layer, cost per region and vendor, with totals.

A thin command: it parses options, calls :func:`zoomplan.plan.budget.budget` and renders two tables
(regions, then plan/baseline cost per vendor) and the notes on stderr. stdout carries only data (the
CSV with ``--csv -``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table

from zoomplan.cli._progress import BlockProgress, console
from zoomplan.cli.app import app
from zoomplan.cli.errors import handle_errors
from zoomplan.cli.options import (
    Bands,
    Device,
    LrScenes,
    Model,
    Quiet,
    Sensor,
    Threshold,
    TileBatchSize,
    VendorList,
    VendorsFile,
    Verbose,
)


@app.command("budget")
@handle_errors
def budget_command(
    regions: Path = typer.Argument(
        ...,
        help="Regions vector file (GeoJSON, GeoPackage, Shapefile, KML, FlatGeobuf; any CRS; Polygon/MultiPolygon): "
        "districts, farm blocks...",
    ),
    lr: LrScenes = ...,
    by: Optional[str] = typer.Option(
        None,
        "--by",
        help="Attribute naming each region; features sharing a value are merged (default: one region per feature, by "
        "its id).",
    ),
    vendor: VendorList = None,
    vendors: VendorsFile = None,
    csv: Optional[str] = typer.Option(
        None,
        "--csv",
        help="Write the table as CSV: one row per region, per-vendor columns, a TOTAL row ('-' for stdout).",
    ),
    gpkg: Optional[Path] = typer.Option(
        None,
        "--gpkg",
        help="Write the regions with the same columns as a GeoPackage (EPSG:4326; layer 'budget', and 'totals').",
    ),
    map_png: Optional[Path] = typer.Option(
        None, "--map", help="Draw a PNG choropleth of plan cost per km2 (first vendor) over the LR scene."
    ),
    model: Model = None,
    threshold: Threshold = None,
    bands: Bands = None,
    sensor: Sensor = None,
    device: Device = "auto",
    batch_size: TileBatchSize = 512,
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Plan each region from LR scenes and print (and write) its cost per vendor against buying it whole."""
    from zoomplan.plan.budget import budget

    with BlockProgress(show=not quiet) as progress:
        result = budget(
            regions,
            lr,
            by=by,
            vendors=vendor or None,
            vendors_file=vendors,
            model=model,
            threshold=threshold,
            device=device,
            out_csv=csv,
            out_gpkg=gpkg,
            map_png=map_png,
            bands=bands,
            sensor=sensor,
            batch_size=batch_size,
            progress=progress,
        )
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
        sel = f"{_num(r['patches_selected'], ',')} of {_num(r['patches_total'], ',')}" + (
            f" ({100 * r['fraction_selected']:.1f}%)" if _num(r["fraction_selected"], "") != "-" else ""
        )
        status = r["status"] + (
            f", {100 * r['covered_fraction']:.0f}% covered" if r["status"] == "partly outside scenes" else ""
        )
        t.add_row(
            str(r["region"]),
            status,
            _num(r["area_km2"], ".3f"),
            _num(r["overlap_km2"], ".3f"),
            _num(r["tiles"], ","),
            sel,
            style="bold" if total else None,
            end_section=i == len(recs) - 2,
        )
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
        t.add_row(
            str(r["region"]), *cells, style="bold" if r["region"] == "TOTAL" else None, end_section=i == len(recs) - 2
        )
    return t
