"""Never plan on garbage: check the values a scene feeds the model before any inference.

:func:`check_scene_values` samples up to :data:`SAMPLE_TILES` tiles of a scene over the AOI, spread
evenly over the AOI's tile range inside the scene, reads them exactly as the planner will
(:class:`~zoomplan.geo.scene.GridReader`: windowed or warped reads on the planning grid), maps them
with the scene's sensor mapping and classifies each tile with enough valid data (at least
:data:`MIN_VALID` of its LR pixels):

- **saturated**: at least :data:`SATURATED_PIXELS` of its valid pixels are white (every model band
  mapped to at least ``1 - 0.5/255``) or black (every band at most ``0.5/255``): outside the [0, 1]
  range of the 8-bit display RGB the card was trained on, so the network sees a flat white or black
  chip whatever the ground holds (raw digital numbers read as reflectance, 16-bit data read as
  8-bit, reflectance in 0..1 read as x 10000);
- **constant**: no model band varies by :data:`CONSTANT_RANGE` (a quarter of one 8-bit grey level)
  or more across the tile (a fill value, a failed export).

When at least :data:`BAD_SHARE` of the sampled tiles are saturated or constant the plan stops with
one line naming the scene, the median raw value (what the values look like), and the fix (the
``--sensor`` to pass). ``force=True`` (``--force``) logs the same line as a warning and returns it,
so the caller records the override in the plan's summary. Measured on the real Sentinel-2 L1C scene
(docs/inputs.md): 0.5% of its 8 x 8 px tiles are saturated (bright sand and surf), none constant.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from zoomplan.errors import InputError
from zoomplan.geo.grid import PlanGrid, TileRange
from zoomplan.geo.scene import GridReader, Scene, to_unit

log = logging.getLogger(__name__)

SAMPLE_TILES = 256
"""Tiles read per scene for the check (a regular lattice over the AOI's tiles inside the scene)."""
MIN_VALID = 0.5
"""A sampled tile is classified when at least this fraction of its LR pixels is valid (the planner's rule)."""
SATURATED_PIXELS = 0.5
"""A tile is saturated when at least this share of its valid pixels is white or black in every model band."""
CONSTANT_RANGE = 0.25 / 255
"""A tile is constant when no model band varies by this much (unit values, [0, 1]) across it."""
BAD_SHARE = 0.5
"""The plan stops when at least this share of the sampled tiles is saturated or constant."""
_EDGE = 0.5 / 255


@dataclass(frozen=True)
class ValueCheck:
    """What the check found in one scene: tiles sampled (with data), saturated and constant among them,
    the median raw value over their valid pixels and model bands, and the one-line verdict
    (empty when the scene passed)."""

    scene_id: str
    sampled: int
    saturated: int
    constant: int
    median_raw: float
    message: str = ""
    white: int = 0
    """Saturated tiles that are mostly white (the others are mostly black)."""

    @property
    def bad_share(self) -> float:
        return (self.saturated + self.constant) / self.sampled if self.sampled else 0.0


class _RawReader(GridReader):
    map_values = False


def sample_ranges(extent: TileRange, n: int = SAMPLE_TILES) -> list[TileRange]:
    """Up to about ``n`` single-tile ranges on a regular lattice over ``extent`` (centred strides)."""
    if extent.empty:
        return []
    h, w = extent.shape
    step = max(1, math.ceil(math.sqrt(h * w / n)))
    rows = range(extent.r0 + min(step // 2, h - 1), extent.r1, step)
    cols = range(extent.c0 + min(step // 2, w - 1), extent.c1, step)
    return [TileRange(r, r + 1, c, c + 1) for r in rows for c in cols]


def check_scene_values(
    scene: Scene, grid: PlanGrid, extent: TileRange, *, force: bool = False, sensors: Sequence[str] = ()
) -> ValueCheck:
    """Sample ``scene`` over the tile range ``extent`` (planning grid) and judge the mapped values.

    ``sensors``: the ``--sensor`` names available, for the fix the message suggests. Raises
    :class:`InputError` (one line) when at least :data:`BAD_SHARE` of the sampled tiles are saturated
    or constant, unless ``force``: then the line is logged as a warning and returned in the result.
    """
    raws: list[np.ndarray] = []
    n_sat = n_white = n_const = 0
    with _RawReader(scene, grid, extent) as rd:
        for tr in sample_ranges(extent):
            raw, valid = rd.read(tr)
            if valid.mean() < MIN_VALID:
                continue
            px = raw[:, valid]  # (C, N) raw values of the valid pixels
            unit = to_unit(px, scene.sensor)
            white, black = np.all(unit >= 1 - _EDGE, axis=0), np.all(unit <= _EDGE, axis=0)
            if (white | black).mean() >= SATURATED_PIXELS:
                n_sat += 1
                n_white += int(white.sum() >= black.sum())
            elif np.all(unit.max(axis=1) - unit.min(axis=1) < CONSTANT_RANGE):
                n_const += 1
            raws.append(px)
    n = len(raws)
    med = float(np.median(np.concatenate(raws, axis=1))) if n else float("nan")
    chk = ValueCheck(scene.scene_id, n, n_sat, n_const, med, white=n_white)
    if not n or chk.bad_share < BAD_SHARE:
        return chk
    msg = verdict(scene, chk, sensors)
    if not force:
        raise InputError(msg + "; or pass --force to plan anyway")
    log.warning("--force: planning although %s", msg)
    return replace(chk, message=msg)


def _num(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"


def verdict(scene: Scene, chk: ValueCheck, sensors: Sequence[str] = ()) -> str:
    """The one-line diagnosis: the scene, the share of bad tiles, what the values look like, the fix."""
    s = scene.sensor
    med = chk.median_raw
    tone = "white" if 2 * chk.white >= chk.saturated else "black"
    kind = f"saturated ({tone})" if chk.saturated >= chk.constant else "constant"
    head = (
        f"scene {scene.path}: {100 * chk.bad_share:.0f}% of the {chk.sampled} tiles sampled are {kind} under the "
        f"{s.name!r} sensor mapping"
    )
    other = [n for n in sensors if n != s.name]
    reflectance = [n for n in other if n.startswith("sentinel2") or n.startswith("landsat")] or other
    if chk.constant > chk.saturated:
        what, fix = (
            f"median {_num(med)}, no pixel-to-pixel variation: the file holds no image",
            "pass the scene itself, not a fill or a failed export",
        )
    elif math.isclose(s.scale, 1 / 255, rel_tol=1e-3) and med > 255:
        bits = "16-bit" if scene.dtype in ("uint16", "int16") else scene.dtype
        what = f"median {_num(med)}: {bits} values, not 8-bit RGB"
        fix = f"pass --sensor {reflectance[0]}" if reflectance else "pass the --sensor of the product"
        fix += " (or leave --sensor out: integer scenes of more than 8 bits get it by default)"
    elif s.scale <= 1e-3 and med * s.scale > 0.5:
        what = f"median {_num(med)}: digital numbers, not reflectance x {1 / s.scale:,.0f}"
        fix = f"convert the scene to top-of-atmosphere reflectance x {1 / s.scale:,.0f}"
        if "landsat_c2l2" in sensors:
            fix += ", or pass --sensor landsat_c2l2 if it is Landsat Collection 2 Level-2 surface reflectance"
    elif s.scale <= 1e-3 and scene.dtype.startswith("float") and 0 < med * s.scale < 0.01 and med < 2:
        what = f"median {_num(med)}: reflectance in 0..1, not x {1 / s.scale:,.0f}"
        fix = "pass --sensor reflectance" if "reflectance" in sensors else f"multiply it by {1 / s.scale:,.0f}"
    else:
        what = f"median {_num(med)}"
        fix = (
            f"pass the --sensor of the product (one of {', '.join(sensors)})"
            if sensors
            else "pass the --sensor of the product"
        )
    return f"{head} ({what}): {fix}"
