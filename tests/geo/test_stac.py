"""STAC Items and ItemCollections as ``--lr`` (issue 18): per-band COG assets with local hrefs, written
from the real scene in tmp_path, named as the public catalogues name them (Earth Search: ``red`` ...
with ``raster:bands`` scale/offset; Planetary Computer: ``B04`` ... with ``s2:processing_baseline``;
Landsat Collection 2: ``red``, ``green``, ``blue``, ``nir08``). Each plans the same patches as the stacked
GeoTIFF of the same pixels (shipped model); a remote href is refused with one line, nothing written."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import typer

from tests.hardening.catalogue import assert_refused
from tests.helpers.realdata import patch_probs, plan_cli, same_plan, write_raster
from zoomplan.errors import InputError
from zoomplan.geo.products.bands import group_scene_inputs
from zoomplan.geo.products.files import BandSet

COG = dict(driver="COG", compress="DEFLATE", nodata=None)
ES_KEYS = ("red", "green", "blue", "nir")  # rows 0..3 of the real stack
PC_KEYS = ("B04", "B03", "B02", "B08")
EO = {"red": ("B04", "red"), "green": ("B03", "green"), "blue": ("B02", "blue"), "nir": ("B08", "nir")}
EXTENSIONS = [
    "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
]
REMOTE = "https://sentinel-cogs.s3.us-west-2.amazonaws.com/sentinel-s2-l1c-cogs/18/S/VG/2023/1/S2B_18SVG_20230112_0_L1C"


def _asset(href: str, band: str | None, raster: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    a: dict[str, Any] = {
        "href": href,
        "type": "image/tiff; application=geotiff; profile=cloud-optimized",
        "roles": ["data"],
        **extra,
    }
    if band is not None:
        name, common = EO.get(band, (band, band))
        a["eo:bands"] = [{"name": name, "common_name": common}]
    if raster is not None:
        a["raster:bands"] = [{"data_type": "uint16", **raster}]
    return a


def _item(item_id: str, assets: dict[str, Any], collection: str | None = None, **props: Any) -> dict[str, Any]:
    d = {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": EXTENSIONS,
        "id": item_id,
        "geometry": None,
        "properties": {"datetime": "2023-01-12T16:06:52Z", **props},
        "links": [],
        "assets": assets,
    }
    return d if collection is None else {**d, "collection": collection}


def _write(path: Path, doc: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1))
    return path


def _cogs(folder: Path, data: np.ndarray, transform, crs, names=PC_KEYS) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return [
        write_raster(folder / f"T18SVG_20230112T160652_{n}.tif", data[i : i + 1], transform, crs, **COG)
        for i, n in enumerate(names)
    ]


def _red_at_20m(data: np.ndarray) -> np.ndarray:
    return data[0].reshape(48, 2, 48, 2).astype(np.float64).mean(axis=(1, 3)).round().astype(np.uint16)


def _scl_like(red20: Path, scl: np.ndarray) -> Path:
    """An SCL band (48 x 48, 20 m) on the grid of the 20 m band file ``red20``, beside it."""
    with rasterio.open(red20) as src:
        transform, crs = src.transform, src.crs
    return write_raster(
        red20.parent / "T18SVG_20230112T160652_SCL_20m.tif", scl[None].astype(np.uint8), transform, crs, **COG
    )


@pytest.fixture
def pb04_item_files(cli: typer.Typer, tmp_path: Path, reference):
    """Baseline 04.00 band COGs (DN + 1000) of the real window, B04 at 20 m; and the plan of the stack of
    the reflectance they encode (B04 repeated 2 x 2): (aoi, want, folder, files by band)."""
    aoi, _, data, transform, crs = reference
    red20 = _red_at_20m(data)
    pb04 = np.where(data > 0, data + 1000, 0).astype(np.uint16)
    folder = tmp_path / "S2B_18SVG_20230112_0_L1C"
    files = dict(zip(ES_KEYS, _cogs(folder, pb04, transform, crs)))
    files["red"].unlink()
    files["red"] = write_raster(
        folder / "T18SVG_20230112T160652_B04_20m.tif",
        (red20[None] + 1000).astype(np.uint16),
        transform * transform.scale(2),
        crs,
        **COG,
    )
    stacked = data.copy()
    stacked[0] = red20.repeat(2, axis=0).repeat(2, axis=1)
    ref = write_raster(tmp_path / "stack20.tif", stacked, transform, crs, descriptions=ES_KEYS)
    out = tmp_path / "ref20" / "order.geojson"
    r = plan_cli(cli, aoi, ref, out)
    assert r.exit_code == 0, r.stderr
    return aoi, patch_probs(out), folder, files


@pytest.mark.shared_data
def test_earth_search_item_with_raster_bands_and_a_20m_band_plans_like_the_stack(
    cli: typer.Typer, tmp_path: Path, pb04_item_files
) -> None:
    """Assets keyed red/green/blue/nir (B04 at 20 m), hrefs relative to the JSON, raster:bands scale 0.0001 and
    offset -0.1 (what the DN + 1000 of baseline 04.00 needs), beside remote assets the plan does not read (a
    remote red-jp2 twin, B8A as nir08, the 8-bit visual, a thumbnail): the same selection as the stack."""
    aoi, want, folder, files = pb04_item_files
    rb = {"nodata": 0, "scale": 0.0001, "offset": -0.1}
    assets = {k: _asset(f"{folder.name}/{files[k].name}", k, rb) for k in ES_KEYS}
    assets["red-jp2"] = _asset(f"{REMOTE}/B04.jp2", "red", rb)
    assets["nir08"] = _asset("s3://sentinel-s2-l1c/tiles/18/S/VG/B8A.jp2", "nir08", rb)
    assets["visual"] = {
        "href": f"{REMOTE}/TCI.tif",
        "eo:bands": [{"name": b, "common_name": c} for b, c in (EO["red"], EO["green"], EO["blue"])],
    }
    assets["thumbnail"] = {"href": f"{REMOTE}/thumbnail.jpg", "roles": ["thumbnail"]}
    item = _write(
        tmp_path / "S2B_18SVG_20230112_0_L1C.json",
        _item(
            "S2B_18SVG_20230112_0_L1C",
            assets,
            platform="sentinel-2b",
            **{"s2:processing_baseline": "05.09", "s2:product_type": "S2MSI1C"},
        ),
    )
    (bs,) = group_scene_inputs([item])
    assert isinstance(bs, BandSet) and bs.labels == ES_KEYS and bs.files[0] == files["red"].resolve()
    assert bs.item is not None and bs.item.scale == (1e-4,) * 4 and bs.item.offset == (-0.1,) * 4
    out = tmp_path / "out" / "order.geojson"
    r = plan_cli(cli, aoi, item, out)
    assert r.exit_code == 0, r.stderr
    same_plan(patch_probs(out), want, tol=1.5e-4)  # probabilities are written to 4 decimals
    (scene,) = json.loads(out.read_text())["summary"]["scenes"]
    assert (
        scene["id"] == "S2B_18SVG_20230112_0_L1C" and scene["sensor"] == "stac_raster_bands" and not scene["resampled"]
    )


@pytest.mark.shared_data
def test_planetary_computer_item_takes_the_baseline_offset_from_its_properties(
    cli: typer.Typer, tmp_path: Path, pb04_item_files
) -> None:
    """Assets keyed B04/B03/B02/B08 (absolute hrefs), no raster:bands: s2:processing_baseline 05.09 picks the
    -1000 offset as the SAFE path's MTD_MSIL2A.xml does (sentinel2_l2a_pb04): the same selection as the stack. Its
    local SCL asset (all vegetation) is the scene's cloud mask: no cloudy patch."""
    aoi, want, _, files = pb04_item_files
    assets = {pc: _asset(str(files[es]), es) for pc, es in zip(PC_KEYS, ES_KEYS)}
    clear = _scl_like(files["red"], np.full((48, 48), 4, np.uint8))  # vegetation: no cloud
    assets["SCL"] = {"href": str(clear), "roles": ["data"], "gsd": 20.0}
    item_id = "S2B_MSIL2A_20230112T160652_R097_T18SVG_20230112T191442"
    item = _write(
        tmp_path / "pc" / "item.json",
        _item(item_id, assets, collection="sentinel-2-l2a", **{"s2:processing_baseline": "05.09"}),
    )
    out = tmp_path / "out" / "order.geojson"
    r = plan_cli(cli, aoi, item, out)
    assert r.exit_code == 0, r.stderr
    same_plan(patch_probs(out), want, tol=1.5e-4)
    summary = json.loads(out.read_text())["summary"]
    assert summary["scenes"][0]["sensor"] == "sentinel2_l2a_pb04"
    assert summary["clouds"]["patches_cloudy"] == 0 and summary["clouds"]["masks"][item_id].startswith(
        "STAC asset 'SCL'"
    )


