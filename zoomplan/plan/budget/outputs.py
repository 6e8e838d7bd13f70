"""Budget outputs: CSV, GeoPackage and the choropleth map of a :class:`~zoomplan.plan.budget.result.BudgetResult`.

- CSV (RFC 4180, UTF-8): one row per region in file order, then a ``TOTAL`` row; the columns of
  :meth:`~zoomplan.plan.budget.result.BudgetResult.columns` (areas km^2, money USD, fractions 0-1, percent for
  ``savings_pct_*``); a figure a row does not have is an empty cell, never 0.
- GeoPackage: layer ``budget``, the regions' billed parts as MultiPolygons in EPSG:4326 (lon/lat) with
  the same columns (a region wholly inside earlier regions has no geometry); layer ``totals``, the
  TOTAL row without geometry.
- Map (PNG): each region filled by its plan cost per km^2 under the first vendor (USD/km^2, colour
  bar from 0), regions without figures hatched grey, every region labelled, over a true-colour
  rendering of the LR scene (:func:`zoomplan.plan.export.map_layers.read_background`).

Every file is written atomically (:mod:`zoomplan.atomic`); :func:`zoomplan.plan.budget.budget.budget` also
stages them so that either all or none appear.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import shapely
from pyproj import CRS, Transformer

from zoomplan.atomic import atomic_path, write_text_atomic
from zoomplan.plan.budget.result import BudgetResult, vendor_slug
from zoomplan.plan.export.map_layers import polygon_path, read_background

log = logging.getLogger(__name__)


def _cell(v: Any) -> Any:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return ""
    return v


def csv_text(result: BudgetResult) -> str:
    """The budget as CSV text (header, regions, TOTAL)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    cols = result.columns()
    w.writerow(cols)
    for rec in result.records():
        w.writerow([_cell(rec[c]) for c in cols])
    return buf.getvalue()


def write_csv(result: BudgetResult, path_or_dash: str | os.PathLike[str]) -> None:
    """Write the budget CSV to a file atomically, or to stdout for ``"-"``."""
    text = csv_text(result)
    if os.fspath(path_or_dash) == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    write_text_atomic(Path(path_or_dash), text)
    log.info("wrote %s", path_or_dash)


def write_gpkg(result: BudgetResult, path: str | os.PathLike[str]) -> None:
    """Write the budget GeoPackage (layers ``budget`` and ``totals``, EPSG:4326) atomically."""
    import geopandas as gpd
    import pandas as pd
    import pyogrio

    tr = Transformer.from_crs(result.crs, CRS.from_epsg(4326), always_xy=True)
    geoms = [
        None
        if r.geometry.is_empty
        else shapely.transform(r.geometry, lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1])))
        for r in result.rows
    ]
    cols = result.columns()
    text = {"region", "name", "status", "overlap_with"}

    def frame(recs: Sequence[dict[str, Any]]) -> pd.DataFrame:
        df = pd.DataFrame(list(recs), columns=cols)
        for c in text:  # all-empty text columns would otherwise have no type GDAL can store
            df[c] = df[c].astype(object).where(df[c].notna(), None).astype("string")
        return df

    gdf = gpd.GeoDataFrame(frame(result.records(total=False)), geometry=geoms, crs="EPSG:4326")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # GDAL wants the .gpkg name itself: write it in a hidden folder beside the target, then rename.
    d = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        tmp = d / target.name
        pyogrio.write_dataframe(gdf, tmp, layer="budget", driver="GPKG", promote_to_multi=True)
        pyogrio.write_dataframe(frame([result.totals()]), tmp, layer="totals", driver="GPKG")
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    log.info("wrote %s", path)


def render_map(
    result: BudgetResult,
    scene_path: str | os.PathLike[str],
    out_png: str | os.PathLike[str],
    *,
    bands: Sequence[int] | None = None,
    max_px: int = 1024,
) -> Path:
    """Draw the choropleth of plan cost per km^2 (first vendor, USD/km^2) over the scene to ``out_png``."""
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch, PathPatch

    vendor = result.vendors[0]
    key = f"plan_usd_per_km2_{vendor_slug(vendor)}"
    recs = result.records(total=False)
    drawn = [(r, rec[key]) for r, rec in zip(result.rows, recs) if not r.geometry.is_empty]
    focus = [r.geometry for r, _ in drawn if r.counted] or [r.geometry for r, _ in drawn]
    bg = read_background(scene_path, result.crs, focus, bands=bands, max_px=max_px)
    shapes_s = bg.project([r.geometry for r, _ in drawn])
    vals = [v for _, v in drawn if isinstance(v, float) and math.isfinite(v)]
    norm = Normalize(vmin=0.0, vmax=max(vals) if vals and max(vals) > 0 else 1.0)
    cmap = colormaps["YlOrRd"]

    fig = Figure(figsize=(9, 8), dpi=128)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.imshow(bg.rgba, extent=bg.extent, origin="upper", interpolation="nearest")
    for (r, v), g in zip(drawn, shapes_s):
        p = polygon_path([g])
        if p is None:
            continue
        ok = isinstance(v, float) and math.isfinite(v)
        if ok:
            ax.add_patch(PathPatch(p, facecolor=(*cmap(norm(v))[:3], 0.6), edgecolor="black", linewidth=1.0))
        else:
            ax.add_patch(PathPatch(p, facecolor="none", edgecolor="0.4", hatch="///", linewidth=1.0))
        pt = g.representative_point()
        if ok:
            label = f"{r.region}\n{v:,.0f} USD/km2" if v >= 100 else f"{r.region}\n{v:.2f} USD/km2"
        else:
            label = f"{r.region}\n{r.status}"
        ax.text(
            pt.x,
            pt.y,
            label,
            ha="center",
            va="center",
            fontsize=7,
            clip_on=True,
            bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "none", "alpha": 0.75},
        )
    left, right, bottom, top = bg.extent
    ax.set_xlim(left, right)
    ax.set_ylim(bottom, top)
    ax.set_aspect("equal")
    ax.tick_params(labelsize=7)
    ax.ticklabel_format(useOffset=False, style="plain")
    t = result.totals()
    s = vendor_slug(vendor)
    ax.set_title(
        f"Plan cost per km2 by region, {vendor}: USD {t[f'plan_usd_{s}']:,.2f} of {t[f'baseline_usd_{s}']:,.2f} "
        f"(saves {t[f'savings_pct_{s}']:.1f}%)\n{bg.title}",
        fontsize=9,
    )
    fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, shrink=0.75, label=f"plan cost, USD/km2 ({vendor})")
    missing = [f"{r.region} ({r.status})" for r in result.rows if not r.counted]
    if missing:
        label = "no figures: " + ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
        ax.legend(
            handles=[Patch(facecolor="none", edgecolor="0.4", hatch="///", label=label)], loc="lower left", fontsize=7
        )
    out = Path(out_png)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight")
    log.info("wrote %s", out)
    return out
