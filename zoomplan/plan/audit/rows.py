"""Audit rows: per-class counts from each patch's label class and policy probability, and the result.

Pure (no files, no model): :func:`aggregate` is what :func:`zoomplan.plan.audit.audit.audit` computes once the
patches are labelled; :class:`AuditResult` is what it returns and what :mod:`zoomplan.plan.audit.outputs`
writes. Both sides import this module, so neither imports the other for its types.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from zoomplan.plan.inference.infer import InferenceStats
from zoomplan.plan.types import PatchTable

TOTAL = "TOTAL"


@dataclass(frozen=True)
class AuditRow:
    """One class (or the ``TOTAL`` row): ``patches`` counted by centre, ``selected`` of them, ``area_km2``
    (patches x patch area, km^2), ``fraction_selected`` and ``mean_probability`` (NaN without patches),
    the LR classifier's most frequent class ``top_lr_class`` (``None`` without patches) and its share."""

    label: str
    patches: int
    selected: int
    area_km2: float
    fraction_selected: float
    mean_probability: float
    top_lr_class: str | None
    top_lr_share: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN as ``None``)."""
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


def selected_mask(probs: np.ndarray, threshold: float) -> np.ndarray:
    """The planner's threshold rule (:func:`zoomplan.plan.selection.select.select`): ``probs > threshold``, every
    patch when ``threshold <= 0`` (probability 0 included); NaN probabilities are never selected above 0."""
    p = np.asarray(probs)
    if threshold <= 0:
        return np.ones(p.shape[0], bool)
    return np.asarray(p > threshold, bool)


def aggregate(
    classes_per_patch: Sequence[str | None] | np.ndarray,
    probs: Sequence[float] | np.ndarray,
    threshold: float,
    patch_area_km2: float,
    *,
    lr_class: Sequence[int] | np.ndarray | None = None,
    lr_names: Sequence[str] = (),
    classes: Sequence[str] | None = None,
) -> list[AuditRow]:
    """Per-class rows, then the ``TOTAL`` row, from each patch's label class (``None``: not counted) and
    policy probability. ``patch_area_km2``: one patch's area (km^2). ``lr_class``: each patch's LR class
    index (named by ``lr_names``; an index without a name is written as a number); without it
    ``top_lr_class`` is ``None``. ``classes``: the classes to report first, in order (a class without
    patches gets a row of zeros and NaN); the classes present but not listed follow, sorted. Pure: no
    files, no model."""
    names = [None if c is None else str(c) for c in classes_per_patch]
    p = np.asarray(probs, dtype=np.float64)
    if len(names) != p.shape[0] or (lr_class is not None and len(lr_class) != p.shape[0]):
        raise ValueError(
            f"classes_per_patch ({len(names)}), probs ({p.shape[0]}) and lr_class must have one value per patch"
        )
    lr = None if lr_class is None else np.asarray(lr_class, dtype=np.int64)
    sel = selected_mask(p, threshold)
    present = sorted({c for c in names if c is not None})
    order = list(dict.fromkeys([*(classes if classes is not None else []), *present]))
    index = {c: i for i, c in enumerate(order)}
    code = np.fromiter((-1 if c is None else index[c] for c in names), dtype=np.int64, count=len(names))
    rows = [_row(name, code == i, p, sel, lr, lr_names, patch_area_km2) for i, name in enumerate(order)]
    rows.append(_row(TOTAL, code >= 0, p, sel, lr, lr_names, patch_area_km2))
    return rows


def _row(
    name: str,
    m: np.ndarray,
    p: np.ndarray,
    sel: np.ndarray,
    lr: np.ndarray | None,
    lr_names: Sequence[str],
    patch_area_km2: float,
) -> AuditRow:
    n = int(m.sum())
    k = int((m & sel).sum())
    top, share = None, math.nan
    if n and lr is not None:
        vals, counts = np.unique(lr[m], return_counts=True)
        i = int(np.argmax(counts))  # np.unique sorts values: ties go to the lower class index
        v = int(vals[i])
        top = lr_names[v] if 0 <= v < len(lr_names) else str(v)
        share = float(counts[i]) / n
    return AuditRow(
        label=name,
        patches=n,
        selected=k,
        area_km2=n * float(patch_area_km2),
        fraction_selected=k / n if n else math.nan,
        mean_probability=float(p[m].mean()) if n else math.nan,
        top_lr_class=top,
        top_lr_share=share,
    )


@dataclass(frozen=True)
class AuditResult:
    """The audit: ``rows`` (classes in report order, then ``TOTAL``), ``parameters`` (JSON-ready: model,
    threshold, scenes, labels, grid, counts), and what it was computed from: the planner's ``table`` over
    the labelled area (planning CRS), each patch's label class ``patch_class`` (``None``: no label under its
    centre, not counted), the selection ``selected`` and the inference counts ``stats``. ``written``: files."""

    rows: tuple[AuditRow, ...]
    parameters: dict[str, Any]
    table: PatchTable
    patch_class: np.ndarray
    selected: np.ndarray
    stats: InferenceStats
    written: tuple[str, ...] = field(default=())

    def row(self, label: str) -> AuditRow:
        """The row of class ``label`` (or ``"TOTAL"``)."""
        for r in self.rows:
            if r.label == label:
                return r
        raise KeyError(label)

    def to_dict(self) -> dict[str, Any]:
        """``{"parameters": ..., "rows": [...]}``, JSON-ready."""
        return {"parameters": self.parameters, "rows": [r.to_dict() for r in self.rows]}
