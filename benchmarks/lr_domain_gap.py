"""What each step of the LR simulation buys on the real Sentinel-2 scene, measured on the LR classifier.

    python benchmarks/lr_domain_gap.py [--epochs 40] [--config configs/joint.toml]

Trains the recipe's LR classifier (same network, data, epochs and optimiser as its ``lr`` stage) once per
variant, each adding one step of the shipped recipe's LR simulation:

  A  area averaging only, the previous model's Sentinel-2 mapping (reflectance x 5, no offset)
  B  A + the sensor's point-spread function (``lr_psf_sigma``)
  C  B + the calibrated per-band mapping (``[sensor.sentinel2_toa]`` of the recipe)
  D  C + the training radiometry (``[model.lr_radiometry]``: gain, haze, gamma, noise) = the shipped recipe

and reports, side by side from one run: accuracy on the joint val split (simulated LR), and on the real
scene of ../shared/data/sentinel2, cut into the planner's 80 m tiles: the share of open-water tiles
(every pixel NDWI > 0.3, from the scene's own green and NIR bands, which the model never sees) called
``water``, the share called one of the land-cover classes LR can settle (water, field, forest, grass,
shrubland, beach), and the share of land tiles (every pixel NDWI < 0) called ``water``. The scene is only
measured here, never trained on.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
import rasterio
import torch
import torch.nn.functional as F

from zoomplan.data.joint import JointDataset, sources_from_recipe
from zoomplan.data.lowres import Radiometry, Streams, channel_stats
from zoomplan.geo.scene import to_unit
from zoomplan.models.card import ModelCard, SensorMapping
from zoomplan.models.checkpoint import build_component
from zoomplan.train.config import TrainConfig, load_config
from zoomplan.train.steps import cosine_lr

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SCENE = SHARED / "sentinel2" / "s2_l1c_18SVG_20160112_rgbn_10m.tif"
SETTLED = ("water", "field", "forest", "grass", "shrubland", "beach")
OLD_MAPPING = SensorMapping("sentinel2_toa", scale=1e-4, gain=5.0)


def scene_tiles(scene: Path, L: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw (N, 3, L, L) red/green/blue tiles of the scene, and masks of open-water and land tiles."""
    with rasterio.open(scene) as ds:
        a = ds.read().astype(np.float32)
    h, w = (a.shape[1] // L) * L, (a.shape[2] // L) * L
    a = a[:, :h, :w]
    g, n = a[1] * 1e-4, a[3] * 1e-4
    ndwi = (g - n) / np.maximum(g + n, 1e-6)
    valid = a[0] > 0

    def tiles(x: np.ndarray) -> np.ndarray:
        return x.reshape(x.shape[0], h // L, L, w // L, L).transpose(1, 3, 0, 2, 4).reshape(-1, x.shape[0], L, L)

    ok = tiles(valid[None])[:, 0].all(axis=(1, 2))
    water = tiles((ndwi > 0.3)[None])[:, 0].all(axis=(1, 2)) & ok
    land = tiles((ndwi < 0)[None])[:, 0].all(axis=(1, 2)) & ok
    return tiles(a[:3]), water, land


def train_lr(card: ModelCard, streams: Streams, train_ds: JointDataset, cfg, seed: int) -> torch.nn.Module:
    sc = cfg.stage("lr")
    torch.manual_seed(seed)
    model = build_component(card, "lr")
    opt = torch.optim.Adam(model.parameters(), lr=sc.lr, weight_decay=sc.weight_decay)
    n = len(train_ds)
    steps = -(-n // sc.batch_size)
    gen = torch.Generator().manual_seed(seed)
    images = torch.stack([train_ds[i][0] for i in range(n)])
    model.train()
    for epoch in range(sc.epochs):
        order = torch.randperm(n, generator=gen)
        for step in range(steps):
            idx = order[step * sc.batch_size : (step + 1) * sc.batch_size]
            opt.param_groups[0]["lr"] = cosine_lr(
                epoch * steps + step, steps * sc.epochs, sc.lr, sc.warmup_epochs * steps
            )
            _, xl = streams(images[idx], generator=gen, augment=True)
            loss = F.cross_entropy(model(xl), train_ds.labels[idx], label_smoothing=sc.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return model.eval()


@torch.inference_mode()
def predict(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    return torch.cat([model(x[i : i + 1024]).argmax(1) for i in range(0, len(x), 1024)])


def parse_args(doc: str) -> tuple[argparse.Namespace, TrainConfig]:
    """``--config``, ``--epochs`` (overrides the ``lr`` stage's) and ``--seed`` of the LR measurement scripts."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--config", default="configs/joint.toml")
    ap.add_argument("--epochs", type=int, default=None, help="override the lr stage's epochs")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    cfg = load_config(args.config)
    if args.epochs is not None:
        cfg = dataclasses.replace(
            cfg, stages={**cfg.stages, "lr": dataclasses.replace(cfg.stage("lr"), epochs=args.epochs)}
        )
    return args, cfg


def main() -> None:
    args, cfg = parse_args(__doc__)
    m = cfg.model
    specs = sources_from_recipe(cfg.raw)
    roots = {s.name: SHARED / s.name for s in specs}
    kw = dict(tile_ground_m=m.tile_ground_m, size=cfg.data.source_size)
    tr, va = JointDataset(roots, specs, "train", **kw), JointDataset(roots, specs, "val", **kw)
    names = tr.class_names
    raw_tiles, water, land = scene_tiles(SCENE, m.lr_size_px)
    shipped = next(s for s in cfg.sensors if s.name == "sentinel2_toa")
    sample = torch.stack([tr[i][0] for i in torch.linspace(0, len(tr) - 1, 2000).long().tolist()])
    variants = [
        ("A area, old mapping", 0.0, OLD_MAPPING, Radiometry()),
        ("B + PSF", m.lr_psf_sigma, OLD_MAPPING, Radiometry()),
        ("C + calibrated mapping", m.lr_psf_sigma, shipped, Radiometry()),
        ("D + radiometry (shipped)", m.lr_psf_sigma, shipped, Radiometry.from_dict(m.lr_radiometry)),
    ]
    settled = torch.tensor([names.index(c) for c in SETTLED if c in names])
    iw = names.index("water")
    print(
        f"LR classifier ({m.lr_classifier.name}), {cfg.stage('lr').epochs} epochs, seed {args.seed}; joint train "
        f"{len(tr)}, val {len(va)}; "
        f"scene {SCENE.name}: {water.sum()} open-water tiles, {land.sum()} land tiles (80 m)"
    )
    print(
        "| variant | val acc % | water tiles called water % | water tiles called a settled class % | land tiles "
        "called water % | train s |"
    )
    print("|---|---|---|---|---|---|")
    for name, psf, sensor, radiometry in variants:
        t = time.perf_counter()
        norm = channel_stats(sample, m.lr_size_px, m.lowres_method, psf)
        card = ModelCard(
            class_names=names,
            policy=m.policy,
            hr_classifier=m.hr_classifier,
            lr_classifier=m.lr_classifier,
            hr_size_px=m.hr_size_px,
            lr_size_px=m.lr_size_px,
            hr_pixel_m=m.hr_pixel_m,
            lr_pixel_m=m.lr_pixel_m,
            tile_ground_m=m.tile_ground_m,
            lr_norm=norm,
            lr_psf_sigma=psf,
        )
        streams = Streams.from_card(card, radiometry)
        model = train_lr(card, streams, tr, cfg, args.seed)
        secs = time.perf_counter() - t
        _, xl = streams(torch.stack([va[i][0] for i in range(len(va))]))
        acc = float((predict(model, xl) == va.labels).float().mean())
        mean = torch.tensor(norm.mean).view(1, -1, 1, 1)
        std = torch.tensor(norm.std).view(1, -1, 1, 1)
        x = (
            torch.from_numpy(to_unit(raw_tiles.transpose(1, 0, 2, 3), sensor).transpose(1, 0, 2, 3).copy()) - mean
        ) / std
        pred = predict(model, x.float())
        pw, pl = pred[torch.from_numpy(water)], pred[torch.from_numpy(land)]
        print(
            f"| {name} | {100 * acc:.1f} | {100 * float((pw == iw).float().mean()):.1f} | "
            f"{100 * float(torch.isin(pw, settled).float().mean()):.1f} "
            f"| {100 * float((pl == iw).float().mean()):.1f} | {secs:.0f} |"
        )


if __name__ == "__main__":
    main()
