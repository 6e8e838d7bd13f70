"""Planner throughput on a Sentinel-2-tile-sized scene, against its floors, measured side by side in one run.

The scene is built at run time (never committed) by mirror-tiling the real Sentinel-2 scene of
``../shared/data/sentinel2`` (1933 x 1947 px, 10 m, EPSG:32618) to ``--size`` x ``--size`` px (default
10980, one Sentinel-2 MGRS tile) x 4 bands uint16, written as a tiled (512 px) ZSTD-compressed GeoTIFF
(the layout of a COG, without overviews) that keeps the real scene's UTM origin and 10 m pixels and
extends east and south. ``--scale S`` multiplies the scene's *area* by S (side x sqrt(S)): 4 gives
21960 x 21960 px. The AOI is a lon/lat square centred on the scene, ``--aoi-fraction`` of its side
(1.0: the whole scene, 100 m inside its edges), so it also grows S times.

Measurements, each in its own child process (its peak RSS from ``os.wait4``; its time measured inside
the child around the work, so Python and torch start-up are excluded from all four alike), in this order:

(a) read floor: decode the AOI's pixels once (the model's 3 bands, window by window along the file's
    512 px blocks) with rasterio, nothing else;
(d) ``zoomplan.plan.pipeline.plan`` end to end (what ``zoomplan plan`` calls: checkpoint, AOI, scene,
    inference, selection, orders, pricing, GeoJSON written);
(c) compute floor: the same model's forward passes (policy + LR classifier, :class:`TileModels`) over
    as many tiles as (d) planned, as ready-made normalised batches of ``--batch-size`` in memory (on CPU
    with the planner's torch thread count on every tile, and with one thread fewer on 40 batches,
    extrapolated; the faster counts);
(b) the naive pipeline a user would write: per tile one rasterio window read (8 x 8 px) and one model
    call (policy + LR classifier on a batch of 1), with torch's default thread count; only
    ``--sample-tiles`` random AOI tiles are timed and the rate is extrapolated to the AOI's tiles
    (the output says so).

(a), (d) and (c) run ``--repeat`` times, interleaved (a, d, c, a, d, c, ...), and the fastest run of
each is reported, every run's time beside it: this VM's speed drifts by 10-40% between processes, and
the minimum of repeated runs is the usual estimate of what the work itself costs.

Ratios: (d)/max(a, c) and (d)/(a + c) (1 = perfect overlap of decoding and compute / none), (b)/(d)
(how much faster the planner is than the naive loop), and time and peak RSS of (d) at each scale.
(d) is also split by stage (``PlanResult.timings``): its inference stage (decode, tile and networks,
overlapped) over max(a, c) says how well the streaming part overlaps; the rest is order consolidation,
pricing and writing, which need the whole AOI's selection first.

Usage::

    python benchmarks/plan_throughput.py                      # 10980^2 (1x) and 21960^2 (4x), whole scene
    python benchmarks/plan_throughput.py --quick              # 2745^2 and 5490^2 px, for development
    python benchmarks/plan_throughput.py --scale 1 --aoi-fraction 0.25 --device cpu --batch-size 512

Scenes are cached in ``--workdir`` (default: a ``zoomplan-bench`` folder in the temp dir) and reused;
delete it when done (each 1x scene is about 0.5-0.6 GB on disk, 4x about 2 GB).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve()
SCENE = HERE.parents[2] / "shared" / "data" / "sentinel2" / "s2_l1c_18SVG_20160112_rgbn_10m.tif"
SECOND_COUNT_BATCHES = 40
"""(c) with the other thread count is timed on this many batches and extrapolated."""
S2_TILE_PX = 10980
"""Side of one Sentinel-2 MGRS tile at 10 m, pixels."""


# ---------------------------------------------------------------- building the scene and the AOI


def mirror_index(n_out: int, n_src: int, start: int = 0) -> np.ndarray:
    """Source indices of output indices ``start .. start + n_out`` when a length-``n_src`` axis is
    mirror-tiled (0, 1, .., n-1, n-1, .., 0, 0, 1, ..): neighbouring copies meet edge to edge."""
    i = np.arange(start, start + n_out) % (2 * n_src)
    return np.where(i < n_src, i, 2 * n_src - 1 - i)


def build_scene(src_path: Path, out: Path, side: int, block: int = 512) -> Path:
    """Write a ``side`` x ``side`` px mirror mosaic of ``src_path`` (same CRS, origin and pixel size;
    tiled ``block`` px, ZSTD + horizontal predictor) to ``out``; reuses ``out`` when it exists."""
    import rasterio
    from rasterio.windows import Window

    if out.is_file():
        return out
    with rasterio.open(src_path) as src:
        data = src.read()
        prof = src.profile
        desc = src.descriptions
    tmp = out.with_suffix(".part.tif")
    prof.update(
        width=side,
        height=side,
        tiled=True,
        blockxsize=block,
        blockysize=block,
        compress="zstd",
        predictor=2,
        interleave="pixel",
        num_threads="all_cpus",
        bigtiff="if_safer",
    )
    _, h, w = data.shape
    with rasterio.open(tmp, "w", **prof) as dst:
        for i, d in enumerate(desc):
            dst.set_band_description(i + 1, d or "")
        for r0 in range(0, side, block):
            rows = mirror_index(min(block, side - r0), h, r0)
            strip = data[:, rows, :]
            for c0 in range(0, side, block):
                cols = mirror_index(min(block, side - c0), w, c0)
                dst.write(strip[:, :, cols], window=Window(c0, r0, cols.size, rows.size))
    os.replace(tmp, out)
    return out


def write_aoi(scene: Path, out: Path, fraction: float, inset_m: float = 100.0) -> tuple[Path, float]:
    """A one-feature lon/lat GeoJSON AOI: the square centred on ``scene`` of ``fraction`` of its side
    (inset ``inset_m`` metres from the scene's edges). Returns the path and its area in km^2 (UTM)."""
    import rasterio
    import shapely
    from pyproj import Transformer
    from shapely.geometry import mapping

    with rasterio.open(scene) as ds:
        b = ds.bounds
        to_ll = Transformer.from_crs(ds.crs, "EPSG:4326", always_xy=True)
    cx, cy = (b.left + b.right) / 2, (b.bottom + b.top) / 2
    half = min(fraction * (b.right - b.left) / 2, (b.right - b.left) / 2 - inset_m)
    poly = shapely.segmentize(shapely.box(cx - half, cy - half, cx + half, cy + half), 500.0)
    ll = shapely.transform(poly, lambda xy: np.column_stack(to_ll.transform(xy[:, 0], xy[:, 1])))
    fc = {
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "properties": {"id": "bench"}, "geometry": mapping(ll)}],
    }
    out.write_text(json.dumps(fc))
    return out, poly.area / 1e6


