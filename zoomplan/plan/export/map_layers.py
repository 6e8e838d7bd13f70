"""The layers a plan's maps are drawn from: the LR scene as a true-colour background, patch values on
the patch grid, polygons as one matplotlib path.

The quicklook (:mod:`zoomplan.plan.export.quicklook`, the layout: map, legend, bill) and the budget map
(:func:`zoomplan.plan.budget.outputs.render_map`) share them. The scene is read once, downsampled by GDAL
to at most ``max_px`` pixels a side (``out_shape``, so memory stays bounded whatever the scene size)
over the AOI's extent, and stretched per band between its 2nd and 98th percentiles;
:func:`to_crs` warps it to the planning CRS when the scene's differs. Nothing is drawn per patch.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import rasterio
import rasterio.errors
import rasterio.windows
import shapely
from pyproj import CRS, Transformer
from rasterio.enums import Resampling
from shapely.geometry.base import BaseGeometry
from shapely.geometry.polygon import orient

from zoomplan.errors import InputError
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
        hit = [
            i + 1
            for i, d in enumerate(descriptions)
            if d and (d.strip().lower() in keys or keys & set(d.lower().replace("(", " ").replace(")", " ").split()))
        ]
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
    scene_path: str | os.PathLike[str],
    crs: CRS,
    focus: Sequence[BaseGeometry],
    *,
    bands: Sequence[int] | None = None,
    max_px: int = 1024,
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
            raise InputError(
                f"quicklook: scene {scene_path} has {ds.count} band(s), bands {idx} were asked; pass existing band "
                f"numbers"
            )
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
        h, w = (
            (max(1, round(win.height / scale)), max(1, round(win.width / scale)))
            if scale > 1
            else (win.height, win.width)
        )
        data = ds.read(list(idx), window=win, out_shape=(len(idx), h, w), masked=True, resampling=Resampling.average)
        t = ds.transform  # north-up scenes (no rotation terms)
        left, top = t.c + win.col_off * t.a, t.f + win.row_off * t.e
        right, bottom = left + win.width * t.a, top + win.height * t.e
        title = f"{Path(os.fspath(scene_path)).name}  ({ds.crs.to_string() if ds.crs else 'no CRS'})"
        scene_crs = CRS(ds.crs) if ds.crs else None
    return Background(
        rgba=stretch(data), extent=(left, right, bottom, top), project=to_scene, title=title, crs=scene_crs
    )


MAX_GRID = 2048
"""Most cells a side of the probability raster: a larger patch grid is drawn in k x k blocks (mean)."""


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


def to_crs(bg: Background, crs: CRS) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """The background's RGBA and extent in the planning ``crs`` (warped, nearest, when the scene's CRS differs)."""
    if bg.crs is None or bg.crs == crs:
        return bg.rgba, bg.extent
    from affine import Affine
    from rasterio.warp import calculate_default_transform, reproject

    h, w = bg.rgba.shape[:2]
    left, right, bottom, top = bg.extent
    dst_t, dw, dh = calculate_default_transform(bg.crs, crs, w, h, left=left, bottom=bottom, right=right, top=top)
    dst = np.zeros((4, dh, dw), np.float32)  # alpha 0 where the scene does not reach: clear
    reproject(
        np.ascontiguousarray(np.moveaxis(bg.rgba, -1, 0)),
        dst,
        src_transform=Affine((right - left) / w, 0.0, left, 0.0, (bottom - top) / h, top),
        src_crs=bg.crs,
        dst_transform=dst_t,
        dst_crs=crs,
        resampling=Resampling.nearest,
    )
    x0, y1 = dst_t.c, dst_t.f
    return np.moveaxis(dst, 0, -1), (x0, x0 + dw * dst_t.a, y1 + dh * dst_t.e, y1)
