"""Exports of an order file: GIS files read back by GDAL, vendor payloads checked against their public shapes."""

from __future__ import annotations

import csv
import datetime as dt
import json
import logging
import re
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import MultiPolygon, Polygon, shape

from tests.plan.order_synth import lonlat, utm_orders, write_order_file
from zoomplan.errors import ConfigError, InputError
from zoomplan.plan.export import gis_formats
from zoomplan.plan.export import vendor_formats as vf
from zoomplan.plan.orders.pricing import load_vendors

NOW = dt.datetime(2026, 11, 20, 15, 30, tzinfo=dt.UTC)


@pytest.fixture
def order(tmp_path: Path) -> tuple[Path, dict[str, shapely.Geometry]]:
    p = tmp_path / "order.geojson"
    return p, write_order_file(p)


def area_km2(g: shapely.Geometry) -> float:
    t = Transformer.from_crs(4326, 6933, always_xy=True)
    return shapely.transform(g, lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1]))).area / 1e6


# ---------------------------------------------------------------- GIS formats


@pytest.mark.parametrize("name", ["o.kml", "o.gpkg", "o.shp", "o.zip", "o.shp.zip"])
def test_gis_exports_read_back_with_gdal(tmp_path: Path, order: tuple[Path, dict], name: str) -> None:
    src, geoms = order
    out = tmp_path / "out" / name
    out.parent.mkdir()
    r = vf.export_order(src, out)
    assert r.n_records == 4 and out.is_file() and all(p.is_file() for p in r.written)
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no staging left
    df = pyogrio.read_dataframe(out)
    assert len(df) == 4 and df.crs.to_epsg() == 4326
    ids = list(df["Name"] if name.endswith(".kml") else df["order_id"])
    assert ids == list(geoms)
    for oid, g in zip(ids, df.geometry, strict=True):
        assert g.is_valid and area_km2(g) == pytest.approx(area_km2(geoms[oid]), rel=5e-3)
    if "shp" in name or name.endswith(".zip"):
        assert all(len(c) <= 10 for c in df.columns)
        assert set(df.columns) >= {"order_id", "area_km2", "billed_km2", "cost_usd", "classes", "whole_aoi"}
        assert list(df["classes"]) == ["forest, beach"] * 4


def test_csv_has_one_row_per_order_with_wkt(tmp_path: Path, order: tuple[Path, dict]) -> None:
    src, geoms = order
    out = tmp_path / "o.csv"
    vf.export_order(src, out)
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [r["order_id"] for r in rows] == list(geoms)
    for r in rows:
        g = shapely.from_wkt(r["WKT"])
        assert g.geom_type == geoms[r["order_id"]].geom_type and g.equals_exact(geoms[r["order_id"]], 1e-7)
        assert float(r["est_cost_usd"]) > 0 and r["vendor"] == "clip-50cm" and r["whole_aoi"] == "false"
    df = pyogrio.read_dataframe(out)  # GDAL takes the WKT column as the geometry
    assert len(df) == 4 and df.geometry.is_valid.all()


# ---------------------------------------------------------------- a tiny JSON Schema checker (no dependency)


