"""Input catalogue, AOIs (docs/inputs.md): each row's exact behaviour through ``zoomplan plan``."""
# ruff: noqa: F811 - the fixtures imported from catalogue are redefined as test arguments

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest
import shapely
from pyproj import Transformer

from tests.hardening.catalogue import X0, Y0, assert_refused, planned, run_plan, scene, to_lonlat, warnings_log  # noqa: F401 (fixtures)
from tests.helpers.synth import utm_scene, write_aoi

INSIDE = shapely.box(X0 + 40, Y0 - 400, X0 + 360, Y0 - 80)  # 320 m x 320 m inside the scene, EPSG:32618


def _geojson(path: Path, geometries: list[dict[str, Any] | None], crs: str | None = None) -> Path:
    doc: dict[str, Any] = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {"id": f"f{i}"}, "geometry": g} for i, g in enumerate(geometries)
        ],
    }
    if crs:
        doc["crs"] = {"type": "name", "properties": {"name": crs}}
    path.write_text(json.dumps(doc))
    return path


def _ll(g: Any) -> dict[str, Any]:
    return shapely.geometry.mapping(to_lonlat(g))


def test_self_intersecting_is_repaired_with_warning(
    run_plan: Callable, scene: Path, tmp_path: Path, warnings_log: Any
) -> None:
    x0, y0 = X0 + 40, Y0 - 400
    bowtie = shapely.Polygon(
        [(x0, y0), (x0 + 320, y0 + 320), (x0 + 320, y0), (x0, y0 + 320)]
    )  # two triangles of 25,600 m^2
    aoi = write_aoi(tmp_path / "bowtie.gpkg", [bowtie], "EPSG:32618", ids=["bow"])
    r, out = run_plan(aoi, scene)
    s = planned(r, out)
    assert "was invalid (Self-intersection" in warnings_log.text and "repaired with make_valid" in warnings_log.text
    assert s["aoi_km2"] == pytest.approx(2 * 0.5 * 160 * 320 / 1e6, rel=1e-6)


@pytest.mark.parametrize(
    "geom",
    [
        shapely.Polygon(
            [(X0 + 40, Y0 - 400), (X0 + 200, Y0 - 400), (X0 + 360, Y0 - 400), (X0 + 40, Y0 - 400)]
        ),  # collinear
        shapely.Polygon(
            [(X0 + 40, Y0 - 400), (X0 + 40, Y0 - 400), (X0 + 40, Y0 - 400), (X0 + 40, Y0 - 400)]
        ),  # one point
    ],
    ids=["collinear", "one-point"],
)
def test_zero_area_is_refused(run_plan: Callable, scene: Path, tmp_path: Path, geom: Any) -> None:
    aoi = write_aoi(tmp_path / "flat.gpkg", [geom], "EPSG:32618", ids=["flat"])
    r, out = run_plan(aoi, scene)
    line = assert_refused(r, out, str(aoi), "'flat'")
    assert "cannot be repaired into a polygon" in line or "has zero area" in line


def test_empty_collection_is_refused(run_plan: Callable, scene: Path, tmp_path: Path) -> None:
    aoi = tmp_path / "empty.geojson"
    aoi.write_text('{"type": "FeatureCollection", "features": []}')
    r, out = run_plan(aoi, scene)
    assert_refused(r, out, str(aoi), "has no features", "draw at least one polygon")


def test_empty_file_is_refused(run_plan: Callable, scene: Path, tmp_path: Path) -> None:
    aoi = tmp_path / "zero.geojson"
    aoi.write_bytes(b"")
    r, out = run_plan(aoi, scene)
    assert_refused(r, out, str(aoi), "is not a vector file GDAL can read", "pass a GeoJSON")


def test_missing_file_is_refused(run_plan: Callable, scene: Path, tmp_path: Path) -> None:
    r, out = run_plan(tmp_path / "nope.geojson", scene)
    assert_refused(r, out, "nope.geojson", "not found")


