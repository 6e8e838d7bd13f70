"""Audit outputs: Markdown, JSON and a bar chart of a :class:`~zoomplan.plan.audit.rows.AuditResult`.

- ``audit.md``: the run's parameters as a list, then one table row per class and ``TOTAL`` (areas
  km^2, fractions 0-1, probabilities 0-1).
- ``audit.json``: ``{"parameters": {...}, "rows": [...]}``, the rows as
  :meth:`~zoomplan.plan.audit.rows.AuditRow.to_dict` (a figure a row does not have is ``null``).
- ``audit.png``: a horizontal bar per class, the fraction of its patches selected (0-1), each bar
  annotated with its patch counts, the TOTAL fraction as a dashed line (matplotlib's Agg canvas, no
  global backend switched).

Every file is rendered in memory first, then written into the folder together with
:func:`zoomplan.atomic.atomic_folder`: an error while rendering writes nothing, and no file is ever
left half-written under its final name.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

from zoomplan.atomic import atomic_folder
from zoomplan.plan.audit.rows import AuditResult, AuditRow

COLUMNS = ("class", "area km2", "patches", "selected", "fraction selected", "mean probability", "top LR class")


def _num(v: float, fmt: str) -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, fmt)


def cells(r: AuditRow) -> list[str]:
    """A row's cells as text, in the order of :data:`COLUMNS` (shared with the CLI's table)."""
    top = "-" if r.top_lr_class is None else f"{r.top_lr_class} ({100 * r.top_lr_share:.0f}%)"
    return [
        r.label,
        _num(r.area_km2, ".4f"),
        f"{r.patches:,}",
        f"{r.selected:,}",
        _num(r.fraction_selected, ".3f"),
        _num(r.mean_probability, ".3f"),
        top,
    ]


def _md_escape(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def markdown(result: AuditResult) -> str:
    """The audit as Markdown: a title, the parameters, the table."""
    p = result.parameters
    m = p["model"]
    field = f", field `{_md_escape(p['field'])}`" if p["field"] else ""
    lines = [
        f"# zoomplan audit: {_md_escape(Path(p['labels']).name)}",
        "",
        f"- model: `{_md_escape(m['file'])}` (id `{m['id']}`, sha256 `{m['sha256']}`, "
        f"policy stage {m['policy_stage']})",
        f"- threshold: {p['threshold']:g} ({p['threshold_rule']})",
        f"- labels: `{_md_escape(p['labels'])}` ({p['labels_kind']}{field})",
        f"- scenes: {', '.join(f'`{_md_escape(s)}`' for s in p['scenes'])}",
        f"- grid: {p['planning_crs']}, {p['patch_m']:g} m patches ({p['patch_area_km2']:g} km2 each); {p['area_rule']}",
        f"- patches: {p['patches_labelled']:,} counted of {p['patches_planned']:,} planned "
        f"({p['patches_unlabelled']:,} without a label under their centre)",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join("---" if i == 0 or i == len(COLUMNS) - 1 else "---:" for i in range(len(COLUMNS))) + "|",
    ]
    for r in result.rows:
        c = [_md_escape(x) for x in cells(r)]
        if r.label == "TOTAL":
            c = [f"**{x}**" for x in c]
        lines.append("| " + " | ".join(c) + " |")
    return "\n".join(lines) + "\n"


def json_text(result: AuditResult) -> str:
    """The audit as JSON text (UTF-8, indented, no NaN)."""
    return json.dumps(result.to_dict(), ensure_ascii=False, allow_nan=False, indent=2) + "\n"


def png_bytes(result: AuditResult, *, dpi: int = 110) -> bytes:
    """The bar chart of the fraction of each class's patches selected, as PNG bytes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = [r for r in result.rows if r.label != "TOTAL"]
    total = result.rows[-1]
    p = result.parameters
    fig = Figure(figsize=(8, 1.6 + 0.45 * max(len(rows), 2)), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ys = list(range(len(rows)))[::-1]  # first class at the top
    fr = [r.fraction_selected if math.isfinite(r.fraction_selected) else 0.0 for r in rows]
    ax.barh(ys, fr, color="#d95f02", height=0.6)
    for y, r, f in zip(ys, rows, fr):
        text = f"{r.selected:,} of {r.patches:,} patches" if r.patches else "no patches"
        outside = f < 0.78  # the count beside a short bar, inside a long one
        ax.text(
            f + 0.01 if outside else f - 0.01,
            y,
            text,
            va="center",
            ha="left" if outside else "right",
            fontsize=9,
            color="black" if outside else "white",
            bbox=dict(facecolor="white", edgecolor="none", alpha=0.7, pad=1) if outside else None,
        )
    if math.isfinite(total.fraction_selected):
        ax.axvline(total.fraction_selected, color="#333333", linestyle="--", linewidth=1)
        ax.text(
            total.fraction_selected, len(rows) - 0.4, f" all: {total.fraction_selected:.2f}", fontsize=8, va="bottom"
        )
    ax.set_yticks(ys)
    ax.set_yticklabels([r.label for r in rows], fontsize=10)
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.6, len(rows) - 0.1)
    ax.set_xlabel(f"fraction of patches selected (probability > {p['threshold']:g})")
    ax.set_title(f"zoomplan audit: {Path(p['labels']).name}, model {p['model']['id']}", fontsize=10, loc="left")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def write_outputs(result: AuditResult, out_dir: Path, *, png: bool = False) -> tuple[str, ...]:
    """Write ``audit.md``, ``audit.json`` (and ``audit.png``) into ``out_dir``; returns the paths written."""
    files: dict[str, bytes] = {"audit.md": markdown(result).encode(), "audit.json": json_text(result).encode()}
    if png:
        files["audit.png"] = png_bytes(result)
    with atomic_folder(out_dir) as tmp:
        for name, data in files.items():
            (tmp / name).write_bytes(data)
    return tuple(str(out_dir / name) for name in files)
