"""Cloud masks: which LR pixels lie under cloud or cloud shadow, read on the planning grid window by window.

A :class:`CloudMask` is one band (or two) of a raster and the rule that turns its values into "cloud or
shadow" (:func:`cloud_pixels`), by ``kind``:

- ``scl``: Sentinel-2 L2A scene classification (20 m): classes :data:`SCL_CLOUD` (3 cloud shadows,
  8 cloud medium probability, 9 cloud high probability, 10 thin cirrus). 2 (dark area / topographic
  shadow) and 11 (snow) are not clouds; 0 is no data.
- ``classi``: Sentinel-2 L1C ``MSK_CLASSI_B00.jp2`` (processing baseline 04.00 and later, 60 m):
  nonzero in band 1 (opaque clouds) or band 2 (cirrus); band 3 (snow) is not used. L1C has no shadow mask.
- ``qa_pixel``: Landsat Collection 2 ``QA_PIXEL``: any of bits :data:`QA_CLOUD_BITS` (1 dilated cloud,
  2 cirrus, 3 cloud, 4 cloud shadow) set on a pixel that is not fill (bit 0). Confidence bits (8-15)
  alone do not make a cloud.
- ``nonzero``: a mask the user gives (``--cloud-mask FILE``): band 1, nonzero = cloud or shadow.

Where the mask comes from (:func:`find_cloud_mask`): a Sentinel-2 product's ``*_SCL_*`` band (the finest,
in the SAFE or folder given, zipped or not, the product root above band files holding ``MTD_MSIL2A.xml``,
or beside the band files), else its ``MSK_CLASSI_B00`` file; a Landsat product's ``*_QA_PIXEL.TIF`` beside
its band files; a STAC Item's cloud mask asset (``scl`` / ``SCL``, ``qa_pixel``:
:func:`zoomplan.geo.products.stac_masks.mask_asset`);
a stacked file's band described ``SCL`` or ``QA_PIXEL``. A mask inside a zipped SAFE is opened through
``/vsizip/`` (``CloudMask.member``). A user's mask (:func:`open_cloud_mask`)
wins over the product's; a file named like one of the product masks (``SCL``, ``QA_PIXEL``,
``MSK_CLASSI``) is read by that product's rule, any other by ``nonzero``.

:class:`CloudReader` reads a mask on any grid and CRS onto the planning grid's LR pixels through a
``WarpedVRT`` (nearest neighbour: classes and bits are never averaged; a mask finer than the LR pixel
is sampled at LR pixel centres), one window at a time, never whole. Nodata pixels and pixels outside the
mask are not cloud (nothing says they are). :func:`patch_cloud_share` turns the pixels into each HR
patch's share of cloud; a patch is *cloudy* when that share is above :data:`CLOUDY_SHARE`.
"""

from __future__ import annotations

import logging
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import rasterio
import shapely
from pyproj import CRS, Transformer
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from zoomplan.errors import InputError
from zoomplan.geo.products.files import BandSet, archive_member, files_under, gdal_path, is_file, is_landsat

if TYPE_CHECKING:
    from zoomplan.geo.grid import PlanGrid, TileRange

log = logging.getLogger(__name__)

CLOUDY_SHARE = 0.25
"""A patch is cloudy when more than this share of its LR pixels is cloud or cloud shadow: with 10 m LR
pixels and 20 m patches, 2 of its 4 pixels. One pixel of four (a cloud's ragged edge) leaves three
quarters of the patch seen; two leave the LR saying little about it."""
SCL_CLOUD = (3, 8, 9, 10)
"""Sentinel-2 L2A scene classes read as cloud or shadow: cloud shadows, cloud medium probability,
cloud high probability, thin cirrus."""
QA_CLOUD_BITS = (1, 2, 3, 4)
"""Landsat Collection 2 QA_PIXEL bits read as cloud or shadow: dilated cloud, cirrus, cloud, cloud shadow."""
KINDS = ("scl", "classi", "qa_pixel", "nonzero")

_MASK_SUFFIXES = (".jp2", ".tif", ".tiff", ".vrt")
_SCL = re.compile(r"(?:^|[_\-.])scl(?=[_\-.]|$)", re.IGNORECASE)
_QA = re.compile(r"(?:^|[_\-.])qa_pixel(?=[_\-.]|$)", re.IGNORECASE)
_CLASSI = re.compile(r"(?:^|[_\-.])msk_classi", re.IGNORECASE)


