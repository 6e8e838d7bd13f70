"""Orders: selected patches consolidated into polygons a vendor sells, billed as the vendor bills.

Algorithm, per AOI feature, on the PatchTable's patch grid (cells of ``patch_m`` metres, planning CRS):

1. Rasterise the feature's selected patches into a boolean mask indexed by (row - r0, col - c0); the
   domain D is the feature (holes filled) rasterised all-touched. Holes in the mask are filled
   (vendors sell polygons without holes).
2. Minimum width, k = ceil(min_width_m / patch_m) cells: cells not covered by any k x k square inside
   the mask are narrow; the narrow cells of each k x k block are covered by one k x k square inside
   D, centred when possible, shifted inwards near the AOI edge (exact square morphology with
   integral images, no per-patch loop).
3. Consolidation (vendors that bill a minimum per single polygon): closings of the mask with squares
   of 2, 3, 5, 9, ... cells (restricted to D, widened again) are priced as the sum over components of
   max(area, minimum); the cheapest wins (ties: the smallest closing).
4. Polygonise (rasterio.features.shapes, 4-connected), keep exteriors, clip to the feature (holes
   filled), drop pieces that serve no selected patch; one order per polygon, or one MultiPolygon per
   feature when the vendor allows it.
5. Vertex limit: simplify(buffer(g, t), t) clipped to the feature, t doubling from patch_m / 4, until
   it has at most ``max_vertices`` and covers g; then the convex hull, the minimum rotated rectangle
   or the bounding box clipped to the feature; then the same shapes unclipped (they may leave the
   AOI: ``inside_aoi`` False, logged), last the minimum rotated rectangle (4 vertices).
6. If the feature's orders cost no less than ordering the whole feature (:func:`whole_aoi_orders`),
   or every patch of the feature is selected, the feature is ordered whole (``whole_aoi`` True).

Guarantee: each order is a valid, hole-free Polygon (MultiPolygon only for vendors that allow it)
with at most ``max_vertices`` vertices; together the orders cover every selected patch's part inside
its AOI feature; they lie inside the feature (holes filled) unless ``inside_aoi`` is False; and a
feature never costs more than ordering it whole, so plan <= baseline. Areas are planar in the
planning CRS (UTM: within ~0.1% of the true area near the central meridian), km^2; money USD.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import rasterio.features
import shapely
from affine import Affine
from pyproj import CRS
from shapely.geometry import Polygon, shape
from shapely.geometry.base import BaseGeometry

from zoomplan.errors import GeometryError, InputError
from zoomplan.plan.morphology import closing, fill_mask, shapes, widen
from zoomplan.plan.pricing import VendorProfile, billed_km2
from zoomplan.plan.types import PatchTable

log = logging.getLogger(__name__)

_WIDTH_TOL = 0.02  # share of an order's area allowed to be narrower than the vendor's minimum width


@dataclass(frozen=True)
class Order:
    """One polygon (or MultiPolygon, where the vendor allows it) bought from one vendor.

    ``geometry`` is in the planning CRS (metres); areas km^2; money USD. ``n_patches`` and
    ``mean_probability`` describe the table patches the order serves (NaN without patches).
    """

    order_id: str
    geometry: BaseGeometry
    area_km2: float
    billed_km2: float
    cost_usd: float
    n_patches: int
    mean_probability: float
    aoi_index: int
    dominant_classes: tuple[str, ...]
    vendor: str
    product: str
    price_per_km2: float
    whole_aoi: bool = False  # the whole AOI feature is bought (threshold 0, or cheaper than a partial order)
    width_ok: bool = True  # at least min_width_m wide everywhere (False: the AOI is narrower than the rule)
    inside_aoi: bool = True  # False only when the vertex limit forced a shape beyond the AOI


# ---------------------------------------------------------------- geometry helpers (planar, metres)


def _check_metres(crs: CRS) -> None:
    """Orders are built and measured in a projected CRS with metre units (the planning CRS, UTM)."""
    if not crs.is_projected:
        raise GeometryError(f"orders need a projected CRS in metres; found {crs.name!r}; reproject the AOI and table to UTM")
    f = crs.axis_info[0].unit_conversion_factor if crs.axis_info else 1.0
    if abs(f - 1.0) > 1e-9:
        raise GeometryError(f"orders need a CRS in metres; {crs.name!r} uses {crs.axis_info[0].unit_name}; reproject to UTM")


def _polygons(g: BaseGeometry | None, min_area: float = 0.0) -> list[Polygon]:
    """The polygonal parts of any geometry with area > ``min_area``."""
    if g is None or g.is_empty:
        return []
    if isinstance(g, Polygon):
        return [g] if g.area > min_area else []
    if not hasattr(g, "geoms"):  # points and lines
        return []
    out: list[Polygon] = []
    for p in g.geoms:
        out.extend(_polygons(p, min_area))
    return out


def fill_holes(g: BaseGeometry) -> BaseGeometry:
    """``g`` without interior rings (Polygon or MultiPolygon; empty Polygon if nothing is left)."""
    parts = [Polygon(p.exterior) for p in _polygons(g)]
    if not parts:
        return Polygon()
    return parts[0] if len(parts) == 1 else shapely.union_all(parts)


def n_vertices(g: BaseGeometry) -> int:
    """Vertices of a (Multi)Polygon, closing points not counted."""
    return sum(len(p.exterior.coords) - 1 + sum(len(r.coords) - 1 for r in p.interiors) for p in _polygons(g))


def _covers(big: BaseGeometry, small: BaseGeometry) -> bool:
    return small.difference(big).area <= 1e-9 * max(small.area, 1.0)


def is_wide(g: BaseGeometry, width: float, tol: float = _WIDTH_TOL) -> bool:
    """True if at most ``tol`` of ``g``'s area is narrower than ``width`` metres (mitre opening)."""
    if width <= 0 or g.is_empty:
        return True
    r = 0.5 * width * (1 - 1e-3)  # GEOS collapses an erosion to a sliver thinner than ~1e-3 of it
    opened = g.buffer(-r, join_style="mitre").buffer(r, join_style="mitre")
    return g.difference(opened).area <= tol * g.area