def _cloudy(out: Path) -> set[str]:
    fc = json.loads(out.with_suffix(".patches.geojson").read_text())
    return {f["properties"]["patch_id"] for f in fc["features"] if f["properties"]["cloud"] == "cloudy"}


@pytest.mark.shared_data
def test_an_scl_asset_is_the_scene_cloud_mask(cli: typer.Typer, tmp_path: Path, pb04_item_files) -> None:
    """An Earth Search item's local ``scl`` asset (20 m: classes 9, 3, 10, 8 in blocks; 11 snow, 2 dark area) marks
    the same patches cloudy, with the same patch layer, as the item without it and the same file as --cloud-mask
    (read as SCL: classes 3, 8, 9, 10); the summary names the asset. A remote scl stops the plan with one line
    unless --cloud-mask stands in for it."""
    aoi, _, folder, files = pb04_item_files
    scl = np.full((48, 48), 4, np.uint8)
    for cls, rs, cs in (
        (9, slice(10, 20), slice(5, 15)),
        (3, slice(30, 34), slice(30, 40)),
        (10, slice(40, 42), slice(2, 4)),
        (8, slice(24, 28), slice(40, 46)),
        (11, slice(20, 25), slice(20, 25)),
        (2, slice(25, 27), slice(0, 48)),
    ):
        scl[rs, cs] = cls
    mask = _scl_like(files["red"], scl)
    rb = {"nodata": 0, "scale": 0.0001, "offset": -0.1}
    bands = {k: _asset(f"{folder.name}/{files[k].name}", k, rb) for k in ES_KEYS}
    scl_asset = {
        "href": f"{folder.name}/{mask.name}",
        "roles": ["data", "reflectance"],
        "raster:bands": [{"nodata": 0, "data_type": "uint8"}],
    }
    item_id = "S2B_18SVG_20230112_0_L2A"
    props = {"platform": "sentinel-2b", "s2:processing_baseline": "05.09", "s2:product_type": "S2MSI2A"}
    with_scl = _write(tmp_path / "with.json", _item(item_id, {**bands, "scl": scl_asset}, **props))
    without = _write(tmp_path / "without.json", _item(item_id, bands, **props))
    out_item, out_mask = tmp_path / "item" / "order.geojson", tmp_path / "mask" / "order.geojson"
    r = plan_cli(cli, aoi, with_scl, out_item)
    assert r.exit_code == 0, r.stderr
    r = plan_cli(cli, aoi, without, out_mask, "--cloud-mask", str(mask))
    assert r.exit_code == 0, r.stderr
    cloudy = _cloudy(out_item)
    assert cloudy == _cloudy(out_mask) and 0 < len(cloudy) < len(patch_probs(out_item))
    assert out_item.with_suffix(".patches.geojson").read_text() == out_mask.with_suffix(".patches.geojson").read_text()
    c_item, c_mask = (json.loads(o.read_text())["summary"]["clouds"] for o in (out_item, out_mask))
    assert c_item["patches_cloudy"] == c_mask["patches_cloudy"] == len(cloudy)
    assert c_item["masks"] == {
        item_id: f"STAC asset 'scl' ({mask.name}): Sentinel-2 SCL (classes 3, 8, 9, 10: cloud shadow, "
        f"cloud medium/high probability, thin cirrus)"
    }
    assert c_mask["masks"][item_id].startswith(f"--cloud-mask {mask.name}: Sentinel-2 SCL (classes 3, 8, 9, 10")
    remote = _write(
        tmp_path / "remote.json", _item(item_id, {**bands, "scl": {**scl_asset, "href": f"{REMOTE}/SCL.tif"}}, **props)
    )
    out = tmp_path / "out" / "order.geojson"
    assert_refused(
        plan_cli(cli, aoi, remote, out),
        out,
        f"asset 'scl' of STAC item {item_id}",
        f"is its cloud mask and is remote ({REMOTE}/SCL.tif)",
        "download it and set the asset's href to the local file",
        "or pass --cloud-mask FILE",
    )
    r = plan_cli(cli, aoi, remote, out, "--cloud-mask", str(mask))
    assert r.exit_code == 0, r.stderr
    assert _cloudy(out) == cloudy


