"""Calibrate the Sentinel-2 mapping of a joint recipe: TOA reflectance -> the training LR's 8-bit display RGB.

    python benchmarks/calibrate_sentinel2.py [--config configs/joint.toml]

Per band, the scene's 1st and 99th percentiles of valid pixels (no labels, no class split) are mapped
linearly onto the 1st and 99th percentiles of the simulated LR pixels of the recipe's training split
(area averaging + the recipe's PSF, no radiometric augmentation). Prints the ``offset`` and ``gain``
lines for ``[sensor.sentinel2_toa]`` and, as a check only, where the scene's open water and land
(NDWI from its own green and NIR bands) land next to the training classes. Needs ../shared/data.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import rasterio
import torch

from zoomplan.data.joint import JointDataset, sources_from_recipe
from zoomplan.data.lowres import simulate_lr
from zoomplan.train.config import load_config

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SCENE = SHARED / "sentinel2" / "s2_l1c_18SVG_20160112_rgbn_10m.tif"
Q = (1.0, 99.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/joint.toml")
    ap.add_argument("--scene", type=Path, default=SCENE)
    args = ap.parse_args()
    cfg = load_config(args.config)
    roots = {s.name: SHARED / s.name for s in sources_from_recipe(cfg.raw)}
    ds = JointDataset(
        roots, sources_from_recipe(cfg.raw), "train", tile_ground_m=cfg.model.tile_ground_m, size=cfg.data.source_size
    )
    x = torch.stack([ds[i][0] for i in range(len(ds))]).float() / 255
    lr = simulate_lr(x, cfg.model.lr_size_px, cfg.model.lowres_method, cfg.model.lr_psf_sigma)  # (N, 3, 8, 8)
    train = lr.permute(1, 0, 2, 3).reshape(3, -1).numpy()
    with rasterio.open(args.scene) as src:
        a = src.read().astype(np.float32) * 1e-4  # red, green, blue, nir
    valid = a[0] > 0
    refl = a[:3][:, valid]
    t_lo, t_hi = np.percentile(train, Q, axis=1)
    s_lo, s_hi = np.percentile(refl, Q, axis=1)
    gain = (t_hi - t_lo) / (s_hi - s_lo)
    offset = t_lo / gain - s_lo
    print(f"training LR ({len(ds)} images) p{Q[0]:g}/p{Q[1]:g} (R, G, B): {t_lo.round(3)} / {t_hi.round(3)}")
    print(f"scene {args.scene.name} p{Q[0]:g}/p{Q[1]:g} reflectance: {s_lo.round(4)} / {s_hi.round(4)}")
    print("[sensor.sentinel2_toa]")
    print(f"offset = [{', '.join(f'{v:.4f}' for v in offset)}]")
    print(f"gain = [{', '.join(f'{v:.2f}' for v in gain)}]")
    unit = np.clip((a[:3] + offset[:, None, None]) * gain[:, None, None], 0, 1)
    g, n = a[1], a[3]
    ndwi = (g - n) / np.maximum(g + n, 1e-6)
    print(
        "check (median unit RGB): scene water (NDWI > 0.3)",
        np.median(unit[:, valid & (ndwi > 0.3)], axis=1).round(3),
        " scene land (NDWI < 0)",
        np.median(unit[:, valid & (ndwi < 0)], axis=1).round(3),
    )
    for k, name in enumerate(ds.class_names):
        m = (ds.labels == k).numpy()
        print(
            f"   training {name:12s} {np.median(lr[m].permute(1, 0, 2, 3).reshape(3, -1).numpy(), axis=1).round(3)}  "
            f"({m.sum()} images)"
        )


if __name__ == "__main__":
    main()
