"""The files a scene product is made of: a set of one-band files (:class:`BandSet`), what a STAC Item
says about their radiometry (:class:`ItemRadiometry`), and paths inside a zipped product.

A SAFE product as downloaded, zipped (``S2B_MSIL1C_..._N0509_....SAFE.zip``), is named by paths under the
zip (``/data/X.SAFE.zip/X.SAFE/GRANULE/.../B04.jp2``, :func:`archive_member`); its band and mask rasters
are opened through GDAL's ``/vsizip/`` (:func:`gdal_path`: read window by window from the archive, nothing
extracted), its small metadata files read with :mod:`zipfile` (:func:`read_bytes`). Band names come
from file names (:func:`band_token`: Sentinel-2 ``B04``, Landsat 8/9 ``B4`` as ``red``).
"""

from __future__ import annotations

import functools
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoomplan.errors import InputError

RASTER_SUFFIXES = (".jp2", ".tif", ".tiff", ".vrt")
_TOKEN = re.compile(r"(?:^|[_\-.])(b(?:0?[1-9]|1[0-2]|8a)|red|green|blue|nir)(?=[_\-.]|$)", re.IGNORECASE)


@dataclass(frozen=True)
class ItemRadiometry:
    """What a STAC Item says about turning its band assets' values into reflectance.

    ``scale``/``offset``: per file of the band set (``raster:bands``; empty when absent); ``mtl``: a
    Landsat product's local MTL file; ``sensor``: a planner sensor its properties call for;
    ``refusal``: why it cannot be planned without ``--sensor`` (one line, with the fix). Also the Item's
    cloud mask asset (:func:`~zoomplan.geo.products.stac_masks.mask_asset`): ``cloud_mask``, or ``cloud_refusal`` why
    it cannot be read
    (one line, raised only when no ``--cloud-mask`` stands in for it)."""

    json: Path
    item_id: str
    scale: tuple[float, ...] = ()
    offset: tuple[float, ...] = ()
    mtl: Path | None = None
    sensor: str | None = None
    refusal: str = ""
    cloud_mask: Any = None
    cloud_refusal: str = ""


@dataclass(frozen=True)
class BandSet:
    """One scene delivered as one-band files; ``root``: the folder given, if any.

    A STAC Item's set (:mod:`zoomplan.geo.products.stac`) also carries each file's band (``labels``, from the
    asset), the nodata value its metadata gives (used where the file sets none) and ``item``, what the
    Item says about reflectance (:class:`~zoomplan.geo.products.stac.ItemRadiometry`)."""

    files: tuple[Path, ...]
    root: Path | None = None
    labels: tuple[str, ...] = ()
    nodata: tuple[float | None, ...] = ()
    item: ItemRadiometry | None = None

    @property
    def scene_id(self) -> str:
        """The STAC Item's id, else the folder's name, else the first file's name without its band token
        (``T18SVG_20160112T160652``)."""
        if self.item is not None:
            return self.item.item_id
        if self.root is not None:
            return self.root.name.removesuffix(".zip").removesuffix(".SAFE")
        stem = _TOKEN.sub("", self.files[0].stem).strip("_-.")
        return stem or self.files[0].stem

    @property
    def path(self) -> Path:
        """The file on disk that stands for the set: its first file, or the zip holding it."""
        member = archive_member(self.files[0])
        return member[0] if member else self.files[0]


def archive_member(path: Path) -> tuple[Path, str] | None:
    """(the zip, the member's name in it) for a path inside a ``.zip`` file (``/d/X.SAFE.zip/X.SAFE/MTD_MSIL1C.xml``
    -> ``(/d/X.SAFE.zip, 'X.SAFE/MTD_MSIL1C.xml')``; the zip itself -> ``(zip, '')``), else None."""
    for p in (path, *path.parents):
        if p.suffix.lower() == ".zip":
            return (p, "" if p == path else path.relative_to(p).as_posix()) if p.is_file() else None
    return None


def gdal_path(path: Path) -> str:
    """The name GDAL opens ``path`` by: ``/vsizip//abs/X.zip/member`` for a zip member, else the path."""
    member = archive_member(path)
    return f"/vsizip/{member[0].resolve()}/{member[1]}" if member else str(path)