@pytest.mark.parametrize(
    ("geom", "kind"),
    [
        (shapely.Point(X0 + 100, Y0 - 100), "Point"),
        (shapely.LineString([(X0 + 100, Y0 - 100), (X0 + 300, Y0 - 300)]), "LineString"),
        (shapely.MultiPoint([(X0 + 100, Y0 - 100), (X0 + 300, Y0 - 300)]), "MultiPoint"),
    ],
)
def test_points_and_lines_are_refused(run_plan: Callable, scene: Path, tmp_path: Path, geom: Any, kind: str) -> None:
    aoi = _geojson(tmp_path / "pt.geojson", [_ll(geom)])
    r, out = run_plan(aoi, scene)
    assert_refused(r, out, str(aoi), f"'f0' is a {kind}", "buffer points or lines into polygons first")


def test_geometry_collection_keeps_its_polygons(
    run_plan: Callable, scene: Path, tmp_path: Path, warnings_log: Any
) -> None:
    gc = shapely.GeometryCollection(
        [INSIDE, shapely.LineString([(X0 + 10, Y0 - 10), (X0 + 400, Y0 - 10)]), shapely.Point(X0 + 5, Y0 - 5)]
    )
    aoi = _geojson(tmp_path / "gc.geojson", [_ll(gc)])
    r, out = run_plan(aoi, scene)
    s = planned(r, out)
    assert "is a GeometryCollection; its LineString/Point part(s) are dropped" in warnings_log.text
    assert s["aoi_km2"] == pytest.approx(INSIDE.area / 1e6, rel=2e-3)


def test_geometry_collection_without_polygon_is_refused(run_plan: Callable, scene: Path, tmp_path: Path) -> None:
    gc = shapely.GeometryCollection(
        [shapely.Point(X0 + 5, Y0 - 5), shapely.LineString([(X0 + 10, Y0 - 10), (X0 + 400, Y0 - 10)])]
    )
    aoi = _geojson(tmp_path / "gc.geojson", [_ll(gc)])
    r, out = run_plan(aoi, scene)
    assert_refused(r, out, str(aoi), "holds no polygon", "AOIs must be Polygon or MultiPolygon")


def test_holes_are_kept(run_plan: Callable, scene: Path, tmp_path: Path) -> None:
    hole = shapely.box(X0 + 120, Y0 - 320, X0 + 280, Y0 - 160)  # 160 m: 8 x 8 patches of 20 m
    donut = shapely.Polygon(INSIDE.exterior.coords, [hole.exterior.coords])
    aoi = write_aoi(tmp_path / "donut.gpkg", [donut], "EPSG:32618", ids=["donut"])
    r, out = run_plan(aoi, scene, "--patches", str(tmp_path / "out" / "patches.geojson"))
    s = planned(r, out)
    assert s["aoi_km2"] == pytest.approx(donut.area / 1e6, rel=1e-9)
    patches = json.loads((tmp_path / "out" / "patches.geojson").read_text())["features"]
    to_utm = Transformer.from_crs(4326, 32618, always_xy=True)
    centres = [
        shapely.Point(*to_utm.transform(*shapely.geometry.shape(f["geometry"]).centroid.coords[0])) for f in patches
    ]
    assert patches and not any(hole.buffer(-1.0).contains(c) for c in centres)  # no patch inside the hole
    assert s["patches_total"] == (16 * 16) - (8 * 8)


def test_3d_coordinates_are_dropped_to_2d(run_plan: Callable, scene: Path, tmp_path: Path, warnings_log: Any) -> None:
    ll = to_lonlat(INSIDE)
    z = shapely.Polygon([(x, y, 12.5) for x, y in ll.exterior.coords])
    aoi = _geojson(tmp_path / "z.geojson", [shapely.geometry.mapping(z)])
    r, out = run_plan(aoi, scene)
    s = planned(r, out)
    assert "has Z coordinates; heights are dropped (planned in 2D)" in warnings_log.text
    assert s["aoi_km2"] == pytest.approx(INSIDE.area / 1e6, rel=2e-3)


def test_no_crs_is_refused(run_plan: Callable, scene: Path, tmp_path: Path) -> None:
    aoi = write_aoi(tmp_path / "nocrs.shp", [INSIDE], None)
    r, out = run_plan(aoi, scene)
    line = assert_refused(r, out, str(aoi), "has no CRS", "python -c")
    # The hint, run as printed (with the EPSG code of these coordinates), gives an AOI that plans.
    code = re.search(r'python -c "([^"]+)"', line).group(1).replace("EPSG:4326", "EPSG:32618")
    subprocess.run([sys.executable, "-c", code], cwd=aoi.parent, check=True, capture_output=True)
    r, out = run_plan(aoi.parent / "aoi_crs.gpkg", scene)
    assert planned(r, out)["aoi_km2"] == pytest.approx(INSIDE.area / 1e6, rel=2e-3)


