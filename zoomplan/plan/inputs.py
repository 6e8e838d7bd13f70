"""What a plan checks and opens before it computes anything, and how its outputs are put in place.

Parameters and output targets (:func:`check_params`, :func:`check_outputs`), the AOI and scenes with
their cloud masks opened and checked, the planning CRS and grid, the AOI x scene overlap
(:func:`open_plan_inputs`), and :class:`Staging` (outputs written beside their targets, renamed into
place together). :func:`zoomplan.plan.pipeline.plan`, :func:`zoomplan.plan.budget.budget.budget` and
:func:`zoomplan.plan.audit.audit.audit` share them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import shapely

from zoomplan.errors import ConfigError, GeometryError, InputError
from zoomplan.geo.aoi import AOI, read_aoi
from zoomplan.geo.grid import PlanGrid, planning_crs
from zoomplan.geo.products.bands import group_scene_inputs
from zoomplan.geo.products.clouds import find_cloud_mask, mask_footprint, open_cloud_mask, split_mask_files
from zoomplan.geo.scene import Scene, open_scene
from zoomplan.geo.sensors import sensor_names
from zoomplan.geo.values import ValueCheck, check_scene_values
from zoomplan.models.checkpoint import Checkpoint
from zoomplan.plan.types import PathLike

log = logging.getLogger(__name__)


def crs_tag(crs: Any) -> str:
    """``EPSG:n`` of a CRS, or its WKT when it has no EPSG code (as the outputs record it)."""
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.to_wkt()


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks (model digests in summaries and audits)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def resolve_threshold(threshold: float | None, budget_usd: float | None, max_fraction: float | None) -> float:
    """The threshold in force: as given; else 0 when a budget or a fraction ranks the whole AOI; else
    the paper's test-time rule, 0.5."""
    if threshold is not None:
        return float(threshold)
    return 0.0 if (budget_usd is not None or max_fraction is not None) else 0.5


def check_params(threshold: float, budget_usd: float | None, max_fraction: float | None) -> None:
    if not threshold >= 0.0:  # also rejects NaN; above 1 is allowed and buys nothing
        raise ConfigError(
            f"--threshold {threshold} is negative: pass a probability such as 0.5 (0 buys every patch, above 1 none)"
        )
    if budget_usd is not None and not budget_usd > 0:
        raise ConfigError(
            f"--budget {budget_usd} USD is not positive: pass the most you want to spend, e.g. --budget 500"
        )
    if max_fraction is not None and not (0.0 < max_fraction <= 1.0):
        raise ConfigError(
            f"--max-fraction {max_fraction} is outside (0, 1]: pass the largest share of patches to buy, e.g. 0.3"
        )


def check_outputs(outputs: dict[str, PathLike | None]) -> dict[str, Path | str]:
    """Validate output targets before any work: distinct, not folders, parents not files."""
    seen: dict[str, str] = {}
    out: dict[str, Path | str] = {}
    for opt, target in outputs.items():
        if target is None:
            continue
        if str(target) == "-":
            if opt != "--out":
                raise ConfigError(f"{opt} cannot be '-': only --out writes to stdout; pass a file path")
            out[opt] = "-"
            continue
        p = Path(target)
        if p.is_dir():
            raise ConfigError(f"{opt} {p} is a folder: pass a file path such as {p / 'order.geojson'}")
        parent = next((a for a in [p.parent, *p.parent.parents] if a.exists()), None)
        if parent is not None and not parent.is_dir():
            raise ConfigError(f"{opt} {p}: {parent} is a file, not a folder: choose another output path")
        key = str(p.resolve())
        if key in seen:
            raise ConfigError(f"{opt} and {seen[key]} both write {p}: give each output its own path")
        seen[key] = opt
        out[opt] = p
    ql = out.get("--quicklook")
    if isinstance(ql, Path) and ql.suffix.lower() != ".png":
        raise ConfigError(f"--quicklook {ql} must end in .png: e.g. --quicklook order.png")
    return out


