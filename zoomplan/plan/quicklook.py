"""Quicklook PNG: what a buyer must see of a plan, at any AOI size.

The map is drawn in the planning CRS (axes in km): the LR scene in true colour, the policy
probability of every patch as one semi-transparent raster on the patch grid (:func:`patch_grid`, one
cell per patch, blocks of patches beyond :data:`MAX_GRID` cells a side), the selected patches no order
buys, the cloudy patches (whitened and hatched, :mod:`zoomplan.plan.clouds`), the order outlines (a fixed width in points, simplified to the map's pixel; outlined together
when too thin to tell apart) and the AOI. Legend, colour bar and bill sit in a panel beside the map.
Nothing is drawn per patch, so drawing time grows with the AOI only through numpy.

:func:`read_background` (the scene, read and stretched) is shared with the budget map
(:func:`zoomplan.plan.budget_io.render_map`).

The scene is read once, downsampled by GDAL to at most ``max_px`` pixels a side (``out_shape``, so
memory stays bounded whatever the scene size) over the AOI's extent, and stretched per band between
its 2nd and 98th percentiles; the quicklook warps it to the planning CRS when the scene's differs.
matplotlib is imported and its Agg canvas chosen inside :func:`figure` (an explicit
``FigureCanvasAgg``: no global backend is switched, nothing happens at import).
"""

from __future__ import annotations

