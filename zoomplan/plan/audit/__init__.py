"""Audits: what a model would buy over a labelled area, class by class (``zoomplan audit``).

Labels read (:mod:`.labels`), the planner's first steps run over them (:mod:`.audit`), rows per
class (:mod:`.rows`), written as Markdown, JSON and a bar chart (:mod:`.outputs`).
"""

from zoomplan.plan.audit.audit import audit
from zoomplan.plan.audit.labels import Labels, parse_classes, read_labels
from zoomplan.plan.audit.outputs import json_text, markdown, write_outputs
from zoomplan.plan.audit.rows import TOTAL, AuditResult, AuditRow, aggregate, selected_mask

__all__ = [
    "TOTAL",
    "AuditResult",
    "AuditRow",
    "Labels",
    "aggregate",
    "audit",
    "json_text",
    "markdown",
    "parse_classes",
    "read_labels",
    "selected_mask",
    "write_outputs",
]