@pytest.mark.shared_data
def test_item_collection_of_two_is_two_scenes_planned_like_the_stack(
    cli: typer.Typer, tmp_path: Path, reference
) -> None:
    """An ItemCollection of two overlapping halves of the real window (cols 0-64 and 32-96, edges on the 160 m tile
    grid):
    two scenes, least cloud cover first; each tile from the first with data: the same plan as the whole stack."""
    aoi, want, data, transform, crs = reference
    feats = []
    for name, c0, c1, cloud in (("west", 0, 64, 40.0), ("east", 32, 96, 3.5)):
        t = transform * transform.translation(c0, 0)
        files = _cogs(tmp_path / "items" / name, data[:, :, c0:c1], t, crs)
        rb = {"nodata": 0, "scale": 0.0001, "offset": 0.0}
        assets = {k: _asset(f"{name}/{f.name}", es, rb) for k, f, es in zip(PC_KEYS, files, ES_KEYS)}
        feats.append(_item(f"S2A_18SVG_20160112_{name}", assets, **{"eo:cloud_cover": cloud}))
    coll = _write(tmp_path / "items" / "search.json", {"type": "FeatureCollection", "features": feats})
    sets = group_scene_inputs([coll])
    assert [s.scene_id for s in sets] == ["S2A_18SVG_20160112_east", "S2A_18SVG_20160112_west"]  # least cloudy first
    out = tmp_path / "out" / "order.geojson"
    r = plan_cli(cli, aoi, coll, out)
    assert r.exit_code == 0, r.stderr
    same_plan(patch_probs(out), want, tol=1e-4)
    summary = json.loads(out.read_text())["summary"]
    scenes = summary["scenes"]
    assert [s["id"] for s in scenes] == ["S2A_18SVG_20160112_east", "S2A_18SVG_20160112_west"] and all(
        s["tiles"] > 0 for s in scenes
    )
    assert "least eo:cloud_cover first" in summary["parameters"]["scene_rule"]


