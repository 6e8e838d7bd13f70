"""Planning: from an AOI and LR scenes to a priced purchase order, along the data path.

``request`` (:class:`PlanRequest`: what a plan is asked, validated once), ``pipeline`` (:func:`plan`,
:func:`run`) with its shared ``inputs`` and ``types`` (:class:`PatchTable`), then one
package per stage: ``inference`` (probabilities per patch), ``selection`` (which patches),
``orders`` (orderable polygons, vendor rules and bills), ``export`` (GeoJSON, quicklook, GIS and
vendor payloads); ``budget`` and ``audit`` run the same stages for ``zoomplan budget`` and
``zoomplan audit``.

The entry points below are importable from here; they are loaded on first use, so importing a light
module (``zoomplan.plan.orders.pricing``, ``zoomplan.plan.types``) does not load the networks.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PatchTable", "PlanRequest", "PlanResult", "export_order", "plan", "run"]


def __getattr__(name: str) -> Any:
    if name in ("plan", "run", "PlanResult"):
        from zoomplan.plan import pipeline

        return getattr(pipeline, name)
    if name == "PlanRequest":
        from zoomplan.plan.request import PlanRequest

        return PlanRequest
    if name == "PatchTable":
        from zoomplan.plan.types import PatchTable

        return PatchTable
    if name == "export_order":
        from zoomplan.plan.export.vendor_formats import export_order

        return export_order
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