def check(x: Any, s: dict, at: str = "$") -> None:
    """Validate ``x`` against the JSON Schema subset used below; AssertionError names the path."""
    if "anyOf" in s:
        errs = []
        for sub in s["anyOf"]:
            try:
                return check(x, sub, at)
            except AssertionError as e:
                errs.append(str(e))
        raise AssertionError(f"{at}: matches none of anyOf ({'; '.join(errs)})")
    types = {"object": dict, "array": list, "string": str, "number": (int, float), "integer": int, "boolean": bool}
    if "type" in s:
        assert isinstance(x, types[s["type"]]) and not (s["type"] in ("number", "integer") and isinstance(x, bool)), (
            f"{at}: not {s['type']}: {x!r}"
        )
    if "const" in s:
        assert x == s["const"], f"{at}: {x!r} != {s['const']!r}"
    if "pattern" in s:
        assert re.search(s["pattern"], x), f"{at}: {x!r} does not match {s['pattern']}"
    if "minimum" in s:
        assert x >= s["minimum"], f"{at}: {x} < {s['minimum']}"
    if "maximum" in s:
        assert x <= s["maximum"], f"{at}: {x} > {s['maximum']}"
    if isinstance(x, dict):
        for k in s.get("required", []):
            assert k in x, f"{at}: missing {k!r}"
        props = s.get("properties", {})
        if s.get("additionalProperties") is False:
            assert set(x) <= set(props), f"{at}: unexpected keys {sorted(set(x) - set(props))}"
        for k, v in x.items():
            if k in props:
                check(v, props[k], f"{at}.{k}")
    if isinstance(x, list):
        assert len(x) >= s.get("minItems", 0) and len(x) <= s.get("maxItems", len(x)), f"{at}: {len(x)} items"
        for i, v in enumerate(x):
            if "items" in s:
                check(v, s["items"], f"{at}[{i}]")


POSITION = {"type": "array", "minItems": 2, "maxItems": 2, "items": {"type": "number"}}
RING = {"type": "array", "minItems": 4, "items": POSITION}
POLYGON = {
    "type": "object",
    "required": ["type", "coordinates"],
    "additionalProperties": False,
    "properties": {"type": {"const": "Polygon"}, "coordinates": {"type": "array", "minItems": 1, "items": RING}},
}
MULTIPOLYGON = {
    "type": "object",
    "required": ["type", "coordinates"],
    "additionalProperties": False,
    "properties": {
        "type": {"const": "MultiPolygon"},
        "coordinates": {"type": "array", "minItems": 1, "items": POLYGON["properties"]["coordinates"]},
    },
}
STRING = {"type": "string"}
ISO = {"type": "string", "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"}