class Staging:
    """Outputs written first to hidden files beside their targets, renamed into place together."""

    def __init__(self) -> None:
        self._items: list[tuple[Path, Path, Path]] = []

    def path(self, final: Path) -> Path:
        final.parent.mkdir(parents=True, exist_ok=True)
        d = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".zoomplan", dir=final.parent))
        staged = d / final.name
        self._items.append((staged, final, d))
        return staged

    def commit(self) -> list[str]:
        for staged, _, _ in self._items:
            if not staged.is_file():
                raise RuntimeError(f"output {staged.name} was not written by its writer")
        done = []
        for staged, final, d in self._items:
            os.replace(staged, final)
            shutil.rmtree(d, ignore_errors=True)
            done.append(str(final))
        self._items.clear()
        return done

    def abort(self) -> None:
        for _, _, d in self._items:
            shutil.rmtree(d, ignore_errors=True)
        self._items.clear()


def _open_inputs(
    aoi_path: PathLike,
    scene_paths: Sequence[PathLike],
    ckpt: Checkpoint,
    bands: Sequence[str] | None,
    sensor: str | None,
    cloud_masks: Sequence[PathLike] = (),
) -> tuple[AOI, list[Scene]]:
    aoi = read_aoi(aoi_path)
    groups = group_scene_inputs(scene_paths)  # band files: one scene
    if len(cloud_masks) > len(groups):
        raise InputError(
            f"--cloud-mask is given {len(cloud_masks)} times for {len(groups)} scene(s): pass at most one mask per "
            f"scene, "
            f"in the order of the scenes (the band files of one product are one scene)"
        )
    scenes = []
    for k, inp in enumerate(groups):
        inp, listed = split_mask_files(inp)  # SCL / QA_PIXEL files given among the band files
        s = open_scene(inp, ckpt.card, bands=bands, sensor=sensor)
        mask = (
            open_cloud_mask(cloud_masks[k], like=s.path) if k < len(cloud_masks) else (listed or find_cloud_mask(inp))
        )
        if mask is not None:
            log.info("scene %s: cloud mask %s", s.scene_id, mask.describe())
            s = dataclasses.replace(s, cloud_mask=mask)
        scenes.append(s)
    ids = [s.scene_id for s in scenes]
    if len(set(ids)) != len(ids):
        raise InputError(f"--lr lists the same scene name twice ({', '.join(ids)}): pass each scene once")
    return aoi, scenes


def _overlap(aoi: AOI, scenes: Sequence[Scene], grid: PlanGrid) -> tuple[list[Scene], float, Any]:
    """Scenes overlapping the AOI (planning CRS), the fraction of AOI area they cover, and the union of their
    footprints."""
    union = aoi.union()
    used: list[Scene] = []
    cover = []
    for s in scenes:
        fp = s.footprint(grid.crs)
        if fp.intersection(union).area > 0:
            used.append(s)
            cover.append(fp)
        else:
            log.warning("scene %s does not overlap the AOI; ignored", s.scene_id)
    if not used:
        lon, lat = aoi.centroid_lonlat()
        names = ", ".join(str(s.path) for s in scenes)
        raise GeometryError(
            f"AOI {aoi.source} (centred at {lon:.4f}, {lat:.4f}) lies outside every scene ({names}): pass --lr scenes "
            f"that cover the AOI, or an AOI inside them"
        )
    footprint = shapely.union_all(np.asarray(cover, dtype=object))
    frac = float(footprint.intersection(union).area / union.area) if union.area > 0 else 0.0
    if frac < 0.999:
        log.warning(
            "%.1f%% of the AOI lies outside the scenes: it is neither planned nor priced (orders and baseline cover "
            "the part inside them)",
            100 * (1 - frac),
        )
    return used, frac, footprint