@pytest.mark.shared_data
@pytest.mark.parametrize(
    "href",
    [f"{REMOTE}/B04.tif", "s3://sentinel-cogs/sentinel-s2-l1c-cogs/B04.tif", "/vsicurl/https://example.org/B04.tif"],
)
def test_a_remote_href_is_refused_with_one_line(cli: typer.Typer, tmp_path: Path, reference, href: str) -> None:
    aoi, _, data, transform, crs = reference
    files = _cogs(tmp_path / "bands", data, transform, crs)
    assets = {k: _asset(str(f), es) for k, f, es in zip(PC_KEYS, files, ES_KEYS)}
    assets["B04"]["href"] = href
    item = _write(tmp_path / "item.json", _item("S2B_18SVG_20230112_0_L1C", assets))
    out = tmp_path / "out" / "order.geojson"
    assert_refused(
        plan_cli(cli, aoi, item, out),
        out,
        "asset 'B04' of STAC item S2B_18SVG_20230112_0_L1C",
        f"is remote ({href})",
        "download it and set the asset's href to the local file",
    )


# --------------------------------------------------------------------------- Landsat Collection 2 items

M, A, ELEV = 2.0e-5, -0.1, 35.0
LANDSAT_KEYS = ("red", "green", "blue", "nir08")
LANDSAT_EO = {"red": ("B4", "red"), "green": ("B3", "green"), "blue": ("B2", "blue"), "nir08": ("B5", "nir08")}


