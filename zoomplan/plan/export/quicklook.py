"""Quicklook PNG: what a buyer must see of a plan, at any AOI size.

The map is drawn in the planning CRS (axes in km): the LR scene in true colour, the policy
probability of every patch as one semi-transparent raster on the patch grid
(:func:`~zoomplan.plan.export.map_layers.patch_grid`,
one cell per patch, blocks of patches beyond :data:`~zoomplan.plan.export.map_layers.MAX_GRID` cells a side), the
selected patches no order
buys, the cloudy patches (whitened and hatched, :mod:`zoomplan.plan.selection.clouds`), the order outlines (a fixed
width in points, simplified to the map's pixel; outlined together
when too thin to tell apart) and the AOI. Legend, colour bar and bill sit in a panel beside the map.
Nothing is drawn per patch, so drawing time grows with the AOI only through numpy.

The layers (background, patch grid, outlines as paths) come from :mod:`zoomplan.plan.export.map_layers`, shared
with the budget map; this module lays them out. matplotlib is imported and its Agg canvas chosen inside :func:`figure`
(an explicit
``FigureCanvasAgg``: no global backend is switched, nothing happens at import).
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import shapely
from pyproj import CRS
from shapely.geometry.base import BaseGeometry

from zoomplan.atomic import atomic_path
from zoomplan.plan.export.map_layers import patch_grid, polygon_path, read_background, to_crs
from zoomplan.plan.orders.orders import Order
from zoomplan.plan.types import PatchTable

log = logging.getLogger(__name__)


def _find(summary: Mapping[str, Any], key: str) -> Any:
    if key in summary:
        return summary[key]
    for v in summary.values():
        if isinstance(v, Mapping) and key in v:
            return v[key]
    return None


def _money(x: Any) -> str:
    return f"USD {x:,.2f}" if isinstance(x, (int, float)) else "n/a"


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
MIN_OUTLINE_PX = (
    4.0  # orders whose median width (2 x area / perimeter) is under this many map pixels are outlined together
)


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
    lines = [
        f"vendor    {f('vendor') or 'n/a'}" + (f" (USD {price:,.2f}/km2)" if isinstance(price, (int, float)) else ""),
        f"plan      {_money(f('plan_cost_usd'))}",
        f"baseline  {_money(f('baseline_cost_usd'))}",
        f"savings   {_money(f('savings_usd'))}" + (f" ({pct:.1f}%)" if isinstance(pct, (int, float)) else ""),
        "",
    ]
    billed, base_km2 = f("plan_billed_km2"), f("baseline_billed_km2")
    lines.append(
        f"orders    {n_orders:,}" + (f", {billed:,.2f} km2 billed" if isinstance(billed, (int, float)) else "")
    )
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
        lines.append(
            f"clouds    {cl['patches_cloudy']:,} cloudy patches ({cl.get('cloudy_km2', 0):,.2f} km2), "
            f"{cl.get('handling', '?')}" + (f"; {cl['patches_filled']:,} filled in" if cl.get("patches_filled") else "")
        )
    return "\n".join(lines)


def figure(
    scene_path: str | os.PathLike[str],
    table: PatchTable,
    selected: np.ndarray,
    orders: Sequence[Order],
    aoi_geoms: Sequence[BaseGeometry],
    crs: CRS,
    summary: Mapping[str, Any],
    *,
    bands: Sequence[int] | None = None,
    max_px: int = 1024,
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
    ``price_per_km2``, ``plan_billed_km2``, ``baseline_billed_km2``, ``threshold`` and ``dropped`` (budget) from
    ``summary`` (top level or one level down, as
    :func:`zoomplan.plan.orders.pricing.cost_summary` and :func:`zoomplan.plan.pipeline.plan` write them).
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
    rgba, bext = to_crs(bg, crs)

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
    im = ax.imshow(
        np.ma.masked_invalid(grid),
        extent=gext,
        origin="upper",
        interpolation="auto",
        cmap=cmap,
        norm=norm,
        alpha=PROB_ALPHA,
        zorder=2,
    )  # "auto": cells crisp when several pixels wide, antialiased (no moire) when smaller

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
        ax.contourf(
            cx0 + (np.arange(w) - 0.5) * cw,
            cy1 - (np.arange(h) - 0.5) * ch,
            padded,
            levels=[0.5, 1.5],
            colors="none",
            hatches=[CLOUD_HATCH],
            zorder=3,
        )

    # Order outlines: a fixed width in points, simplified to half a map pixel. Orders too thin to be
    # told apart on the map (median width under MIN_OUTLINE_PX pixels) are outlined together: the
    # contour of the share of their patches that is ordered, in blocks of about 3 map pixels.
    m_per_px = max(
        (x1 - x0) / (MAP_RECT[2] * fig_w * dpi), (y1 - y0) / (MAP_RECT[3] * fig_h * dpi)
    )  # aspect equal: the tighter side
    geoms = np.asarray([o.geometry for o in orders if o.geometry is not None and not o.geometry.is_empty], dtype=object)
    width_m = (
        float(np.median(2.0 * shapely.area(geoms) / np.maximum(shapely.length(geoms), 1e-9))) if geoms.size else 0.0
    )
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
        Line2D(
            [],
            [],
            color=ORDER_COLOR,
            linewidth=LINE_PT * 1.5,
            label=f"orders ({len(orders):,})"
            + (
                f", about {width_m:,.0f} m wide:\ntoo thin to outline one by one at\nthis scale; outlined where "
                f"they\ncover half the area"
                if together
                else ""
            ),
        ),
        Patch(facecolor=DROPPED_COLOR, edgecolor="none", label=f"selected, not ordered ({n_dropped:,} patches)"),
    ]
    if table.cloud is not None:
        how = (summary.get("clouds") or {}).get("handling")
        handles.append(
            Patch(
                facecolor=(*CLOUD_COLOR, CLOUD_ALPHA),
                edgecolor="0.2",
                hatch=CLOUD_HATCH,
                label=f"cloudy ({n_cloudy:,} patches)" + ({"buy": ", bought", "skip": ", skipped"}.get(how, "")),
            )
        )
    leg = side.legend(
        handles=handles, loc="upper left", bbox_to_anchor=(0.0, 1.0), fontsize=9, frameon=False, borderaxespad=0.0
    )
    below = side.transAxes.inverted().transform((0.0, leg.get_window_extent(fig.canvas.get_renderer()).y0))[1] - 0.02
    side.text(
        0.0,
        min(0.80, below),
        _bill_text(summary, len(orders), n_sel, len(table), n_dropped),
        transform=side.transAxes,
        va="top",
        ha="left",
        fontsize=8.5,
        family="monospace",
    )
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