def test_latlon_swapped_out_of_range_is_refused(run_plan: Callable, scene: Path, tmp_path: Path) -> None:
    """Hangzhou (120.1 E, 30.1 N) written latitude first: y = 120 is beyond +-90, x within +-90."""
    swapped = shapely.Polygon([(lat, lon) for lon, lat in [(120.1, 30.1), (120.2, 30.1), (120.2, 30.2), (120.1, 30.1)]])
    aoi = _geojson(tmp_path / "swapped.geojson", [shapely.geometry.mapping(swapped)])
    r, out = run_plan(aoi, scene)
    assert_refused(r, out, str(aoi), "the axes look swapped (latitude, longitude)", "write every point longitude first")


def test_latlon_swapped_in_range_lands_elsewhere(run_plan: Callable, scene: Path, tmp_path: Path) -> None:
    ll = to_lonlat(INSIDE)
    swapped = shapely.Polygon([(y, x) for x, y in ll.exterior.coords])  # (37.7 E, 75.7 S): valid degrees, wrong place
    aoi = _geojson(tmp_path / "swapped.geojson", [shapely.geometry.mapping(swapped)])
    r, out = run_plan(aoi, scene)
    assert_refused(
        r, out, str(aoi), "(centred at 37.6", "lies outside every scene", "pass --lr scenes that cover the AOI"
    )


def test_projected_coordinates_labelled_as_degrees_are_refused(run_plan: Callable, scene: Path, tmp_path: Path) -> None:
    aoi = _geojson(
        tmp_path / "metres.geojson", [shapely.geometry.mapping(INSIDE)]
    )  # UTM metres, no crs member: read as EPSG:4326
    r, out = run_plan(aoi, scene)
    assert_refused(r, out, str(aoi), "says EPSG:4326 (degrees) but its coordinates reach", "reproject it")


@pytest.mark.parametrize("shape", ["split-multipolygon", "over-180", "naive-wrap"])
def test_antimeridian_crossing_is_refused(run_plan: Callable, tmp_path: Path, shape: str) -> None:
    scene = utm_scene(tmp_path / "fiji.tif", epsg=32760, x0=800000.0, y0=8230000.0, size=16)
    geoms = {
        "split-multipolygon": shapely.MultiPolygon(
            [shapely.box(179.95, -16.02, 180.0, -16.0), shapely.box(-180.0, -16.02, -179.95, -16.0)]
        ),
        "over-180": shapely.box(179.95, -16.02, 180.05, -16.0),
        "naive-wrap": shapely.Polygon([(179.95, -16.02), (-179.95, -16.02), (-179.95, -16.0), (179.95, -16.0)]),
    }
    aoi = _geojson(tmp_path / "am.geojson", [shapely.geometry.mapping(geoms[shape])])
    r, out = run_plan(aoi, scene)
    assert_refused(r, out, str(aoi), "crosses the antimeridian", "split it at 180 degrees into two AOI files")


def test_near_the_pole_is_planned_in_utm(run_plan: Callable, tmp_path: Path) -> None:
    """83.9 N, in UTM 33N (as Sentinel-2 tiles there are): planned, areas true."""
    x, y = Transformer.from_crs(4326, 32633, always_xy=True).transform(15.0, 83.9)
    x0, y0 = 80.0 * round(x / 80.0) - 240.0, 80.0 * round(y / 80.0) + 240.0
    scene = utm_scene(tmp_path / "svalbard.tif", epsg=32633, x0=x0, y0=y0, size=48)
    box = shapely.box(x0 + 40, y0 - 400, x0 + 360, y0 - 80)
    aoi = _geojson(tmp_path / "north.geojson", [shapely.geometry.mapping(to_lonlat(box, 32633))])
    r, out = run_plan(aoi, scene)
    s = planned(r, out)
    assert s["planning_crs"] == "EPSG:32633" and s["aoi_km2"] == pytest.approx(box.area / 1e6, rel=2e-3)