# Planet Orders API v2 create-order body, clip tool (docs.planet.com; Planet support "Example payload for using the
# clip tool").
PLANET = {
    "type": "object",
    "required": ["name", "products", "tools"],
    "additionalProperties": False,
    "properties": {
        "name": STRING,
        "source_type": {"const": "scenes"},
        "order_type": STRING,
        "delivery": {"type": "object"},
        "notifications": {"type": "object"},
        "hosting": {"type": "object"},
        "subscription_id": {"type": "integer"},
        "products": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["item_ids", "item_type", "product_bundle"],
                "additionalProperties": False,
                "properties": {
                    "item_ids": {"type": "array", "minItems": 1, "items": STRING},
                    "item_type": STRING,
                    "product_bundle": STRING,
                },
            },
        },
        "tools": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["clip"],
                "properties": {
                    "clip": {
                        "type": "object",
                        "required": ["aoi"],
                        "additionalProperties": False,
                        "properties": {"aoi": {"anyOf": [POLYGON, MULTIPOLYGON]}},
                    }
                },
            },
        },
    },
}
# UP42 orders v2 (POST /v2/orders, the body up42-py's BatchOrderTemplate sends).
UP42 = {
    "type": "object",
    "required": ["dataProduct", "displayName", "params", "featureCollection"],
    "additionalProperties": False,
    "properties": {
        "dataProduct": STRING,
        "displayName": STRING,
        "params": {"type": "object"},
        "tags": {"type": "array", "items": STRING},
        "featureCollection": {
            "type": "object",
            "required": ["type", "features"],
            "properties": {
                "type": {"const": "FeatureCollection"},
                "features": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["type", "geometry"],
                        "properties": {
                            "type": {"const": "Feature"},
                            "geometry": POLYGON,
                            "properties": {"type": "object"},
                        },
                    },
                },
            },
        },
    },
}
WKT_POLYGON = {"type": "string", "pattern": r"^POLYGON \(\((-?\d+(\.\d+)? -?\d+(\.\d+)?(, )?)+\)\)$"}
SKYFI_COMMON = {
    "aoi": WKT_POLYGON,
    "label": STRING,
    "orderLabel": STRING,
    "metadata": {"type": "object"},
    "deliveryDriver": STRING,
    "deliveryParams": {"type": "object"},
    "webhookUrl": STRING,
}
# SkyFi Platform API: ArchiveOrderRequest (POST /order-archive), TaskingOrderRequest (POST /order-tasking).
SKYFI_ARCHIVE = {
    "type": "object",
    "required": ["aoi", "archiveId"],
    "additionalProperties": False,
    "properties": {**SKYFI_COMMON, "archiveId": STRING},
}
SKYFI_TASKING = {
    "type": "object",
    "required": ["aoi", "windowStart", "windowEnd", "productType", "resolution"],
    "additionalProperties": False,
    "properties": {
        **SKYFI_COMMON,
        "windowStart": ISO,
        "windowEnd": ISO,
        "productType": STRING,
        "resolution": STRING,
        "maxCloudCoveragePercent": {"type": "number", "minimum": 0, "maximum": 100},
        "maxOffNadirAngle": {"type": "number", "minimum": 0, "maximum": 45},
        "priorityItem": {"type": "boolean"},
        "requiredProvider": STRING,
    },
}
# STAPI OrderPayload (stapi-pydantic: datetime interval, geometry, CQL2 JSON filter, order_parameters; product_id of
# the drafts).
CQL2_LE = {
    "type": "object",
    "required": ["op", "args"],
    "properties": {"op": {"const": "<="}, "args": {"type": "array", "minItems": 2, "maxItems": 2}},
}
STAPI = {
    "type": "object",
    "required": ["datetime", "geometry", "order_parameters"],
    "additionalProperties": False,
    "properties": {
        "product_id": STRING,
        "datetime": {"type": "string", "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"},
        "geometry": POLYGON,
        "order_parameters": {"type": "object"},
        "filter": {
            "type": "object",
            "required": ["op", "args"],
            "properties": {"op": {"const": "and"}, "args": {"type": "array", "minItems": 1, "items": CQL2_LE}},
        },
    },
}

CAPS = {"planet": 500, "up42": 999, "skyfi": 500, "stapi": None}


def payload_geometries(fmt: str, body: dict) -> list[shapely.Geometry]:
    if fmt == "planet":
        return [shape(t["clip"]["aoi"]) for t in body["tools"]]
    if fmt == "up42":
        return [shape(f["geometry"]) for f in body["featureCollection"]["features"]]
    if fmt == "skyfi":
        return [shapely.from_wkt(body["aoi"])]
    return [shape(body["geometry"])]


def raw_rings(fmt: str, body: dict) -> list[list]:
    """Rings exactly as written (to check closure and counts on the text, not on shapely's reading)."""
    if fmt == "skyfi":
        inner = body["aoi"][len("POLYGON ((") : -2]
        return [[tuple(map(float, pt.split())) for pt in inner.split(", ")]]
    g = (
        body["tools"][0]["clip"]["aoi"]
        if fmt == "planet"
        else body["featureCollection"]["features"][0]["geometry"]
        if fmt == "up42"
        else body["geometry"]
    )
    polys = [g["coordinates"]] if g["type"] == "Polygon" else g["coordinates"]
    return [ring for p in polys for ring in p]


