"""Typed schema of the pipeline configs. This module is the only place defaults live.

A config is a YAML file with the sections ``run``, ``data``, ``teacher``, ``students``, ``distill``,
``hls`` and ``budget``. Every section rejects unknown keys; a bad key, type or value becomes a
:class:`~kd_trigger.errors.ConfigError` that names the dotted key, the value and what is allowed.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from kd_trigger.errors import ConfigError

DEFAULT_CONFIG = Path("configs/default.yaml")

PARTICLE_FEATURES = ("log_pt", "log_e", "pt_rel", "e_rel", "deta", "dphi", "dr")
"""Per-particle student features, in the order they are stacked (see kd_trigger.data.features)."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class RunConfig(_Section):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)] = "default"
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 42
    artifacts_dir: str = "artifacts"
    firmware_dir: str = "firmware"


class SplitConfig(_Section):
    """Fractions of the jets in each split; assignment is deterministic from ``run.seed``."""

    train: Annotated[float, Field(gt=0, lt=1)] = 0.6
    val: Annotated[float, Field(gt=0, lt=1)] = 0.1
    test: Annotated[float, Field(gt=0, lt=1)] = 0.3

    @model_validator(mode="after")
    def _sums_to_one(self) -> SplitConfig:
        total = self.train + self.val + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"train + val + test must be 1, got {total:g}")
        return self


class GeneratorConfig(_Section):
    """Pythia 8 + FastJet settings, following the Top Quark Tagging reference recipe."""

    sqrt_s_gev: Annotated[float, Field(gt=0)] = 14000.0
    pthat_min_gev: Annotated[float, Field(ge=0)] = 500.0
    mpi: bool = False
    jet_radius: Annotated[float, Field(gt=0, le=2.0)] = 0.8
    jet_pt_min_gev: Annotated[float, Field(gt=0)] = 550.0
    jet_pt_max_gev: Annotated[float, Field(gt=0)] = 650.0
    jet_abs_eta_max: Annotated[float, Field(gt=0)] = 2.0
    top_match_dr: Annotated[float, Field(gt=0)] = 0.8
    chunk_jets: Annotated[int, Field(ge=1, le=100_000)] = 250

    @model_validator(mode="after")
    def _pt_window(self) -> GeneratorConfig:
        if self.jet_pt_max_gev <= self.jet_pt_min_gev:
            raise ValueError("jet_pt_max_gev must be above jet_pt_min_gev")
        return self


class DataConfig(_Section):
    path: str | None = None
    """An existing file (own or Top Quark Tagging layout). None: generate artifacts/<run>/data/jets.h5."""
    n_jets: Annotated[int, Field(ge=2)] = 60_000
    max_constituents: Annotated[int, Field(ge=1, le=1000)] = 200
    workers: Annotated[int, Field(ge=1)] | None = None
    split: SplitConfig = SplitConfig()
    generator: GeneratorConfig = GeneratorConfig()


class TeacherConfig(_Section):
    """A LorentzNet-style teacher, or ``path`` to any saved Keras model with the same inputs."""

    path: str | None = None
    n_particles: Annotated[int, Field(ge=2, le=200)] = 16
    n_layers: Annotated[int, Field(ge=1, le=12)] = 3
    hidden: Annotated[int, Field(ge=2, le=512)] = 32
    c_weight: Annotated[float, Field(gt=0)] = 1e-3
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.0
    epochs: Annotated[int, Field(ge=1)] = 20
    batch_size: Annotated[int, Field(ge=1)] = 256
    learning_rate: Annotated[float, Field(gt=0)] = 1e-3
    patience: Annotated[int, Field(ge=1)] = 4


class QuantConfig(_Section):
    """Fixed-point widths of a student: ``bits`` total, ``int`` integer bits (sign excluded).

    A QKeras ``quantized_bits(bits, int, alpha=1)`` maps to ``ap_fixed<bits, int + 1>``;
    ``quantized_relu(bits, int)`` maps to ``ap_ufixed<bits, int>``.
    """

    input_bits: Annotated[int, Field(ge=2, le=32)] = 12
    input_int: Annotated[int, Field(ge=0, le=16)] = 4
    weight_bits: Annotated[int, Field(ge=2, le=16)] = 8
    weight_int: Annotated[int, Field(ge=0, le=8)] = 1
    bias_bits: Annotated[int, Field(ge=2, le=16)] = 8
    bias_int: Annotated[int, Field(ge=0, le=8)] = 3
    activation_bits: Annotated[int, Field(ge=2, le=16)] = 8
    activation_int: Annotated[int, Field(ge=0, le=8)] = 3

    @model_validator(mode="after")
    def _int_fits(self) -> QuantConfig:
        for kind in ("input", "weight", "bias", "activation"):
            bits, integer = getattr(self, f"{kind}_bits"), getattr(self, f"{kind}_int")
            if integer >= bits:
                raise ValueError(f"{kind}_int ({integer}) must be below {kind}_bits ({bits})")
        return self


