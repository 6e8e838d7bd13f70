"""Quicklook PNG: the LR scene in true colour with the AOI, the selected patches and the orders.

:func:`read_background` (the scene, read and stretched) is shared with the budget map
(:func:`zoomplan.plan.budget_io.render_map`).

The scene is read once, downsampled by GDAL to at most ``max_px`` pixels a side (``out_shape``, so
memory stays bounded whatever the scene size) over the AOI's extent, and stretched per band between
its 2nd and 98th percentiles. Vectors are reprojected from the planning CRS to the scene's CRS for
drawing. matplotlib is imported and its Agg canvas chosen inside :func:`render` (an explicit
``FigureCanvasAgg``: no global backend is switched, nothing happens at import).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import rasterio
import rasterio.errors
import rasterio.windows
import shapely
from pyproj import CRS, Transformer
from rasterio.enums import Resampling
from shapely.geometry.base import BaseGeometry
from shapely.geometry.polygon import orient

from zoomplan.atomic import atomic_path
from zoomplan.errors import InputError
from zoomplan.plan.orders import Order, patch_mask_polygons
from zoomplan.plan.types import PatchTable

log = logging.getLogger(__name__)

_ALIASES = {  # as zoomplan.models.card.SENTINEL2_BAND_ALIASES (not imported: zoomplan.models loads torch)
    "red": ("red", "b04", "b4", "band 4"),
    "green": ("green", "b03", "b3", "band 3"),
    "blue": ("blue", "b02", "b2", "band 2"),
}


def rgb_bands(descriptions: Sequence[str | None], colorinterp: Sequence[str]) -> tuple[int, ...]:
    """1-based (red, green, blue) bands by description or colour interpretation, else (1, 2, 3), else (1,)."""
    out = []
    for name in ("red", "green", "blue"):
        keys = set(_ALIASES[name])
        hit = [i + 1 for i, d in enumerate(descriptions) if d and (d.strip().lower() in keys or keys & set(d.lower().replace("(", " ").replace(")", " ").split()))]
        hit = hit or [i + 1 for i, ci in enumerate(colorinterp) if ci.lower() == name]
        if hit:
            out.append(hit[0])
    if len(out) == 3:
        return tuple(out)
    return (1, 2, 3) if len(descriptions) >= 3 else (1,)


def stretch(data: np.ma.MaskedArray) -> np.ndarray:
    """(bands, H, W) -> (H, W, 4) RGBA floats in [0, 1]: 2-98 percentile per band, masked pixels clear."""
    bands = data.shape[0]
    mask = np.ma.getmaskarray(data).any(axis=0) | ~np.isfinite(np.ma.getdata(data)).all(axis=0)
    rgb = np.zeros(data.shape[1:] + (3,), np.float32)
    for b in range(3):
        x = np.ma.getdata(data[min(b, bands - 1)]).astype(np.float64)
        v = x[~mask]
        if v.size:
            lo, hi = np.percentile(v, [2, 98])
            rgb[..., b] = np.clip((x - lo) / (hi - lo if hi > lo else 1.0), 0, 1)
    return np.dstack([rgb, (~mask).astype(np.float32)])


def polygon_path(geoms: Sequence[BaseGeometry]) -> Any:
    """A matplotlib Path of (Multi)Polygons (holes kept clear under the nonzero rule); ``None`` if empty."""
    from matplotlib.path import Path as MPath

    verts: list[np.ndarray] = []
    codes: list[np.ndarray] = []
    for g in geoms:
        polys = [g] if g.geom_type == "Polygon" else [p for p in getattr(g, "geoms", []) if p.geom_type == "Polygon"]
        for p in polys:
            p = orient(p, sign=1.0)  # CCW exteriors, CW holes: holes stay clear under the nonzero fill rule
            for ring in [p.exterior, *p.interiors]:
                xy = np.asarray(ring.coords)
                c = np.full(len(xy), MPath.LINETO, np.uint8)
                c[0], c[-1] = MPath.MOVETO, MPath.CLOSEPOLY
                verts.append(xy)
                codes.append(c)
    if not verts:
        return None
    return MPath(np.concatenate(verts), np.concatenate(codes))


def _find(summary: Mapping[str, Any], key: str) -> Any:
    if key in summary:
        return summary[key]
    for v in summary.values():
        if isinstance(v, Mapping) and key in v:
            return v[key]
    return None


def _money(x: Any) -> str:
    return f"USD {x:,.2f}" if isinstance(x, (int, float)) else "n/a"


@dataclass(frozen=True)
class Background:
    """A true-colour window of a scene, ready for ``imshow``.

    ``rgba``: (H, W, 4) floats in [0, 1] (nodata clear); ``extent``: (left, right, bottom, top) in the
    scene's CRS units; ``project``: maps shapely geometries from the planning CRS to the scene's CRS;
    ``title``: the scene's file name and CRS.
    """

    rgba: np.ndarray
    extent: tuple[float, float, float, float]
    project: Callable[[Sequence[BaseGeometry]], list[BaseGeometry]]
    title: str


def read_background(
    scene_path: str | os.PathLike[str], crs: CRS, focus: Sequence[BaseGeometry], *, bands: Sequence[int] | None = None, max_px: int = 1024
) -> Background:
    """The scene around ``focus`` (geometries in the planning ``crs``, 5% margin; the whole scene if they
    miss it), downsampled by GDAL to at most ``max_px`` pixels a side and stretched (:func:`stretch`).

    ``bands``: the scene's 1-based red, green, blue bands (default: found by description, else 1, 2, 3).
    """
    try:
        ds = rasterio.open(scene_path)
    except rasterio.errors.RasterioIOError as exc:
        raise InputError(f"quicklook: cannot open scene {scene_path} ({exc}); pass a raster GDAL reads") from None
    with ds:
        idx = tuple(bands) if bands else rgb_bands(ds.descriptions, [ci.name for ci in ds.colorinterp])
        if max(idx) > ds.count or min(idx) < 1:
            raise InputError(f"quicklook: scene {scene_path} has {ds.count} band(s), bands {idx} were asked; pass existing band numbers")
        tr = Transformer.from_crs(crs, ds.crs, always_xy=True) if ds.crs and CRS(ds.crs) != CRS(crs) else None

        def to_scene(gs: Sequence[BaseGeometry]) -> list[BaseGeometry]:
            if tr is None:
                return list(gs)
            return [shapely.transform(g, lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1]))) for g in gs]

        focus_s = [g for g in to_scene(focus) if g is not None and not g.is_empty]
        left, bottom, right, top = ds.bounds
        if focus_s:
            x0, y0, x1, y1 = shapely.total_bounds(np.asarray(focus_s, dtype=object))
            m = 0.05 * max(x1 - x0, y1 - y0)
            vx0, vy0, vx1, vy1 = max(x0 - m, left), max(y0 - m, bottom), min(x1 + m, right), min(y1 + m, top)
            if vx0 < vx1 and vy0 < vy1:
                left, bottom, right, top = vx0, vy0, vx1, vy1
            else:
                log.warning("quicklook: the AOI does not overlap scene %s; drawing the whole scene", scene_path)
        win = rasterio.windows.from_bounds(left, bottom, right, top, ds.transform).round_offsets().round_lengths()
        win = win.intersection(rasterio.windows.Window(0, 0, ds.width, ds.height))
        scale = max(win.width, win.height) / max_px
        h, w = (max(1, round(win.height / scale)), max(1, round(win.width / scale))) if scale > 1 else (win.height, win.width)
        data = ds.read(list(idx), window=win, out_shape=(len(idx), h, w), masked=True, resampling=Resampling.average)
        t = ds.transform  # north-up scenes (no rotation terms)
        left, top = t.c + win.col_off * t.a, t.f + win.row_off * t.e
        right, bottom = left + win.width * t.a, top + win.height * t.e
        title = f"{Path(os.fspath(scene_path)).name}  ({ds.crs.to_string() if ds.crs else 'no CRS'})"
    return Background(rgba=stretch(data), extent=(left, right, bottom, top), project=to_scene, title=title)


def render(
    scene_path: str | os.PathLike[str],
    table: PatchTable,
    selected: np.ndarray,
    orders: Sequence[Order],
    aoi_geoms: Sequence[BaseGeometry],
    crs: CRS,
    summary: Mapping[str, Any],
    out_png: str | os.PathLike[str],
    *,
    bands: Sequence[int] | None = None,
    max_px: int = 1024,
) -> Path:
    """Draw the quicklook of a plan to ``out_png`` (atomically) and return its path.

    ``table``, ``orders`` and ``aoi_geoms`` are in the planning ``crs`` (metres); ``bands`` are the
    scene's 1-based red, green, blue bands (default: found by description, else 1, 2, 3). The legend
    reads ``plan_cost_usd``, ``baseline_cost_usd``, ``savings_usd``, ``savings_pct`` and ``vendor``
    from ``summary`` (top level or one level down, as :func:`zoomplan.plan.pricing.cost_summary` writes them).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch, PathPatch

    bg = read_background(scene_path, crs, aoi_geoms, bands=bands, max_px=max_px)
    aoi_s = bg.project(aoi_geoms)
    sel_s = bg.project(patch_mask_polygons(table, selected))
    ord_s = bg.project([o.geometry for o in orders])
    left, right, bottom, top = bg.extent

    fig = Figure(figsize=(8, 8), dpi=128)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.imshow(bg.rgba, extent=bg.extent, origin="upper", interpolation="nearest")
    layers = ((sel_s, dict(facecolor=(1.0, 0.85, 0.0, 0.45), edgecolor="none")),
              (ord_s, dict(facecolor="none", edgecolor="red", linewidth=1.4)),
              (aoi_s, dict(facecolor="none", edgecolor="cyan", linewidth=1.2, linestyle="--")))
    for geoms, style in layers:
        p = polygon_path(geoms)
        if p is not None:
            ax.add_patch(PathPatch(p, **style))
    ax.set_xlim(left, right)
    ax.set_ylim(bottom, top)
    ax.set_aspect("equal")
    ax.set_title(bg.title, fontsize=9)
    ax.tick_params(labelsize=7)
    ax.ticklabel_format(useOffset=False, style="plain")
    pct = _find(summary, "savings_pct")
    n_sel = int(np.count_nonzero(selected))
    handles = [
        Line2D([], [], color="cyan", linestyle="--", label="AOI"),
        Patch(facecolor=(1.0, 0.85, 0.0, 0.45), label=f"selected patches: {n_sel:,} of {len(table):,}"),
        Patch(facecolor="none", edgecolor="red", label=f"orders: {len(orders)} ({_find(summary, 'vendor') or 'vendor n/a'})"),
        Patch(facecolor="none", edgecolor="none", label=f"plan {_money(_find(summary, 'plan_cost_usd'))}"),
        Patch(facecolor="none", edgecolor="none", label=f"baseline {_money(_find(summary, 'baseline_cost_usd'))}"),
        Patch(facecolor="none", edgecolor="none", label=f"savings {_money(_find(summary, 'savings_usd'))}" + (f" ({pct:.1f}%)" if isinstance(pct, (int, float)) else "")),
    ]
    ax.legend(handles=handles, loc="lower left", fontsize=7, framealpha=0.85)
    out = Path(out_png)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png")
    log.info("wrote %s", out)
    return out
