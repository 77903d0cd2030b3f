"""Typed schema of the pipeline configs. This module is the only place defaults live.

A config is a YAML file with the sections ``run``, ``data``, ``teacher``, ``students``, ``distill``,
``hls`` and ``budget``. Every section rejects unknown keys; a bad key, type or value becomes a
:class:`~kd_trigger.errors.ConfigError` that names the dotted key, the value and what is allowed.
"""

from __future__ import annotations

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
    ValidationInfo,
    field_validator,
    model_validator,
)

from kd_trigger.errors import ConfigError
from kd_trigger.fixed import FixedType
from kd_trigger.runs import file_problem

DEFAULT_CONFIG = Path("configs/default.yaml")

RESERVED_FIRMWARE_NAMES = ("report.md", "report.html", "report_plots", "best")
"""What ``firmware/<run>/`` holds besides one folder per student (the report and scan stages' outputs): a
student of one of these names would share its folder with them, and a stage would replace it."""

RESERVED_ARTIFACT_NAMES = ("data", "teachers", "students", "stages", "scan", "study")
"""The folders of ``artifacts/<run>/``: reserved too, since ``run.artifacts_dir`` and ``run.firmware_dir``
may be the same folder."""

RESERVED_NAMES = (*RESERVED_FIRMWARE_NAMES, *RESERVED_ARTIFACT_NAMES)

PARTICLE_FEATURES = ("log_pt", "log_e", "pt_rel", "e_rel", "deta", "dphi", "dr")
"""Per-particle student features, in the order they are stacked (see kd_trigger.data.features)."""


class _Section(BaseModel):
    # Every float must be finite: an infinite clock period or a NaN learning rate is never meant, and
    # JSON outputs could not even hold it.
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False)


class RunConfig(_Section):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)] = "default"
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 42
    # An empty folder name would put the run's folders into the working directory, unannounced.
    artifacts_dir: Annotated[str, Field(min_length=1)] = "artifacts"
    firmware_dir: Annotated[str, Field(min_length=1)] = "firmware"


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


MAX_N_JETS = 10_000_000
"""Five times the public Top Quark Tagging sample (2M jets); ~32 GB of constituents, assembled in memory."""


class DataConfig(_Section):
    path: str | None = None
    """An existing file (own or Top Quark Tagging layout). None: generate artifacts/<run>/data/jets.h5."""
    n_jets: Annotated[int, Field(ge=2, le=MAX_N_JETS)] = 60_000
    """At most :data:`MAX_N_JETS`: the file is assembled in memory (~3.2 kB per jet at 200 constituents)."""
    max_constituents: Annotated[int, Field(ge=1, le=1000)] = 200
    workers: Annotated[int, Field(ge=1)] | None = None
    split: SplitConfig = SplitConfig()
    generator: GeneratorConfig = GeneratorConfig()


class TeacherSpec(_Section):
    """One teacher: a LorentzNet (dense or k-nearest-neighbour edges), a Particle-Flow network, or a file.

    The defaults are the measured recipe of the dense 16-particle LorentzNet (3 x 32, 21,157
    parameters): masked batch norm, AdamW (weight decay 0.01), head dropout 0.2, 2 warm-up epochs then
    cosine decay, global gradient-norm clip 1.0, 23 epochs, the best validation AUC kept. Measured on the
    default 60k jets (2 CPU cores, load 4-5): test AUC 0.9814-0.9816, 1/eps_B(30%) 529-900 (+-30-40%),
    ~5-7 min; the previous recipe (Adam, no batch norm) gave AUC 0.977, 1/eps_B(30%) 214. Batch norm is
    the ingredient that matters (alone: AUC 0.9812); removing any one of the others changed nothing
    beyond the noise. The 64-particle teacher that reached AUC 0.987 in 10 min: ``n_particles=64,
    neighbours=8, epochs=16, warmup_epochs=1`` (same 21k parameters).
    """

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$", max_length=48)] = "lorentznet16"
    kind: Literal["lorentznet", "particle_flow", "path"] = "lorentznet"
    path: str | None = None
    """kind "path" only: a saved Keras model taking (N, n_particles, 4) scaled 4-vectors."""
    n_particles: Annotated[int, Field(ge=2, le=200)] = 16
    # LorentzNet shape
    n_layers: Annotated[int, Field(ge=1, le=12)] = 3
    hidden: Annotated[int, Field(ge=2, le=512)] = 32
    c_weight: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] = 1e-3
    neighbours: Annotated[int, Field(ge=1)] | None = None
    """None: every pair of particles is an edge. k: each particle's k neighbours with the smallest
    Minkowski products p_i.p_j (a Lorentz-invariant choice), ~n/k times cheaper."""
    batch_norm: bool = True
    """Batch norm in the edge and node networks (LorentzNet) or the per-particle network (Particle Flow);
    its statistics run over real particles and edges only."""
    # Particle-Flow shape
    phi: tuple[Annotated[int, Field(ge=1, le=1024)], ...] = (128, 128, 128)
    """Per-particle network widths (kind particle_flow)."""
    head: tuple[Annotated[int, Field(ge=1, le=1024)], ...] = (128, 64)
    """Widths after the masked pooling (kind particle_flow; LorentzNet's head is one layer of ``hidden``)."""
    # Training
    epochs: Annotated[int, Field(ge=1, le=10_000)] = 23
    batch_size: Annotated[int, Field(ge=1)] = 256
    learning_rate: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] = 2e-3
    """Peak rate, reached after the warm-up, then cosine-decayed to zero at ``epochs``."""
    weight_decay: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] = 0.01
    """Decoupled (AdamW) weight decay; 0 is plain Adam."""
    warmup_epochs: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 2.0
    dropout: Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)] = 0.2
    """Dropout after each head layer. LorentzNet: 0.2 or 0 measured the same. Particle Flow: set 0
    (0.2 cost 0.004 in AUC: 0.9837 against 0.9874)."""
    clip_norm: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = 1.0
    """Global gradient-norm clip; None: no clipping."""
    patience: Annotated[int, Field(ge=1)] = 8
    """Stop after this many epochs without a better validation AUC."""
    jit_compile: bool = False
    """XLA-compile the training step."""

    @model_validator(mode="after")
    def _consistent(self) -> TeacherSpec:
        if (self.kind == "path") != (self.path is not None):
            raise ValueError('path is required when kind is "path", and only then')
        if self.neighbours is not None and self.neighbours >= self.n_particles:
            raise ValueError(f"neighbours ({self.neighbours}) must be below n_particles ({self.n_particles})")
        if self.warmup_epochs >= self.epochs:
            raise ValueError(f"warmup_epochs ({self.warmup_epochs:g}) must be below epochs ({self.epochs})")
        if not self.phi or not self.head:
            raise ValueError("phi and head need at least one layer each")
        return self


