"""Bounded memory: plan() streams a scene whose decoded pixels are far larger than the memory it may use.

The big scene (8192 x 8192 px x 4 bands uint16 = 512 MiB decoded, a few MB on disk) is generated at run
time in tmp_path: 512 px tiled, DEFLATE, every block written, with data in the four corner blocks and
nodata (0) elsewhere, so that the planner decodes every block of the scene while the networks (a tiny
checkpoint) and the result table (which grows with the planned patches, ~32 B each, by design) stay the
same size as for a small scene (2048 px, the same four data blocks). plan() runs in a child process
over an AOI covering the whole scene; the child measures its own peak RSS (VmHWM) and its RSS once
imports and the checkpoint are loaded, with GDAL's block cache capped at 64 MB
(``zoomplan.geo.scene.GDAL_ENV["GDAL_CACHEMAX"]``, 256 MB by default). Asserted: the growth stays under
that cap + 128 MB = 192 MB, well under the scene's decoded 512 MiB (768 MiB once the model bands are
float32), and within 48 MB of the small scene's (memory flat in scene size). Marked slow (~30-70 s).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
from rasterio.transform import from_origin
from rasterio.windows import Window

from tests.helpers.synth import S2_DESCRIPTIONS, write_aoi

SIDE = 8192
"""Scene side in pixels (10 m): 81.9 km, two thirds of a Sentinel-2 tile's side (10980 px)."""
BLOCK = 512
DECODED_MB = SIDE * SIDE * 4 * 2 / 2**20
GDAL_CACHE_MB = 64
"""GDAL block cache cap set in the child (the library's default is 256 MB)."""
BUDGET_MB = GDAL_CACHE_MB + 128
"""Allowed growth of the planner's resident memory: GDAL's block cache cap + working set, MB."""


def big_sparse_scene(path: Path, side: int = SIDE, x0: float = 400000.0, y0: float = 4200000.0) -> Path:
    """A ``side`` x ``side`` px, 4-band uint16 UTM 18N scene: data in its four corner BLOCK px blocks, nodata (0)
    elsewhere."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:BLOCK, 0:BLOCK]
    base = 0.5 + 0.25 * np.sin(xx / 7.0) * np.cos(yy / 11.0)
    block = (
        np.clip(np.stack([base + 0.1 * rng.standard_normal((BLOCK, BLOCK)) for _ in range(4)]), 0.02, 1.0) * 3000
    ).astype("uint16")
    zero = np.zeros_like(block)
    profile = dict(
        driver="GTiff",
        width=side,
        height=side,
        count=4,
        dtype="uint16",
        crs="EPSG:32618",
        transform=from_origin(x0, y0, 10.0, 10.0),
        nodata=0,
        compress="deflate",
        tiled=True,
        blockxsize=BLOCK,
        blockysize=BLOCK,
        interleave="pixel",
    )
    corners = {0, side - BLOCK}
    with rasterio.open(path, "w", **profile) as dst:
        for i, d in enumerate(S2_DESCRIPTIONS):
            dst.set_band_description(i + 1, d)
        for r in range(0, side, BLOCK):
            for c in range(0, side, BLOCK):
                dst.write(block if (r in corners and c in corners) else zero, window=Window(c, r, BLOCK, BLOCK))
    return path


CHILD = textwrap.dedent(
    """
    import json, sys
    def rss(key):
        for line in open("/proc/self/status"):
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0
    import torch
    torch.set_num_threads(1)
    import zoomplan.geo.scene as scene_mod
    from zoomplan.plan.pipeline import plan
    from zoomplan.models.checkpoint import load_checkpoint
    scene_mod.GDAL_ENV = {**scene_mod.GDAL_ENV, "GDAL_CACHEMAX": int(sys.argv[5])}
    load_checkpoint(sys.argv[3])
    base = rss("VmRSS")
    r = plan(sys.argv[1], [sys.argv[2]], model=sys.argv[3], device="cpu", threshold=0.9, out=sys.argv[4])
    print(json.dumps({"base_mb": base, "peak_mb": rss("VmHWM"), "tiles": r.summary["tiles"]}))
    """
)


def run_plan(tmp_path: Path, side: int, ckpt: Path) -> dict:
    """plan() in a child over the whole of a generated ``side`` px scene: its RSS base, peak (MB) and tile counts."""
    from pyproj import Transformer

    scene = big_sparse_scene(tmp_path / f"scene{side}.tif", side)
    x0, y0 = 400000.0, 4200000.0
    t = Transformer.from_crs(32618, 4326, always_xy=True)
    poly = shapely.segmentize(shapely.box(x0 + 50, y0 - side * 10 + 50, x0 + side * 10 - 50, y0 - 50), 2000.0)
    aoi = write_aoi(
        tmp_path / f"aoi{side}.geojson",
        [shapely.transform(poly, lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1])))],
        "EPSG:4326",
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            str(aoi),
            str(scene),
            str(ckpt),
            str(tmp_path / f"order{side}.geojson"),
            str(GDAL_CACHE_MB),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    m = json.loads(proc.stdout.strip().splitlines()[-1])
    tiles = m["tiles"]
    assert tiles["planned"] == 4 * (BLOCK // 8) ** 2  # the four data blocks, the rest skipped as nodata
    assert tiles["planned"] + tiles["skipped_nodata"] == tiles["total"] >= (side // 8 - 2) ** 2
    return m


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="measures VmHWM in /proc (Linux)")
def test_plan_streams_a_scene_larger_than_its_memory_budget(tmp_path: Path, tiny_checkpoint: Path) -> None:
    assert DECODED_MB > 2 * BUDGET_MB
    small = run_plan(tmp_path, 2048, tiny_checkpoint)
    big = run_plan(tmp_path, SIDE, tiny_checkpoint)
    grown, grown_small = big["peak_mb"] - big["base_mb"], small["peak_mb"] - small["base_mb"]
    assert grown < BUDGET_MB, (
        f"plan() grew by {grown:.0f} MB over {big['base_mb']:.0f} MB for a {DECODED_MB:.0f} MB scene (budget "
        f"{BUDGET_MB} MB)"
    )
    assert grown < grown_small + 48, (
        f"plan() grew by {grown:.0f} MB on a 16x larger scene than the {grown_small:.0f} MB of a 2048 px one"
    )
