"""Sentinel-2 as distributed (issue 18): one file per band (JP2, COG), a folder of them, bands at 10 m and
20 m, a SAFE-like product whose metadata carries the processing-baseline 04.00 offset; each plans the same
patches as the stacked GeoTIFF of the same real pixels (shipped model)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import typer

from tests.helpers.realdata import patch_probs, plan_cli, reference, same_plan, write_raster  # noqa: F401 (fixture)
from tests.hardening.catalogue import assert_refused
from zoomplan.geo.bands import band_token, group_scene_inputs

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
    return [write_raster(folder / f"T18SVG_20160112T160652_{b}.{ext}", data[i : i + 1], transform, crs, **profile) for i, b in enumerate(BANDS)]


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
    assert_refused(plan_cli(cli, aoi, red, out), out, f"band files {red.name} hold B04, not red, green, blue",
                   "repeat --lr, e.g. --lr B04.jp2 --lr B03.jp2 --lr B02.jp2")