@dataclass(frozen=True)
class CloudMask:
    """A cloud mask: the raster at ``path``, its 1-based ``bands`` read by ``kind``'s rule (module doc);
    ``given``: the user's ``--cloud-mask`` (else found with the product); ``member``: the raster's name in
    the zip ``path`` (a zipped SAFE); ``asset``: the STAC asset key it comes from."""

    path: Path
    kind: str
    bands: tuple[int, ...] = (1,)
    given: bool = False
    member: str = ""
    asset: str = ""

    @property
    def source(self) -> str:
        """What GDAL opens: the file, or ``/vsizip/`` of the zip's member."""
        return gdal_path(self.path / self.member) if self.member else str(self.path)

    def describe(self) -> str:
        """One line: what the mask is and which values count (for the summary)."""
        what = {
            "scl": f"Sentinel-2 SCL (classes {', '.join(map(str, SCL_CLOUD))}: cloud shadow, cloud medium/high "
            f"probability, thin cirrus)",
            "classi": "Sentinel-2 MSK_CLASSI (opaque clouds or cirrus)",
            "qa_pixel": f"Landsat QA_PIXEL (bits {', '.join(map(str, QA_CLOUD_BITS))}: dilated cloud, cirrus, cloud, "
            f"cloud shadow)",
            "nonzero": "nonzero = cloud",
        }[self.kind]
        band = f" band {self.bands[0]}" if self.bands != (1,) and len(self.bands) == 1 else ""
        name = Path(self.member).name if self.member else self.path.name
        if self.asset:
            name = f"STAC asset {self.asset!r} ({name})"
        return f"{'--cloud-mask ' if self.given else ''}{name}{band}: {what}"


def mask_at(path: Path, kind: str, **kw: str) -> CloudMask:
    """The mask ``path`` read by ``kind``'s rule (MSK_CLASSI: bands 1 and 2), a zip member or a file."""
    bands = (1, 2) if kind == "classi" else (1,)
    member = archive_member(path)
    if member is not None and member[1]:
        return CloudMask(member[0], kind, bands, member=member[1], **kw)
    return CloudMask(path, kind, bands, **kw)


def kind_of(path: Path) -> str:
    """The rule a mask file's name calls for: ``scl``, ``qa_pixel``, ``classi``, else ``nonzero``."""
    stem = path.stem
    if _SCL.search(stem):
        return "scl"
    if _QA.search(stem):
        return "qa_pixel"
    if _CLASSI.search(stem):
        return "classi"
    return "nonzero"


def is_mask_file(path: Path) -> bool:
    """Whether ``path`` is named as a product's cloud mask (``..._SCL_20m.jp2``, ``..._QA_PIXEL.TIF``,
    ``MSK_CLASSI_B00.jp2``)."""
    return path.suffix.lower() in _MASK_SUFFIXES and kind_of(path) != "nonzero"


def cloud_pixels(values: np.ndarray, kind: str, valid: np.ndarray | None = None) -> np.ndarray:
    """(H, W) bool: cloud or shadow, from a mask's ``values`` (B, H, W) as read (``kind``: module doc).

    ``valid`` (H, W) bool: pixels holding mask data; the others are never cloud."""
    v = np.asarray(values)
    if kind == "scl":
        out = np.isin(v[0], SCL_CLOUD)
    elif kind == "qa_pixel":
        q = v[0].astype(np.int64)
        bits = sum(1 << b for b in QA_CLOUD_BITS)
        out = ((q & bits) != 0) & ((q & 1) == 0)
    elif kind == "classi":
        out = np.any(v[:2] != 0, axis=0)
    elif kind == "nonzero":
        out = (v[0] != 0) & np.isfinite(v[0]) if v.dtype.kind == "f" else v[0] != 0
    else:
        raise ValueError(f"unknown cloud mask kind {kind!r}: one of {', '.join(KINDS)}")
    return out & valid if valid is not None else out


def patch_cloud_share(cloud: np.ndarray, lr_size: int, patch_grid: tuple[int, int]) -> np.ndarray:
    """(h*L, w*L) bool cloud pixels of a block of tiles -> (h, w, P) share of each patch's LR pixels,
    patches in the tile's row-by-row order (:attr:`zoomplan.plan.types.PatchTable.patch_index`)."""
    H, W = cloud.shape
    gr, gc = patch_grid
    h, w = H // lr_size, W // lr_size
    pr, pc = lr_size // gr, lr_size // gc
    share = cloud.reshape(h, gr, pr, w, gc, pc).mean(axis=(2, 5))  # (h, gr, w, gc)
    return share.transpose(0, 2, 1, 3).reshape(h, w, gr * gc)