def inside_scenes(geoms: Sequence[Any], cover: Any) -> list[Any]:
    """Each AOI feature (planning CRS) cut to the scenes' footprint ``cover``: the area a plan can decide on,
    which its orders and its baseline price. Features wholly inside are returned unchanged (the same
    objects); a feature wholly outside becomes an empty Polygon (index kept)."""
    if cover is None:
        return list(geoms)
    out = []
    for g in geoms:
        if cover.contains(g):
            out.append(g)
            continue
        cut = shapely.make_valid(g.intersection(cover))
        polys = [p for p in getattr(cut, "geoms", [cut]) if p.geom_type in ("Polygon", "MultiPolygon") and p.area > 0]
        out.append(shapely.union_all(polys) if polys else shapely.Polygon())
    return out


@dataclass(frozen=True)
class PlanInputs:
    """Steps 2-3 of :func:`plan`: the AOI in the planning CRS, the scenes, the planning grid.

    ``scenes``: every scene opened, in the order given; ``used``: those overlapping the AOI;
    ``covered``: fraction of the AOI's area inside them; ``cover``: the union of their footprints (planning
    CRS); ``crs``: the planning CRS (projected, metres) and ``crs_reason`` why it was chosen.
    """

    aoi: AOI
    scenes: list[Scene]
    used: list[Scene]
    covered: float
    crs: Any
    crs_reason: str
    grid: PlanGrid
    cover: Any = None
    value_checks: tuple[ValueCheck, ...] = ()


def open_plan_inputs(
    aoi_path: PathLike,
    scene_paths: Sequence[PathLike],
    ckpt: Checkpoint,
    *,
    bands: Sequence[str] | None = None,
    sensor: str | None = None,
    force: bool = False,
    cloud_masks: Sequence[PathLike] = (),
) -> PlanInputs:
    """Read and check the AOI and scenes, choose the planning CRS and grid, reproject the AOI (as :func:`plan`).

    Raises :class:`~zoomplan.errors.ZoomplanError` subclasses (one line) for unreadable input, an AOI
    outside every scene, missing bands, values that look like garbage (:func:`~zoomplan.geo.values.check_scene_values`,
    unless ``force``), a ``--cloud-mask`` (``cloud_masks``, the k-th for the k-th scene) that is unreadable, not
    georeferenced or off its scene over the AOI; nothing is inferred or written.
    """
    aoi_src, all_scenes = _open_inputs(aoi_path, scene_paths, ckpt, bands, sensor, cloud_masks)
    lon, lat = aoi_src.centroid_lonlat()
    crs, why = planning_crs(all_scenes[0].crs, lon, lat)
    log.info("planning in %s (%s)", crs_tag(crs), why)
    grid = PlanGrid.from_card(crs, ckpt.card)
    aoi = aoi_src.to_crs(crs)
    used, covered, cover = _overlap(aoi, all_scenes, grid)
    for s in used:
        _check_mask_overlap(s, aoi, crs)
    full, names = grid.tile_range(aoi.union().bounds), sensor_names(ckpt.card)
    checks = tuple(
        check_scene_values(
            s, grid, grid.tile_range(s.footprint(crs).bounds).intersection(full), force=force, sensors=names
        )
        for s in used
    )
    return PlanInputs(
        aoi=aoi,
        scenes=all_scenes,
        used=used,
        covered=covered,
        crs=crs,
        crs_reason=why,
        grid=grid,
        cover=cover,
        value_checks=checks,
    )


def _check_mask_overlap(scene: Scene, aoi: AOI, crs: Any) -> None:
    """A user's cloud mask must cover some of its scene over the AOI (else it is another scene's, or misplaced)."""
    m = scene.cloud_mask
    if m is None or not m.given:
        return
    where = scene.footprint(crs).intersection(aoi.union())
    fp = mask_footprint(m, crs)
    if fp.intersection(where).area <= 0:
        lon, lat = aoi.centroid_lonlat()
        raise GeometryError(
            f"--cloud-mask {m.path} does not overlap scene {scene.scene_id} over the AOI (centred at {lon:.4f}, "
            f"{lat:.4f}): "
            f"pass the mask made for that scene (the k-th --cloud-mask goes with the k-th scene)"
        )
