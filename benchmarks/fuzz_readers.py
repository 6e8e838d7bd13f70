"""Fuzz the AOI reader (GeoJSON, KML) and the order-file reader with seeded mutations of valid files.

Every case must end in one of two ways: the reader returns valid polygons, or it raises a
:class:`zoomplan.errors.ZoomplanError` (a one-line message). Any other exception is a bug and is
printed with its case (seed, reader, mutation) so it can be replayed.

Mutations: byte flips, truncation, deleted brackets / braces / quotes / tags, wrong types for
coordinates, huge numbers, NaN and Infinity, deep nesting, empty strings, duplicated keys, wrong
geometry types, random unicode (also invalid UTF-8 bytes), and, for KML, mangled ``<coordinates>``
text and entity definitions.

Usage: python benchmarks/fuzz_readers.py [--cases 5000] [--seed 0]
Prints the number of cases per reader and the outcome classes; exits 1 if any case was a bug.
tests/hardening/test_fuzz_readers.py runs the same cases, fewer of them, time-boxed.
"""

from __future__ import annotations

import argparse
import collections
import copy
import json
import logging
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import shapely

from zoomplan.errors import ZoomplanError
from zoomplan.geo.aoi import read_aoi
from zoomplan.plan.export.vendor_formats import read_order_file

# ---------------------------------------------------------------- valid seed files (lon/lat near Accomac, Virginia)

RING = [[-75.67, 37.71], [-75.66, 37.71], [-75.66, 37.72], [-75.67, 37.72], [-75.67, 37.71]]
HOLE = [[-75.668, 37.712], [-75.668, 37.714], [-75.666, 37.714], [-75.666, 37.712], [-75.668, 37.712]]
PART2 = [[-75.65, 37.70], [-75.64, 37.70], [-75.64, 37.705], [-75.65, 37.70]]

SEED_AOI: dict[str, Any] = {
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "id": 1,
            "properties": {"id": "field-a", "name": "Field A"},
            "geometry": {"type": "Polygon", "coordinates": [RING, HOLE]},
        },
        {
            "type": "Feature",
            "id": 2,
            "properties": {"id": "farm-b", "name": "Ferme B \u00e9t\u00e9"},
            "geometry": {
                "type": "MultiPolygon",
                "coordinates": [[PART2], [[[-75.63, 37.70], [-75.62, 37.70], [-75.62, 37.71], [-75.63, 37.70]]]],
            },
        },
    ],
}

SEED_ORDER: dict[str, Any] = {
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "id": "order-1",
            "properties": {"order_id": "order-1", "vendor": "clip-50cm", "area_km2": 0.8, "est_cost_usd": 12.0},
            "geometry": {"type": "Polygon", "coordinates": [RING]},
        },
        {
            "type": "Feature",
            "id": "order-2",
            "properties": {"order_id": "order-2", "vendor": "clip-50cm", "area_km2": 0.2, "est_cost_usd": 3.0},
            "geometry": {"type": "MultiPolygon", "coordinates": [[PART2]]},
        },
    ],
    "summary": {"vendor": "clip-50cm", "plan_cost_usd": 15.0},
}


def _kml_coords(ring: list[list[float]]) -> str:
    return " ".join(f"{x},{y},0" for x, y in ring)


SEED_KML = f"""<?xml version="1.0" encoding="UTF-8"?>
<kml xmlns="http://www.opengis.net/kml/2.2">
<Document><name>aoi</name>
<Placemark><name>Field A</name><ExtendedData><Data name="id"><value>field-a</value></Data></ExtendedData>
<Polygon><outerBoundaryIs><LinearRing><coordinates>{_kml_coords(RING)}</coordinates></LinearRing></outerBoundaryIs>
<innerBoundaryIs><LinearRing><coordinates>{_kml_coords(HOLE)}</coordinates></LinearRing></innerBoundaryIs></Polygon></Placemark>
<Placemark><name>Farm B</name><MultiGeometry>
<Polygon><outerBoundaryIs><LinearRing><coordinates>{_kml_coords(PART2)}</coordinates></LinearRing></outerBoundaryIs></Polygon>
</MultiGeometry></Placemark>
</Document></kml>
"""

