"""STAC Items and ItemCollections as ``--lr`` (issue 18): per-band assets, read with pystac.

A STAC Item JSON (a local file) is one scene; an ItemCollection is one scene per Item, in the overlap
order of :mod:`zoomplan.geo.scenelist` (least ``eo:cloud_cover`` first, then the most recent, then the
order written; each tile from the first scene with valid data). Each Item becomes a
:class:`~zoomplan.geo.products.files.BandSet` of its band assets, stacked through the same in-memory VRT as band
files (:func:`~zoomplan.geo.products.bands.band_set_source`: bands of different resolutions on the finest
grid, read window by window, never loaded whole).

Band identity (:func:`asset_band`): an asset's ``eo:bands`` ``common_name`` (one band per asset), else
its key: ``red``/``green``/``blue``/``nir`` (Earth Search, Landsat), ``B04``/``B03``/``B02``/``B08``
(Sentinel-2 band ids, Planetary Computer), ``nir08`` standing in for ``nir`` only where there is no
``nir`` (Landsat's B5; on Sentinel-2 it is the 20 m B8A). An asset whose key and ``eo:bands`` name
different bands is refused; multi-band assets (``visual``) are not used. Of several assets of a band
(``red`` and ``red-jp2``), a local one is preferred, then the one keyed by the band's name.

Hrefs: relative to the JSON file (``pystac.utils.make_absolute_href``), ``file://`` or absolute paths.
Remote hrefs (``https://``, ``s3://``, ``/vsicurl/`` ...) of a band the plan needs are refused with one
line naming the asset: zoomplan reads local files (GDAL's network access is not tested here); a remote
``nir``, which the model does not read, is left out.

Cloud mask (:func:`~zoomplan.geo.products.stac_masks.mask_asset`): the asset keyed ``scl`` (Earth Search), ``SCL``
(Planetary Computer) or
``qa_pixel`` (Landsat Collection 2), else one whose ``eo:bands`` name says ``SCL`` / ``QA_PIXEL``, else one
with the role ``cloud`` or ``cloud-shadow`` whose file is named as a product mask (``..._SCL_20m.tif``);
read as the SAFE's SCL / Landsat's QA_PIXEL file is (:mod:`zoomplan.geo.products.clouds`). A remote or missing mask
asset stops the plan with one line, unless ``--cloud-mask`` is given (the user's mask wins).

Reflectance (:class:`ItemRadiometry`, used when no ``--sensor`` is given): the assets' ``raster:bands``
``scale`` and ``offset`` when present (Earth Search's Sentinel-2: 0.0001 and -0.1 from baseline 04.00;
Landsat Level-2: 0.0000275 and -0.2); else, for Sentinel-2, the sensor that ``s2:processing_baseline``
calls for (as the SAFE path's ``MTD_MSI*.xml`` offsets do: :func:`sentinel2_name`);
for Landsat Level-1, the product's MTL asset (a local ``mtl.txt`` / ``mtl.xml``; its ``raster:bands``
give radiance, not reflectance) and a refusal without one; for Landsat Level-2 without
``raster:bands``, ``landsat_c2l2``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from zoomplan.errors import InputError
from zoomplan.geo.products.files import ItemRadiometry, is_remote_href, local_href
from zoomplan.geo.products.stac_collection import overlap_order
from zoomplan.geo.products.stac_masks import mask_asset

log = logging.getLogger(__name__)

MODEL_BANDS = ("red", "green", "blue")
"""Bands every STAC scene must have as local assets."""
_NAMES = (*MODEL_BANDS, "nir")
_KEYS = {
    "red": "red",
    "green": "green",
    "blue": "blue",
    "nir": "nir",
    "nir08": "nir08",
    "b04": "red",
    "b03": "green",
    "b02": "blue",
    "b08": "nir",
}
_LANDSAT_ID = re.compile(r"^L[COTE]0[89]_(L[12])", re.IGNORECASE)


_MALFORMED = (KeyError, TypeError, ValueError, AttributeError)


def _malformed(path: Path, kind: Any, exc: Exception) -> InputError:
    why = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return InputError(
        f"--lr {path} is not a valid STAC {kind} ({type(exc).__name__}{': ' + why if why else ''}): "
        f"pass the Item or ItemCollection JSON as the catalogue wrote it"
    )


def _items(path: Path) -> tuple[list[Any], bool]:
    """The Items of the STAC JSON ``path`` (pystac objects) and whether it is an ItemCollection."""
    import pystac
    from pystac.errors import RequiredPropertyMissing, STACError, STACTypeError

    try:
        d = pystac.StacIO.default().read_json(str(path))
    except (OSError, ValueError) as exc:
        raise InputError(
            f"--lr {path} is not a JSON file pystac can read ({str(exc).splitlines()[0]}): pass a STAC Item or "
            f"ItemCollection"
        ) from exc
    kind = d.get("type") if isinstance(d, dict) else type(d).__name__
    try:
        if isinstance(d, dict) and pystac.ItemCollection.is_item_collection(d):
            items, many = list(pystac.ItemCollection.from_dict(d, preserve_dict=False).items), True
        elif isinstance(d, dict) and kind == "Feature":
            items, many = [pystac.Item.from_dict(d, href=str(path), migrate=True, preserve_dict=False)], False
        else:
            raise InputError(
                f"--lr {path} is a JSON {kind or 'object'}, not a STAC Item or ItemCollection: pass an Item (one "
                f"scene) "
                f"or an ItemCollection (several) with per-band assets"
            )
    except (*_MALFORMED, STACError, STACTypeError, RequiredPropertyMissing) as exc:
        raise _malformed(path, kind, exc) from exc
    if not items:
        raise InputError(f"--lr {path} is an ItemCollection without Items: pass one with at least one Item")
    return items, many


@dataclass(frozen=True)
class _Asset:
    key: str
    band: str | None
    href: str
    scale: float | None
    offset: float | None
    nodata: float | None


def asset_band(key: str, asset: Any) -> str | None:
    """The band an asset holds (``red``, ``green``, ``blue``, ``nir``, ``nir08``), from its one ``eo:bands``
    ``common_name`` (STAC 1.1: ``bands[0]['eo:common_name']``), else its key; None for other bands and
    multi-band assets. Raises :class:`InputError` when the key and ``eo:bands`` disagree."""
    from pystac.extensions.eo import EOExtension

    eo = EOExtension.ext(asset, add_if_missing=True).bands
    names = (
        [b.common_name for b in eo]
        if eo
        else [b.get("eo:common_name") for b in asset.extra_fields.get("bands") or [] if isinstance(b, dict)]
    )
    by_key = _KEYS.get(key.lower())
    if len(names) > 1:
        return None
    common = (names[0] or "").lower() if names else ""
    by_eo = common if common in _KEYS.values() else None
    if by_key and common and by_eo != by_key:
        owner = getattr(asset.owner, "id", "?")
        raise InputError(
            f"STAC item {owner}: asset {key!r} has eo:bands common_name {common!r}, not {by_key}: fix the item (the "
            f"asset key and its eo:bands must agree)"
        )
    return by_eo or (by_key if not common else None)


def _raster(asset: Any) -> tuple[float | None, float | None, float | None]:
    """(scale, offset, nodata) of an asset's first ``raster:bands`` entry (STAC 1.1: ``bands[0]['raster:scale']``
    ...)."""
    from pystac.extensions.raster import RasterExtension

    rb = RasterExtension.ext(asset, add_if_missing=True).bands
    if rb:
        b = rb[0]
        nd = b.nodata if isinstance(b.nodata, (int, float)) else None
        return b.scale, b.offset, nd
    bands = asset.extra_fields.get("bands")
    if isinstance(bands, list) and bands and isinstance(bands[0], dict):
        b1 = bands[0]
        nd1 = b1.get("nodata")
        return b1.get("raster:scale"), b1.get("raster:offset"), nd1 if isinstance(nd1, (int, float)) else None
    return None, None, None


def _assets(item: Any) -> list[_Asset]:
    out = []
    for key, a in item.assets.items():
        band = asset_band(key, a)
        if band is None:
            continue
        scale, offset, nodata = _raster(a)
        out.append(_Asset(key, band, a.href, scale, offset, nodata))
    return out


def _choose(assets: Sequence[_Asset], band: str) -> _Asset | None:
    """The asset to read for ``band``: its own band's assets before ``nir08`` (for ``nir``); local before
    remote; keyed by the band's name before others; then the order written."""
    group = [a for a in assets if a.band == band] or ([a for a in assets if a.band == "nir08"] if band == "nir" else [])
    ranked = sorted(group, key=lambda a: (is_remote_href(a.href), _KEYS.get(a.key.lower()) != a.band))
    return ranked[0] if ranked else None


