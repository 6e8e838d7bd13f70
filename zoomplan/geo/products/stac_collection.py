"""The order of a STAC ItemCollection's Items (issue 18): the overlap order of :mod:`zoomplan.geo.scenelist`
(least ``eo:cloud_cover`` first, then the most recent, then the order written; each tile from the first
scene with valid data), and the rule as the plan's summary states it."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

from zoomplan.geo.products.files import is_stac_json
from zoomplan.geo.scenelist import RULE, SceneEntry, order_scenes


def overlap_order(path: Path, items: Sequence[Any]) -> list[int]:
    """Indexes of ``items`` (pystac Items of the ItemCollection at ``path``) in overlap order."""
    entries = [SceneEntry(path, _cloud(it), it.datetime) for it in items]
    pos = {id(e): i for i, e in enumerate(entries)}
    ordered, _ = order_scenes(entries)
    return [pos[id(e)] for e in ordered]


def _cloud(item: Any) -> float | None:
    v = item.properties.get("eo:cloud_cover")
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None


def item_collection_rule(paths: Sequence[Path]) -> str | None:
    """How the Items of ItemCollections among ``--lr paths`` are ordered (stated in the plan's summary), or None."""
    import pystac

    for p in paths:
        if is_stac_json(Path(p)):
            try:
                d = pystac.StacIO.default().read_json(str(p))
            except (OSError, ValueError):
                continue  # refused, with the reason, when read as a scene
            if isinstance(d, dict) and d.get("type") == "FeatureCollection" and len(d.get("features") or []) > 1:
                return f"--lr scenes in the order given; the Items of a STAC ItemCollection: {RULE}"
    return None
