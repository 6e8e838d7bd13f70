"""fMoW metadata: the pinned categories, the fMoW baseline's context crops, and the scan of a split's JSON files.

The dataset (:class:`zoomplan.data.fmow.FmowDataset`) and its index cache live in :mod:`zoomplan.data.fmow`,
which re-exports every public name here. Log records keep the logger name ``zoomplan.data.fmow``.
"""

from __future__ import annotations

import json
import logging
import os
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterator

log = logging.getLogger("zoomplan.data.fmow")  # the dataset's logger: one name for everything fMoW logs

FMOW_CLASSES: tuple[str, ...] = (
    "airport",
    "airport_hangar",
    "airport_terminal",
    "amusement_park",
    "aquaculture",
    "archaeological_site",
    "barn",
    "border_checkpoint",
    "burial_site",
    "car_dealership",
    "construction_site",
    "crop_field",
    "dam",
    "debris_or_rubble",
    "educational_institution",
    "electric_substation",
    "factory_or_powerplant",
    "fire_station",
    "flooded_road",
    "fountain",
    "gas_station",
    "golf_course",
    "ground_transportation_station",
    "helipad",
    "hospital",
    "impoverished_settlement",
    "interchange",
    "lake_or_pond",
    "lighthouse",
    "military_facility",
    "multi-unit_residential",
    "nuclear_powerplant",
    "office_building",
    "oil_or_gas_facility",
    "park",
    "parking_lot_or_garage",
    "place_of_worship",
    "police_station",
    "port",
    "prison",
    "race_track",
    "railway_bridge",
    "recreational_facility",
    "road_bridge",
    "runway",
    "shipyard",
    "shopping_mall",
    "single-unit_residential",
    "smokestack",
    "solar_farm",
    "space_facility",
    "stadium",
    "storage_tank",
    "surface_mine",
    "swimming_pool",
    "toll_booth",
    "tower",
    "tunnel_opening",
    "waste_disposal",
    "water_treatment_facility",
    "wind_farm",
    "zoo",
)
"""The 62 fMoW categories in PINNED alphabetical order: the label id of a category is its index here.

This order is part of every fMoW checkpoint's meaning; never reorder, insert or remove names.
(``false_detection``, a test-time pseudo-category of fMoW-full, is not a class.)
"""

LABEL_OF = {name: i for i, name in enumerate(FMOW_CLASSES)}
LABELLED_SPLITS = ("train", "val")
UNLABELLED_SPLITS = ("test",)
MIN_BOX_SIDE_PX = 3
"""Boxes with w <= 2 or h <= 2 pixels are skipped (the fMoW baseline's rule)."""

# (lower bound of box/image ratio, context multiplier), first match wins; exact fractions so that
# the thresholds and the buffers do not depend on float rounding.
_CONTEXT_STEPS: tuple[tuple[Fraction, Fraction], ...] = (
    (Fraction(1, 2), Fraction(3, 20)),
    (Fraction(2, 5), Fraction(1, 5)),
    (Fraction(3, 10), Fraction(3, 10)),
    (Fraction(1, 5), Fraction(1, 2)),
    (Fraction(1, 10), Fraction(1)),
    (Fraction(0), Fraction(2)),
)


def context_multiplier(box_px: int, image_px: int) -> Fraction:
    """Context added on one axis, as a multiple of the box size, from the box/image size ratio.

    Ratio >= 0.5 -> 0.15; [0.4, 0.5) -> 0.2; [0.3, 0.4) -> 0.3; [0.2, 0.3) -> 0.5; [0.1, 0.2) -> 1;
    < 0.1 -> 2 (fMoW baseline). Both sizes in pixels along the same axis.
    """
    if image_px <= 0:
        raise ValueError(f"image size must be positive, got {image_px} px")
    ratio = Fraction(int(box_px), int(image_px))
    for lower, mult in _CONTEXT_STEPS:
        if ratio >= lower:
            return mult
    return _CONTEXT_STEPS[-1][1]


def context_box(box_xywh: tuple[int, int, int, int] | list[int], img_w: int, img_h: int) -> tuple[int, int, int, int]:
    """The fMoW baseline's crop around a box, in pixels: ``(x0, y0, x1, y1)``, x1/y1 exclusive.

    Per axis, a buffer of ``floor(size * multiplier / 2)`` pixels is added on each side (multiplier
    from :func:`context_multiplier`), then the crop is clipped to the ``img_w`` x ``img_h`` image.
    The result may be empty (x0 >= x1 or y0 >= y1) when the box lies outside the image.
    """
    x, y, w, h = (int(round(float(v))) for v in box_xywh)
    bx = int(w * context_multiplier(w, img_w) / 2)
    by = int(h * context_multiplier(h, img_h) / 2)
    x0, x1 = max(0, x - bx), min(int(img_w), x + w + bx)
    y0, y1 = max(0, y - by), min(int(img_h), y + h + by)
    return x0, y0, x1, y1