def _landsat_level(item: Any) -> str | None:
    """``L1`` / ``L2`` for a Landsat Collection 2 Item (by ``landsat:correction``, ``processing:level``,
    its collection or its product id), ``?`` for Landsat of unknown level, None for other platforms."""
    p = item.properties
    platform = str(p.get("platform", "")).lower()
    coll = str(item.collection_id or "").lower()
    m = _LANDSAT_ID.match(item.id)
    if not (
        platform.startswith("landsat") or coll.startswith("landsat") or m or any(k.startswith("landsat:") for k in p)
    ):
        return None
    for v in (p.get("landsat:correction"), p.get("processing:level"), m.group(1) if m else None):
        if isinstance(v, str) and v.upper()[:2] in ("L1", "L2"):
            return v.upper()[:2]
    for tag in ("l2", "l1"):
        if re.search(rf"(?:^|[-_]){tag}(?:[-_]|sp|sr|$)|c2{tag}", coll):
            return tag.upper()
    return "?"


def _sentinel2_level(item: Any) -> str | None:
    """``l1c`` / ``l2a`` for a Sentinel-2 Item (``s2:product_type``, ``processing:level``, collection, id),
    ``?`` for Sentinel-2 of unknown level, None for other platforms."""
    p = item.properties
    platform = str(p.get("platform", "")).lower()
    coll = str(item.collection_id or "").lower()
    if not (platform.startswith("sentinel-2") or coll.startswith("sentinel-2") or any(k.startswith("s2:") for k in p)):
        return None
    text = " ".join(str(v) for v in (p.get("s2:product_type"), p.get("processing:level"), coll, item.id)).lower()
    for level in ("l2a", "l1c"):  # L2A, MSIL2A, S2MSI2A (not the platform's S2A)
        if level in text or f"msi{level[1:]}" in text:
            return level
    return "?"


