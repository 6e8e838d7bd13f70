"""Clouds (issue 18 item 5): cloudy and shadowed patches counted from the product's own mask (a Sentinel-2
L2A SCL band at 20 m, a Landsat QA_PIXEL) or a user's ``--cloud-mask`` on another grid, and handled by
``--cloudy buy|skip|ask``; a clear scene of another date fills in. Every input is made from the real
Sentinel-2 scene in tmp_path (the 960 m window of ``geo.realdata``: its AOI holds patches 1..46 of the
window's 48 x 48 in rows and columns); the counts below are worked out by hand from the masks written."""

from __future__ import annotations

import json
import math
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import typer
from affine import Affine

import tests.helpers.realdata as realdata
from tests.geo.test_band_files import patch_layer, zip_safe
from tests.hardening.catalogue import assert_refused
from tests.helpers.landsat import ELEV, L1, MTL_L1, A, M, landsat_set, to_dn
from tests.helpers.realdata import write_raster

# The counts below were worked out on a 20 m patch grid (the window's 48 x 48 patches). The shipped model's
# patches are 40 m, so these tests plan with a 20 m-patch checkpoint (the test suite's tiny model: 80 m
# tiles, 8 x 8 LR pixels, 4 x 4 patches of 20 m): cloud handling is the planner's, whatever the model.
_MODEL: list[Path] = []


@pytest.fixture(autouse=True)
def _model20(tiny_checkpoint: Path) -> None:
    _MODEL[:] = [tiny_checkpoint]


def plan_cli(cli: typer.Typer, aoi: Path, scenes: Path | list[Path], out: Path, *extra: str):
    """``geo.realdata.plan_cli`` with the 20 m-patch checkpoint."""
    return realdata.plan_cli(cli, aoi, scenes, out, "--model", str(_MODEL[0]), *extra)


@pytest.fixture
def reference(cli: typer.Typer, tmp_path: Path, _model20: None):
    """``geo.realdata.reference`` planned with the 20 m-patch checkpoint: the 920 m AOI holds 46 x 46 patches."""
    return realdata.plan_reference(cli, tmp_path, "--model", str(_MODEL[0]), side=46)


MTD_L2A = """<?xml version="1.0" encoding="UTF-8"?>
<n1:Level-2A_User_Product xmlns:n1="https://psd-14.sentinel2.eo.esa.int/PSD/User_Product_Level-2A.xsd">
<n1:General_Info><Product_Info><PROCESSING_BASELINE>02.01</PROCESSING_BASELINE></Product_Info></n1:General_Info>
</n1:Level-2A_User_Product>
"""
SAFE = "S2A_MSIL2A_20160112T160652_N0201_R054_T18SVG_20160112T160652.SAFE"
JP2 = dict(driver="JP2OpenJPEG", QUALITY="100", REVERSIBLE="YES", nodata=None)


def _patches(out: Path) -> dict[tuple[int, int], dict[str, Any]]:
    """(row, col) relative to the window -> the patch layer's properties."""
    fc = json.loads(out.with_suffix(".patches.geojson").read_text())
    r0 = min(f["properties"]["row"] for f in fc["features"]) - 1  # the AOI starts at the window's patch row 1
    c0 = min(f["properties"]["col"] for f in fc["features"]) - 1
    return {(f["properties"]["row"] - r0, f["properties"]["col"] - c0): f["properties"] for f in fc["features"]}


def _cells(*blocks: tuple[slice, slice]) -> set[tuple[int, int]]:
    """Patch (row, col) cells of blocks of 20 m cells (slices of the window's 48 x 48 patches)."""
    return {(r, c) for rs, cs in blocks for r in range(rs.start, rs.stop) for c in range(cs.start, cs.stop)}


def _by_policy(v: dict[str, Any]) -> bool:
    """The patch is selected as the threshold 0.5 says (a probability written as 0.5 was rounded to 4 decimals: either
    way)."""
    return v["probability"] == 0.5 or v["selected"] == (v["probability"] > 0.5)