def _to_dn(data: np.ndarray, scale: float, offset: float) -> np.ndarray:
    dn = np.rint((data.astype(np.float64) * 1e-4 - offset) / scale)
    return np.where(data > 0, np.clip(dn, 1, 65535), 0).astype(np.uint16)


def _landsat_item(
    tmp_path: Path, pid: str, dn: np.ndarray, transform, crs, raster: dict | None, **extra_assets: Any
) -> Path:
    folder = tmp_path / pid
    folder.mkdir(exist_ok=True)
    files = [folder / f"{pid}_{'SR_' if 'L2SP' in pid else ''}B{n}.TIF" for n in (4, 3, 2, 5)]
    for i, f in enumerate(files):
        if not f.exists():
            write_raster(f, dn[i : i + 1], transform, crs, **COG)
    assets = {}
    for k, f in zip(LANDSAT_KEYS, files):
        a = {"href": f"./{pid}/{f.name}", "eo:bands": [{"name": LANDSAT_EO[k][0], "common_name": LANDSAT_EO[k][1]}]}
        if raster is not None:
            a["raster:bands"] = [raster]
        assets[k] = a
    assets.update(extra_assets)
    return _write(
        tmp_path / f"{pid}_stac.json",
        _item(pid, assets, platform="landsat-8", **{"landsat:correction": pid.split("_")[1]}),
    )


@pytest.mark.shared_data
def test_landsat_level2_item_takes_raster_bands(cli: typer.Typer, tmp_path: Path, reference) -> None:
    """red/green/blue/nir08 assets with raster:bands scale 0.0000275, offset -0.2 (as the catalogues give them)."""
    aoi, want, data, transform, crs = reference
    pid = "LC08_L2SP_014033_20160112_20200907_02_T1"
    item = _landsat_item(
        tmp_path, pid, _to_dn(data, 2.75e-5, -0.2), transform, crs, {"nodata": 0, "scale": 2.75e-5, "offset": -0.2}
    )
    (bs,) = group_scene_inputs([item])
    assert bs.labels == ("red", "green", "blue", "nir")  # nir08 read as nir (Landsat B5)
    out = tmp_path / "out" / "order.geojson"
    r = plan_cli(cli, aoi, item, out)
    assert r.exit_code == 0, r.stderr
    same_plan(patch_probs(out), want, tol=0.01, quantised=True)  # DN rounding moved the shipped policy by up to 0.006


@pytest.mark.shared_data
def test_landsat_level1_item_needs_its_mtl(cli: typer.Typer, tmp_path: Path, reference) -> None:
    """Level-1: raster:bands of the catalogues give radiance, not reflectance; without a local MTL asset the
    plan stops with one line saying the MTL is needed; with one it plans like the stack."""
    from tests.helpers.landsat import MTL_L1

    aoi, want, data, transform, crs = reference
    pid = "LC08_L1TP_014033_20160112_20200907_02_T1"
    s = math.sin(math.radians(ELEV))
    dn = _to_dn(data, M / s, A / s)
    radiance = {"nodata": 0, "scale": 0.012, "offset": -61.0, "unit": "watt/steradian/square_meter/micrometer"}
    remote_mtl = {"mtl.txt": {"href": f"https://landsatlook.usgs.gov/data/{pid}_MTL.txt", "roles": ["metadata"]}}
    item = _landsat_item(tmp_path, pid, dn, transform, crs, radiance, **remote_mtl)
    out = tmp_path / "out" / "order.geojson"
    assert_refused(
        plan_cli(cli, aoi, item, out),
        out,
        f"STAC item {pid}",
        "Level-1",
        "needs the product's MTL file",
        "lists it only remotely (asset 'mtl.txt'",
        "download the MTL beside the band files",
    )
    rescaling = "".join(
        f"    REFLECTANCE_MULT_BAND_{n} = {M:.4E}\n    REFLECTANCE_ADD_BAND_{n} = {A:.5f}\n" for n in range(1, 10)
    )
    (tmp_path / pid / f"{pid}_MTL.txt").write_text(MTL_L1.format(pid=pid, elev=ELEV, rescaling=rescaling))
    item = _landsat_item(
        tmp_path,
        pid,
        dn,
        transform,
        crs,
        radiance,
        **{"mtl.txt": {"href": f"{pid}/{pid}_MTL.txt", "roles": ["metadata"]}},
    )
    r = plan_cli(cli, aoi, item, out)
    assert r.exit_code == 0, r.stderr
    same_plan(patch_probs(out), want, tol=0.01, quantised=True)
    assert json.loads(out.read_text())["summary"]["scenes"][0]["sensor"] == "landsat_c2l1_mtl"


