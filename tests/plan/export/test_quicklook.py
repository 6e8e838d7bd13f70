"""Quicklook PNG: drawn from a small generated scene with a real CRS, atomically, without pyplot; and
the image itself checked: the probability field tints the map, the legend and bill are off it, dropped
patches show, and the real scene's plan is not a block of order outlines."""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
from affine import Affine

from tests.conftest import shared_data
from tests.plan.tables import random_table as make_table
from zoomplan.plan.export.map_layers import MAX_GRID, patch_grid, rgb_bands, stretch
from zoomplan.plan.export.quicklook import figure, render
from zoomplan.plan.orders.orders import baseline_cost, build_orders
from zoomplan.plan.orders.pricing import VendorProfile, bill, cost_summary

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
REAL_SCENE = "sentinel2/s2_l1c_18SVG_20160112_rgbn_10m.tif"

X, Y = 500000.0, 4500000.0
AOI = shapely.Polygon([(X + 300, Y + 300), (X + 2500, Y + 400), (X + 2400, Y + 2500), (X + 400, Y + 2300)])
VENDOR = VendorProfile("t", "p", 0.5, "archive", "USD", 10.0, 0.1, 0.0, 200, False, 20.0, 30.0, "test", "2026-11")


def make_scene(path: Path, crs: str = "EPSG:32618", descriptions=("blue (B02)", "green (B03)", "red (B04)")) -> Path:
    """A 300 x 300 px, 10 m, 3-band uint16 scene over the AOI, bands stored blue, green, red."""
    rng = np.random.default_rng(0)
    data = (rng.random((3, 300, 300)) * 3000 + 500).astype(np.uint16)
    if crs == "EPSG:32618":
        transform = Affine(10.0, 0.0, X, 0.0, -10.0, Y + 3000)
    elif crs == "EPSG:4326+aoi":  # lon/lat over the AOI (about 3 x 3 km)
        crs, transform = "EPSG:4326", Affine(0.00012, 0.0, -75.0, 0.0, -0.0001, 40.68)
    else:  # lon/lat just south of the AOI
        transform = Affine(0.00012, 0.0, -75.0, 0.0, -0.0001, 40.65)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=300,
        height=300,
        count=3,
        dtype="uint16",
        crs=crs,
        transform=transform,
        nodata=0,
    ) as ds:
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


# ---------------------------------------------------------------- the image itself


def axes(fig, label: str):
    return next(a for a in fig.axes if a.get_label() == label)


def pixels(fig) -> np.ndarray:
    """The drawn figure as (H, W, 3) int RGB (row 0 at the top)."""
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].astype(int)


def at(fig, ax, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of the figure's pixels at map coordinates ``xy`` (N, 2)."""
    d = ax.transData.transform(xy)
    h = int(fig.bbox.height)
    return (h - d[:, 1]).astype(int), d[:, 0].astype(int)


def inner(t, idx: np.ndarray) -> np.ndarray:
    """The patches ``idx`` that lie wholly inside the AOI (their centres are far from its outline)."""
    b = t.bounds(idx)
    return idx[shapely.contains(AOI, shapely.box(b[:, 0], b[:, 1], b[:, 2], b[:, 3]))]


def centres(t, idx: np.ndarray) -> np.ndarray:
    b = t.bounds(idx)
    return np.column_stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2])


def halves_plan():
    """Probability 0.95 on the AOI's west half, 0.05 on its east half (100 m patches)."""
    t = make_table(AOI)
    west = (t.col + 0.5) * t.patch_m < X + 1400
    t = dataclasses.replace(t, prob=np.where(west, 0.95, 0.05).astype(np.float32))
    sel = t.prob > 0.5
    orders = build_orders(t, sel, [AOI], VENDOR)
    summary = {
        "plan": cost_summary(bill(orders, VENDOR), baseline_cost([AOI], VENDOR, t.crs), VENDOR),
        "parameters": {"threshold": 0.5},
    }
    return t, sel, orders, summary


