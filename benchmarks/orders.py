"""Order consolidation against the plain ways to order the same patches, per vendor profile.

For each selection and each profile of configs/vendors.toml, the billed cost (USD) of

  (a) one order per patch: each selected patch's part inside the AOI alone, max(area, minimum) x price;
  (b) the union of the patches: its polygons (holes filled) as orders, grown to the minimum width,
      clipped to the AOI, simplified outwards over the vertex limit (MultiPolygon orders where accepted);
  (c) the bounding box of the selection, per AOI feature, clipped to it, made orderable the same way;
  (d) zoomplan's orders (zoomplan.plan.orders.orders.plan_orders);

with d / min(a, b, c), the selected patches covered and dropped, and what a buyer checks of (d) (issue 17):
the area billed (km^2, ellipsoidal, minimums included), the area of the orders' union against the sum of
their areas (overlap: area billed twice, m^2; 0 when orders are disjoint) and the crumbs dropped (pieces of
selected patches under 10% of a patch inside the AOI, ordered for no one). It checks that (d) never costs more
than the best of (a)-(c), and that no budget is exceeded, and exits 1 if either failed. Then budgets:
what the plain best-first prefix buys against zoomplan's value-per-USD rule, and what that drops.

Selections: (i) the shipped model's choice (threshold 0.5) on the real Sentinel-2 scene of
../shared/data/sentinel2 (the whole scene; skipped with a message if absent) and on the bundled
Accomac example (AOI and crop of the same scene);
(ii) generated, seeded: scattered patches, clustered ones, and a coastline-like band, on a 6 km AOI
in UTM 18N with 20 m patches; clusters on a curved AOI (a buffered hull), on an AOI with two holes, and
on 12 AOI features of which several overlap.

Usage: python benchmarks/orders.py [--seed N] [--no-real]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import shapely
from pyproj import CRS

from zoomplan.plan.orders.orders import orders_with_references, plan_orders
from zoomplan.plan.orders.pricing import bill, load_vendors
from zoomplan.plan.selection import select as select_mod
from zoomplan.plan.types import PatchTable

ROOT = Path(__file__).resolve().parents[1]
SCENE = ROOT.parent / "shared" / "data" / "sentinel2" / "s2_l1c_18SVG_20160112_rgbn_10m.tif"
EXAMPLE_AOI = ROOT / "examples" / "aoi_accomac.geojson"
EXAMPLE_SCENE = ROOT / "examples" / "s2_l1c_18SVG_20160112_accomac_crop.tif"


def real_selections(whole_scene: bool) -> list[tuple[str, PatchTable, list, np.ndarray]]:
    """The shipped model's plan (threshold 0.5) of the whole real scene (if asked) and of the bundled
    Accomac example (AOI and crop of the same scene)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from plan_real_scene import scene_aoi

    from zoomplan.plan.pipeline import plan

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        runs = [("real: whole scene", scene_aoi(SCENE, Path(tmp) / "aoi.geojson"), SCENE)] if whole_scene else []
        for name, aoi, scene in runs + [("real: Accomac AOI", EXAMPLE_AOI, EXAMPLE_SCENE)]:
            t = time.perf_counter()
            r = plan(aoi, [scene], device="cpu", threshold=1.01)  # inference only: nothing selected, no orders built
            sel = r.table.prob > 0.5
            print(
                f"# {name}: {len(r.table):,} patches, {sel.sum():,} selected (p > 0.5), inference "
                f"{time.perf_counter() - t:.0f} s",
                flush=True,
            )
            out.append((name, r.table, list(r.aoi.geoms), sel))
    return out


def _table(geoms: list, pm: float = 20.0) -> PatchTable:
    """Every 20 m patch (UTM 18N) whose part inside one of ``geoms`` is over 0.1% of it, zero probability."""
    x0, y0, x1, y1 = shapely.union_all(geoms).bounds
    r, c = np.meshgrid(
        np.arange(np.floor(-y1 / pm), np.ceil(-y0 / pm)), np.arange(np.floor(x0 / pm), np.ceil(x1 / pm)), indexing="ij"
    )
    r, c = r.ravel().astype(np.int64), c.ravel().astype(np.int64)
    boxes = shapely.box(c * pm, -(r + 1) * pm, (c + 1) * pm, -r * pm)
    inside = np.stack([shapely.area(shapely.intersection(boxes, g)) for g in geoms])  # features x patches, m^2
    keep = inside.max(axis=0) > 1e-3 * pm * pm
    n = int(keep.sum())
    return PatchTable(
        CRS.from_epsg(32618),
        pm,
        (4, 4),
        r[keep],
        c[keep],
        np.zeros(n, np.float32),
        np.zeros(n, np.int32),
        np.ones(n, np.float32),
        np.argmax(inside[:, keep], axis=0).astype(np.int32),
        ("x",),
    )


