"""Landsat 8/9 Collection 2 products as distributed, written in tmp_path: one GeoTIFF per band
(``LC08_..._B4.TIF``) and the product's ``*_MTL.txt``, with made-up but realistic MTL coefficients.

Import as ``from tests.helpers.landsat import ...``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.helpers.realdata import write_raster

L1 = "LC08_L1TP_014033_20160112_20200907_02_T1"
L2 = "LC09_L2SP_014033_20220112_20230503_02_T1"
NUMBERS = (4, 3, 2, 5)  # red, green, blue, nir: rows 0..3 of the real stack
M, A, ELEV = 2.0e-5, -0.1, 35.0
SR_M, SR_A = 2.75e-5, -0.2

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


def to_dn(data: np.ndarray, scale: float, offset: float) -> np.ndarray:
    """Reflectance x 10000 -> Landsat DN with ``rho = DN * scale + offset``, rounded; fill (0) stays 0."""
    dn = np.rint((data.astype(np.float64) * 1e-4 - offset) / scale)
    return np.where(data > 0, np.clip(dn, 1, 65535), 0).astype(np.uint16)


def landsat_set(folder: Path, pid: str, dn: np.ndarray, transform, crs, mtl: str, prefix: str = "") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = [
        write_raster(
            folder / f"{pid}_{prefix}B{n}.TIF", dn[i : i + 1], transform, crs, driver="COG", compress="DEFLATE"
        )
        for i, n in enumerate(NUMBERS)
    ]
    # bands the planner leaves out: the 15 m panchromatic B8 (which must not set the grid), a QA band
    write_raster(folder / f"{pid}_{prefix}B1.TIF", dn[2:3], transform, crs)
    write_raster(folder / f"{pid}_QA_PIXEL.TIF", np.zeros_like(dn[:1]), transform, crs)
    if not prefix:
        pan = dn[0].repeat(2, axis=0).repeat(2, axis=1)
        write_raster(folder / f"{pid}_B8.TIF", pan[None], transform * transform.scale(0.5), crs)
    (folder / f"{pid}_MTL.txt").write_text(mtl)
    return files