def described_kind(description: str | None) -> str | None:
    """``scl`` / ``qa_pixel`` for a band description or asset key naming that mask (``SCL``, ``scl-jp2``,
    ``QA_PIXEL``), else None."""
    d = (description or "").strip()
    if re.fullmatch(r"scl", d, re.IGNORECASE) or _SCL.search(d.replace(" ", "_")):
        return "scl"
    if _QA.search(d.replace(" ", "_")):
        return "qa_pixel"
    return None


def stack_mask_band(descriptions: Sequence[str | None]) -> tuple[int, str] | None:
    """(1-based band, kind) of a stacked file's band described ``SCL`` or ``QA_PIXEL``, else None."""
    for i, d in enumerate(descriptions):
        k = described_kind(d)
        if k is not None:
            return i + 1, k
    return None


def split_mask_files(inp: "Path | BandSet") -> "tuple[Path | BandSet, CloudMask | None]":
    """A band set with its cloud mask files (``SCL``, ``QA_PIXEL``, ``MSK_CLASSI`` given among the band
    files, e.g. ``--lr B04.jp2 ... --lr SCL_20m.jp2``) taken out, and the mask they make (the finest)."""
    if not isinstance(inp, BandSet):
        return inp, None
    masks = [f for f in inp.files if is_mask_file(f)]
    if not masks:
        return inp, None
    rest = tuple(f for f in inp.files if f not in masks)
    if not rest:
        raise InputError(
            f"--lr {', '.join(f.name for f in masks)}: cloud mask file(s) without band files: pass the bands too, or "
            f"the mask as --cloud-mask FILE"
        )
    return BandSet(rest, inp.root), _finest(masks)


def _finest(files: Sequence[Path]) -> CloudMask:
    def res(f: Path) -> float:
        try:
            with rasterio.open(gdal_path(f)) as src:
                return abs(src.transform.a) if not src.transform.is_identity else math.inf
        except RasterioError:
            return math.inf

    best = min(sorted(files), key=res)
    return mask_at(best, kind_of(best))


def _product_dirs(bs: "BandSet") -> tuple[list[Path], bool]:
    """Where a band set's product masks may be: (folders, search them recursively)."""
    if bs.root is not None:
        return [bs.root], True
    for d in list(bs.files[0].resolve().parents)[:5]:
        if any(is_file(d / f"MTD_MSI{lv}.xml") for lv in ("L2A", "L1C")):
            return [d], True  # a SAFE product: its masks are in sibling folders (R20m, QI_DATA)
    return list(dict.fromkeys(f.parent for f in bs.files)), False


def find_cloud_mask(inp: "Path | BandSet") -> CloudMask | None:
    """The cloud mask a product carries (module doc), else None. ``inp``: a ``--lr`` scene, as grouped
    (:func:`zoomplan.geo.products.bands.group_scene_inputs`)."""
    if isinstance(inp, BandSet):
        if inp.item is not None and (inp.item.cloud_mask is not None or inp.item.cloud_refusal):
            if inp.item.cloud_refusal:  # a remote or missing mask asset: needed only when no --cloud-mask is given
                raise InputError(inp.item.cloud_refusal)
            return inp.item.cloud_mask
        dirs, deep = _product_dirs(inp)
        files = [f for d in dirs for f in files_under(d, deep) if is_mask_file(f)]
        landsat = any(is_landsat(f) for f in inp.files)
        for kind in ("qa_pixel",) if landsat else ("scl", "classi"):
            found = [f for f in files if kind_of(f) == kind]
            if found:
                return _finest(found)
        return None
    p = Path(inp)
    if p.is_dir():
        return None
    try:
        with rasterio.open(p) as src:
            hit = stack_mask_band(src.descriptions)
    except RasterioError:
        return None
    return None if hit is None else CloudMask(p, hit[1], (hit[0],))


def open_cloud_mask(path: "str | os.PathLike[str]", *, like: "str | os.PathLike[str] | None" = None) -> CloudMask:
    """The user's cloud mask at ``path`` (``--cloud-mask``), checked: readable, with a CRS and a north-up
    georeferencing. Raises :class:`InputError` (one line, with the fix) otherwise; ``like``: the scene the
    mask goes with, named in the fix for a mask on that scene's grid without georeferencing."""
    p = Path(path)
    if not p.is_file():
        raise InputError(
            f"--cloud-mask {p} not found: pass a raster whose nonzero pixels are cloud or shadow (or the product's "
            f"SCL / QA_PIXEL file)"
        )
    try:
        with rasterio.open(p) as src:
            crs, t = src.crs, src.transform
    except RasterioError as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InputError(
            f"--cloud-mask {p} is not a raster GDAL can read ({first}): pass a GeoTIFF, COG or JP2"
        ) from exc
    if crs is None or t.is_identity:
        what = "no CRS" if crs is None else "no georeferencing"
        raise InputError(
            f"--cloud-mask {p} has {what}, so it cannot be placed on its scene: if it is on the scene's own pixel "
            f"grid, copy the "
            f"scene's: rio edit-info --like {like or 'SCENE'} --crs like --transform like {p}"
        )
    if t.b != 0 or t.d != 0:
        raise InputError(
            f"--cloud-mask {p} has a rotated geotransform: warp it to a north-up grid first (rio warp {p} "
            f"{p.with_name(p.stem + '_north_up.tif')})"
        )
    kind = kind_of(p)
    return CloudMask(p, kind, (1, 2) if kind == "classi" else (1,), given=True)


