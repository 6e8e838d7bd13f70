"""Opening an LR scene: check it is readable and georeferenced, find the bands the model needs and the
sensor mapping of its values (:func:`open_scene`, imported from :mod:`zoomplan.geo.scene`).

Band rules (docs/inputs.md): ``--bands`` wins; else bands are found by their descriptions, then their
colour interpretation, and their order is never guessed (:func:`resolve_bands`); a band described ``SCL`` or
``QA_PIXEL`` is the
scene's cloud mask (:mod:`zoomplan.geo.products.clouds`), other mask bands are not used (with a warning naming
the fix). The sensor mapping comes from ``--sensor``, else the product's metadata, else the data type
(:func:`choose_sensor`).
"""

from __future__ import annotations

import logging
import math
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np
import rasterio
from pyproj import CRS
from rasterio.errors import RasterioError

from zoomplan.errors import InputError
from zoomplan.geo.scene_info import GDAL_ENV, Scene, first_line
from zoomplan.models.card import ModelCard, SensorMapping

if TYPE_CHECKING:
    from zoomplan.geo.products.files import BandSet

log = logging.getLogger(__name__)


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
    found = (
        ", ".join(
            f"{i + 1}={d!r}" if d else f"{i + 1}=({ci})" for i, (d, ci) in enumerate(zip(descriptions, colorinterp))
        )
        or "none"
    )

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
            raise InputError(
                f"--bands for {scene} lists {len(spec)} band(s) but the model needs {len(wanted)} "
                f"({', '.join(wanted)}): pass e.g. --bands {','.join(wanted)}"
            )
        out = []
        for item in spec:
            item = str(item).strip()
            if item.isdigit():
                k = int(item)
                if not 1 <= k <= count:
                    raise InputError(
                        f"--bands asks for band {k} of {scene}, which has bands 1..{count}: pick existing bands "
                        f"({found})"
                    )
                out.append(k)
            else:
                k2 = by_name(item)
                if k2 is None:
                    raise InputError(
                        f"--bands asks for band {item!r} but {scene} has no band described so (bands: {found}): pass "
                        f"band numbers, e.g. --bands 1,2,3"
                    )
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
    if (
        unlabelled and len(wanted) <= count <= len(wanted) + 1
    ):  # never guessed: red-green-blue and blue-green-red look alike
        raise InputError(
            f"{scene} does not say which band is which (no band descriptions, colour interpretation "
            f"{', '.join(colorinterp)}): pass --bands "
            f"with the {','.join(wanted)} band numbers, e.g. --bands 3,2,1 for a blue-green-red file, or record the "
            f"order in the file: "
            f"rio edit-info --colorinterp "
            f"{','.join(w if w in ('red', 'green', 'blue') else 'undefined' for w in wanted)}"
            f"{',undefined' * (count - len(wanted))} FILE"
        )
    raise InputError(
        f"{scene} has no band for {', '.join(missing)} (bands: {found}): pass --bands with {len(wanted)} band numbers "
        f"or names in the order {','.join(wanted)}"
    )


def choose_sensor(card: ModelCard, dtype: str, name: str | None = None, *, scene: str = "scene") -> SensorMapping:
    """The sensor mapping for a scene of ``dtype``: ``name`` if given (the card's, else a planner sensor of
    :mod:`zoomplan.geo.sensors`), else by data type.

    uint8 scenes use the mapping that scales by 1/255 (``rgb8``); integer scenes of more bits the first
    other mapping (``sentinel2_toa``: digital numbers x 1e-4). Floating-point scenes need ``name``.
    """
    if not card.lr_sensors:
        raise InputError(
            f"the model card lists no LR sensor mappings, so {scene} cannot be mapped to its input: use a checkpoint "
            f"whose card has lr_sensors"
        )
    known = ", ".join(s.name for s in card.lr_sensors)
    if name is not None:
        for s in card.lr_sensors:
            if s.name == name:
                return s
        from zoomplan.geo.sensors import planner_sensor, sensor_names

        found = planner_sensor(card, name)
        if found is None:
            raise InputError(
                f"unknown sensor mapping {name!r} for {scene}: pass --sensor with one of "
                f"{', '.join(sensor_names(card))}"
            )
        return found
    is8 = [s for s in card.lr_sensors if math.isclose(s.scale, 1 / 255, rel_tol=1e-3)]
    other = [s for s in card.lr_sensors if s not in is8]
    if dtype == "uint8" and is8:
        return is8[0]
    if np.issubdtype(np.dtype(dtype), np.integer) and dtype != "uint8" and other:
        return other[0]
    raise InputError(
        f"{scene} holds {dtype} values and no sensor mapping of the model fits that type by default: pass --sensor "
        f"with one of {known}"
    )