@pytest.mark.parametrize("fmt", ["planet", "up42", "skyfi", "stapi"])
@pytest.mark.parametrize("kind", ["archive", "tasking"])
def test_payloads_obey_shapes_and_limits(
    tmp_path: Path, order: tuple[Path, dict], fmt: str, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    src, geoms = order
    cat = tmp_path / "vendors.toml"
    text = (Path(vf.__file__).parents[3] / "configs" / "vendors.toml").read_text()
    cat.write_text(text.replace('kind = "archive"', f'kind = "{kind}"'))
    v = load_vendors(cat)["clip-50cm"]
    out = tmp_path / f"{fmt}.json"
    with caplog.at_level(logging.WARNING, logger="zoomplan"):
        r = vf.export_order(src, out, fmt, vendors_file=cat, now=NOW)
    bodies = json.loads(out.read_text())
    assert (
        isinstance(bodies, list) and r.n_records == len(bodies) and r.placeholders == vf.count_placeholders(bodies) > 0
    )
    single = fmt != "planet"
    assert len(bodies) == (5 if single else 4)  # the MultiPolygon order is split where one Polygon is required
    schema = {
        "planet": PLANET,
        "up42": UP42,
        "stapi": STAPI,
        "skyfi": SKYFI_TASKING if kind == "tasking" else SKYFI_ARCHIVE,
    }[fmt]
    for b in bodies:
        check(b, schema)
    names = [b.get("name") or b.get("displayName") or b.get("label") for b in bodies]
    if fmt != "stapi":
        assert names == (["a0_rect", "a0_multi-1", "a0_multi-2", "a1_hole", "a1_wavy"] if single else list(geoms))
    for b in bodies:
        for ring in raw_rings(fmt, b):
            assert ring[0] == ring[-1] and len(ring) >= 4  # closed
            assert all(-180 <= x <= 180 and -90 <= y <= 90 and round(x, 7) == x and round(y, 7) == y for x, y in ring)
        n_written = sum(len(ring) for ring in raw_rings(fmt, b))
        assert CAPS[fmt] is None or n_written <= CAPS[fmt]
        for g in payload_geometries(fmt, b):
            assert g.is_valid and (isinstance(g, Polygon) or (not single and isinstance(g, MultiPolygon)))
            for p in getattr(g, "geoms", [g]):
                assert not p.interiors and p.exterior.is_ccw
            assert vf.n_vertices(g) <= v.max_vertices
    union = shapely.union_all([g for b in bodies for g in payload_geometries(fmt, b)])
    for oid, g in geoms.items():
        assert g.difference(union).area <= 1e-12, oid  # every order is covered (deg^2; ~0.01 m^2)
    assert area_km2(union) <= 1.05 * area_km2(
        shapely.union_all([Polygon(p.exterior) for g in geoms.values() for p in getattr(g, "geoms", [g])])
    )
    msgs = [rec.getMessage() for rec in caplog.records]
    assert any("a1_hole: 1 hole(s) filled" in m for m in msgs)
    assert any("a1_wavy" in m and "simplified outwards" in m for m in msgs)  # 1500 vertices > the profile's 1000
    if fmt == "stapi":
        b = bodies[0]
        assert b["filter"]["args"][0]["args"] == [{"property": "eo:cloud_cover"}, v.cloud_max_pct]
        assert b["filter"]["args"][1]["args"] == [{"property": "view:off_nadir"}, v.off_nadir_max_deg]
        assert b["datetime"] == (
            "2026-11-21T00:00:00Z/2026-12-21T00:00:00Z"
            if kind == "tasking"
            else "2025-11-20T00:00:00Z/2026-11-20T00:00:00Z"
        )
    if fmt == "skyfi" and kind == "tasking":
        assert (
            bodies[0]["maxCloudCoveragePercent"] == v.cloud_max_pct
            and bodies[0]["maxOffNadirAngle"] == v.off_nadir_max_deg
        )
    if fmt == "up42":
        assert set(bodies[0]["params"]) == ({"acquisitionStart", "acquisitionEnd"} if kind == "tasking" else {"id"})


@pytest.mark.parametrize(("max_vertices", "max_coords"), [(8, None), (10_000, 500), (10_000, 999), (4, None)])
def test_fit_geometry_meets_each_limit_and_covers(max_vertices: int, max_coords: int | None) -> None:
    g = lonlat(utm_orders()["a1_wavy"], ccw=False)
    out = vf.fit_geometry(
        g, vf.Limits(single_polygon=True, max_vertices=max_vertices, max_coords=max_coords), label="w"
    )
    assert len(out) == 1 and isinstance(out[0], Polygon) and out[0].exterior.is_ccw
    assert vf.n_vertices(out[0]) <= max_vertices and (max_coords is None or vf.n_coords(out[0]) <= max_coords)
    assert g.difference(out[0]).area <= 1e-12
    # close to the polygon when the cap leaves room; never much beyond its minimum rotated rectangle otherwise
    assert area_km2(out[0]) <= (1.03 * area_km2(g) if max_coords else 1.01 * area_km2(g.minimum_rotated_rectangle))


def test_window_parsing() -> None:
    a, b = vf.parse_window("2026-12-01/2027-01-31")
    assert a == dt.datetime(2026, 12, 1, tzinfo=dt.UTC) and b == dt.datetime(2027, 1, 31, 23, 59, 59, tzinfo=dt.UTC)
    for bad in ("2026-12-01", "2027-01-01/2026-01-01", "soon/later"):
        with pytest.raises(ConfigError, match="--window"):
            vf.parse_window(bad)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist"),
        ("not json at all", "is not JSON"),
        ('{"type": "Feature"}', "is not a GeoJSON FeatureCollection"),
        ('{"type": "FeatureCollection", "features": []}', "has no orders"),
        (
            '{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, "geometry": {"type": '
            '"Point", "coordinates": [1, 2]}}]}',
            "is a Point",
        ),
        (
            '{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, "geometry": {"type": '
            '"Polygon", "coordinates": [[[440000, 4170000], [440100, 4170000], [440100, 4170100], [440000, '
            "4170000]]]}}]}",
            "outside lon [-180, 180]",
        ),
    ],
)
def test_bad_order_files(tmp_path: Path, content: str | None, message: str) -> None:
    src = tmp_path / "order.geojson"
    if content is not None:
        src.write_text(content)
    with pytest.raises(InputError, match=re.escape(message)) as e:
        vf.export_order(src, tmp_path / "o.gpkg")
    assert "\n" not in str(e.value) and str(src) in str(e.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == (["order.geojson"] if content is not None else [])


def test_unknown_vendor_names_the_catalogue_fix(tmp_path: Path) -> None:
    src = tmp_path / "order.geojson"
    write_order_file(src, vendor="acme-10cm")
    with pytest.raises(InputError, match="vendor 'acme-10cm' is not in the vendor catalogue.*pass --vendors"):
        vf.export_order(src, tmp_path / "p.json", "planet")
    assert not (tmp_path / "p.json").exists()


def test_interrupted_writes_leave_nothing(
    tmp_path: Path, order: tuple[Path, dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    src, _ = order
    real = pyogrio.write_dataframe

    def half_then_fail(df: Any, path: Any, **kw: Any) -> None:
        real(df.iloc[:1], path, **kw)  # a partial file on disk ...
        raise RuntimeError("disk full")  # ... then the writer dies

    monkeypatch.setattr(pyogrio, "write_dataframe", half_then_fail)
    for name in ("o.gpkg", "o.shp", "o.zip", "o.kml"):
        with pytest.raises(RuntimeError, match="disk full"):
            vf.export_order(src, tmp_path / name)
    calls = {"n": 0}
    to_wkt = shapely.to_wkt

    def wkt_then_fail(g: Any, **kw: Any) -> str:
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("killed")
        return to_wkt(g, **kw)

    monkeypatch.setattr(gis_formats.shapely, "to_wkt", wkt_then_fail)
    (tmp_path / "o.csv").write_text("old\n")
    with pytest.raises(RuntimeError, match="killed"):
        vf.export_order(src, tmp_path / "o.csv")
    assert (tmp_path / "o.csv").read_text() == "old\n"  # the previous file is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.csv", "order.geojson"]