# ---------------------------------------------------------------- mutations

WEIRD_VALUES: list[Any] = [
    None,
    True,
    "",
    "12.5",
    "abc",
    [],
    {},
    [[]],
    [1],
    [1, 2, 3, 4],
    -0.0,
    1e308,
    -1e308,
    10**400,
    2**63,
    1e-320,
    float("nan"),
    float("inf"),
    float("-inf"),
    "\u202e\u0000\ud7ff",
    {"type": "Point"},
    [[1, 2]] * 3,
]
GEOM_TYPES = [
    "Point",
    "LineString",
    "MultiPoint",
    "MultiLineString",
    "GeometryCollection",
    "Polygon",
    "MultiPolygon",
    "polygon",
    "",
    "Feature",
    None,
    7,
]
UNICODE = ["\u00e9", "\u4e2d\u6587", "\U0001f600", "\u202e", "\u0000", "\ufeff", "\\u0000", "\udcff", "\u0301" * 50]


def _nodes(x: Any, path: tuple = ()) -> list[tuple]:
    """Paths of every node of a JSON document (dict keys / list indexes)."""
    out = [path]
    if isinstance(x, dict):
        for k, v in x.items():
            out += _nodes(v, path + (k,))
    elif isinstance(x, list):
        for i, v in enumerate(x):
            out += _nodes(v, path + (i,))
    return out


