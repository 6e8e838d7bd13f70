"""``zoomplan plan``: AOI + Sentinel-2 scene(s) -> priced GeoJSON purchase order of HR imagery.

A thin command: it parses options, calls :func:`zoomplan.plan.pipeline.plan` and renders a summary
table on stderr. stdout carries only data (the order GeoJSON with ``--out -``), so it can be piped.
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


@app.command("plan")
def plan_command(
    aoi: Path = typer.Argument(..., help="AOI vector file (GeoJSON, GeoPackage, Shapefile, KML, FlatGeobuf; any CRS; Polygon/MultiPolygon)."),
    lr: list[Path] = typer.Option(..., "--lr", help="LR scene (GeoTIFF/COG/JP2). Repeat for several; the first that has data for a tile is used."),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="Order GeoJSON to write ('-' for stdout)."),
    patches: Optional[Path] = typer.Option(None, "--patches", help="Also write every AOI patch with its probability and selection (GeoJSON)."),
    quicklook: Optional[Path] = typer.Option(None, "--quicklook", help="Also render a PNG quicklook of the plan."),
    model: Optional[Path] = typer.Option(None, "--model", help="Checkpoint (default: the shipped model)."),
    vendor: Optional[str] = typer.Option(None, "--vendor", help="Vendor profile name (default: clip-30cm)."),
    vendors: Optional[Path] = typer.Option(None, "--vendors", help="Vendor catalogue TOML (default: the packaged configs/vendors.toml)."),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="Buy patches whose policy probability is above P (default 0.5, the paper's rule; 0 with --budget/--max-fraction)."),
    budget: Optional[float] = typer.Option(None, "--budget", help="Spend at most this many USD (most probable patches first)."),
    max_fraction: Optional[float] = typer.Option(None, "--max-fraction", help="Buy at most this share (0-1] of the AOI's patches."),
    bands: Optional[str] = typer.Option(None, "--bands", help="Scene bands for red,green,blue: numbers or names, e.g. 4,3,2 or B04,B03,B02 (default: from band descriptions)."),
    sensor: Optional[str] = typer.Option(None, "--sensor", help="Model card sensor mapping, e.g. sentinel2_toa or rgb8 (default: by data type)."),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda | cuda:N | mps."),
    batch_size: int = typer.Option(512, "--batch-size", help="Tiles per network batch."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No summary table or progress bar."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress details (INFO) on stderr."),
) -> None:
    """Plan which HR patches to buy over AOI from LR scenes, price them, write the purchase order."""
    from zoomplan.plan.pipeline import plan

    if verbose:
        logging.getLogger("zoomplan").setLevel(logging.INFO)
    show = not quiet and console.is_terminal
    progress = Progress(TextColumn("inference"), BarColumn(), MofNCompleteColumn(), TextColumn("blocks"), TimeElapsedColumn(), console=console, transient=True, disable=not show)
    task = progress.add_task("blocks", total=None)

    def on_block(done: int, total: int) -> None:
        progress.update(task, completed=done, total=total)

    try:
        with progress:
            result = plan(
                aoi, lr, model=model, vendor=vendor, vendors_file=vendors, threshold=threshold, budget_usd=budget,
                max_fraction=max_fraction, device=device, out=out, patches_out=patches, quicklook=quicklook,
                bands=bands, sensor=sensor, batch_size=batch_size, progress=on_block,
            )
    except ZoomplanError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None
    if not quiet:
        console.print(summary_table(result.summary, aoi.name))
        if len(result.summary.get("aoi_features", [])) > 1:
            console.print(features_table(result.summary["aoi_features"]))
        for w in result.written:
            if w != "-":
                console.print(f"wrote {w}")


def _usd(v: Any) -> str:
    return f"{float(v):,.2f} USD" if v is not None else "-"


def summary_table(s: dict[str, Any], title: str) -> Table:
    """The plan's headline figures (km^2, USD) as a two-column rich table."""
    t = Table(title=f"zoomplan plan: {title}", show_header=False, title_justify="left")
    t.add_column(style="bold")
    t.add_column()
    tiles = s["tiles"]
    skipped = tiles["skipped_nodata"] + tiles["outside_scenes"]
    t.add_row("AOI", f"{len(s['aoi_features'])} feature(s), {s['aoi_km2']:.3f} km2, {100 * s['aoi_covered_fraction']:.1f}% inside the scenes")
    t.add_row("Grid", f"{s['planning_crs']}, {s['tile_m']:g} m tiles, {s['patch_m']:g} m patches")
    t.add_row("Tiles", f"{tiles['planned']} planned of {tiles['total']}" + (f" ({tiles['skipped_nodata']} mostly nodata, {tiles['outside_scenes']} outside the scenes)" if skipped else ""))
    t.add_row("Patches", f"{s['patches_selected']} of {s['patches_total']} selected ({100 * s['fraction_selected']:.1f}%)")
    t.add_row("Vendor", f"{s.get('vendor', '?')}: {s.get('price_per_km2', 0):g} USD/km2 (as of {s.get('price_as_of', '?')})")
    t.add_row("Orders", f"{s.get('n_orders', 0)}, {s.get('plan_area_km2', 0):.3f} km2 ordered, {s.get('plan_billed_km2', 0):.3f} km2 billed")
    t.add_row("Plan cost", _usd(s.get("plan_cost_usd")))
    t.add_row("Baseline (whole AOI)", f"{_usd(s.get('baseline_cost_usd'))} ({s.get('baseline_billed_km2', 0):.3f} km2 billed)")
    t.add_row("Savings", f"{_usd(s.get('savings_usd'))} ({s.get('savings_pct', 0):.1f}%)")
    m = s["model"]
    t.add_row("Model", f"{m['id']} (policy {m['policy_stage']})")
    t.add_row("Scenes", ", ".join(f"{sc['id']}{' (resampled)' if sc['resampled'] else ''}" for sc in s["scenes"]))
    return t


def features_table(features: list[dict[str, Any]]) -> Table:
    """Per-feature patch counts (areas km^2)."""
    t = Table(title="AOI features", title_justify="left")
    for col in ("id", "name", "km2", "patches selected", "of"):
        t.add_column(col, justify="right" if col not in ("id", "name") else "left")
    for f in features:
        t.add_row(str(f["id"]), str(f["name"] or ""), f"{f['area_km2']:.3f}", str(f["patches_selected"]), str(f["patches_total"]))
    return t
