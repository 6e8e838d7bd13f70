"""Scenes as distributed: one file per band (Sentinel-2 ``B04.jp2`` ...), or a folder of them.

``--lr`` paths are grouped by :func:`group_scene_inputs`: a folder becomes one :class:`BandSet` (its band
files, found recursively, e.g. a SAFE product's ``GRANULE/*/IMG_DATA``), and consecutive one-band files
become one. :func:`band_set_source` stacks a set into a GDAL VRT (XML text, nothing written, nothing
read but headers): one band per file, described by the band named in its file name (``B04``,
``red``), on the grid of the finest file, each source placed by its bounds (coarser bands, e.g. 20 m,
upsampled by nearest neighbour on read, window by window; never loaded whole). All files must share a
CRS (metres or degrees, as the files say).

Sentinel-2 product metadata (``MTD_MSIL1C.xml`` / ``MTD_MSIL2A.xml`` in the folder or up to five
levels above the first file) chooses the sensor mapping: processing baseline 04.00 and later carry
``RADIO_ADD_OFFSET`` / ``BOA_ADD_OFFSET`` -1000, read as ``sentinel2_l1c_pb04`` / ``sentinel2_l2a_pb04``
(:mod:`zoomplan.geo.sensors`); earlier L1C as ``sentinel2_toa``, L2A as ``sentinel2_l2a``.

Landsat 8/9 Collection 2 (``LC08_L1TP_..._B4.TIF``, ``LC09_L2SP_..._SR_B4.TIF``): bands B4, B3, B2, B5 are
read as red, green, blue, nir (other bands, e.g. the 15 m panchromatic B8, are left out). The product's
``*_MTL.txt`` / ``*_MTL.xml`` beside the files gives the conversion (:func:`landsat_reflectance`): Level-1
TOA reflectance ``(M * DN + A) / sin(SUN_ELEVATION)``, Level-2 (``L2SP``) surface reflectance
``DN * 0.0000275 - 0.2`` (the MTL's LEVEL2 coefficients when present); applied per band in the sensor
mapping, never by rewriting the data. An MTL file given as ``--lr`` stands for its product's band files.
Landsat band files without their MTL are refused (no ``--sensor``) with the fix: Level-1 needs the MTL,
Level-2 takes ``--sensor landsat_c2l2`` (:func:`landsat_without_mtl`).

A STAC Item or ItemCollection JSON (:mod:`zoomplan.geo.products.stac`) becomes one :class:`BandSet` per Item: its
per-band assets, stacked through the same VRT, with the Item's radiometry (``BandSet.item``).

A SAFE product as downloaded, zipped (``S2B_MSIL1C_..._N0509_....SAFE.zip``), is the same scene as its
folder (:func:`zip_band_set`): its members are named as paths under the zip
(``/data/X.SAFE.zip/X.SAFE/GRANULE/.../B04.jp2``, :func:`archive_member`), band and mask rasters are
opened through GDAL's ``/vsizip/`` (:func:`gdal_path`: read window by window from the archive, nothing
extracted), and the small ``MTD_MSI*.xml`` is read with :mod:`zipfile`.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Sequence
from xml.sax.saxutils import escape

import rasterio
from rasterio.errors import RasterioError

from zoomplan.errors import InputError
from zoomplan.geo.products.files import (
    RASTER_SUFFIXES,
    BandSet,
    band_token,
    files_under,
    gdal_path,
    is_file,
    is_stac_json,
    read_bytes,
    zip_names,
)
from zoomplan.geo.products.stac import sentinel2_name, stac_band_sets

_GDAL_TYPES = {
    "uint8": "Byte",
    "int8": "Int8",
    "uint16": "UInt16",
    "int16": "Int16",
    "uint32": "UInt32",
    "int32": "Int32",
    "float32": "Float32",
    "float64": "Float64",
}


def _count(path: Path) -> int | None:
    try:
        with rasterio.open(path) as src:
            return src.count
    except RasterioError:
        return None


def _band_files(folder: Path) -> tuple[Path, ...]:
    return tuple(sorted(f for f in files_under(folder) if f.suffix.lower() in RASTER_SUFFIXES and band_token(f)))


def folder_band_set(folder: Path) -> BandSet:
    """The band files under ``folder`` (recursively: names carrying a band, e.g. ``..._B04_10m.jp2``)."""
    files = _band_files(folder)
    if not files:
        raise InputError(
            f"--lr {folder} is a folder without band files (names such as B04.jp2 or T18SVG_..._B04_10m.jp2): pass "
            f"the product's folder or its band files"
        )
    return BandSet(files, root=folder)


def zip_band_set(zpath: Path) -> BandSet:
    """A zipped SAFE product (or a zip of band files) as one scene: the band files under its one ``*.SAFE``
    folder (else under the zip's root), named as members (:func:`archive_member`), ``root`` the SAFE folder
    in the zip. Raises :class:`InputError` (one line, naming the zip and the fix) for a zip that is not one,
    holds several SAFE products or no band files."""
    zpath = zpath.resolve()
    safes = sorted(
        {n.split("/")[0] for n in zip_names(zpath) if "/" in n and n.split("/")[0].upper().endswith(".SAFE")}
    )
    if len(safes) > 1:
        raise InputError(
            f"--lr {zpath} holds {len(safes)} SAFE products ({', '.join(safes)}): pass one zip per product, or unzip "
            f"it and pass each .SAFE folder"
        )
    root = zpath / safes[0] if safes else zpath
    files = _band_files(root)
    if not files:
        what = f"its {safes[0]} holds" if safes else "it holds no SAFE product and"
        raise InputError(
            f"--lr {zpath}: {what} no band files (names such as T18SVG_..._B04_10m.jp2): pass the Sentinel-2 "
            f"product zip as downloaded (S2B_MSIL1C_..._N0509_....SAFE.zip), or unzip it and pass the .SAFE folder"
        )
    return BandSet(files, root=root)


def group_scene_inputs(paths: Sequence[str | Path]) -> list[Path | BandSet]:
    """``--lr`` paths as scenes: folders -> :class:`BandSet`; runs of one-band files -> one :class:`BandSet`;
    a STAC Item / ItemCollection JSON -> one :class:`BandSet` per Item (:mod:`zoomplan.geo.products.stac`)."""
    out: list[Path | BandSet] = []
    run: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if is_stac_json(p):
            if run:
                out.append(BandSet(tuple(run)))
                run = []
            out.extend(BandSet(s.files, labels=s.labels, nodata=s.nodata, item=s.item) for s in stac_band_sets(p))
            continue
        if p.is_file() and re.search(r"_MTL\.(txt|xml)$", p.name, re.IGNORECASE):
            p = p.parent  # a Landsat product's metadata file: its folder's band files
        elif p.is_file() and p.suffix.lower() == ".zip":
            if run:
                out.append(BandSet(tuple(run)))
                run = []
            out.append(zip_band_set(p))
            continue
        elif p.is_file() and _count(p) == 1:
            run.append(p)
            continue
        if run:
            out.append(BandSet(tuple(run)))
            run = []
        if p.is_dir():
            out.append(folder_band_set(p))
        else:
            out.append(p)
    if run:
        out.append(BandSet(tuple(run)))
    return out


def band_set_source(bs: BandSet) -> str:
    """VRT XML stacking the set's bands on the finest file's grid, each described by its band token.

    Where several files name the same band (a L2A product's ``R10m``/``R20m``/``R60m``), the finest is used.
    Raises :class:`InputError` for unreadable files, mixed CRSs or data types."""
    infos = []
    for k, f in enumerate(bs.files):
        label = bs.labels[k] if bs.labels else band_token(f) or f.stem
        meta_nd = bs.nodata[k] if bs.nodata else None
        try:
            with rasterio.open(gdal_path(f)) as src:
                infos.append(
                    (
                        label,
                        f,
                        src.crs,
                        src.transform,
                        src.width,
                        src.height,
                        src.dtypes[0],
                        meta_nd if src.nodata is None else src.nodata,
                    )
                )
        except RasterioError as exc:
            raise InputError(
                f"band file {f} is not a raster GDAL can read ({str(exc).splitlines()[0]}): re-download it"
            ) from exc
    best: dict[str, tuple] = {}
    for info in infos:
        if info[0] not in best or abs(info[3].a) < abs(best[info[0]][3].a):
            best[info[0]] = info
    chosen = list(best.values())
    crss = {str(i[2]) for i in chosen}
    if len(crss) > 1 or None in {i[2] for i in chosen}:
        raise InputError(
            f"band files of {bs.scene_id} are in different CRSs ({', '.join(sorted(crss))}) or none: pass the bands "
            f"of one product"
        )
    if len({i[6] for i in chosen}) > 1:
        raise InputError(
            f"band files of {bs.scene_id} hold different data types ({', '.join(sorted({i[6] for i in chosen}))}): "
            f"pass the bands of one product"
        )
    fine = min(chosen, key=lambda i: abs(i[3].a))[3]
    px, py = fine.a, -fine.e
    left = min(i[3].c for i in chosen)
    top = max(i[3].f for i in chosen)
    right = max(i[3].c + i[3].a * i[4] for i in chosen)
    bottom = min(i[3].f + i[3].e * i[5] for i in chosen)
    w, h = math.ceil(round((right - left) / px, 6)), math.ceil(round((top - bottom) / py, 6))
    dtype = _GDAL_TYPES.get(chosen[0][6], "Float32")
    bands = []
    for k, (tok, f, _, t, fw, fh, _, nd) in enumerate(chosen, 1):
        x0, y0 = (t.c - left) / px, (top - t.f) / py
        nodata = f"<NoDataValue>{nd!r}</NoDataValue>" if nd is not None else ""
        bands.append(
            f'<VRTRasterBand dataType="{dtype}" '
            f'band="{k}"><Description>{escape(tok)}</Description>{nodata}<SimpleSource>'
            f'<SourceFilename relativeToVRT="0">{escape(gdal_path(f.resolve()))}</SourceFilename>'
            f"<SourceBand>1</SourceBand>"
            f'<SrcRect xOff="0" yOff="0" xSize="{fw}" ySize="{fh}"/>'
            f'<DstRect xOff="{x0!r}" yOff="{y0!r}" xSize="{fw * t.a / px!r}" '
            f'ySize="{fh * -t.e / py!r}"/></SimpleSource></VRTRasterBand>'
        )
    srs = escape(chosen[0][2].to_wkt())
    xml = (
        f'<VRTDataset rasterXSize="{w}" rasterYSize="{h}"><SRS>{srs}</SRS>'
        f"<GeoTransform>{left!r}, {px!r}, 0, {top!r}, 0, {-py!r}</GeoTransform>{''.join(bands)}</VRTDataset>"
    )
    return xml


def sentinel2_sensor(bs: BandSet) -> str | None:
    """The sensor mapping a Sentinel-2 product's metadata calls for (see the module docstring), else None."""
    starts = [bs.root] if bs.root is not None else []
    starts += list(bs.files[0].resolve().parents)[:5]
    for d in starts:
        for level, tag in (("l1c", "RADIO_ADD_OFFSET"), ("l2a", "BOA_ADD_OFFSET")):
            mtd = d / f"MTD_MSI{level.upper()}.xml"
            if is_file(mtd):
                return _sensor_from_mtd(mtd, level, tag)
    return None


def _sensor_from_mtd(mtd: Path, level: str, tag: str) -> str:
    try:
        root = ET.fromstring(read_bytes(mtd))
    except ET.ParseError as exc:
        raise InputError(
            f"product metadata {mtd} is not well-formed XML ({exc}): re-download the product, or pass --sensor"
        ) from exc
    offsets = {float(e.text or 0) for e in root.iter() if e.tag.endswith(tag)}
    if offsets and offsets not in ({0.0}, {-1000.0}):
        raise InputError(
            f"product metadata {mtd} gives {tag} {sorted(offsets)}, not the -1000 of processing baseline 04.00: pass "
            f"--sensor"
        )
    return sentinel2_name(level, offsets == {-1000.0})
