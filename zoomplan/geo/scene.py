"""LR scenes: open with rasterio, pick bands, map raw values, read on the planning grid window by window.

:func:`open_scene` (:mod:`zoomplan.geo.opener`) validates a scene (readable, georeferenced, has the bands
the model needs) and returns a :class:`Scene` description holding no open file
(:mod:`zoomplan.geo.scene_info`); both are imported from here. :class:`GridReader` then reads blocks of
tiles on a :class:`~zoomplan.geo.grid.PlanGrid`: directly (windowed reads, no resampling) when the
scene's pixels already are the grid's LR pixels, otherwise through a ``WarpedVRT`` to the planning CRS
at the card's LR pixel size with LR pixel edges on tile edges (and a logged warning saying so). Raw
values become ``clip((raw * scale + offset) * gain, 0, 1)`` as the card's
:class:`~zoomplan.models.card.SensorMapping` says; normalisation is the caller's
(:func:`zoomplan.data.lowres.normalize`). Memory is bounded by the block size: a scene is never read
whole. GDAL options go through ``rasterio.Env``.

Value rules (docs/inputs.md): NaN and infinite values are nodata; a scene with no nodata value has its
pixels that are 0 in every model band treated as nodata (with a warning); a band described ``SCL`` or
``QA_PIXEL`` is the scene's cloud mask (:mod:`zoomplan.geo.products.clouds`), other mask bands are not used (with a
warning naming the fix); a geographic scene whose longitudes run past +-180 degrees is read
with PROJ's ``+lon_wrap`` so grids on either side of the antimeridian find its pixels.
"""

from __future__ import annotations

import logging
import math
import warnings
from typing import Sequence

import numpy as np
import rasterio
from pyproj import CRS
from rasterio.enums import MaskFlags, Resampling
from rasterio.errors import RasterioError
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from zoomplan.errors import InputError
from zoomplan.geo.grid import PlanGrid, TileRange
from zoomplan.geo.opener import choose_sensor, open_scene, resolve_bands
from zoomplan.geo.scene_info import GDAL_ENV, Scene, first_line
from zoomplan.models.card import SensorMapping

__all__ = [
    "GDAL_ENV",
    "GridReader",
    "Scene",
    "choose_sensor",
    "is_aligned",
    "lon_wrap_crs",
    "open_scene",
    "resolve_bands",
    "to_unit",
]

log = logging.getLogger(__name__)


def _crs_name(crs: CRS) -> str:
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.name


def to_unit(raw: np.ndarray, sensor: SensorMapping) -> np.ndarray:
    """``clip((raw * scale + offset) * gain, 0, 1)`` as float32 (the network's input before normalising).

    ``raw`` is (C, ...) with C the mapping's bands; a per-band ``offset`` or ``gain`` applies to each band.
    """
    x = raw.astype(np.float32, copy=False) * np.float32(sensor.scale)
    shape = (-1,) + (1,) * (x.ndim - 1)
    offset = np.asarray(sensor.offset, dtype=np.float32)
    if np.any(offset != 0):
        x += offset.reshape(shape) if offset.ndim else offset
    gain = np.asarray(sensor.gain, dtype=np.float32)
    if np.any(gain != 1):
        x *= gain.reshape(shape) if gain.ndim else gain
    return np.clip(x, 0.0, 1.0, out=x)


def lon_wrap_crs(scene: Scene) -> str | None:
    """For a geographic scene whose longitudes run past +-180 degrees (e.g. 179.9 to 180.1), its CRS as a
    PROJ string with ``+lon_wrap`` at the scene's centre longitude, else ``None``.

    Without it, PROJ returns longitudes in [-180, 180], so a planning grid east of the antimeridian maps
    to -179.9 and misses the scene's pixels at 180.1: every tile would read as nodata.
    """
    left, _, right, _ = scene.bounds
    if not scene.crs.is_geographic or (left >= -180.0 and right <= 180.0):
        return None
    centre = 0.5 * (left + right)
    with warnings.catch_warnings():  # PROJ string of a geographic CRS: nothing lost that a warp needs
        warnings.simplefilter("ignore", UserWarning)
        base = scene.crs.to_proj4()
    return f"{base} +lon_wrap={centre:.9g}"


def is_aligned(scene: Scene, grid: PlanGrid, transform: "rasterio.Affine", *, tol: float = 1e-6) -> bool:
    """True when the scene's pixels are the grid's LR pixels (same CRS, size and pixel edges)."""
    px = grid.lr_pixel_m
    if scene.crs != grid.crs or transform.b or transform.d:
        return False
    if not (math.isclose(transform.a, px, rel_tol=tol) and math.isclose(-transform.e, px, rel_tol=tol)):
        return False
    ox, oy = transform.c / px, transform.f / px
    return abs(ox - round(ox)) < 1e-4 and abs(oy - round(oy)) < 1e-4


