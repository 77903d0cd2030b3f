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
from kd_trigger.models.quantizers import (
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
    (``activation_class`` the quantizer's QKeras class name).
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


@dataclass
class LayerPrecision:
    """The chosen types of one firmware layer, keyed as hls4ml's ``Precision`` config keys them."""

    types: dict[str, FixedType] = field(default_factory=dict)
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: v.hls() for k, v in self.types.items()}
        if self.note:
            out["note"] = self.note
        return out


# Layers that pass values through unchanged (hls4ml folds them away or copies the input type).
PASS_THROUGH = frozenset({"Flatten", "Reshape", "Dropout", "InputLayer"})
DENSE_LIKE = frozenset({"QDense", "QConv1D", "Dense", "Conv1D"})


def derive_precision(layers: list[LayerSpec]) -> dict[str, LayerPrecision]:
    """Types of every layer of a single-chain model whose first real layer quantizes the input.

    ``layers`` in model order, the ``InputLayer`` first. Raises :class:`ModelError` naming the first
    layer whose types cannot be derived (no input quantizer, an unquantized weight, an unsupported
    quantizer or layer).
    """
    out: dict[str, LayerPrecision] = {}
    body = [layer for layer in layers if layer.class_name != "InputLayer"]
    first = body[0] if body else None
    if first is None or first.class_name != "QActivation" or first.activation is None:
        raise ModelError(
            "the model has no input quantizer: its first layer must be QActivation(quantized_bits(bits, "
            "integer, alpha=1)), which defines the firmware's input type"
        )
    if first.activation_class != "quantized_bits":
        raise ModelError(
            f"layer '{first.name}' (QActivation): the input quantizer must be quantized_bits(bits, integer, "
            f"alpha=1), got {first.activation_class}"
        )
    current: FixedType | None = None
    for layer in layers:
        where = f"'{layer.name}' ({layer.class_name})"
        if layer.class_name == "InputLayer":
            # The firmware input carries exactly the input quantizer's grid: inputs are quantized
            # by the caller, exactly as the student's own first layer does.
            t = first.activation
            out[layer.name] = LayerPrecision({"result": t}, "input quantizer grid")
            current = t
            continue
        assert current is not None  # the InputLayer comes first
        if layer.class_name in PASS_THROUGH:
            continue
        if layer.class_name == "QActivation":
            if layer.activation is None:
                raise ModelError(f"layer {where}: no quantizer")
            current = layer.activation
            out[layer.name] = LayerPrecision({"result": current}, "quantizer")
        elif layer.class_name in DENSE_LIKE:
            if layer.kernel is None:
                raise ModelError(
                    f"layer {where} has no kernel quantizer, so its firmware weights have no derivable type; "
                    "use QDense/QConv1D with kernel_quantizer=quantized_bits(bits, integer, alpha=1)"
                )
            if layer.inner_activation not in ("linear", None):
                raise ModelError(
                    f"layer {where} has a built-in activation {layer.inner_activation!r}; "
                    "use a separate QActivation(quantized_relu(bits, integer)) so its type is defined"
                )
            weight = layer.kernel.exact()
            bias: FixedType | None = None
            if layer.use_bias:
                if layer.bias is None:
                    raise ModelError(
                        f"layer {where} has a bias without bias_quantizer; use bias_quantizer=quantized_bits(...)"
                    )
                bias = layer.bias.exact()
            accum = accumulator_type(product_type(current, weight), layer.fan_in, bias)
            types = {"weight": weight, "accum": accum, "result": accum}
            if bias is not None:
                types["bias"] = bias
            out[layer.name] = LayerPrecision(types, f"sum of {layer.fan_in} products + bias, exact")
            current = accum
        elif layer.class_name == "GlobalAveragePooling1D":
            accum, result, exact = average_pool_types(current, layer.fan_in)
            note = f"mean of {layer.fan_in}" + ("" if exact else " (not a power of two: the division rounds)")
            out[layer.name] = LayerPrecision({"accum": accum, "result": result}, note)
            current = result
        else:
            raise ModelError(
                f"layer {where}: no precision rule for this layer type; supported: QActivation, QDense, "
                "QConv1D, GlobalAveragePooling1D, Flatten, Reshape, Dropout"
            )
    check_exact_reference(out)
    return out


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
