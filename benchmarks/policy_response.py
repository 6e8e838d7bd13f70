"""Does the policy look at the image? Per class S, and S when the LR classifier is right or wrong.

    python benchmarks/policy_response.py --model runs/joint/model.pt --source rsscn7=../shared/data/rsscn7 [--split val]

PatchDrop's reward pays for HR patches only where the LR stream is not enough, so a policy that learnt it
buys more patches on images whose LR prediction is wrong (or unsure) than on those it gets right. Prints,
for the checkpoint's deployed policy on one split of its joint dataset (greedy actions, threshold 0.5):
accuracy, LR-CNN accuracy, S per image (mean, p5/p50/p95), per class S with LR and PatchDrop accuracy,
S given LR right / wrong, and the correlation of S with the LR classifier's top probability. A policy
that ignores its input (a fixed mask) shows the same S whatever the LR stream says.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from torch.utils.data import DataLoader

from zoomplan.data.joint import JointDataset, parse_sources, sources_from_recipe
from zoomplan.data.lowres import Streams
from zoomplan.models.checkpoint import load_checkpoint
from zoomplan.train.steps import PolicyModels, policy_predict


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--source", action="append", required=True, help="NAME=DIR, as for zoomplan train joint")
    ap.add_argument("--split", default="val")
    args = ap.parse_args()
    ck = load_checkpoint(args.model)
    card, cpu = ck.card, torch.device("cpu")
    size = int(card.recipe.get("data", {}).get("source_size", 128))
    ds = JointDataset(
        parse_sources(args.source),
        sources_from_recipe(card.recipe),
        args.split,
        tile_ground_m=card.tile_ground_m,
        size=size,
        cache=False,
    )
    stage = ck.deploy_stage or "ft2"
    lr = ck.build("lr", cpu)
    pm = PolicyModels(
        ck.build(f"policy_{stage}", cpu),
        ck.build(ck.hr_for_stage(stage), cpu),
        lr if stage == "ft2" else None,
        False,
        card.combine,
        card.patch_grid,
    )
    streams = Streams.from_card(card)
    s, y_all, lr_ok, lr_top, ok = [], [], [], [], []
    with torch.inference_mode():
        for x, y in DataLoader(ds, batch_size=128):
            xh, xl = streams(x)
            a, p = policy_predict(pm, xh, xl)
            lp = lr(xl).float().softmax(1)
            (
                s.append(a.sum(1)),
                y_all.append(y),
                lr_ok.append(lp.argmax(1) == y),
                lr_top.append(lp.max(1).values),
                ok.append(p.argmax(1) == y),
            )
    S, Y, LRok, LRtop, OK = (torch.cat(t).numpy() for t in (s, y_all, lr_ok, lr_top, ok))
    p5, p50, p95 = np.percentile(S, [5, 50, 95])
    print(
        f"{args.model} ({stage} policy), split {args.split}: {len(S)} images, PatchDrop acc {OK.mean():.3f} at S "
        f"{S.mean():.2f} "
        f"(p5/p50/p95 {p5:g}/{p50:g}/{p95:g} of {card.num_patches}), LR-CNN acc {LRok.mean():.3f}"
    )
    for k, c in enumerate(ds.class_names):
        m = Y == k
        print(
            f"  {c:<14} {int(m.sum()):>4} images  S {S[m].mean():5.2f}  LR acc {LRok[m].mean():.2f}  PatchDrop acc "
            f"{OK[m].mean():.2f}"
        )
    print(
        f"S when LR is right {S[LRok].mean():.2f}, when LR is wrong {S[~LRok].mean():.2f}; "
        f"correlation of S with the LR top probability {np.corrcoef(S, LRtop)[0, 1]:+.2f}"
    )


if __name__ == "__main__":
    main()