@pytest.mark.parametrize(("lat", "where"), [(84.5, "84.5"), (-81.0, "-81.0")])
def test_beyond_utm_latitudes_is_refused(
    run_plan: Callable, scene: Path, tmp_path: Path, lat: float, where: str
) -> None:
    aoi = _geojson(
        tmp_path / "polar.geojson", [shapely.geometry.mapping(shapely.box(15.0, lat - 0.01, 15.05, lat + 0.01))]
    )
    r, out = run_plan(aoi, scene)
    assert_refused(r, out, str(aoi), "beyond 80S..84N", "clip the AOI to latitudes -80..84")


def test_larger_than_the_scene_plans_the_covered_part(
    run_plan: Callable, scene: Path, tmp_path: Path, warnings_log: Any
) -> None:
    big = shapely.box(X0 - 400, Y0 - 880, X0 + 880, Y0 + 400)  # 1,280 m square around the 480 m scene
    aoi = write_aoi(tmp_path / "big.gpkg", [big], "EPSG:32618", ids=["big"])
    r, out = run_plan(aoi, scene)
    s = planned(r, out)
    assert "85.9% of the AOI lies outside the scenes: it is neither planned nor priced" in warnings_log.text
    assert s["aoi_covered_fraction"] == pytest.approx((480 * 480) / (1280 * 1280), abs=1e-3)
    assert s["tiles"]["outside_scenes"] > 0 and s["tiles"]["planned"] == 36
    # the baseline buys the part inside the scene (0.2304 km2), not the 1.64 km2 AOI: savings are not overstated
    assert s["baseline_scope"] == "the AOI's part inside the scenes, bought whole"
    assert s["baseline_billed_km2"] == pytest.approx(0.48 * 0.48, rel=1e-3)  # clip-50cm: minimum 0.1 km2
    assert s["plan_cost_usd"] <= s["baseline_cost_usd"]
    r0, out0 = run_plan(aoi, scene, "--threshold", "0")  # buying every patch costs the baseline exactly
    s0 = planned(r0, out0)
    assert s0["plan_cost_usd"] == s0["baseline_cost_usd"] and s0["savings_usd"] == 0


def test_feature_wholly_outside_the_scene_is_neither_ordered_nor_priced(
    run_plan: Callable, scene: Path, tmp_path: Path, warnings_log: Any
) -> None:
    far = shapely.box(X0 + 2000, Y0 - 400, X0 + 2400, Y0)  # 0.16 km2, 1.5 km east of the 480 m scene
    aoi = write_aoi(tmp_path / "two.gpkg", [INSIDE, far], "EPSG:32618", ids=["in", "far"])
    r, out = run_plan(aoi, scene, "--threshold", "0")
    s = planned(r, out)
    assert "of the AOI lies outside the scenes: it is neither planned nor priced" in warnings_log.text
    order = json.loads(out.read_text())
    assert {f["properties"]["aoi_index"] for f in order["features"]} == {0}, "no order for the feature outside"
    assert s["baseline_billed_km2"] == pytest.approx(max(INSIDE.area / 1e6, 0.1), rel=1e-3)  # not + far's 0.16 km2
    assert s["plan_cost_usd"] == s["baseline_cost_usd"]


def test_overlapping_features_are_planned_once(
    run_plan: Callable, scene: Path, tmp_path: Path, warnings_log: Any
) -> None:
    a = shapely.box(X0 + 40, Y0 - 400, X0 + 280, Y0 - 80)
    b = shapely.box(X0 + 120, Y0 - 400, X0 + 360, Y0 - 80)
    aoi = write_aoi(tmp_path / "overlap.gpkg", [a, b], "EPSG:32618", ids=["a", "b"])
    r, out = run_plan(aoi, scene, "--patches", str(tmp_path / "out" / "patches.geojson"))
    s = planned(r, out)
    assert "1 pair(s) of features overlap (first: 'a' and 'b')" in warnings_log.text
    assert s["aoi_km2"] == pytest.approx(a.union(b).area / 1e6, rel=1e-9)
    feats = json.loads((tmp_path / "out" / "patches.geojson").read_text())["features"]
    ids = [f["properties"].get("patch_id") or json.dumps(f["geometry"]["coordinates"]) for f in feats]
    assert len(ids) == len(set(ids)) == s["patches_total"] == 16 * 16  # each patch once, for one feature
    assert sum(f["patches_total"] for f in s["aoi_features"]) == s["patches_total"]


