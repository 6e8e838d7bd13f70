"""``zoomplan export ORDER.geojson --format F --out PATH``: an order file as GIS files or vendor payloads.

A thin command over :func:`zoomplan.plan.export.export_order`: one line per file written on
stderr (stdout stays empty); bad input prints one line ``error: ...`` and exits 2 with nothing written.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from zoomplan.cli.app import app
from zoomplan.cli.errors import handle_errors
from zoomplan.cli.options import VendorsFile, Verbose


@app.command("export")
@handle_errors
def export_command(
    order: Path = typer.Argument(..., help="Order GeoJSON written by 'zoomplan plan --out'."),
    out: Path = typer.Option(
        ...,
        "--out",
        "-o",
        help="File to write (.kml, .gpkg, .shp or .zip for a zipped Shapefile, .csv, or .json for payloads).",
    ),
    fmt: Optional[str] = typer.Option(
        None,
        "--format",
        "-f",
        help="kml | gpkg | shp | csv | planet | up42 | skyfi | stapi (default: from --out's ending; required for "
        "payloads).",
    ),
    vendors: VendorsFile = None,
    window: Optional[str] = typer.Option(
        None,
        "--window",
        help="START/END dates (UTC) for payload time windows, e.g. 2026-12-01/2027-01-31 (default: last 365 days for "
        "archive, next 30 days for tasking).",
    ),
    verbose: Verbose = False,
) -> None:
    """Write ORDER as KML, GeoPackage, Shapefile, CSV (WKT), or vendor order payloads (Planet, UP42, SkyFi, STAPI).

    Payloads take the vendor profiles from --vendors: pass the catalogue the plan used.
    """
    from zoomplan.plan.export import export_order, parse_window

    win = parse_window(window) if window is not None else None
    result = export_order(order, out, fmt, vendors_file=vendors, window=win)
    for p in result.written:
        print(f"wrote {p}", file=sys.stderr)
    if result.placeholders:
        print(
            f"note: {result.placeholders} value(s) start with TO_FILL (ids zoomplan cannot know offline): fill them "
            f"in before submitting",
            file=sys.stderr,
        )
