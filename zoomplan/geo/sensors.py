"""Planner-side sensor mappings that work with any checkpoint (``configs/sensors.toml``).

A model card carries the mappings it was calibrated with (e.g. ``sentinel2_toa``: reflectance x 10000
onto the model's [0, 1] input, and ``rgb8``). Products deliver reflectance in other encodings
(Sentinel-2 processing baseline 04.00's -1000 offset, Landsat Collection 2 scale and offset, floats in
0..1). A planner sensor says how its raw values become reflectance, ``rho = raw * a + b`` (``a``, ``b``
one number or one per band), and reuses the card's *display* mapping ``unit = (rho + o) * g``; together
they are one :class:`~zoomplan.models.card.SensorMapping`::

    unit = clip((raw * a + b + o) * g, 0, 1)

Per-band scales (Landsat Level-1 coefficients from the MTL) are folded into the gain: with a common
scale ``a0``, ``unit = g a_k / a0 * (raw * a0 + (b_k + o_k) * a0 / a_k)``, exactly.
"""

from __future__ import annotations

import tomllib
from importlib.resources import files
from typing import Any, Mapping

from zoomplan.errors import InputError
from zoomplan.models.card import ModelCard, SensorMapping


def _per_band(v: float | tuple[float, ...], n: int) -> tuple[float, ...]:
    return tuple(float(x) for x in v) if isinstance(v, tuple) else (float(v),) * n


def compose(
    display: SensorMapping,
    name: str,
    scale: float | tuple[float, ...],
    offset: float | tuple[float, ...],
    note: str = "",
) -> SensorMapping:
    """The mapping ``raw -> clip((raw * scale + offset + display.offset) * display.gain, 0, 1)`` (reflectance
    ``raw * scale + offset`` through ``display``), with ``display``'s bands and aliases."""
    n = len(display.bands)
    a, b = _per_band(scale, n), _per_band(offset, n)
    o, g = _per_band(display.offset, n), _per_band(display.gain, n)
    a0 = a[0]
    off = tuple((bk + ok) * a0 / ak for ak, bk, ok in zip(a, b, o))
    gain = tuple(gk * ak / a0 for ak, gk in zip(a, g))
    return SensorMapping(
        name=name,
        scale=a0,
        offset=off,
        gain=gain,
        bands=display.bands,
        band_aliases=display.band_aliases,
        note=note or display.note,
    )


def _display(card: ModelCard, name: str, who: str, fix: str) -> SensorMapping:
    """The card's mapping ``name`` that a planner sensor reuses; else :class:`InputError`: ``who`` the
    model card's mapping, which it lacks, and ``fix``."""
    for s in card.lr_sensors:
        if s.name == name:
            return s
    have = ", ".join(s.name for s in card.lr_sensors) or "none"
    raise InputError(f"{who} the model card's {name!r} mapping, which this model lacks (it has {have}): {fix}")


def planner_sensor_table() -> dict[str, Mapping[str, Any]]:
    """The packaged ``configs/sensors.toml`` definitions, by name (read on each call)."""
    text = (files("zoomplan.configs") / "sensors.toml").read_text(encoding="utf-8")
    return dict(tomllib.loads(text).get("sensor", {}))


def planner_sensor(card: ModelCard, name: str) -> SensorMapping | None:
    """The planner sensor ``name`` composed with the card's display mapping; None if no such sensor.

    Raises :class:`InputError` when the card lacks the display mapping the sensor reuses."""
    d = planner_sensor_table().get(name)
    if d is None:
        return None
    display = _display(card, d["display"], f"--sensor {name} reuses", "pass one of those")
    off = d.get("offset", 0.0)
    return compose(
        display, name, float(d["scale"]), tuple(off) if isinstance(off, list) else float(off), str(d.get("note", ""))
    )


def sensor_names(card: ModelCard) -> list[str]:
    """Every ``--sensor`` a plan with ``card`` accepts: the card's mappings, then the planner's that fit it."""
    own = [s.name for s in card.lr_sensors]
    return own + [n for n, d in planner_sensor_table().items() if d.get("display") in own and n not in own]


def landsat_mtl_sensor(card: ModelCard, mtl: Any) -> SensorMapping:
    """The mapping a Landsat Collection 2 product's MTL file calls for
    (:func:`zoomplan.geo.products.landsat.landsat_reflectance`,
    per band) composed with the card's ``sentinel2_toa`` display mapping (TOA reflectance onto the model's input).

    Raises :class:`InputError` when the card lacks that mapping or the MTL lacks a key."""
    from zoomplan.geo.products.landsat import landsat_reflectance

    display = _display(
        card,
        "sentinel2_toa",
        f"Landsat scene {mtl}: its reflectance is read through",
        "pass --sensor with one of those",
    )
    name, scale, offset, note = landsat_reflectance(mtl, display.bands)
    return compose(display, name, scale, offset, note)


def band_set_sensor(card: ModelCard, bs: Any) -> tuple[SensorMapping | None, str | None]:
    """What a :class:`~zoomplan.geo.products.files.BandSet`'s metadata calls for when no ``--sensor`` is given:
    a mapping (STAC ``raster:bands`` scale/offset, a Landsat MTL, per band) or a sensor name (a STAC
    Item's ``s2:processing_baseline`` or Landsat Level-2; a SAFE product's ``MTD_MSI*.xml``), else
    (None, None): by data type.

    Raises :class:`InputError` with the fix when the metadata say the scene cannot be mapped without
    more (Landsat Level-1 without its MTL; Landsat band files without one; inconsistent STAC metadata)."""
    from zoomplan.geo.products.bands import sentinel2_sensor
    from zoomplan.geo.products.files import is_landsat
    from zoomplan.geo.products.landsat import landsat_mtl, landsat_without_mtl

    item = bs.item
    if item is not None:
        if item.refusal:
            raise InputError(item.refusal)
        if item.scale:
            display = _display(
                card,
                "sentinel2_toa",
                f"STAC item {item.item_id}: its raster:bands reflectance is read through",
                "pass --sensor with one of those",
            )
            k = {b: i for i, b in enumerate(bs.labels)}
            scale = tuple(item.scale[k[b]] for b in display.bands)
            offset = tuple(item.offset[k[b]] for b in display.bands)
            return compose(
                display,
                "stac_raster_bands",
                scale,
                offset,
                f"reflectance = DN * scale + offset from the STAC item's raster:bands ({item.json.name})",
            ), None
        if item.mtl is not None:
            return landsat_mtl_sensor(card, item.mtl), None
        return None, item.sensor
    mtl = landsat_mtl(bs)
    if mtl is not None:
        return landsat_mtl_sensor(card, mtl), None  # Landsat C2: per-band DN -> reflectance from the MTL
    if any(is_landsat(f) for f in bs.files):
        raise InputError(landsat_without_mtl(bs))
    return None, sentinel2_sensor(bs)
