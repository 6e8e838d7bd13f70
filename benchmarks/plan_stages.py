"""Where a plan's time goes after inference, each figure beside a baseline measured in the same run.

On the scenes and AOIs of ``plan_throughput.py`` (built, or reused from its ``--workdir``), per scale:

- reader: the inference reader walking every AOI block (decode, tile geometry, chips; no networks),
  with nodata masks taken from the read pixels (what the planner does) against GDAL's ``read_masks``
  (the baseline, which decodes each window again);
- consolidation: ``build_orders`` on the same selection with pieces fitted to the vertex limit in
  ``FIT_THREADS`` threads against one thread (the orders must be the same, byte for byte);
- labelling: the masks consolidation labels (the union and two closings) with ``scipy.ndimage``
  (``morphology.fill_and_label``) against polygonising them with GDAL and rasterising the exteriors
  (what it did before; the same components);
- the order GeoJSON: building the FeatureCollection (reprojection, snapping, validation), timed alone;
- a cProfile of ``build_orders`` (default fitting threads): labelling masks (scipy), drawing the
  components that need outlines (GDAL), clipping and simplifying arrays of pieces in threads (GEOS,
  wall time), making pieces orderable (simplifying, vertex fitting), and the total.

Usage::

    python benchmarks/plan_stages.py --scale 1 4          # the figures of docs/plan.md (~3 min here)
"""

from __future__ import annotations

import argparse
import cProfile
import math
import pstats
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from plan_throughput import S2_TILE_PX, SCENE, build_scene, write_aoi  # noqa: E402


def _reader_seconds(inp: object, ckpt: object, nodata_rule: bool) -> float:
    """Seconds to walk every AOI block through the inference reader, without the networks."""
    import zoomplan.geo.scene as scene_mod
    from zoomplan.plan.inference.blocks import BlockGeometry, block_works, open_readers

    grid, scenes = inp.grid, inp.used  # type: ignore[attr-defined]
    g = BlockGeometry.of(scenes, list(inp.aoi.geoms), grid)  # type: ignore[attr-defined]
    card = ckpt.card  # type: ignore[attr-defined]
    mean = np.asarray(card.lr_norm.mean, np.float32)[None, :, None, None]
    std = np.asarray(card.lr_norm.std, np.float32)[None, :, None, None]
    real = scene_mod._mask_rule
    if not nodata_rule:
        scene_mod._mask_rule = lambda ds, bands: None  # every window's mask through read_masks
    try:
        readers, clouds = open_readers(scenes, grid, g.extents)
        t = time.perf_counter()
        for _ in block_works(
            grid, list(grid.blocks(g.full, 64)), readers, g, min_valid=0.5, mean=mean, std=std, clouds=clouds
        ):
            pass
        return time.perf_counter() - t
    finally:
        scene_mod._mask_rule = real


def _gdal_labels(a: np.ndarray) -> tuple[np.ndarray, int]:
    """The baseline labelling: polygonise ``a`` with GDAL (4-connected exteriors), rasterise the
    exteriors in order and drop the nested ones (what consolidation did before scipy labels)."""
    import rasterio.features

    ext = [
        {"type": "Polygon", "coordinates": [g["coordinates"][0]]}
        for g, _ in rasterio.features.shapes(a.astype(np.uint8), mask=a, connectivity=4)
    ]
    raw = rasterio.features.rasterize(zip(ext, range(1, len(ext) + 1)), out_shape=a.shape, dtype=np.int32)
    ids = np.nonzero(np.bincount(raw.ravel(), minlength=len(ext) + 1)[1:])[0] + 1
    renumber = np.zeros(len(ext) + 1, np.int32)
    renumber[ids] = np.arange(1, ids.size + 1, dtype=np.int32)
    return renumber[raw], int(ids.size)


def _labelling(table: object, sel: np.ndarray, geoms: list) -> None:
    """Labelling the masks consolidation labels (the union, its 2x1 and 3x1 closings): scipy against GDAL."""
    from zoomplan.plan.orders.morphology import closing, fill_and_label
    from zoomplan.plan.orders.orders import _check_aoi
    from zoomplan.plan.orders.window import Window

    f = _check_aoi(geoms[0], 0)
    s = np.nonzero(sel & (table.aoi_index == 0))[0]  # type: ignore[attr-defined]
    w = Window(table, s, f, 34)  # type: ignore[arg-type]
    base = fill_and_label(w.a)[0]
    masks = [w.a, closing(base, 2, 1) & w.d, closing(base, 3, 1) & w.d]
    t = time.perf_counter()
    ours = [fill_and_label(m) for m in masks]
    sci = time.perf_counter() - t
    t = time.perf_counter()
    ref = [_gdal_labels(m) for m in masks]
    gdal = time.perf_counter() - t
    same = all(o[2] == r[1] and np.array_equal(o[1] > 0, r[0] > 0) for o, r in zip(ours, ref))
    print(
        f"  labelling 3 masks ({w.shape[0]} x {w.shape[1]} cells, {', '.join(str(o[2]) for o in ours)} components): "
        f"scipy {sci:.2f} s, GDAL polygonise + rasterise {gdal:.2f} s (x{gdal / sci:.1f}); same components: {same}"
    )


