"""Training recipes: frozen dataclasses loaded from TOML (``configs/*.toml``) with ``tomllib``.

A recipe is saved inside every checkpoint's card (``recipe``) so a model can be retrained exactly.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

from zoomplan.errors import ConfigError
from zoomplan.models.card import SENTINEL2_BAND_ALIASES, ModelSpec, SensorMapping, per_band

STAGES = ("hr", "lr", "policy", "ft1", "ft2")
"""Training stages in Algorithm 1's order: classifiers, policy pre-training (Pt), Ft-1, Ft-2."""

EXTRA_STAGES = ("baselines",)
"""Stages outside ``--stage all``: ``baselines`` fine-tunes the paper's baselines on their own masks
(evaluation only; see :mod:`zoomplan.train.baselines`)."""

POLICY_INITS = ("previous", "fresh", "lr")
"""Where a Ft-1/Ft-2 policy starts (``[stage.*] policy_init``; see :class:`StageConfig`)."""


@dataclass(frozen=True)
class StageConfig:
    """Optimisation settings of one stage. ``lr`` is the learning rate of the network trained in a
    classifier stage, or of the policy in policy stages; ``lr_classifier`` is the HR classifier's in
    Ft-1/Ft-2. ``sigma`` is the reward's penalty for a wrong prediction; the exploration bound alpha
    ramps linearly from ``alpha_start`` to ``alpha_end`` over the stage's epochs. ``oof_folds`` (Ft-2
    only, 0 = off) trains that many LR classifiers on complementary folds of the training split (with
    the ``lr`` stage's settings) so that each training image's LR stream comes from a classifier that
    never saw it: on a small dataset the frozen LR classifier has memorised the training labels, and
    without this the policy learns that HR patches are never needed. ``policy_init`` (Ft-1/Ft-2):
    ``previous`` continues the previous stage's policy (the paper); ``fresh`` starts a newly initialised
    one, whose probabilities are not saturated by the earlier stages' near-fixed masks; ``lr`` starts
    one whose body is the trained LR classifier's (the policy must then have the LR classifier's
    architecture), so it begins knowing what the LR stream can tell apart. ``cost_power`` is the
    exponent of the patch cost in the reward, ``1 - (S/P)^cost_power`` (2 in the paper)."""

    epochs: int = 1
    batch_size: int = 64
    lr: float = 1e-3
    lr_classifier: float = 1e-4
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    sigma: float = 0.5
    alpha_start: float = 0.8
    alpha_end: float = 0.8
    warmup_epochs: int = 0
    oof_folds: int = 0
    policy_init: str = "previous"
    cost_power: float = 2.0


@dataclass(frozen=True)
class ModelConfig:
    """Architectures and the geometry of a tile (metres, pixels)."""

    policy: ModelSpec
    hr_classifier: ModelSpec
    lr_classifier: ModelSpec
    hr_size_px: int
    lr_size_px: int
    hr_pixel_m: float
    lr_pixel_m: float
    tile_ground_m: float
    patch_grid: tuple[int, int] = (4, 4)
    lowres_method: str = "area"
    lr_psf_sigma: float = 0.0
    lr_radiometry: Mapping[str, Any] = field(default_factory=dict)
    combine: str = "paper"
    half_weights: bool = False


@dataclass(frozen=True)
class DataConfig:
    """How samples are read: ``source_size`` px per tile before the streams are derived."""

    source_size: int = 256
    cache: bool = True
    workers: int = 0
    sources: Mapping[str, Any] = field(default_factory=dict)
    """Joint datasets only: ``[data.sources.<name>]`` tables (see :mod:`zoomplan.data.joint`)."""


@dataclass(frozen=True)
class TrainConfig:
    name: str
    model: ModelConfig
    data: DataConfig
    stages: Mapping[str, StageConfig]
    sensors: tuple[SensorMapping, ...] = ()
    seed: int = 0
    eval_batch_size: int = 256
    source: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict)

    def stage(self, name: str) -> StageConfig:
        if name not in self.stages:
            raise ConfigError(
                f"recipe {self.name!r} has no [stage.{name}] table: add it to {self.source or 'the config'}"
            )
        return self.stages[name]

    def with_epochs(self, epochs: int) -> "TrainConfig":
        """The same recipe with every stage's epoch count replaced (quick runs, tests)."""
        return dataclasses.replace(
            self, stages={k: dataclasses.replace(v, epochs=epochs) for k, v in self.stages.items()}
        )


def _spec(d: Mapping[str, Any], where: str) -> ModelSpec:
    if "name" not in d:
        raise ConfigError(f"{where} needs a 'name' (one of the registry's models)")
    kw = {k: v for k, v in d.items() if k != "name"}
    return ModelSpec(str(d["name"]), kw)


