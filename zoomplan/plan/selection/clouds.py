"""What a plan does with cloudy patches: ``zoomplan plan --cloudy skip|buy|ask`` (default ``buy``).

A patch is cloudy when more than :data:`~zoomplan.geo.products.clouds.CLOUDY_SHARE` of its LR pixels are cloud or
cloud shadow in every scene with data over its tile (:mod:`zoomplan.plan.inference.infer`: a clear scene of another
date fills in). Under a cloud the LR pixels say nothing about the ground, so the policy's probability
there is noise:

- ``buy`` (the default): every cloudy patch is a candidate whatever its probability (ranked first under
  ``--budget`` / ``--max-fraction``; ``--threshold`` above 1 still buys nothing). The HR archive is bought
  separately, from other dates, so a cloud on the LR day says nothing about the HR image either: the
  planner cannot rule those patches out, and not knowing is not a reason to leave a hole in the order.
  The saving reported is then honest (none is claimed over ground the planner could not see).
- ``skip``: cloudy patches are never bought: cheaper, with holes where the LR says nothing; for a buyer
  who will plan those areas again from a clearer scene (or pass it now with another ``--lr``).
- ``ask``: the count is read before inference (:func:`zoomplan.plan.inference.blocks.count_cloudy`: the pixels and
  masks only) and the caller decides (the CLI prompts on a terminal, and stops with one line listing
  the counts and the options when stdin is not one).

The plan's summary ``clouds`` section (:func:`report`) says which masks were read, the rule, the counts
and km^2 (patch areas), and what was done.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

import numpy as np

from zoomplan.errors import ConfigError
from zoomplan.geo.products.clouds import CLOUDY_SHARE
from zoomplan.plan.types import FILLED, PatchTable

MODES = ("skip", "buy", "ask")
DEFAULT = "buy"
RULE = (
    f"a patch is cloudy when more than {CLOUDY_SHARE:.0%} of its LR pixels are cloud or cloud shadow in every scene "
    f"with data over "
    "its tile; a patch cloudy in one scene is decided by the next scene (in the scene order) where it is clear"
)
OPTIONS = (
    "--cloudy buy (buy them all: the LR under a cloud cannot rule them out) or --cloudy skip (buy none of them: "
    "cheaper, "
    "leaves holes), or add a clearer scene of another date with --lr"
)


def check_mode(mode: str) -> str:
    """``mode`` if it is one of :data:`MODES`, else :class:`ConfigError` naming them."""
    if mode not in MODES:
        raise ConfigError(f"--cloudy {mode!r} is not one of {', '.join(MODES)}: pass e.g. --cloudy {DEFAULT}")
    return mode


def km2(n: int, patch_m: float) -> float:
    """The area of ``n`` patches of ``patch_m`` metres, km^2 (6 decimals)."""
    return round(n * patch_m * patch_m / 1e6, 6)


def question(counts: Mapping[str, float]) -> str:
    """What ``--cloudy ask`` asks: the cloudy patches (and filled-in ones) of ``counts``
    (:func:`zoomplan.plan.inference.blocks.count_cloudy`, with the grid's ``patch_m``), with their km^2."""
    n, tot, f = int(counts["cloudy"]), int(counts["patches"]), int(counts.get("filled", 0))
    filled = f"; {f} more were filled in from a clearer scene" if f else ""
    return (
        f"{n} of {tot} AOI patches ({km2(n, counts['patch_m']):.3f} km2) are under cloud or cloud shadow in every "
        f"scene{filled}"
    )


def undecided(counts: Mapping[str, float]) -> ConfigError:
    """The one-line error of ``--cloudy ask`` when nobody can be asked."""
    return ConfigError(f"--cloudy ask: {question(counts)}, and there is no terminal to ask: pass {OPTIONS}")


def selection_table(table: PatchTable, mode: str) -> tuple[PatchTable, np.ndarray | None]:
    """(the table selection ranks, patches it may not select) for ``mode``: ``buy`` ranks cloudy patches
    at probability 1 (the table itself keeps the policy's); ``skip`` excludes them."""
    if table.cloud is None:
        return table, None
    cloudy = table.cloudy
    if mode == "skip":
        return table, cloudy
    return dataclasses.replace(table, prob=np.where(cloudy, np.float32(1.0), table.prob).astype(np.float32)), None


def report(
    table: PatchTable, selected: np.ndarray, masks: Mapping[str, str | None], mode: str, chosen_by: str
) -> dict[str, Any]:
    """The summary's ``clouds`` section (JSON-ready; areas km^2 of whole patches)."""
    cloudy = table.cloudy
    n = int(cloudy.sum())
    filled = int((table.cloud == FILLED).sum()) if table.cloud is not None else 0
    sel = int((cloudy & np.asarray(selected, bool)).sum())
    done = (
        f"bought: {sel} of the {n} cloudy patches are selected whatever their probability"
        if mode == "buy"
        else f"skipped: none of the {n} cloudy patches is bought, whatever its probability"
    )
    return {
        "masks": dict(masks),
        "rule": RULE,
        "cloudy_share": CLOUDY_SHARE,
        "patches_cloudy": n,
        "cloudy_km2": km2(n, table.patch_m),
        "patches_filled": filled,
        "filled_km2": km2(filled, table.patch_m),
        "handling": mode,
        "chosen_by": chosen_by,
        "cloudy_selected": sel,
        "done": done,
    }


def mask_names(scenes: Sequence[Any]) -> dict[str, str | None]:
    """Scene id -> its cloud mask described (``None``: no mask; its patches count as clear)."""
    return {s.scene_id: (s.cloud_mask.describe() if s.cloud_mask is not None else None) for s in scenes}
