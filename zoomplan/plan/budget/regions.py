"""Regions for a budget: features grouped by an attribute, made disjoint, cut so no region is bought twice.

A budget (:mod:`zoomplan.plan.budget.budget`) plans many regions at once (districts, farm blocks: any polygon
layer) and bills each one separately. Three pure steps, in the planning CRS (projected, metres):

1. :func:`group_regions`: one region per feature, or, with ``by``, one per value of that attribute
   (features sharing a value are merged), in order of first appearance;
2. :func:`disjoint_regions`: **overlap rule**: an area shared by several regions belongs to the first
   of them in file order (the order GDAL reads the features); each later region keeps only its
   remaining part, so every km^2 (and every HR patch) is planned and billed once and the per-region
   figures add up to the whole;
3. holes that hold another region's area (a region enclosing an earlier one, an enclave) are cut
   open: vendors sell polygons without holes and an order fills them, which would buy the enclosed
   region again; such a region is planned as several hole-free pieces instead (a horizontal cut
   through each such hole). Holes over no region (a lake left out of a farm) are kept, and filled
   when ordered, as ``zoomplan plan`` does.

Parts smaller than :data:`SLIVER_M2` (numerical noise where borders were digitised twice) are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import shapely
from shapely.geometry import LineString, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.ops import split

from zoomplan.errors import ConfigError
from zoomplan.geo.aoi import AOI
from zoomplan.plan.orders.orders import fill_holes

SLIVER_M2 = 1.0
"""Polygon parts of at most this area (m^2) left by differencing regions are dropped as noise."""


@dataclass(frozen=True)
class Region:
    """One budget region: ``key`` (its ``--by`` value or feature id), ``name`` (a name field, if any),
    ``geometry`` (planning CRS, metres) and how many input features it merges."""

    key: str
    name: str | None
    geometry: BaseGeometry
    n_features: int = 1


@dataclass(frozen=True)
class DisjointRegion:
    """A region after the overlap rule: ``part`` is what it is billed for (possibly empty), ``pieces``
    the hole-free-where-needed geometries it is planned as (areas m^2, planning CRS).

    ``shared``: ``(other region index, shared area m^2)`` for every region it overlaps;
    ``cut``: True when holes holding other regions were cut open.
    """

    region: Region
    part: BaseGeometry
    pieces: tuple[BaseGeometry, ...]
    shared: tuple[tuple[int, float], ...]
    overlap_m2: float
    cut: bool


def polygon_parts(g: BaseGeometry | None, min_area: float = SLIVER_M2) -> list[Polygon]:
    """The Polygons of any geometry (collections flattened) with area above ``min_area`` m^2."""
    if g is None or g.is_empty:
        return []
    out: list[Polygon] = []
    for p in shapely.get_parts(g):
        if isinstance(p, Polygon):
            if p.area > min_area:
                out.append(p)
        elif p.geom_type in ("MultiPolygon", "GeometryCollection"):
            out.extend(polygon_parts(p, min_area))
    return out


def _merge(polys: Sequence[Polygon]) -> BaseGeometry:
    if not polys:
        return Polygon()
    return polys[0] if len(polys) == 1 else shapely.union_all(list(polys))


def group_regions(aoi: AOI, by: str | None = None) -> list[Region]:
    """Regions of an AOI read from a regions file: one per feature (key: the feature id, see
    :func:`zoomplan.geo.aoi.read_aoi`), or one per value of attribute ``by``, merging the features
    that share it. Raises :class:`~zoomplan.errors.ConfigError` when ``by`` is not a field of the
    file (listing those it has) or a feature has no value for it.
    """
    if by is None:
        return [Region(key=k, name=n, geometry=g) for k, g, n in zip(aoi.ids, aoi.geoms, aoi.names)]
    fields: dict[str, None] = {}
    for props in aoi.properties:
        fields.update(dict.fromkeys(props))
    if by not in fields:
        have = ", ".join(fields) or "(none)"
        raise ConfigError(
            f"--by {by!r}: regions file {aoi.source} has no such field; its fields are: {have}; pass one of them"
        )
    groups: dict[str, list[int]] = {}
    for i, props in enumerate(aoi.properties):
        v = props.get(by)
        if v is None or str(v).strip() == "":
            raise ConfigError(
                f"--by {by!r}: feature {aoi.ids[i]!r} of {aoi.source} has no value in that field; fill it in or "
                f"choose another field"
            )
        groups.setdefault(str(v), []).append(i)
    out = []
    for key, idx in groups.items():
        geom = (
            aoi.geoms[idx[0]] if len(idx) == 1 else shapely.make_valid(shapely.union_all([aoi.geoms[i] for i in idx]))
        )
        name = next((aoi.names[i] for i in idx if aoi.names[i]), None)
        out.append(Region(key=key, name=name, geometry=geom, n_features=len(idx)))
    return out


def _open_holes(polys: Sequence[Polygon], others: BaseGeometry) -> tuple[list[Polygon], bool]:
    """Hole-free pieces wherever a hole of ``polys`` holds area of ``others``; (pieces, any cut)."""
    out: list[Polygon] = []
    stack = list(polys)
    cut = False
    while stack:
        p = stack.pop()
        bad = [r for r in p.interiors if Polygon(r).intersection(others).area > SLIVER_M2]
        if not bad:
            out.append(p)
            continue
        cut = True
        y = Polygon(bad[0]).representative_point().y
        x0, _, x1, _ = p.bounds
        halves = split(p, LineString([(x0 - 1.0, y), (x1 + 1.0, y)]))
        stack.extend(polygon_parts(halves, 0.0))
    out.sort(key=lambda q: (-q.bounds[3], q.bounds[0]))
    return out, cut


def disjoint_regions(regions: Sequence[Region]) -> list[DisjointRegion]:
    """Apply the overlap rule (module docstring): each region minus the regions before it, with holes
    over other regions cut open. Geometries in one projected CRS (metres)."""
    geoms = np.asarray([r.geometry for r in regions], dtype=object)
    tree = shapely.STRtree(geoms)
    filled = [fill_holes(g) for g in geoms]
    out: list[DisjointRegion] = []
    for i, r in enumerate(regions):
        g = geoms[i]
        near = sorted(int(j) for j in tree.query(filled[i], predicate="intersects") if j != i)
        shared = []
        for j in near:
            a = float(g.intersection(geoms[j]).area)
            if a > SLIVER_M2:
                shared.append((j, a))
        earlier = [geoms[j] for j, _ in shared if j < i]
        part = _merge(polygon_parts(g.difference(shapely.union_all(earlier)))) if earlier else g
        overlap = float(g.intersection(shapely.union_all([geoms[j] for j, _ in shared])).area) if shared else 0.0
        others = shapely.union_all([geoms[j] for j in near]) if near else Polygon()
        pieces, cut = _open_holes(polygon_parts(part), others) if near and not part.is_empty else ([], False)
        if part.is_empty:
            feats: tuple[BaseGeometry, ...] = ()
        elif cut:
            feats = tuple(pieces)
        else:
            feats = (part,)
        out.append(DisjointRegion(region=r, part=part, pieces=feats, shared=tuple(shared), overlap_m2=overlap, cut=cut))
    return out
