"""LR scenes: open with rasterio, pick bands, map raw values, read on the planning grid window by window.

:func:`open_scene` validates a scene (readable, georeferenced, has the bands the model needs) and
returns a :class:`Scene` description holding no open file. :class:`GridReader` then reads blocks of
tiles on a :class:`~zoomplan.geo.grid.PlanGrid`: directly (windowed reads, no resampling) when the
scene's pixels already are the grid's LR pixels, otherwise through a ``WarpedVRT`` to the planning CRS
at the card's LR pixel size with LR pixel edges on tile edges (and a logged warning saying so). Raw
values become ``clip((raw * scale + offset) * gain, 0, 1)`` as the card's
:class:`~zoomplan.models.card.SensorMapping` says; normalisation is the caller's
(:func:`zoomplan.data.lowres.normalize`). Memory is bounded by the block size: a scene is never read
whole. GDAL options go through ``rasterio.Env``.

Value rules (docs/inputs.md): NaN and infinite values are nodata; a scene with no nodata value has its
pixels that are 0 in every model band treated as nodata (with a warning); a band described ``SCL`` or
``QA_PIXEL`` is the scene's cloud mask (:mod:`zoomplan.geo.clouds`), other mask bands are not used (with a
warning naming the fix); a geographic scene whose longitudes run past +-180 degrees is read
with PROJ's ``+lon_wrap`` so grids on either side of the antimeridian find its pixels.
"""

from __future__ import annotations

import logging
import math
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np
import rasterio
import shapely
from pyproj import CRS, Transformer
from rasterio.enums import MaskFlags, Resampling
from rasterio.errors import RasterioError
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from zoomplan.errors import InputError
from zoomplan.geo.grid import PlanGrid, TileRange
from zoomplan.models.card import ModelCard, SensorMapping

if TYPE_CHECKING:
    from zoomplan.geo.bands import BandSet
    from zoomplan.geo.clouds import CloudMask

log = logging.getLogger(__name__)

GDAL_ENV: Mapping[str, object] = {
    "GDAL_CACHEMAX": 256,  # MB: bounds GDAL's block cache
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",  # no directory listing for COGs on remote storage
}
"""GDAL options used for every scene read (``rasterio.Env(**GDAL_ENV)``)."""


@dataclass(frozen=True)
class Scene:
    """A validated LR scene: where it is, its georeferencing, which bands feed the model and how.

    ``bounds`` are (minx, miny, maxx, maxy) in ``crs`` units; ``res`` is the pixel size (x, y) in the
    same units; ``band_indexes`` are 1-based, in the order of ``sensor.bands``.
    """

    path: Path
    scene_id: str
    crs: CRS
    bounds: tuple[float, float, float, float]
    res: tuple[float, float]
    width: int
    height: int
    dtype: str
    nodata: float | None
    band_indexes: tuple[int, ...]
    band_labels: tuple[str, ...]
    sensor: SensorMapping
    source: str = ""
    """What GDAL opens when it is not ``path``: a VRT (XML) stacking one-band files (:mod:`zoomplan.geo.bands`)."""
    cloud_mask: "CloudMask | None" = None
    """The scene's cloud mask (:mod:`zoomplan.geo.clouds`): the product's, or the user's ``--cloud-mask``."""

    def footprint(self, crs: CRS) -> shapely.Polygon:
        """The scene's bounding box as a polygon in ``crs`` (edges densified before projecting)."""
        box = shapely.box(*self.bounds)
        if CRS.from_user_input(crs) == self.crs:
            return box
        t = Transformer.from_crs(self.crs, crs, always_xy=True)
        step = max((self.bounds[2] - self.bounds[0]), (self.bounds[3] - self.bounds[1])) / 64

        def fwd(xy: np.ndarray) -> np.ndarray:
            x, y = t.transform(xy[:, 0], xy[:, 1])
            return np.column_stack([x, y])

        return shapely.transform(shapely.segmentize(box, step), fwd)


