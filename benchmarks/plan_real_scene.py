"""`zoomplan plan` on the whole real Sentinel-2 scene in ../shared/data/sentinel2, on CPU.

Prints, from one run:
- wall time of the plan (inference, selection, orders, GeoJSON) next to the read floor measured in
  the same run (decoding the scene's pixels once with rasterio), as a ratio;
- what the plan chose: the share of patches bought over open water and over land, from the patch's
  mean NDWI = (green - NIR) / (green + NIR) of the scene's own bands (water NDWI > 0.3, land NDWI < 0;
  an independent test: the model sees red, green and blue only, and was never trained on this scene),
  their ratio against issue 16's target (water at most a quarter of land's rate, land at least 15%),
  the spread of S (patches bought per tile) and the share bought at each of the 16 patch positions
  (a fixed mask shows as stripes), and the share per predicted LR class;
- the plan cost against buying the whole scene, per vendor profile.

Usage: python benchmarks/plan_real_scene.py [--scene PATH] [--model CKPT] [--vendor NAME ...] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
from pyproj import Transformer
from shapely.geometry import box, mapping
from shapely.ops import transform

from zoomplan.plan.pipeline import plan

SCENE = Path(__file__).resolve().parents[2] / "shared" / "data" / "sentinel2" / "s2_l1c_18SVG_20160112_rgbn_10m.tif"


def scene_aoi(scene: Path, out: Path, inset_m: float = 100.0) -> Path:
    """An AOI (GeoJSON, EPSG:4326) covering the scene's footprint, ``inset_m`` metres inside its edges."""
    with rasterio.open(scene) as ds:
        b = ds.bounds
        to_ll = Transformer.from_crs(ds.crs, "EPSG:4326", always_xy=True).transform
    poly = box(b.left + inset_m, b.bottom + inset_m, b.right - inset_m, b.top - inset_m).segmentize(500.0)
    fc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"id": "scene", "name": "whole scene"},
                "geometry": mapping(transform(to_ll, poly)),
            }
        ],
    }
    out.write_text(json.dumps(fc))
    return out


def read_floor(scene: Path) -> float:
    """Seconds to decode every pixel of the scene once (the I/O floor of any planner)."""
    t = time.perf_counter()
    with rasterio.open(scene) as ds:
        for _, win in ds.block_windows(1):
            ds.read(window=win)
    return time.perf_counter() - t


def patch_means(scene: Path, table, band: int) -> np.ndarray:
    """Mean TOA reflectance of 1-based ``band`` under each patch (scene CRS = planning CRS here), NaN if nodata."""
    with rasterio.open(scene) as ds:
        img = ds.read(band).astype(np.float32) / 1e4
        left, top = ds.bounds.left, ds.bounds.top
        res = ds.res[0]
    img[img == 0] = np.nan
    b = table.bounds()
    c0 = np.floor((b[:, 0] - left) / res + 1e-6).astype(int)
    r0 = np.floor((top - b[:, 3]) / res + 1e-6).astype(int)
    k = int(round(table.patch_m / res))
    out = np.full(len(table), np.nan, dtype=np.float32)
    ok = (c0 >= 0) & (r0 >= 0) & (c0 + k <= img.shape[1]) & (r0 + k <= img.shape[0])
    acc = np.zeros(ok.sum(), dtype=np.float32)
    for dr in range(k):
        for dc in range(k):
            acc += img[r0[ok] + dr, c0[ok] + dc]
    out[ok] = acc / (k * k)
    return out


def patch_ndwi(scene: Path, table) -> np.ndarray:
    """NDWI (green - NIR) / (green + NIR) of each patch's mean reflectance (bands 2 and 4 of the scene)."""
    g, n = patch_means(scene, table, 2), patch_means(scene, table, 4)
    return (g - n) / np.maximum(g + n, 1e-6)