def test_feet_crs_is_reprojected(run_plan: Callable, scene: Path, tmp_path: Path) -> None:
    """EPSG:2284 (Virginia South, US survey feet): reprojected to the scene's UTM zone; areas in km^2 stay true."""
    to_ft = Transformer.from_crs(32618, 2284, always_xy=True)
    cx, cy = to_ft.transform(X0 + 200, Y0 - 240)
    box_ft = shapely.box(cx - 500, cy - 500, cx + 500, cy + 500)  # 1000 ftUS square
    aoi = write_aoi(tmp_path / "feet.gpkg", [box_ft], "EPSG:2284", ids=["ft"])
    r, out = run_plan(aoi, scene)
    s = planned(r, out)
    ft = 1200 / 3937  # metres per US survey foot
    assert s["planning_crs"] == "EPSG:32618"
    assert s["aoi_km2"] == pytest.approx((1000 * ft) ** 2 / 1e6, rel=2e-3)


def test_non_utf8_names_are_read_as_latin1(run_plan: Callable, scene: Path, tmp_path: Path, warnings_log: Any) -> None:
    doc = {
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "properties": {"id": "x", "name": "Ch\u00e2teau"}, "geometry": _ll(INSIDE)}],
    }
    aoi = tmp_path / "latin1.geojson"
    aoi.write_bytes(json.dumps(doc, ensure_ascii=False).encode("latin-1"))
    r, out = run_plan(aoi, scene)
    s = planned(r, out)
    assert s["aoi_km2"] == pytest.approx(INSIDE.area / 1e6, rel=2e-3)
    assert s["aoi_features"][0]["id"] == "x" and s["aoi_features"][0]["name"] == "Ch\u00e2teau"
    assert "attribute text is not UTF-8; read as Latin-1" in warnings_log.text


KML = """<?xml version="1.0" encoding="UTF-8"?>
<kml xmlns="http://www.opengis.net/kml/2.2"><Document>
<Placemark><name>field</name>{geometry}</Placemark>
</Document></kml>
"""


def _kml_polygon(g: Any) -> str:
    coords = " ".join(f"{x:.8f},{y:.8f},0" for x, y in to_lonlat(g).exterior.coords)
    ring = f"<LinearRing><coordinates>{coords}</coordinates></LinearRing>"
    return f"<Polygon><outerBoundaryIs>{ring}</outerBoundaryIs></Polygon>"


def test_kml_aoi_is_planned(run_plan: Callable, scene: Path, tmp_path: Path) -> None:
    aoi = tmp_path / "field.kml"
    aoi.write_text(KML.format(geometry=_kml_polygon(INSIDE)))
    r, out = run_plan(aoi, scene)
    s = planned(r, out)
    assert s["aoi_km2"] == pytest.approx(INSIDE.area / 1e6, rel=2e-3) and s["aoi_features"][0]["name"] == "field"


def test_kml_with_a_model_is_refused(run_plan: Callable, scene: Path, tmp_path: Path) -> None:
    """A <Model> inside a <MultiGeometry> crashes GDAL's LIBKML driver (found by fuzzing): refused before GDAL reads
    it."""
    aoi = tmp_path / "model.kml"
    aoi.write_text(
        KML.format(
            geometry=f"<MultiGeometry>{_kml_polygon(INSIDE)}<Model><Link><href>m.dae</href></Link></Model></MultiGeometry>"
        )
    )
    r, out = run_plan(aoi, scene)
    assert_refused(r, out, str(aoi), "holds a KML <Model>", "draw the AOI as Polygons")


def test_malformed_kml_is_refused(run_plan: Callable, scene: Path, tmp_path: Path) -> None:
    aoi = tmp_path / "bad.kml"
    aoi.write_text(KML.format(geometry=_kml_polygon(INSIDE)).replace("</Placemark>", ""))
    r, out = run_plan(aoi, scene)
    assert_refused(r, out, str(aoi), "is not well-formed KML (mismatched tag", "re-export it")