# --------------------------------------------------------------------------- reading items (no real data)


def _tiny(path: Path, value: int = 1000) -> Path:
    from rasterio.transform import from_origin

    return write_raster(
        path, np.full((1, 8, 8), value, np.uint16), from_origin(440000, 4170000, 10, 10), "EPSG:32618", **COG
    )


def test_band_identity_from_keys_and_eo_bands(tmp_path: Path) -> None:
    """eo:bands common_name names the band whatever the key; STAC 1.1 ``bands`` are read too; a key and
    eo:bands that disagree are refused; a missing band names the assets there are."""
    f = {b: _tiny(tmp_path / f"{b}.tif") for b in ("r", "g", "b")}
    assets = {
        "B4": _asset("r.tif", "red"),
        "band_3": _asset("g.tif", "green"),
        "x": {
            "href": "b.tif",
            "bands": [{"name": "B02", "eo:common_name": "blue", "raster:scale": 0.0001, "raster:offset": -0.1}],
        },
    }
    (bs,) = group_scene_inputs([_write(tmp_path / "a.json", _item("a", assets))])
    assert bs.labels == ("red", "green", "blue") and bs.files == (f["r"], f["g"], f["b"])
    assert (
        bs.item is not None and bs.item.refusal.startswith("STAC item a (") and "not for B4, band_3" in bs.item.refusal
    )
    bad = {"red": _asset("r.tif", "green"), "green": _asset("g.tif", "green"), "blue": _asset("b.tif", "blue")}
    with pytest.raises(InputError, match="asset 'red' has eo:bands common_name 'green', not red"):
        group_scene_inputs([_write(tmp_path / "b.json", _item("b", bad))])
    with pytest.raises(InputError, match=r"has no asset for blue \(assets: red, green, visual\)"):
        group_scene_inputs(
            [
                _write(
                    tmp_path / "c.json",
                    _item(
                        "c",
                        {"red": _asset("r.tif", None), "green": _asset("g.tif", None), "visual": _asset("v.tif", None)},
                    ),
                )
            ]
        )