def _crs_name(crs: CRS) -> str:
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.name


def _first_line(exc: BaseException) -> str:
    s = str(exc).strip()
    return s.splitlines()[0] if s else type(exc).__name__


def _tokens(label: str) -> set[str]:
    s = label.strip().lower()
    if not s:
        return set()
    out = {s}
    out.update(t for t in re.split(r"[\s(),;:/_\[\]]+", s) if t)
    out.update(m.strip() for m in re.findall(r"\(([^)]*)\)", s))
    return out


def resolve_bands(
    descriptions: Sequence[str | None],
    colorinterp: Sequence[str],
    wanted: Sequence[str],
    aliases: Mapping[str, Sequence[str]],
    spec: Sequence[str] | None = None,
    *,
    scene: str = "scene",
) -> tuple[int, ...]:
    """1-based band indexes for ``wanted`` band names (e.g. red, green, blue), in that order.

    With ``spec`` (the user's ``--bands``), each item is a 1-based index or a band name / alias matched
    against the band descriptions. Without it, each wanted name and its aliases (e.g. ``b04`` for red)
    are matched against the descriptions (``"red (B04)"`` matches), then against the colour
    interpretation (``red``). Band order is never guessed: a 3- or 4-band scene whose bands carry no
    description and no colour interpretation (gray / undefined) is refused with the fix (``--bands``, or
    ``rio edit-info --colorinterp``). Raises :class:`InputError` naming the bands found and the fix.
    """
    count = len(descriptions)
    toks = [_tokens(d or "") for d in descriptions]
    found = ", ".join(f"{i + 1}={d!r}" if d else f"{i + 1}=({ci})" for i, (d, ci) in enumerate(zip(descriptions, colorinterp))) or "none"

    def by_name(name: str) -> int | None:
        keys = {name.lower(), *[a.lower() for a in aliases.get(name.lower(), ())]}
        for i, t in enumerate(toks):
            if keys & t:
                return i + 1
        for i, ci in enumerate(colorinterp):
            if ci.lower() in keys:
                return i + 1
        return None

    if spec is not None:
        if len(spec) != len(wanted):
            raise InputError(f"--bands for {scene} lists {len(spec)} band(s) but the model needs {len(wanted)} ({', '.join(wanted)}): pass e.g. --bands {','.join(wanted)}")
        out = []
        for item in spec:
            item = str(item).strip()
            if item.isdigit():
                k = int(item)
                if not 1 <= k <= count:
                    raise InputError(f"--bands asks for band {k} of {scene}, which has bands 1..{count}: pick existing bands ({found})")
                out.append(k)
            else:
                k2 = by_name(item)
                if k2 is None:
                    raise InputError(f"--bands asks for band {item!r} but {scene} has no band described so (bands: {found}): pass band numbers, e.g. --bands 1,2,3")
                out.append(k2)
        return tuple(out)
    out2: list[int] = []
    missing = []
    for name in wanted:
        k3 = by_name(name)
        if k3 is None:
            missing.append(name)
        else:
            out2.append(k3)
    if not missing:
        return tuple(out2)
    unlabelled = all(not t for t in toks) and all(ci.lower() in ("undefined", "gray", "grey") for ci in colorinterp)
    if unlabelled and len(wanted) <= count <= len(wanted) + 1:  # never guessed: red-green-blue and blue-green-red look alike
        raise InputError(
            f"{scene} does not say which band is which (no band descriptions, colour interpretation {', '.join(colorinterp)}): pass --bands "
            f"with the {','.join(wanted)} band numbers, e.g. --bands 3,2,1 for a blue-green-red file, or record the order in the file: "
            f"rio edit-info --colorinterp {','.join(w if w in ('red', 'green', 'blue') else 'undefined' for w in wanted)}{',undefined' * (count - len(wanted))} FILE"
        )
    raise InputError(
        f"{scene} has no band for {', '.join(missing)} (bands: {found}): pass --bands with {len(wanted)} band numbers or names in the order {','.join(wanted)}"
    )


