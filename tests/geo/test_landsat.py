"""Landsat 8/9 Collection 2 as distributed (issue 18): one GeoTIFF per band (``LC08_..._B4.TIF``) and the
product's ``*_MTL.txt``. Level-1 digital numbers are made from the real scene's reflectance by inverting
made-up but realistic MTL coefficients (M = 2.0e-5, A = -0.1, sun elevation 35 degrees); Level-2 by
inverting the surface-reflectance scale 0.0000275 and offset -0.2. Each, read through the MTL's per-band
conversion, plans the same patches as the stacked GeoTIFF of the reflectance it encodes (shipped model)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import typer

from geo.realdata import patch_probs, plan_cli, reference, same_plan, write_raster  # noqa: F401 (fixture)
from zoomplan.geo.bands import BandSet, band_token, group_scene_inputs, landsat_reflectance

L1 = "LC08_L1TP_014033_20160112_20200907_02_T1"
L2 = "LC09_L2SP_014033_20220112_20230503_02_T1"
NUMBERS = (4, 3, 2, 5)  # red, green, blue, nir: rows 0..3 of the real stack
M, A, ELEV = 2.0e-5, -0.1, 35.0
SR_M, SR_A = 2.75e-5, -0.2
TOL = 0.01  # probabilities: DN rounding (up to 3e-5 reflectance), float32 on read, 4 decimals written; the
# shipped policy moved up to 0.0066 under that rounding (selections equal, asserted first)

MTL_L1 = """GROUP = LANDSAT_METADATA_FILE
  GROUP = PRODUCT_CONTENTS
    LANDSAT_PRODUCT_ID = "{pid}"
    PROCESSING_LEVEL = "L1TP"
  END_GROUP = PRODUCT_CONTENTS
  GROUP = IMAGE_ATTRIBUTES
    SPACECRAFT_ID = "LANDSAT_8"
    SUN_AZIMUTH = 152.1
    SUN_ELEVATION = {elev}
  END_GROUP = IMAGE_ATTRIBUTES
  GROUP = LEVEL1_RADIOMETRIC_RESCALING
{rescaling}  END_GROUP = LEVEL1_RADIOMETRIC_RESCALING
END_GROUP = LANDSAT_METADATA_FILE
END
"""

MTL_L2 = """GROUP = LANDSAT_METADATA_FILE
  GROUP = PRODUCT_CONTENTS
    LANDSAT_PRODUCT_ID = "{pid}"
    PROCESSING_LEVEL = "L2SP"
  END_GROUP = PRODUCT_CONTENTS
  GROUP = IMAGE_ATTRIBUTES
    SUN_ELEVATION = 27.5
  END_GROUP = IMAGE_ATTRIBUTES
  GROUP = LEVEL2_SURFACE_REFLECTANCE_PARAMETERS
{sr}  END_GROUP = LEVEL2_SURFACE_REFLECTANCE_PARAMETERS
  GROUP = LEVEL1_RADIOMETRIC_RESCALING
{l1}  END_GROUP = LEVEL1_RADIOMETRIC_RESCALING
END_GROUP = LANDSAT_METADATA_FILE
END
"""


def _to_dn(data: np.ndarray, scale: float, offset: float) -> np.ndarray:
    """Reflectance x 10000 -> Landsat DN with ``rho = DN * scale + offset``, rounded; fill (0) stays 0."""
    dn = np.rint((data.astype(np.float64) * 1e-4 - offset) / scale)
    return np.where(data > 0, np.clip(dn, 1, 65535), 0).astype(np.uint16)


def _landsat_set(folder: Path, pid: str, dn: np.ndarray, transform, crs, mtl: str, prefix: str = "") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = [write_raster(folder / f"{pid}_{prefix}B{n}.TIF", dn[i : i + 1], transform, crs, driver="COG", compress="DEFLATE")
             for i, n in enumerate(NUMBERS)]
    # bands the planner leaves out: the 15 m panchromatic B8 (which must not set the grid), a QA band
    write_raster(folder / f"{pid}_{prefix}B1.TIF", dn[2:3], transform, crs)
    write_raster(folder / f"{pid}_QA_PIXEL.TIF", np.zeros_like(dn[:1]), transform, crs)
    if not prefix:
        pan = dn[0].repeat(2, axis=0).repeat(2, axis=1)
        write_raster(folder / f"{pid}_B8.TIF", pan[None], transform * transform.scale(0.5), crs)
    (folder / f"{pid}_MTL.txt").write_text(mtl)
    return files


@pytest.mark.shared_data
def test_level1_folder_plans_like_the_stack(cli: typer.Typer, tmp_path: Path, reference) -> None:
    """L1TP DN = (rho sin(35 deg) - A) / M: the folder, its band files, or its MTL file given as --lr plan as
    the reflectance stack does (probabilities within the DN rounding and the 4 decimals written)."""
    aoi, want, data, transform, crs = reference
    s = math.sin(math.radians(ELEV))
    dn = _to_dn(data, M / s, A / s)
    rescaling = "".join(f"    REFLECTANCE_MULT_BAND_{n} = {M:.4E}\n    REFLECTANCE_ADD_BAND_{n} = {A:.5f}\n" for n in range(1, 10))
    rescaling += "".join(f"    RADIANCE_MULT_BAND_{n} = 1.2E-02\n    RADIANCE_ADD_BAND_{n} = -61.0\n" for n in range(1, 10))
    folder = tmp_path / L1
    files = _landsat_set(folder, L1, dn, transform, crs, MTL_L1.format(pid=L1, elev=ELEV, rescaling=rescaling))
    assert [band_token(f) for f in files] == ["red", "green", "blue", "nir"]
    (grouped,) = group_scene_inputs([folder])
    assert sorted(f.name for f in grouped.files) == sorted(f.name for f in files)  # B1, B8, QA left out
    name, scale, offset, _ = landsat_reflectance(folder / f"{L1}_MTL.txt", ("red", "green", "blue"))
    assert name == "landsat_c2l1_mtl" and scale == pytest.approx((M / s,) * 3) and offset == pytest.approx((A / s,) * 3)
    for k, lr in enumerate((folder, files[:3], folder / f"{L1}_MTL.txt")):
        out = tmp_path / f"out{k}" / "order.geojson"
        r = plan_cli(cli, aoi, lr, out)
        assert r.exit_code == 0, r.stderr
        same_plan(patch_probs(out), want, tol=TOL)


@pytest.mark.shared_data
def test_level2_from_the_mtl_or_sensor(cli: typer.Typer, tmp_path: Path, reference) -> None:
    """L2SP DN = (rho + 0.2) / 0.0000275 (SR_B* files): the MTL's LEVEL2 coefficients, not its Level-1 ones
    nor its sun elevation, convert it; a stack of the same DN without metadata takes --sensor landsat_c2l2."""
    aoi, want, data, transform, crs = reference
    dn = _to_dn(data, SR_M, SR_A)
    sr = "".join(f"    REFLECTANCE_MULT_BAND_{n} = 2.75e-05\n    REFLECTANCE_ADD_BAND_{n} = -0.200000\n" for n in range(1, 8))
    l1 = "".join(f"    REFLECTANCE_MULT_BAND_{n} = 2.0000E-05\n    REFLECTANCE_ADD_BAND_{n} = -0.100000\n" for n in range(1, 10))
    folder = tmp_path / L2
    _landsat_set(folder, L2, dn, transform, crs, MTL_L2.format(pid=L2, sr=sr, l1=l1), prefix="SR_")
    (grouped,) = group_scene_inputs([folder])
    assert isinstance(grouped, BandSet) and len(grouped.files) == 4
    assert grouped.scene_id == L2
    out = tmp_path / "out" / "order.geojson"
    r = plan_cli(cli, aoi, folder, out)
    assert r.exit_code == 0, r.stderr
    same_plan(patch_probs(out), want, tol=TOL)
    stack = write_raster(tmp_path / "l2.tif", dn, transform, crs, descriptions=("red", "green", "blue", "nir"))
    out2 = tmp_path / "out2" / "order.geojson"
    r = plan_cli(cli, aoi, stack, out2, "--sensor", "landsat_c2l2")
    assert r.exit_code == 0, r.stderr
    same_plan(patch_probs(out2), want, tol=TOL)


@pytest.mark.shared_data
def test_band_files_without_their_mtl(cli: typer.Typer, tmp_path: Path, reference) -> None:
    """No MTL beside the band files: Level-1 stops with one line saying the MTL is needed (its TOA reflectance
    needs the MTL's coefficients and sun elevation), nothing written; Level-2 stops asking for
    --sensor landsat_c2l2, and with it plans as the reflectance stack does."""
    from hardening.catalogue import assert_refused

    aoi, want, data, transform, crs = reference
    s = math.sin(math.radians(ELEV))
    l1 = tmp_path / L1
    files = _landsat_set(l1, L1, _to_dn(data, M / s, A / s), transform, crs, "")
    (l1 / f"{L1}_MTL.txt").unlink()
    out = tmp_path / "out" / "order.geojson"
    for lr in (l1, files[:3]):
        assert_refused(plan_cli(cli, aoi, lr, out), out, "Landsat Collection 2 Level-1 band files", "without their product's *_MTL.txt",
                       "put the MTL file from the same download beside them")
    l2 = tmp_path / L2
    _landsat_set(l2, L2, _to_dn(data, SR_M, SR_A), transform, crs, "", prefix="SR_")
    (l2 / f"{L2}_MTL.txt").unlink()
    assert_refused(plan_cli(cli, aoi, l2, out), out, "Landsat band files", "pass --sensor landsat_c2l2")
    r = plan_cli(cli, aoi, l2, out, "--sensor", "landsat_c2l2")
    assert r.exit_code == 0, r.stderr
    same_plan(patch_probs(out), want, tol=TOL)
