"""``zoomplan plan``: AOI + Sentinel-2 scene(s) -> priced GeoJSON purchase order of HR imagery.

A thin command: it parses options, calls :func:`zoomplan.plan.pipeline.plan` and renders a summary
table on stderr. stdout carries only data (the order GeoJSON with ``--out -``), so it can be piped.
"""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Any, Optional

import click
import typer
from rich.table import Table

from zoomplan.cli._progress import BlockProgress, console
from zoomplan.cli.app import app
from zoomplan.cli.errors import handle_errors
from zoomplan.cli.options import (
    Bands,
    Device,
    Model,
    Quiet,
    Sensor,
    Threads,
    Threshold,
    TileBatchSize,
    Vendor,
    VendorsFile,
    Verbose,
)
from zoomplan.errors import InputError


class Cloudy(str, Enum):
    """``--cloudy``: what to do with cloudy patches (zoomplan.plan.selection.clouds)."""

    buy = "buy"
    skip = "skip"
    ask = "ask"


@app.command("plan")
@handle_errors
def plan_command(
    aoi: Path = typer.Argument(
        ..., help="AOI vector file (GeoJSON, GeoPackage, Shapefile, KML, FlatGeobuf; any CRS; Polygon/MultiPolygon)."
    ),
    lr: Optional[list[Path]] = typer.Option(
        None,
        "--lr",
        help="LR scene (GeoTIFF/COG/JP2), or one file per band (repeat: B04.jp2 B03.jp2 B02.jp2) or their folder (a "
        "SAFE, or its .SAFE.zip as downloaded), or a STAC Item / ItemCollection JSON with per-band assets "
        "(red/green/blue or B04/B03/B02; local hrefs; raster:bands scale/offset read). Repeat for several scenes; the "
        "first that has data for a tile is used.",
    ),
    scenes: Optional[Path] = typer.Option(
        None,
        "--scenes",
        help="Scene list: text file of paths (one a line, # comments) or STAC-like JSON; after any --lr, least cloudy "
        "then most recent first.",
    ),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="Order GeoJSON to write ('-' for stdout)."),
    patches: Optional[Path] = typer.Option(
        None, "--patches", help="Also write every AOI patch with its probability and selection (GeoJSON)."
    ),
    quicklook: Optional[Path] = typer.Option(None, "--quicklook", help="Also render a PNG quicklook of the plan."),
    model: Model = None,
    vendor: Vendor = None,
    vendors: VendorsFile = None,
    threshold: Threshold = None,
    budget: Optional[float] = typer.Option(
        None,
        "--budget",
        help="Spend at most this many USD (most probable patches first; --threshold then defaults to 0).",
    ),
    max_fraction: Optional[float] = typer.Option(
        None,
        "--max-fraction",
        help="Buy at most this share (0-1] of the AOI's patches (--threshold then defaults to 0).",
    ),
    bands: Bands = None,
    sensor: Sensor = None,
    device: Device = "auto",
    batch_size: TileBatchSize = 512,
    threads: Threads = None,
    workers: Optional[int] = typer.Option(
        None,
        "--workers",
        help="Run inference on a local Dask cluster of N worker processes (pip install 'zoomplan\\[dask]'); same "
        "output.",
    ),
    dask: Optional[str] = typer.Option(
        None,
        "--dask",
        help="Run inference on the Dask scheduler at this address, e.g. tcp://host:8786 (workers must see the files); "
        "same output.",
    ),
    resume: bool = typer.Option(
        False,
        "--resume",
        help="Finish an interrupted plan (crash, kill): blocks already planned are taken from its journal; same "
        "output as an uninterrupted run.",
    ),
    journal: Optional[Path] = typer.Option(
        None,
        "--journal",
        help="Folder for the inference journal that --resume reads (default: a hidden folder beside --out; removed "
        "when the plan is written).",
    ),
    block_tiles: int = typer.Option(
        64, "--block-tiles", help="Tiles per side of a read block: memory per block, and what a resume redoes at most."
    ),
    force: bool = typer.Option(
        False,
        "--force",
        help="Plan even when a scene's values look like garbage (mostly saturated or constant tiles under the sensor "
        "mapping); recorded in the summary.",
    ),
    cloud_mask: Optional[list[Path]] = typer.Option(
        None,
        "--cloud-mask",
        help="Cloud mask raster of a scene (nonzero = cloud or shadow; a file named like SCL or QA_PIXEL is read by "
        "that product's rule), on any grid and CRS; the k-th goes with the k-th scene and wins over the product's own "
        "(Sentinel-2 SCL or MSK_CLASSI, Landsat QA_PIXEL, found beside the band files or as a STAC item's "
        "scl/SCL/qa_pixel asset).",
    ),
    cloudy: Optional[Cloudy] = typer.Option(
        None,
        "--cloudy",
        help="What to do with cloudy patches (over 25% of their LR pixels cloud or shadow in every scene with data): "
        "buy (default: the LR under a cloud says nothing, and the HR archive is bought from other dates, so they "
        "cannot be ruled out), skip (never buy them: cheaper, leaves holes), ask (prompt on a terminal; stop with the "
        "counts when stdin is not one). A clear scene of another date (another --lr) fills in.",
    ),
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Plan which HR patches to buy over AOI from LR scenes, price them, write the purchase order."""
    from zoomplan.plan.pipeline import run
    from zoomplan.plan.request import PlanRequest

    def ask(counts: dict[str, float]) -> str:
        """--cloudy ask: a prompt on stderr when stdin is a terminal, else the one-line stop with the counts."""
        from zoomplan.plan.selection.clouds import question, undecided

        if not sys.stdin.isatty():
            raise undecided(counts)
        with progress.paused():
            return str(
                click.prompt(f"{question(counts)}: buy or skip them?", type=click.Choice(["buy", "skip"]), err=True)
            )

    scene_paths, rule = _scene_paths(lr or [], scenes)
    request = PlanRequest(  # validated once, here: a bad value stops before anything is read
        aoi=aoi,
        scenes=tuple(scene_paths),
        scene_rule=rule,
        model=model,
        vendor=vendor,
        vendors_file=vendors,
        threshold=threshold,
        budget_usd=budget,
        max_fraction=max_fraction,
        device=device,
        out=out,
        patches_out=patches,
        quicklook=quicklook,
        bands=bands,
        sensor=sensor,
        batch_size=batch_size,
        cluster=_cluster(workers, dask),
        resume=resume,
        journal=journal,
        block_tiles=block_tiles,
        threads=threads,
        force=force,
        cloud_masks=tuple(cloud_mask or ()),
        cloudy=cloudy.value if cloudy else None,
    )
    progress = BlockProgress(show=not quiet)
    with progress:
        result = run(request, progress=progress, ask_cloudy=ask)
    if not quiet:
        console.print(summary_table(result.summary, aoi.name))
        if resume:
            console.print(
                f"resumed: {result.blocks_resumed} block(s) of inference taken from the interrupted run's journal"
            )
        if len(result.summary.get("aoi_features", [])) > 1:
            console.print(features_table(result.summary["aoi_features"]))
        for w in result.written:
            if w != "-":
                console.print(f"wrote {w}")


def _cluster(workers: Optional[int], dask: Optional[str]) -> Optional[str | int]:
    """--workers N or --dask ADDRESS (not both) as plan()'s ``cluster``."""
    if workers is not None and dask is not None:
        raise InputError(
            "--workers and --dask both given: pass --workers N for a local cluster or --dask ADDRESS for a running one"
        )
    return dask if dask is not None else workers