def _build(cls: type, d: Mapping[str, Any], where: str) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(d) - names
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(names))}")
    try:
        return cls(**d)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def parse_config(raw: Mapping[str, Any], source: str = "") -> TrainConfig:
    """Build a :class:`TrainConfig` from a parsed TOML mapping."""
    try:
        m = dict(raw["model"])
    except KeyError as exc:
        raise ConfigError(f"{source}: missing [model] table") from exc
    for key in ("policy", "hr_classifier", "lr_classifier"):
        if key not in m:
            raise ConfigError(f"{source}: [model] needs a {key} = {{ name = ... }} entry")
        m[key] = _spec(m[key], f"{source} [model].{key}")
    if "patch_grid" in m:
        m["patch_grid"] = tuple(m["patch_grid"])
    model = _build(ModelConfig, m, f"{source} [model]")
    data = _build(DataConfig, dict(raw.get("data", {})), f"{source} [data]")
    stages = {}
    for name, d in dict(raw.get("stage", {})).items():
        if name not in STAGES + EXTRA_STAGES:
            raise ConfigError(f"{source}: unknown stage [stage.{name}]; stages are {', '.join(STAGES + EXTRA_STAGES)}")
        st = _build(StageConfig, dict(d), f"{source} [stage.{name}]")
        if st.epochs < 0 or st.batch_size <= 0 or st.lr <= 0:
            raise ConfigError(f"{source} [stage.{name}]: epochs must be >= 0, batch_size and lr > 0")
        if st.policy_init not in POLICY_INITS:
            raise ConfigError(
                f"{source} [stage.{name}]: policy_init must be one of {', '.join(map(repr, POLICY_INITS))}, got "
                f"{st.policy_init!r}"
            )
        if not st.cost_power > 0:
            raise ConfigError(
                f"{source} [stage.{name}]: cost_power must be > 0 (2 is the paper's), got {st.cost_power!r}"
            )
        if not (0.5 <= st.alpha_start <= 1 and 0.5 <= st.alpha_end <= 1):
            raise ConfigError(f"{source} [stage.{name}]: alpha_start/alpha_end must lie in [0.5, 1]")
        stages[name] = st
    sensors = []
    for name, d in dict(raw.get("sensor", {})).items():
        d = dict(d)
        aliases = SENTINEL2_BAND_ALIASES if d.pop("sentinel2_aliases", False) else {}
        sensors.append(
            SensorMapping(
                name=name,
                scale=float(d.pop("scale")),
                offset=per_band(d.pop("offset", 0.0)),
                gain=per_band(d.pop("gain", 1.0)),
                bands=tuple(d.pop("bands", ("red", "green", "blue"))),
                band_aliases=aliases,
                note=str(d.pop("note", "")),
            )
        )
        if d:
            raise ConfigError(f"{source} [sensor.{name}]: unknown key(s) {', '.join(sorted(d))}")
        for key in ("offset", "gain"):
            v = getattr(sensors[-1], key)
            if isinstance(v, tuple) and len(v) != len(sensors[-1].bands):
                raise ConfigError(
                    f"{source} [sensor.{name}]: {key} has {len(v)} values for {len(sensors[-1].bands)} bands: give "
                    f"one number or one per band"
                )
    return TrainConfig(
        name=str(raw.get("name", Path(source).stem if source else "recipe")),
        model=model,
        data=data,
        stages=stages,
        sensors=tuple(sensors),
        seed=int(raw.get("seed", 0)),
        eval_batch_size=int(raw.get("eval_batch_size", 256)),
        source=source,
        raw=dict(raw),
    )


def load_config(path_or_name: str | Path) -> TrainConfig:
    """Load a recipe from a TOML path, or by name (``joint``, ``fmow``, ``ucmerced``) from the packaged configs."""
    p = Path(path_or_name)
    if not p.suffix and not p.exists():
        packaged = resources.files("zoomplan.configs") / f"{p.name}.toml"
        if not packaged.is_file():
            raise ConfigError(
                f"no recipe named {str(path_or_name)!r}: pass a TOML path or one of joint, fmow, ucmerced"
            )
        text, source = packaged.read_text(encoding="utf-8"), f"configs/{p.name}.toml"
    else:
        if not p.is_file():
            raise ConfigError(f"config {p} not found: pass --config PATH to a TOML recipe (see configs/)")
        text, source = p.read_text(encoding="utf-8"), str(p)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source} is not valid TOML ({exc}): fix the file") from exc
    return parse_config(raw, source)
