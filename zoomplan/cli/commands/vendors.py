"""``zoomplan vendors``: the vendor catalogue (prices, minimums, geometry rules, source and date).

The table is the command's output, so it goes to stdout (``--json`` for machine-readable JSON);
errors go to stderr as one line with exit code 2.
"""

from __future__ import annotations

import dataclasses
import json
import sys

import typer
from rich.console import Console
from rich.table import Table

from zoomplan.cli.app import app
from zoomplan.cli.errors import handle_errors
from zoomplan.cli.options import VendorsFile

COLUMNS = (
    "name",
    "product",
    "resolution m",
    "kind",
    "USD/km2",
    "min km2",
    "min width m",
    "max vertices",
    "multipolygon",
    "cloud %",
    "off-nadir deg",
    "source",
    "as of",
)


@app.command("vendors")
@handle_errors
def vendors_command(
    vendors: VendorsFile = None,
    as_json: bool = typer.Option(
        False, "--json", help="Print the profiles as a JSON list on stdout instead of a table."
    ),
) -> None:
    """List the vendor profiles: resolution, archive or tasking, price per km2, minimums, limits, price source and
    date."""
    from zoomplan.plan.orders.pricing import default_catalogue, load_vendors

    profiles = load_vendors(vendors)
    if as_json:
        sys.stdout.write(json.dumps([dataclasses.asdict(v) for v in profiles.values()], indent=2) + "\n")
        return
    out = Console(width=None if sys.stdout.isatty() else 200)
    t = Table(title=f"Vendor profiles ({vendors or default_catalogue()}); prices are indicative", title_justify="left")
    for c in COLUMNS:
        t.add_column(
            c,
            justify="right"
            if c in ("resolution m", "USD/km2", "min km2", "min width m", "max vertices", "cloud %", "off-nadir deg")
            else "left",
            overflow="fold",
        )
    for v in profiles.values():
        t.add_row(
            v.name,
            v.product,
            f"{v.resolution_m:g}",
            v.kind,
            f"{v.price_per_km2:g}",
            f"{v.min_order_km2:g}",
            f"{v.min_width_m:g}" if v.min_width_m else "-",
            str(v.max_vertices),
            "yes" if v.allows_multipolygon else "no",
            f"{v.cloud_max_pct:g}",
            f"{v.off_nadir_max_deg:g}",
            v.source,
            v.as_of,
        )
    out.print(t)
