"""The summary of a plan (:func:`zoomplan.plan.pipeline.plan`): the order GeoJSON's top-level record.

JSON-ready: the AOI and its features, the planning CRS and grid, tiles and patches planned and
selected, the bill against the baseline, the model and the scenes used, and the parameters. Areas
are km^2, money USD, lengths metres.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from zoomplan.geo.aoi import AOI
from zoomplan.geo.grid import PlanGrid
from zoomplan.geo.scene import Scene
from zoomplan.models.checkpoint import Checkpoint
from zoomplan.plan.inference.infer import InferenceStats
from zoomplan.plan.inputs import crs_tag, file_sha256
from zoomplan.plan.types import PatchTable


def plan_summary(
    *,
    aoi: AOI,
    aoi_path: str | os.PathLike[str],
    table: PatchTable,
    selected: np.ndarray,
    stats: InferenceStats,
    covered: float,
    ckpt: Checkpoint,
    scenes: Sequence[Scene],
    crs: Any,
    crs_why: str,
    grid: PlanGrid,
    costs: dict[str, Any],
    version: str,
    params: dict[str, Any],
) -> dict[str, Any]:
    """The order's top-level summary (JSON-ready): areas km^2, money USD, lengths metres."""
    n = len(table)
    n_sel = int(selected.sum())
    per_total = np.bincount(table.aoi_index, minlength=len(aoi)) if n else np.zeros(len(aoi), dtype=int)
    per_sel = np.bincount(table.aoi_index[selected], minlength=len(aoi)) if n else np.zeros(len(aoi), dtype=int)
    features = [
        {"id": fid, "name": name, "area_km2": round(area, 6), "patches_total": int(t), "patches_selected": int(s)}
        for fid, name, area, t, s in zip(aoi.ids, aoi.names, aoi.area_km2(), per_total, per_sel)
    ]
    card = ckpt.card
    return {
        "zoomplan_version": version,
        "aoi_source": Path(aoi_path).name,
        "aoi_km2": round(float(aoi.union().area) / 1e6, 6),
        "aoi_covered_fraction": round(covered, 4),
        "aoi_features": features,
        "planning_crs": crs_tag(crs),
        "planning_crs_reason": crs_why,
        "tile_m": grid.tile_m,
        "patch_m": grid.patch_m,
        "tiles": {
            "total": stats.tiles_total,
            "planned": stats.tiles_planned,
            "skipped_nodata": stats.tiles_nodata,
            "outside_scenes": stats.tiles_outside,
        },
        "patches_total": n,
        "patches_selected": n_sel,
        "fraction_selected": round(n_sel / n, 6) if n else 0.0,
        **costs,
        "model": {
            "id": f"{ckpt.path.stem}-{file_sha256(ckpt.path)[:12]}",
            "file": ckpt.path.name,
            "policy_stage": ckpt.deploy_stage,
            "card": card.to_dict(),
        },
        "scenes": [
            {
                "id": s.scene_id,
                "crs": crs_tag(s.crs),
                "pixel_size": list(s.res),
                "bands": list(s.band_labels),
                "sensor": s.sensor.name,
                "resampled": s.scene_id in stats.resampled_scenes,
                "tiles": stats.tiles_by_scene.get(s.scene_id, 0),
            }
            for s in scenes
        ],
        "parameters": params,
    }