import logging
import math
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
from zoomplan.plan.orders import Order
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
    ``title``: the scene's file name and CRS; ``crs``: the scene's CRS (``None`` if it has none).
    """

    rgba: np.ndarray
    extent: tuple[float, float, float, float]
    project: Callable[[Sequence[BaseGeometry]], list[BaseGeometry]]
    title: str
    crs: CRS | None = None


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
        scene_crs = CRS(ds.crs) if ds.crs else None
    return Background(rgba=stretch(data), extent=(left, right, bottom, top), project=to_scene, title=title, crs=scene_crs)


MAX_GRID = 2048
"""Most cells a side of the probability raster: a larger patch grid is drawn in k x k blocks (mean)."""

PROB_CMAP = "viridis"  # no red in it: red is the orders' colour
PROB_ALPHA = 0.45
ORDER_COLOR = (0.9, 0.0, 0.0)
DROPPED_COLOR = (1.0, 0.0, 1.0)
CLOUD_COLOR = (1.0, 1.0, 1.0)  # cloudy patches: whitened ...
CLOUD_ALPHA = 0.6
CLOUD_HATCH = "////"  # ... and hatched, so they read as clouds on any background
AOI_COLOR = "cyan"
LINE_PT = 0.8  # order outline width in points, whatever the map's scale
MAP_RECT = (0.07, 0.09, 0.58, 0.83)  # the map's axes (figure fraction); the panel is right of it
MIN_OUTLINE_PX = 4.0  # orders whose median width (2 x area / perimeter) is under this many map pixels are outlined together


def patch_grid(
    table: PatchTable, values: np.ndarray, *, max_cells: int = MAX_GRID, block: int = 1
) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """Per-patch ``values`` as an (H, W) float grid on the table's patch grid (row 0 north), NaN where no
    patch, and its ``imshow`` extent (left, right, bottom, top) in ``table.crs`` metres.

    One cell per patch (``block`` = 1); a grid larger than ``max_cells`` a side, or a ``block`` > 1, is
    drawn in k x k blocks of patches (the mean of the patches in each block), so memory and drawing
    time stay bounded whatever the AOI.
    """
    if not len(table):
        return np.full((1, 1), np.nan), (0.0, 1.0, 0.0, 1.0)
    r0, r1 = int(table.row.min()), int(table.row.max())
    c0, c1 = int(table.col.min()), int(table.col.max())
    k = max(1, int(block), math.ceil(max(r1 - r0 + 1, c1 - c0 + 1) / max_cells))
    h, w = (r1 - r0) // k + 1, (c1 - c0) // k + 1
    idx = ((table.row - r0) // k) * w + (table.col - c0) // k
    cnt = np.bincount(idx, minlength=h * w)
    tot = np.bincount(idx, weights=np.asarray(values, np.float64), minlength=h * w)
    grid = np.full(h * w, np.nan)
    np.divide(tot, cnt, out=grid, where=cnt > 0)
    m = table.patch_m
    return grid.reshape(h, w), (c0 * m, (c0 + w * k) * m, -(r0 + h * k) * m, -r0 * m)


def _to_crs(bg: Background, crs: CRS) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """The background's RGBA and extent in the planning ``crs`` (warped, nearest, when the scene's CRS differs)."""
    if bg.crs is None or bg.crs == crs:
        return bg.rgba, bg.extent
    from affine import Affine
    from rasterio.warp import calculate_default_transform, reproject

    h, w = bg.rgba.shape[:2]
    left, right, bottom, top = bg.extent
    dst_t, dw, dh = calculate_default_transform(bg.crs, crs, w, h, left=left, bottom=bottom, right=right, top=top)
    dst = np.zeros((4, dh, dw), np.float32)  # alpha 0 where the scene does not reach: clear
    reproject(np.ascontiguousarray(np.moveaxis(bg.rgba, -1, 0)), dst, src_transform=Affine((right - left) / w, 0.0, left, 0.0, (bottom - top) / h, top),
              src_crs=bg.crs, dst_transform=dst_t, dst_crs=crs, resampling=Resampling.nearest)
    x0, y1 = dst_t.c, dst_t.f
    return np.moveaxis(dst, 0, -1), (x0, x0 + dw * dst_t.a, y1 + dh * dst_t.e, y1)


def _crs_label(crs: CRS) -> str:
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}, {crs.name}" if epsg else crs.name


def _km_formatter(span_m: float) -> Any:
    from matplotlib.ticker import FuncFormatter

    dec = 0 if span_m >= 20_000 else 1 if span_m >= 2_000 else 2 if span_m >= 500 else 3
    return FuncFormatter(lambda v, _pos: f"{v / 1000:,.{dec}f}")


def _bill_text(summary: Mapping[str, Any], n_orders: int, n_sel: int, n_all: int, n_dropped: int) -> str:
    """The side panel's text: the bill, the selection and what was dropped, one fact a line."""
    f = lambda k: _find(summary, k)  # noqa: E731
    pct = f("savings_pct")
    price = f("price_per_km2")
    lines = [f"vendor    {f('vendor') or 'n/a'}" + (f" (USD {price:,.2f}/km2)" if isinstance(price, (int, float)) else ""),
             f"plan      {_money(f('plan_cost_usd'))}",
             f"baseline  {_money(f('baseline_cost_usd'))}",
             f"savings   {_money(f('savings_usd'))}" + (f" ({pct:.1f}%)" if isinstance(pct, (int, float)) else ""),
             ""]
    billed, base_km2 = f("plan_billed_km2"), f("baseline_billed_km2")
    lines.append(f"orders    {n_orders:,}" + (f", {billed:,.2f} km2 billed" if isinstance(billed, (int, float)) else ""))
    if isinstance(base_km2, (int, float)):
        lines.append(f"baseline  whole AOI, {base_km2:,.2f} km2")
    lines.append(f"patches   {n_sel:,} of {n_all:,} selected" + (f" ({100.0 * n_sel / n_all:.1f}%)" if n_all else ""))
    thr = f("threshold")
    if isinstance(thr, (int, float)):
        lines.append(f"          (probability > {thr:g})")
    lines.append("")
    lines.append(f"dropped   {n_dropped:,} selected patches not ordered")
    bud = _find(summary, "dropped")
    if isinstance(bud, Mapping) and isinstance(bud.get("n_patches"), int):
        lines.append(f"budget    left out {bud['n_patches']:,} patches ({_money(bud.get('cost_usd'))})")
    cl = summary.get("clouds")
    if isinstance(cl, Mapping) and isinstance(cl.get("patches_cloudy"), int):
        lines.append(f"clouds    {cl['patches_cloudy']:,} cloudy patches ({cl.get('cloudy_km2', 0):,.2f} km2), {cl.get('handling', '?')}"
                     + (f"; {cl['patches_filled']:,} filled in" if cl.get("patches_filled") else ""))
    return "\n".join(lines)