def _mtl_asset(item: Any, json: Path) -> tuple[Path | None, str]:
    """A Landsat Item's local MTL file (its ``mtl.txt`` / ``mtl.xml`` asset, or an asset whose href ends
    ``_MTL.txt`` / ``_MTL.xml``), and a description of what it lists otherwise."""
    remote = ""
    for key, a in item.assets.items():
        if key.lower() in ("mtl.txt", "mtl.xml") or re.search(r"_MTL\.(txt|xml)$", a.href, re.IGNORECASE):
            if is_remote_href(a.href):
                remote = f"lists it only remotely (asset {key!r}: {a.href})"
                continue
            p = local_href(a.href, json)
            if p.is_file():
                return p, ""
            remote = f"lists it as {p}, which is not there (asset {key!r})"
    return None, remote or "lists no MTL asset"


def _radiometry(item: Any, json: Path, chosen: Sequence[_Asset]) -> ItemRadiometry:
    base = dict(json=json, item_id=item.id)
    level = _landsat_level(item)
    model = [a for a in chosen if a.band in MODEL_BANDS]
    if level == "L1":
        mtl, what = _mtl_asset(item, json)
        if mtl is not None:
            return ItemRadiometry(**base, mtl=mtl)
        return ItemRadiometry(
            **base,
            refusal=(
                f"STAC item {item.id} ({json}) is Landsat Collection 2 Level-1, whose TOA reflectance needs the "
                f"product's MTL file "
                f"(per-band coefficients and sun elevation), and it {what}: download the MTL beside the band files "
                f"and point the item's "
                f"mtl.txt asset at it (a path relative to the JSON works), or pass --sensor"
            ),
        )
    given = [a for a in model if a.scale is not None or a.offset is not None]
    if given and len(given) < len(model):
        missing = ", ".join(a.key for a in model if a not in given)
        return ItemRadiometry(
            **base,
            refusal=(
                f"STAC item {item.id} ({json}) gives raster:bands scale/offset for some bands but not for {missing}: "
                f"fix the item, or pass --sensor with the product's mapping"
            ),
        )
    if given:
        scale = tuple(1.0 if a.scale is None else float(a.scale) for a in chosen)
        offset = tuple(0.0 if a.offset is None else float(a.offset) for a in chosen)
        if not all(math.isfinite(v) for v in scale + offset) or any(s <= 0 for s in scale):
            return ItemRadiometry(
                **base,
                refusal=f"STAC item {item.id} ({json}) gives raster:bands scale {scale} offset {offset}: fix the "
                f"item, or pass --sensor",
            )
        return ItemRadiometry(**base, scale=scale, offset=offset)
    if level == "L2":
        mtl, _ = _mtl_asset(item, json)
        return ItemRadiometry(**base, mtl=mtl, sensor=None if mtl else "landsat_c2l2")
    if level == "?":
        return ItemRadiometry(
            **base,
            refusal=(
                f"STAC item {item.id} ({json}) is Landsat but says neither its processing level (landsat:correction) "
                f"nor its "
                f"reflectance scale (raster:bands): pass --sensor landsat_c2l2 for Collection 2 Level-2 surface "
                f"reflectance"
            ),
        )
    s2 = _sentinel2_level(item)
    pb = item.properties.get("s2:processing_baseline")
    if s2 is not None and pb is not None:
        try:
            baseline = float(pb)
        except (TypeError, ValueError):
            return ItemRadiometry(
                **base,
                refusal=f"STAC item {item.id} ({json}) gives s2:processing_baseline {pb!r}, not a number such as "
                f"'05.09': pass --sensor",
            )
        return ItemRadiometry(**base, sensor=sentinel2_name("l2a" if s2 == "l2a" else "l1c", baseline >= 4.0))
    return ItemRadiometry(**base)