def _scene_paths(lr: list[Path], scenes: Optional[Path]) -> tuple[list[Path], Optional[str]]:
    """--lr scenes in the order given, then the --scenes list in its overlap order; the rule (None without a list)."""
    if scenes is None:
        if not lr:
            raise InputError("no LR scene given: pass --lr SCENE (a Sentinel-2 GeoTIFF, COG or JP2) or --scenes LIST")
        from zoomplan.geo.products.stac_collection import item_collection_rule

        return list(lr), item_collection_rule(lr)
    from zoomplan.geo.scenelist import order_scenes, read_scene_list

    ordered, rule = order_scenes(read_scene_list(scenes))
    if lr:
        rule = f"--lr scenes first, in the order given; then the --scenes list: {rule}"
    return [*lr, *(e.path for e in ordered)], rule


def _usd(v: Any) -> str:
    return f"{float(v):,.2f} USD" if v is not None else "-"


def _rules_text(r: dict[str, Any] | None) -> str:
    """What the order rules did (summary ``order_rules``), where they did something: one line each."""
    if not r:
        return ""
    out = []
    o = r["overlaps"]
    if o["shared_area_km2"] > 0:
        out.append(f"{o['shared_area_km2']:.3f} km2 shared by AOI features bought once")
    if o["billed_twice_km2"] > 0:
        out.append(f"{o['billed_twice_km2']:.3f} km2 billed twice: {o['why']}")
    c = r["crumbs"]
    if c["crumbs"]:
        out.append(
            f"{c['crumbs']} crumb(s) under {c['share']:.0%} of a patch not ordered for themselves: {c['merged']} "
            f"merged, "
            f"{c['dropped']} dropped ({c['dropped_km2']:.6f} km2)"
        )
    h = r["holes"]
    if h["choices"]:
        out.append(
            f"AOI holes: {h['orders_split']} order(s) split around ({h['hole_km2_not_bought']:.3f} km2 not bought), "
            f"{h['orders_filled']} filled ({h['hole_km2_bought']:.3f} km2 bought)"
        )
    w = r["width"]
    if w["orders_narrower"]:
        out.append(f"{w['orders_narrower']} order(s) narrower than {w['min_width_m']:g} m where the AOI is")
    return "\n".join(out)


