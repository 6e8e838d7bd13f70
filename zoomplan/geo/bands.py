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
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence
from xml.sax.saxutils import escape

import rasterio
from rasterio.errors import RasterioError

from zoomplan.errors import InputError

RASTER_SUFFIXES = (".jp2", ".tif", ".tiff", ".vrt")
_TOKEN = re.compile(r"(?:^|[_\-.])(b(?:0?[1-9]|1[0-2]|8a)|red|green|blue|nir)(?=[_\-.]|$)", re.IGNORECASE)
_GDAL_TYPES = {"uint8": "Byte", "int8": "Int8", "uint16": "UInt16", "int16": "Int16", "uint32": "UInt32", "int32": "Int32",
               "float32": "Float32", "float64": "Float64"}


@dataclass(frozen=True)
class BandSet:
    """One scene delivered as one-band files; ``root``: the folder given, if any."""

    files: tuple[Path, ...]
    root: Path | None = None

    @property
    def scene_id(self) -> str:
        """The folder's name, else the first file's name without its band token (``T18SVG_20160112T160652``)."""
        if self.root is not None:
            return self.root.name.removesuffix(".SAFE")
        stem = _TOKEN.sub("", self.files[0].stem).strip("_-.")
        return stem or self.files[0].stem


def band_token(path: Path) -> str | None:
    """The band a file name says (``B04``, ``B8A``, ``red``), normalised (``B04``), else None."""
    m = _TOKEN.findall(path.stem)
    if not m:
        return None
    t = m[-1].upper()
    if t.startswith("B") and t[1:].isdigit():
        return f"B{int(t[1:]):02d}"
    return t if t.startswith("B") else t.lower()


def _count(path: Path) -> int | None:
    try:
        with rasterio.open(path) as src:
            return src.count
    except RasterioError:
        return None


def folder_band_set(folder: Path) -> BandSet:
    """The band files under ``folder`` (recursively: names carrying a band, e.g. ``..._B04_10m.jp2``)."""
    files = tuple(sorted(f for f in folder.rglob("*") if f.suffix.lower() in RASTER_SUFFIXES and band_token(f)))
    if not files:
        raise InputError(f"--lr {folder} is a folder without band files (names such as B04.jp2 or T18SVG_..._B04_10m.jp2): pass the product's folder or its band files")
    return BandSet(files, root=folder)


def group_scene_inputs(paths: Sequence[str | Path]) -> list[Path | BandSet]:
    """``--lr`` paths as scenes: folders -> :class:`BandSet`; runs of one-band files -> one :class:`BandSet`."""
    out: list[Path | BandSet] = []
    run: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_file() and _count(p) == 1:
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


def band_set_source(bs: BandSet) -> tuple[str, list[str]]:
    """(VRT XML stacking the set's bands on the finest file's grid, the band descriptions in VRT order).

    Where several files name the same band (a L2A product's ``R10m``/``R20m``/``R60m``), the finest is used.
    Raises :class:`InputError` for unreadable files, mixed CRSs or data types."""
    infos = []
    for f in bs.files:
        try:
            with rasterio.open(f) as src:
                infos.append((band_token(f) or f.stem, f, src.crs, src.transform, src.width, src.height, src.dtypes[0], src.nodata))
        except RasterioError as exc:
            raise InputError(f"band file {f} is not a raster GDAL can read ({str(exc).splitlines()[0]}): re-download it") from exc
    best: dict[str, tuple] = {}
    for info in infos:
        if info[0] not in best or abs(info[3].a) < abs(best[info[0]][3].a):
            best[info[0]] = info
    chosen = list(best.values())
    crss = {str(i[2]) for i in chosen}
    if len(crss) > 1 or None in {i[2] for i in chosen}:
        raise InputError(f"band files of {bs.scene_id} are in different CRSs ({', '.join(sorted(crss))}) or none: pass the bands of one product")
    if len({i[6] for i in chosen}) > 1:
        raise InputError(f"band files of {bs.scene_id} hold different data types ({', '.join(sorted({i[6] for i in chosen}))}): pass the bands of one product")
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
            f'<VRTRasterBand dataType="{dtype}" band="{k}"><Description>{escape(tok)}</Description>{nodata}<SimpleSource>'
            f'<SourceFilename relativeToVRT="0">{escape(str(f.resolve()))}</SourceFilename><SourceBand>1</SourceBand>'
            f'<SrcRect xOff="0" yOff="0" xSize="{fw}" ySize="{fh}"/>'
            f'<DstRect xOff="{x0!r}" yOff="{y0!r}" xSize="{fw * t.a / px!r}" ySize="{fh * -t.e / py!r}"/></SimpleSource></VRTRasterBand>'
        )
    srs = escape(chosen[0][2].to_wkt())
    xml = (f'<VRTDataset rasterXSize="{w}" rasterYSize="{h}"><SRS>{srs}</SRS>'
           f"<GeoTransform>{left!r}, {px!r}, 0, {top!r}, 0, {-py!r}</GeoTransform>{''.join(bands)}</VRTDataset>")
    return xml, [i[0] for i in chosen]


def sentinel2_sensor(bs: BandSet) -> str | None:
    """The sensor mapping a Sentinel-2 product's metadata calls for (see the module docstring), else None."""
    starts = [bs.root] if bs.root is not None else []
    starts += list(bs.files[0].resolve().parents)[:5]
    for d in starts:
        for level, tag in (("l1c", "RADIO_ADD_OFFSET"), ("l2a", "BOA_ADD_OFFSET")):
            mtd = d / f"MTD_MSI{level.upper()}.xml"
            if mtd.is_file():
                return _sensor_from_mtd(mtd, level, tag)
    return None


def _sensor_from_mtd(mtd: Path, level: str, tag: str) -> str:
    try:
        root = ET.parse(mtd).getroot()
    except ET.ParseError as exc:
        raise InputError(f"product metadata {mtd} is not well-formed XML ({exc}): re-download the product, or pass --sensor") from exc
    offsets = {float(e.text or 0) for e in root.iter() if e.tag.endswith(tag)}
    if not offsets or offsets == {0.0}:
        return "sentinel2_toa" if level == "l1c" else "sentinel2_l2a"
    if offsets != {-1000.0}:
        raise InputError(f"product metadata {mtd} gives {tag} {sorted(offsets)}, not the -1000 of processing baseline 04.00: pass --sensor")
    return f"sentinel2_{level}_pb04"