def policy_shape(table, selected: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """S per whole tile (patches bought of P) and the share bought at each patch position (the patch grid)."""
    tile = table.tile_row.astype(np.int64) * 1_000_003 + table.tile_col.astype(np.int64)
    _, inv, counts = np.unique(tile, return_inverse=True, return_counts=True)
    P = table.patch_grid[0] * table.patch_grid[1]
    s = np.bincount(inv, weights=selected.astype(float))[counts == P]
    pos = table.patch_index
    share = np.bincount(pos, weights=selected.astype(float), minlength=P) / np.maximum(np.bincount(pos, minlength=P), 1)
    return s, share.reshape(table.patch_grid)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scene", type=Path, default=SCENE)
    ap.add_argument("--vendor", action="append", default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--model", type=Path, default=None, help="checkpoint (default: the shipped model)")
    args = ap.parse_args()
    if not args.scene.is_file():
        raise SystemExit(f"scene {args.scene} not found: pass --scene PATH to a Sentinel-2 GeoTIFF")
    vendors = args.vendor or ["clip-30cm", "clip-50cm", "archive-50cm"]
    with tempfile.TemporaryDirectory() as tmp:
        aoi = scene_aoi(args.scene, Path(tmp) / "aoi.geojson")
        floor = read_floor(args.scene)
        results = {}
        for i, v in enumerate(vendors):
            t = time.perf_counter()
            r = plan(
                aoi, [args.scene], model=args.model, vendor=v, device=args.device, out=Path(tmp) / f"order-{v}.geojson"
            )
            results[v] = (r, time.perf_counter() - t)
    r, wall = results[vendors[0]]
    s = r.summary
    print(
        f"scene: {args.scene.name}  AOI {s['aoi_km2']:.1f} km2  tiles planned {s['tiles']['planned']} "
        f"(skipped nodata {s['tiles']['skipped_nodata']})  patches {s['patches_total']}"
    )
    print(
        f"time: read floor {floor:.2f} s | zoomplan plan end to end {wall:.2f} s | ratio plan/read {wall / floor:.1f}x "
        f"| {s['aoi_km2'] / wall:.1f} km2/s, {s['tiles']['planned'] / wall:.0f} tiles/s"
    )
    ndwi = patch_ndwi(args.scene, r.table)
    sel = r.selected
    water, land = ndwi > 0.3, ndwi < 0
    fw, fl = sel[water].mean(), sel[land].mean()
    print(
        f"chosen: {100 * sel.mean():.1f}% of patches overall | open water (NDWI > 0.3): {100 * fw:.1f}% of "
        f"{water.sum()} | land (NDWI < 0): {100 * fl:.1f}% of {land.sum()} | water/land {fw / max(fl, 1e-9):.3f} "
        f"(target <= 0.25 with land >= 15%: {'met' if fw <= 0.25 * fl and fl >= 0.15 else 'NOT met'})"
    )
    s_tile, share = policy_shape(r.table, sel)
    p5, p50, p95 = np.percentile(s_tile, [5, 50, 95])
    print(
        f"S per tile (whole tiles, {len(s_tile)}): p5 {p5:.0f} / p50 {p50:.0f} / p95 {p95:.0f}; tiles with S 0: "
        f"{100 * (s_tile == 0).mean():.1f}%, S 16: {100 * (s_tile == 16).mean():.1f}%"
    )
    print(
        "share bought per patch position (rows from the north): "
        + " | ".join(" ".join(f"{v:.2f}" for v in row) for row in share)
    )
    names = r.table.class_names
    print("per predicted LR class (tiles' class), share of the class's patches bought:")
    cls = r.table.tile_class
    rows = []
    for k in np.unique(cls):
        m = cls == k
        rows.append((m.sum(), names[k] if k < len(names) else str(k), sel[m].mean(), float(np.nanmean(ndwi[m]))))
    for n, name, frac, mn in sorted(rows, reverse=True)[:13]:
        print(f"  {name:<20} {n:>8} patches  {100 * frac:5.1f}% bought  mean NDWI {mn:+.2f}")
    print("cost by vendor (plan vs whole AOI):")
    for v, (rv, wv) in results.items():
        sv = rv.summary
        print(
            f"  {v:<14} plan {sv['plan_cost_usd']:>10,.0f} USD  baseline {sv['baseline_cost_usd']:>10,.0f} USD  "
            f"savings {sv['savings_pct']:5.1f}%  orders {sv['n_orders']}  ({wv:.1f} s)"
        )


if __name__ == "__main__":
    main()