def red_share(img: np.ndarray, fig, ax) -> float:
    """Share of the map's pixels in the order outlines' red."""
    b = ax.get_window_extent()
    h = int(fig.bbox.height)
    m = img[int(h - b.y1) + 2 : int(h - b.y0) - 2, int(b.x0) + 2 : int(b.x1) - 2]
    red = (m[..., 0] > 170) & (m[..., 1] < 90) & (m[..., 2] < 90)
    return float(red.mean())


@pytest.mark.parametrize("scene_crs", ["EPSG:32618", "EPSG:4326+aoi"])
def test_probability_field_tints_the_map(tmp_path: Path, scene_crs: str) -> None:
    """High- and low-probability patches are tinted apart (one imshow on the patch grid); the map's
    margin outside the patch grid keeps the scene's own colours; axes in km with the planning CRS."""
    scene = make_scene(tmp_path / "s.tif", scene_crs)
    t, sel, orders, summary = halves_plan()
    fig = figure(scene, t, sel, orders, [AOI], t.crs, summary, max_px=300)
    img = pixels(fig)
    ax = axes(fig, "map")
    west = inner(t, np.nonzero(t.prob > 0.5)[0])
    east = inner(t, np.nonzero(t.prob < 0.5)[0])
    hi = img[at(fig, ax, centres(t, west))].mean(axis=0)
    lo = img[at(fig, ax, centres(t, east))].mean(axis=0)
    # the margin west of the grid (x < X + 300), inside the map: scene only
    ys = np.linspace(Y + 400, Y + 2400, 40)
    bgx = at(fig, ax, np.column_stack([np.full(40, X + 240), ys]))
    bg = img[bgx].mean(axis=0)
    assert np.abs(bg - 128).max() < 30, bg  # the noise scene, stretched: grey on average, untinted
    assert (hi[0] - hi[2]) - (lo[0] - lo[2]) > 60, (hi, lo)  # viridis: yellow over high, purple over low
    assert np.abs(hi - bg).max() > 30 and np.abs(lo - bg).max() > 20, (hi, lo, bg)
    # one raster for the field, not a shape per patch
    assert len(ax.images) <= 3 and len(ax.patches) <= 2
    assert "km" in ax.get_xlabel() and "EPSG:32618" in ax.get_xlabel() and "km" in ax.get_ylabel()
    assert "probability" in axes(fig, "colorbar").get_xlabel()


def test_legend_bill_and_colour_bar_are_off_the_map(tmp_path: Path) -> None:
    """Legend, bill text and colour bar lie beside the map axes, inside the figure; the bill states the
    plan, baseline and savings in USD."""
    scene = make_scene(tmp_path / "s.tif")
    t, sel, orders, summary = halves_plan()
    fig = figure(scene, t, sel, orders, [AOI], t.crs, summary, max_px=128)
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    ax, panel, cax = axes(fig, "map"), axes(fig, "panel"), axes(fig, "colorbar")
    assert ax.get_legend() is None and not ax.texts
    m = ax.get_window_extent(r)
    boxes = [
        panel.get_legend().get_window_extent(r),
        *(x.get_window_extent(r) for x in panel.texts),
        cax.get_tightbbox(r),
    ]
    for b in boxes:
        assert not m.overlaps(b) and b.x0 > m.x1, (m, b)
        assert 0 <= b.x0 and b.x1 <= fig.bbox.width and 0 <= b.y0 and b.y1 <= fig.bbox.height
    text = "\n".join(x.get_text() for x in panel.texts)
    c = summary["plan"]
    for key in ("plan_cost_usd", "baseline_cost_usd", "savings_usd"):
        assert f"USD {c[key]:,.2f}" in text
    assert f"({c['savings_pct']:.1f}%)" in text and f"{len(orders):,}" in text
    out = render(scene, t, sel, orders, [AOI], t.crs, summary, tmp_path / "q.png", max_px=128)
    import matplotlib.image

    assert matplotlib.image.imread(out).shape[:2] == (int(fig.bbox.height), int(fig.bbox.width))