def test_cloud_mask_assets_by_key_eo_bands_and_roles(tmp_path: Path) -> None:
    """The cloud mask asset: keyed ``qa_pixel`` (Landsat C2) / ``SCL`` / ``scl``, else named ``SCL`` by eo:bands, else
    with
    role cloud and a mask's file name; a local twin before a remote one; a cloud-probability asset (role cloud, not
    named as a product mask) is not the item's mask (the SCL beside the band files is then found by name); a missing
    one is refused when the mask is looked for."""
    from zoomplan.geo.products.clouds import CloudMask, find_cloud_mask

    for b in ("r", "g", "b"):
        _tiny(tmp_path / f"{b}.tif")
    m = _tiny(tmp_path / "LC08_L2SP_014033_20160112_20200907_02_T1_QA_PIXEL.TIF", 21824)
    s = _tiny(tmp_path / "T18SVG_20230112T160652_SCL_20m.tif", 4)
    bands = {"red": _asset("r.tif", "red"), "green": _asset("g.tif", "green"), "blue": _asset("b.tif", "blue")}

    def mask(i: int, **extra: Any) -> CloudMask | None:
        (bs,) = group_scene_inputs([_write(tmp_path / f"{i}.json", _item(f"i{i}", {**bands, **extra}))])
        return find_cloud_mask(bs)

    assert mask(
        0, qa_pixel={"href": m.name, "roles": ["cloud", "cloud-shadow", "snow-ice", "water-mask"]}
    ) == CloudMask(m, "qa_pixel", asset="qa_pixel")
    assert mask(1, SCL={"href": s.name, "roles": ["data"]}) == CloudMask(s, "scl", asset="SCL")
    assert (
        mask(2, classes={"href": s.name, "eo:bands": [{"name": "SCL", "description": "scene classification"}]}).kind
        == "scl"
    )
    assert mask(3, clouds={"href": str(s), "roles": ["cloud"]}) == CloudMask(s, "scl", asset="clouds")
    assert (
        mask(4, scl={"href": f"{REMOTE}/SCL.tif"}, **{"scl-jp2": {"href": s.name}}).asset == "scl-jp2"
    )  # the local twin
    (bs,) = group_scene_inputs(
        [_write(tmp_path / "5.json", _item("i5", {**bands, "cloud": {"href": "r.tif", "roles": ["data", "cloud"]}}))]
    )
    assert bs.item.cloud_mask is None and not bs.item.cloud_refusal  # a cloud probability: not a product mask ...
    assert find_cloud_mask(bs) == CloudMask(s, "scl")  # ... but the SCL file beside the band files, by its name
    with pytest.raises(
        InputError, match=r"asset 'scl' of STAC item i6 \(.*\) points at .*gone_SCL.tif, which is not there"
    ):
        mask(6, scl={"href": "gone_SCL.tif"})


@pytest.mark.parametrize(
    "doc, needle",
    [
        ("{not json", "is not a JSON file pystac can read"),
        ('{"type": "Collection", "id": "sentinel-2-l2a"}', "is a JSON Collection, not a STAC Item or ItemCollection"),
        ('{"type": "FeatureCollection", "features": []}', "is an ItemCollection without Items"),
        ('{"type": "Feature", "id": "x"}', "is not a valid STAC Feature"),
    ],
)
def test_json_that_is_not_an_item_is_refused(tmp_path: Path, doc: str, needle: str) -> None:
    p = tmp_path / "x.json"
    p.write_text(doc)
    with pytest.raises(InputError, match=needle) as e:
        group_scene_inputs([p])
    assert "\n" not in str(e.value)


def test_a_missing_local_asset_is_refused(tmp_path: Path) -> None:
    for b in ("r", "g"):
        _tiny(tmp_path / f"{b}.tif")
    assets = {"red": _asset("r.tif", "red"), "green": _asset("g.tif", "green"), "blue": _asset("sub/b.tif", "blue")}
    with pytest.raises(
        InputError,
        match=rf"asset 'blue' of STAC item i \(.*\) points at {tmp_path / 'sub' / 'b.tif'}, which is not there",
    ):
        group_scene_inputs([_write(tmp_path / "i.json", _item("i", assets))])