_MASK_WORDS = re.compile(r"(cloud|\bclm\b|\bscl\b|\bqa\w*|mask|opaque)", re.IGNORECASE)


def _warn_mask_bands(descriptions: Sequence[str | None], used: Sequence[int], path: Path) -> None:
    """Warn that cloud / quality mask bands (by description) are not used, except a band described ``SCL`` or
    ``QA_PIXEL``, which is the scene's cloud mask (:func:`zoomplan.geo.products.clouds.stack_mask_band`)."""
    from zoomplan.geo.products.clouds import stack_mask_band

    read = stack_mask_band(descriptions)
    masks = [
        (i + 1, d)
        for i, d in enumerate(descriptions)
        if d and (i + 1) not in used and _MASK_WORDS.search(d) and (read is None or read[0] != i + 1)
    ]
    if masks:
        k = masks[0][0]
        log.warning(
            "scene %s has mask band(s) %s that zoomplan does not use: its cloudy pixels count as clear unless the "
            "mask is given as "
            "--cloud-mask FILE (a one-band raster, nonzero = cloud or shadow), e.g. rio stack %s --bidx %d -o "
            "cloud_mask.tif",
            path,
            ", ".join(f"{i}={d!r}" for i, d in masks),
            path,
            k,
        )


def open_scene(
    path: "str | os.PathLike[str] | BandSet",
    card: ModelCard,
    *,
    bands: Sequence[str] | None = None,
    sensor: str | None = None,
) -> Scene:
    """Open and validate the LR scene at ``path`` (a raster file, a folder of band files or a
    :class:`~zoomplan.geo.products.files.BandSet`) for ``card``; no file handle is kept. ``sensor`` defaults to
    what a band set's product metadata says, else to the data type's mapping (:func:`choose_sensor`).

    Raises :class:`InputError` when the file is missing or unreadable, has no CRS or georeferencing, or
    lacks the bands the model needs.
    """
    from zoomplan.geo.products.bands import band_set_source, folder_band_set
    from zoomplan.geo.products.files import BandSet

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
        if (
            sensor is None
        ):  # product metadata: STAC raster:bands, Landsat MTL, Sentinel-2 baseline (an explicit --sensor wins)
            from zoomplan.geo.sensors import band_set_sensor

            meta_mapping, sensor = band_set_sensor(card, bset)
    try:
        with rasterio.Env(**GDAL_ENV), rasterio.open(source) as src:
            if src.crs is None:
                raise InputError(
                    f"scene {p} has no CRS: assign one (e.g. rio edit-info --crs EPSG:32618 {p}) or use the "
                    f"georeferenced product"
                )
            if src.transform.is_identity or src.transform.b != 0 or src.transform.d != 0:
                if src.transform.is_identity:
                    raise InputError(
                        f"scene {p} has no georeferencing: assign its pixel size and top-left corner (metres in its "
                        f"CRS), "
                        f"e.g. rio edit-info --transform '[10, 0, 440000, 0, -10, 4170000]' {p}"
                    )
                raise InputError(
                    f"scene {p} has a rotated geotransform: warp it to a north-up grid first (rio warp {p} "
                    f"{p.with_name(p.stem + '_north_up.tif')})"
                )
            s = meta_mapping or choose_sensor(card, src.dtypes[0], sensor, scene=f"scene {p}")
            try:
                idx = resolve_bands(
                    list(src.descriptions),
                    [c.name for c in src.colorinterp],
                    s.bands,
                    s.band_aliases,
                    bands,
                    scene=f"scene {p}",
                )
            except InputError as exc:
                if bset is None:
                    raise
                raise InputError(
                    f"band files {', '.join(f.name for f in bset.files)} hold "
                    f"{', '.join(d or '?' for d in src.descriptions)}, not {', '.join(s.bands)}: "
                    f"pass one file per band (repeat --lr, e.g. --lr B04.jp2 --lr B03.jp2 --lr B02.jp2) or the "
                    f"product's folder"
                ) from exc
            _warn_mask_bands(list(src.descriptions), idx, p)
            if len(idx) != len(card.lr_norm.mean):
                raise InputError(
                    f"scene {p}: the model needs {len(card.lr_norm.mean)} bands, the sensor mapping {s.name!r} names "
                    f"{len(idx)}: fix the model card"
                )
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
        raise InputError(
            f"scene {p} is not a raster GDAL can read ({first_line(exc)}): pass a GeoTIFF, COG or JP2"
        ) from exc