def test_patches_no_order_buys_are_drawn_dropped(tmp_path: Path) -> None:
    """Selected patches that no order serves (here: one order left out) are magenta; the legend counts them."""
    scene = make_scene(tmp_path / "s.tif")
    t, sel, orders, summary = halves_plan()
    big = max(range(len(orders)), key=lambda i: orders[i].n_patches)
    kept = [o for i, o in enumerate(orders) if i != big]
    served = np.concatenate([o.patches for o in kept]) if kept else np.zeros(0, np.int64)
    gone = inner(t, np.setdiff1d(orders[big].patches, served))
    assert gone.size
    fig = figure(scene, t, sel, kept, [AOI], t.crs, summary, max_px=128)
    img = pixels(fig)
    px = img[at(fig, axes(fig, "map"), centres(t, gone))]
    assert ((px[:, 0] > 200) & (px[:, 1] < 60) & (px[:, 2] > 200)).mean() > 0.9
    labels = [x.get_text() for x in axes(fig, "panel").get_legend().get_texts()]
    n = int((sel & ~np.isin(np.arange(len(t)), served)).sum())
    assert any(f"not ordered ({n:,} patches)" in x for x in labels), labels


def test_patch_grid_is_one_cell_per_patch_and_bounded() -> None:
    t = make_table(AOI)
    g, (x0, x1, y0, y1) = patch_grid(t, t.prob)
    assert g.shape == (t.row.max() - t.row.min() + 1, t.col.max() - t.col.min() + 1)
    assert np.count_nonzero(np.isfinite(g)) == len(t)
    assert g[t.row - t.row.min(), t.col - t.col.min()] == pytest.approx(t.prob)
    assert (x0, y1) == (t.col.min() * t.patch_m, -t.row.min() * t.patch_m)
    assert (x1 - x0, y1 - y0) == (g.shape[1] * t.patch_m, g.shape[0] * t.patch_m)
    small, _ = patch_grid(t, t.prob, max_cells=5)
    assert max(small.shape) <= 5 and np.nanmax(small) <= 1 and np.nanmin(small) >= 0
    assert MAX_GRID >= 1024


def example_plan(tmp_path: Path, model: Path, aoi: Path, scene: Path, vendors_file: Path | None = None):
    from zoomplan.plan.pipeline import plan as run_plan

    png = tmp_path / "q.png"
    r = run_plan(aoi, [scene], model=model, device="cpu", quicklook=png, threads=1, vendors_file=vendors_file)
    fig = figure(scene, r.table, r.selected, r.orders, list(r.aoi.geoms), r.table.crs, r.summary)
    import matplotlib.image

    img = (matplotlib.image.imread(png)[..., :3] * 255).astype(int)  # the PNG the pipeline wrote
    fig.canvas.draw()
    return r, fig, img


def test_bundled_example_quicklook(tmp_path: Path, tiny_checkpoint: Path) -> None:
    """The README example (4 km^2) through the pipeline: outlines a small share of the map, a field drawn."""
    r, fig, img = example_plan(
        tmp_path, tiny_checkpoint, EXAMPLES / "aoi_accomac.geojson", EXAMPLES / "s2_l1c_18SVG_20160112_accomac_crop.tif"
    )
    ax = axes(fig, "map")
    assert img.shape[:2] == (int(fig.bbox.height), int(fig.bbox.width))
    assert red_share(img, fig, ax) < 0.2
    assert len(ax.images) <= 3 and len(ax.patches) <= 2