def _summary(out: Path) -> dict[str, Any]:
    return json.loads(out.read_text())["summary"]


def _l2a(root: Path, data: np.ndarray, transform: Any, crs: Any, scl: np.ndarray) -> tuple[Path, list[Path], Path]:
    """A minimal L2A SAFE: B04/B03/B02 at 10 m (lossless JP2) in R10m, the SCL band at 20 m in R20m, MTD_MSIL2A.xml."""
    safe = root / SAFE
    img = safe / "GRANULE" / "L2A_T18SVG_A003000_20160112T160652" / "IMG_DATA"
    (img / "R10m").mkdir(parents=True)
    (img / "R20m").mkdir(parents=True)
    bands = [
        write_raster(img / "R10m" / f"T18SVG_20160112T160652_{b}_10m.jp2", data[i : i + 1], transform, crs, **JP2)
        for i, b in enumerate(("B04", "B03", "B02"))
    ]
    scl_file = write_raster(
        img / "R20m" / "T18SVG_20160112T160652_SCL_20m.jp2", scl[None], transform @ Affine.scale(2), crs, **JP2
    )
    (safe / "MTD_MSIL2A.xml").write_text(MTD_L2A)
    return safe, bands, scl_file


def _scl(*blocks: tuple[int, slice, slice]) -> np.ndarray:
    """A 48 x 48 SCL band (20 m: one pixel a patch) of vegetation / bare soil / water, with class blocks."""
    scl = np.full((48, 48), 4, np.uint8)
    scl[:, 24:] = 5
    scl[40:, :10] = 6
    for cls, rs, cs in blocks:
        scl[rs, cs] = cls
    return scl


CLOUD, SHADOW, CIRRUS = (slice(10, 20), slice(5, 15)), (slice(30, 34), slice(30, 40)), (slice(40, 42), slice(2, 4))


@pytest.mark.shared_data
def test_l2a_scl_cloudy_patches_buy_skip_and_ask(cli: typer.Typer, tmp_path: Path, reference) -> None:
    """SCL classes 9 (100 patches), 3 (40) and 10 (4) in the AOI are cloudy: 144. Class 8 on row 0 (outside the
    AOI), 11 (snow), 2 (dark area) and 0 (no data) are not. The SAFE folder (default --cloudy buy), its R10m band
    files with the SCL file listed among them (--cloudy skip) and the band files alone (the SCL found from the
    product's MTD_MSIL2A.xml; --cloudy ask, no terminal) find the same mask."""
    aoi, _, data, transform, crs = reference
    scl = _scl(
        (9, *CLOUD),
        (3, *SHADOW),
        (10, *CIRRUS),
        (8, slice(0, 1), slice(0, 48)),
        (11, slice(20, 25), slice(20, 25)),
        (2, slice(25, 27), slice(0, 48)),
        (0, slice(44, 46), slice(40, 44)),
    )
    safe, bands, scl_file = _l2a(tmp_path, data, transform, crs, scl)
    want = _cells(CLOUD, SHADOW, CIRRUS)
    assert len(want) == 144

    buy = tmp_path / "buy" / "order.geojson"
    r = plan_cli(cli, aoi, safe, buy, "--quicklook", str(buy.with_suffix(".png")))
    assert r.exit_code == 0, r.stderr
    s, p = _summary(buy), _patches(buy)
    assert {k for k, v in p.items() if v["cloud"] == "cloudy"} == want
    assert {v["cloud"] for v in p.values()} == {"clear", "cloudy"}
    c = s["clouds"]
    assert (c["patches_cloudy"], c["cloudy_km2"], c["handling"], c["chosen_by"]) == (
        144,
        144 * 400 / 1e6,
        "buy",
        "--cloudy buy (default)",
    )
    assert c["cloudy_selected"] == 144 and "SCL" in c["masks"][SAFE.removesuffix(".SAFE")]
    assert all(v["selected"] for k, v in p.items() if k in want)  # bought whatever their probability
    assert any(v["probability"] <= 0.5 for k, v in p.items() if k in want)  # ... some of which the policy would not buy
    assert all(_by_policy(v) for k, v in p.items() if k not in want)  # the clear ones by the policy
    assert buy.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"

    skip = tmp_path / "skip" / "order.geojson"
    r = plan_cli(cli, aoi, [*bands, scl_file], skip, "--cloudy", "skip")
    assert r.exit_code == 0, r.stderr
    s2, p2 = _summary(skip), _patches(skip)
    assert {k for k, v in p2.items() if v["cloud"] == "cloudy"} == want
    assert not any(v["selected"] for k, v in p2.items() if k in want)
    assert all(_by_policy(v) for k, v in p2.items() if k not in want)
    assert all(p2[k]["probability"] == p[k]["probability"] for k in p)  # the same inference; only the decision differs
    assert s2["clouds"]["handling"] == "skip" and s2["clouds"]["cloudy_selected"] == 0
    # fewer patches bought, never a dearer plan (the same bill when the vendor's minimum area or width already
    # covers the cloudy ones: clip-30cm's 100 m width on this 0.92 km^2 AOI)
    assert sum(v["selected"] for v in p2.values()) == sum(v["selected"] for v in p.values()) - 144
    assert s2["plan_cost_usd"] <= s["plan_cost_usd"]

    ask = tmp_path / "ask" / "order.geojson"
    line = assert_refused(
        plan_cli(cli, aoi, bands, ask, "--cloudy", "ask"),
        ask,
        "--cloudy ask: 144 of 2116 AOI patches (0.058 km2) are under cloud or cloud shadow in every scene",
        "no terminal to ask",
        "--cloudy buy",
        "--cloudy skip",
    )
    assert "\n" not in line


