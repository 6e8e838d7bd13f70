"""What a plan is asked to do: one frozen, validated request (issue 19).

``zoomplan plan`` builds a :class:`PlanRequest` from its options, :func:`zoomplan.plan.pipeline.run` runs it,
and the order file's summary records it (``summary["request"]``, :meth:`PlanRequest.record`). Everything a
request can check without reading a file is checked once, when it is made, with the one-line errors of the
command line (:class:`~zoomplan.errors.ConfigError`, :class:`~zoomplan.errors.InputError`); what needs the
files (the AOI, the scenes, the checkpoint, the output folders) is checked by :func:`run`, before any work.

Units: ``budget_usd`` in USD; ``threshold`` and ``max_fraction`` are probabilities / shares in [0, 1]; paths
as given (relative to the working folder).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Sequence

from zoomplan.errors import ConfigError, InputError
from zoomplan.plan.inputs import check_params, resolve_threshold
from zoomplan.plan.selection.clouds import check_mode
from zoomplan.plan.types import PathLike

HOW_AND_WHERE = (
    "device",
    "batch_size",
    "block_tiles",
    "cluster",
    "resume",
    "journal",
    "threads",
    "out",
    "patches_out",
    "quicklook",
)
"""Fields that say how a plan runs and where it writes, not what is planned: the same plan whatever they are
(a resumed, a clustered and a single-process run write byte-identical orders), so the summary leaves them out."""


def _path(p: PathLike | None) -> Path | None:
    return None if p is None else Path(p)


@dataclass(frozen=True)
class PlanRequest:
    """One plan: the AOI file, the LR ``scenes`` (in the order used: each tile from the first with valid data)
    and every choice of ``zoomplan plan`` (its options, by the same names; :func:`zoomplan.plan.pipeline.plan`
    documents each). ``out`` may be ``"-"`` (stdout). ``bands`` may be given as ``"B04,B03,B02"``."""

    aoi: Path
    scenes: tuple[Path, ...]
    model: Path | None = None
    vendor: str | None = None
    vendors_file: Path | None = None
    threshold: float | None = None
    budget_usd: float | None = None
    max_fraction: float | None = None
    device: str = "auto"
    out: Path | str | None = None
    patches_out: Path | None = None
    quicklook: Path | None = None
    bands: tuple[str, ...] | None = None
    sensor: str | None = None
    batch_size: int = 512
    block_tiles: int = 64
    scene_rule: str | None = None
    cluster: str | int | None = None
    resume: bool = False
    journal: Path | None = None
    threads: int | None = None
    force: bool = False
    cloud_masks: tuple[Path, ...] = ()
    cloudy: str | None = None

    def __post_init__(self) -> None:
        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        put("aoi", Path(self.aoi))
        put("scenes", tuple(Path(s) for s in self.scenes))
        for name in ("model", "vendors_file", "patches_out", "quicklook", "journal"):
            put(name, _path(getattr(self, name)))
        if self.out is not None and str(self.out) != "-":
            put("out", Path(self.out))
        put("cloud_masks", tuple(Path(m) for m in self.cloud_masks))
        if isinstance(self.bands, str):
            put("bands", tuple(b.strip() for b in self.bands.split(",") if b.strip()) or None)
        elif self.bands is not None:
            put("bands", tuple(str(b) for b in self.bands) or None)
        # the checks that need no file, once
        check_params(self.effective_threshold, self.budget_usd, self.max_fraction)
        if not self.scenes:
            raise InputError("no LR scene given: pass --lr SCENE (a Sentinel-2 GeoTIFF, COG or JP2) at least once")
        if self.batch_size <= 0 or self.block_tiles <= 0:
            raise ConfigError("batch_size and block_tiles must be positive integers")
        if self.threads is not None and self.threads <= 0:
            raise ConfigError(
                f"--threads must be a positive integer, got {self.threads}: pass 1 or more (default: every CPU core)"
            )
        if self.cloudy is not None:
            check_mode(self.cloudy)

    @property
    def effective_threshold(self) -> float:
        """The threshold in force: as given; else 0 under a budget or a fraction; else 0.5."""
        return resolve_threshold(self.threshold, self.budget_usd, self.max_fraction)

    @classmethod
    def of(cls, aoi: PathLike, scenes: Sequence[PathLike], **options: Any) -> PlanRequest:
        """A request from ``plan()``'s arguments (unknown option names are a :class:`TypeError`, as for a call)."""
        return cls(aoi=Path(aoi), scenes=tuple(Path(s) for s in scenes), **options)

    def record(self) -> dict[str, Any]:
        """What was asked, as JSON-ready values (paths as given, as strings), for the order file's summary:
        every field but :data:`HOW_AND_WHERE`."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name in HOW_AND_WHERE:
                continue
            v = getattr(self, f.name)
            if isinstance(v, Path):
                v = str(v)
            elif isinstance(v, tuple):
                v = [str(x) for x in v]
            out[f.name] = v
        return out