@pytest.mark.slow
@pytest.mark.shared_data
def test_real_scene_quicklook_is_not_a_block_of_outlines(tmp_path: Path) -> None:
    """The whole real Sentinel-2 scene (about 370 km^2: 230,000 patches of 40 m) planned with the shipped model:
    under 20% of the map's pixels are the orders' red (it was a solid red block), high- and
    low-probability patches are tinted apart, and drawing takes seconds, not minutes."""
    from pyproj import Transformer
    from shapely.geometry import mapping

    from zoomplan.models.checkpoint import default_checkpoint_path

    scene = shared_data(REAL_SCENE)
    with rasterio.open(scene) as ds:
        b, crs = ds.bounds, ds.crs
    tr = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    poly = shapely.box(b.left + 100, b.bottom + 100, b.right - 100, b.top - 100).segmentize(500.0)
    poly = shapely.transform(poly, lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1])))
    aoi = tmp_path / "scene.geojson"
    aoi.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [{"type": "Feature", "properties": {"id": "scene"}, "geometry": mapping(poly)}],
            }
        )
    )
    # the default profile without its 100 m minimum width: the shipped model's 60 m strips stay hundreds of thin orders
    from zoomplan.plan.orders.pricing import default_catalogue

    vendors = tmp_path / "vendors.toml"
    text = default_catalogue().read_text(encoding="utf-8")
    head, tail = text.split('name = "clip-30cm"', 1)
    vendors.write_text(
        head + 'name = "clip-30cm"' + tail.replace("min_width_m = 100.0", "min_width_m = 0.0", 1), encoding="utf-8"
    )
    r, fig, img = example_plan(tmp_path, default_checkpoint_path(), aoi, scene, vendors)
    ax = axes(fig, "map")
    assert len(r.table) > 0.9 * 368e6 / r.table.patch_m**2 and len(r.orders) > 20  # every patch of the ~370 km^2 AOI
    share = red_share(img, fig, ax)
    assert share < 0.2, f"{share:.1%} of the map is order-outline red"
    t0 = time.perf_counter()
    figure(scene, r.table, r.selected, r.orders, list(r.aoi.geoms), r.table.crs, r.summary).canvas.draw()
    assert time.perf_counter() - t0 < 10.0
    assert len(ax.images) <= 3 and len(ax.patches) <= 2
    # the probability field: patches above and below the threshold tinted apart (viridis: yellow vs purple)
    rng = np.random.default_rng(0)
    hi = rng.choice(np.nonzero(r.table.prob > 0.8)[0], 2000)
    lo = rng.choice(np.nonzero(r.table.prob < 0.2)[0], 2000)
    ph = img[at(fig, ax, centres(r.table, hi))].mean(axis=0)
    pl = img[at(fig, ax, centres(r.table, lo))].mean(axis=0)
    assert (ph[0] - ph[2]) - (pl[0] - pl[2]) > 20, (ph, pl)


def test_cloudy_patches_are_whitened_and_hatched(tmp_path: Path) -> None:
    """Cloudy patches (issue 18 item 5) are drawn whiter than the same patches without a cloud state, hatched
    (one contour set, not a shape per patch); the legend counts them and says what was done, the bill too,
    and the panel still sits beside the map."""
    scene = make_scene(tmp_path / "s.tif")
    t, sel, orders, summary = halves_plan()
    band = (t.row % 10 < 3) & ((t.col + 0.5) * t.patch_m > X + 1600)  # bands of rows on the east (low) half
    cloud = np.where(band, 1, 0).astype(np.uint8)
    cloudy_t = dataclasses.replace(t, cloud=cloud)
    s2 = {
        **summary,
        "clouds": {"patches_cloudy": int(band.sum()), "cloudy_km2": 1.0, "handling": "skip", "patches_filled": 0},
    }
    idx = inner(t, np.nonzero(band)[0])
    clear = figure(scene, t, sel, orders, [AOI], t.crs, summary, max_px=128)
    fig = figure(scene, cloudy_t, sel, orders, [AOI], t.crs, s2, max_px=128)
    before = pixels(clear)[at(clear, axes(clear, "map"), centres(t, idx))].mean(axis=0)
    after = pixels(fig)[at(fig, axes(fig, "map"), centres(t, idx))].mean(axis=0)
    assert (after - before).min() > 30 and after.mean() > 130, (before, after)  # whiter in every channel
    ax = axes(fig, "map")
    assert [c.hatches for c in ax.collections if getattr(c, "hatches", None)] == [["////"]]  # one hatched contour set
    labels = [x.get_text() for x in axes(fig, "panel").get_legend().get_texts()]
    assert f"cloudy ({int(band.sum()):,} patches), skipped" in labels, labels
    assert "clouds" in "\n".join(x.get_text() for x in axes(fig, "panel").texts)
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    leg, text = axes(fig, "panel").get_legend().get_window_extent(r), axes(fig, "panel").texts[0].get_window_extent(r)
    assert not leg.overlaps(text) and not ax.get_window_extent(r).overlaps(leg)