def mask_footprint(mask: CloudMask, crs: CRS) -> shapely.Polygon:
    """The mask's bounding box as a polygon in ``crs`` (edges densified before projecting)."""
    with rasterio.open(mask.source) as src:
        b, src_crs = src.bounds, CRS.from_user_input(src.crs)
    box = shapely.box(b.left, b.bottom, b.right, b.top)
    if src_crs == CRS.from_user_input(crs):
        return box
    t = Transformer.from_crs(src_crs, crs, always_xy=True)
    seg = shapely.segmentize(box, max(b.right - b.left, b.top - b.bottom) / 64)
    return shapely.transform(seg, lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1])))


class CloudReader:
    """Reads a :class:`CloudMask` on a planning grid's LR pixels, tile range by tile range; a context manager.

    ``extent``: the tile range that may be read (the scene's, :class:`~zoomplan.geo.scene.GridReader`'s).
    :meth:`read` returns (rows x L, cols x L) bool, True = cloud or shadow (L = LR pixels per tile edge).
    """

    def __init__(self, mask: CloudMask, grid: "PlanGrid", extent: "TileRange") -> None:
        self.mask = mask
        self.grid = grid
        self.extent = extent
        self._src: rasterio.io.DatasetReader | None = None
        self._vrt: WarpedVRT | None = None

    def __enter__(self) -> "CloudReader":
        g, L = self.grid, self.grid.lr_size_px
        h, w = self.extent.shape
        try:
            self._src = rasterio.open(self.mask.source)
            kw: dict[str, object] = {}
            if self._src.nodata is not None:
                kw.update(src_nodata=self._src.nodata, nodata=self._src.nodata)
            self._vrt = WarpedVRT(
                self._src,
                crs=g.crs.to_wkt(),
                transform=g.lr_transform(self.extent),
                width=w * L,
                height=h * L,
                resampling=Resampling.nearest,
                **kw,
            )
        except RasterioError as exc:
            self.__exit__()
            raise InputError(
                f"cloud mask {self.mask.path} cannot be read ({str(exc).strip().splitlines()[0]}): the file is "
                f"truncated or corrupt; re-download it"
            ) from exc
        return self

    def __exit__(self, *exc: object) -> None:
        for ds in (self._vrt, self._src):
            if ds is not None:
                ds.close()
        self._vrt = self._src = None

    def read(self, tr: "TileRange") -> np.ndarray:
        """(H, W) bool cloud or shadow pixels of the tiles ``tr`` (False outside the mask and the extent)."""
        vrt = self._vrt
        if vrt is None:
            raise RuntimeError("CloudReader.read outside its 'with' block")
        L = self.grid.lr_size_px
        h, w = tr.shape[0] * L, tr.shape[1] * L
        out = np.zeros((h, w), dtype=bool)
        lr0, lc0 = (tr.r0 - self.extent.r0) * L, (tr.c0 - self.extent.c0) * L
        r0, c0 = max(lr0, 0), max(lc0, 0)
        r1, c1 = min(lr0 + h, vrt.height), min(lc0 + w, vrt.width)
        if r1 <= r0 or c1 <= c0:
            return out
        win = Window(c0, r0, c1 - c0, r1 - r0)
        try:
            data = vrt.read(list(self.mask.bands), window=win, masked=True)
        except RasterioError as exc:
            raise InputError(
                f"cloud mask {self.mask.path}: reading pixels failed ({str(exc).strip().splitlines()[0]}): the file "
                f"is truncated or corrupt; re-download it"
            ) from exc
        valid = ~np.ma.getmaskarray(data).any(axis=0)
        out[r0 - lr0 : r1 - lr0, c0 - lc0 : c1 - lc0] = cloud_pixels(np.ma.getdata(data), self.mask.kind, valid)
        return out
