"""Several class-folder datasets read as one, at one tile ground size, in one joint label space.

The shipped model learns from UC Merced (0.3 m, 21 land-use classes, no open water) and RSSCN7
(four scales of 0.25-2 m, 7 classes including rivers, lakes and coast) together. Each source is a
folder with ``splits.csv`` (``path,label,split`` and, for sources of several scales, a column giving
each image's ground pixel size). Every image is cut to the model's tile footprint (``tile_ground_m``
metres, centred: the scene's subject is in the middle of these photographs), resized to ``size`` px,
and labelled through its source's label map (``source class -> joint class``), so that the same land
cover from two sources is one class (``forest`` and ``forest``, ``parkinglot`` and ``parking``).

A recipe names its sources under ``[data.sources.<name>]``::

    [data.sources.ucmerced]
    pixel_m = 0.3048                      # one ground pixel size for the whole source (metres)
    labels = { agricultural = "field", forest = "forest", ... }

    [data.sources.rsscn7]
    pixel_column = "approx_gsd_m"         # or: per image, from this column of splits.csv
    labels = { riverlake = "water", ... }

Images smaller than the footprint are kept whole when they cover at least ``min_cover`` of it on
each side (UC Merced's 75-78 m for an 80 m tile) and refused otherwise (a config error names them),
unless the source says ``skip_smaller = true``: then they are left out of every split (RSSCN7's
100 m scale for a 160 m tile), and the dataset says how many were left out.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from zoomplan.data.folder import SPLITS, split_row_path
from zoomplan.errors import DatasetError

MIN_COVER = 0.9
"""An image whose footprint is at least this share of the tile's on each side is used whole."""


@dataclass(frozen=True)
class SourceSpec:
    """One source of a joint dataset: its ground pixel size (metres; fixed, or a split-CSV column)
    and the map from its class names to the joint label space."""

    name: str
    labels: Mapping[str, str]
    pixel_m: float = 0.0
    pixel_column: str = ""
    skip_smaller: bool = False

    @classmethod
    def from_dict(cls, name: str, d: Mapping[str, Any]) -> "SourceSpec":
        d = dict(d)
        labels = d.pop("labels", None)
        if not isinstance(labels, Mapping) or not labels:
            raise DatasetError(f'[data.sources.{name}] needs labels = {{ source_class = "joint_class", ... }}')
        skip = d.pop("skip_smaller", False)
        if not isinstance(skip, bool):
            raise DatasetError(f"[data.sources.{name}]: skip_smaller must be true or false, got {skip!r}")
        spec = cls(
            name,
            {str(k): str(v) for k, v in labels.items()},
            float(d.pop("pixel_m", 0.0)),
            str(d.pop("pixel_column", "")),
            skip,
        )
        if d:
            raise DatasetError(
                f"[data.sources.{name}]: unknown key(s) {', '.join(sorted(d))}; allowed: labels, pixel_m, "
                f"pixel_column, skip_smaller"
            )
        if (spec.pixel_m > 0) == bool(spec.pixel_column):
            raise DatasetError(
                f"[data.sources.{name}]: give either pixel_m (metres) or pixel_column (a column of splits.csv)"
            )
        return spec


@dataclass(frozen=True)
class JointSample:
    """One image of a joint dataset: absolute path, joint class, split, source, ground pixel (m)."""

    path: Path
    label: str
    split: str
    source: str
    pixel_m: float
    source_label: str