@pytest.mark.shared_data
def test_landsat_qa_pixel_bits(cli: typer.Typer, tmp_path: Path, reference) -> None:
    """QA_PIXEL beside Landsat Collection 2 band files (10 m pixels here, as the real scene's): the cloud (+ dilated)
    block covers 10 x 10 patches; one shadow pixel row gives 10 patches 2 of their 4 pixels (cloudy); the cirrus
    block 2 x 2 patches: 114. One cloud pixel in each of 10 patches (1 of 4: not over 25%), clear land with its
    low-confidence bits, snow, water and fill are not cloudy."""
    aoi, _, data, transform, crs = reference
    s = math.sin(math.radians(ELEV))
    rescaling = "".join(
        f"    REFLECTANCE_MULT_BAND_{n} = {M:.4E}\n    REFLECTANCE_ADD_BAND_{n} = {A:.5f}\n" for n in range(1, 10)
    )
    folder = tmp_path / L1
    landsat_set(
        folder, L1, to_dn(data, M / s, A / s), transform, crs, MTL_L1.format(pid=L1, elev=ELEV, rescaling=rescaling)
    )
    qa = np.full((96, 96), 21824, np.uint16)  # clear, low confidence of cloud, shadow, snow, cirrus
    qa[20:40, 20:40] = (1 << 1) | (1 << 3) | (3 << 8)  # dilated cloud, cloud, high confidence
    qa[60, 10:30] = (1 << 4) | (3 << 10)  # cloud shadow
    qa[80:84, 80:84] = (1 << 2) | (3 << 14)  # cirrus
    qa[70, 10:30:2] = (1 << 3) | (3 << 8)  # one pixel of four in patches (35, 5..14)
    qa[0:10, 60:96] = (1 << 5) | (3 << 12)  # snow
    qa[90:96, 0:40] = (1 << 7) | (1 << 6)  # water
    qa[86:90, 50:60] = 1  # fill
    write_raster(folder / f"{L1}_QA_PIXEL.TIF", qa[None], transform, crs, nodata=1)
    out = tmp_path / "out" / "order.geojson"
    r = plan_cli(cli, aoi, folder, out)
    assert r.exit_code == 0, r.stderr
    p = _patches(out)
    want = _cells((slice(10, 20), slice(10, 20)), (slice(30, 31), slice(5, 15)), (slice(40, 42), slice(40, 42)))
    assert {k for k, v in p.items() if v["cloud"] == "cloudy"} == want and len(want) == 114
    assert _summary(out)["clouds"]["patches_cloudy"] == 114 and "QA_PIXEL" in _summary(out)["clouds"]["masks"][L1]