def bench(scene: Path, aoi: Path) -> None:
    import torch

    import zoomplan.plan.orders.orderable as orderable_mod
    from zoomplan.models.checkpoint import load_checkpoint
    from zoomplan.plan.export.geojson import order_feature_collection
    from zoomplan.plan.inference.infer import infer_patches
    from zoomplan.plan.inputs import inside_scenes, open_plan_inputs
    from zoomplan.plan.orders import orders as orders_mod
    from zoomplan.plan.orders import pricing
    from zoomplan.plan.selection import select

    ckpt = load_checkpoint(None)
    inp = open_plan_inputs(aoi, [scene], ckpt)
    read_masks = _reader_seconds(inp, ckpt, nodata_rule=False)
    rule = _reader_seconds(inp, ckpt, nodata_rule=True)
    print(
        f"  reader (no networks): nodata rule on read pixels {rule:.2f} s, read_masks {read_masks:.2f} s "
        f"(x{read_masks / rule:.2f})"
    )

    table = infer_patches(ckpt, inp.used, inp.aoi.geoms, inp.grid, torch.device("cpu")).table
    geoms = inside_scenes(list(inp.aoi.geoms), inp.cover)
    vendor = pricing.get_vendor(pricing.DEFAULT_VENDOR, pricing.load_vendors(None))
    sel = np.asarray(select.select(table, geoms, vendor, threshold=0.5).selected, bool)

    def timed_orders(threads: int) -> tuple[float, list]:
        orderable_mod.FIT_THREADS = threads
        t = time.perf_counter()
        out = orders_mod.build_orders(table, sel, geoms, vendor)
        return time.perf_counter() - t, out

    default = orderable_mod.FIT_THREADS
    one, o1 = timed_orders(1)
    many, on = timed_orders(default)
    same = [o.geometry.wkb for o in o1] == [o.geometry.wkb for o in on]
    print(
        f"  consolidation ({len(on)} orders, {vendor.name}): {default} fitting threads {many:.2f} s, 1 thread "
        f"{one:.2f} s "
        f"(x{one / many:.2f}); same orders: {same}"
    )

    _labelling(table, sel, geoms)

    t = time.perf_counter()
    order_feature_collection(on, {}, table.crs)
    print(f"  order GeoJSON built (reprojected, snapped, validated): {time.perf_counter() - t:.2f} s")

    prof = cProfile.Profile()
    prof.enable()
    t = time.perf_counter()
    orders_mod.build_orders(table, sel, geoms, vendor)
    total = time.perf_counter() - t
    prof.disable()
    st = pstats.Stats(prof).stats  # type: ignore[attr-defined]

    def cum(module: str, name: str) -> float:
        return sum(v[3] for (f, _, fn), v in st.items() if f.endswith(module) and fn == name)

    print(
        f"  consolidation profile (cProfile, {total:.2f} s): labelling masks (scipy) "
        f"{cum('morphology.py', 'fill_and_label'):.2f} s, "
        f"drawing components (GDAL) {cum('morphology.py', 'label_polygons'):.2f} s, "
        f"clipping to the AOI and simplifying, in threads (wall) {cum('orderable.py', 'threaded'):.2f} s, "
        f"making pieces orderable (its simplifying, vertex fitting in threads) {cum('orderable.py', 'orderable'):.2f} "
        f"s "
        f"(cProfile sees only the main thread: threaded work counts as waiting)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, nargs="+", default=[1.0, 4.0], help="scene area multiples (default 1 4)")
    ap.add_argument(
        "--aoi-fraction", type=float, default=0.125, help="AOI side as a fraction of the scene side (default 0.125)"
    )
    ap.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "zoomplan-bench",
        help="where scenes are built and cached",
    )
    args = ap.parse_args()
    if not SCENE.is_file():
        raise SystemExit(f"scene {SCENE} not found: this benchmark needs ../shared/data/sentinel2")
    args.workdir.mkdir(parents=True, exist_ok=True)
    for scale in args.scale:
        side = int(round(S2_TILE_PX * math.sqrt(scale)))
        scene = build_scene(SCENE, args.workdir / f"s2_mosaic_{side}.tif", side)
        aoi, km2 = write_aoi(scene, args.workdir / f"aoi_{side}_{args.aoi_fraction:g}.geojson", args.aoi_fraction)
        print(f"scene {side} x {side} px ({scale:g}x), AOI {km2:,.1f} km2", flush=True)
        bench(scene, aoi)


if __name__ == "__main__":
    main()
