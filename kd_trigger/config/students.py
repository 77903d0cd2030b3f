"""One entry of the ``students`` list: the QKeras student, its fixed-point widths and its teacher pairing."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator

from kd_trigger.config.base import Section

PARTICLE_FEATURES = ("log_pt", "log_e", "pt_rel", "e_rel", "deta", "dphi", "dr")
"""Per-particle student features, in the order they are stacked (see kd_trigger.data.features)."""


QUANT_LAYER_FIELDS = (
    "weight_bits",
    "weight_int",
    "bias_bits",
    "bias_int",
    "activation_bits",
    "activation_int",
)
"""The fields of ``quant`` that one layer may override (``students[].quant.layers.<layer>``)."""


class LayerQuantConfig(Section):
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


class QuantConfig(Section):
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


class StudentConfig(Section):
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
    patience: Annotated[int, Field(ge=1)] | None = None
    """Early-stopping patience in epochs for this student (baseline and distilled copies alike); None:
    ``distill.patience``."""
    sparsity: Annotated[float, Field(ge=0, lt=1)] = 0.0
    """Fraction of the kernel weights of every QDense/QConv1D pruned to exact zeros during training
    (tensorflow-model-optimization's magnitude pruning, polynomial schedule); 0: no pruning."""
    sparsity_begin: Annotated[float, Field(ge=0, lt=1)] = 0.0
    """Pruning starts after this fraction of ``distill.epochs`` (the epoch cap), at an epoch boundary."""
    sparsity_end: Annotated[float, Field(gt=0, le=1)] = 0.5
    """Pruning reaches ``sparsity`` at the end of this fraction of ``distill.epochs``; the mask is fixed
    from then on, and early stopping only keeps an epoch from then on (never a less sparse one)."""

    output_head: Literal["logits", "softmax", "argmax"] = "logits"
    """What the firmware puts out (issue 24): ``logits`` (one per class, the default), ``softmax`` (the
    class probabilities from hls4ml's lookup-table softmax; its deviation from QKeras is measured, the
    bit-exactness gate stays on the logits before it) or ``argmax`` (hls4ml's argmax softmax: a one-hot
    of the class index; the gate checks the index against the argmax of the exact logits, ties to the
    lowest index as numpy). Training and every physics metric use the logits whatever the head. Built by
    the hls4ml flow only: the RTL flow has no softmax/argmax layer (``hls.flows: [hls4ml]``)."""

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


PAIRING_FIELDS = frozenset({"teacher", "temperature", "kd_weight"})
"""A student's pairing with its teacher: what ``make distill`` deploys, not what the study measures (the
study tries every teacher and (T, w) itself), so the study neither reruns nor recomputes when it changes."""