def choose_sensor(card: ModelCard, dtype: str, name: str | None = None, *, scene: str = "scene") -> SensorMapping:
    """The sensor mapping for a scene of ``dtype``: ``name`` if given (the card's, else a planner sensor of
    :mod:`zoomplan.geo.sensors`), else by data type.

    uint8 scenes use the mapping that scales by 1/255 (``rgb8``); integer scenes of more bits the first
    other mapping (``sentinel2_toa``: digital numbers x 1e-4). Floating-point scenes need ``name``.
    """
    if not card.lr_sensors:
        raise InputError(f"the model card lists no LR sensor mappings, so {scene} cannot be mapped to its input: use a checkpoint whose card has lr_sensors")
    known = ", ".join(s.name for s in card.lr_sensors)
    if name is not None:
        for s in card.lr_sensors:
            if s.name == name:
                return s
        from zoomplan.geo.sensors import planner_sensor, sensor_names

        found = planner_sensor(card, name)
        if found is None:
            raise InputError(f"unknown sensor mapping {name!r} for {scene}: pass --sensor with one of {', '.join(sensor_names(card))}")
        return found
    is8 = [s for s in card.lr_sensors if math.isclose(s.scale, 1 / 255, rel_tol=1e-3)]
    other = [s for s in card.lr_sensors if s not in is8]
    if dtype == "uint8" and is8:
        return is8[0]
    if np.issubdtype(np.dtype(dtype), np.integer) and dtype != "uint8" and other:
        return other[0]
    raise InputError(f"{scene} holds {dtype} values and no sensor mapping of the model fits that type by default: pass --sensor with one of {known}")


_MASK_WORDS = re.compile(r"(cloud|\bclm\b|\bscl\b|\bqa\w*|mask|opaque)", re.IGNORECASE)


def _warn_mask_bands(descriptions: Sequence[str | None], used: Sequence[int], path: Path) -> None:
    """Warn that cloud / quality mask bands (by description) are not used, except a band described ``SCL`` or
    ``QA_PIXEL``, which is the scene's cloud mask (:func:`zoomplan.geo.clouds.stack_mask_band`)."""
    from zoomplan.geo.clouds import stack_mask_band

    read = stack_mask_band(descriptions)
    masks = [(i + 1, d) for i, d in enumerate(descriptions) if d and (i + 1) not in used and _MASK_WORDS.search(d) and (read is None or read[0] != i + 1)]
    if masks:
        k = masks[0][0]
        log.warning(
            "scene %s has mask band(s) %s that zoomplan does not use: its cloudy pixels count as clear unless the mask is given as "
            "--cloud-mask FILE (a one-band raster, nonzero = cloud or shadow), e.g. rio stack %s --bidx %d -o cloud_mask.tif",
            path, ", ".join(f"{i}={d!r}" for i, d in masks), path, k,
        )


