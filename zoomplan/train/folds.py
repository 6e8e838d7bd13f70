"""Ft-2's out-of-fold LR classifiers, and the seeds every stage draws from.

With ``oof_folds = K > 1`` in ``[stage.ft2]``, the LR logits a training image gets come from an LR
classifier that never saw it: K classifiers, each trained on the images outside its fold
(:func:`train_lr_folds`); the policy step looks an image's fold up by its index (:class:`Indexed`).
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, RandomSampler, Subset

from zoomplan.data.lowres import Streams
from zoomplan.device import autocast, grad_scaler
from zoomplan.models.card import ModelCard
from zoomplan.train.checkpoint import build_component
from zoomplan.train.config import STAGES, TrainConfig
from zoomplan.train.steps import Tally, classifier_loss, cosine_lr


def stage_seed(base: int, stage: str, epoch: int) -> int:
    """The seed of ``stage``'s ``epoch`` in a run seeded ``base`` (epoch numbers above 10,000 seed other draws)."""
    return (base * 1_000_003 + STAGES.index(stage) * 10_007 + epoch) % (2**63)


class Indexed(Dataset):
    """A dataset whose samples also carry their index (for out-of-fold LR logits in Ft-2)."""

    def __init__(self, ds: Dataset) -> None:
        self.ds = ds

    def __len__(self) -> int:
        return len(self.ds)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> tuple[Any, Any, int]:
        img, y = self.ds[i]
        return img, y, i


def train_lr_folds(
    cfg: TrainConfig,
    card: ModelCard,
    train_ds: Dataset,
    streams: Streams,
    device: torch.device,
    k: int,
    progress: Callable[[str, dict[str, Any]], None],
) -> tuple[list[nn.Module], torch.Tensor]:
    """K LR classifiers, fold f trained (with the ``lr`` stage's recipe) on every training image
    outside fold f; returns them frozen and each training image's fold (seeded)."""
    n = len(train_ds)  # type: ignore[arg-type]
    fold_of = torch.empty(n, dtype=torch.long)
    fold_of[torch.randperm(n, generator=torch.Generator().manual_seed(stage_seed(cfg.seed, "lr", 20_000)))] = (
        torch.arange(n) % k
    )
    sc = cfg.stage("lr")
    models = []
    for f in range(k):
        torch.manual_seed(stage_seed(cfg.seed, "lr", 30_000 + f))
        model = build_component(card, "lr").to(device)
        opt = torch.optim.Adam(model.parameters(), lr=sc.lr, weight_decay=sc.weight_decay)
        scaler = grad_scaler(device)
        subset = Subset(train_ds, (fold_of != f).nonzero().flatten().tolist())
        steps = -(-len(subset) // sc.batch_size)
        progress("stage_start", {"stage": f"lr-{f + 1}/{k}", "epochs": sc.epochs, "start_epoch": 0, "steps": steps})
        model.train()
        for epoch in range(sc.epochs):
            seed = stage_seed(cfg.seed, "lr", 40_000 + 1_000 * f + epoch)
            gen = torch.Generator().manual_seed(seed)
            loader = DataLoader(
                subset,
                batch_size=sc.batch_size,
                sampler=RandomSampler(subset, generator=torch.Generator().manual_seed(seed)),
                num_workers=cfg.data.workers,
            )
            tally = Tally()
            for step, (images, y) in enumerate(loader):
                opt.param_groups[0]["lr"] = cosine_lr(
                    epoch * steps + step, steps * sc.epochs, sc.lr, sc.warmup_epochs * steps
                )
                _, xl = streams(images.to(device), generator=gen, augment=True)
                with autocast(device):
                    loss, correct = classifier_loss(model, xl, y.to(device), sc.label_smoothing)
                opt.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
                tally.add(float(loss.detach()), float(correct), 0.0, 0.0, len(y))
                progress(
                    "step",
                    {"stage": f"lr-{f + 1}/{k}", "epoch": epoch, "step": step + 1, "steps": steps, **tally.summary()},
                )
        models.append(model.eval().requires_grad_(False))
    return models, fold_of