QUANT_LAYER_FIELDS = (
    "weight_bits",
    "weight_int",
    "bias_bits",
    "bias_int",
    "activation_bits",
    "activation_int",
)
"""The fields of ``quant`` that one layer may override (``students[].quant.layers.<layer>``)."""


class LayerQuantConfig(_Section):
    """Widths of one layer that differ from the student's ``quant`` (None: the student's own).

    On a weight layer (``dense_i``, ``phi_i``, ``rho_i``, ``output``): its kernel (``weight_*``) and bias
    (``bias_*``) quantizers, and ``activation_*`` for the quantized ReLU right after it (``relu_i``,
    ``phi_relu_i``, ``rho_relu_i``; ``output`` has none). On an activation layer: ``activation_*`` only.
    """

    weight_bits: Annotated[int, Field(ge=2, le=16)] | None = None
    weight_int: Annotated[int, Field(ge=0, le=8)] | None = None
    bias_bits: Annotated[int, Field(ge=2, le=16)] | None = None
    bias_int: Annotated[int, Field(ge=0, le=8)] | None = None
    activation_bits: Annotated[int, Field(ge=2, le=16)] | None = None
    activation_int: Annotated[int, Field(ge=0, le=8)] | None = None

    def overrides(self) -> dict[str, int]:
        """The fields this entry sets."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class QuantConfig(_Section):
    """Fixed-point widths of a student: ``bits`` total, ``int`` integer bits (sign excluded).

    A QKeras ``quantized_bits(bits, int, alpha=1)`` maps to ``ap_fixed<bits, int + 1>``;
    ``quantized_relu(bits, int)`` maps to ``ap_ufixed<bits, int>``. ``layers`` overrides the widths of
    single layers by name (see :class:`LayerQuantConfig`; the names are ``StudentConfig.layer_pairs``).
    """

    input_bits: Annotated[int, Field(ge=2, le=32)] = 12
    input_int: Annotated[int, Field(ge=0, le=16)] = 4
    weight_bits: Annotated[int, Field(ge=2, le=16)] = 8
    weight_int: Annotated[int, Field(ge=0, le=8)] = 1
    bias_bits: Annotated[int, Field(ge=2, le=16)] = 8
    bias_int: Annotated[int, Field(ge=0, le=8)] = 3
    activation_bits: Annotated[int, Field(ge=2, le=16)] = 8
    activation_int: Annotated[int, Field(ge=0, le=8)] = 3
    layers: dict[str, LayerQuantConfig] = Field(default_factory=dict)
    """Per-layer overrides, keyed by the student's layer names (checked against the student)."""

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
    teacher: str | None = None
    """Name of the teacher (``teachers[].name``) this student learns from; None: the first teacher."""
    temperature: Annotated[float, Field(gt=0, le=100)] | None = None
    """KD temperature T for this student; None: ``distill.temperature``."""
    kd_weight: Annotated[float, Field(ge=0, le=1)] | None = None
    """KD weight w for this student; None: ``distill.kd_weight``."""
    sparsity: Annotated[float, Field(ge=0, lt=1)] = 0.0
    """Fraction of the kernel weights of every QDense/QConv1D pruned to exact zeros during training
    (tensorflow-model-optimization's magnitude pruning, polynomial schedule); 0: no pruning."""
    sparsity_begin: Annotated[float, Field(ge=0, lt=1)] = 0.0
    """Pruning starts after this fraction of ``distill.epochs`` (the epoch cap), at an epoch boundary."""
    sparsity_end: Annotated[float, Field(gt=0, le=1)] = 0.5
    """Pruning reaches ``sparsity`` at the end of this fraction of ``distill.epochs``; the mask is fixed
    from then on, and early stopping only keeps an epoch from then on (never a less sparse one)."""

    @model_validator(mode="after")
    def _schedule_and_layers(self) -> StudentConfig:
        if self.sparsity_begin >= self.sparsity_end:
            raise ValueError(
                f"student '{self.name}': sparsity_begin ({self.sparsity_begin:g}) must be below "
                f"sparsity_end ({self.sparsity_end:g})"
            )
        pairs = self.layer_pairs()
        valid = [n for pair in pairs for n in pair if n is not None]
        overrides = self.quant.layers
        for layer, entry in overrides.items():
            key = f"quant.layers.{layer}"
            if layer not in valid:
                raise ValueError(
                    f"student '{self.name}': {key} names no layer of this student; valid names: {', '.join(valid)}"
                )
            weight_layer, activation = next(p for p in pairs if layer in p)
            set_fields = entry.overrides()
            if layer == activation:
                wrong = [f for f in set_fields if not f.startswith("activation_")]
                if wrong:
                    raise ValueError(
                        f"student '{self.name}': {key} is an activation layer; only activation_bits / "
                        f"activation_int apply, got {', '.join(wrong)} (set them on {key[: -len(layer)]}{weight_layer})"
                    )
                both = weight_layer in overrides and any(
                    f.startswith("activation_") for f in overrides[weight_layer].overrides()
                )
                if both:
                    raise ValueError(
                        f"student '{self.name}': the activation after {weight_layer} is set twice, by "
                        f"quant.layers.{weight_layer} and {key}; keep one"
                    )
            elif activation is None and any(f.startswith("activation_") for f in set_fields):
                raise ValueError(
                    f"student '{self.name}': {key}: layer {layer} has no activation after it (the logits are "
                    "the accumulator); drop activation_bits / activation_int"
                )
            try:
                self.layer_quant(layer)
            except ValidationError as err:
                msg = re.sub(r"^Value error, ", "", err.errors()[0]["msg"])
                raise ValueError(f"student '{self.name}': {key}: {msg}") from None
        return self

    def layer_pairs(self) -> list[tuple[str, str | None]]:
        """(weight layer, the quantized ReLU after it or None) in order, named as the built model names them."""
        if self.kind == "mlp":
            body = [(f"dense_{i}", f"relu_{i}") for i in range(len(self.hidden))]
        else:
            body = [(f"phi_{i}", f"phi_relu_{i}") for i in range(len(self.hidden))]
            body += [(f"rho_{i}", f"rho_relu_{i}") for i in range(len(self.head))]
        return [*body, ("output", None)]

    def layer_quant(self, layer: str) -> QuantConfig:
        """The widths of ``layer`` (a weight layer or an activation): ``quant`` with the overrides of its
        weight layer and of the activation after it (no ``layers`` of its own)."""
        pair = next((p for p in self.layer_pairs() if layer in p), None)
        if pair is None:
            raise KeyError(f"student '{self.name}' has no layer {layer!r}")
        merged = self.quant.model_dump(exclude={"layers"})
        for name in pair:
            if name is not None and name in self.quant.layers:
                merged.update(self.quant.layers[name].overrides())
        return QuantConfig.model_validate(merged)

    def override_key(self, layer: str) -> str | None:
        """The dotted config key that sets ``layer``'s widths, if an override does (for error messages)."""
        pair = next((p for p in self.layer_pairs() if layer in p), (layer,))
        for name in pair:
            if name is not None and name in self.quant.layers:
                return f"students[name={self.name}].quant.layers.{name}"
        return None

    ii_cycles: Annotated[int, Field(ge=1)] | None = None
    """Deep Sets only: fold the firmware over this many clock cycles (II = k; see ``hls.ii_cycles``).
    None: ``hls.ii_cycles``, else the budget's rule (:func:`fold_ii_cycles`)."""

    @field_validator("ii_cycles")
    @classmethod
    def _foldable(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is None or value == 1:
            return value
        if info.data.get("kind") == "mlp":
            raise ValueError(
                f"only a Deep Sets student (kind deepsets) can be folded over {value} cycles; an MLP has no "
                "per-particle network to share (leave ii_cycles out or set 1)"
            )
        n = info.data.get("n_particles")
        if n is not None and value > n:
            raise ValueError(f"ii_cycles {value} is above n_particles ({n}): at most one particle per cycle")
        return value

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
    temperature: Annotated[float, Field(gt=0, le=100)] = 2.0
    kd_weight: Annotated[float, Field(ge=0, le=1)] = 0.9
    """w in (1 - w) * CE + w * T^2 * KL."""
    epochs: Annotated[int, Field(ge=1)] = 400
    """A cap; early stopping (``patience``) ends training. Students are cheap (~0.6 s per epoch on 36k
    jets). Deep Sets converges slowly: at a cap of 150 its best epochs were 141-150 and distillation
    looked useless (R30 ratio 0.85 [0.69, 1.00] from lorentznet16, T=2, w=0.9); trained until the
    validation loss stops improving (best epochs ~150-400) the same setting gave 1.50 [1.20, 1.85]
    (the default study, 3 seeds)."""
    batch_size: Annotated[int, Field(ge=1)] = 256
    learning_rate: Annotated[float, Field(gt=0, le=1)] = 2e-3
    patience: Annotated[int, Field(ge=1)] = 20
    monitor: Literal["loss", "ce", "accuracy"] = "loss"
    """Early stopping quantity on the validation split: the model's own objective ("loss"),
    the cross-entropy with the labels ("ce") or accuracy."""
    train_fraction: Annotated[float, Field(gt=0, le=1)] = 1.0
    """Train on this fraction of the training split (low-data studies)."""
    boost_betas: tuple[Annotated[float, Field(ge=0, lt=1)], ...] = tuple(round(0.1 * i, 1) for i in range(10))
    rejection_bootstrap: Annotated[int, Field(ge=0, le=10_000)] = 200


def _check_type(value: str | None) -> str | None:
    if value is None:
        return None
    FixedType.parse(value)  # ValueError names the accepted spelling
    return value


class LayerHlsConfig(_Section):
    """hls4ml's per-layer settings for one layer name (of any student or model that has it)."""

    reuse_factor: Annotated[int, Field(ge=1)] | None = None
    precision: str | None = None
    """For a layer WITHOUT quantizers only: the type of its weights and biases (ap_fixed<W,I>), instead of
    ``hls.default_precision``. A quantized layer's types always come from its quantizers."""

    _type = field_validator("precision")(classmethod(lambda cls, v: _check_type(v)))


class KdSetting(_Section):
    """One point of the study's KD grid: (1 - w) * CE + w * T^2 * KL."""

    temperature: Annotated[float, Field(gt=0, le=100)]
    kd_weight: Annotated[float, Field(gt=0, le=1)]


class StudyConfig(_Section):
    """``make study``: every student with every listed teacher, a label-only baseline and KD at each
    setting of ``grid``, over ``seeds`` seeds with the initial weights shared per seed."""

    seeds: Annotated[int, Field(ge=1, le=20)] = 3
    grid: Annotated[tuple[KdSetting, ...], Field(min_length=1)] = (
        KdSetting(temperature=1.0, kd_weight=0.7),
        KdSetting(temperature=2.0, kd_weight=0.9),
    )
    teachers: tuple[str, ...] | None = None
    """Teacher names to study (None: every configured teacher)."""
    students: tuple[str, ...] | None = None
    """Student names to study (None: every configured student)."""
    train_fractions: tuple[Annotated[float, Field(gt=0, lt=1)], ...] = (0.1, 0.3)
    """The low-data curve: the chosen setting again on these fractions of the training split."""
    select_on: Literal["rejection_at_50", "auc"] = "rejection_at_50"
    """What picks a setting (and a teacher) per student, as the mean KD/baseline ratio on the VALIDATION
    split: R30 on its ~3k background jets rests on a handful of jets and would pick noise."""
    bootstrap: Annotated[int, Field(ge=10, le=10_000)] = 200


class ScanAxes(_Section):
    """The values a design scan tries for one student kind; an axis left out keeps the student's value."""

    weight_bits: tuple[Annotated[int, Field(ge=2, le=16)], ...] | None = None
    activation_bits: tuple[Annotated[int, Field(ge=2, le=16)], ...] | None = None
    input_bits: tuple[Annotated[int, Field(ge=2, le=32)], ...] | None = None
    hidden: tuple[tuple[Annotated[int, Field(ge=1, le=1024)], ...], ...] | None = None
    head: tuple[tuple[Annotated[int, Field(ge=1, le=1024)], ...], ...] | None = None
    n_particles: tuple[Annotated[int, Field(ge=1, le=200)], ...] | None = None
    reuse_factor: tuple[Annotated[int, Field(ge=1)], ...] | None = None
    flow: tuple[Literal["hls4ml", "rtl"], ...] | None = None

    @model_validator(mode="after")
    def _non_empty(self) -> ScanAxes:
        for name, values in self:
            if values is not None and len(values) == 0:
                raise ValueError(f"axis {name} is empty; leave it out to keep the student's value")
        return self


def _default_scan_axes() -> dict[Literal["mlp", "deepsets"], ScanAxes]:
    """The default scan: weight bits x reuse factor for both students, 12 points."""
    grid = ScanAxes(weight_bits=(4, 6, 8), reuse_factor=(2, 4))
    return {"mlp": grid, "deepsets": grid}


class ScanConfig(_Section):
    """``make scan``: KD-trained, converted, exactness-gated and measured designs over ``axes``."""

    axes: dict[Literal["mlp", "deepsets"], ScanAxes] = Field(default_factory=_default_scan_axes)
    """Per student kind; the base design is the configured student of that kind. A config that sets
    ``axes`` replaces the default grid (4, 6, 8-bit weights x reuse factor 2, 4: 6 points per kind)."""
    mode: Literal["grid", "random", "lhs"] = "grid"
    points: Annotated[int, Field(ge=1)] | None = None
    """random/lhs: how many points; grid: the most points allowed (None: the whole grid)."""
    seed: Annotated[int, Field(ge=0)] = 0
    objective: Literal["auc", "rejection_at_30", "rejection_at_50"] = "auc"
    """The physics figure the Pareto fronts and the promotion of the best design use (on the test split)."""
    epochs: Annotated[int, Field(ge=1)] | None = None
    """Training epochs per point (None: distill.epochs)."""
    workers: Annotated[int, Field(ge=1, le=256)] = 2
    """Process workers of the local Dask cluster (ignored with ``scheduler``)."""
    scheduler: str | None = None
    """Address of a running Dask scheduler (tcp://host:port): the points run on its workers."""

    @field_validator("scheduler")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[a-z][a-z0-9+]*://[^/\s]+", value):
            raise ValueError("expected the address of a Dask scheduler, tcp://HOST:PORT")
        return value


class HlsConfig(_Section):
    flows: Annotated[tuple[Literal["hls4ml", "rtl"], ...], Field(min_length=1)] = ("hls4ml", "rtl")
    """Firmware flows built for every student: hls4ml's HLS C++ and/or the open-source RTL (da4ml)."""
    backend: Literal["Vitis", "Vivado"] = "Vitis"
    part: str = "xcvu13p-flga2577-2-e"
    clock_period_ns: Annotated[float, Field(gt=0)] = 5.0
    reuse_factor: Annotated[int, Field(ge=1)] = 4
    """II = 4 cycles <= 5 (a new event every 25 ns at 200 MHz); reuse 1 needs ~4x the LUTs."""
    io_type: Literal["io_parallel"] = "io_parallel"
    strategy: Literal["Latency"] = "Latency"
    min_exact_fraction: Annotated[float, Field(ge=0, le=1)] = 1.0
    csim_max_samples: Annotated[int, Field(ge=1)] | None = None
    """Simulate at most this many test jets (None: the whole test split)."""
    input_precision: str | None = None
    """The firmware input type (ap_fixed<W,I>) of a model without an input quantizer (``hls --model``)."""
    default_precision: str | None = None
    """The weight and bias type (ap_fixed<W,I>) of layers without quantizers, marked "assumed" in the
    report; the C simulation compares with the model whose weights are rounded to it the same way."""
    layers: dict[str, LayerHlsConfig] = Field(default_factory=dict)
    """Per-layer settings by layer name: reuse factor (hls4ml validates it) and precision."""
    conv_parallelization: Annotated[int, Field(ge=1)] | None = None
    """Per-particle Conv1D layers: hls4ml ParallelizationFactor, the particles computed in parallel.
    None: all of them (II = reuse_factor); hls4ml's own default, 1, gives II = n_particles x reuse_factor."""
    ii_cycles: Annotated[int, Field(ge=1)] | None = None
    """Fold every Deep Sets student over k clock cycles: its per-particle network (phi) exists
    ceil(n_particles / k) times and takes k groups of particles on k consecutive cycles, the pooled sum
    accumulates over them, rho runs once per event. RTL flow: II = k. hls4ml flow: the per-particle
    Conv1D's ParallelizationFactor (II = k x reuse_factor; see :func:`hls4ml_parallelization`).
    A student's own ``ii_cycles`` wins; MLP students are never folded. None: per flow, the cheapest
    folding whose II fits the budget profile's ``max_ii_cycles`` (:func:`fold_ii_cycles`). 1: no folding.
    Above ``max_ii_cycles`` the design is built and the budget verdict fails it (exit 3)."""
    synth: bool = False
    """Run vendor C synthesis when the tools are on PATH (``make hls SYNTH=1`` sets it too)."""
    vivado_synth: bool = False

    _types = field_validator("input_precision", "default_precision")(
        classmethod(lambda cls, v: _check_type(v))
    )

    def check_layer_names(self, names: list[str], where: str) -> None:
        """ConfigError when ``layers`` (``--reuse LAYER=R``, ``--precision LAYER=TYPE``) names a layer not
        in ``names``: an option silently ignored would give other firmware than the one asked for."""
        unknown = [name for name in self.layers if name not in names]
        if unknown:
            raise ConfigError(
                f"hls.layers (or --reuse/--precision LAYER=...) names {', '.join(repr(n) for n in unknown)}, "
                f"not a layer of {where}; its layers: {', '.join(names)}"
            )

    def csim_count(self, n_test: int) -> int:
        """How many of ``n_test`` test jets the simulations run on (``csim_max_samples`` caps it)."""
        return n_test if self.csim_max_samples is None else min(self.csim_max_samples, n_test)


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


class ResourceFractions(_Section):
    """The share of each device resource one algorithm may take (0..1); every resource must be given."""

    lut: Annotated[float, Field(ge=0, le=1)]
    ff: Annotated[float, Field(ge=0, le=1)]
    dsp: Annotated[float, Field(ge=0, le=1)]
    bram_18k: Annotated[float, Field(ge=0, le=1)]
    uram: Annotated[float, Field(ge=0, le=1)]


class PartResourcesSpec(_Section):
    """Resources of a part that kd_trigger/fpga/parts.py does not know (a budget profile's ``available``)."""

    lut: Annotated[int, Field(ge=1)]
    ff: Annotated[int, Field(ge=1)]
    dsp: Annotated[int, Field(ge=0)]
    bram_18k: Annotated[int, Field(ge=0)]
    uram: Annotated[int, Field(ge=0)]


class BudgetProfileSpec(_Section):
    """One named trigger budget of a profiles file (configs/budget.yaml)."""

    part: Annotated[str, Field(min_length=1)]
    clock_period_ns: Annotated[float, Field(gt=0)]
    max_latency_ns: Annotated[float, Field(gt=0)]
    max_ii_cycles: Annotated[int, Field(ge=1)]
    max_fraction: ResourceFractions
    available: PartResourcesSpec | None = None
    """Only for a part kd_trigger does not know; a known part's resources come from fpga/parts.py."""


class BudgetProfilesFile(_Section):
    """The whole profiles file: ``profiles:`` mapping names to :class:`BudgetProfileSpec`."""

    profiles: Annotated[dict[Annotated[str, Field(min_length=1)], BudgetProfileSpec], Field(min_length=1)]


def _default_teachers() -> tuple[TeacherSpec, ...]:
    """The two teachers of the default run (measured on the default 60k jets, 2 CPU cores):

    * ``lorentznet16``: dense LorentzNet on the students' own 16 particles; AUC 0.981, ~5 min;
    * ``lorentznet64``: LorentzNet on 64 particles with each particle's 8 nearest neighbours by Minkowski
      product (a Lorentz-invariant choice); AUC 0.987, ~10 min (a dense 64-particle one costs 31x).
    """
    return (
        TeacherSpec(name="lorentznet16"),
        TeacherSpec(name="lorentznet64", n_particles=64, neighbours=8, epochs=16, warmup_epochs=1.0),
    )


PAIRING_FIELDS = frozenset({"teacher", "temperature", "kd_weight"})
"""A student's pairing with its teacher: what ``make distill`` deploys, not what the study measures (the
study tries every teacher and (T, w) itself), so the study neither reruns nor recomputes when it changes."""


def _default_students() -> tuple[StudentConfig, ...]:
    """The two students, each paired with the teacher and setting the study chose for it (README)."""
    return (
        StudentConfig(
            name="mlp",
            kind="mlp",
            hidden=(64, 32, 32),
            teacher="lorentznet64",
            temperature=2.0,
            kd_weight=0.9,
        ),
        StudentConfig(
            name="deepsets",
            kind="deepsets",
            hidden=(32, 32),
            head=(32,),
            teacher="lorentznet16",
            temperature=2.0,
            kd_weight=0.9,
        ),
    )


class Config(_Section):
    run: RunConfig = RunConfig()
    data: DataConfig = DataConfig()
    teachers: tuple[TeacherSpec, ...] = Field(default_factory=_default_teachers)
    students: tuple[StudentConfig, ...] = Field(default_factory=_default_students)
    distill: DistillConfig = DistillConfig()
    hls: HlsConfig = HlsConfig()
    budget: BudgetConfig = BudgetConfig()
    study: StudyConfig = StudyConfig()
    scan: ScanConfig = ScanConfig()
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
        # Compared without case: on a case-insensitive file system (macOS, Windows) 'MLP' and 'mlp', or
        # 'Best' and 'best', are the same folder.
        folded = [n.casefold() for n in names]
        if len(set(folded)) != len(folded):
            raise ValueError(f"student names must differ in more than letter case, got {names}")
        reserved = {r.casefold(): r for r in RESERVED_NAMES}
        for i, name in enumerate(names):
            if name.casefold() in reserved:
                where = "firmware" if reserved[name.casefold()] in RESERVED_FIRMWARE_NAMES else "artifacts"
                raise ValueError(
                    f"students[{i}].name {name!r} is reserved: {where}/<run>/{reserved[name.casefold()]} is "
                    f"written by another stage; reserved names: {', '.join(RESERVED_NAMES)}"
                )
        return value

    @field_validator("teachers")
    @classmethod
    def _unique_teachers(cls, value: tuple[TeacherSpec, ...]) -> tuple[TeacherSpec, ...]:
        if not value:
            raise ValueError("at least one teacher is required")
        names = [t.name for t in value]
        if len(set(names)) != len(names):
            raise ValueError(f"teacher names must be unique, got {names}")
        folded = [n.casefold() for n in names]
        if len(set(folded)) != len(folded):
            raise ValueError(f"teacher names must differ in more than letter case, got {names}")
        return value

    @model_validator(mode="after")
    def _ii_fits_the_students(self) -> Config:
        k = self.hls.ii_cycles
        if k is None or k == 1:
            return self
        deepsets = [(i, s) for i, s in enumerate(self.students) if s.kind == "deepsets"]
        if not deepsets:
            raise ValueError(
                f"hls.ii_cycles {k}: folding applies to Deep Sets students only and this config has none "
                "(leave hls.ii_cycles out or set 1)"
            )
        for i, s in deepsets:
            if s.ii_cycles is None and k > s.n_particles:
                raise ValueError(
                    f"hls.ii_cycles {k} is above students[{i}].n_particles ({s.n_particles}) of "
                    f"{s.name!r}: at most one particle per cycle"
                )
        return self

    @model_validator(mode="after")
    def _students_name_teachers(self) -> Config:
        known = [t.name for t in self.teachers]
        for i, s in enumerate(self.students):
            if s.teacher is not None and s.teacher not in known:
                raise ValueError(
                    f"students[{i}].teacher {s.teacher!r} is not a configured teacher; known: {known}"
                )
        students = [s.name for s in self.students]
        for name in self.study.students or ():
            if name not in students:
                raise ValueError(
                    f"study.students names {name!r}, not a configured student; configured: {students}"
                )
        for name in self.study.teachers or ():
            if name not in known:
                raise ValueError(
                    f"study.teachers names {name!r}, not a configured teacher; configured: {known}"
                )
        return self

    def study_view(self) -> dict[str, Any]:
        """The config sections the study depends on: students without their pairing, distill without
        its (T, w), and the study section."""
        return {
            "students": [s.model_dump(mode="json", exclude=set(PAIRING_FIELDS)) for s in self.students],
            "distill": self.distill.model_dump(mode="json", exclude=set(PAIRING_FIELDS)),
            "study": self.study.model_dump(mode="json"),
        }

    # -- teachers ------------------------------------------------------------------------------------
    @property
    def teacher_specs(self) -> tuple[TeacherSpec, ...]:
        """The teachers some student learns from (an unused teacher is never trained)."""
        used = {self.teacher_of(s).name for s in self.students}
        return tuple(t for t in self.teachers if t.name in used)

    def teacher_spec(self, name: str) -> TeacherSpec:
        for t in self.teachers:
            if t.name == name:
                return t
        raise ConfigError(
            f"teachers: no teacher named {name!r}; configured: {[t.name for t in self.teachers]}"
        )

    def teacher_of(self, student: StudentConfig) -> TeacherSpec:
        """The teacher ``student`` learns from (its ``teacher`` key, else the first teacher)."""
        return self.teacher_spec(student.teacher) if student.teacher else self.teachers[0]

    def kd_setting(self, student: StudentConfig) -> tuple[float, float]:
        """(temperature, kd_weight) of ``student``: its own values, else the distill section's."""
        t = student.temperature if student.temperature is not None else self.distill.temperature
        w = student.kd_weight if student.kd_weight is not None else self.distill.kd_weight
        return t, w

    def ii_cycles_of(self, student: StudentConfig, flow: str, max_ii_cycles: int) -> int:
        """The folding k of ``student`` in ``flow`` ("rtl" or "hls4ml"); see :func:`fold_ii_cycles`."""
        return fold_ii_cycles(student, self.hls, flow, max_ii_cycles)

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

    def to_dict(self) -> dict[str, Any]:
        return _dump(self)


def fold_ii_cycles(student: StudentConfig, hls: HlsConfig, flow: str, max_ii_cycles: int) -> int:
    """How many clock cycles the firmware of ``student`` is folded over (k; 1 = fully parallel).

    An MLP: 1. A Deep Sets: its own ``ii_cycles``, else ``hls.ii_cycles`` (the same k in both flows),
    else the default rule, per flow: the II the budget leaves to the folding is ``max_ii_cycles`` in the
    RTL flow (II = k) and ``max_ii_cycles // reuse_factor`` in the hls4ml flow (II = k x reuse); with K
    that II capped at n_particles, phi needs ceil(n / K) copies, and k is the smallest II with that few
    copies, ceil(n / copies): the same LUTs at the lowest latency and with the fewest padding slots (16
    particles, II <= 5: k = 4, 4 copies; 8 particles: k = 4, 2 copies).
    """
    if student.kind != "deepsets":
        return 1
    if student.ii_cycles is not None:
        return student.ii_cycles
    if hls.ii_cycles is not None:
        return hls.ii_cycles
    if flow not in ("rtl", "hls4ml"):
        raise ValueError(f"flow {flow!r}: expected 'rtl' or 'hls4ml'")
    budget_ii = max_ii_cycles if flow == "rtl" else max_ii_cycles // hls.reuse_factor
    n = student.n_particles
    cap = max(1, min(budget_ii, n))
    copies = -(-n // cap)
    return -(-n // copies)


def hls4ml_parallelization(n_particles: int, ii_cycles: int) -> int:
    """hls4ml's ParallelizationFactor for a per-particle Conv1D folded over ``ii_cycles``: particles computed
    at once. hls4ml only builds divisors of n_particles (it silently takes the nearest one otherwise),
    so the smallest divisor with at least ceil(n / k) particles: II = (n / factor) x reuse <= k x reuse."""
    need = -(-n_particles // max(1, ii_cycles))
    return next(d for d in range(need, n_particles + 1) if n_particles % d == 0)


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


def _models_in(annotation: Any) -> list[Any]:
    """The pydantic models an annotation can hold: itself, or inside Optional/tuple/list/dict."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    out: list[Any] = []
    for arg in getattr(annotation, "__args__", ()) or ():
        out.extend(_models_in(arg))
    return out


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The valid keys of the section that holds ``loc``'s last key, for 'did you mean' messages."""
    current: Any = model
    pending_key = False  # inside a dict[str, Model]: the next loc item is a free-form key
    for item in loc[:-1]:
        if isinstance(item, int) or pending_key:
            pending_key = False
            continue
        field = current.model_fields.get(item) if hasattr(current, "model_fields") else None
        if field is None:
            return []
        ann = field.annotation
        pending_key = getattr(ann, "__origin__", None) is dict
        models = _models_in(ann)
        if not models:
            return []
        current = models[0]
    return sorted(current.model_fields) if hasattr(current, "model_fields") else []


def format_validation_error(err: ValidationError, source: str, model: type[BaseModel] | None = None) -> str:
    """One line naming the first offending dotted key, its value and what is allowed."""
    first = err.errors()[0]
    loc = tuple(first["loc"])
    key = _loc(loc)
    value = first.get("input")
    if first["type"] == "extra_forbidden":
        allowed = _allowed_keys(model or Config, loc)
        return f"{source}: unknown key '{key}'; allowed keys here: {', '.join(allowed)}"
    if first["type"] == "missing":
        return f"{source}: required key '{key}' is missing"
    msg = re.sub(r"^Value error, ", "", first["msg"])
    shown = value if not isinstance(value, dict) or not value else "{...}"
    return f"{source}: invalid value for '{key}' ({shown!r}): {msg}"


def _non_string_key(node: Any, loc: tuple[Any, ...] = ()) -> tuple[Any, ...] | None:
    """The location of the first mapping key that is not text (YAML reads ``1:`` or ``yes:`` as others)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if not isinstance(key, str):
                return (*loc, key)
            found = _non_string_key(value, (*loc, key))
            if found is not None:
                return found
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found = _non_string_key(value, (*loc, i))
            if found is not None:
                return found
    return None


def parse_config(raw: Any, source: str = "config") -> Config:
    """Validate a mapping (as read from YAML) into a :class:`Config`."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of sections, got {type(raw).__name__}")
    odd = _non_string_key(raw)
    if odd is not None:
        allowed = _allowed_keys(Config, odd)
        listed = f"; allowed keys here: {', '.join(allowed)}" if allowed else "; keys are names (text)"
        prefix = _loc(odd[:-1]) if odd[:-1] else ""
        key = f"{prefix}.{odd[-1]}" if prefix else str(odd[-1])
        raise ConfigError(f"{source}: unknown key '{key}' (a {type(odd[-1]).__name__}){listed}")
    try:
        return Config.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, source)) from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses a key given twice in one mapping.

    PyYAML keeps the last of two equal keys, so a second ``data:`` section silently hides the first
    one (and any typo in it); a config must say everything once.
    """

    def compose_node(self, parent: Any, index: Any) -> Any:
        # An alias repeats a value without copying it: ten levels of ten aliases are 10^10 values to
        # every reader that walks them (a "billion laughs"). A config is short enough to write out.
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None,
                None,
                f"YAML aliases (*{event.anchor}) are not accepted in config files; write the value out",
                event.start_mark,
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, list | dict):
                continue  # unhashable keys are reported by the base class
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"key {key!r} appears twice (lines {seen[key] + 1} and {key_node.start_mark.line + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def read_text_utf8(path: Path, what: str = "file") -> str:
    """The text of ``path``; a missing, unreadable or non-UTF-8 file is a one-line ConfigError."""
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise ConfigError(f"{what} {path} is a directory, not a file") from None
    except OSError as err:
        raise ConfigError(f"{what} {path} cannot be read: {err.strerror or err}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise ConfigError(
            f"{path}: not UTF-8 text (byte 0x{data[err.start]:02x} at line {line}); save the file as UTF-8"
        ) from None


def read_yaml(path: Path, what: str = "config file") -> Any:
    """Parse a YAML file (UTF-8, no duplicate keys); any problem is a one-line ConfigError naming the file."""
    text = read_text_utf8(Path(path), what)
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: not valid YAML{where}: {getattr(err, 'problem', err)}") from None


EXTENDS_KEY = "extends"
"""Top-level key of a config that names the config it overrides (a path relative to the file)."""


def merge_overrides(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` on top of ``base``: mappings merge key by key, anything else (lists too) replaces."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_overrides(out[key], value)
        else:
            out[key] = value
    return out


MAX_EXTENDS_DEPTH = 32
"""The longest ``extends:`` chain read: a real setup has two or three levels; a longer chain is a mistake
(and each level is one more file a reader must follow)."""


def _resolve_extends(path: Path) -> dict[str, Any]:
    """The raw mapping of ``path`` with its ``extends:`` chain applied (the base first).

    The chain is followed in a loop, not by recursion, and at most :data:`MAX_EXTENDS_DEPTH` files deep.
    """
    layers: list[dict[str, Any]] = []
    chain: list[Path] = []
    current = path
    while True:
        resolved = current.resolve()
        if resolved in chain:
            cycle = " -> ".join(str(p) for p in (*chain, resolved))
            raise ConfigError(f"{path}: '{EXTENDS_KEY}' forms a cycle: {cycle}")
        if len(chain) >= MAX_EXTENDS_DEPTH:
            raise ConfigError(
                f"{path}: the '{EXTENDS_KEY}' chain is more than {MAX_EXTENDS_DEPTH} files deep (stopped at "
                f"{current}); merge some of the files"
            )
        chain.append(resolved)
        raw = read_yaml(current)
        raw = {} if raw is None else raw
        if not isinstance(raw, dict):
            raise ConfigError(
                f"{current}: the top level must be a mapping of sections, got {type(raw).__name__}"
            )
        parent = raw.pop(EXTENDS_KEY, None)
        layers.append(raw)
        if parent is None:
            break
        if not isinstance(parent, str) or not parent:
            raise ConfigError(
                f"{current}: '{EXTENDS_KEY}' must be the path of another config, got {parent!r}"
            )
        base_path = (current.parent / parent) if not Path(parent).is_absolute() else Path(parent)
        problem = file_problem(base_path)
        if problem is not None:
            raise ConfigError(f"{current}: '{EXTENDS_KEY}: {parent}' names {base_path}, which {problem}")
        current = base_path
    merged: dict[str, Any] = {}
    for raw in reversed(layers):
        merged = merge_overrides(merged, raw)
    return merged


def apply_overrides(cfg: Config, overrides: dict[str, Any], source: str) -> Config:
    """``cfg`` with dotted-key overrides (``data.n_jets``) applied, validated again as a whole.

    The file is validated first, so a malformed file is reported as such and never half-patched; the
    overridden config then goes through the same schema, so an override is checked like a file value.
    """
    wanted = {k: v for k, v in overrides.items() if v is not None}
    if not wanted:
        return cfg
    raw = cfg.to_dict()
    for dotted, value in wanted.items():
        node = raw
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node[p]
        node[leaf] = value
    return parse_config(raw, f"{source} (with command-line overrides)")


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> Config:
    """Read and validate a YAML config (its ``extends:`` chain first), then apply ``overrides``.

    ``overrides`` maps dotted keys (``data.n_jets``) to values; None values are ignored.
    """
    path = Path(path)
    problem = file_problem(path)
    if problem is not None:
        raise ConfigError(
            f"config file {path} {problem}; pass CONFIG=path/to.yaml (e.g. configs/default.yaml)"
        )
    cfg = parse_config(_resolve_extends(path), str(path))
    cfg = apply_overrides(cfg, overrides or {}, str(path))
    cfg._source = str(path)
    return cfg
