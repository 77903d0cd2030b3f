"""Fixed-point precision of every firmware layer, DERIVED from the student's QKeras quantizers.

Nothing here guesses a width. A quantizer fixes the type of what it quantizes (weights, biases,
activations, the input); everything between two quantizers (accumulators, pooling sums, the result of
a layer that no quantizer follows, such as the logits) is sized by bit growth so that it can never
overflow or round for any input in range:

* a product ``ap_fixed<W1,I1> x ap_fixed<W2,I2>`` is exact in ``ap_fixed<W1+W2, I1+I2>``;
* a sum of K such products plus a bias needs ``ceil(log2(K+1))`` more integer bits than the wider of
  the two, and as many fractional bits as the finer of the two;
* an average over N = 2^k values is a sum (k more integer bits) and a shift (k more fractional bits).

The type itself and the product/accumulator rules live in :mod:`kd_trigger.models.quantizers`, so the
students' output type and the firmware's accumulators come from one derivation. These are pure functions
on plain data (no TensorFlow), so they are tested on their own. The walk over
a Keras model that feeds them lives in :mod:`kd_trigger.hls.convert`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kd_trigger.errors import ModelError
from kd_trigger.fixed import (
    QUANTIZER_ROUNDING,
    QUANTIZER_SATURATION,
    FixedType,
    accumulator_type,
    product_type,
)


def quantizer_fixed_type(width: int, integer: int, signed: bool, symmetric: bool = False) -> FixedType:
    """The type of a QKeras quantizer's outputs, with the QKeras rounding and saturation modes.

    The width/integer mapping itself (``quantized_bits(b, i, alpha=1)`` -> ``ap_fixed<b, i+1>``,
    ``quantized_relu(b, i)`` -> ``ap_ufixed<b, i>``) lives in :mod:`kd_trigger.models.quantizers`.
    """
    sat = "SAT_SYM" if (symmetric and signed) else QUANTIZER_SATURATION
    return FixedType(width, integer, signed, QUANTIZER_ROUNDING, sat)


def average_pool_types(data: FixedType, n_inputs: int) -> tuple[FixedType, FixedType, bool]:
    """(accumulator, result, exact) of an average over ``n_inputs`` values of type ``data``.

    The firmware sums into the accumulator and divides it by N in place, so the accumulator needs
    ``ceil(log2 N)`` more integer bits for the sum and as many more fractional bits for the quotient;
    the mean is never larger than the largest input, so the result keeps the input's integer bits.
    Division by N is exact only for a power of two: ``exact`` says whether it is.
    """
    if n_inputs < 1:
        raise ValueError(f"average over {n_inputs} inputs")
    k = math.ceil(math.log2(n_inputs)) if n_inputs > 1 else 0
    accum = FixedType(data.width + 2 * k, data.integer + k, data.signed)
    result = FixedType(data.width + k, data.integer, data.signed)
    return accum, result, n_inputs == 2**k


@dataclass(frozen=True)
class LayerSpec:
    """What precision derivation needs to know about one Keras layer (plain data).

    ``fan_in``: terms summed per output (Dense: input width; Conv1D: kernel_size x channels; average
    pooling: number of steps). ``kernel``/``bias``/``activation`` hold the types of the layer's quantizers
    (``activation_class`` the quantizer's QKeras class name). ``activation_kind`` is the function of a
    plain Keras activation layer (relu, linear, softmax, sigmoid); ``inner_activation`` the one a Dense
    or Conv1D applies itself.
    """

    name: str
    class_name: str
    fan_in: int = 0
    kernel: FixedType | None = None
    bias: FixedType | None = None
    activation: FixedType | None = None
    activation_class: str | None = None
    use_bias: bool = True
    inner_activation: str = "linear"
    activation_kind: str | None = None


@dataclass(frozen=True)
class Intake:
    """What a user states about a model saved without some of its firmware types.

    ``input_type``: the firmware input of a model without an input quantizer (``--input-precision``);
    ``default_type``: weights and biases of layers without quantizers (``--default-precision``);
    ``layer_types``: the same, per layer name (``hls.layers.<name>.precision``). Every type taken from
    here is reported as assumed.
    """

    input_type: FixedType | None = None
    default_type: FixedType | None = None
    layer_types: dict[str, FixedType] = field(default_factory=dict)

    @classmethod
    def from_hls(cls, hls: Any) -> Intake:
        """The intake settings of an :class:`kd_trigger.config.HlsConfig`."""
        return cls(
            input_type=FixedType.parse(hls.input_precision) if hls.input_precision else None,
            default_type=FixedType.parse(hls.default_precision) if hls.default_precision else None,
            layer_types={
                name: FixedType.parse(spec.precision) for name, spec in hls.layers.items() if spec.precision
            },
        )

    def assumed_type(self, layer: str) -> FixedType | None:
        return self.layer_types.get(layer) or self.default_type


@dataclass
class LayerPrecision:
    """The chosen types of one firmware layer, keyed as hls4ml's ``Precision`` config keys them.

    ``assumed``: some type came from the intake settings, not from a quantizer. ``final_activation``:
    the model's last layer is a softmax/sigmoid built from hls4ml's lookup tables (not bit-exact by
    design; exactness is judged on the layer before it).
    """

    types: dict[str, FixedType] = field(default_factory=dict)
    note: str = ""
    assumed: bool = False
    final_activation: str | None = None

    def to_dict(self) -> dict[str, str]:
        out: dict[str, str] = {k: v.hls() for k, v in self.types.items()}
        if self.note:
            out["note"] = self.note
        return out


# Layers that pass values through unchanged (hls4ml folds them away or copies the input type).
PASS_THROUGH = frozenset({"Flatten", "Reshape", "Dropout", "InputLayer"})
DENSE_LIKE = frozenset({"QDense", "QConv1D", "Dense", "Conv1D"})
ACTIVATION_LAYERS = frozenset({"Activation", "ReLU", "Softmax"})
FINAL_ONLY = frozenset({"softmax", "sigmoid"})
"""Activations converted with hls4ml's lookup tables: accepted as the model's last layer only."""


def _relu_type(t: FixedType) -> FixedType:
    """ReLU keeps every non-negative value of ``t``: the same bits serve (exact, never overflows)."""
    return t.exact()


def _pool_division_types(data: FixedType, n: int, target: FixedType) -> tuple[FixedType, FixedType]:
    """(accumulator, result) of an average over ``n`` (not a power of two) rounded onto ``target``.

    The firmware sums exactly, divides by n in the accumulator (the quotient is truncated to its
    fractional bits) and casts onto ``target`` rounding half to even. The quotient q = S/n in units of
    the target LSB is a multiple of 1/n, so when q is not a tie it is at least 1/(2n) away from one: with
    ceil(log2(2n)) + 1 fractional bits beyond the target, truncation never reaches a tie, and rounding
    the truncated quotient gives exactly QKeras' round-half-even of the mean.
    """
    growth = math.ceil(math.log2(n))
    extra = math.ceil(math.log2(2 * n)) + 1
    fractional = max(data.fractional, target.fractional) + extra
    integer = data.integer + growth + (0 if data.signed else 1)
    accum = FixedType(integer + fractional, integer, True)
    return accum, target.with_modes(QUANTIZER_ROUNDING, target.saturation)


def _next_quantizer(layers: list[LayerSpec], index: int) -> LayerSpec | None:
    """The first QActivation after ``index`` with only pass-through layers in between, else None."""
    for layer in layers[index + 1 :]:
        if layer.class_name in PASS_THROUGH:
            continue
        return layer if layer.class_name == "QActivation" and layer.activation is not None else None
    return None


def derive_precision(layers: list[LayerSpec], intake: Intake | None = None) -> dict[str, LayerPrecision]:
    """Types of every layer of a single-chain model, derived from its quantizers (and ``intake``).

    ``layers`` in model order, the ``InputLayer`` first. Raises :class:`ModelError` naming the first
    layer whose types cannot be derived and what would make it derivable.
    """
    intake = intake or Intake()
    out: dict[str, LayerPrecision] = {}
    body = [layer for layer in layers if layer.class_name != "InputLayer"]
    first = body[0] if body else None
    quantized_input = first is not None and first.class_name == "QActivation" and first.activation is not None
    current: FixedType | None = None
    for index, layer in enumerate(layers):
        where = f"'{layer.name}' ({layer.class_name})"
        last = index == len(layers) - 1
        if layer.class_name == "InputLayer":
            # The firmware input carries exactly the input grid: inputs are put on it by the caller.
            if quantized_input:
                assert first is not None and first.activation is not None
                out[layer.name] = LayerPrecision({"result": first.activation}, "input quantizer grid")
                current = first.activation
            elif intake.input_type is not None:
                current = intake.input_type.exact()
                out[layer.name] = LayerPrecision(
                    {"result": current}, "input type given at intake", assumed=True
                )
            else:
                raise ModelError(
                    "the model has no input quantizer, so its firmware input type is unknown; give it with "
                    "--input-precision 'ap_fixed<W,I>' (config: hls.input_precision), or make the first layer "
                    "QActivation(quantized_bits(bits, integer, alpha=1))"
                )
            continue
        assert current is not None  # the InputLayer comes first
        if layer.class_name in PASS_THROUGH:
            continue
        if layer.class_name == "QActivation":
            if layer.activation is None:
                raise ModelError(f"layer {where}: no quantizer")
            current = layer.activation
            out[layer.name] = LayerPrecision({"result": current}, "quantizer")
        elif layer.class_name in ACTIVATION_LAYERS:
            kind = layer.activation_kind or "linear"
            if kind == "linear":
                continue
            if kind == "relu":
                current = _relu_type(current)
                out[layer.name] = LayerPrecision({"result": current}, "relu of an exact value, exact")
            elif kind in FINAL_ONLY and last:
                out[layer.name] = LayerPrecision(
                    {}, f"final {kind}: hls4ml lookup tables", final_activation=kind
                )
            else:
                raise ModelError(
                    f"layer {where}: activation {kind!r} is supported only as the model's last layer (softmax, "
                    "sigmoid) or as relu/linear; quantize it with QActivation(quantized_relu(...))"
                )
        elif layer.class_name in DENSE_LIKE:
            current = _dense_types(layer, where, current, intake, out, last)
        elif layer.class_name == "BatchNormalization":
            assumed = intake.assumed_type(layer.name)
            if assumed is None:
                raise ModelError(
                    f"layer {where}: its scale and bias have no quantizer; give their type with --default-precision "
                    "'ap_fixed<W,I>' (config: hls.default_precision or hls.layers.<name>.precision)"
                )
            t = assumed.exact()
            accum = accumulator_type(product_type(current, t), 1, t)
            out[layer.name] = LayerPrecision(
                {"scale": t, "bias": t, "result": accum},
                "scale and bias assumed; x * scale + bias, exact",
                assumed=True,
            )
            current = accum
        elif layer.class_name == "GlobalAveragePooling1D":
            accum, result, exact = average_pool_types(current, layer.fan_in)
            if exact:
                out[layer.name] = LayerPrecision(
                    {"accum": accum, "result": result}, f"mean of {layer.fan_in}, a shift"
                )
                current = result
                continue
            target = _next_quantizer(layers, index)
            if target is None or target.activation is None:
                raise ModelError(
                    f"layer {where}: a mean over {layer.fan_in} values is not a power-of-two shift, and no quantizer "
                    "follows it, so QKeras computes it in floating point and no fixed-point firmware can match; "
                    "put a QActivation(quantized_bits(...)) right after it, or pool a power-of-two count"
                )
            accum, result = _pool_division_types(current, layer.fan_in, target.activation)
            out[layer.name] = LayerPrecision(
                {"accum": accum, "result": result},
                f"mean of {layer.fan_in}: exact division rounded half to even onto {target.name}'s grid",
            )
            current = result
        else:
            raise ModelError(
                f"layer {where}: no precision rule for this layer type; supported: QActivation, QDense, QConv1D, "
                "Dense, Conv1D, BatchNormalization, GlobalAveragePooling1D, Activation (relu, linear; softmax and "
                "sigmoid last), Flatten, Reshape, Dropout"
            )
    check_exact_reference(out)
    return out


def _dense_types(
    layer: LayerSpec,
    where: str,
    current: FixedType,
    intake: Intake,
    out: dict[str, LayerPrecision],
    last: bool,
) -> FixedType:
    """Types of a dense-like layer (and of the activation hls4ml splits off it); returns its output type."""
    assumed = intake.assumed_type(layer.name)
    hint = (
        "quantize it (kernel_quantizer=quantized_bits(bits, integer, alpha=1)), or give the type of its weights "
        "with --default-precision 'ap_fixed<W,I>' (config: hls.default_precision or hls.layers.<name>.precision)"
    )
    if layer.kernel is None and assumed is None:
        raise ModelError(
            f"layer {where} has no kernel quantizer, so its firmware weights have no derivable type; {hint}"
        )
    weight = layer.kernel.exact() if layer.kernel is not None else assumed.exact()  # type: ignore[union-attr]
    was_assumed = layer.kernel is None
    bias: FixedType | None = None
    if layer.use_bias:
        if layer.bias is None and assumed is None:
            raise ModelError(f"layer {where} has a bias without bias_quantizer; {hint}")
        bias = layer.bias.exact() if layer.bias is not None else assumed.exact()  # type: ignore[union-attr]
        was_assumed = was_assumed or layer.bias is None
    accum = accumulator_type(product_type(current, weight), layer.fan_in, bias)
    types = {"weight": weight, "accum": accum, "result": accum}
    if bias is not None:
        types["bias"] = bias
    note = f"sum of {layer.fan_in} products + bias, exact" + ("; weights assumed" if was_assumed else "")
    out[layer.name] = LayerPrecision(types, note, assumed=was_assumed)
    inner = layer.inner_activation or "linear"
    if inner == "linear":
        return accum
    name = f"{layer.name}_{inner}"
    if inner == "relu":
        out[name] = LayerPrecision({"result": _relu_type(accum)}, "relu of an exact value, exact")
        return _relu_type(accum)
    if inner in FINAL_ONLY and last:
        out[name] = LayerPrecision({}, f"final {inner}: hls4ml lookup tables", final_activation=inner)
        return accum
    raise ModelError(
        f"layer {where} has a built-in activation {inner!r}; use a separate QActivation(quantized_relu(bits, "
        "integer)) so its type is defined (relu, and softmax/sigmoid on the last layer, are converted as they are)"
    )


EXACT_REFERENCE_BITS = 53
"""The significand of float64: the exact reference (QKeras run in float64) holds any fixed-point value
of at most this many bits, and no wider."""


def check_exact_reference(precision: dict[str, LayerPrecision]) -> None:
    """ModelError when a derived type is wider than the exact reference can hold.

    The firmware would still compute, but nothing could prove it right: such a model is refused before
    anything is converted or simulated.
    """
    for name, chosen in precision.items():
        for key, t in chosen.types.items():
            if t.width > EXACT_REFERENCE_BITS:
                raise ModelError(
                    f"layer '{name}': its exact {key} type {t.hls()} needs {t.width} bits, more than the "
                    f"{EXACT_REFERENCE_BITS} that the exact reference (QKeras in float64) can hold; narrow the "
                    "quantizers (input, weight or activation bits) of this model"
                )


def input_type(precision: dict[str, LayerPrecision], input_name: str) -> FixedType:
    return precision[input_name].types["result"]


def edge_case_inputs(t: FixedType, shape: tuple[int, ...], n_samples: int, seed: int = 0) -> np.ndarray:
    """``n_samples`` inputs of ``shape`` exactly on ``t``'s grid, spread over its whole range.

    A quarter of the samples draw every element from the edge values (min, max, zero, +-1 LSB, one
    LSB inside the extremes), a quarter are all-max or all-min rows with random edge values mixed in
    (the largest sums, where accumulators overflow), the rest are uniform over every code.
    The first samples are the constant inputs min, max, 0, +LSB, -LSB.
    """
    rng = np.random.default_rng(seed)
    size = int(np.prod(shape))
    edges = t.edge_values()
    codes = rng.integers(t.min_code, t.max_code + 1, size=(n_samples, size), endpoint=False)
    x = codes.astype(np.float64) * t.lsb
    q = n_samples // 4
    x[:q] = rng.choice(edges, size=(q, size))
    extreme = np.where(rng.random((q, 1)) < 0.5, t.max_value, t.min_value)
    mix = rng.random((q, size)) < 0.1
    x[q : 2 * q] = np.where(mix, rng.choice(edges, size=(q, size)), extreme)
    constants = [t.min_value, t.max_value, 0.0, t.lsb, -t.lsb if t.signed else t.lsb]
    for i, value in enumerate(constants[: min(len(constants), n_samples)]):
        x[i] = value
    return x.reshape((n_samples, *shape))