def _fit_vertices(g: BaseGeometry, within: BaseGeometry, limit: int, t0: float, single: bool) -> tuple[BaseGeometry, bool]:
    """A hole-free superset of ``g`` with at most ``limit`` vertices; (geometry, inside ``within``)."""
    g = shapely.simplify(g, 0.0)
    if n_vertices(g) <= limit:
        return g, True
    x0, y0, x1, y1 = g.bounds
    diag = math.hypot(x1 - x0, y1 - y0)
    ts = [t0 * 2.0**i for i in range(64) if t0 * 2.0**i <= diag] or [t0]

    def ok(s: BaseGeometry) -> bool:
        return s.is_valid and not s.is_empty and n_vertices(s) <= limit and (not single or isinstance(s, Polygon)) and _covers(s, g)

    for clip in (True, False):
        for t in ts:
            s = fill_holes(shapely.simplify(g.buffer(t, join_style="mitre"), t))
            if clip:
                s = fill_holes(shapely.union_all(_polygons(s.intersection(within))))
            if ok(s):
                if not clip:
                    log.warning("an order needed %d vertices (limit %d): simplified with %.1f m beyond the AOI", n_vertices(g), limit, t)
                return s, clip
        if clip:
            for box in (g.convex_hull, g.minimum_rotated_rectangle, g.envelope):
                s = fill_holes(shapely.union_all(_polygons(box.intersection(within))))
                if ok(s):
                    return s, True
    log.warning("an order needed %d vertices (limit %d): ordered as its minimum rotated rectangle, beyond the AOI", n_vertices(g), limit)
    return g.minimum_rotated_rectangle, False


# ---------------------------------------------------------------- mask morphology (cells, k x k squares)


