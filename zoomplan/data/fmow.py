"""fMoW-rgb reader, as published (Christie et al., CVPR 2018), with the fMoW baseline's context crops.

Layout read (``root`` is the folder that holds the splits)::

    {train,val}/<category>/<category>_<loc>/<category>_<loc>_<view>_rgb.{jpg,json}
    test/<7-digit id>/<id>_<view>_rgb.{jpg,json}        (no category: label -1)

``*_msrgb.*`` siblings are ignored. One sample per usable bounding box; a box is ``[x, y, w, h]`` in
pixels of the full image. Each sample is cropped with context (:func:`context_box`) and resized to a
square ``size`` x ``size`` pixels, as the fMoW baseline (and PatchDrop, which follows it) does.

Scanning 350k JSON files takes minutes, so the index is cached once per split as JSON (written
atomically) and reused while the split folder's top-level listing (names and modification times)
is unchanged.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from zoomplan.atomic import write_text_atomic
from zoomplan.errors import DatasetError

log = logging.getLogger(__name__)

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

_LABEL_OF = {name: i for i, name in enumerate(FMOW_CLASSES)}
LABELLED_SPLITS = ("train", "val")
UNLABELLED_SPLITS = ("test",)
INDEX_VERSION = 1
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


@dataclass(frozen=True, slots=True)
class FmowSample:
    """One usable box of one image. ``box`` is ``(x, y, w, h)`` in pixels; ``gsd`` in metres per
    pixel (None when absent); ``label`` is the index in :data:`FMOW_CLASSES`, -1 for the unlabelled
    test split (then ``category`` is "")."""

    image_path: str
    box: tuple[int, int, int, int]
    label: int
    gsd: float | None
    visible: bool
    category: str

    @property
    def json_path(self) -> str:
        """The metadata JSON beside the image."""
        return os.path.splitext(self.image_path)[0] + ".json"


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
            if category not in _LABEL_OF:
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


def listing_fingerprint(split_dir: Path) -> str:
    """A cheap fingerprint of a split folder: its entries' names and modification times (ns).

    Adding or removing a category, a location or a test id changes it; a change deeper in the tree
    that leaves these directory times alone does not (delete the index cache to force a rescan).
    """
    h = hashlib.sha256()
    with os.scandir(split_dir) as it:
        entries = sorted((e.name, e.stat().st_mtime_ns) for e in it if not e.name.startswith("."))
    for name, mtime in entries:
        h.update(f"{name}\t{mtime}\n".encode())
    return h.hexdigest()


def _user_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "zoomplan"


def _dir_writable(path: Path) -> bool:
    return os.access(path, os.W_OK)


def index_cache_candidates(root: Path, split: str) -> list[Path]:
    """Where the index of ``root/split`` is looked for, in order: beside the splits, then the user cache."""
    key = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
    return [root / f".zoomplan-index-{split}.json", _user_cache_dir() / f"fmow-index-{key}-{split}.json"]


def _read_cache(path: Path, split: str, fingerprint: str) -> tuple[list[list[Any]], dict[str, int]] | None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable fMoW index cache %s (%s); rebuilding it", path, exc)
        return None
    if not (isinstance(doc, dict) and doc.get("version") == INDEX_VERSION and doc.get("split") == split):
        log.info("fMoW index cache %s is from another version or split; rebuilding it", path)
        return None
    if doc.get("fingerprint") != fingerprint:
        log.info("fMoW %s listing changed since %s was written; rescanning", split, path)
        return None
    rows, counts = doc.get("rows"), doc.get("counts")
    if not isinstance(rows, list) or not isinstance(counts, dict):
        log.warning("ignoring malformed fMoW index cache %s; rebuilding it", path)
        return None
    return rows, counts


def _write_cache(
    paths: list[Path], root: Path, split: str, fingerprint: str, rows: list[list[Any]], counts: dict[str, int]
) -> Path | None:
    doc = {
        "format": "zoomplan-fmow-index",
        "version": INDEX_VERSION,
        "split": split,
        "root": str(root.resolve()),
        "fingerprint": fingerprint,
        "counts": counts,
        "columns": ["image", "box", "category", "gsd", "visible"],
        "rows": rows,
    }
    text = json.dumps(doc, separators=(",", ":"))
    for path in paths:
        if path.parent.exists() and not _dir_writable(path.parent):
            continue
        try:
            write_text_atomic(path, text)
        except OSError as exc:
            log.debug("cannot write fMoW index cache %s: %s", path, exc)
            continue
        log.info("wrote fMoW index cache %s (%d samples)", path, len(rows))
        return path
    log.warning(
        "could not write an fMoW index cache (tried %s); the tree will be rescanned next time",
        ", ".join(map(str, paths)),
    )
    return None


class FmowDataset(Dataset):
    """fMoW-rgb as a map-style dataset of ``(image, label)``.

    ``image`` is a ``torch.uint8`` RGB tensor (3, ``size``, ``size``): the box's context crop
    (:func:`context_box`) resized to ``size`` x ``size`` pixels (bilinear, antialiased). ``label``
    is the index of the category in :data:`FMOW_CLASSES` (pinned order).

    ``index_cache`` is the index file to read and write; by default ``<root>/.zoomplan-index-<split>.json``
    when ``root`` is writable, else one under ``~/.cache/zoomplan/`` (``$XDG_CACHE_HOME`` honoured).

    The test split has no categories: it raises :class:`DatasetError` unless ``allow_unlabelled``
    is True, and then every label is -1 (for inference only; train and evaluate on ``val``).
    ``visible_only`` keeps only boxes marked ``visible: "True"`` (default: all boxes, as published).

    Attributes: ``class_names`` (= :data:`FMOW_CLASSES`), ``samples`` (:class:`FmowSample` list),
    ``counts`` (JSON files read and what the scan skipped, by reason), ``index_path`` (the cache
    used, or None when none could be written).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str = "train",
        size: int = 224,
        index_cache: Path | None = None,
        *,
        allow_unlabelled: bool = False,
        visible_only: bool = False,
    ) -> None:
        self.root = Path(root).expanduser()
        self.split = split
        self.size = int(size)
        self.class_names: tuple[str, ...] = FMOW_CLASSES
        if not self.root.is_dir():
            raise DatasetError(
                f"fMoW root {self.root} does not exist or is not a folder; pass the folder that holds train/ and val/ of fMoW-rgb"
            )
        if split not in LABELLED_SPLITS + UNLABELLED_SPLITS:
            raise DatasetError(
                f"unknown fMoW split {split!r} under {self.root}; use one of {', '.join(LABELLED_SPLITS + UNLABELLED_SPLITS)}"
            )
        if split in UNLABELLED_SPLITS and not allow_unlabelled:
            raise DatasetError(
                f"fMoW split {split!r} at {self.root / split} has no labels (its JSON files carry no category); train and evaluate on --split val"
            )
        split_dir = self.root / split
        if not split_dir.is_dir():
            present = sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))
            raise DatasetError(
                f"fMoW split folder {split_dir} not found (found: {', '.join(present) or 'nothing'}); point root at the fMoW-rgb folder that holds {split}/"
            )
        rows, self.counts = self._load_index(split_dir, index_cache)
        samples = []
        for image, box, category, gsd, visible in rows:
            if visible_only and not visible:
                continue
            label = _LABEL_OF.get(category, -1)
            samples.append(
                FmowSample(
                    str(self.root / image),
                    tuple(box),
                    label,
                    gsd,  # type: ignore[arg-type]
                    bool(visible),
                    FMOW_CLASSES[label] if label >= 0 else "",
                )
            )
        if not samples:
            raise DatasetError(
                f"fMoW split {split_dir} has no usable samples ({self._counts_text()}); expected "
                f"<category>/<category>_<loc>/<category>_<loc>_<view>_rgb.json with boxes wider and taller than 2 px and a .jpg beside each"
            )
        self.samples: list[FmowSample] = samples
        if split in UNLABELLED_SPLITS:
            log.info(
                "fMoW %s: %d samples, all with label -1 (the test split carries no categories)", split, len(samples)
            )

    def _counts_text(self) -> str:
        return ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items()) if v) or "no JSON files"

    def _load_index(self, split_dir: Path, index_cache: Path | None) -> tuple[list[list[Any]], dict[str, int]]:
        fingerprint = listing_fingerprint(split_dir)
        candidates = [Path(index_cache)] if index_cache is not None else index_cache_candidates(self.root, self.split)
        for path in candidates:
            cached = _read_cache(path, self.split, fingerprint)
            if cached is not None:
                log.debug("reusing fMoW index cache %s", path)
                self.index_path: Path | None = path
                return cached
        log.info("indexing fMoW %s (reads every JSON once; cached afterwards)", split_dir)
        rows, counts = scan_split(self.root, self.split)
        self.index_path = _write_cache(candidates, self.root, self.split, fingerprint, rows, counts)
        return rows, counts

    @property
    def skipped(self) -> dict[str, int]:
        """What the scan dropped, by reason (JSON files or boxes)."""
        return {k: v for k, v in self.counts.items() if k != "json_files"}

    @property
    def labels(self) -> list[int]:
        """The label of every sample, in order (-1 for the test split)."""
        return [s.label for s in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def load_crop(self, sample: FmowSample) -> Image.Image:
        """Decode the sample's image and return its context crop resized to ``size`` px (PIL RGB)."""
        try:
            with Image.open(sample.image_path) as img:
                img.load()
                rgb = img.convert("RGB")
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            raise DatasetError(
                f"cannot read fMoW image {sample.image_path} ({exc}); re-download it, "
                f"or delete it and the index cache {self.index_path or 'for this split'}"
            ) from exc
        x0, y0, x1, y1 = context_box(sample.box, rgb.width, rgb.height)
        if x0 >= x1 or y0 >= y1:
            raise DatasetError(
                f"box {list(sample.box)} lies outside fMoW image {sample.image_path} ({rgb.width}x{rgb.height} px); "
                f"fix {sample.json_path} or delete it and the index cache"
            )
        return rgb.crop((x0, y0, x1, y1)).resize((self.size, self.size), Image.Resampling.BILINEAR)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        sample = self.samples[index]
        arr = np.asarray(self.load_crop(sample), dtype=np.uint8)
        return torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous(), sample.label