def _set(doc: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    cur = doc
    for k in path[:-1]:
        cur = cur[k]
    cur[path[-1]] = value
    return doc


def _get(doc: Any, path: tuple) -> Any:
    for k in path:
        doc = doc[k]
    return doc


def _dump(doc: Any) -> str:
    # allow_nan writes NaN / Infinity tokens (not JSON, but what careless writers produce)
    return json.dumps(doc, allow_nan=True, ensure_ascii=False)


def _json_mutation(rng: random.Random, seed: dict[str, Any]) -> tuple[str, bytes]:
    """One structural mutation of the seed document: (name, file bytes)."""
    doc = copy.deepcopy(seed)
    nodes = _nodes(doc)
    kind = rng.choice(
        ["value", "geomtype", "depth", "drop", "dupkey", "unicode", "coords", "number", "emptystr", "features", "crs"]
    )
    if kind == "value":
        _set(doc, rng.choice(nodes[1:]), copy.deepcopy(rng.choice(WEIRD_VALUES)))
    elif kind == "geomtype":
        f = rng.choice(doc["features"])
        if isinstance(f.get("geometry"), dict):
            f["geometry"]["type"] = rng.choice(GEOM_TYPES)
    elif kind == "depth":
        p = rng.choice([n for n in nodes if n and n[-1] == "coordinates"] or nodes[1:])
        inner = _dump(_get(doc, p))
        _set(doc, p, "__DEEP__")
        n = rng.choice([5, 50, 500, 5000])  # built as text: json.dumps itself recurses
        return kind, _dump(doc).replace('"__DEEP__"', "[" * n + inner + "]" * n).encode("utf-8", "surrogatepass")
    elif kind == "drop":
        p = rng.choice([n for n in nodes[1:] if isinstance(n[-1], str)])
        parent = _get(doc, p[:-1])
        parent.pop(p[-1], None)
    elif kind == "dupkey":
        text = _dump(doc)
        dup = rng.choice(
            [
                '"type": "Point", ',
                '"coordinates": [], ',
                '"type": "FeatureCollection", ',
                '"features": null, ',
                '"geometry": 5, ',
            ]
        )
        spots = [i + 1 for i, ch in enumerate(text) if ch == "{"]
        i = rng.choice(spots)
        return kind, (text[:i] + dup + text[i:]).encode("utf-8", "surrogatepass")
    elif kind == "unicode":
        p = rng.choice(
            [n for n in nodes if n and isinstance(_get(doc, n), str)] or [("features", 0, "properties", "name")]
        )
        s = "".join(rng.choice(UNICODE) for _ in range(rng.randint(1, 8)))
        if rng.random() < 0.5 and isinstance(p[-1], str):
            parent = _get(doc, p[:-1])
            parent[s] = parent.pop(p[-1])
        else:
            _set(doc, p, s)
    elif kind == "coords":
        p = rng.choice(
            [n for n in nodes if len(n) >= 2 and isinstance(n[-1], int) and isinstance(_get(doc, n), (int, float))]
        )
        _set(doc, p, rng.choice([float("nan"), float("inf"), 1e308, -1e308, 1e20, 400.0, -95.0, "1", None, [1.0], 0]))
    elif kind == "number":
        text = _dump(doc)
        nums = [m for m in __import__("re").finditer(r"-?\d+\.\d+", text)]
        m = rng.choice(nums)
        rep = rng.choice(
            ["1e400", "-1e400", "NaN", "Infinity", "1" * 400, "0x10", "1.2.3", "--1", ".5", "1e", "", "01.5"]
        )
        return kind, (text[: m.start()] + rep + text[m.end() :]).encode()
    elif kind == "emptystr":
        p = rng.choice(nodes[1:])
        _set(doc, p, "")
    elif kind == "features":
        doc["features"] = rng.choice(
            [
                [],
                None,
                {},
                "x",
                [None],
                [[]],
                [{"type": "Feature"}],
                [{"type": "Feature", "geometry": None, "properties": None}],
            ]
        )
    elif kind == "crs":
        doc["crs"] = rng.choice(
            [
                {"type": "name", "properties": {"name": "EPSG:32618"}},
                {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::999999"}},
                {"type": "name", "properties": {"name": ""}},
                "EPSG:4326",
                None,
                {"type": "name"},
                {"type": "name", "properties": {"name": "EPSG:3857"}},
            ]
        )
    text = _dump(doc)
    return kind, text.encode("utf-8", "surrogatepass")


def _byte_mutation(rng: random.Random, data: bytes, xml: bool) -> tuple[str, bytes]:
    """Byte-level damage: flips, truncation, deleted structure characters or tags, invalid UTF-8."""
    b = bytearray(data)
    kind = rng.choice(["flip", "truncate", "delete", "insert", "latin1", "tags" if xml else "delete", "empty"])
    if kind == "flip":
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(len(b))] = rng.randrange(256)
    elif kind == "truncate":
        b = b[: rng.randrange(len(b))]
    elif kind == "delete":
        chars = b'<>/"=' if xml else b'[]{}",:'
        spots = [i for i, c in enumerate(b) if c in chars]
        for i in sorted(rng.sample(spots, min(len(spots), rng.randint(1, 4))), reverse=True):
            del b[i]
    elif kind == "insert":
        i = rng.randrange(len(b))
        b[i:i] = rng.choice(
            [
                b"\x00",
                b"\xff\xfe",
                "\U0001f600".encode(),
                b"]]]]",
                b"{{{{",
                b"<<",
                b"&amp;&bogus;",
                b"\r\n\t",
                b"\xc3\x28",
            ]
        )
    elif kind == "latin1":
        b = bytearray(
            bytes(b).decode("utf-8", "replace").replace("Field", "Feld \u00e4\u00f6").encode("latin-1", "replace")
        )
    elif kind == "tags":
        text = bytes(b).decode("utf-8", "replace")
        import re

        tags = list(re.finditer(r"</?[A-Za-z][^>]*>", text))
        for m in sorted(rng.sample(tags, min(len(tags), rng.randint(1, 3))), key=lambda m: -m.start()):
            text = text[: m.start()] + text[m.end() :]
        b = bytearray(text.encode())
    elif kind == "empty":
        b = bytearray(rng.choice([b"", b" ", b"\n", b"{}", b"[]", b"null", b"<kml/>", b"\xef\xbb\xbf"]))
    return kind, bytes(b)


def _kml_mutation(rng: random.Random) -> tuple[str, bytes]:
    """KML-specific damage: mangled coordinates, geometry tags renamed, deep nesting, entities."""
    import re

    text = SEED_KML
    kind = rng.choice(["coords", "geomtag", "depth", "entity", "unicode"])
    if kind == "coords":
        blocks = list(re.finditer(r"<coordinates>(.*?)</coordinates>", text, re.S))
        m = rng.choice(blocks)
        rep = rng.choice(
            [
                "",
                "nan,nan,0 " * 4,
                "1e400,1e400",
                "-75.67,37.71",
                "-75.67 37.71 -75.66 37.71",
                "a,b,c",
                "1,2,3,4,5",
                "-75.67,95.0,0 " * 4,
                "200,37,0 201,37,0 201,38,0 200,37,0",
                "37.71,-75.67,0 37.72,-75.67,0 37.72,-75.66,0 37.71,-75.67,0",
                " ".join(["-75.67,37.71,0"] * 5),
                "inf,0 0,inf 1,1 inf,0",
                "\u4e2d,\u6587",
            ]
        )
        text = text[: m.start(1)] + rep + text[m.end(1) :]
    elif kind == "geomtag":
        tag = rng.choice(["Polygon", "LinearRing", "outerBoundaryIs", "MultiGeometry", "Placemark"])
        new = rng.choice(["Point", "LineString", "Foo", "", "polygon", "Model"])
        text = text.replace(f"<{tag}>", f"<{new}>" if new else "").replace(f"</{tag}>", f"</{new}>" if new else "")
    elif kind == "depth":
        n = rng.choice([10, 200, 3000])
        text = text.replace("<Document>", "<Document>" + "<Folder>" * n).replace(
            "</Document>", "</Folder>" * n + "</Document>"
        )
    elif kind == "entity":
        n = rng.choice([2, 10])
        ents = '<!ENTITY a "aaaaaaaaaa">' + "".join(
            f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * n}">' for i in range(3)
        )
        text = text.replace("<kml xmlns", f"<!DOCTYPE kml [{ents}]>\n<kml xmlns", 1).replace(
            "<name>aoi</name>", "<name>&d;</name>"
        )
    elif kind == "unicode":
        s = "".join(rng.choice(UNICODE) for _ in range(rng.randint(1, 8)))
        text = text.replace("Field A", s.replace("\u0000", "")).replace("field-a", s.replace("\u0000", ""))
    return kind, text.encode("utf-8", "surrogatepass")