def _rep_points(boxes: np.ndarray, aoi: BaseGeometry) -> np.ndarray:
    """A point inside each box's part inside ``aoi`` (None where that part has no area)."""
    pts = shapely.centroid(boxes)
    shapely.prepare(aoi)
    edge = ~shapely.contains_properly(aoi, boxes)
    if edge.any():
        inter = shapely.intersection(boxes[edge], aoi)
        p = shapely.point_on_surface(inter)
        p[shapely.area(inter) <= 0] = None
        pts[edge] = p
    return pts


def _assign(points: np.ndarray, geoms: Sequence[BaseGeometry]) -> np.ndarray:
    """Index of the first geometry holding each point, -1 for none."""
    out = np.full(len(points), -1, np.int64)
    if not len(geoms) or not len(points):
        return out
    have = ~shapely.is_missing(points)
    idx = np.nonzero(have)[0]
    src, dst = shapely.STRtree(list(geoms)).query(points[idx], predicate="intersects")
    order = np.lexsort((dst, src))
    src, dst = src[order], dst[order]
    first = np.unique(src, return_index=True)[1]
    out[idx[src[first]]] = dst[first]
    return out


def _classes(table: PatchTable, idx: np.ndarray, top: int = 3) -> tuple[str, ...]:
    counts = Counter(table.tile_class[idx].tolist())
    names = table.class_names
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    return tuple(names[c] if 0 <= c < len(names) else str(c) for c, _ in ranked)


def _make_orders(
    geoms: list[BaseGeometry], members: list[np.ndarray], inside: list[bool], aoi_index: int, vendor: VendorProfile,
    table: PatchTable | None, whole: bool,
) -> list[Order]:
    out: list[Order] = []
    seen: Counter[str] = Counter()
    for g, m, ins in zip(geoms, members, inside):
        area = g.area * 1e-6
        billed = billed_km2(area, vendor)
        if table is not None and m.size:
            r = int(table.row[m].min())
            where = f"r{r}_c{int(table.col[m][table.row[m] == r].min())}"
            mean_p = float(np.nanmean(table.prob[m].astype(np.float64))) if np.isfinite(table.prob[m]).any() else float("nan")
            classes = _classes(table, m)
        else:
            where, mean_p, classes = f"x{int(round(g.bounds[0]))}_y{int(round(g.bounds[3]))}", float("nan"), ()
        oid = f"a{aoi_index}_{'aoi_' if whole else ''}{where}"
        seen[oid] += 1
        if seen[oid] > 1:
            oid = f"{oid}_{seen[oid]}"
        out.append(Order(
            order_id=oid, geometry=g, area_km2=area, billed_km2=billed, cost_usd=billed * vendor.price_per_km2,
            n_patches=int(m.size), mean_probability=mean_p, aoi_index=aoi_index, dominant_classes=classes,
            vendor=vendor.name, product=vendor.product, price_per_km2=vendor.price_per_km2, whole_aoi=whole,
            width_ok=is_wide(g, vendor.min_width_m), inside_aoi=ins,
        ))
    return out


def _group(pieces: list[Polygon], members: list[np.ndarray], vendor: VendorProfile) -> tuple[list[BaseGeometry], list[np.ndarray]]:
    if vendor.allows_multipolygon and len(pieces) > 1:
        return [shapely.union_all(pieces)], [np.concatenate(members)]
    return list(pieces), members


def _finish(pieces: list[Polygon], members: list[np.ndarray], within: BaseGeometry, aoi_index: int, vendor: VendorProfile,
            table: PatchTable | None, whole: bool, t0: float) -> list[Order]:
    geoms, members = _group(pieces, members, vendor)
    fitted = [_fit_vertices(g, within, vendor.max_vertices, t0, not vendor.allows_multipolygon) for g in geoms]
    return _make_orders([f[0] for f in fitted], members, [f[1] for f in fitted], aoi_index, vendor, table, whole)


def _check_aoi(g: BaseGeometry, i: int) -> BaseGeometry:
    if g is None or g.is_empty or not _polygons(g):
        raise GeometryError(f"AOI feature {i} is empty or not polygonal; give Polygon or MultiPolygon features")
    if not g.is_valid:
        raise GeometryError(f"AOI feature {i} is not a valid polygon ({shapely.is_valid_reason(g)}); repair it (zoomplan.geo.aoi reads and repairs AOIs)")
    return fill_holes(g)