def test_mutated_items_end_in_a_zoomplan_error_or_a_scene(tmp_path: Path) -> None:
    """Seeded mutations of a valid item (values replaced by other types, keys deleted, wrapped in a
    collection): each ends in a one-line :class:`InputError` or a band set, never another exception."""
    import copy
    import random

    for b in ("r", "g", "b", "n"):
        _tiny(tmp_path / f"{b}.tif")
    rb = {"scale": 0.0001, "offset": -0.1, "nodata": 0}
    seed = _item(
        "S2A_18SVG_20160112_0_L1C",
        {
            "red": _asset("r.tif", "red", rb),
            "green": _asset("g.tif", "green", rb),
            "blue": _asset("b.tif", "blue", rb),
            "nir": _asset("n.tif", "nir", rb),
            "mtl.txt": {"href": "x_MTL.txt"},
            "scl": {"href": "n.tif", "roles": ["data"], "eo:bands": [{"name": "SCL"}]},
        },
        platform="sentinel-2a",
        **{"s2:processing_baseline": "05.09", "eo:cloud_cover": 3},
    )
    values = [
        None,
        1,
        -1.5,
        "x",
        "",
        [],
        {},
        [1],
        [{}],
        {"a": 1},
        True,
        float("nan"),
        "https://x/y.tif",
        "../../etc",
        "05.09",
        "L1TP",
    ]

    def paths(o: Any, pre: tuple = ()) -> Any:
        yield pre
        for k, v in o.items() if isinstance(o, dict) else enumerate(o) if isinstance(o, list) else ():
            yield from paths(v, (*pre, k))

    where = list(paths(seed))[1:]
    rng = random.Random(0)
    outcomes = {"error": 0, "scene": 0}
    for case in range(200):
        doc: Any = copy.deepcopy(seed)
        for _ in range(rng.randint(1, 3)):
            p = rng.choice(where)
            try:
                o = doc
                for k in p[:-1]:
                    o = o[k]
                if rng.random() < 0.3:
                    del o[p[-1]]
                else:
                    o[p[-1]] = rng.choice(values)
            except (KeyError, IndexError, TypeError):
                pass  # an earlier mutation removed the path
        if rng.random() < 0.2:
            doc = {"type": "FeatureCollection", "features": [doc, rng.choice([copy.deepcopy(seed), *values])]}
        f = tmp_path / "item.json"
        f.write_text(json.dumps(doc))
        try:
            group_scene_inputs([f])
            outcomes["scene"] += 1
        except InputError as exc:
            assert "\n" not in str(exc), (case, str(exc))
            outcomes["error"] += 1
    assert outcomes["error"] > 25 and outcomes["scene"] > 25, outcomes


@pytest.mark.parametrize(
    "props, collection, item_id, want",
    [
        (
            {"s2:processing_baseline": "05.09", "s2:product_type": "S2MSI2A"},
            None,
            "x",
            ("sensor", "sentinel2_l2a_pb04"),
        ),
        ({"s2:processing_baseline": "02.01"}, "sentinel-2-l1c", "S2A_MSIL1C_20160112", ("sensor", "sentinel2_toa")),
        (
            {"s2:processing_baseline": "04.00", "platform": "sentinel-2a"},
            None,
            "S2A_18SVG_20230112_0_L1C",
            ("sensor", "sentinel2_l1c_pb04"),
        ),
        (
            {"s2:processing_baseline": "03.01"},
            "sentinel-2-l2a",
            "S2A_18SVG_20210112_0_L2A",
            ("sensor", "sentinel2_l2a"),
        ),
        (
            {"s2:processing_baseline": "N/A"},
            "sentinel-2-l2a",
            "x",
            ("refusal", "s2:processing_baseline 'N/A', not a number"),
        ),
        (
            {"landsat:correction": "L2SP", "platform": "landsat-9"},
            None,
            "LC09_L2SP_014033_20220112_20230503_02_T1",
            ("sensor", "landsat_c2l2"),
        ),
        ({}, "landsat-c2-l2", "x", ("sensor", "landsat_c2l2")),
        ({"platform": "landsat-8"}, None, "x", ("refusal", "pass --sensor landsat_c2l2")),
        (
            {"platform": "landsat-8"},
            None,
            "LC08_L1GT_014033_20160112_20200907_02_T2",
            ("refusal", "Level-1, whose TOA reflectance needs the product's MTL"),
        ),
        ({"platform": "planetscope"}, None, "x", ("sensor", None)),
    ],
)
def test_what_item_properties_say_without_raster_bands(
    tmp_path: Path, props: dict, collection: str | None, item_id: str, want: tuple
) -> None:
    """Without raster:bands scale/offset: the Sentinel-2 baseline and level, the Landsat level (properties,
    collection or product id) pick the sensor, or a one-line refusal with the fix."""
    for b in ("r", "g", "b"):
        _tiny(tmp_path / f"{b}.tif")
    assets = {"red": _asset("r.tif", "red"), "green": _asset("g.tif", "green"), "blue": _asset("b.tif", "blue")}
    (bs,) = group_scene_inputs([_write(tmp_path / "i.json", _item(item_id, assets, collection, **props))])
    field, value = want
    if field == "sensor":
        assert bs.item.sensor == value and not bs.item.refusal and bs.item.scale == ()
    else:
        assert value in bs.item.refusal and "\n" not in bs.item.refusal
