"""Class-folder image datasets (``<root>/**/<class>/<image>``) with an optional split CSV.

UC Merced Land Use (``../shared/data/ucmerced``) has this layout: ``images/<class>/<class>NN.jpg``
and ``splits.csv`` with columns ``path,label,split`` (paths relative to the root). Without a split CSV,
a seeded, stratified 60/20/20 split is made and can be written next to a run for reproducibility.

Samples are returned as ``(uint8 tensor (3, size, size), label)``: the tile at its source resolution,
resized once to ``size`` pixels. The two model streams are derived later by
:class:`zoomplan.data.lowres.Streams`.
"""

from __future__ import annotations

import csv
import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from zoomplan.atomic import atomic_path
from zoomplan.errors import DatasetError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Sample:
    """One image: its path (absolute), class name and split."""

    path: Path
    label: str
    split: str


def scan_class_folders(root: Path) -> list[Sample]:
    """Every image below ``root`` whose parent folder names its class (no split yet: ``""``)."""
    if not root.is_dir():
        raise DatasetError(
            f"dataset root {root} does not exist or is not a folder: pass --root DIR holding <class>/<image> folders"
        )
    class_dirs = sorted({p.parent for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()})
    if not class_dirs:
        raise DatasetError(
            f"no images ({', '.join(IMAGE_SUFFIXES)}) under {root}: pass --root DIR holding <class>/<image> folders"
        )
    # An empty class folder beside populated ones is almost always a mistake in the tree.
    parents = {d.parent for d in class_dirs}
    for parent in parents:
        for d in sorted(p for p in parent.iterdir() if p.is_dir()):
            if d not in class_dirs and not any(q.is_dir() for q in d.iterdir()):
                raise DatasetError(f"class folder {d} has no images: remove it or add its images")
    samples = []
    for d in class_dirs:
        for p in sorted(d.iterdir()):
            if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file():
                samples.append(Sample(p, d.name, ""))
    return samples


def stratified_split(
    samples: Sequence[Sample], fractions: tuple[float, float, float] = (0.6, 0.2, 0.2), seed: int = 0
) -> list[Sample]:
    """Assign train/val/test per class with a seeded shuffle, in the given proportions."""
    rng = random.Random(seed)
    by_class: dict[str, list[Sample]] = {}
    for s in samples:
        by_class.setdefault(s.label, []).append(s)
    out = []
    for label in sorted(by_class):
        items = sorted(by_class[label], key=lambda s: str(s.path))
        rng.shuffle(items)
        n = len(items)
        n_tr = round(n * fractions[0])
        n_va = round(n * fractions[1])
        for i, s in enumerate(items):
            split = "train" if i < n_tr else "val" if i < n_tr + n_va else "test"
            out.append(Sample(s.path, s.label, split))
    return out


def split_row_path(csv_path: Path, line: int, row: dict[str, str], root: Path) -> Path:
    """A split-CSV row's image path resolved under ``root``, after checking its split (``line``: 1-based,
    for the error)."""
    if row["split"] not in SPLITS:
        raise DatasetError(f"{csv_path}:{line}: split {row['split']!r} is not one of {', '.join(SPLITS)}: fix that row")
    return (root / row["path"]).resolve()


def read_split_csv(csv_path: Path, root: Path) -> list[Sample]:
    """Samples from a ``path,label,split`` CSV (paths relative to ``root``); checks every file exists."""
    if not csv_path.is_file():
        raise DatasetError(
            f"split file {csv_path} not found: pass --splits PATH to a CSV with columns path,label,split"
        )
    with open(csv_path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing_cols = {"path", "label", "split"} - set(reader.fieldnames or ())
        if missing_cols:
            raise DatasetError(
                f"split file {csv_path} lacks column(s) {', '.join(sorted(missing_cols))}: it needs path,label,split"
            )
        rows = list(reader)
    if not rows:
        raise DatasetError(f"split file {csv_path} has no rows: list the images as path,label,split")
    samples, absent = [], []
    for i, r in enumerate(rows, start=2):
        p = split_row_path(csv_path, i, r, root)
        if not p.is_file():
            absent.append(r["path"])
        samples.append(Sample(p, r["label"], r["split"]))
    if absent:
        more = f" and {len(absent) - 1} more" if len(absent) > 1 else ""
        raise DatasetError(
            f"split file {csv_path} names {len(absent)} absent file(s) under {root} (e.g. {absent[0]}{more}): fix "
            f"--root or the CSV"
        )
    return samples


def write_split_csv(samples: Sequence[Sample], csv_path: Path, root: Path) -> None:
    """Write samples as ``path,label,split`` (paths relative to ``root``) atomically."""
    with atomic_path(csv_path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", "split"])
        for s in samples:
            w.writerow([s.path.relative_to(root).as_posix(), s.label, s.split])


def load_image(path: Path, size: int) -> torch.Tensor:
    """Decode an image as RGB and resize to (3, size, size) uint8 (antialiased bilinear)."""
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            if im.size != (size, size):
                im = im.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=None)
            arr = np.asarray(im, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DatasetError(
            f"cannot read image {path} ({type(exc).__name__}: {exc}): replace or remove the file"
        ) from exc
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous()


class FolderDataset(Dataset[tuple[torch.Tensor, int]]):
    """One split of a class-folder dataset, as ``(uint8 (3, size, size), label index)``.

    ``class_names`` are the sorted labels of the whole dataset (all splits), so label ids agree across
    splits. With ``cache=True`` every image of the split is decoded once into memory (UC Merced's
    1,260 training tiles at 256 px take ~250 MB); unreadable files are reported together, by path.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        *,
        splits_csv: str | Path | None = None,
        size: int = 256,
        cache: bool = True,
        seed: int = 0,
    ) -> None:
        self.root = Path(root)
        if split not in SPLITS:
            raise DatasetError(f"split {split!r} is not one of {', '.join(SPLITS)}")
        if not self.root.is_dir():
            raise DatasetError(f"dataset root {self.root} does not exist or is not a folder: pass --root DIR")
        if splits_csv is not None:
            all_samples = read_split_csv(Path(splits_csv), self.root)
        else:
            all_samples = stratified_split(scan_class_folders(self.root), seed=seed)
        self.all_samples = all_samples
        self.class_names: tuple[str, ...] = tuple(sorted({s.label for s in all_samples}))
        self.samples = [s for s in all_samples if s.split == split]
        if not self.samples:
            raise DatasetError(f"split {split!r} of {self.root} is empty: check the split CSV or choose another split")
        self.split = split
        self.size = size
        self._index = {c: i for i, c in enumerate(self.class_names)}
        self.labels = torch.tensor([self._index[s.label] for s in self.samples], dtype=torch.long)
        self._cache: torch.Tensor | None = None
        if cache:
            self._cache = self._load_all()

    def _load_all(self) -> torch.Tensor:
        out = torch.empty((len(self.samples), 3, self.size, self.size), dtype=torch.uint8)
        bad: list[str] = []
        for i, s in enumerate(self.samples):
            try:
                out[i] = load_image(s.path, self.size)
            except DatasetError:
                bad.append(str(s.path))
        if bad:
            more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
            raise DatasetError(
                f"{len(bad)} unreadable image(s) in split {self.split!r}: {bad[0]}{more}: replace them or drop them "
                f"from the split CSV"
            )
        return out

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        img = self._cache[i] if self._cache is not None else load_image(self.samples[i].path, self.size)
        return img, int(self.labels[i])
