"""Sentinel-2 as distributed (issue 18): one file per band (JP2, COG), a folder of them, bands at 10 m and
20 m, a SAFE-like product whose metadata carries the processing-baseline 04.00 offset, the same SAFE zipped;
each plans the same patches as the stacked GeoTIFF of the same real pixels (shipped model)."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import shapely
import typer
from affine import Affine

from tests.hardening.catalogue import assert_refused
from tests.helpers.realdata import patch_probs, plan_cli, real_pixels, same_plan, window_aoi, write_raster
from tests.helpers.synth import write_aoi
from zoomplan.errors import InputError
from zoomplan.geo.products.bands import group_scene_inputs
from zoomplan.geo.products.files import BandSet, band_token

BANDS = ("B04", "B03", "B02")  # red, green, blue: rows 0, 1, 2 of the real stack
JP2 = dict(driver="JP2OpenJPEG", QUALITY="100", REVERSIBLE="YES", nodata=None)
COG = dict(driver="COG", compress="DEFLATE", nodata=None)

MTD_PB04 = """<?xml version="1.0" encoding="UTF-8"?>
<n1:Level-1C_User_Product xmlns:n1="https://psd-14.sentinel2.eo.esa.int/PSD/User_Product_Level-1C.xsd">
<n1:General_Info><Product_Info><PROCESSING_BASELINE>04.00</PROCESSING_BASELINE>
<Product_Image_Characteristics><QUANTIFICATION_VALUE unit="none">10000</QUANTIFICATION_VALUE>
<Radiometric_Offset_List>{offsets}</Radiometric_Offset_List></Product_Image_Characteristics></Product_Info></n1:General_Info>
</n1:Level-1C_User_Product>
"""


def _band_files(folder: Path, data: np.ndarray, transform, crs, ext: str, **profile) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return [
        write_raster(folder / f"T18SVG_20160112T160652_{b}.{ext}", data[i : i + 1], transform, crs, **profile)
        for i, b in enumerate(BANDS)
    ]


@pytest.mark.shared_data
def test_jp2_band_files_plan_like_the_stack(cli: typer.Typer, tmp_path: Path, reference) -> None:
    aoi, want, data, transform, crs = reference
    files = _band_files(tmp_path / "jp2", data, transform, crs, "jp2", **JP2)
    assert [band_token(f) for f in files] == list(BANDS)
    out = tmp_path / "out" / "order.geojson"
    r = plan_cli(cli, aoi, files, out)
    assert r.exit_code == 0, r.stderr
    same_plan(patch_probs(out), want)


@pytest.mark.shared_data
def test_folder_with_a_20m_band_plans_like_the_stack_of_its_pixels(cli: typer.Typer, tmp_path: Path, reference) -> None:
    """B04 at 20 m (2 x 2 means), B03 and B02 at 10 m, as COGs in a folder: stacked through a VRT on the 10 m
    grid, B04 upsampled by nearest neighbour; the same as a GeoTIFF stack with B04 repeated 2 x 2."""
    aoi, _, data, transform, crs = reference
    red20 = data[0].reshape(48, 2, 48, 2).astype(np.float64).mean(axis=(1, 3)).round().astype(np.uint16)
    folder = tmp_path / "S2A_MSIL1C_20160112"
    _band_files(folder, data, transform, crs, "tif", **COG)
    (folder / f"T18SVG_20160112T160652_{BANDS[0]}.tif").unlink()
    write_raster(folder / "T18SVG_20160112T160652_B04_20m.tif", red20[None], transform * transform.scale(2), crs, **COG)
    stacked = data[:3].copy()
    stacked[0] = red20.repeat(2, axis=0).repeat(2, axis=1)
    ref = write_raster(tmp_path / "stack.tif", stacked, transform, crs, descriptions=("red", "green", "blue"))
    out_ref, out = tmp_path / "ref20" / "order.geojson", tmp_path / "out" / "order.geojson"
    assert plan_cli(cli, aoi, ref, out_ref).exit_code == 0
    (grouped,) = group_scene_inputs([folder])
    assert len(grouped.files) == 3
    r = plan_cli(cli, aoi, folder, out)
    assert r.exit_code == 0, r.stderr
    same_plan(patch_probs(out), patch_probs(out_ref))


@pytest.mark.shared_data
def test_baseline_04_offset_from_metadata_or_sensor(cli: typer.Typer, tmp_path: Path, reference) -> None:
    """DN + 1000 (processing baseline 04.00): removed by the SAFE product's MTD_MSIL1C.xml, or by
    --sensor sentinel2_l1c_pb04 on a stack without metadata; the same plan as the reflectance it encodes."""
    aoi, want, data, transform, crs = reference
    pb04 = np.where(data > 0, data + 1000, 0).astype(np.uint16)
    safe = tmp_path / "S2B_MSIL1C_20230112T160652_N0509.SAFE"
    img = safe / "GRANULE" / "L1C_T18SVG_A030000_20230112T160652" / "IMG_DATA"
    files = _band_files(img, pb04, transform, crs, "jp2", **JP2)
    offsets = "".join(f'<RADIO_ADD_OFFSET band_id="{i}">-1000</RADIO_ADD_OFFSET>' for i in range(13))
    (safe / "MTD_MSIL1C.xml").write_text(MTD_PB04.format(offsets=offsets))
    out = tmp_path / "out" / "order.geojson"
    r = plan_cli(cli, aoi, files, out)  # the band files: metadata found five levels up
    assert r.exit_code == 0, r.stderr
    same_plan(patch_probs(out), want, tol=1.5e-4)  # probabilities are written to 4 decimals
    stack = write_raster(tmp_path / "pb04.tif", pb04, transform, crs, descriptions=("B04", "B03", "B02", "B08"))
    out2 = tmp_path / "out2" / "order.geojson"
    r = plan_cli(cli, aoi, stack, out2, "--sensor", "sentinel2_l1c_pb04")
    assert r.exit_code == 0, r.stderr
    same_plan(patch_probs(out2), want, tol=1.5e-4)


@pytest.mark.shared_data
def test_a_lone_band_file_asks_for_the_others(cli: typer.Typer, tmp_path: Path, reference) -> None:
    aoi, _, data, transform, crs = reference
    (red, _, _) = _band_files(tmp_path / "jp2", data, transform, crs, "tif", **COG)
    out = tmp_path / "out" / "order.geojson"
    assert_refused(
        plan_cli(cli, aoi, red, out),
        out,
        f"band files {red.name} hold B04, not red, green, blue",
        "repeat --lr, e.g. --lr B04.jp2 --lr B03.jp2 --lr B02.jp2",
    )


def zip_safe(safe: Path, compression: int = zipfile.ZIP_DEFLATED) -> Path:
    """``safe`` zipped as the Copernicus hub delivers it: ``X.SAFE.zip`` holding the folder ``X.SAFE/``."""
    zpath = safe.parent / f"{safe.name}.zip"
    with zipfile.ZipFile(zpath, "w", compression) as z:
        for f in sorted(safe.rglob("*")):
            if f.is_file():
                z.write(f, f.relative_to(safe.parent).as_posix())
    return zpath


def patch_layer(out: Path) -> list[dict]:
    """Every property of every patch of the patch layer beside the order ``out``."""
    return [f["properties"] for f in json.loads(out.with_suffix(".patches.geojson").read_text())["features"]]


@pytest.mark.shared_data
def test_a_zipped_l1c_safe_plans_like_its_folder(cli: typer.Typer, tmp_path: Path) -> None:
    """A baseline 04.00 L1C SAFE (DN + 1000, MTD_MSIL1C.xml with RADIO_ADD_OFFSET -1000, QI_DATA/MSK_CLASSI_B00.jp2 at
    60 m with an opaque cloud and a cirrus block), zipped (deflated) and the folder removed: its bands and mask are read
    through /vsizip/, its MTD from the zip; the same patch layer (probabilities, selection, cloudy patches) and cloud
    summary as the folder."""
    data, transform, crs = real_pixels()
    aoi = window_aoi(tmp_path / "aoi.gpkg", transform)
    pb04 = np.where(data > 0, data + 1000, 0).astype(np.uint16)
    safe = tmp_path / "S2B_MSIL1C_20230112T160652_N0509_R097_T18SVG_20230112T191442.SAFE"
    granule = safe / "GRANULE" / "L1C_T18SVG_A030000_20230112T160652"
    _band_files(granule / "IMG_DATA", pb04, transform, crs, "jp2", **JP2)
    classi = np.zeros((3, 16, 16), np.uint8)
    classi[0, 4:8, 4:8] = 1  # opaque clouds
    classi[1, 10:12, 2:5] = 1  # cirrus
    classi[2, 12:16, 12:16] = 1  # snow: not cloud
    (granule / "QI_DATA").mkdir(parents=True)
    write_raster(granule / "QI_DATA" / "MSK_CLASSI_B00.jp2", classi, transform @ Affine.scale(6), crs, **JP2)
    offsets = "".join(f'<RADIO_ADD_OFFSET band_id="{i}">-1000</RADIO_ADD_OFFSET>' for i in range(13))
    (safe / "MTD_MSIL1C.xml").write_text(MTD_PB04.format(offsets=offsets))
    zpath = zip_safe(safe)
    (bs,) = group_scene_inputs([zpath])
    assert (
        isinstance(bs, BandSet)
        and bs.path == zpath
        and bs.scene_id == safe.name.removesuffix(".SAFE")
        and len(bs.files) == 3
    )
    outs = []
    for name, lr in (("folder", safe), ("zip", zpath)):
        out = tmp_path / name / "order.geojson"
        r = plan_cli(cli, aoi, lr, out)
        assert r.exit_code == 0, r.stderr
        outs.append(out)
        shutil.rmtree(safe, ignore_errors=True)  # the zip alone, nothing unzipped beside it
    folder, zipped = (json.loads(o.read_text())["summary"] for o in outs)
    assert patch_layer(outs[1]) == patch_layer(outs[0])
    same_plan(patch_probs(outs[1]), patch_probs(outs[0]))
    assert zipped["clouds"] == folder["clouds"] and zipped["clouds"]["patches_cloudy"] > 0
    assert "MSK_CLASSI_B00.jp2" in zipped["clouds"]["masks"][bs.scene_id]
    assert [s["sensor"] for s in zipped["scenes"]] == [s["sensor"] for s in folder["scenes"]] == ["sentinel2_l1c_pb04"]


def test_a_zip_without_a_product_is_refused_with_one_line(cli: typer.Typer, tmp_path: Path) -> None:
    """A zip holding a SAFE without band files, one holding no SAFE and no bands, two SAFEs, a file that is not a
    zip."""
    safe = tmp_path / "S2B_MSIL1C_20230112T160652_N0509_R097_T18SVG_20230112T191442.SAFE"
    (safe / "GRANULE").mkdir(parents=True)
    (safe / "MTD_MSIL1C.xml").write_text("<x/>")
    zpath = zip_safe(safe)
    aoi = write_aoi(tmp_path / "aoi.gpkg", [shapely.box(440000, 4160000, 441000, 4161000)], "EPSG:32618", ids=["a"])
    out = tmp_path / "out" / "order.geojson"
    line = assert_refused(
        plan_cli(cli, aoi, zpath, out),
        out,
        f"--lr {zpath}: its {safe.name} holds no band files",
        "pass the Sentinel-2 product zip as downloaded",
        "or unzip it and pass the .SAFE folder",
    )
    assert "\n" not in line
    other = tmp_path / "notes.zip"
    with zipfile.ZipFile(other, "w") as z:
        z.writestr("README.txt", "not a product")
    with pytest.raises(InputError, match="it holds no SAFE product and no band files"):
        group_scene_inputs([other])
    with zipfile.ZipFile(other, "a") as z:
        z.writestr("A.SAFE/MTD_MSIL1C.xml", "<x/>")
        z.writestr("B.SAFE/MTD_MSIL1C.xml", "<x/>")
    with pytest.raises(InputError, match=r"holds 2 SAFE products \(A.SAFE, B.SAFE\): pass one zip per product"):
        group_scene_inputs([other])
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(InputError, match="is not a zip file Python can read"):
        group_scene_inputs([tmp_path / "broken.zip"])


@pytest.mark.shared_data
def test_budget_map_draws_band_files(cli: typer.Typer, tmp_path: Path, reference) -> None:
    """``zoomplan budget --map`` draws the true-colour scene from band files (the VRT that stacks them),
    not from the first band's file alone."""
    from PIL import Image
    from typer.testing import CliRunner

    aoi, _, data, transform, crs = reference
    files = _band_files(tmp_path / "tif", data, transform, crs, "tif")
    png = tmp_path / "map.png"
    r = CliRunner().invoke(
        cli,
        [
            "budget",
            str(aoi),
            *[a for f in files for a in ("--lr", str(f))],
            "--device",
            "cpu",
            "--map",
            str(png),
            "--quiet",
        ],
    )
    assert r.exit_code == 0, r.stderr
    rgb = np.asarray(Image.open(png).convert("RGB"), dtype=np.float64)
    assert rgb.std(axis=(0, 1)).min() > 5  # the scene under the regions, in colour