def open_scene(path: "str | os.PathLike[str] | BandSet", card: ModelCard, *, bands: Sequence[str] | None = None, sensor: str | None = None) -> Scene:
    """Open and validate the LR scene at ``path`` (a raster file, a folder of band files or a
    :class:`~zoomplan.geo.bands.BandSet`) for ``card``; no file handle is kept. ``sensor`` defaults to
    what a band set's product metadata says, else to the data type's mapping (:func:`choose_sensor`).

    Raises :class:`InputError` when the file is missing or unreadable, has no CRS or georeferencing, or
    lacks the bands the model needs.
    """
    from zoomplan.geo.bands import BandSet, band_set_source, folder_band_set

    bset = path if isinstance(path, BandSet) else None
    p = bset.path if bset is not None else Path(path)  # a zipped SAFE: the zip
    if not p.exists():
        raise InputError(f"scene {p} not found: pass --lr with the path of a GeoTIFF, COG or JP2")
    if bset is None and p.is_dir():
        bset = folder_band_set(p)
    source, scene_id = str(p), p.stem
    meta_mapping: SensorMapping | None = None
    if bset is not None:
        source, scene_id = band_set_source(bset), bset.scene_id
        if sensor is None:  # product metadata: STAC raster:bands, Landsat MTL, Sentinel-2 baseline (an explicit --sensor wins)
            from zoomplan.geo.sensors import band_set_sensor

            meta_mapping, sensor = band_set_sensor(card, bset)
    try:
        with rasterio.Env(**GDAL_ENV), rasterio.open(source) as src:
            if src.crs is None:
                raise InputError(f"scene {p} has no CRS: assign one (e.g. rio edit-info --crs EPSG:32618 {p}) or use the georeferenced product")
            if src.transform.is_identity or src.transform.b != 0 or src.transform.d != 0:
                if src.transform.is_identity:
                    raise InputError(f"scene {p} has no georeferencing: assign its pixel size and top-left corner (metres in its CRS), "
                                     f"e.g. rio edit-info --transform '[10, 0, 440000, 0, -10, 4170000]' {p}")
                raise InputError(f"scene {p} has a rotated geotransform: warp it to a north-up grid first (rio warp {p} {p.with_name(p.stem + '_north_up.tif')})")
            s = meta_mapping or choose_sensor(card, src.dtypes[0], sensor, scene=f"scene {p}")
            try:
                idx = resolve_bands(
                    list(src.descriptions), [c.name for c in src.colorinterp], s.bands, s.band_aliases, bands, scene=f"scene {p}"
                )
            except InputError as exc:
                if bset is None:
                    raise
                raise InputError(
                    f"band files {', '.join(f.name for f in bset.files)} hold {', '.join(d or '?' for d in src.descriptions)}, not {', '.join(s.bands)}: "
                    f"pass one file per band (repeat --lr, e.g. --lr B04.jp2 --lr B03.jp2 --lr B02.jp2) or the product's folder"
                ) from exc
            _warn_mask_bands(list(src.descriptions), idx, p)
            if len(idx) != len(card.lr_norm.mean):
                raise InputError(f"scene {p}: the model needs {len(card.lr_norm.mean)} bands, the sensor mapping {s.name!r} names {len(idx)}: fix the model card")
            b = src.bounds
            return Scene(
                path=p,
                scene_id=scene_id,
                crs=CRS.from_user_input(src.crs),
                bounds=(b.left, b.bottom, b.right, b.top),
                res=(float(src.res[0]), float(src.res[1])),
                width=src.width,
                height=src.height,
                dtype=src.dtypes[0],
                nodata=None if src.nodata is None else float(src.nodata),
                band_indexes=idx,
                band_labels=tuple(src.descriptions[i - 1] or f"band {i}" for i in idx),
                sensor=s,
                source=source if bset is not None else "",
            )
    except RasterioError as exc:
        raise InputError(f"scene {p} is not a raster GDAL can read ({_first_line(exc)}): pass a GeoTIFF, COG or JP2") from exc


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
        self._nodata_rule: list[float | None] | None = None  # per model band, when the masks are nodata masks (see _mask_rule)

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
            raise InputError(f"scene {s.path} cannot be opened for reading ({_first_line(exc)}): the file is truncated or corrupt; re-download it") from exc
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
        self._vrt = WarpedVRT(src, crs=g.crs.to_wkt(), transform=g.lr_transform(self.extent), width=w * L, height=h * L, resampling=method, **kw)
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
            "scene %s: resampling (%s) from %s %.4g %s pixels to %s %g m pixels aligned to the %g m tile grid, because its %s",
            s.scene_id, method.name, src_name, s.res[0], unit, dst_name, px, g.tile_m, "; ".join(why),
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
            raise InputError(f"scene {self.scene.path}: reading pixels failed ({_first_line(exc)}): the file is truncated or corrupt; re-download it") from exc
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
                    self.scene.scene_id, ", ".join(self.scene.band_labels),
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