def summary_table(s: dict[str, Any], title: str) -> Table:
    """The plan's headline figures (km^2, USD) as a two-column rich table."""
    t = Table(title=f"zoomplan plan: {title}", show_header=False, title_justify="left")
    t.add_column(style="bold")
    t.add_column()
    tiles = s["tiles"]
    skipped = tiles["skipped_nodata"] + tiles["outside_scenes"]
    t.add_row(
        "AOI",
        f"{len(s['aoi_features'])} feature(s), {s['aoi_km2']:.3f} km2, {100 * s['aoi_covered_fraction']:.1f}% inside "
        f"the scenes",
    )
    t.add_row("Grid", f"{s['planning_crs']}, {s['tile_m']:g} m tiles, {s['patch_m']:g} m patches")
    t.add_row(
        "Tiles",
        f"{tiles['planned']} planned of {tiles['total']}"
        + (
            f" ({tiles['skipped_nodata']} mostly nodata, {tiles['outside_scenes']} outside the scenes)"
            if skipped
            else ""
        ),
    )
    t.add_row(
        "Patches", f"{s['patches_selected']} of {s['patches_total']} selected ({100 * s['fraction_selected']:.1f}%)"
    )
    d = s.get("dropped")
    if d and d.get("n_patches"):
        t.add_row(
            "Dropped (budget)",
            f"{d['n_patches']} of the {d['considered_patches']} most probable patches, in {d['n_orders']} order(s) "
            f"worth {d['value']:.2f} for {_usd(d['cost_usd'])}: {d['reason']}",
        )
    c = s.get("clouds")
    if c:
        t.add_row(
            "Clouds",
            f"{c['patches_cloudy']} patches ({c['cloudy_km2']:.3f} km2) under cloud or shadow in every scene: "
            f"{c['done']} ({c['chosen_by']})"
            + (
                f"; {c['patches_filled']} ({c['filled_km2']:.3f} km2) filled in from a clearer scene"
                if c["patches_filled"]
                else ""
            ),
        )
    else:
        t.add_row(
            "Clouds", "not checked: no cloud mask with the scenes (pass --cloud-mask FILE, or the product's folder)"
        )
    t.add_row(
        "Vendor", f"{s.get('vendor', '?')}: {s.get('price_per_km2', 0):g} USD/km2 (as of {s.get('price_as_of', '?')})"
    )
    t.add_row(
        "Orders",
        f"{s.get('n_orders', 0)}, {s.get('plan_area_km2', 0):.3f} km2 ordered, {s.get('plan_billed_km2', 0):.3f} km2 "
        f"billed",
    )
    t.add_row("Plan cost", _usd(s.get("plan_cost_usd")))
    t.add_row(
        "Baseline (whole AOI)", f"{_usd(s.get('baseline_cost_usd'))} ({s.get('baseline_billed_km2', 0):.3f} km2 billed)"
    )
    t.add_row("Savings", f"{_usd(s.get('savings_usd'))} ({s.get('savings_pct', 0):.1f}%)")
    rules = _rules_text(s.get("order_rules"))
    if rules:
        t.add_row("Order rules", rules)
    m = s["model"]
    t.add_row("Model", f"{m['id']} (policy {m['policy_stage']})")
    t.add_row("Scenes", ", ".join(f"{sc['id']}{' (resampled)' if sc['resampled'] else ''}" for sc in s["scenes"]))
    if s.get("parameters", {}).get("scene_rule"):
        t.add_row("Overlaps", s["parameters"]["scene_rule"])
    return t


def features_table(features: list[dict[str, Any]]) -> Table:
    """Per-feature patch counts (areas km^2)."""
    t = Table(title="AOI features", title_justify="left")
    for col in ("id", "name", "km2", "patches selected", "of"):
        t.add_column(col, justify="right" if col not in ("id", "name") else "left")
    for f in features:
        t.add_row(
            str(f["id"]),
            str(f["name"] or ""),
            f"{f['area_km2']:.3f}",
            str(f["patches_selected"]),
            str(f["patches_total"]),
        )
    return t
