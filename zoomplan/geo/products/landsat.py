"""Landsat 8/9 Collection 2 products: the MTL file beside the band files, and the conversion it gives
(:func:`landsat_reflectance`): Level-1 TOA reflectance ``(M * DN + A) / sin(SUN_ELEVATION)``, Level-2
(``L2SP``) surface reflectance ``DN * 0.0000275 - 0.2`` (the MTL's LEVEL2 coefficients when present).
Band files without their MTL are refused with the fix (:func:`landsat_without_mtl`).
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Sequence

from zoomplan.errors import InputError
from zoomplan.geo.products.files import LANDSAT_BANDS, BandSet, is_landsat


def landsat_mtl(bs: BandSet) -> Path | None:
    """The Landsat product's ``*_MTL.txt`` (else ``*_MTL.xml``) beside the set's files (or in its folder), else None."""
    if not any(is_landsat(f) for f in bs.files):
        return None
    dirs = [bs.root] if bs.root is not None else []
    dirs += [f.parent for f in bs.files]
    for d in dict.fromkeys(dirs):
        for ext in ("txt", "xml", "TXT", "XML"):
            found = sorted(d.glob(f"*_MTL.{ext}"))
            if found:
                return found[0]
    return None


def landsat_without_mtl(bs: BandSet) -> str:
    """The one-line refusal for Landsat band files that come without their product's MTL (no ``--sensor``)."""
    names = ", ".join(f.name for f in bs.files)
    m = re.match(r"^L[COTE]0[89]_(L[12])", bs.files[0].name, re.IGNORECASE)
    level = m.group(1).upper() if m else ""
    if level == "L1":
        return (
            f"Landsat Collection 2 Level-1 band files {names} come without their product's *_MTL.txt: TOA reflectance "
            f"needs its "
            f"per-band coefficients and sun elevation; put the MTL file from the same download beside them (the "
            f"product folder as downloaded holds it)"
        )
    return (
        f"Landsat band files {names} come without their product's *_MTL.txt: pass --sensor landsat_c2l2 for "
        f"Collection 2 Level-2 "
        f"surface reflectance (DN x 0.0000275 - 0.2), or put the MTL file from the same download beside them"
    )


def _mtl_groups(mtl: Path) -> dict[str, dict[str, str]]:
    """Group name -> key -> value of an MTL file (ODL text ``GROUP = ...`` / ``KEY = value``, or its XML form)."""
    groups: dict[str, dict[str, str]] = {}
    text = mtl.read_text(encoding="utf-8", errors="replace")
    if mtl.suffix.lower() == ".xml":
        try:
            root = ET.fromstring(text)
        except ET.ParseError as exc:
            raise InputError(
                f"Landsat metadata {mtl} is not well-formed XML ({exc}): re-download the product, or pass --sensor"
            ) from exc
        for g in root.iter():
            kids = [c for c in g if len(c) == 0]
            if kids:
                groups.setdefault(g.tag, {}).update({c.tag: (c.text or "").strip() for c in kids})
        return groups
    stack = [""]
    for line in text.splitlines():
        if "=" not in line:
            continue
        k, v = (x.strip() for x in line.split("=", 1))
        v = v.strip('"')
        if k == "GROUP":
            stack.append(v)
        elif k == "END_GROUP":
            if len(stack) > 1:
                stack.pop()
        else:
            groups.setdefault(stack[-1], {})[k] = v
    return groups


def landsat_reflectance(mtl: Path, bands: Sequence[str]) -> tuple[str, tuple[float, ...], tuple[float, ...], str]:
    """(name, scale, offset, note) turning each of ``bands`` (``red`` ...) of the product of ``mtl`` into
    reflectance ``DN * scale + offset``: Level-1 TOA ``(M * DN + A) / sin(SUN_ELEVATION)`` from the MTL,
    Level-2 (``L2SP``) surface reflectance from its LEVEL2 group (0.0000275 and -0.2 when absent).

    Raises :class:`InputError` when the MTL lacks a key the conversion needs."""
    groups = _mtl_groups(mtl)

    def find(key: str, level2: bool) -> str | None:
        for g, kv in groups.items():
            if key in kv and g.upper().startswith("LEVEL2") == level2:
                return kv[key]
        return None

    level = (find("PROCESSING_LEVEL", False) or "").upper()
    nums = [LANDSAT_BANDS[b] for b in bands]
    if level.startswith("L2"):
        scale = tuple(float(find(f"REFLECTANCE_MULT_BAND_{n}", True) or 2.75e-5) for n in nums)
        offset = tuple(float(find(f"REFLECTANCE_ADD_BAND_{n}", True) or -0.2) for n in nums)
        return (
            "landsat_c2l2_mtl",
            scale,
            offset,
            f"Landsat Collection 2 {level} surface reflectance = DN * scale + offset ({mtl.name})",
        )
    if level and not level.startswith("L1"):
        raise InputError(f"Landsat metadata {mtl} gives PROCESSING_LEVEL {level}, not L1* or L2SP: pass --sensor")
    try:
        elev = float(find("SUN_ELEVATION", False))  # type: ignore[arg-type]
        m = [float(find(f"REFLECTANCE_MULT_BAND_{n}", False)) for n in nums]  # type: ignore[arg-type]
        a = [float(find(f"REFLECTANCE_ADD_BAND_{n}", False)) for n in nums]  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"Landsat metadata {mtl} lacks SUN_ELEVATION or REFLECTANCE_MULT/ADD_BAND_{', '.join(map(str, nums))}: "
            f"re-download the product's MTL file, or pass --sensor"
        ) from exc
    if not 0 < elev <= 90:
        raise InputError(
            f"Landsat metadata {mtl} gives SUN_ELEVATION {elev}: a night scene has no reflectance to plan on"
        )
    s = math.sin(math.radians(elev))
    return (
        "landsat_c2l1_mtl",
        tuple(x / s for x in m),
        tuple(x / s for x in a),
        f"Landsat Collection 2 {level or 'L1'} TOA reflectance = (M * DN + A) / sin({elev} deg) ({mtl.name})",
    )