@pytest.mark.shared_data
def test_a_zipped_l2a_safe_finds_its_scl_in_the_zip(cli: typer.Typer, tmp_path: Path) -> None:
    """The L2A SAFE of the SCL test zipped (stored, as X.SAFE.zip): its R10m bands and R20m SCL are read through
    /vsizip/ (the folder removed); the same 144 cloudy patches, patch layer and cloud summary as the folder."""
    data, transform, crs = realdata.real_pixels()
    aoi = realdata.window_aoi(tmp_path / "aoi.gpkg", transform)
    safe, _, _ = _l2a(tmp_path, data, transform, crs, _scl((9, *CLOUD), (3, *SHADOW), (10, *CIRRUS)))
    zpath = zip_safe(safe, zipfile.ZIP_STORED)
    outs = [tmp_path / name / "order.geojson" for name in ("folder", "zip")]
    for lr, out in zip((safe, zpath), outs):
        r = plan_cli(cli, aoi, lr, out)
        assert r.exit_code == 0, r.stderr
        shutil.rmtree(safe, ignore_errors=True)  # the zip alone, nothing unzipped beside it
    assert {k for k, v in _patches(outs[1]).items() if v["cloud"] == "cloudy"} == _cells(CLOUD, SHADOW, CIRRUS)
    assert patch_layer(outs[1]) == patch_layer(outs[0])
    c = _summary(outs[1])["clouds"]
    assert c == _summary(outs[0])["clouds"] and c["patches_cloudy"] == 144
    assert c["masks"][SAFE.removesuffix(".SAFE")].startswith("T18SVG_20160112T160652_SCL_20m.jp2: Sentinel-2 SCL")


def _mask30(path: Path, transform: Any, crs: Any, **kw: Any) -> Path:
    """A 30 m user mask over the window (32 x 32 px): cloud (value 7) on mask pixels 10..19, nodata 255 on rows 0..4."""
    m = np.zeros((1, 32, 32), np.uint8)
    m[0, 10:20, 10:20] = 7
    m[0, 0:5, :] = 255
    return write_raster(path, m, Affine(30.0, 0, transform.c, 0, -30.0, transform.f), crs, nodata=255, **kw)


USER = _cells((slice(15, 30), slice(15, 30)))
"""Mask pixels 10..19 at 30 m cover x in [300, 600) m: LR pixel centres 305..595 m (pixels 30..59), patches 15..29."""


@pytest.mark.shared_data
def test_user_cloud_mask_on_another_grid(cli: typer.Typer, tmp_path: Path, reference) -> None:
    """--cloud-mask at 30 m on the stacked scene, resampled onto the 10 m grid: 15 x 15 = 225 cloudy patches; its
    nodata rows (255, nonzero) are not cloud."""
    aoi, want, data, transform, crs = reference
    stack = tmp_path / "rgbn.tif"  # written by the reference fixture
    mask = _mask30(tmp_path / "clouds30.tif", transform, crs)
    out = tmp_path / "out" / "order.geojson"
    r = plan_cli(cli, aoi, stack, out, "--cloud-mask", str(mask))
    assert r.exit_code == 0, r.stderr
    p = _patches(out)
    assert {k for k, v in p.items() if v["cloud"] == "cloudy"} == USER
    c = _summary(out)["clouds"]
    assert c["patches_cloudy"] == 225 and c["masks"] == {"rgbn": "--cloud-mask clouds30.tif: nonzero = cloud"}
    assert all(
        v["probability"] == want[v["patch_id"]][0] for v in p.values()
    )  # a mask changes decisions, not probabilities