def whole_aoi_orders(aoi_geom: BaseGeometry, aoi_index: int, vendor: VendorProfile, crs: CRS, *,
                     table: PatchTable | None = None, patches: np.ndarray | None = None) -> list[Order]:
    """Orders that buy AOI feature ``aoi_index`` whole (the baseline): holes filled, vertex limit,
    one order per polygon unless the vendor allows MultiPolygons. ``aoi_geom`` in the projected
    ``crs`` (metres). ``table`` and ``patches`` (indices of the feature's patches) only fill in
    ``n_patches``, ``mean_probability``, classes and ids; the geometry and bill never depend on them.
    """
    _check_metres(crs)
    filled = _check_aoi(aoi_geom, aoi_index)
    pieces = sorted(_polygons(filled), key=lambda p: (-p.bounds[3], p.bounds[0]))
    if table is not None and patches is not None and len(pieces) == 1:
        members = [np.asarray(patches)]
    elif table is not None and patches is not None and len(patches):
        b = table.bounds()[patches]
        where = _assign(_rep_points(shapely.box(b[:, 0], b[:, 1], b[:, 2], b[:, 3]), filled), pieces)
        members = [patches[where == j] for j in range(len(pieces))]
    else:
        members = [np.zeros(0, np.int64) for _ in pieces]
    x0, y0, x1, y1 = filled.bounds
    return _finish(pieces, members, filled, aoi_index, vendor, table, True, max(1e-5 * math.hypot(x1 - x0, y1 - y0), 0.01))


def _cost(a: np.ndarray, vendor: VendorProfile, cell_km2: float) -> float:
    return sum(billed_km2(p.area * cell_km2, vendor) for p in shapes(a, Affine.identity())) * vendor.price_per_km2


def _feature_orders(table: PatchTable, sel: np.ndarray, filled: BaseGeometry, aoi_index: int, vendor: VendorProfile) -> list[Order]:
    pm = float(table.patch_m)
    kw = math.ceil(vendor.min_width_m / pm - 1e-9) if vendor.min_width_m > 0 else 0
    consolidate = vendor.min_order_km2 > 0 and not vendor.allows_multipolygon
    side = math.ceil(math.sqrt(vendor.min_order_km2) * 1e3 / pm) if consolidate else 0
    ks = [2**j + 1 for j in range(0, 12) if 2**j + 1 <= 2 * side + 1]
    margin = kw + (ks[-1] if ks else 0) + 1
    rows, cols = table.row[sel], table.col[sel]
    x0, y0, x1, y1 = filled.bounds
    r0 = max(int(rows.min()) - margin, math.floor(-y1 / pm))
    r1 = min(int(rows.max()) + margin, math.ceil(-y0 / pm) - 1)
    c0 = max(int(cols.min()) - margin, math.floor(x0 / pm))
    c1 = min(int(cols.max()) + margin, math.ceil(x1 / pm) - 1)
    r0, c0 = min(r0, int(rows.min())), min(c0, int(cols.min()))
    r1, c1 = max(r1, int(rows.max())), max(c1, int(cols.max()))
    shape_ = (r1 - r0 + 1, c1 - c0 + 1)
    transform = Affine(pm, 0.0, c0 * pm, 0.0, -pm, -r0 * pm)
    a = np.zeros(shape_, bool)
    a[rows - r0, cols - c0] = True
    d = rasterio.features.rasterize([filled], out_shape=shape_, transform=transform, all_touched=True, dtype=np.uint8).astype(bool) | a
    a = widen(fill_mask(a), d, kw)
    best, best_cost = a, _cost(a, vendor, pm * pm * 1e-6) if ks else 0.0
    for k in ks:
        c = widen(fill_mask(closing(a, k) & d), d, kw)
        cost = _cost(c, vendor, pm * pm * 1e-6)
        if cost < best_cost - 1e-9:
            best, best_cost = c, cost
    comps = shapes(best, transform)  # every selected cell lies in exactly one component
    labels = rasterio.features.rasterize([(c, j + 1) for j, c in enumerate(comps)], out_shape=shape_, transform=transform, dtype=np.int32)
    lab = labels[rows - r0, cols - c0] - 1
    found: list[tuple[Polygon, np.ndarray]] = []
    for j, comp in enumerate(comps):
        parts = [Polygon(q.exterior) for q in _polygons(comp.intersection(filled), 1e-6 * pm * pm)]
        m = sel[lab == j]
        if len(parts) == 1:
            found.append((parts[0], m))
        elif parts:  # the AOI's outline cut the component: assign its patches piece by piece
            b = table.bounds()[m]
            where = _assign(_rep_points(shapely.box(b[:, 0], b[:, 1], b[:, 2], b[:, 3]), filled), parts)
            found.extend((q, m[where == k]) for k, q in enumerate(parts))
    found = sorted((f for f in found if f[1].size), key=lambda f: (-f[0].bounds[3], f[0].bounds[0]))
    return _finish([f[0] for f in found], [f[1] for f in found], filled, aoi_index, vendor, table, False, pm / 4)