def _blobs(t: PatchTable, rng: np.random.Generator, k: int, box: tuple[float, float, float, float]) -> np.ndarray:
    """A probability field of ``k`` Gaussian clusters (80-300 m) placed in ``box`` (UTM metres)."""
    x, y = (t.col + 0.5) * t.patch_m, -(t.row + 0.5) * t.patch_m
    out = np.zeros(len(t))
    for _ in range(k):
        cx, cy, s = rng.uniform(box[0], box[2]), rng.uniform(box[1], box[3]), rng.uniform(80, 300)
        out = np.maximum(out, np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * s * s)))
    return out


def generated_selections(seed: int) -> list[tuple[str, PatchTable, list, np.ndarray]]:
    """Scattered, clustered and coastline-like selections on a 6 km AOI (UTM 18N, 20 m patches), seeded;
    then clusters on a curved AOI, an AOI with holes and 12 partly overlapping AOI features."""
    pm, x0, y0, size = 20.0, 400_000.0, 4_200_000.0, 6000.0
    aoi = shapely.Polygon([(x0, y0), (x0 + size, y0 + 400), (x0 + size - 300, y0 + size), (x0 + 200, y0 + size - 500)])
    t = _table([aoi], pm)
    n = len(t)
    rng = np.random.default_rng(seed)
    x, y = (t.col + 0.5) * pm - x0, -(t.row + 0.5) * pm - y0
    scattered = rng.random(n) < 0.03
    blobs = _blobs(t, rng, 10, (x0, y0, x0 + size, y0 + size))
    coast_y = 0.5 * size + 800 * np.sin(x / 900 + rng.uniform(0, 6)) + 250 * np.sin(x / 230)
    band = np.abs(y - coast_y) < 40 + 20 * rng.random(n)
    out = []
    for name, prob in (
        ("generated: scattered 3%", np.where(scattered, rng.uniform(0.5, 1, n), rng.uniform(0, 0.5, n))),
        ("generated: 10 clusters", blobs),
        ("generated: coastline band", np.where(band, rng.uniform(0.6, 1, n), 0.0)),
    ):
        tp = dataclasses.replace(t, prob=prob.astype(np.float32))
        out.append((name, tp, [aoi], tp.prob > 0.5))
    pts = shapely.multipoints(
        np.column_stack([rng.uniform(x0 + 1000, x0 + 4000, 7), rng.uniform(y0 + 1000, y0 + 4000, 7)])
    )
    curved = shapely.convex_hull(pts).buffer(700, quad_segs=16)  # a curved outline that cuts patches anywhere
    holed = shapely.Polygon(
        aoi.exterior.coords,
        [
            shapely.box(x0 + 1500, y0 + 1500, x0 + 2500, y0 + 2500).exterior.coords,
            shapely.Point(x0 + 4200, y0 + 3800).buffer(600, quad_segs=16).exterior.coords,
        ],
    )
    feats = [
        shapely.Point(rng.uniform(x0 + 800, x0 + size - 800), rng.uniform(y0 + 800, y0 + size - 800)).buffer(
            rng.uniform(500, 900), quad_segs=16
        )
        for _ in range(12)
    ]
    for name, geoms in (
        ("generated: curved AOI", [curved]),
        ("generated: AOI with 2 holes", [holed]),
        ("generated: 12 features", feats),
    ):
        tg = _table(geoms, pm)
        b = shapely.union_all(geoms).bounds
        tg = dataclasses.replace(tg, prob=_blobs(tg, rng, 10, b).astype(np.float32))
        out.append((name, tg, geoms, tg.prob > 0.5))
    return out