@pytest.mark.shared_data
def test_a_clear_scene_of_another_date_fills_in(cli: typer.Typer, tmp_path: Path, reference) -> None:
    """Scene A (L2A SAFE) has a cloud over patches 10..19 x 5..14 (SCL 9, pixels white); scene B (the stack, no
    mask: clear) is of another date over the same tile. With --lr A --lr B each cloudy patch of A is decided by
    B (B's probability), every other patch by A (A's); nothing is left cloudy, 100 patches are filled in."""
    aoi, want_b, data, transform, crs = reference
    cloudy = data.copy()
    cloudy[:, 20:40, 10:30] = 9000  # the cloud itself, bright in every band
    safe, _, _ = _l2a(tmp_path / "a", cloudy, transform, crs, _scl((9, *CLOUD)))
    alone = tmp_path / "alone" / "order.geojson"
    assert plan_cli(cli, aoi, safe, alone).exit_code == 0
    pa = _patches(alone)
    assert {k for k, v in pa.items() if v["cloud"] == "cloudy"} == _cells(CLOUD)
    both = tmp_path / "both" / "order.geojson"
    r = plan_cli(cli, aoi, [safe, tmp_path / "rgbn.tif"], both)
    assert r.exit_code == 0, r.stderr
    p, c = _patches(both), _summary(both)["clouds"]
    assert (c["patches_cloudy"], c["patches_filled"], c["masks"]["rgbn"]) == (0, 100, None)
    assert {k for k, v in p.items() if v["cloud"] == "filled"} == _cells(CLOUD)
    for k, v in p.items():
        assert v["probability"] == (want_b[v["patch_id"]][0] if k in _cells(CLOUD) else pa[k]["probability"]), k
    assert _summary(both)["scenes"][0]["tiles"] == 144  # tiles are still counted for the first scene with data


def _run_fix(line: str) -> None:
    """Run the ``rio ...`` command an error line suggests, as printed (hints that work)."""
    cmd = shlex.split(line[line.index("rio ") :])
    subprocess.run([str(Path(sys.executable).parent / "rio"), *cmd[1:]], check=True)


@pytest.mark.shared_data
def test_bad_masks_are_refused_with_one_line(cli: typer.Typer, tmp_path: Path, reference) -> None:
    """A mask 5 km away, two masks for one scene, a mask without georeferencing: one line, exit 2, nothing
    written; the last one's fix (rio edit-info --like the scene), run as printed, plans it like the georeferenced
    one."""
    aoi, _, data, transform, crs = reference
    stack = tmp_path / "rgbn.tif"
    out = tmp_path / "out" / "order.geojson"
    away = _mask30(tmp_path / "away.tif", transform * Affine.translation(5000, 0), crs)
    assert_refused(
        plan_cli(cli, aoi, stack, out, "--cloud-mask", str(away)),
        out,
        f"--cloud-mask {away} does not overlap scene rgbn over the AOI",
        "pass the mask made for that scene",
    )
    near = _mask30(tmp_path / "near.tif", transform, crs)
    assert_refused(
        plan_cli(cli, aoi, stack, out, "--cloud-mask", str(near), "--cloud-mask", str(near)),
        out,
        "--cloud-mask is given 2 times for 1 scene(s)",
    )
    m = np.zeros((1, 96, 96), np.uint8)
    m[0, 30:60, 30:60] = 1  # patches 15..29, as USER
    bare = write_raster(tmp_path / "bare.tif", m, None, None, nodata=None)
    line = assert_refused(
        plan_cli(cli, aoi, stack, out, "--cloud-mask", str(bare)),
        out,
        f"--cloud-mask {bare} has no CRS",
        f"rio edit-info --like {stack} --crs like --transform like {bare}",
    )
    _run_fix(line)
    r = plan_cli(cli, aoi, stack, out, "--cloud-mask", str(bare))
    assert r.exit_code == 0, r.stderr
    assert {k for k, v in _patches(out).items() if v["cloud"] == "cloudy"} == USER
