"""Tiny, seeded, generated datasets for tests and demos (real JPEG files in the real layouts).

Both generators paint a learnable class signal, so a small model trained on them does better than
chance, and both are deterministic given ``seed`` (each image draws from its own seeded generator,
so the files do not depend on the order they are written in).

- :func:`make_fmow_tree`: the published fMoW-rgb layout and JSON fields, with its quirks.
- :func:`make_folder_dataset`: a UC Merced-like class-folder dataset with ``splits.csv``, whose class
  signal sits in a class-dependent subset of the 4x4 patch grid (what PatchDrop's policy must find).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image

from zoomplan.atomic import write_text_atomic

GRID = 4
"""Patch grid side of :func:`make_folder_dataset` (4x4 = 16 patches, ids row by row)."""

_PALETTE = np.array(
    [
        (200, 60, 50),
        (50, 160, 70),
        (60, 90, 200),
        (215, 190, 60),
        (160, 70, 180),
        (60, 185, 185),
        (230, 130, 40),
        (150, 110, 70),
        (110, 200, 120),
        (200, 110, 160),
        (90, 60, 130),
        (170, 170, 90),
    ],
    dtype=np.float64,
)


def _class_colour(ci: int) -> np.ndarray:
    """A class's RGB colour (0-255), distinct for the first 12 classes, then varied by rotation."""
    base = _PALETTE[ci % len(_PALETTE)]
    return np.roll(base, ci // len(_PALETTE)) if ci >= len(_PALETTE) else base


def _pattern(kind: int, h: int, w: int) -> np.ndarray:
    """A +-1 texture of period 4 px (2 on, 2 off), zero mean over aligned 4x4 blocks.

    kind 0: horizontal stripes, 1: vertical stripes, 2: checkerboard, 3: diagonal stripes. Averaging
    over 4 px or more (a simulated LR pixel) erases it; halving the resolution keeps it.
    """
    y, x = np.mgrid[0:h, 0:w]
    bits = [(y // 2) % 2, (x // 2) % 2, (x // 2 + y // 2) % 2, ((x + y) // 2) % 2][kind % 4]
    return (1 - 2 * bits).astype(np.float64)


def _save_jpeg(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "RGB")
    img.save(path, format="JPEG", quality=95, subsampling=0)


# ----------------------------------------------------------------------------------------- fMoW


def _fmow_image(rng: np.random.Generator, ci: int, w: int, h: int, box: Sequence[int]) -> np.ndarray:
    """Earth-toned noisy background; inside ``box`` (x, y, w, h px) a class-coloured texture."""
    bg = rng.uniform(70, 140) + rng.normal(0, 10, size=3)
    img = np.broadcast_to(bg, (h, w, 3)) + rng.normal(0, 8, size=(h, w, 3))
    x, y, bw, bh = box
    colour = _class_colour(ci)
    tex = _pattern(ci, bh, bw)[..., None] * 35.0
    img[y : y + bh, x : x + bw] = 0.3 * img[y : y + bh, x : x + bw] + 0.7 * colour + tex
    return img


def _wkt_footprint(rng: np.random.Generator, w: int, h: int, gsd: float) -> str:
    """A WGS84 rectangle (lon/lat degrees) in UTM zone 17R (Florida), as WKT."""
    lon0, lat0 = rng.uniform(-83.0, -79.0), rng.uniform(25.0, 31.0)
    dlat = h * gsd / 111_320.0
    dlon = w * gsd / (111_320.0 * np.cos(np.radians(lat0)))
    lon1, lat1 = lon0 + dlon, lat0 + dlat
    ring = [(lon0, lat1), (lon1, lat1), (lon1, lat0), (lon0, lat0), (lon0, lat1)]
    return "POLYGON ((" + ", ".join(f"{a:.7f} {b:.7f}" for a, b in ring) + "))"


def _fmow_view(
    path_stem: Path, rng: np.random.Generator, ci: int, w: int, h: int, boxes_meta: Any, box: Sequence[int]
) -> None:
    """Write ``<stem>.jpg`` and ``<stem>.json`` (``boxes_meta`` goes in ``bounding_boxes`` as is)."""
    gsd = round(float(rng.uniform(0.3, 2.0)), 6)
    meta = {
        "gsd": gsd,
        "utm": "17R",
        "country_code": "USA",
        "cloud_cover": int(rng.integers(0, 30)),
        "timestamp": (
            f"2016-{int(rng.integers(1, 13)):02d}-{int(rng.integers(1, 29)):02d}T15:{int(rng.integers(0, 60)):02d}:00Z"
        ),
        "img_width": w,
        "img_height": h,
        "raw_location": _wkt_footprint(rng, w, h, gsd),
        "off_nadir_angle_dbl": round(float(rng.uniform(0, 30)), 3),
        "sensor_platform_name": "WORLDVIEW02",
        "bounding_boxes": boxes_meta,
    }
    _save_jpeg(path_stem.with_name(path_stem.name + ".jpg"), _fmow_image(rng, ci, w, h, box))
    path_stem.with_name(path_stem.name + ".json").write_text(json.dumps(meta, indent=1), encoding="utf-8")


def _random_box(rng: np.random.Generator, w: int, h: int) -> list[int]:
    bw, bh = int(w * rng.uniform(0.25, 0.6)), int(h * rng.uniform(0.25, 0.6))
    return [int(rng.integers(0, w - bw + 1)), int(rng.integers(0, h - bh + 1)), bw, bh]


def make_fmow_tree(
    root: str | Path,
    classes: Sequence[str] = ("airport", "dam", "park"),
    locations_per_class: int = 3,
    views: int = 2,
    splits: Sequence[str] = ("train", "val"),
    size: int = 96,
    seed: int = 0,
    quirks: bool = True,
) -> Path:
    """Write a small fMoW-rgb tree under ``root`` and return ``root``.

    Labelled splits hold ``<split>/<cat>/<cat>_<loc>/<cat>_<loc>_<view>_rgb.{jpg,json}`` for every
    class, location (0..locations_per_class-1) and view (0..views-1): one usable box each, so each
    labelled split has ``len(classes) * locations_per_class * views`` samples. Images are ``size``
    pixels high and ``size + 8 * (loc % 3)`` wide; boxes are ``[x, y, w, h]`` pixels; ``gsd`` in metres.
    ``visible`` is always a string, as published. ``"test"`` in ``splits`` (or ``quirks``) adds
    ``test/<7-digit id>/<id>_<view>_rgb.*`` for ``len(classes)`` ids (ids 0000000.., id k shows
    class k) with no category in their JSON.

    With ``quirks`` (in ``train``, else the first labelled split):
    ``<c0>_0_0_rgb.json`` has ``bounding_boxes`` as a single dict; the last class's last location's
    last view also lists a 2-px-wide box (to be skipped); ``<c1>_0_<views>_rgb.json`` (an extra view,
    c1 = classes[1] or classes[0]) has an empty box list (to be skipped); ``<c0>_0_0_msrgb.{jpg,json}``
    sits beside its rgb twin (to be ignored); boxes of views with ``(loc + view) % 3 == 2`` are
    ``visible: "False"``.
    """
    root = Path(root)
    classes = tuple(classes)
    if not classes or locations_per_class < 1 or views < 1:
        raise ValueError("make_fmow_tree needs at least one class, one location and one view")
    if quirks and len(classes) * locations_per_class * views < 2:
        raise ValueError("quirks need at least two views in the tree (the dict-box and tiny-box JSONs differ)")
    labelled = [s for s in splits if s != "test"]
    quirk_split = "train" if "train" in labelled else (labelled[0] if labelled else None)
    box_id = 1000
    for si, split in enumerate(labelled):
        q = quirks and split == quirk_split
        for ci, cat in enumerate(classes):
            for loc in range(locations_per_class):
                folder = root / split / cat / f"{cat}_{loc}"
                w, h = size + 8 * (loc % 3), size
                for view in range(views):
                    rng = np.random.default_rng([seed, si, ci, loc, view])
                    box = _random_box(rng, w, h)
                    box_id += 1
                    visible = "False" if q and (loc + view) % 3 == 2 else "True"
                    entry = {"box": box, "category": cat, "ID": box_id, "visible": visible}
                    boxes_meta: Any = [entry]
                    if q and ci == 0 and loc == 0 and view == 0:
                        boxes_meta = entry
                        msrgb_rng = np.random.default_rng([seed, si, ci, loc, view, 1])
                        _fmow_view(folder / f"{cat}_{loc}_{view}_msrgb", msrgb_rng, ci, w, h, [dict(entry)], box)
                    elif q and ci == len(classes) - 1 and loc == locations_per_class - 1 and view == views - 1:
                        box_id += 1
                        boxes_meta = [
                            entry,
                            {"box": [box[0], box[1], 2, 10], "category": cat, "ID": box_id, "visible": "True"},
                        ]
                    _fmow_view(folder / f"{cat}_{loc}_{view}_rgb", rng, ci, w, h, boxes_meta, box)
        if q:
            ci = min(1, len(classes) - 1)
            cat = classes[ci]
            rng = np.random.default_rng([seed, si, ci, 0, views])
            _fmow_view(
                root / split / cat / f"{cat}_0" / f"{cat}_0_{views}_rgb",
                rng,
                ci,
                size,
                size,
                [],
                _random_box(rng, size, size),
            )
    if quirks or "test" in splits:
        for k in range(len(classes)):
            tid = f"{k:07d}"
            for view in range(views):
                rng = np.random.default_rng([seed, 99, k, view])
                box = _random_box(rng, size, size)
                box_id += 1
                _fmow_view(
                    root / "test" / tid / f"{tid}_{view}_rgb", rng, k, size, size, [{"box": box, "ID": box_id}], box
                )
    return root


# ------------------------------------------------------------------------------- class folders


def class_patches(ci: int, seed: int = 0, k: int = 4) -> tuple[int, ...]:
    """The ``k`` patch ids (of the 4x4 grid, row by row) where class ``ci`` paints its texture."""
    return tuple(sorted(int(p) for p in np.random.default_rng([seed, 7, ci]).permutation(GRID * GRID)[:k]))


def _folder_image(rng: np.random.Generator, ci: int, size: int, seed: int) -> np.ndarray:
    """Neutral background with a weak class tint (visible at low resolution) and, in 2-3 of the
    class's patches, a class-coloured period-4 texture (visible at high resolution only, apart
    from a class-neutral brightening that says where, not what); a grey distractor texture in
    1-2 other patches."""
    colour = _class_colour(ci)
    direction = (colour - colour.mean()) / (np.linalg.norm(colour - colour.mean()) + 1e-9)
    bg = np.array([115.0, 115.0, 108.0]) + 9.0 * direction + rng.normal(0, 8, size=3)
    img = np.broadcast_to(bg, (size, size, 3)) + rng.normal(0, 5, size=(size, size, 3))
    edges = [round(i * size / GRID) for i in range(GRID + 1)]
    own = list(class_patches(ci, seed))
    chosen = rng.choice(own, size=int(rng.integers(2, 4)), replace=False)
    others = [p for p in range(GRID * GRID) if p not in own]
    distract = rng.choice(others, size=int(rng.integers(1, 3)), replace=False)
    for p, kind, amp, dirn in [(p, ci, 45.0, direction + 0.35) for p in chosen] + [
        (p, 2, 30.0, np.ones(3) / np.sqrt(3)) for p in distract
    ]:
        r, c = divmod(int(p), GRID)
        y0, y1, x0, x1 = edges[r], edges[r + 1], edges[c], edges[c + 1]
        img[y0:y1, x0:x1] += 8.0 + _pattern(kind, y1 - y0, x1 - x0)[..., None] * amp * dirn
    return img


def _split_counts(n: int, fractions: Sequence[float]) -> list[int]:
    """Largest-remainder apportionment of ``n`` items to ``fractions`` (ties to the earlier split)."""
    raw = [n * f for f in fractions]
    counts = [int(np.floor(r)) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - counts[i]), i))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    return counts


def make_folder_dataset(
    root: str | Path,
    classes: Sequence[str] = ("field", "town", "water"),
    per_class: int = 12,
    size: int = 64,
    seed: int = 0,
    splits: Sequence[float] = (0.6, 0.2, 0.2),
) -> Path:
    """Write a UC Merced-like class-folder dataset under ``root`` and return ``root``.

    ``images/<class>/<class>NN.jpg`` (``size`` x ``size`` px RGB, JPEG q95 4:4:4) and ``splits.csv``
    with columns ``path,label,split,width,height`` (paths relative to ``root``, label = class name,
    split in train/val/test), as in the shared UC Merced copy. The split is stratified and seeded:
    per class, ``splits`` (train, val, test fractions) apportioned by largest remainder.
    Class ``i`` paints its texture in patches :func:`class_patches` ``(i, seed)`` of the 4x4 grid.
    """
    root = Path(root)
    classes = tuple(classes)
    if len(splits) != 3 or min(splits) < 0 or abs(sum(splits) - 1.0) > 1e-6:
        raise ValueError(
            f"splits must be three non-negative fractions (train, val, test) summing to 1, got {tuple(splits)}"
        )
    if per_class < 1 or not classes:
        raise ValueError("make_folder_dataset needs at least one class and one image per class")
    digits = max(2, len(str(per_class - 1)))
    rows = ["path,label,split,width,height"]
    for ci, cls in enumerate(classes):
        order = np.random.default_rng([seed, 1000, ci]).permutation(per_class)
        n_train, n_val, _ = _split_counts(per_class, splits)
        split_of = {}
        for rank, idx in enumerate(order):
            split_of[int(idx)] = "train" if rank < n_train else ("val" if rank < n_train + n_val else "test")
        for i in range(per_class):
            rel = f"images/{cls}/{cls}{i:0{digits}d}.jpg"
            _save_jpeg(root / rel, _folder_image(np.random.default_rng([seed, ci, i]), ci, size, seed))
            rows.append(f"{rel},{cls},{split_of[i]},{size},{size}")
    write_text_atomic(root / "splits.csv", "\n".join(rows) + "\n")
    return root
