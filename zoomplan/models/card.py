"""The model card: everything the planner and the evaluator need to use a checkpoint without guessing.

A card is a frozen dataclass stored (as plain dicts, lists, strings and numbers) inside every
checkpoint. The planner reads from it the tile ground size, the LR pixel size, the patch grid, the
bands and how raw sensor values map to the network's input.

Units: ground sizes in metres; sizes in pixels; normalisation on values in [0, 1].
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from zoomplan.errors import CheckpointError

COMBINE_RULES = ("paper", "logit-sum")
"""How Ft-2 combines the HR (masked) and LR classifier streams.

``paper``: probabilities p = (S/P) softmax(h) + (1 - S/P) softmax(l), S = acquired patches (the
paper's text; no patch -> the LR classifier alone). ``logit-sum``: softmax(h + l) (the public code).
"""


@dataclass(frozen=True)
class ModelSpec:
    """A registry name plus keyword arguments: enough to rebuild the network exactly."""

    name: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kwargs": dict(self.kwargs)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ModelSpec":
        return cls(name=str(d["name"]), kwargs=dict(d.get("kwargs", {})))


@dataclass(frozen=True)
class Normalization:
    """Per-channel mean and standard deviation applied to values already in [0, 1]."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Normalization":
        return cls(mean=tuple(float(v) for v in d["mean"]), std=tuple(float(v) for v in d["std"]))


@dataclass(frozen=True)
class SensorMapping:
    """How raw values of one sensor product become the network's [0, 1] input (before normalisation).

    ``unit = clip((raw * scale + offset) * gain, 0, 1)``, with ``offset`` and ``gain`` either one
    number or one per band (in ``bands`` order). For Sentinel-2 L1C/L2A digital numbers (reflectance x
    10000) ``scale = 1e-4`` gives reflectance; ``offset`` (negative: the path radiance of a dark
    object) and ``gain`` then map top-of-atmosphere reflectance onto the brightness range of the 8-bit
    display RGB the model was trained on. For 8-bit RGB, ``scale = 1/255`` and ``gain = 1``.
    """

    name: str
    scale: float
    offset: float | tuple[float, ...] = 0.0
    gain: float | tuple[float, ...] = 1.0
    bands: tuple[str, ...] = ("red", "green", "blue")
    band_aliases: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["bands"] = list(self.bands)
        d["offset"], d["gain"] = _per_band_plain(self.offset), _per_band_plain(self.gain)
        d["band_aliases"] = {k: list(v) for k, v in self.band_aliases.items()}
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "SensorMapping":
        return cls(
            name=str(d["name"]),
            scale=float(d["scale"]),
            offset=per_band(d.get("offset", 0.0)),
            gain=per_band(d.get("gain", 1.0)),
            bands=tuple(d.get("bands", ("red", "green", "blue"))),
            band_aliases={k: tuple(v) for k, v in dict(d.get("band_aliases", {})).items()},
            note=str(d.get("note", "")),
        )


def per_band(value: Any) -> float | tuple[float, ...]:
    """A sensor mapping's ``offset`` or ``gain``: one number, or a list of numbers (one per band)."""
    if isinstance(value, (list, tuple)):
        return tuple(float(v) for v in value)
    return float(value)


def _per_band_plain(value: float | tuple[float, ...]) -> float | list[float]:
    return list(value) if isinstance(value, tuple) else value


SENTINEL2_BAND_ALIASES: dict[str, tuple[str, ...]] = {
    "red": ("red", "b04", "b4", "band 4", "sentinel-2 b04"),
    "green": ("green", "b03", "b3", "band 3", "sentinel-2 b03"),
    "blue": ("blue", "b02", "b2", "band 2", "sentinel-2 b02"),
    "nir": ("nir", "b08", "b8", "band 8", "sentinel-2 b08"),
}


@dataclass(frozen=True)
class ModelCard:
    """Self-description of a zoomplan checkpoint.

    Geometry: a *tile* is a square of ``tile_ground_m`` metres on the ground. The HR stream sees it as
    ``hr_size_px`` pixels (``hr_pixel_m`` metres each), the LR stream as ``lr_size_px`` pixels
    (``lr_pixel_m`` metres each). The tile is cut into ``patch_grid`` (rows, cols) HR patches, ids
    row by row from the top-left (north-west) corner. ``deploy_stage`` is the policy stage the
    planner uses (``pt``, ``ft1`` or ``ft2``), chosen on val by the trainer; empty means the last one.
    ``lr_psf_sigma`` is the Gaussian point-spread function (LR pixels) with which the LR stream was
    simulated (0: area averaging alone).
    """

    class_names: tuple[str, ...]
    policy: ModelSpec
    hr_classifier: ModelSpec
    lr_classifier: ModelSpec
    hr_size_px: int
    lr_size_px: int
    hr_pixel_m: float
    lr_pixel_m: float
    tile_ground_m: float
    patch_grid: tuple[int, int] = (4, 4)
    hr_norm: Normalization = Normalization((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    lr_norm: Normalization = Normalization((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    lr_sensors: tuple[SensorMapping, ...] = ()
    lowres_method: str = "area"
    lr_psf_sigma: float = 0.0
    combine: str = "paper"
    dataset: str = ""
    recipe: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0
    metrics: Mapping[str, Any] = field(default_factory=dict)
    stages: tuple[str, ...] = ()
    deploy_stage: str = ""
    zoomplan_version: str = ""
    notes: str = ""

    def __post_init__(self) -> None:
        problems = []
        if not self.class_names:
            problems.append("class_names is empty")
        if self.hr_size_px <= 0 or self.lr_size_px <= 0:
            problems.append("input sizes must be positive")
        if min(self.hr_pixel_m, self.lr_pixel_m, self.tile_ground_m) <= 0:
            problems.append("pixel and tile ground sizes must be positive metres")
        r, c = self.patch_grid
        if r <= 0 or c <= 0 or self.hr_size_px % r or self.hr_size_px % c:
            problems.append(f"patch_grid {self.patch_grid} must divide hr_size_px {self.hr_size_px}")
        if self.combine not in COMBINE_RULES:
            problems.append(f"combine must be one of {COMBINE_RULES}, got {self.combine!r}")
        if self.lowres_method not in ("area", "nearest"):
            problems.append(f"lowres_method must be 'area' or 'nearest', got {self.lowres_method!r}")
        if problems:
            raise CheckpointError("invalid model card: " + "; ".join(problems))

    @property
    def num_patches(self) -> int:
        """P, the number of HR patches per tile (16 for the paper's 4x4 grid)."""
        return self.patch_grid[0] * self.patch_grid[1]

    @property
    def patch_ground_m(self) -> tuple[float, float]:
        """Ground size of one HR patch in metres, (height, width)."""
        return (self.tile_ground_m / self.patch_grid[0], self.tile_ground_m / self.patch_grid[1])

    def sensor(self, name: str) -> SensorMapping:
        """The LR sensor mapping called ``name``."""
        for s in self.lr_sensors:
            if s.name == name:
                return s
        known = ", ".join(s.name for s in self.lr_sensors) or "none"
        raise CheckpointError(f"model card has no LR sensor mapping {name!r} (known: {known})")

    def replace(self, **changes: Any) -> "ModelCard":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain types only, so ``torch.load(weights_only=True)`` and JSON both accept it."""
        return {
            "class_names": list(self.class_names),
            "policy": self.policy.to_dict(),
            "hr_classifier": self.hr_classifier.to_dict(),
            "lr_classifier": self.lr_classifier.to_dict(),
            "hr_size_px": self.hr_size_px,
            "lr_size_px": self.lr_size_px,
            "hr_pixel_m": self.hr_pixel_m,
            "lr_pixel_m": self.lr_pixel_m,
            "tile_ground_m": self.tile_ground_m,
            "patch_grid": list(self.patch_grid),
            "hr_norm": self.hr_norm.to_dict(),
            "lr_norm": self.lr_norm.to_dict(),
            "lr_sensors": [s.to_dict() for s in self.lr_sensors],
            "lowres_method": self.lowres_method,
            "lr_psf_sigma": self.lr_psf_sigma,
            "combine": self.combine,
            "dataset": self.dataset,
            "recipe": _plain(self.recipe),
            "seed": self.seed,
            "metrics": _plain(self.metrics),
            "stages": list(self.stages),
            "deploy_stage": self.deploy_stage,
            "zoomplan_version": self.zoomplan_version,
            "notes": self.notes,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ModelCard":
        try:
            return cls(
                class_names=tuple(str(c) for c in d["class_names"]),
                policy=ModelSpec.from_dict(d["policy"]),
                hr_classifier=ModelSpec.from_dict(d["hr_classifier"]),
                lr_classifier=ModelSpec.from_dict(d["lr_classifier"]),
                hr_size_px=int(d["hr_size_px"]),
                lr_size_px=int(d["lr_size_px"]),
                hr_pixel_m=float(d["hr_pixel_m"]),
                lr_pixel_m=float(d["lr_pixel_m"]),
                tile_ground_m=float(d["tile_ground_m"]),
                patch_grid=(int(d["patch_grid"][0]), int(d["patch_grid"][1])),
                hr_norm=Normalization.from_dict(d["hr_norm"]),
                lr_norm=Normalization.from_dict(d["lr_norm"]),
                lr_sensors=tuple(SensorMapping.from_dict(s) for s in d.get("lr_sensors", [])),
                lowres_method=str(d.get("lowres_method", "area")),
                lr_psf_sigma=float(d.get("lr_psf_sigma", 0.0)),
                combine=str(d.get("combine", "paper")),
                dataset=str(d.get("dataset", "")),
                recipe=dict(d.get("recipe", {})),
                seed=int(d.get("seed", 0)),
                metrics=dict(d.get("metrics", {})),
                stages=tuple(d.get("stages", ())),
                deploy_stage=str(d.get("deploy_stage", "")),
                zoomplan_version=str(d.get("zoomplan_version", "")),
                notes=str(d.get("notes", "")),
            )
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise CheckpointError(
                f"model card is incomplete or malformed ({exc!r}): re-export the checkpoint with this zoomplan version"
            ) from exc


def _plain(obj: Any) -> Any:
    """Convert mappings/sequences to plain dicts/lists (TOML and dataclass values included)."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _plain(dataclasses.asdict(obj))
    return str(obj)


def check_compatible(
    card: ModelCard,
    *,
    class_names: Sequence[str] | None = None,
    hr_size_px: int | None = None,
    lr_size_px: int | None = None,
) -> None:
    """Raise :class:`CheckpointError` if ``card`` does not match what the caller needs."""
    if class_names is not None and tuple(class_names) != card.class_names:
        raise CheckpointError(
            f"checkpoint classes ({len(card.class_names)}: {', '.join(card.class_names[:4])}...) differ from the "
            f"dataset's "
            f"({len(class_names)}: {', '.join(list(class_names)[:4])}...): evaluate on the dataset the model was "
            f"trained on"
        )
    if hr_size_px is not None and hr_size_px != card.hr_size_px:
        raise CheckpointError(
            f"checkpoint expects HR inputs of {card.hr_size_px} px, got {hr_size_px}: use the card's size"
        )
    if lr_size_px is not None and lr_size_px != card.lr_size_px:
        raise CheckpointError(
            f"checkpoint expects LR inputs of {card.lr_size_px} px, got {lr_size_px}: use the card's size"
        )