@functools.lru_cache(maxsize=16)
def _zip_names(zpath: Path, mtime_ns: int) -> tuple[str, ...]:
    try:
        with zipfile.ZipFile(zpath) as z:
            return tuple(n for n in z.namelist() if not n.endswith("/"))
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(
            f"--lr {zpath} is not a zip file Python can read ({exc}): re-download the product, or unzip it and pass "
            f"the .SAFE folder"
        ) from exc


def zip_names(zpath: Path) -> tuple[str, ...]:
    return _zip_names(zpath.resolve(), zpath.stat().st_mtime_ns)


def files_under(folder: Path, recursive: bool = True) -> list[Path]:
    """The files in ``folder`` (``recursive``: at any depth), a folder on disk or one inside a zip (sorted for a
    zip)."""
    member = archive_member(folder)
    if member is None:
        return [f for f in (folder.rglob("*") if recursive else folder.glob("*")) if f.is_file()]
    zpath, inner = member
    prefix = f"{inner}/" if inner else ""
    rest = [n[len(prefix) :] for n in zip_names(zpath) if n.startswith(prefix)]
    return [folder / r for r in sorted(rest) if recursive or "/" not in r]


def is_file(path: Path) -> bool:
    """Whether ``path`` is a file, on disk or in a zip."""
    member = archive_member(path)
    return path.is_file() if member is None else bool(member[1]) and member[1] in zip_names(member[0])


def read_bytes(path: Path) -> bytes:
    member = archive_member(path)
    if member is None or not member[1]:
        return path.read_bytes()
    with zipfile.ZipFile(member[0]) as z:
        return z.read(member[1])


_LANDSAT = re.compile(r"^L[COTE]0[89]_", re.IGNORECASE)
LANDSAT_BANDS = {"red": 4, "green": 3, "blue": 2, "nir": 5}
"""Landsat 8/9 OLI band number of each band name the planner reads."""
_LANDSAT_NAMES = {v: k for k, v in LANDSAT_BANDS.items()}


def is_landsat(path: Path) -> bool:
    """Whether ``path`` is named as a Landsat 8/9 Collection 2 product file (``LC08_...``, ``LC09_...``)."""
    return bool(_LANDSAT.match(path.name))


def band_token(path: Path) -> str | None:
    """The band a file name says (``B04``, ``B8A``, ``red``), normalised (``B04``), else None.

    Landsat 8/9 files: ``red``, ``green``, ``blue``, ``nir`` for B4, B3, B2, B5; None for the other bands."""
    m = _TOKEN.findall(path.stem)
    if m and is_landsat(path):
        t = m[-1].upper()
        return _LANDSAT_NAMES.get(int(t[1:])) if t.startswith("B") and t[1:].isdigit() else None
    if not m:
        return None
    t = m[-1].upper()
    if t.startswith("B") and t[1:].isdigit():
        return f"B{int(t[1:]):02d}"
    return t if t.startswith("B") else t.lower()


def is_remote_href(href: str) -> bool:
    """Whether a STAC asset's ``href`` is remote (a URL other than ``file://``, or a GDAL ``/vsi`` path)."""
    url = bool(re.match(r"^[a-z][a-z0-9+.\-]+://", href, re.IGNORECASE)) and not href.lower().startswith("file://")
    return href.startswith("/vsi") or url


def local_href(href: str, json: Path) -> Path:
    """The local file a STAC asset's ``href`` names: relative to the Item JSON ``json``, ``file://`` or absolute."""
    from pystac.utils import make_absolute_href

    if href.lower().startswith("file://"):
        href = href[len("file://") :]
    return Path(make_absolute_href(href, str(json.resolve())))


def is_stac_json(path: Path) -> bool:
    """Whether ``--lr path`` is to be read as a STAC Item / ItemCollection (a ``.json`` file that is not a Landsat
    MTL)."""
    return path.is_file() and path.suffix.lower() == ".json" and not re.search(r"_MTL\.json$", path.name, re.IGNORECASE)
