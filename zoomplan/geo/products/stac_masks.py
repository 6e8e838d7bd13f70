"""A STAC Item's cloud mask asset (issue 18): the asset keyed ``scl`` (Earth Search), ``SCL`` (Planetary
Computer) or ``qa_pixel`` (Landsat Collection 2), else one whose ``eo:bands`` name says ``SCL`` /
``QA_PIXEL``, else one with the role ``cloud`` or ``cloud-shadow`` whose file is named as a product mask;
read as the SAFE's SCL / Landsat's QA_PIXEL file is (:mod:`zoomplan.geo.products.clouds`)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from zoomplan.geo.products.clouds import described_kind, kind_of, mask_at
from zoomplan.geo.products.files import is_remote_href, local_href

log = logging.getLogger(__name__)


_MASK_ROLES = {"cloud", "cloud-shadow"}


def _mask_kind(key: str, asset: Any) -> str | None:
    """``scl`` / ``qa_pixel`` (or ``classi``, by file name) when the asset is a product's cloud mask (module doc), else
    None."""
    kind = described_kind(key)
    if kind is not None:
        return kind
    eo = asset.extra_fields.get("eo:bands") or asset.extra_fields.get("bands")  # STAC 1.0, 1.1
    for b in eo if isinstance(eo, list) else []:
        for text in (b.get("name"), b.get("description")) if isinstance(b, dict) else ():
            kind = described_kind(text) if isinstance(text, str) else None
            if kind is not None:
                return kind
    roles = asset.roles if isinstance(asset.roles, list) else []
    if _MASK_ROLES & {r for r in roles if isinstance(r, str)}:
        by_name = kind_of(Path(str(asset.href)))
        if by_name != "nonzero":
            return by_name
        log.info(
            "STAC asset %r has role cloud but is not named as an SCL / QA_PIXEL / MSK_CLASSI mask: not used (pass it "
            "as --cloud-mask FILE "
            "if its nonzero pixels are cloud)",
            key,
        )
    return None


def mask_asset(item: Any, json: Path) -> dict[str, Any]:
    """``{'cloud_mask': CloudMask}`` for the Item's local cloud mask asset (module doc; of several, a local one,
    then the one keyed ``scl`` / ``qa_pixel``, then the order written), ``{'cloud_refusal': line}`` for a remote
    or missing one, ``{}`` for none."""
    found = [(key, a, kind) for key, a in item.assets.items() if (kind := _mask_kind(key, a)) is not None]
    if not found:
        return {}
    key, a, kind = min(found, key=lambda f: (is_remote_href(f[1].href), f[0].lower() not in ("scl", "qa_pixel")))
    if is_remote_href(a.href):
        return {
            "cloud_refusal": f"asset {key!r} of STAC item {item.id} ({json}) is its cloud mask and is remote "
            f"({a.href}): zoomplan reads local "
            f"files only; download it and set the asset's href to the local file (a path relative to the JSON works), "
            f"or pass --cloud-mask FILE"
        }
    p = local_href(a.href, json)
    if not p.is_file():
        return {
            "cloud_refusal": f"asset {key!r} of STAC item {item.id} ({json}) points at {p}, which is not there: "
            f"download it there, "
            f"or fix the href (it is the scene's cloud mask)"
        }
    return {"cloud_mask": mask_at(p, kind, asset=key)}
