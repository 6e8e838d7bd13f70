"""Does more LR context per decision help? The LR classifier on 80 m tiles (8 x 8 px) against 160 m tiles (16 x 16 px).

    python benchmarks/lr_tile_context.py [--config configs/joint.toml] [--epochs 40]

Same images for both: RSSCN7's levels 2-4 (200-800 m footprints; level 1's 100 m cannot hold a 160 m
tile, and neither can UC Merced's 78 m), cut to their central 80 m or 160 m, the recipe's LR simulation
(PSF, training radiometry), LR network, optimiser and epochs. Reports, from one run: accuracy on those
images' val split, and on the real scene of ../shared/data/sentinel2 cut into tiles of each size
(calibrated mapping of the recipe): the share of open-water tiles (every pixel NDWI > 0.3) called
``water``, the share called a class LR can settle (water, field, forest, grass), and the share of land
tiles (every pixel NDWI < 0) called ``water``. Measurement only: the scene is never trained on.
"""

from __future__ import annotations

import time

import torch
from lr_domain_gap import SCENE, SHARED, parse_args, predict, scene_tiles, train_lr

from zoomplan.data.joint import JointDataset, sources_from_recipe
from zoomplan.data.lowres import Radiometry, Streams, channel_stats
from zoomplan.geo.scene import to_unit
from zoomplan.models.card import ModelCard

SETTLED = ("water", "field", "forest", "grass")


def main() -> None:
    args, cfg = parse_args(__doc__)
    m = cfg.model
    spec = next(s for s in sources_from_recipe(cfg.raw) if s.name == "rsscn7")
    sensor = next(s for s in cfg.sensors if s.name == "sentinel2_toa")
    print(
        f"LR classifier ({m.lr_classifier.name}), {cfg.stage('lr').epochs} epochs, seed {args.seed}; RSSCN7 levels "
        f"2-4; "
        f"PSF {m.lr_psf_sigma} px, recipe radiometry; scene {SCENE.name}"
    )
    print(
        "| tile | LR px | train / val images | val acc % | water tiles called water % | water tiles called a settled "
        "class % "
        "| land tiles called water % | scene tiles water / land | train s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for tile_m in (80.0, 160.0):
        t = time.perf_counter()
        L = int(round(tile_m / m.lr_pixel_m))
        # Level 2-4 images only, for both sizes: those that hold a 160 m tile.
        kw = dict(tile_ground_m=tile_m, size=128, min_footprint_m=160.0)
        tr = JointDataset({"rsscn7": SHARED / "rsscn7"}, [spec], "train", **kw)
        va = JointDataset({"rsscn7": SHARED / "rsscn7"}, [spec], "val", **kw)
        names = tr.class_names
        sample = torch.stack([tr[i][0] for i in range(len(tr))])
        norm = channel_stats(sample, L, m.lowres_method, m.lr_psf_sigma)
        card = ModelCard(
            class_names=names,
            policy=m.policy,
            hr_classifier=m.hr_classifier,
            lr_classifier=m.lr_classifier,
            hr_size_px=128,
            lr_size_px=L,
            hr_pixel_m=tile_m / 128,
            lr_pixel_m=m.lr_pixel_m,
            tile_ground_m=tile_m,
            lr_norm=norm,
            lr_psf_sigma=m.lr_psf_sigma,
        )
        streams = Streams.from_card(card, Radiometry.from_dict(m.lr_radiometry))
        model = train_lr(card, streams, tr, cfg, args.seed)
        secs = time.perf_counter() - t
        _, xl = streams(torch.stack([va[i][0] for i in range(len(va))]))
        acc = float((predict(model, xl) == va.labels).float().mean())
        raw, water, land = scene_tiles(SCENE, L)
        mean = torch.tensor(norm.mean).view(1, -1, 1, 1)
        std = torch.tensor(norm.std).view(1, -1, 1, 1)
        x = (torch.from_numpy(to_unit(raw.transpose(1, 0, 2, 3), sensor).transpose(1, 0, 2, 3).copy()) - mean) / std
        pred = predict(model, x.float())
        pw, pl = pred[torch.from_numpy(water)], pred[torch.from_numpy(land)]
        iw = names.index("water")
        settled = torch.tensor([names.index(c) for c in SETTLED])
        print(
            f"| {tile_m:g} m | {L} x {L} | {len(tr)} / {len(va)} | {100 * acc:.1f} | "
            f"{100 * float((pw == iw).float().mean()):.1f} "
            f"| {100 * float(torch.isin(pw, settled).float().mean()):.1f} | "
            f"{100 * float((pl == iw).float().mean()):.1f} "
            f"| {int(water.sum())} / {int(land.sum())} | {secs:.0f} |"
        )


if __name__ == "__main__":
    main()