def _as_bool(value: Any) -> bool:
    """fMoW writes ``visible`` as the string "True"/"False"; accept real booleans too."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value) if value is not None else True


def parse_boxes(
    meta: dict[str, Any], folder_category: str | None, counts: dict[str, int]
) -> list[tuple[list[int], str, bool]]:
    """Usable ``(box [x, y, w, h] px, category, visible)`` entries of one fMoW JSON document.

    ``bounding_boxes`` may be a list or a single dict. Boxes with w <= 2 or h <= 2 px, boxes whose
    context crop is empty and (for labelled splits) unknown categories are dropped and counted in
    ``counts``. The category comes from the box, else from ``folder_category``; ``folder_category``
    None means an unlabelled split (category "").
    """
    raw = meta.get("bounding_boxes") or []
    if isinstance(raw, dict):
        raw = [raw]
    img_w, img_h = meta.get("img_width"), meta.get("img_height")
    out: list[tuple[list[int], str, bool]] = []
    for bb in raw:
        box = bb.get("box") if isinstance(bb, dict) else None
        if not isinstance(box, (list, tuple)) or len(box) != 4:
            counts["malformed_boxes"] = counts.get("malformed_boxes", 0) + 1
            continue
        box = [int(round(float(v))) for v in box]
        if box[2] < MIN_BOX_SIDE_PX or box[3] < MIN_BOX_SIDE_PX:
            counts["tiny_boxes"] = counts.get("tiny_boxes", 0) + 1
            continue
        if img_w and img_h:
            x0, y0, x1, y1 = context_box(box, int(img_w), int(img_h))
            if x0 >= x1 or y0 >= y1:
                counts["boxes_outside_image"] = counts.get("boxes_outside_image", 0) + 1
                continue
        if folder_category is None:
            category = ""
        else:
            category = str(bb.get("category") or folder_category)
            if category not in LABEL_OF:
                counts["unknown_category"] = counts.get("unknown_category", 0) + 1
                continue
        out.append((box, category, _as_bool(bb.get("visible", True))))
    return out


def _rgb_jsons(split_dir: Path) -> Iterator[tuple[Path, bool]]:
    """Every ``*_rgb.json`` under ``split_dir`` in a stable order (``*_msrgb.json`` excluded), with
    whether its ``.jpg`` exists beside it (known from the folder listing, no extra stat)."""
    for dirpath, dirnames, filenames in os.walk(split_dir):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        names = set(filenames)
        for name in sorted(filenames):
            if name.endswith("_rgb.json"):
                yield Path(dirpath) / name, name[: -len(".json")] + ".jpg" in names


def scan_split(root: Path, split: str) -> tuple[list[list[Any]], dict[str, int]]:
    """Read every JSON of ``root/split`` once: index rows ``[image path relative to root, box,
    category, gsd (m), visible]`` and the counts of what was skipped. Logs a warning naming each of
    the first JSON files that had no usable box."""
    split_dir = root / split
    labelled = split not in UNLABELLED_SPLITS
    rows: list[list[Any]] = []
    counts: dict[str, int] = {"json_files": 0, "json_without_boxes": 0, "unreadable_json": 0, "missing_image": 0}
    warned = 0
    for i, (path, has_image) in enumerate(_rgb_jsons(split_dir)):
        if i and i % 20000 == 0:
            log.info("fMoW %s: indexed %d JSON files", split, i)
        if not has_image:
            counts["missing_image"] += 1
            log.debug("skipping %s: no .jpg beside it", path)
            continue
        counts["json_files"] += 1
        rel = path.relative_to(root)
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(meta, dict):
                raise ValueError("top level is not an object")
        except (OSError, ValueError) as exc:
            counts["unreadable_json"] += 1
            log.warning("skipping unreadable fMoW JSON %s: %s", path, exc)
            continue
        # rel = <split>/<category>/<category>_<loc>/<file> for labelled splits
        folder_category = (rel.parts[1] if len(rel.parts) >= 4 else "") if labelled else None
        boxes = parse_boxes(meta, folder_category, counts)
        if not boxes:
            counts["json_without_boxes"] += 1
            warned += 1
            if warned <= 20:
                log.warning("skipping %s: no usable bounding box (empty, all w/h <= 2 px, or unknown category)", path)
            elif warned == 21:
                log.warning("more fMoW JSON files without usable boxes; the total is logged at the end")
            continue
        gsd = meta.get("gsd")
        image_rel = rel.with_suffix(".jpg").as_posix()
        for box, category, visible in boxes:
            rows.append([image_rel, box, category, None if gsd is None else float(gsd), visible])
    if counts["json_without_boxes"]:
        log.warning("fMoW %s: %d JSON files had no usable box and were skipped", split, counts["json_without_boxes"])
    return rows, counts
