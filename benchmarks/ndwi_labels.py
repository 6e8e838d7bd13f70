"""Water and land labels for `zoomplan audit`, from a Sentinel-2 scene's own green and NIR bands.

    python benchmarks/ndwi_labels.py [--scene PATH] [--patch-m 20] --out ndwi_labels.tif
    zoomplan audit --lr SCENE --labels ndwi_labels.tif --classes 1=water,2=land --out audit/ --png

Writes a uint8 GeoTIFF on the planner's patch grid (``--patch-m`` metre cells aligned to multiples of
the patch edge in the scene's CRS, as the planner's grid is): 1 = open water (the cell's mean NDWI =
(green - NIR) / (green + NIR) above 0.3), 2 = land (below 0), 0 = nodata (in between, or no data).
Each cell is the mean of the scene pixels inside it, so an audit, which labels a patch by the cell
under its centre, labels it by the patch's own mean NDWI. The model never sees NIR: this is an
independent check, not a training label. Bands: green and NIR by description (``green``/``B03``,
``nir``/``B08``), else bands 2 and 4 (the layout of ../shared/data/sentinel2).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

SCENE = Path(__file__).resolve().parents[2] / "shared" / "data" / "sentinel2" / "s2_l1c_18SVG_20160112_rgbn_10m.tif"
WATER, LAND = 0.3, 0.0


def band_index(ds: rasterio.DatasetReader, names: tuple[str, ...], default: int) -> int:
    for i, d in enumerate(ds.descriptions, start=1):
        if d and any(n in d.lower() for n in names):
            return i
    return default


def ndwi_labels(scene: Path, out: Path, patch_m: float = 20.0) -> tuple[int, int]:
    """Write the label raster; returns the numbers of water and land cells."""
    with rasterio.open(scene) as ds:
        res = ds.res[0]
        k = int(round(patch_m / res))
        if abs(k * res - patch_m) > 1e-6 or abs(ds.res[1] - res) > 1e-6:
            raise SystemExit(f"{scene}: pixels of {ds.res} m do not tile {patch_m} m patches")
        left, top = ds.bounds.left, ds.bounds.top
        x0, y0 = np.ceil(left / patch_m) * patch_m, np.floor(top / patch_m) * patch_m
        c0, r0 = int(round((x0 - left) / res)), int(round((top - y0) / res))
        g = ds.read(band_index(ds, ("green", "b03"), 2)).astype(np.float64)[r0:, c0:]
        n = ds.read(band_index(ds, ("nir", "b08"), 4)).astype(np.float64)[r0:, c0:]
        crs = ds.crs
    h, w = g.shape[0] // k, g.shape[1] // k
    valid = ((g > 0) & (n > 0))[: h * k, : w * k].reshape(h, k, w, k).all(axis=(1, 3))
    g = g[: h * k, : w * k].reshape(h, k, w, k).mean(axis=(1, 3))
    n = n[: h * k, : w * k].reshape(h, k, w, k).mean(axis=(1, 3))
    ndwi = (g - n) / np.maximum(g + n, 1e-9)
    lab = np.zeros((h, w), dtype=np.uint8)
    lab[valid & (ndwi > WATER)] = 1
    lab[valid & (ndwi < LAND)] = 2
    with rasterio.open(
        out,
        "w",
        driver="GTiff",
        width=w,
        height=h,
        count=1,
        dtype="uint8",
        crs=crs,
        transform=from_origin(x0, y0, patch_m, patch_m),
        nodata=0,
        compress="deflate",
    ) as dst:
        dst.write(lab, 1)
    return int((lab == 1).sum()), int((lab == 2).sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scene", type=Path, default=SCENE)
    ap.add_argument("--patch-m", type=float, default=20.0)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    nw, nl = ndwi_labels(args.scene, args.out, args.patch_m)
    print(f"wrote {args.out}: {nw} water cells (NDWI > {WATER}), {nl} land cells (NDWI < {LAND}) of {args.patch_m:g} m")


if __name__ == "__main__":
    main()
