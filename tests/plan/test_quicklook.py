"""Quicklook PNG: drawn from a small generated scene with a real CRS, atomically, without pyplot."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
from affine import Affine

from zoomplan.plan.orders import build_orders
from zoomplan.plan.pricing import VendorProfile, baseline_cost, bill, cost_summary
from zoomplan.plan.quicklook import render, rgb_bands, stretch

from plan.tables import random_table as make_table

X, Y = 500000.0, 4500000.0
AOI = shapely.Polygon([(X + 300, Y + 300), (X + 2500, Y + 400), (X + 2400, Y + 2500), (X + 400, Y + 2300)])
VENDOR = VendorProfile("t", "p", 0.5, "archive", "USD", 10.0, 0.1, 0.0, 200, False, 20.0, 30.0, "test", "2026-11")


def make_scene(path: Path, crs: str = "EPSG:32618", descriptions=("blue (B02)", "green (B03)", "red (B04)")) -> Path:
    """A 300 x 300 px, 10 m, 3-band uint16 scene over the AOI, bands stored blue, green, red."""
    rng = np.random.default_rng(0)
    data = (rng.random((3, 300, 300)) * 3000 + 500).astype(np.uint16)
    if crs == "EPSG:32618":
        transform = Affine(10.0, 0.0, X, 0.0, -10.0, Y + 3000)
    else:  # the same ground in lon/lat
        transform = Affine(0.00012, 0.0, -75.0, 0.0, -0.0001, 40.65)
    with rasterio.open(path, "w", driver="GTiff", width=300, height=300, count=3, dtype="uint16", crs=crs, transform=transform, nodata=0) as ds:
        ds.write(data)
        for i, d in enumerate(descriptions, 1):
            ds.set_band_description(i, d)
    return path


def plan():
    t = make_table(AOI)
    sel = t.prob > 0.7
    orders = build_orders(t, sel, [AOI], VENDOR)
    summary = {"plan": cost_summary(bill(orders, VENDOR), baseline_cost([AOI], VENDOR, t.crs), VENDOR)}
    return t, sel, orders, summary


@pytest.mark.parametrize("scene_crs", ["EPSG:32618", "EPSG:4326"])
def test_render_writes_a_png_without_pyplot(tmp_path: Path, scene_crs: str) -> None:
    scene = make_scene(tmp_path / "s2.tif", scene_crs)
    t, sel, orders, summary = plan()
    had_pyplot = "matplotlib.pyplot" in sys.modules
    out = render(scene, t, sel, orders, [AOI], t.crs, summary, tmp_path / "q" / "order.png", max_px=128)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in out.parent.iterdir()) == ["order.png"]
    assert ("matplotlib.pyplot" in sys.modules) == had_pyplot


def test_bands_and_stretch() -> None:
    assert rgb_bands(["blue (B02)", "green (B03)", "red (B04)"], ["undefined"] * 3) == (3, 2, 1)
    assert rgb_bands(["B04", "B03", "B02", "B08"], ["undefined"] * 4) == (1, 2, 3)
    assert rgb_bands([None] * 4, ["blue", "green", "red", "undefined"]) == (3, 2, 1)
    assert rgb_bands([None], ["gray"]) == (1,)
    data = np.ma.masked_equal(np.arange(2 * 10 * 10, dtype=np.float32).reshape(2, 10, 10), 0)
    img = stretch(data)
    assert img.shape == (10, 10, 4) and img[0, 0, 3] == 0 and img[5, 5, 3] == 1
    assert 0 <= img[..., :3].min() and img[..., :3].max() <= 1
