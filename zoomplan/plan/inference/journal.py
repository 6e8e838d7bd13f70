"""A plan's inference journal: each finished block's results on disk, so ``zoomplan plan --resume``
after a crash or a kill (SIGKILL included) redoes only the blocks that were not finished.

Inference is the long step of a plan (about 20 minutes for a whole Sentinel-2 tile on 2 CPU cores);
everything after it (selection, orders, prices, outputs) takes seconds and is simply run again. While
:func:`zoomplan.plan.inference.infer.infer_patches` walks the AOI's blocks, every block's patch rows, columns,
probabilities, classes and tile counts are written to ``block-NNNNNN.npz`` in the journal folder, each
atomically (temporary file, fsync, rename): a kill leaves finished blocks and at most one stray
temporary file, which is ignored. Files are read back with ``allow_pickle=False``.

The journal is valid only for the exact inputs it was written for. Its key is the SHA-256 of
:func:`journal_meta`'s record: zoomplan version, model file digest, the AOI's features in the planning
CRS, each scene's path, size and modification time, bands and sensor mapping (and its cloud mask's path,
size, modification time and rule, with the cloudy-patch share), planning grid, block and
batch sizes, device and torch thread count (the last three can change floating-point results, and the
order must be byte-identical to an uninterrupted run's). Selection parameters (threshold, budget,
vendor) are not in the key: a resumed run may price the same inference differently.

Sizes: a journal holds what the patch table holds, about 20 bytes per AOI patch (a whole Sentinel-2
tile: about 600 MB), and is removed once the plan's outputs are written.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from zoomplan.atomic import write_text_atomic
from zoomplan.errors import ConfigError

log = logging.getLogger(__name__)

FORMAT = 2
"""Journal layout version, part of the key."""

MANIFEST = "manifest.json"
_BLOCK_RE = re.compile(r"^block-(\d{6,})\.npz$")


@dataclass(frozen=True)
class BlockResult:
    """One finished block: per AOI patch (1-D, same length) ``row``, ``col`` (patch indices on the grid),
    ``prob`` (policy probability), ``tile_class``, ``tile_conf`` (the LR classifier's class and confidence for
    the patch's tile), ``aoi_index`` (feature), ``cloud`` (:data:`zoomplan.plan.types.CLOUDY` ...); tile
    counts ``total``, ``outside``, ``nodata``; and
    ``by_scene``: tiles planned from each scene id."""

    row: np.ndarray
    col: np.ndarray
    prob: np.ndarray
    tile_class: np.ndarray
    tile_conf: np.ndarray
    aoi_index: np.ndarray
    cloud: np.ndarray
    total: int
    outside: int
    nodata: int
    by_scene: dict[str, int]

    _ARRAYS = ("row", "col", "prob", "tile_class", "tile_conf", "aoi_index", "cloud")
    _DTYPES = (np.int64, np.int64, np.float32, np.int32, np.float32, np.int32, np.uint8)


def default_folder(out: Path) -> Path:
    """The journal folder of a plan writing ``out``: a hidden folder beside it."""
    return out.parent / f".{out.name}.zoomplan-journal"


def journal_meta(
    *,
    version: str,
    model_sha256: str,
    aoi_wkb: Sequence[bytes],
    aoi_ids: Sequence[str],
    scenes: Sequence[Any],
    grid: dict[str, Any],
    block_tiles: int,
    n_blocks: int,
    batch_size: int,
    device: str,
    threads: int | None,
    min_valid: float,
    cloudy_share: float | None = None,
) -> dict[str, Any]:
    """The record a journal is keyed on (JSON-ready). ``scenes``: opened :class:`~zoomplan.geo.scene.Scene`
    objects, identified by resolved path, size in bytes and modification time (ns), band indexes and sensor
    mapping; ``aoi_wkb``: the features in the planning CRS as WKB (hashed); ``grid``: the planning grid's
    CRS and sizes (metres)."""
    h = hashlib.sha256()
    for fid, wkb in zip(aoi_ids, aoi_wkb):
        h.update(str(fid).encode() + b"\0" + wkb)
    scene_rec = []
    for s in scenes:
        p = Path(s.path).resolve()
        st = p.stat()
        rec = {
            "path": str(p),
            "bytes": st.st_size,
            "mtime_ns": st.st_mtime_ns,
            "bands": list(map(int, s.band_indexes)),
            "sensor": s.sensor.name,
        }
        cm = getattr(s, "cloud_mask", None)
        if cm is not None:
            mst = Path(cm.path).resolve().stat()
            rec["cloud_mask"] = {
                "path": str(Path(cm.path).resolve()),
                "bytes": mst.st_size,
                "mtime_ns": mst.st_mtime_ns,
                "kind": cm.kind,
                "bands": list(cm.bands),
            }
        scene_rec.append(rec)
    return {
        "format": FORMAT,
        "zoomplan_version": version,
        "model_sha256": model_sha256,
        "aoi_sha256": h.hexdigest(),
        "scenes": scene_rec,
        "grid": grid,
        "block_tiles": int(block_tiles),
        "n_blocks": int(n_blocks),
        "batch_size": int(batch_size),
        "device": device,
        "threads": threads,
        "min_valid": float(min_valid),
        "cloudy_share": cloudy_share,
    }


def meta_key(meta: dict[str, Any]) -> str:
    """SHA-256 of the record's canonical JSON."""
    return hashlib.sha256(json.dumps(meta, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Readable names of what differs between two journal records."""
    names = {
        "model_sha256": "the model",
        "aoi_sha256": "the AOI",
        "zoomplan_version": "the zoomplan version",
        "grid": "the planning grid",
        "block_tiles": "the block size",
        "batch_size": "--batch-size",
        "device": "the device",
        "threads": "the torch thread count",
    }
    out = []
    for k in sorted(set(old) | set(new)):
        if old.get(k) == new.get(k):
            continue
        if k == "scenes":
            a, b = old.get(k) or [], new.get(k) or []
            if [s.get("path") for s in a] != [s.get("path") for s in b]:
                out.append("the scene list")
            else:
                out.extend(
                    f"scene {Path(s['path']).name} (changed on disk, or other bands)" for s, t in zip(a, b) if s != t
                )
        else:
            out.append(names.get(k, k))
    return out


class BlockJournal:
    """A plan's finished blocks in ``folder`` (see the module doc). Open with :meth:`open`."""

    def __init__(self, folder: Path, meta: dict[str, Any]) -> None:
        self.folder = folder
        self.meta = meta
        self.key = meta_key(meta)
        self.n_blocks = int(meta["n_blocks"])
        self._done = self._scan()
        self.resumed = len(self._done)
        """Blocks found finished when the journal was opened."""
        self._created_parents: list[Path] = []

    @classmethod
    def open(cls, folder: str | os.PathLike[str], meta: dict[str, Any], *, resume: bool) -> "BlockJournal":
        """Open (``resume``) or start the journal in ``folder`` for the run described by ``meta``.

        ``resume=True``: a journal written for the same key is continued; none at all starts one (with a
        warning); one written for other inputs raises :class:`ConfigError` naming what differs.
        ``resume=False``: a journal for the same inputs raises :class:`ConfigError` (pass ``--resume``, or
        delete it to start over: finished work is never thrown away silently); one for other inputs is
        stale and replaced, with a warning.
        """
        folder = Path(folder)
        key = meta_key(meta)
        old = cls._read_manifest(folder)
        if old is not None and old.get("key") == key:
            if not resume:
                raise ConfigError(
                    f"{folder} holds the journal of an interrupted plan with these inputs: pass --resume to finish "
                    f"it, or delete the folder to start over"
                )
            return cls(folder, meta)
        if old is not None:
            what = ", ".join(_differences(old.get("meta", {}), meta)) or "its format"
            if resume:
                raise ConfigError(
                    f"--resume: the journal in {folder} was written for other inputs ({what} differ): restore them, "
                    f"or delete the folder and run without --resume"
                )
            log.warning("replacing the stale journal in %s (written for other inputs: %s differ)", folder, what)
        elif folder.exists() and any(folder.iterdir()):
            if not (folder / MANIFEST).exists() and not all(
                _BLOCK_RE.match(p.name) or p.name.endswith(".tmp") for p in folder.iterdir()
            ):
                raise ConfigError(
                    f"{folder} exists and is not a zoomplan journal: pass another --journal folder, or remove it"
                )
        elif resume:
            log.warning("--resume: no journal in %s, planning from the start", folder)
        if folder.exists():
            shutil.rmtree(folder)
        created = [a for a in [folder.parent, *folder.parent.parents] if not a.exists()]
        folder.mkdir(parents=True)
        write_text_atomic(folder / MANIFEST, json.dumps({"key": key, "meta": meta}, indent=1, sort_keys=True))
        book = cls(folder, meta)
        book._created_parents = created
        return book

    @staticmethod
    def _read_manifest(folder: Path) -> dict[str, Any] | None:
        try:
            m = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return m if isinstance(m, dict) else None

    def _scan(self) -> set[int]:
        done = set()
        if self.folder.is_dir():
            for p in self.folder.iterdir():
                m = _BLOCK_RE.match(p.name)
                if m and int(m.group(1)) < self.n_blocks:
                    done.add(int(m.group(1)))
        return done

    def done(self) -> frozenset[int]:
        """Indexes of the finished blocks (0-based, in the planner's block order)."""
        return frozenset(self._done)

    def _path(self, index: int) -> Path:
        return self.folder / f"block-{index:06d}.npz"

    def save(self, index: int, r: BlockResult) -> None:
        """Write block ``index`` atomically (temporary file, fsync, rename)."""
        arrays = {
            k: np.ascontiguousarray(getattr(r, k), dtype=d) for k, d in zip(BlockResult._ARRAYS, BlockResult._DTYPES)
        }
        ids = sorted(r.by_scene)
        fd, tmp = tempfile.mkstemp(prefix=f".block-{index:06d}.", suffix=".tmp", dir=self.folder)
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(
                    fh,
                    counts=np.asarray([r.total, r.outside, r.nodata], dtype=np.int64),
                    scene_ids=np.asarray(ids, dtype=str),
                    scene_tiles=np.asarray([r.by_scene[i] for i in ids], dtype=np.int64),
                    key=np.asarray(self.key),
                    **arrays,
                )
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self._path(index))
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        self._done.add(index)

    def load(self, index: int) -> BlockResult | None:
        """Block ``index`` as written, or ``None`` when its file is missing, unreadable or from another run
        (the block is then planned again)."""
        try:
            with np.load(self._path(index), allow_pickle=False) as z:
                if str(z["key"]) != self.key:
                    raise ValueError("key")
                arrays = [np.asarray(z[k], dtype=d) for k, d in zip(BlockResult._ARRAYS, BlockResult._DTYPES)]
                counts = z["counts"].tolist()
                by_scene = {str(i): int(n) for i, n in zip(z["scene_ids"].tolist(), z["scene_tiles"].tolist())}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            log.warning("journal block %d unreadable (%s); planning it again", index, exc.__class__.__name__)
            self._done.discard(index)
            return None
        if len({a.shape for a in arrays}) != 1 or arrays[0].ndim != 1 or len(counts) != 3:
            log.warning("journal block %d malformed; planning it again", index)
            self._done.discard(index)
            return None
        return BlockResult(
            *arrays, total=int(counts[0]), outside=int(counts[1]), nodata=int(counts[2]), by_scene=by_scene
        )

    def remove(self) -> None:
        """Delete the journal (after the plan's outputs are written), and the folders made for it if now empty."""
        shutil.rmtree(self.folder, ignore_errors=True)
        for d in self._created_parents:  # deepest first
            with contextlib.suppress(OSError):
                d.rmdir()