@dataclass(frozen=True)
class Case:
    """One fuzz case: which reader, which file suffix, which mutation, and the bytes."""

    index: int
    reader: str  # "aoi-geojson" | "aoi-kml" | "order"
    mutation: str
    data: bytes


def cases(seed: int = 0) -> Iterator[Case]:
    """An endless, reproducible stream of cases cycling over the three readers."""
    rng = random.Random(seed)
    seeds = {"aoi-geojson": _dump(SEED_AOI).encode(), "order": _dump(SEED_ORDER).encode(), "aoi-kml": SEED_KML.encode()}
    i = 0
    while True:
        for reader in ("aoi-geojson", "aoi-kml", "order"):
            r = random.Random(rng.getrandbits(64))
            layer = r.random()
            if reader == "aoi-kml":
                name, data = _kml_mutation(r) if layer < 0.5 else _byte_mutation(r, seeds[reader], xml=True)
            else:
                base = SEED_AOI if reader == "aoi-geojson" else SEED_ORDER
                name, data = _json_mutation(r, base) if layer < 0.6 else _byte_mutation(r, seeds[reader], xml=False)
            if r.random() < 0.15:  # a second mutation on top of the first
                n2, data = _byte_mutation(r, data, xml=reader == "aoi-kml") if data else ("empty", data)
                name = f"{name}+{n2}"
            yield Case(i, reader, name, data)
            i += 1


