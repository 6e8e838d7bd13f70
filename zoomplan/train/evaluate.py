"""The paper's results table: accuracy and S (acquired HR patches per image, of P) per method.

Methods (PATCHDROP.md, "Evaluation"): HR-CNN (S = P) and LR-CNN (S = 0), the stage-1 classifiers;
for every policy stage present (Pt, Ft-1, Ft-2), PatchDrop's greedy policy and the baselines Fixed-H,
Fixed-V, Stochastic and Random at PatchDrop's mean S. In the Pt column every baseline uses the
stage-1 HR classifier, as PatchDrop Pt does. In the Ft-1 and Ft-2 columns, given a baselines file
(``--stage baselines``, :mod:`zoomplan.train.baselines`), each baseline uses its own classifier
fine-tuned on its own masks, the paper's protocol; without one, it borrows that stage's PatchDrop
classifier, and the table says so. Ft-2 adds the LR stream with the card's combination rule. A
fractional S is matched exactly in the mean: each image gets floor(S) or ceil(S) patches in the
right proportion (seeded).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch.utils.data import DataLoader, Dataset

from zoomplan.atomic import write_text_atomic
from zoomplan.data.lowres import Streams
from zoomplan.device import autocast
from zoomplan.models.card import check_compatible
from zoomplan.train.baselines import BASELINE_COMPONENTS, BASELINES, baseline_actions, check_baselines
from zoomplan.train.checkpoint import Checkpoint
from zoomplan.train.masks import counts_for_mean
from zoomplan.train.steps import PolicyModels, masked_predict, policy_predict

STAGE_LABEL = {"pt": "Pt", "ft1": "Ft-1", "ft2": "Ft-2"}


@dataclass(frozen=True)
class Row:
    method: str
    stage: str  # "stage 1" for HR-CNN/LR-CNN, else Pt / Ft-1 / Ft-2
    accuracy: float  # fraction in [0, 1]
    S: float  # mean acquired patches per image


@dataclass
class EvalResult:
    checkpoint: str
    split: str
    n_images: int
    seed: int
    num_patches: int
    rows: list[Row] = field(default_factory=list)
    baselines: str = ""  # file of the baselines' own fine-tuned classifiers ("" : PatchDrop's classifiers)
    # PatchDrop's masks per stage label: share of images acquiring each patch (row-major over the patch
    # grid, north-west first; sums to S), and per-image S at the 5th, 50th and 95th percentiles.
    patch_rate: dict[str, list[float]] = field(default_factory=dict)
    s_percentiles: dict[str, list[float]] = field(default_factory=dict)
    patch_grid: tuple[int, int] = (4, 4)

    def get(self, method: str, stage: str) -> Row:
        for r in self.rows:
            if r.method == method and r.stage == stage:
                return r
        raise KeyError((method, stage))

    def to_json(self) -> str:
        d = asdict(self)
        return json.dumps(d, indent=2)

    def to_markdown(self) -> str:
        stages = [s for s in STAGE_LABEL.values() if any(r.stage == s for r in self.rows)]
        how = (
            f"Ft columns: each baseline with its own classifier fine-tuned on its own masks (`{self.baselines}`)."
            if self.baselines
            else "Ft columns: baselines borrow PatchDrop's fine-tuned classifier (no baselines file given; not the "
            "paper's protocol)."
        )
        lines = [
            f"Split `{self.split}` ({self.n_images} images), checkpoint `{self.checkpoint}`, baseline seed "
            f"{self.seed}. "
            f"Accuracy % (S = mean HR patches acquired of {self.num_patches}). Pt column: stage-1 HR classifier. {how}",
            "",
        ]
        for m in ("HR-CNN", "LR-CNN"):
            r = self.get(m, "stage 1")
            lines.append(f"- **{m}**: {100 * r.accuracy:.1f}% (S {r.S:.1f})")
        lines += ["", "| Method | " + " | ".join(stages) + " |", "|---|" + "---|" * len(stages)]
        for m in (*BASELINES, "PatchDrop"):
            cells = []
            for s in stages:
                try:
                    r = self.get(m, s)
                    cells.append(f"{100 * r.accuracy:.1f} (S {r.S:.1f})")
                except KeyError:
                    cells.append("-")
            name = f"**{m}**" if m == "PatchDrop" else m
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        if self.patch_rate:
            rows_, cols = self.patch_grid
            lines += [
                "",
                f"PatchDrop's masks: share of images acquiring each patch ({rows_} x {cols} grid, row by row from the "
                f"north), "
                "and S per image at the 5th / 50th / 95th percentiles.",
                "",
                "| stage | " + " | ".join(f"row {i + 1}" for i in range(rows_)) + " | S p5 / p50 / p95 |",
                "|---|" + "---|" * (rows_ + 1),
            ]
            for st, rate in self.patch_rate.items():
                cells = [" ".join(f"{v:.2f}" for v in rate[i * cols : (i + 1) * cols]) for i in range(rows_)]
                q = self.s_percentiles.get(st, [])
                lines.append(f"| {st} | " + " | ".join(cells) + " | " + " / ".join(f"{v:g}" for v in q) + " |")
        return "\n".join(lines) + "\n"


def evaluate_checkpoint(
    ckpt: Checkpoint,
    dataset: Dataset,
    *,
    split: str = "test",
    device: torch.device | None = None,
    batch_size: int = 128,
    seed: int = 0,
    class_names: tuple[str, ...] | None = None,
    baselines: Checkpoint | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> EvalResult:
    """Evaluate every method of the paper's table on ``dataset`` (``(uint8 image, label)`` samples).

    ``baselines``: the run's ``baselines.pt`` (checked to come from this checkpoint's HR classifier);
    its classifiers serve the baselines' Ft-1/Ft-2 columns.
    """
    device = device or torch.device("cpu")
    card = ckpt.card
    if baselines is not None:
        check_baselines(baselines, ckpt)
    if class_names is not None:
        check_compatible(card, class_names=class_names)
    streams = Streams.from_card(card)
    P, grid = card.num_patches, card.patch_grid
    hr = ckpt.build("hr", device)
    lr = ckpt.build("lr", device)
    stage_models = {}
    for st in ckpt.policy_stages:
        stage_models[st] = PolicyModels(
            ckpt.build(f"policy_{st}", device),
            ckpt.build(ckpt.hr_for_stage(st), device),
            lr if st == "ft2" else None,
            False,
            card.combine,
            grid,
        )
    own: dict[str, torch.nn.Module] = {}
    if baselines is not None:
        own = {name: baselines.build(comp, device) for name, comp in BASELINE_COMPONENTS.items()}
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    n_total = len(dataset)  # type: ignore[arg-type]
    # Pass 1: HR-CNN, LR-CNN and PatchDrop; keep per-image correctness.
    correct: dict[tuple[str, str], float] = {}
    per_patch: dict[str, torch.Tensor] = {st: torch.zeros(P, dtype=torch.float64) for st in stage_models}
    per_image: dict[str, list[torch.Tensor]] = {st: [] for st in stage_models}
    done = 0

    def bump(key: tuple[str, str], v: float) -> None:
        correct[key] = correct.get(key, 0.0) + v

    with torch.inference_mode(), autocast(device):
        for images, y in loader:
            y = y.to(device)
            xh, xl = streams(images.to(device))
            bump(("HR-CNN", "stage 1"), float((hr(xh).argmax(1) == y).sum()))
            bump(("LR-CNN", "stage 1"), float((lr(xl).argmax(1) == y).sum()))
            for st, pm in stage_models.items():
                actions, probs = policy_predict(pm, xh, xl)
                bump(("PatchDrop", STAGE_LABEL[st]), float((probs.argmax(1) == y).sum()))
                a = actions.detach().to("cpu", torch.float64)  # 0/1: sums are exact
                per_patch[st] += a.sum(0)
                per_image[st].append(a.sum(1))
            done += len(y)
            if progress:
                progress(done, 2 * n_total)
        mean_s = {st: float(per_patch[st].sum()) / n_total for st in stage_models}
        # Pass 2: baselines at each stage's S, same classifier weights, seeded actions.
        gen = torch.Generator().manual_seed(seed)
        counts = {st: counts_for_mean(n_total, s, P, gen) for st, s in mean_s.items()}
        base_patches: dict[tuple[str, str], float] = {}
        start = 0
        for images, y in loader:
            y = y.to(device)
            xh, xl = streams(images.to(device))
            n = len(y)
            for st, pm in stage_models.items():
                c = counts[st][start : start + n]
                for name in BASELINES:
                    a = baseline_actions(name, c, mean_s[st], grid, gen).to(device)
                    clf = own[name] if own and st != "pt" else pm.hr
                    probs = masked_predict(clf, pm.lr, xh, xl, a, card.combine, grid)
                    bump((name, STAGE_LABEL[st]), float((probs.argmax(1) == y).sum()))
                    base_patches[(name, STAGE_LABEL[st])] = base_patches.get((name, STAGE_LABEL[st]), 0.0) + float(
                        a.sum()
                    )
            start += n
            if progress:
                progress(n_total + start, 2 * n_total)
    rows = [
        Row("HR-CNN", "stage 1", correct[("HR-CNN", "stage 1")] / n_total, float(P)),
        Row("LR-CNN", "stage 1", correct[("LR-CNN", "stage 1")] / n_total, 0.0),
    ]
    for st in stage_models:
        label = STAGE_LABEL[st]
        for name in BASELINES:
            rows.append(Row(name, label, correct[(name, label)] / n_total, base_patches[(name, label)] / n_total))
        rows.append(Row("PatchDrop", label, correct[("PatchDrop", label)] / n_total, mean_s[st]))
    rate = {STAGE_LABEL[st]: [round(float(v) / n_total, 4) for v in per_patch[st]] for st in stage_models}
    pct = {
        STAGE_LABEL[st]: [
            float(v)
            for v in torch.quantile(
                torch.cat(per_image[st]), torch.tensor([0.05, 0.5, 0.95], dtype=torch.float64), interpolation="nearest"
            )
        ]
        for st in stage_models
    }
    return EvalResult(
        str(ckpt.path),
        split,
        n_total,
        seed,
        P,
        rows,
        str(baselines.path) if baselines is not None else "",
        patch_rate=rate,
        s_percentiles=pct,
        patch_grid=tuple(grid),
    )


def write_result(result: EvalResult, out_dir: str | Path, stem: str = "evaluation") -> tuple[Path, Path]:
    """Write ``<stem>.md`` and ``<stem>.json`` into ``out_dir`` atomically; returns both paths."""
    out = Path(out_dir)
    md, js = out / f"{stem}.md", out / f"{stem}.json"
    write_text_atomic(md, result.to_markdown())
    write_text_atomic(js, result.to_json())
    return md, js
