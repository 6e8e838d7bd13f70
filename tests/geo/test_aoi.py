"""AOI reading: formats, ids and names, repair, and one-line errors for bad input."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import shapely
from pyproj import CRS

from tests.helpers.synth import write_aoi
from zoomplan.errors import GeometryError, InputError
from zoomplan.geo.aoi import read_aoi

LONLAT = [
    shapely.box(-75.62, 37.70, -75.61, 37.71),
    shapely.MultiPolygon([shapely.box(-75.60, 37.70, -75.595, 37.705), shapely.box(-75.59, 37.70, -75.585, 37.705)]),
]


@pytest.mark.parametrize(
    ("suffix", "driver"), [(".geojson", None), (".gpkg", None), (".shp", None), (".fgb", None), (".kml", "KML")]
)
def test_formats_ids_names(tmp_path: Path, suffix: str, driver: str | None) -> None:
    p = write_aoi(
        tmp_path / f"aoi{suffix}", LONLAT, "EPSG:4326", ids=["town", "farm"], names=["Town", "Farms"], driver=driver
    )
    aoi = read_aoi(p)
    assert len(aoi) == 2
    assert aoi.crs.to_epsg() == 4326
    # FlatGeobuf stores features in spatial-index order: compare by name
    by_name = {n: (i, g.geom_type) for n, i, g in zip(aoi.names, aoi.ids, aoi.geoms)}
    assert by_name["Farms"][1] == "MultiPolygon" and by_name["Town"][1] in (
        "Polygon",
        "MultiPolygon",
    )  # layers may promote
    if driver != "KML":  # KML keeps only name/description fields
        assert by_name["Town"][0] == "town" and by_name["Farms"][0] == "farm"


def test_projected_gpkg_and_reprojection(tmp_path: Path) -> None:
    utm = [shapely.box(440000, 4170000, 440800, 4170500)]
    aoi = read_aoi(write_aoi(tmp_path / "a.gpkg", utm, "EPSG:32618"))
    assert aoi.crs.to_epsg() == 32618 and aoi.ids == ("1",)  # GeoPackage fids start at 1
    assert aoi.area_km2() == [pytest.approx(0.4)]
    ll = aoi.to_crs(CRS.from_epsg(4326))
    back = ll.to_crs(CRS.from_epsg(32618))
    assert back.geoms[0].area == pytest.approx(400000, rel=1e-6)
    assert back.geoms[0].symmetric_difference(utm[0]).area < 1.0
    lon, lat = aoi.centroid_lonlat()
    assert lon == pytest.approx(-75.68, abs=0.01) and lat == pytest.approx(37.68, abs=0.01)


def test_geographic_edges_are_densified(tmp_path: Path) -> None:
    big = shapely.box(-76.0, 37.0, -75.0, 38.0)
    aoi = read_aoi(write_aoi(tmp_path / "big.geojson", [big], "EPSG:4326")).to_crs(CRS.from_epsg(32618))
    assert len(aoi.geoms[0].exterior.coords) > 100


def test_invalid_bowtie_is_repaired_with_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    bowtie = shapely.Polygon([(-75.62, 37.70), (-75.61, 37.71), (-75.61, 37.70), (-75.62, 37.71), (-75.62, 37.70)])
    assert not bowtie.is_valid
    with caplog.at_level(logging.WARNING, logger="zoomplan.geo.aoi"):
        aoi = read_aoi(write_aoi(tmp_path / "bowtie.geojson", [bowtie], "EPSG:4326", ids=["x"]))
    assert aoi.geoms[0].is_valid and aoi.geoms[0].area > 0
    assert "repaired with make_valid" in caplog.text and "'x'" in caplog.text


def _geojson(path: Path, features: list[dict]) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def test_empty_geometry_is_an_error(tmp_path: Path) -> None:
    p = _geojson(
        tmp_path / "e.geojson",
        [
            {"type": "Feature", "properties": {"id": "ok"}, "geometry": shapely.geometry.mapping(LONLAT[0])},
            {"type": "Feature", "properties": {"id": "empty"}, "geometry": None},
        ],
    )
    with pytest.raises(GeometryError, match=r"feature 'empty' has an empty geometry: draw its polygon"):
        read_aoi(p)


def test_degenerate_polygon_is_not_repaired(tmp_path: Path) -> None:
    flat = {"type": "Polygon", "coordinates": [[[-75.62, 37.70], [-75.61, 37.70], [-75.60, 37.70], [-75.62, 37.70]]]}
    p = _geojson(tmp_path / "flat.geojson", [{"type": "Feature", "properties": {}, "geometry": flat}])
    with pytest.raises(GeometryError, match="cannot be repaired|zero area"):
        read_aoi(p)


def test_point_and_no_features_and_missing_crs(tmp_path: Path) -> None:
    p = _geojson(
        tmp_path / "pt.geojson",
        [{"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": [-75.6, 37.7]}}],
    )
    with pytest.raises(GeometryError, match="is a Point: AOIs must be Polygon"):
        read_aoi(p)
    with pytest.raises(GeometryError, match="has no features"):
        read_aoi(_geojson(tmp_path / "none.geojson", []))
    shp = write_aoi(tmp_path / "nocrs.shp", [shapely.box(0, 0, 100, 100)], None)
    assert not shp.with_suffix(".prj").exists()
    with pytest.raises(GeometryError, match="has no CRS: save it with its CRS"):
        read_aoi(shp)


def test_unreadable_missing_and_wrong_units(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        read_aoi(tmp_path / "nope.geojson")
    bad = tmp_path / "bad.geojson"
    bad.write_text('{"type": "FeatureCollection", "features": [')
    with pytest.raises(InputError, match="not a vector file GDAL can read"):
        read_aoi(bad)
    utm_in_geojson = _geojson(
        tmp_path / "utm.geojson",
        [
            {
                "type": "Feature",
                "properties": {},
                "geometry": shapely.geometry.mapping(shapely.box(440000, 4170000, 440800, 4170500)),
            }
        ],
    )
    with pytest.raises(GeometryError, match="RFC 7946"):
        read_aoi(utm_in_geojson)


def test_duplicate_ids_are_suffixed(tmp_path: Path) -> None:
    aoi = read_aoi(write_aoi(tmp_path / "d.geojson", LONLAT, "EPSG:4326", ids=["a", "a"]))
    assert aoi.ids == ("a", "a~1")


def test_multi_layer_geopackage_reads_polygon_layers(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import geopandas as gpd

    p = tmp_path / "layers.gpkg"
    gpd.GeoDataFrame({"name": ["N"]}, geometry=[LONLAT[0]], crs="EPSG:4326").to_file(p, layer="fields")
    gpd.GeoDataFrame({"name": ["M"]}, geometry=[LONLAT[1]], crs="EPSG:4326").to_file(p, layer="farms")
    gpd.GeoDataFrame({"name": ["P"]}, geometry=[shapely.Point(-75.6, 37.7)], crs="EPSG:4326").to_file(p, layer="wells")
    with caplog.at_level(logging.WARNING, logger="zoomplan.geo.aoi"):
        aoi = read_aoi(p)
    assert sorted(aoi.names) == ["M", "N"] and sorted(aoi.ids) == ["farms/1", "fields/1"]
    assert "ignoring layer(s) wells" in caplog.text
