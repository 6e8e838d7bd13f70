"""Atomic file output: write to a temporary file beside the target, fsync, then rename.

A crash or an exception while writing never leaves a half-written file under the final name.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success rename it onto ``path``.

    On any exception the temporary file is removed and ``path`` is left as it was.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual mode
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


@contextlib.contextmanager
def atomic_folder(folder: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a hidden temporary folder inside ``folder``; on success move every file in it into ``folder``.

    For outputs a library writes as several files (a Shapefile and its sidecars) or insists on creating
    itself (GDAL): write them into the yielded folder under their final names. Each file is fsynced
    and renamed onto its target (each rename is atomic; the set is not). On any exception the
    temporary folder and everything in it are removed and ``folder`` is left as it was.
    """
    dest = Path(folder)
    dest.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".zoomplan-", suffix=".tmp", dir=dest))
    try:
        yield tmp
        staged = sorted(p for p in tmp.iterdir() if p.is_file())
        mode = 0o666 & ~_umask()
        for p in staged:
            with open(p, "rb+") as fh:
                os.fsync(fh.fileno())
            os.chmod(p, mode)
        for p in staged:
            os.replace(p, dest / p.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