class GridReader:
    """Reads blocks of tiles of one scene on a planning grid; use as a context manager.

    ``extent`` is the tile range that may be read (the AOI's tiles that meet the scene); reads outside
    the scene are padded and marked invalid. :meth:`read` returns unit values (C, H, W) float32 and a
    validity mask (H, W) bool, H = rows x ``lr_size_px``, W = cols x ``lr_size_px``. A pixel is invalid
    where the file's mask says so, where any model band is NaN or infinite, and, in a scene with no
    nodata value, where every model band is exactly 0 (see :meth:`_data_mask`).
    """

    map_values = True
    """False: :meth:`read` returns the raw values (float32) instead of mapping them (zoomplan.geo.values)."""

    def __init__(self, scene: Scene, grid: PlanGrid, extent: TileRange) -> None:
        self.scene = scene
        self.grid = grid
        self.extent = extent
        self.resampled = False
        self._env: rasterio.Env | None = None
        self._src: rasterio.io.DatasetReader | None = None
        self._vrt: WarpedVRT | None = None
        self._origin = (0, 0)  # global LR pixel (row, col) of the readable dataset's pixel (0, 0)
        self._alpha: int | None = None  # band index of the warped alpha band (sources without nodata)
        self._warned_zero = False  # the all-zero nodata rule was logged (scenes without a nodata value)
        self._nodata_rule: list[float | None] | None = (
            None  # per model band, when the masks are nodata masks (see _mask_rule)
        )

    def __enter__(self) -> "GridReader":
        s, g = self.scene, self.grid
        self._env = rasterio.Env(**GDAL_ENV)
        self._env.__enter__()
        try:
            self._src = rasterio.open(s.source or s.path)
            if is_aligned(s, g, self._src.transform):
                px = g.lr_pixel_m
                self._origin = (int(round(-self._src.transform.f / px)), int(round(self._src.transform.c / px)))
            else:
                self._open_warped()
            self._nodata_rule = _mask_rule(self._vrt if self._vrt is not None else self._src, s.band_indexes)
        except RasterioError as exc:
            self.__exit__(None, None, None)
            raise InputError(
                f"scene {s.path} cannot be opened for reading ({first_line(exc)}): the file is truncated or corrupt; "
                f"re-download it"
            ) from exc
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _open_warped(self) -> None:
        from rasterio.warp import calculate_default_transform

        s, g, src = self.scene, self.grid, self._src
        assert src is not None
        px = g.lr_pixel_m
        native, _, _ = calculate_default_transform(src.crs, g.crs.to_wkt(), src.width, src.height, *src.bounds)
        native_m = abs(native.a)
        method = Resampling.average if native_m < 0.9 * px else Resampling.bilinear
        h, w = self.extent.shape
        L = g.lr_size_px
        kw: dict[str, object] = {}
        wrap = lon_wrap_crs(s)
        if wrap is not None:
            kw["src_crs"] = wrap
        if s.nodata is not None:
            kw.update(src_nodata=s.nodata, nodata=s.nodata)
        else:
            kw.update(add_alpha=True)
        self._vrt = WarpedVRT(
            src,
            crs=g.crs.to_wkt(),
            transform=g.lr_transform(self.extent),
            width=w * L,
            height=h * L,
            resampling=method,
            **kw,
        )
        if s.nodata is None:
            # Mask flags of the added alpha are not reliable across GDAL versions: read the band itself.
            self._alpha = self._vrt.count
        self._origin = (self.extent.r0 * L, self.extent.c0 * L)
        self.resampled = True
        src_name = _crs_name(s.crs)
        dst_name = _crs_name(g.crs)
        unit = "deg" if s.crs.is_geographic else "m"
        why = []
        if s.crs != g.crs:
            why.append(f"CRS {src_name} is not the planning CRS {dst_name}")
        if not math.isclose(native_m, px, rel_tol=1e-3):
            why.append(f"pixels are about {native_m:.3g} m, the model expects {px:g} m")
        if not why:
            why.append(f"pixel edges are off the {g.tile_m:g} m tile grid")
        log.warning(
            "scene %s: resampling (%s) from %s %.4g %s pixels to %s %g m pixels aligned to the %g m tile grid, "
            "because its %s",
            s.scene_id,
            method.name,
            src_name,
            s.res[0],
            unit,
            dst_name,
            px,
            g.tile_m,
            "; ".join(why),
        )

    def __exit__(self, *exc: object) -> None:
        if self._vrt is not None:
            self._vrt.close()
            self._vrt = None
        if self._src is not None:
            self._src.close()
            self._src = None
        if self._env is not None:
            self._env.__exit__(None, None, None)
            self._env = None

    def read(self, tr: TileRange) -> tuple[np.ndarray, np.ndarray]:
        """Unit values (C, H, W) float32 and validity (H, W) bool of the tiles in ``tr``."""
        ds = self._vrt if self._vrt is not None else self._src
        if ds is None:
            raise RuntimeError("GridReader.read outside its 'with' block")
        L = self.grid.lr_size_px
        h, w = tr.shape[0] * L, tr.shape[1] * L
        nb = len(self.scene.band_indexes)
        raw = np.zeros((nb, h, w), dtype=np.float32)
        valid = np.zeros((h, w), dtype=bool)
        # Global LR pixel rows/cols of the request, then local to the dataset, clipped to it.
        gr0, gc0 = tr.r0 * L, tr.c0 * L
        lr0, lc0 = gr0 - self._origin[0], gc0 - self._origin[1]
        r0, c0 = max(lr0, 0), max(lc0, 0)
        r1, c1 = min(lr0 + h, ds.height), min(lc0 + w, ds.width)
        if r1 <= r0 or c1 <= c0:
            return raw, valid
        win = Window(c0, r0, c1 - c0, r1 - r0)
        try:
            data = ds.read(list(self.scene.band_indexes), window=win)
            if self._alpha is not None:
                ok = ds.read(self._alpha, window=win) > 0
            elif self._nodata_rule is not None:  # what read_masks would return, without decoding the pixels again
                ok = _nodata_valid(data, self._nodata_rule)
            else:
                ok = np.all(ds.read_masks(list(self.scene.band_indexes), window=win) > 0, axis=0)
        except RasterioError as exc:
            raise InputError(
                f"scene {self.scene.path}: reading pixels failed ({first_line(exc)}): the file is truncated or "
                f"corrupt; re-download it"
            ) from exc
        ok &= self._data_mask(data, ok)
        if data.dtype.kind == "f":
            data = np.nan_to_num(data, nan=0.0, posinf=0.0, neginf=0.0)
        ys, xs = slice(r0 - lr0, r1 - lr0), slice(c0 - lc0, c1 - lc0)
        raw[:, ys, xs] = to_unit(data, self.scene.sensor) if self.map_values else data
        valid[ys, xs] = ok
        return raw, valid

    def _data_mask(self, data: np.ndarray, ok: np.ndarray) -> np.ndarray:
        """(H, W) bool: pixels of ``data`` (C, H, W, raw values) that hold data by the value rules.

        NaN or infinite in any model band: nodata, whatever the file says. A scene with no nodata value:
        a pixel that is exactly 0 in every model band is nodata (Sentinel-2's NO_DATA convention, the
        zero border of a tile); logged once per scene.
        """
        keep = np.ones(data.shape[1:], dtype=bool)
        if data.dtype.kind == "f":
            keep &= np.isfinite(data).all(axis=0)
        if self.scene.nodata is None:
            zero = ~np.any(data != 0, axis=0)
            if not self._warned_zero and (zero & ok).any():
                self._warned_zero = True
                log.warning(
                    "scene %s sets no nodata value: pixels that are 0 in every model band (%s) are treated as nodata; "
                    "if 0 is data there, set a nodata value (rio edit-info --nodata VALUE FILE)",
                    self.scene.scene_id,
                    ", ".join(self.scene.band_labels),
                )
            keep &= ~zero
        return keep


