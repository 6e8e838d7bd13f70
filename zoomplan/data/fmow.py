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

The categories, the context crops and the scan of the JSON files are in :mod:`zoomplan.data.fmow_meta`
(re-exported here); this module holds the dataset and its index cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from zoomplan.atomic import write_text_atomic
from zoomplan.data.fmow_meta import (
    FMOW_CLASSES,
    LABEL_OF,
    LABELLED_SPLITS,
    MIN_BOX_SIDE_PX,
    UNLABELLED_SPLITS,
    context_box,
    context_multiplier,
    parse_boxes,
    scan_split,
)
from zoomplan.errors import DatasetError

__all__ = [
    "FMOW_CLASSES",
    "INDEX_VERSION",
    "LABELLED_SPLITS",
    "MIN_BOX_SIDE_PX",
    "UNLABELLED_SPLITS",
    "FmowDataset",
    "FmowSample",
    "context_box",
    "context_multiplier",
    "index_cache_candidates",
    "listing_fingerprint",
    "parse_boxes",
    "scan_split",
]

log = logging.getLogger(__name__)

INDEX_VERSION = 1


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
                f"fMoW root {self.root} does not exist or is not a folder; pass the folder that holds train/ and val/ "
                "of fMoW-rgb"
            )
        if split not in LABELLED_SPLITS + UNLABELLED_SPLITS:
            raise DatasetError(
                f"unknown fMoW split {split!r} under {self.root}; use one of "
                f"{', '.join(LABELLED_SPLITS + UNLABELLED_SPLITS)}"
            )
        if split in UNLABELLED_SPLITS and not allow_unlabelled:
            raise DatasetError(
                f"fMoW split {split!r} at {self.root / split} has no labels (its JSON files carry no category); train "
                "and evaluate on --split val"
            )
        split_dir = self.root / split
        if not split_dir.is_dir():
            present = sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))
            raise DatasetError(
                f"fMoW split folder {split_dir} not found (found: {', '.join(present) or 'nothing'}); point root at "
                f"the fMoW-rgb folder that holds {split}/"
            )
        rows, self.counts = self._load_index(split_dir, index_cache)
        samples = []
        for image, box, category, gsd, visible in rows:
            if visible_only and not visible:
                continue
            label = LABEL_OF.get(category, -1)
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
                "<category>/<category>_<loc>/<category>_<loc>_<view>_rgb.json with boxes wider and taller than 2 px "
                "and a .jpg beside each"
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