def build_orders(table: PatchTable, selected: np.ndarray, aoi_geoms: Sequence[BaseGeometry], vendor: VendorProfile) -> list[Order]:
    """Consolidate the selected patches into orderable polygons under ``vendor``'s rules.

    ``selected`` is a boolean array of ``len(table)``; ``aoi_geoms`` are the AOI features in
    ``table.crs`` (projected, metres), indexed by ``table.aoi_index``. Returns orders by AOI feature,
    north to south; ids are stable, ``a<feature>_r<row>_c<col>`` of the north-west-most patch an
    order serves (``a<feature>_aoi_...`` for a feature bought whole). See the module
    docstring for the algorithm and its guarantee; :func:`zoomplan.plan.pricing.bill` prices the result.
    """
    _check_metres(table.crs)
    selected = np.asarray(selected)
    if selected.shape != (len(table),) or selected.dtype != bool:
        raise InputError(f"selection must be a boolean array of length {len(table)}; found {selected.dtype} {selected.shape}; pass select_patches(...)'s result")
    if len(table) and (table.aoi_index.min() < 0 or table.aoi_index.max() >= len(aoi_geoms)):
        raise InputError(f"patch table refers to AOI features 0..{int(table.aoi_index.max())} but {len(aoi_geoms)} were given; pass the AOI the table was built from")
    orders: list[Order] = []
    for i, g in enumerate(aoi_geoms):
        feat = np.nonzero(table.aoi_index == i)[0]
        sel = feat[selected[feat]]
        if not sel.size:
            continue
        if sel.size < feat.size:
            part = _feature_orders(table, sel, fill_holes(_check_aoi(g, i)), i, vendor)
            whole_cost = sum(o.cost_usd for o in whole_aoi_orders(g, i, vendor, table.crs))
            if sum(o.cost_usd for o in part) < whole_cost:
                orders.extend(part)
                continue
            log.info("AOI feature %d: consolidated orders cost no less than the whole feature; ordering it whole", i)
        orders.extend(whole_aoi_orders(g, i, vendor, table.crs, table=table, patches=feat))
    return orders


def patch_mask_polygons(table: PatchTable, selected: np.ndarray) -> list[Polygon]:
    """The selected patches merged into polygons (4-connected, holes kept), in ``table.crs`` metres."""
    sel = np.nonzero(np.asarray(selected, bool))[0]
    if not sel.size:
        return []
    pm = float(table.patch_m)
    rows, cols = table.row[sel], table.col[sel]
    r0, c0 = int(rows.min()), int(cols.min())
    a = np.zeros((int(rows.max()) - r0 + 1, int(cols.max()) - c0 + 1), np.uint8)
    a[rows - r0, cols - c0] = 1
    transform = Affine(pm, 0.0, c0 * pm, 0.0, -pm, -r0 * pm)
    return [shape(g) for g, _ in rasterio.features.shapes(a, mask=a.astype(bool), connectivity=4, transform=transform)]
