"""The run directory of ``zoomplan train``: what is in it, how a run starts or continues one.

Layout::

    RUN/model.pt        best weights so far of every finished stage + the model card (atomic writes)
    RUN/last.pt         the in-progress stage's last epoch: models, optimiser, epoch (for --resume)
    RUN/metrics.jsonl   one line per epoch and stage: train and val loss, accuracy, S, reward (rewritten
                        atomically for each line)
    RUN/recipe.toml     the recipe as used
    RUN/baselines.pt    the paper's baselines fine-tuned on their own masks (``--stage baselines``)

Only rank 0 of a ``torchrun`` launch writes (:class:`DistInfo`). Used by :mod:`zoomplan.train.runner`
and :mod:`zoomplan.train.baselines`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from zoomplan.atomic import write_text_atomic
from zoomplan.data.lowres import channel_stats
from zoomplan.errors import CheckpointError, ConfigError
from zoomplan.models.card import ModelCard, ModelSpec
from zoomplan.train.checkpoint import load_checkpoint
from zoomplan.train.config import TrainConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> "DistInfo":
        return cls(
            int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))
        )

    @property
    def main(self) -> bool:
        return self.rank == 0


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """Rows of a ``metrics.jsonl``; a torn last line (a crash mid-write on an old file) is skipped."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            log.warning("%s: skipped an incomplete line", path)
    return rows


def append_metrics(path: Path, row: dict[str, Any]) -> None:
    """Add one row to ``metrics.jsonl`` by rewriting it atomically (a crash never leaves half a line)."""
    rows = read_metrics(path) if path.exists() else []
    write_text_atomic(path, "".join(json.dumps(r) + "\n" for r in [*rows, row]))


def trim_metrics(path: Path, stage: str, done: int) -> None:
    """On resume: drop ``stage``'s rows after its ``done`` finished epochs (an epoch that was
    logged but whose state was not saved before the crash is run, and logged, again)."""
    if not path.exists():
        return
    rows = read_metrics(path)
    keep = [r for r in rows if not (r.get("stage") == stage and "baseline" not in r and int(r.get("epoch", 0)) > done)]
    if len(keep) != len(rows):
        write_text_atomic(path, "".join(json.dumps(r) + "\n" for r in keep))


def card_fields_of(cfg: TrainConfig) -> dict[str, Any]:
    """Every recipe [model] field that the card also has (architectures, geometry, Ft-2 rule), by name."""
    card_fields = {f.name for f in dataclasses.fields(ModelCard)}
    return {f.name: getattr(cfg.model, f.name) for f in dataclasses.fields(cfg.model) if f.name in card_fields}


def make_card(cfg: TrainConfig, class_names: tuple[str, ...], train_ds: Dataset, dataset: str) -> ModelCard:
    """The card of a new run: geometry and architectures from the recipe, normalisation measured on
    (up to 2,000 images of) the training split."""
    from zoomplan import __version__

    n = min(len(train_ds), 2000)  # type: ignore[arg-type]
    idx = torch.linspace(0, len(train_ds) - 1, n).long().tolist()  # type: ignore[arg-type]
    imgs = torch.stack([train_ds[i][0] for i in idx])
    m = cfg.model
    hr_norm = channel_stats(imgs)
    lr_norm = channel_stats(imgs, m.lr_size_px, m.lowres_method, m.lr_psf_sigma)
    return ModelCard(
        class_names=class_names,
        **card_fields_of(cfg),
        hr_norm=hr_norm,
        lr_norm=lr_norm,
        lr_sensors=cfg.sensors,
        dataset=dataset,
        recipe=cfg.raw,
        seed=cfg.seed,
        zoomplan_version=__version__,
    )


def _show(value: Any) -> str:
    """A recipe value as the recipe writes it (a network as its name and keyword arguments)."""
    if isinstance(value, ModelSpec):
        return "{ name = " + repr(value.name) + "".join(f", {k} = {v!r}" for k, v in value.kwargs.items()) + " }"
    return repr(value)


def start_card(
    cfg: TrainConfig, class_names: tuple[str, ...], train_ds: Dataset, dataset: str, ckpt_path: Path
) -> tuple[ModelCard, dict[str, dict[str, torch.Tensor]]]:
    """The card and weights a run starts from: those of ``ckpt_path`` when the run directory has one
    (checked to be the same classes and networks as ``cfg``), else a new card (:func:`make_card`)."""
    if not ckpt_path.exists():
        return make_card(cfg, class_names, train_ds, dataset), {}
    base = load_checkpoint(ckpt_path)
    if base.card.class_names != class_names:
        raise CheckpointError(f"{ckpt_path} was trained on other classes: use a new --out directory")
    # A card holds one network per component and one geometry: a recipe that changes them cannot
    # continue this run (its stored weights would be built, or kept, as the old networks).
    for name, want in card_fields_of(cfg).items():
        have = getattr(base.card, name)
        if have != want:
            raise ConfigError(
                f"{cfg.source or 'the recipe'} [model] {name} = {_show(want)} differs from {_show(have)} in "
                f"{ckpt_path}, which this run "
                "continues: use a new --out directory (every stage is trained again there)"
            )
    # The card keeps the normalisation measured when the run began; the recipe is the one in
    # force now (each stage's own settings are also kept with its metrics).
    return base.card.replace(recipe=cfg.raw), {k: dict(v) for k, v in base.weights.items()}