def read_source(root: Path, spec: SourceSpec) -> list[JointSample]:
    """Every row of ``root/splits.csv`` as a :class:`JointSample` (checks files, classes and pixel sizes)."""
    csv_path = root / "splits.csv"
    if not csv_path.is_file():
        raise DatasetError(
            f"source {spec.name}: {csv_path} not found: pass --source {spec.name}=DIR holding splits.csv and the images"
        )
    with open(csv_path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        need = {"path", "label", "split"} | ({spec.pixel_column} if spec.pixel_column else set())
        missing = need - set(reader.fieldnames or ())
        if missing:
            raise DatasetError(f"source {spec.name}: {csv_path} lacks column(s) {', '.join(sorted(missing))}")
        rows = list(reader)
    unmapped = sorted({r["label"] for r in rows} - set(spec.labels))
    if unmapped:
        raise DatasetError(
            f"source {spec.name}: classes {', '.join(unmapped)} have no joint class: add them to "
            f"[data.sources.{spec.name}].labels"
        )
    out, absent = [], []
    for i, r in enumerate(rows, start=2):
        p = split_row_path(csv_path, i, r, root)
        if not p.is_file():
            absent.append(r["path"])
        px = spec.pixel_m if spec.pixel_m > 0 else float(r[spec.pixel_column])
        if px <= 0:
            raise DatasetError(f"{csv_path}:{i}: pixel size {px} m is not positive")
        out.append(JointSample(p, spec.labels[r["label"]], r["split"], spec.name, px, r["label"]))
    if absent:
        raise DatasetError(
            f"source {spec.name}: {len(absent)} file(s) named in {csv_path} are absent (e.g. {absent[0]}): fix the "
            f"folder or the CSV"
        )
    return out


def crop_box(width: int, height: int, pixel_m: float, tile_ground_m: float) -> tuple[int, int, int, int] | None:
    """The centred square (left, top, right, bottom) px of a ``width`` x ``height`` image of ``pixel_m``
    metre pixels that covers ``tile_ground_m`` metres; the whole image's centred square when it is at
    least :data:`MIN_COVER` of the tile; ``None`` when the image is smaller still."""
    side = tile_ground_m / pixel_m
    short = min(width, height)
    if side > short:
        if short < MIN_COVER * side:
            return None
        side = short
    s = max(1, round(side))
    left, top = (width - s) // 2, (height - s) // 2
    return left, top, left + s, top + s


def load_tile(sample: JointSample, tile_ground_m: float, size: int) -> torch.Tensor:
    """Decode, crop to the tile footprint and resize to (3, size, size) uint8."""
    try:
        with Image.open(sample.path) as im:
            im = im.convert("RGB")
            box = crop_box(im.width, im.height, sample.pixel_m, tile_ground_m)
            if box is None:
                raise DatasetError(
                    f"image {sample.path} covers {min(im.size) * sample.pixel_m:.0f} m, less than the "
                    f"{tile_ground_m:g} m tile: "
                    f"drop it from the split or use a smaller tile"
                )
            im = im.crop(box).resize((size, size), Image.Resampling.BILINEAR, reducing_gap=None)
            arr = np.asarray(im, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DatasetError(
            f"cannot read image {sample.path} ({type(exc).__name__}: {exc}): replace or remove the file"
        ) from exc
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous()


def parse_sources(pairs: Sequence[str]) -> dict[str, Path]:
    """``["ucmerced=../shared/data/ucmerced", ...]`` -> ``{"ucmerced": Path(...)}`` (CLI ``--source``)."""
    out: dict[str, Path] = {}
    for p in pairs:
        name, sep, root = p.partition("=")
        if not sep or not name or not root:
            raise DatasetError(f"--source {p!r} must be NAME=DIR, e.g. --source rsscn7=../shared/data/rsscn7")
        out[name.strip()] = Path(root.strip())
    return out


class JointDataset(Dataset[tuple[torch.Tensor, int]]):
    """One split of several sources, as ``(uint8 (3, size, size), joint label index)``.

    ``specs``: the recipe's sources; ``roots``: a folder per source name (every spec needs one).
    ``min_footprint_m`` keeps only images that hold a tile of that many metres (an image smaller than the
    tile is otherwise an error), so that tiles of several sizes can be compared on the same images.
    ``class_names`` are the sorted joint classes of every source's label map, so label ids agree
    across splits and runs. ``source_of`` gives each sample's source index in ``source_names``.
    """

    def __init__(
        self,
        roots: Mapping[str, str | Path],
        specs: Sequence[SourceSpec],
        split: str,
        *,
        tile_ground_m: float,
        size: int = 128,
        cache: bool = True,
        min_footprint_m: float | None = None,
    ) -> None:
        if split not in SPLITS:
            raise DatasetError(f"split {split!r} is not one of {', '.join(SPLITS)}")
        if not specs:
            raise DatasetError("the recipe names no [data.sources.*]: a joint dataset needs at least one source")
        missing = [s.name for s in specs if s.name not in roots]
        if missing:
            raise DatasetError(f"no folder given for source(s) {', '.join(missing)}: pass --source NAME=DIR for each")
        unknown = sorted(set(roots) - {s.name for s in specs})
        if unknown:
            raise DatasetError(
                f"--source {', '.join(unknown)}: the recipe has no such source (it has "
                f"{', '.join(s.name for s in specs)})"
            )
        self.source_names = tuple(s.name for s in specs)
        self.class_names: tuple[str, ...] = tuple(sorted({v for s in specs for v in s.labels.values()}))
        every = [x for s in specs for x in read_source(Path(roots[s.name]), s)]
        self.samples = [x for x in every if x.split == split]
        skipping = {s.name for s in specs if s.skip_smaller}
        kept = [x for x in self.samples if x.source not in skipping or _covers(x, float(tile_ground_m))]
        self.skipped_smaller = len(self.samples) - len(kept)
        """Images of this split left out because they are smaller than the tile (``skip_smaller`` sources)."""
        self.samples = kept
        if min_footprint_m is not None:  # experiments: only images that hold this footprint (metres)
            self.samples = [x for x in self.samples if _covers(x, float(min_footprint_m))]
        if not self.samples:
            raise DatasetError(f"split {split!r} of the joint dataset is empty: check the sources' split CSVs")
        self.split, self.size, self.tile_ground_m = split, size, float(tile_ground_m)
        index = {c: i for i, c in enumerate(self.class_names)}
        self.labels = torch.tensor([index[s.label] for s in self.samples], dtype=torch.long)
        self.source_of = torch.tensor([self.source_names.index(s.source) for s in self.samples], dtype=torch.long)
        self._cache: torch.Tensor | None = None
        if cache:
            self._cache = torch.empty((len(self.samples), 3, size, size), dtype=torch.uint8)
            for i, s in enumerate(self.samples):
                self._cache[i] = load_tile(s, self.tile_ground_m, size)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        img = self._cache[i] if self._cache is not None else load_tile(self.samples[i], self.tile_ground_m, self.size)
        return img, int(self.labels[i])


def _covers(sample: JointSample, tile_ground_m: float) -> bool:
    with Image.open(sample.path) as im:  # reads the header only
        return crop_box(im.width, im.height, sample.pixel_m, tile_ground_m) is not None


def sources_from_recipe(raw: Mapping[str, Any]) -> list[SourceSpec]:
    """The :class:`SourceSpec` of every ``[data.sources.<name>]`` table of a recipe, in file order."""
    return [SourceSpec.from_dict(name, d) for name, d in dict(dict(raw.get("data", {})).get("sources", {})).items()]