def figure(
    scene_path: str | os.PathLike[str], table: PatchTable, selected: np.ndarray, orders: Sequence[Order],
    aoi_geoms: Sequence[BaseGeometry], crs: CRS, summary: Mapping[str, Any], *, bands: Sequence[int] | None = None, max_px: int = 1024,
) -> Any:
    """The quicklook of a plan as a matplotlib ``Figure`` (Agg canvas, no pyplot); :func:`render` saves it.

    Axes are labelled ``"map"``, ``"panel"`` (legend and bill) and ``"colorbar"``. The map, in the
    planning ``crs`` (axes in km, the CRS in their labels): the scene in true colour (warped to
    ``crs`` when its own differs), the policy probability of every patch as a
    semi-transparent raster on the patch grid (one cell per patch, :func:`patch_grid`; colour bar
    below the legend), the selected patches that no order buys (magenta), the order outlines
    (thin, a fixed width in points; simplified to the map's pixel; outlined together where orders are
    too small to outline one by one) and the AOI (dashed). Legend, colour bar and bill sit in a panel
    beside the map, never on it. Drawing time grows with the number of patches only through numpy
    (no per-patch shapes).

    ``table``, ``orders`` and ``aoi_geoms`` are in the planning ``crs`` (metres); ``bands`` are the
    scene's 1-based red, green, blue bands (default: found by description, else 1, 2, 3). The bill
    reads ``plan_cost_usd``, ``baseline_cost_usd``, ``savings_usd``, ``savings_pct``, ``vendor``,
    ``price_per_km2``, ``plan_billed_km2``, ``baseline_billed_km2``, ``threshold`` and ``dropped`` (budget) from ``summary`` (top level or one level down, as
    :func:`zoomplan.plan.pricing.cost_summary` and :func:`zoomplan.plan.pipeline.plan` write them).
    """
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch, PathPatch

    selected = np.asarray(selected, bool)
    aoi = [g for g in aoi_geoms if g is not None and not g.is_empty]
    bg = read_background(scene_path, crs, aoi, bands=bands, max_px=max_px)
    rgba, bext = _to_crs(bg, crs)

    # Map limits: the AOI with a 5% margin where the scene reaches (the whole AOI always).
    if aoi:
        ax0, ay0, ax1, ay1 = shapely.total_bounds(np.asarray(aoi, dtype=object))
    else:
        ax0, ax1, ay0, ay1 = bext
    m = 0.05 * max(ax1 - ax0, ay1 - ay0, 1.0)
    x0, x1 = min(ax0, max(ax0 - m, bext[0])), max(ax1, min(ax1 + m, bext[1]))
    y0, y1 = min(ay0, max(ay0 - m, bext[2])), max(ay1, min(ay1 + m, bext[3]))
    span = max(x1 - x0, y1 - y0)

    fig_w, fig_h, dpi = 12.0, 8.0, 120
    fig = Figure(figsize=(fig_w, fig_h), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes(MAP_RECT, label="map")
    ax.set_facecolor("0.85")  # where the scene does not reach
    ax.imshow(rgba, extent=bext, origin="upper", interpolation="nearest", zorder=1)

    # Probability field: one cell per patch on the patch grid.
    grid, gext = patch_grid(table, table.prob)
    cmap = colormaps[PROB_CMAP]
    norm = Normalize(0.0, 1.0)
    im = ax.imshow(np.ma.masked_invalid(grid), extent=gext, origin="upper", interpolation="auto", cmap=cmap, norm=norm,
                   alpha=PROB_ALPHA, zorder=2)  # "auto": cells crisp when several pixels wide, antialiased (no moire) when smaller

    # What was dropped: selected patches that no order serves.
    ordered = np.zeros(len(table), bool)
    for o in orders:
        ordered[np.asarray(o.patches, np.int64)] = True
    dropped = selected & ~ordered
    n_dropped = int(dropped.sum())
    if n_dropped:
        dgrid, dext = patch_grid(table, dropped.astype(np.float32))
        layer = np.zeros(dgrid.shape + (4,), np.float32)
        layer[dgrid > 0] = (*DROPPED_COLOR, 1.0)
        ax.imshow(layer, extent=dext, origin="upper", interpolation="nearest", zorder=3)

    # Clouds: patches under cloud or shadow in every scene, whitened and hatched (one raster, one contour).
    n_cloudy = int(table.cloudy.sum())
    if n_cloudy:
        cgrid, (cx0, cx1, cy0, cy1) = patch_grid(table, table.cloudy.astype(np.float32))
        cgrid = np.nan_to_num(cgrid)
        layer = np.zeros(cgrid.shape + (4,), np.float32)
        layer[cgrid > 0] = (*CLOUD_COLOR, CLOUD_ALPHA)
        ax.imshow(layer, extent=(cx0, cx1, cy0, cy1), origin="upper", interpolation="nearest", zorder=3)
        padded = np.pad(cgrid, 1)  # closed contours at the grid's edges
        h, w = padded.shape
        cw, ch = (cx1 - cx0) / (w - 2), (cy1 - cy0) / (h - 2)
        ax.contourf(cx0 + (np.arange(w) - 0.5) * cw, cy1 - (np.arange(h) - 0.5) * ch, padded, levels=[0.5, 1.5], colors="none",
                    hatches=[CLOUD_HATCH], zorder=3)

    # Order outlines: a fixed width in points, simplified to half a map pixel. Orders too thin to be
    # told apart on the map (median width under MIN_OUTLINE_PX pixels) are outlined together: the
    # contour of the share of their patches that is ordered, in blocks of about 3 map pixels.
    m_per_px = max((x1 - x0) / (MAP_RECT[2] * fig_w * dpi), (y1 - y0) / (MAP_RECT[3] * fig_h * dpi))  # aspect equal: the tighter side
    geoms = np.asarray([o.geometry for o in orders if o.geometry is not None and not o.geometry.is_empty], dtype=object)
    width_m = float(np.median(2.0 * shapely.area(geoms) / np.maximum(shapely.length(geoms), 1e-9))) if geoms.size else 0.0
    together = geoms.size > 1 and width_m < MIN_OUTLINE_PX * m_per_px
    if together:
        k = max(1, math.ceil(3.0 * m_per_px / table.patch_m))
        frac, (fx0, fx1, fy0, fy1) = patch_grid(table, ordered.astype(np.float32), block=k)
        frac = np.pad(np.nan_to_num(frac), 1)  # closed contours at the grid's edges
        h, w = frac.shape
        cx, cy = (fx1 - fx0) / (w - 2), (fy1 - fy0) / (h - 2)
        xs = fx0 + (np.arange(w) - 0.5) * cx
        ys = fy1 - (np.arange(h) - 0.5) * cy
        ax.contour(xs, ys, frac, levels=[0.5], colors=[ORDER_COLOR], linewidths=LINE_PT, zorder=4)
    elif geoms.size:
        if m_per_px > table.patch_m / 4:
            geoms = shapely.simplify(geoms, 0.5 * m_per_px, preserve_topology=True)
        p = polygon_path(list(geoms))
        if p is not None:
            ax.add_patch(PathPatch(p, facecolor="none", edgecolor=ORDER_COLOR, linewidth=LINE_PT, zorder=4))
    p = polygon_path(aoi)
    if p is not None:
        ax.add_patch(PathPatch(p, facecolor="none", edgecolor=AOI_COLOR, linewidth=LINE_PT, linestyle="--", zorder=5))

    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    fmt = _km_formatter(span)
    ax.xaxis.set_major_formatter(fmt)
    ax.yaxis.set_major_formatter(fmt)
    ax.tick_params(labelsize=8)
    ax.set_xlabel(f"easting (km), {_crs_label(crs)}", fontsize=9)
    ax.set_ylabel("northing (km)", fontsize=9)
    ax.set_title(bg.title, fontsize=10)

    # Side panel: legend, bill, colour bar; off the map.
    side = fig.add_axes((0.70, 0.09, 0.28, 0.83), label="panel")
    side.set_axis_off()
    n_sel = int(selected.sum())
    handles = [
        Line2D([], [], color=AOI_COLOR, linestyle="--", linewidth=LINE_PT * 1.5, label="AOI"),
        Line2D([], [], color=ORDER_COLOR, linewidth=LINE_PT * 1.5,
               label=f"orders ({len(orders):,})" + (f", about {width_m:,.0f} m wide:\ntoo thin to outline one by one at\nthis scale; outlined where they\ncover half the area" if together else "")),
        Patch(facecolor=DROPPED_COLOR, edgecolor="none", label=f"selected, not ordered ({n_dropped:,} patches)"),
    ]
    if table.cloud is not None:
        how = (summary.get("clouds") or {}).get("handling")
        handles.append(Patch(facecolor=(*CLOUD_COLOR, CLOUD_ALPHA), edgecolor="0.2", hatch=CLOUD_HATCH,
                             label=f"cloudy ({n_cloudy:,} patches)" + ({"buy": ", bought", "skip": ", skipped"}.get(how, ""))))
    leg = side.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.0, 1.0), fontsize=9, frameon=False, borderaxespad=0.0)
    below = side.transAxes.inverted().transform((0.0, leg.get_window_extent(fig.canvas.get_renderer()).y0))[1] - 0.02
    side.text(0.0, min(0.80, below), _bill_text(summary, len(orders), n_sel, len(table), n_dropped), transform=side.transAxes, va="top",
              ha="left", fontsize=8.5, family="monospace")
    cax = fig.add_axes((0.71, 0.14, 0.25, 0.025), label="colorbar")
    cb = fig.colorbar(im, cax=cax, orientation="horizontal")
    cb.set_label(f"policy probability of buying a patch\n({table.patch_m:g} m patches, one cell each)", fontsize=8.5)
    cb.ax.tick_params(labelsize=8)
    thr = _find(summary, "threshold")
    if isinstance(thr, (int, float)) and 0 < thr < 1:
        cb.ax.axvline(thr, color="black", linewidth=1.5)
    return fig


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
    """Draw the quicklook of a plan (:func:`figure`, same arguments) to ``out_png`` (atomically; a
    1440 x 960 px PNG) and return its path."""
    fig = figure(scene_path, table, selected, orders, aoi_geoms, crs, summary, bands=bands, max_px=max_px)
    out = Path(out_png)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png")
    log.info("wrote %s", out)
    return out