def _check_ok(geoms: list[Any]) -> str | None:
    """None when every geometry is a valid, non-empty (Multi)Polygon of positive area with finite coordinates."""
    for g in geoms:
        if g.geom_type not in ("Polygon", "MultiPolygon") or g.is_empty or not g.is_valid or not g.area > 0:
            return f"returned a bad geometry ({g.geom_type}, valid={g.is_valid}, area={g.area})"
        if not np.isfinite(shapely.get_coordinates(g)).all():
            return "returned non-finite coordinates"
    return None


def run_case(case: Case, workdir: Path) -> tuple[str, str]:
    """Run one case; (outcome class, detail). Classes: ``ok``, a ZoomplanError subclass name, ``BUG``."""
    suffix = {"aoi-geojson": ".geojson", "aoi-kml": ".kml", "order": ".geojson"}[case.reader]
    path = workdir / f"case{case.index % 97}{suffix}"
    path.write_bytes(case.data)
    try:
        if case.reader == "order":
            geoms = [o.geometry for o in read_order_file(path).orders]
        else:
            geoms = list(read_aoi(path).geoms)
    except ZoomplanError as exc:
        msg = str(exc)
        if "\n" in msg or not msg:
            return "BUG", f"{type(exc).__name__} message is not one line: {msg[:300]!r}"
        return type(exc).__name__, msg
    except RecursionError as exc:  # noqa: F841 - reported as a bug like any other
        return "BUG", "RecursionError"
    except Exception as exc:  # noqa: BLE001 - the point of fuzzing: anything else is a bug
        return "BUG", f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
    bad = _check_ok(geoms)
    return ("BUG", bad) if bad else ("ok", "")


def fuzz(
    n_cases: int,
    seed: int = 0,
    time_limit_s: float | None = None,
    workdir: Path | None = None,
    on_case: Callable[[Case, str, str], None] | None = None,
) -> collections.Counter:
    """Run up to ``n_cases`` cases (stopping after ``time_limit_s`` seconds); a Counter of (reader, outcome)."""
    counts: collections.Counter = collections.Counter()
    logger = logging.getLogger("zoomplan")
    level = logger.level
    logger.setLevel(logging.ERROR)  # repairs warn by design; keep the run quiet (restored below)
    t0 = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            wd = Path(workdir or tmp)
            for case in cases(seed):
                if case.index >= n_cases or (time_limit_s is not None and time.perf_counter() - t0 > time_limit_s):
                    break
                outcome, detail = run_case(case, wd)
                counts[(case.reader, outcome)] += 1
                if on_case is not None:
                    on_case(case, outcome, detail)
    finally:
        logger.setLevel(level)
    return counts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    bugs: list[str] = []

    def note(case: Case, outcome: str, detail: str) -> None:
        if outcome == "BUG":
            bugs.append(f"case {case.index} ({case.reader}, {case.mutation}): {detail}")

    t0 = time.perf_counter()
    counts = fuzz(args.cases, args.seed, on_case=note)
    dt = time.perf_counter() - t0
    total = sum(counts.values())
    print(f"fuzz_readers: {total} cases, seed {args.seed}, {dt:.1f} s")
    for reader in ("aoi-geojson", "aoi-kml", "order"):
        per = {o: n for (r, o), n in sorted(counts.items()) if r == reader}
        print(
            f"  {reader:12s} {sum(per.values()):6d}  "
            + ", ".join(f"{o} {n}" for o, n in sorted(per.items(), key=lambda kv: -kv[1]))
        )
    print(f"  bugs (any other exception, or a bad geometry returned): {len(bugs)}")
    for b in bugs[:50]:
        print("   ", b)
    return 1 if bugs else 0


if __name__ == "__main__":
    sys.exit(main())