# ---------------------------------------------------------------- the four measurements (run in children)


def _aoi_window(scene: Path, aoi: Path) -> tuple[Any, Any]:
    """The AOI's pixel window in ``scene`` (bounding box, in the scene's CRS) and the open dataset."""
    import rasterio
    from rasterio.windows import from_bounds

    from zoomplan.geo.aoi import read_aoi

    ds = rasterio.open(scene)
    a = read_aoi(aoi).to_crs(ds.crs)
    win = from_bounds(*a.union().bounds, transform=ds.transform).round_offsets().round_lengths()
    return ds, win.intersection(rasterio.windows.Window(0, 0, ds.width, ds.height))


def measure_read(scene: Path, aoi: Path) -> dict[str, Any]:
    """(a): decode the AOI's pixels (bands 1-3) once, along the file's blocks."""
    from rasterio.windows import Window

    ds, win = _aoi_window(scene, aoi)
    bx, by = ds.block_shapes[0][1], ds.block_shapes[0][0]
    t = time.perf_counter()
    px = 0
    r_end, c_end = win.row_off + win.height, win.col_off + win.width
    for r0 in range((win.row_off // by) * by, r_end, by):
        for c0 in range((win.col_off // bx) * bx, c_end, bx):
            r, c = max(r0, win.row_off), max(c0, win.col_off)
            w = Window(c, r, min(c0 + bx, c_end) - c, min(r0 + by, r_end) - r)
            px += ds.read([1, 2, 3], window=w).shape[1] * w.width
    dt = time.perf_counter() - t
    ds.close()
    return {"seconds": dt, "pixels": px}


def measure_plan(scene: Path, aoi: Path, out: Path, device: str, batch_size: int, model: str | None) -> dict[str, Any]:
    """(d): ``plan()`` end to end, GeoJSON written."""
    from zoomplan.plan.pipeline import plan

    t = time.perf_counter()
    r = plan(aoi, [scene], model=model, device=device, batch_size=batch_size, out=out)
    dt = time.perf_counter() - t
    s = r.summary
    return {
        "seconds": dt,
        "tiles": s["tiles"]["planned"],
        "tiles_total": s["tiles"]["total"],
        "patches": s["patches_total"],
        "aoi_km2": s["aoi_km2"],
        "selected": s["patches_selected"],
        "orders": s.get("n_orders"),
        "stages": r.timings,
    }


def _models(device: str, batch_size: int, model: str | None) -> Any:
    import torch

    from zoomplan.device import resolve_device
    from zoomplan.models.checkpoint import load_checkpoint
    from zoomplan.plan.inference.infer import TileModels

    ckpt = load_checkpoint(model)
    return ckpt, TileModels(ckpt, resolve_device(device), batch_size=batch_size), torch


def measure_compute(n_tiles: int, device: str, batch_size: int, model: str | None) -> dict[str, Any]:
    """(c): forward passes of policy + LR classifier over ``n_tiles`` chips already in memory as batches.

    On CPU timed with the planner's thread count (:func:`zoomplan.plan.inference.infer.default_threads`) on every
    tile and with one thread fewer on a few batches; the faster is the floor (both are reported)."""
    from zoomplan.plan.inference.infer import default_threads

    ckpt, m, torch = _models(device, batch_size, model)
    L = ckpt.card.lr_size_px
    rng = np.random.default_rng(0)
    batch = rng.standard_normal((batch_size, len(ckpt.card.lr_norm.mean), L, L)).astype(np.float32)
    full, rest = divmod(n_tiles, batch_size)
    planner = default_threads(m.device) or torch.get_num_threads()
    counts = [planner] + ([planner - 1] if m.device.type == "cpu" and planner > 1 else [])
    by_threads = {}
    for th in counts:  # the planner's count first, on every tile
        torch.set_num_threads(th)
        m(batch)  # warm-up (allocator, kernels), as the pipeline's first block is
        n_full = full if not by_threads else min(full, SECOND_COUNT_BATCHES)
        t = time.perf_counter()
        for _ in range(n_full):
            m(batch)
        if rest and n_full == full:
            m(batch[:rest])
        if m.device.type == "cuda":
            torch.cuda.synchronize()
        sec = time.perf_counter() - t
        by_threads[th] = sec if n_full == full else sec * n_tiles / max(1, n_full * batch_size)
    best = min(by_threads, key=by_threads.__getitem__)
    torch.set_num_threads(best)
    dt = by_threads[best]
    per_net = {}
    with torch.inference_mode():  # where the time goes, per network, on a few batches
        x = torch.from_numpy(batch).to(m.device)
        for name, net in (("policy", m.policy), ("lr_classifier", m.lr)):
            k = max(1, min(20, full))
            t1 = time.perf_counter()
            for _ in range(k):
                net(x)
            per_net[name] = {
                "tiles_per_s": k * batch_size / (time.perf_counter() - t1),
                "params": sum(p.numel() for p in net.parameters()),
            }
    return {"seconds": dt, "tiles": n_tiles, "per_net": per_net, "threads": best, "seconds_by_threads": by_threads}


def measure_naive(scene: Path, aoi: Path, n_sample: int, device: str, model: str | None) -> dict[str, Any]:
    """(b): one 8 x 8 px window read and one model call per tile, over ``n_sample`` random AOI tiles."""
    import rasterio
    from rasterio.windows import Window

    from zoomplan.geo.scene import to_unit

    ckpt, m, torch = _models(device, 1, model)
    ds, win = _aoi_window(scene, aoi)
    L = ckpt.card.lr_size_px
    sensor = next(s for s in ckpt.card.lr_sensors if s.name == "sentinel2_toa")
    mean = np.asarray(ckpt.card.lr_norm.mean, np.float32)[:, None, None]
    std = np.asarray(ckpt.card.lr_norm.std, np.float32)[:, None, None]
    rng = np.random.default_rng(0)
    rows = win.row_off + L * rng.integers(0, win.height // L, n_sample)
    cols = win.col_off + L * rng.integers(0, win.width // L, n_sample)
    m(np.zeros((1, 3, L, L), np.float32))
    with rasterio.Env(GDAL_CACHEMAX=256):
        t = time.perf_counter()
        for r, c in zip(rows, cols):
            raw = ds.read([1, 2, 3], window=Window(int(c), int(r), L, L))
            m(((to_unit(raw, sensor) - mean) / std)[None])
        dt = time.perf_counter() - t
    ds.close()
    return {"seconds": dt, "tiles": n_sample}


def _child(argv: list[str]) -> None:
    """Entry point of a measuring child: ``--_measure KIND JSON_ARGS``; prints one JSON line."""
    kind, kw = argv[0], json.loads(argv[1])
    fn = {"a": measure_read, "b": measure_naive, "c": measure_compute, "d": measure_plan}[kind]
    for k in ("scene", "aoi", "out"):
        if k in kw:
            kw[k] = Path(kw[k])
    print("RESULT " + json.dumps(fn(**kw)), flush=True)


def run_child(kind: str, **kw: Any) -> dict[str, Any]:
    """Run one measurement in a fresh Python process; add its peak RSS (MB) from ``os.wait4``."""
    args = {k: (str(v) if isinstance(v, Path) else v) for k, v in kw.items()}
    p = subprocess.Popen(
        [sys.executable, str(HERE), "--_measure", kind, json.dumps(args)], stdout=subprocess.PIPE, text=True
    )
    out = p.stdout.read() if p.stdout else ""
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise SystemExit(f"measurement ({kind}) failed with exit code {p.returncode}")
    line = next(ln for ln in out.splitlines() if ln.startswith("RESULT "))
    res = json.loads(line[len("RESULT ") :])
    res["peak_rss_mb"] = ru.ru_maxrss / 1024.0  # Linux: KiB
    return res


# ---------------------------------------------------------------- the run


def _fastest(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The fastest of repeated measurements, with every run's seconds and the highest peak RSS."""
    best = dict(min(runs, key=lambda r: r["seconds"]))
    best["runs"] = [r["seconds"] for r in runs]
    best["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
    return best


def bench_scale(scene: Path, aoi: Path, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """(a), (d), (c) in that order, ``args.repeat`` times (each its fastest run), then (b), on one scene and AOI."""
    common = {"device": args.device, "model": args.model}
    runs: dict[str, list[dict[str, Any]]] = {"a": [], "c": [], "d": [], "d0": []}
    for _ in range(max(1, args.repeat)):
        runs["a"].append(run_child("a", scene=scene, aoi=aoi))
        runs["d"].append(
            run_child("d", scene=scene, aoi=aoi, out=work / "order.geojson", batch_size=args.batch_size, **common)
        )
        if args.baseline_model:
            runs["d0"].append(
                run_child(
                    "d",
                    scene=scene,
                    aoi=aoi,
                    out=work / "order0.geojson",
                    batch_size=args.batch_size,
                    device=args.device,
                    model=args.baseline_model,
                )
            )
        runs["c"].append(run_child("c", n_tiles=runs["d"][-1]["tiles"], batch_size=args.batch_size, **common))
    a, c, d = (_fastest(runs[k]) for k in "acd")
    b = run_child("b", scene=scene, aoi=aoi, n_sample=args.sample_tiles, **common)
    b["extrapolated_seconds"] = b["seconds"] * d["tiles"] / b["tiles"]
    out = {"a": a, "b": b, "c": c, "d": d, "aoi_km2": d["aoi_km2"], "tiles": d["tiles"]}
    if runs["d0"]:
        out["d0"] = _fastest(runs["d0"])
    return out


def report(side: int, scale: float, r: dict[str, Any]) -> list[str]:
    """The table and ratios of one scale, as lines."""
    km2, n = r["aoi_km2"], r["tiles"]
    a, b, c, d = r["a"]["seconds"], r["b"]["extrapolated_seconds"], r["c"]["seconds"], r["d"]["seconds"]
    lines = [
        f"scene {side} x {side} px x 4 uint16 ({scale:g}x), AOI {km2:,.1f} km2, {n:,} tiles planned "
        f"({r['d']['patches']:,} patches, {r['d']['selected']:,} selected, {r['d']['orders']} orders)",
        f"  {'measurement':<48} {'seconds':>9} {'km2/s':>9} {'tiles/s':>9} {'peak RSS MB':>12}",
    ]
    rows = [
        ("(a) read floor: decode AOI pixels once", a, r["a"]),
        (f"(b) naive per-tile read+call (extrapolated from {r['b']['tiles']})", b, r["b"]),
        ("(c) compute floor: policy+LR on in-memory batches", c, r["c"]),
        ("(d) zoomplan plan end to end", d, r["d"]),
    ]
    for name, s, m in rows:
        lines.append(f"  {name:<48} {s:>9.2f} {km2 / s:>9.2f} {n / s:>9.0f} {m['peak_rss_mb']:>12.0f}")
    lines.append(
        f"  ratios: (d)/max(a,c) = {d / max(a, c):.2f}   (d)/(a+c) = {d / (a + c):.2f}   (b)/(d) = {b / d:.1f}   "
        f"dominant floor: {'(c) compute' if c >= a else '(a) read'} ({max(a, c) / min(a, c):.1f}x the other)"
    )
    if len(r["d"].get("runs", [])) > 1:
        lines.append(
            f"  fastest of {len(r['d']['runs'])} runs each; every run's seconds: "
            + ", ".join(f"({k}) " + " / ".join(f"{v:.2f}" for v in r[k]["runs"]) for k in "acd")
        )
    st = r["d"].get("stages", {})
    if st:
        lines.append(
            "  (d) by stage: "
            + ", ".join(f"{k} {v:.2f} s" for k, v in st.items())
            + f"; inference (decode + tile + networks, overlapped) / max(a,c) = {st['inference'] / max(a, c):.2f}"
        )
    if "d0" in r:
        d0 = r["d0"]
        lines.append(
            f"  (d) with the --baseline-model checkpoint: {d0['seconds']:.2f} s ({n / d0['seconds']:,.0f} tiles/s, "
            f"{d0['selected']:,} selected, {d0['orders']} orders, runs "
            + " / ".join(f"{v:.2f}" for v in d0["runs"])
            + f"); this model's (d) speed / the baseline model's = {d0['seconds'] / d:.2f}"
        )
    bt = r["c"].get("seconds_by_threads", {})
    if len(bt) > 1:
        lines.append(
            "  (c) by torch threads: " + ", ".join(f"{k} thread(s) {n / v:,.0f} tiles/s" for k, v in bt.items())
        )
    pn = r["c"].get("per_net", {})
    if pn:
        lines.append(
            f"  compute by network ({r['c']['threads']} thread(s)): "
            + ", ".join(f"{k} {v['params'] / 1e6:.2f} M params {v['tiles_per_s']:,.0f} tiles/s" for k, v in pn.items())
        )
    return lines


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--_measure":
        _child(sys.argv[2:])
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--source", type=Path, default=SCENE, help="real scene to mosaic (default: ../shared/data/sentinel2)"
    )
    ap.add_argument(
        "--size", type=int, default=S2_TILE_PX, help="side of the 1x scene, px (default 10980, one Sentinel-2 tile)"
    )
    ap.add_argument(
        "--scale", type=float, nargs="+", default=[1.0, 4.0], help="scene area multiples to run (default 1 4)"
    )
    ap.add_argument(
        "--aoi-fraction",
        type=float,
        default=1.0,
        help="AOI side as a fraction of the scene side (default 1: whole scene)",
    )
    ap.add_argument("--quick", action="store_true", help="development run: --size 2745 (a quarter of a tile's side)")
    ap.add_argument(
        "--repeat",
        type=int,
        default=2,
        help="runs of (a), (d) and (c), interleaved; the fastest of each is reported (default 2)",
    )
    ap.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N | auto")
    ap.add_argument("--batch-size", type=int, default=512, help="tiles per network batch, (c) and (d)")
    ap.add_argument("--sample-tiles", type=int, default=2000, help="tiles timed in (b), extrapolated")
    ap.add_argument("--model", default=None, help="checkpoint (default: the shipped model)")
    ap.add_argument(
        "--baseline-model",
        default=None,
        help="another checkpoint whose (d) is measured interleaved with the model's, "
        "for a same-run speed ratio (e.g. the previous shipped model)",
    )
    ap.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "zoomplan-bench",
        help="where scenes are built and cached",
    )
    ap.add_argument("--json", type=Path, default=None, help="also write every figure to this JSON file")
    args = ap.parse_args()
    if not args.source.is_file():
        raise SystemExit(f"scene {args.source} not found: pass --source PATH to a Sentinel-2 GeoTIFF (4 bands uint16)")
    if args.quick:
        args.size = S2_TILE_PX // 4
    args.workdir.mkdir(parents=True, exist_ok=True)
    import platform

    import torch

    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), device {args.device}, batch {args.batch_size}; load average "
        f"{os.getloadavg()[0]:.1f}"
    )
    results = {}
    for scale in args.scale:
        side = int(round(args.size * math.sqrt(scale)))
        t = time.perf_counter()
        scene = build_scene(args.source, args.workdir / f"s2_mosaic_{side}.tif", side)
        built = time.perf_counter() - t
        aoi, _ = write_aoi(scene, args.workdir / f"aoi_{side}_{args.aoi_fraction:g}.geojson", args.aoi_fraction)
        print(
            f"scene {scene} ({scene.stat().st_size / 1e6:,.0f} MB on disk, {4 * 2 * side * side / 1e6:,.0f} MB "
            f"decoded; ready in {built:.0f} s)",
            flush=True,
        )
        r = bench_scale(scene, aoi, args.workdir, args)
        results[scale] = {"side": side, **r}
        print("\n".join(report(side, scale, r)), flush=True)
    if len(results) > 1:
        ks = sorted(results)
        lo, hi = results[ks[0]], results[ks[-1]]
        k = ks[-1] / ks[0]
        print(
            f"scaling {ks[0]:g}x -> {ks[-1]:g}x (area x{k:g}, tiles x{hi['tiles'] / lo['tiles']:.2f}): "
            f"(d) time x{hi['d']['seconds'] / lo['d']['seconds']:.2f} (linear = x{hi['tiles'] / lo['tiles']:.2f}), "
            f"(d) peak RSS {lo['d']['peak_rss_mb']:.0f} -> {hi['d']['peak_rss_mb']:.0f} MB "
            f"(x{hi['d']['peak_rss_mb'] / lo['d']['peak_rss_mb']:.2f})"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