def _mask_rule(ds: "rasterio.io.DatasetReader | WarpedVRT", bands: Sequence[int]) -> list[float | None] | None:
    """Each model band's nodata value (None: every pixel valid) when GDAL's masks of ``bands`` are
    plain nodata (or all-valid) masks, which :func:`_nodata_valid` computes from the pixels already
    read; None when a band has another mask (an internal mask band, alpha): read those with read_masks.

    Why: ``read_masks`` on a nodata mask decodes the window a second time: the reader walks the
    benchmark's ZSTD-tiled Sentinel-2 mosaics 1.7-2.1x faster without it (benchmarks/plan_stages.py).
    """
    rule: list[float | None] = []
    for b in bands:
        flags = ds.mask_flag_enums[b - 1]
        if list(flags) == [MaskFlags.all_valid]:
            rule.append(None)
        elif list(flags) == [MaskFlags.nodata] and ds.nodatavals[b - 1] is not None:
            rule.append(float(ds.nodatavals[b - 1]))
        else:
            return None
    return rule


def _nodata_valid(data: np.ndarray, rule: Sequence[float | None]) -> np.ndarray:
    """(H, W) bool: pixels of ``data`` (C, H, W raw values) valid in every band under GDAL's nodata-mask
    rule: the value differs from the band's nodata cast to the data type (NaN nodata: the pixel is not
    NaN; a nodata the integer type cannot hold matches nothing)."""
    ok = np.ones(data.shape[1:], dtype=bool)
    for band, nd in zip(data, rule):
        if nd is None:
            continue
        if data.dtype.kind == "f":
            ok &= ~np.isnan(band) if math.isnan(nd) else band != data.dtype.type(nd)
        else:
            info = np.iinfo(data.dtype)
            if float(nd).is_integer() and info.min <= nd <= info.max:
                ok &= band != int(nd)
    return ok
