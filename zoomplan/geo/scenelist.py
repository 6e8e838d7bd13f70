"""Scene lists (``zoomplan plan --scenes LIST``): which LR scenes to plan with, and which wins where they overlap.

A list is one of:

- a text file: one scene path per line; blank lines and ``#`` comments are skipped;
- a JSON list of paths (strings);
- a STAC-like JSON: a FeatureCollection (or a list) of Items, each with ``assets`` whose ``href`` is the
  scene (the asset named ``lr``, else ``visual``, else the only / first GeoTIFF-like asset) and optional
  ``properties.datetime`` (RFC 3339) and ``properties["eo:cloud_cover"]`` (percent).

Relative paths are relative to the list file. The planner takes each tile from the first scene in the
resulting order that has valid data for it (:mod:`zoomplan.plan.inference.infer`), so the order *is* the overlap
rule. :func:`order_scenes` makes it explicit and deterministic: entries with a cloud cover come first,
least cloudy first; ties (or none) are broken by the most recent datetime, then by the order written.
A list without cloud cover or datetime keeps its written order. Nothing is read from the scenes here.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

from zoomplan.errors import InputError

RULE = (
    "least eo:cloud_cover first, then most recent datetime, then the order written; each tile from the first scene "
    "with valid data"
)
"""The overlap rule stated in a plan's summary when a list carries cloud cover or dates."""
RULE_WRITTEN = "the order written; each tile from the first scene with valid data"
"""The overlap rule when no entry carries cloud cover or a date."""

_ASSET_KEYS = ("lr", "visual", "data", "image")


@dataclass(frozen=True)
class SceneEntry:
    """One scene of a list: its path, cloud cover (percent, ``None`` if unknown) and acquisition time (UTC, or
    ``None``)."""

    path: Path
    cloud_cover: float | None = None
    datetime: datetime | None = None


def _bad(path: Path, why: str) -> InputError:
    return InputError(
        f"scene list {path}: {why}: write one scene path per line, a JSON list of paths, or a STAC FeatureCollection "
        f"of Items with assets[...].href"
    )


def _parse_time(value: Any, path: Path, where: str) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        t = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise _bad(path, f"{where} has datetime {value!r}, not RFC 3339 (e.g. 2016-01-12T15:55:00Z)") from None
    return t


def _item(obj: Any, base: Path, path: Path, i: int) -> SceneEntry:
    where = f"entry {i + 1}"
    if isinstance(obj, str):
        return SceneEntry(_resolve(obj, base, path, where))
    if not isinstance(obj, dict):
        raise _bad(path, f"{where} is a {type(obj).__name__}, not a path or a STAC Item")
    assets = obj.get("assets")
    if not isinstance(assets, dict) or not assets:
        raise _bad(path, f"{where} ({obj.get('id', 'no id')}) has no assets")
    key = next((k for k in _ASSET_KEYS if isinstance(assets.get(k), dict)), None)
    if key is None:
        tifs = [
            k
            for k, a in assets.items()
            if isinstance(a, dict) and str(a.get("href", "")).lower().endswith((".tif", ".tiff", ".jp2", ".vrt"))
        ]
        key = tifs[0] if tifs else next(iter(assets))
    href = assets[key].get("href") if isinstance(assets[key], dict) else None
    if not isinstance(href, str) or not href:
        raise _bad(path, f"{where} asset {key!r} has no href")
    props = obj.get("properties") or {}
    cc = props.get("eo:cloud_cover")
    if cc is not None:
        try:
            cc = float(cc)
        except (TypeError, ValueError):
            raise _bad(path, f"{where} has eo:cloud_cover {cc!r}, not a number") from None
        if not math.isfinite(cc):
            raise _bad(path, f"{where} has eo:cloud_cover {cc!r}, not a finite number")
    return SceneEntry(_resolve(href, base, path, where), cc, _parse_time(props.get("datetime"), path, where))


def _resolve(href: str, base: Path, path: Path, where: str) -> Path:
    if href.startswith("file://"):
        href = href[len("file://") :]
    elif "://" in href:
        raise _bad(path, f"{where} is a URL ({href}); zoomplan reads local files only (download the scene first)")
    p = Path(os.path.expanduser(href))
    return p if p.is_absolute() else base / p


def read_scene_list(path: str | os.PathLike[str]) -> list[SceneEntry]:
    """The entries of the scene list at ``path``, in the order written (see the module docstring).

    Raises :class:`InputError` (one line) for a missing, empty or malformed list. The scenes themselves
    are checked later, when opened.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"scene list {p} not found: pass --scenes with a text file of scene paths or a STAC-like JSON")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _bad(p, f"cannot be read as UTF-8 text ({exc.__class__.__name__})") from None
    base = p.parent
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise _bad(p, f"invalid JSON (line {exc.lineno}: {exc.msg})") from None
        if isinstance(doc, dict):
            if doc.get("type") == "FeatureCollection":
                items = doc.get("features")
            elif doc.get("type") == "Feature":
                items = [doc]
            else:
                raise _bad(p, f"JSON object of type {doc.get('type')!r}, not a FeatureCollection")
        else:
            items = doc
        if not isinstance(items, list):
            raise _bad(p, "its features are not a list")
        entries = [_item(o, base, p, i) for i, o in enumerate(items)]
    else:
        entries = []
        for i, line in enumerate(text.splitlines()):
            s = line.split("#", 1)[0].strip()
            if s:
                entries.append(SceneEntry(_resolve(s, base, p, f"line {i + 1}")))
    if not entries:
        raise _bad(p, "lists no scene")
    return entries


def order_scenes(entries: Sequence[SceneEntry]) -> tuple[list[SceneEntry], str]:
    """``entries`` in overlap-priority order and the rule applied (:data:`RULE` or :data:`RULE_WRITTEN`).

    Least cloud cover first (unknown cover after every known one), then the most recent datetime
    (unknown after known), then the order written: a stable, deterministic sort.
    """
    if not any(e.cloud_cover is not None or e.datetime is not None for e in entries):
        return list(entries), RULE_WRITTEN

    def key(ie: tuple[int, SceneEntry]) -> tuple[float, float, int]:
        i, e = ie
        cc = e.cloud_cover if e.cloud_cover is not None else math.inf
        ts = -_timestamp(e.datetime) if e.datetime is not None else math.inf
        return (cc, ts, i)

    return [e for _, e in sorted(enumerate(entries), key=key)], RULE


def _timestamp(t: datetime) -> float:
    from datetime import timezone

    return (t if t.tzinfo is not None else t.replace(tzinfo=timezone.utc)).timestamp()
