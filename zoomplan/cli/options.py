"""Options shared by several commands, each declared once with one help text.

A command takes one as the annotation of its parameter and gives the default there (no default: the
option is required)::

    @app.command("budget")
    @handle_errors
    def budget_command(..., model: Model = None, device: Device = "auto", verbose: Verbose = False) -> None:

Options that only one command has (``plan --scenes``, ``plan --cloud-mask``...) are declared in that
command's module.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Optional

import typer

# Scenes and models -------------------------------------------------------------------------------

LrScenes = Annotated[
    Optional[list[Path]],
    typer.Option(
        "--lr",
        help="LR scene (GeoTIFF/COG/JP2), or the folder of its band files. Repeat for several; the first that has "
        "data for a tile is used.",
    ),
]
Model = Annotated[Optional[Path], typer.Option("--model", help="Checkpoint (default: the shipped model).")]
Bands = Annotated[
    Optional[str],
    typer.Option(
        "--bands",
        help="Scene bands for red,green,blue: numbers or names, e.g. 4,3,2 or B04,B03,B02 (default: from band "
        "descriptions).",
    ),
]
Sensor = Annotated[
    Optional[str],
    typer.Option(
        "--sensor",
        help="Sensor mapping: the model card's (sentinel2_toa, rgb8) or configs/sensors.toml's (sentinel2_l1c_pb04, "
        "sentinel2_l2a, sentinel2_l2a_pb04, landsat_c2l2, reflectance). Default: product metadata (a STAC "
        "item's raster:bands scale/offset or s2:processing_baseline; a Sentinel-2 MTD_MSI*.xml offset; a "
        "Landsat MTL file's per-band Level-1 TOA or Level-2 coefficients), else by data type.",
    ),
]
Threshold = Annotated[
    Optional[float],
    typer.Option(
        "--threshold",
        help="Select (buy) patches whose policy probability is above P (default 0.5, the paper's rule; 0 "
        "selects every patch, above 1 none).",
    ),
]

# Compute -----------------------------------------------------------------------------------------

Device = Annotated[str, typer.Option("--device", help="auto | cpu | cuda | cuda:N | mps.")]
TileBatchSize = Annotated[int, typer.Option("--batch-size", help="Tiles per network batch.")]
ImageBatchSize = Annotated[int, typer.Option("--batch-size", help="Images per forward pass.")]
Threads = Annotated[
    Optional[int],
    typer.Option(
        "--threads",
        help="torch threads for the networks on CPU (default: every core; 1 is faster on a machine busy with "
        "other work).",
    ),
]

# Vendors -----------------------------------------------------------------------------------------

VendorsFile = Annotated[
    Optional[Path],
    typer.Option("--vendors", help="Vendor catalogue TOML (default: the packaged configs/vendors.toml)."),
]
Vendor = Annotated[Optional[str], typer.Option("--vendor", help="Vendor profile name (default: clip-30cm).")]
VendorList = Annotated[
    Optional[list[str]],
    typer.Option(
        "--vendor",
        help="Vendor profile to price; repeat for several (default: every profile in the catalogue). The first "
        "colours the map.",
    ),
]

# Datasets (train, evaluate) ----------------------------------------------------------------------

Sources = Annotated[
    Optional[list[str]],
    typer.Option(
        "--source",
        help="NAME=DIR for each source of a joint dataset, the recipe's \\[data.sources.NAME] (repeat), e.g. "
        "--source ucmerced=../shared/data/ucmerced --source rsscn7=../shared/data/rsscn7.",
    ),
]
Splits = Annotated[
    Optional[Path],
    typer.Option(
        "--splits", help="Split CSV with columns path,label,split (paths relative to --root) for class-folder datasets."
    ),
]

# Output ------------------------------------------------------------------------------------------


def _verbose(value: bool) -> None:
    if value:
        logging.getLogger("zoomplan").setLevel(logging.INFO)


Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No tables or progress bar.")]
Verbose = Annotated[
    bool, typer.Option("--verbose", "-v", callback=_verbose, help="Log progress details (INFO) on stderr.")
]