def covered(t: PatchTable, sel: np.ndarray, orders: list) -> int:
    """Selected patches served by an order (a feature bought whole serves all its patches)."""
    served = np.zeros(len(t), bool)
    for o in orders:
        served[o.patches] = True
    return int((served & sel).sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-real", action="store_true", help="only the generated selections")
    args = ap.parse_args()
    start = time.perf_counter()
    vendors = load_vendors()
    selections = []
    if args.no_real:
        print("# real scene skipped (--no-real)")
    elif not SCENE.is_file():
        print(f"# whole real scene skipped: {SCENE} is absent (the project's shared data beside the checkout)")
    if not args.no_real:
        selections += real_selections(SCENE.is_file())
    selections += generated_selections(args.seed)
    head = (
        f"{'selection':<27} {'vendor':<13} {'(a) per patch':>14} {'(b) union':>11} {'(c) bbox':>10} "
        f"{'(d) zoomplan':>13} "
        f"{'d/min':>6} {'covered':>9} {'dropped':>7} {'billed km2':>11} {'overlap m2':>10} {'crumbs':>6}"
    )
    print(head)
    print("-" * len(head))
    ok = True
    for name, t, geoms, sel in selections:
        for v in vendors.values():
            p = plan_orders(t, sel, geoms, v)
            orders, refs = p.orders, p.references
            d = bill(orders, v).cost_usd
            best = min(refs["per_patch"], refs["union"], refs["bbox"])
            polys = [o.geometry for o in orders]
            overlap = sum(g.area for g in polys) - (shapely.union_all(polys).area if polys else 0.0)  # m^2, planar UTM
            good = d <= best * (1 + 1e-9) + 1e-9 and overlap <= 1e-6 * max(sum(g.area for g in polys), 1.0)
            ok &= good
            n = covered(t, sel, orders)
            print(
                f"{name:<27} {v.name:<13} {refs['per_patch']:>14,.0f} {refs['union']:>11,.0f} {refs['bbox']:>10,.0f} "
                f"{d:>13,.0f} "
                f"{d / best if best else 1.0:>6.3f} {n:>9,} {int(sel.sum()) - n:>7} "
                f"{sum(o.billed_km2 for o in orders):>11,.3f} "
                f"{max(overlap, 0.0):>10,.1f} "
                f"{p.rules['crumbs']['dropped']:>6}{'' if good else '  <-- ABOVE min(a,b,c) or overlapping'}",
                flush=True,
            )
    print(f"(d) <= min(a, b, c) and no area billed twice, for every selection and vendor: {'yes' if ok else 'NO'}")

    v = vendors["clip-30cm"]
    budgets = [
        (name, t, geoms, b)
        for name, t, geoms, _ in selections
        if name == "real: Accomac AOI"
        for b in (10.0, 20.0, 40.0, 80.0)
    ]
    name, t, geoms, _ = next(
        x for x in selections if x[0] == "generated: 10 clusters"
    )  # the clusters, with isolated patches of probability 0.97 added
    rich = dataclasses.replace(
        t,
        prob=np.maximum(t.prob, np.where(np.random.default_rng(args.seed + 1).random(len(t)) < 0.002, 0.97, 0)).astype(
            np.float32
        ),
    )
    budgets.append(
        (
            name + " + isolated 0.97",
            rich,
            geoms,
            0.3 * bill(orders_with_references(rich, rich.prob > 0.5, geoms, v)[0], v).cost_usd,
        )
    )
    print(
        f"\nbudgets ({v.name}, every patch a candidate): the plain best-first prefix against zoomplan's value per USD"
    )
    head = (
        f"{'selection':<40} {'budget':>8} {'prefix: patches':>16} {'value':>8} {'zoomplan: patches':>18} "
        f"{'value':>8} {'USD':>8} {'dropped':>8}"
    )
    print(head)
    print("-" * len(head))
    example = ""
    for name, t, geoms, budget in budgets:
        order = select_mod.rank(t)
        k0 = select_mod._budget_prefix(t, order, geoms, v, budget)  # what the plain rule buys
        r = select_mod.select(t, geoms, v, threshold=0.0, budget_usd=budget)
        rep = r.report() or {}
        cost = bill(orders_with_references(t, r.selected, geoms, v)[0], v).cost_usd
        ok &= cost <= budget
        print(
            f"{name:<40} {budget:>8,.2f} {k0:>16,} {t.prob[order[:k0]].sum():>8,.1f} {int(r.selected.sum()):>18,} "
            f"{t.prob[r.selected].sum():>8,.1f} {cost:>8,.2f} {rep.get('n_patches', 0):>8,}"
        )
        example = example or next(
            (f"{o['order_id']}: {o['reason']}" for o in rep.get("orders", []) if "minimum charge" in o["reason"]), ""
        )
    if example:
        print(f"e.g. {example}")
    print(f"total {time.perf_counter() - start:.0f} s")
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
