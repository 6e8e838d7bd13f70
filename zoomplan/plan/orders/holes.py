"""Holes respected: an order around a hole of its AOI feature either fills it or is split around it, whichever bills
less.

Orders are built on the feature with its holes filled (:mod:`zoomplan.plan.orders.consolidate`). Then, for an
order that covers part of a hole (more than :data:`HOLE_M2`), two ways to buy it are priced:

- ``filled``: the order as it is, hole area included (one order);
- ``split``: the order cut to the feature, then into hole-free pieces (vendors sell polygons without
  holes; :func:`zoomplan.plan.orders.disjoint.split_holes`): one MultiPolygon order of the pieces where the
  vendor accepts MultiPolygons and they make a valid one (then the hole is never bought: it bills no
  more than filling), else one order per piece, each billed max(area, min_order_km2). Pieces that
  surround a hole always share an edge somewhere (no set of hole-free polygons meeting only at points
  makes a ring), and a MultiPolygon's parts may not, so around a ring they are separate orders. A
  split is only possible where every piece is within the vertex limit and, under a width rule, at
  least ``min_width_m`` wide (:func:`~zoomplan.plan.orders.polygons.is_wide`).

The cheaper is kept (a tie keeps ``filled``: fewer orders) and :func:`report` says which, for each order.
The same rule applies to every AOI feature, MultiPolygon parts included, and to the whole-feature
baseline. The pieces of a split lie inside the order they come from, so a plan whose orders do not
overlap still does not. Geometry in the planning CRS (metres); money USD; areas km^2 in the report.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
from shapely.geometry import MultiPolygon
from shapely.geometry.base import BaseGeometry

from zoomplan.plan.orders.disjoint import Measure, clean
from zoomplan.plan.orders.orderable import Candidate, bill_usd
from zoomplan.plan.orders.polygons import is_wide, n_vertices, polygons
from zoomplan.plan.orders.pricing import VendorProfile

HOLE_M2 = 1.0
"""An order covering at most this much (m^2) of its feature's holes is left as it is."""

Share = Callable[[np.ndarray, Sequence[BaseGeometry]], list[np.ndarray]]


def _split(pieces: list, vendor: VendorProfile) -> list[BaseGeometry] | None:
    """The orders of a split, or None where the vendor's rules forbid it."""
    if not pieces or any(n_vertices(p) > vendor.max_vertices or not is_wide(p, vendor.min_width_m) for p in pieces):
        return None
    if vendor.allows_multipolygon and len(pieces) > 1 and n_vertices(MultiPolygon(pieces)) <= vendor.max_vertices:
        multi = MultiPolygon(pieces)
        if multi.is_valid:  # parts that share an edge (the cut through a hole) make no valid MultiPolygon
            return [multi]
    return list(pieces)


def has_holes(feature: BaseGeometry) -> bool:
    """True if a part of ``feature`` (Polygon or MultiPolygon) has an interior ring."""
    return any(p.interiors for p in polygons(feature))


def respect_holes(
    c: Candidate, feature: BaseGeometry, vendor: VendorProfile, measure: Measure, share: Share | None = None
) -> tuple[Candidate, list[dict[str, Any]]]:
    """``c`` (one feature's orders, planning CRS, drawn) with each order around a hole of ``feature``
    (the feature as drawn, holes kept) filled or split, the cheaper (module docstring). ``measure``:
    billed m^2 of geometries; ``share(m, parts)`` splits an order's patch indices ``m`` among its pieces
    (default: all to the first). Returns the plan and one report row per order that covered a hole."""
    if not has_holes(feature):
        return c, []
    geoms: list[BaseGeometry] = []
    members: list[np.ndarray] = []
    inside: list[bool] = []
    rows: list[dict[str, Any]] = []
    for g, m, ins in zip(c.geoms, c.members, c.inside):
        cut = g.intersection(feature)
        hole = g.area - cut.area
        if hole <= HOLE_M2:
            geoms.append(g)
            members.append(m)
            inside.append(ins)
            continue
        split = _split(clean(cut), vendor)
        fill_usd = bill_usd(measure([g]), vendor)
        split_usd = bill_usd(measure(split), vendor) if split is not None else float("inf")
        take = split is not None and split_usd < fill_usd
        rows.append(
            {
                "hole_km2": round(hole * 1e-6, 6),
                "filled_usd": round(fill_usd, 2),
                "split_usd": round(split_usd, 2) if split is not None else None,
                "choice": "split" if take else "filled",
                "why": (
                    "split around the hole: cheaper than filling it"
                    if take
                    else "filled: splitting around the hole would cost no less"
                    if split is not None
                    else "filled: the pieces around the hole would break the vendor's vertex or width rule"
                ),
            }
        )
        if take:
            assert split is not None
            geoms.extend(split)
            members.extend(share(m, split) if share is not None else [m] + [m[:0]] * (len(split) - 1))
            inside.extend([ins] * len(split))
        else:
            geoms.append(g)
            members.append(m)
            inside.append(ins)
    if not rows:
        return c, []
    return Candidate(c.kind, geoms, members, inside, bill_usd(measure(geoms), vendor)), rows


def report(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The summary's ``holes`` member: orders around a hole, how many were split or filled, and each choice."""
    return {
        "rule": "an order around a hole of its AOI feature is split into hole-free pieces (one MultiPolygon order "
        "where "
        "the vendor accepts them) or bought with the hole filled, whichever bills less",
        "orders_split": sum(r["choice"] == "split" for r in rows),
        "orders_filled": sum(r["choice"] == "filled" for r in rows),
        "hole_km2_not_bought": round(sum(r["hole_km2"] for r in rows if r["choice"] == "split"), 6),
        "hole_km2_bought": round(sum(r["hole_km2"] for r in rows if r["choice"] == "filled"), 6),
        "choices": rows,
    }