def sentinel2_name(level: str, pb04: bool) -> str:
    """The sensor mapping of Sentinel-2 ``level`` (``l1c`` / ``l2a``) data with (``pb04``: processing
    baseline 04.00 and later, -1000 DN) or without the radiometric offset; shared by the SAFE metadata
    and STAC ``s2:processing_baseline`` readers."""
    if pb04:
        return f"sentinel2_{level}_pb04"
    return "sentinel2_toa" if level == "l1c" else "sentinel2_l2a"


@dataclass(frozen=True)
class ItemBands:
    """An Item's band files, as :func:`zoomplan.geo.products.bands.group_scene_inputs` makes a
    :class:`~zoomplan.geo.products.files.BandSet` of them: each file's band, the nodata its metadata gives, its
    radiometry."""

    files: tuple[Path, ...]
    labels: tuple[str, ...]
    nodata: tuple[float | None, ...]
    item: ItemRadiometry


def _band_set(item: Any, json: Path) -> ItemBands:
    assets = _assets(item)
    chosen: list[_Asset] = []
    for band in _NAMES:
        a = _choose(assets, band)
        if a is None:
            if band in MODEL_BANDS:
                have = ", ".join(item.assets) or "none"
                raise InputError(
                    f"STAC item {item.id} ({json}) has no asset for {band} (assets: {have}): it needs one asset per "
                    f"band, keyed "
                    f"red/green/blue or B04/B03/B02, or with eo:bands common_name; pass an item with per-band assets"
                )
            continue
        if is_remote_href(a.href):
            if band not in MODEL_BANDS:
                log.info(
                    "STAC item %s: asset %r (%s) is remote; left out (the model does not read it)", item.id, a.key, band
                )
                continue
            raise InputError(
                f"asset {a.key!r} of STAC item {item.id} ({json}) is remote ({a.href}): zoomplan reads local files "
                f"only; "
                f"download it and set the asset's href to the local file (a path relative to the JSON works)"
            )
        p = local_href(a.href, json)
        if not p.is_file():
            raise InputError(
                f"asset {a.key!r} of STAC item {item.id} ({json}) points at {p}, which is not there: download it "
                f"there, or fix the href"
            )
        chosen.append(_Asset(a.key, "nir" if a.band == "nir08" else a.band, str(p), a.scale, a.offset, a.nodata))
    meta = dataclasses.replace(_radiometry(item, json, chosen), **mask_asset(item, json))
    return ItemBands(
        tuple(Path(a.href) for a in chosen),
        labels=tuple(str(a.band) for a in chosen),
        nodata=tuple(a.nodata for a in chosen),
        item=meta,
    )


def stac_band_sets(path: Path) -> list[ItemBands]:
    """The scenes of the STAC Item or ItemCollection JSON at ``path``: the band files of each Item
    (:class:`ItemBands`), an ItemCollection's in overlap order (module docstring).

    Raises :class:`InputError` (one line) for JSON that is not a STAC Item / ItemCollection, a missing
    band asset, a remote or missing file."""
    items, many = _items(path)
    try:
        sets = [_band_set(it, path) for it in items]
    except _MALFORMED as exc:  # e.g. eo:bands that is not a list of objects
        raise _malformed(path, "Item", exc) from exc
    if not many:
        return sets
    return [sets[i] for i in overlap_order(path, items)]