class StudentConfig(_Section):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$", max_length=48)]
    kind: Literal["mlp", "deepsets"]
    n_particles: Annotated[int, Field(ge=1, le=200)] = 16
    features: tuple[str, ...] = PARTICLE_FEATURES
    hidden: tuple[Annotated[int, Field(ge=1, le=1024)], ...] = (64, 32, 32)
    """MLP: the hidden widths. Deep Sets: the per-particle (phi) widths."""
    head: tuple[Annotated[int, Field(ge=1, le=1024)], ...] = (32,)
    """Deep Sets only: widths of the dense layers after pooling (rho)."""
    quant: QuantConfig = QuantConfig()
    max_weight_bits: Annotated[int, Field(ge=1)] | None = 2_000_000
    """Bit budget of the student: parameters x their widths must stay below it."""

    @field_validator("features")
    @classmethod
    def _known_features(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [f for f in value if f not in PARTICLE_FEATURES]
        if unknown or not value:
            raise ValueError(f"unknown feature(s) {unknown}; allowed: {list(PARTICLE_FEATURES)}")
        if len(set(value)) != len(value):
            raise ValueError("features must not repeat")
        return value


class DistillConfig(_Section):
    temperature: Annotated[float, Field(gt=0)] = 2.0
    kd_weight: Annotated[float, Field(ge=0, le=1)] = 0.9
    """w in (1 - w) * CE + w * T^2 * KL."""
    epochs: Annotated[int, Field(ge=1)] = 60
    batch_size: Annotated[int, Field(ge=1)] = 256
    learning_rate: Annotated[float, Field(gt=0)] = 2e-3
    patience: Annotated[int, Field(ge=1)] = 10
    monitor: Literal["loss", "ce", "accuracy"] = "loss"
    """Early stopping quantity on the validation split: the model's own objective ("loss"),
    the cross-entropy with the labels ("ce") or accuracy."""
    train_fraction: Annotated[float, Field(gt=0, le=1)] = 1.0
    """Train on this fraction of the training split (low-data studies)."""
    boost_betas: tuple[Annotated[float, Field(ge=0, lt=1)], ...] = tuple(round(0.1 * i, 1) for i in range(10))
    rejection_bootstrap: Annotated[int, Field(ge=0, le=10_000)] = 200


class HlsConfig(_Section):
    backend: Literal["Vitis", "Vivado"] = "Vitis"
    part: str = "xcvu13p-flga2577-2-e"
    clock_period_ns: Annotated[float, Field(gt=0)] = 5.0
    reuse_factor: Annotated[int, Field(ge=1)] = 1
    io_type: Literal["io_parallel"] = "io_parallel"
    strategy: Literal["Latency"] = "Latency"
    min_exact_fraction: Annotated[float, Field(ge=0, le=1)] = 1.0
    csim_max_samples: Annotated[int, Field(ge=1)] | None = None
    """Simulate at most this many test jets (None: the whole test split)."""
    conv_parallelization: Annotated[int, Field(ge=1)] | None = None
    """Per-particle Conv1D layers: hls4ml ParallelizationFactor, the particles computed in parallel.
    None: all of them (II = reuse_factor); hls4ml's own default, 1, gives II = n_particles x reuse_factor."""
    synth: bool = False
    """Run vendor C synthesis when the tools are on PATH (``make hls SYNTH=1`` sets it too)."""
    vivado_synth: bool = False


class BudgetOverrides(_Section):
    part: str | None = None
    clock_period_ns: Annotated[float, Field(gt=0)] | None = None
    max_latency_ns: Annotated[float, Field(gt=0)] | None = None
    max_ii_cycles: Annotated[int, Field(ge=1)] | None = None
    max_fraction: (
        dict[Literal["lut", "ff", "dsp", "bram_18k", "uram"], Annotated[float, Field(ge=0, le=1)]] | None
    ) = None


class BudgetConfig(_Section):
    profiles: str = "configs/budget.yaml"
    profile: str = "l1_jet_tagger_vu13p"
    overrides: BudgetOverrides = BudgetOverrides()


def _default_students() -> tuple[StudentConfig, ...]:
    return (
        StudentConfig(name="mlp", kind="mlp", hidden=(64, 32, 32)),
        StudentConfig(name="deepsets", kind="deepsets", hidden=(32, 32), head=(32,)),
    )


class Config(_Section):
    run: RunConfig = RunConfig()
    data: DataConfig = DataConfig()
    teacher: TeacherConfig = TeacherConfig()
    students: tuple[StudentConfig, ...] = Field(default_factory=_default_students)
    distill: DistillConfig = DistillConfig()
    hls: HlsConfig = HlsConfig()
    budget: BudgetConfig = BudgetConfig()
    _source: str | None = PrivateAttr(default=None)

    @property
    def source(self) -> str | None:
        """The YAML file this config was read from (None when built in code)."""
        return self._source

    @field_validator("students")
    @classmethod
    def _unique_names(cls, value: tuple[StudentConfig, ...]) -> tuple[StudentConfig, ...]:
        if not value:
            raise ValueError("at least one student is required")
        names = [s.name for s in value]
        if len(set(names)) != len(names):
            raise ValueError(f"student names must be unique, got {names}")
        return value

    # -- where things go -------------------------------------------------------------------------
    @property
    def artifacts(self) -> Path:
        return Path(self.run.artifacts_dir) / self.run.name

    @property
    def firmware(self) -> Path:
        return Path(self.run.firmware_dir) / self.run.name

    @property
    def data_path(self) -> Path:
        """The jet file this run reads: ``data.path`` if given, else the generated file."""
        return Path(self.data.path) if self.data.path else self.artifacts / "data" / "jets.h5"

    def student(self, name: str) -> StudentConfig:
        for s in self.students:
            if s.name == name:
                return s
        raise ConfigError(
            f"students: no student named {name!r}; configured: {[s.name for s in self.students]}"
        )

    def section_hash(self, *sections: str) -> str:
        """A short digest of the named sections, used to tell whether a stage's outputs are up to date."""
        payload = {s: _dump(getattr(self, s)) for s in sections}
        # The number of worker processes never changes the bytes produced, so it must not make a run stale.
        if "data" in payload:
            payload["data"].pop("workers", None)
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return _dump(self)


def _dump(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, tuple):
        return [_dump(v) for v in value]
    return value


def _loc(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts) or "<top level>"


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The valid keys of the section that holds ``loc``'s last key, for 'did you mean' messages."""
    current: Any = model
    for item in loc[:-1]:
        if isinstance(item, int):
            continue
        field = current.model_fields.get(item) if hasattr(current, "model_fields") else None
        if field is None:
            return []
        ann = field.annotation
        args = getattr(ann, "__args__", ()) or ()
        candidates = [ann, *args]
        current = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if current is None:
            return []
    return sorted(current.model_fields) if hasattr(current, "model_fields") else []


def format_validation_error(err: ValidationError, source: str) -> str:
    """One line naming the first offending dotted key, its value and what is allowed."""
    first = err.errors()[0]
    loc = tuple(first["loc"])
    key = _loc(loc)
    value = first.get("input")
    if first["type"] == "extra_forbidden":
        allowed = _allowed_keys(Config, loc)
        return f"{source}: unknown key '{key}'; allowed keys here: {', '.join(allowed)}"
    msg = re.sub(r"^Value error, ", "", first["msg"])
    shown = value if not isinstance(value, dict) else "{...}"
    return f"{source}: invalid value for '{key}' ({shown!r}): {msg}"


def parse_config(raw: Any, source: str = "config") -> Config:
    """Validate a mapping (as read from YAML) into a :class:`Config`."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of sections, got {type(raw).__name__}")
    try:
        return Config.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, source)) from None


def read_yaml(path: Path) -> Any:
    """Parse a YAML file; a syntax error becomes a one-line ConfigError naming the file and line."""
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: not valid YAML{where}: {getattr(err, 'problem', err)}") from None


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> Config:
    """Read and validate a YAML config. ``overrides`` maps dotted keys (``data.n_jets``) to values."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"config file {path} does not exist; pass CONFIG=path/to.yaml (e.g. configs/default.yaml)"
        )
    raw = read_yaml(path)
    raw = raw if raw is not None else {}
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        node = raw
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    cfg = parse_config(raw, str(path))
    cfg._source = str(path)
    return cfg
