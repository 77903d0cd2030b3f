"""The one place where our QuantConfig becomes QKeras quantizers and hls4ml fixed-point types.

Mappings, checked against qkeras 0.9.0 and hls4ml 1.3.0 (``hls4ml.utils.config._get_precision_from_quantizer``
and ``hls4ml.model.quantizers.QKerasQuantizer``):

* ``quantized_bits(bits, int, alpha=1)`` (signed, ``int`` integer bits without the sign) holds the values
  ``k * 2**(int - bits + 1)`` for ``k`` in ``[-2**(bits-1), 2**(bits-1) - 1]``: that is ``ap_fixed<bits, int + 1>``.
* ``quantized_relu(bits, int)`` holds ``k * 2**(int - bits)`` for ``k`` in ``[0, 2**bits - 1]``: that is
  ``ap_ufixed<bits, int>``.

Both round half to even (``tf.round``), which is ``AP_RND_CONV`` in HLS, and saturate (``AP_SAT``).
``alpha=1`` everywhere: ``alpha="auto"`` rescales per channel and breaks bit exactness with the firmware.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from kd_trigger.config import QuantConfig


@dataclass(frozen=True)
class FixedType:
    """A fixed-point type: ``width`` bits in all, ``integer`` of them left of the point (sign included)."""

    width: int
    integer: int
    signed: bool = True

    @property
    def fractional(self) -> int:
        """Bits right of the binary point; the type's step (LSB) is ``2**-fractional``."""
        return self.width - self.integer

    @property
    def step(self) -> float:
        return 2.0**-self.fractional

    @property
    def min_value(self) -> float:
        return -(2.0 ** (self.integer - 1)) if self.signed else 0.0

    @property
    def max_value(self) -> float:
        top = 2.0 ** (self.integer - 1) if self.signed else 2.0**self.integer
        return top - self.step

    def hls(self) -> str:
        """The hls4ml / Vivado HLS spelling, e.g. ``ap_fixed<12,5>``."""
        return f"ap_{'' if self.signed else 'u'}fixed<{self.width},{self.integer}>"


def bits_type(bits: int, integer: int) -> FixedType:
    """The type of ``quantized_bits(bits, integer, alpha=1)``: ``ap_fixed<bits, integer + 1>``."""
    return FixedType(bits, integer + 1, signed=True)


def relu_type(bits: int, integer: int) -> FixedType:
    """The type of ``quantized_relu(bits, integer)``: ``ap_ufixed<bits, integer>``."""
    return FixedType(bits, integer, signed=False)


def input_type(q: QuantConfig) -> FixedType:
    return bits_type(q.input_bits, q.input_int)


def weight_type(q: QuantConfig) -> FixedType:
    return bits_type(q.weight_bits, q.weight_int)


def bias_type(q: QuantConfig) -> FixedType:
    return bits_type(q.bias_bits, q.bias_int)


def activation_type(q: QuantConfig) -> FixedType:
    return relu_type(q.activation_bits, q.activation_int)


def input_quantizer(q: QuantConfig) -> Any:
    """QKeras quantizer of the student's input layer."""
    from qkeras import quantized_bits

    return quantized_bits(q.input_bits, q.input_int, alpha=1)


def weight_quantizer(q: QuantConfig) -> Any:
    from qkeras import quantized_bits

    return quantized_bits(q.weight_bits, q.weight_int, alpha=1)


def bias_quantizer(q: QuantConfig) -> Any:
    from qkeras import quantized_bits

    return quantized_bits(q.bias_bits, q.bias_int, alpha=1)


def activation_quantizer(q: QuantConfig) -> Any:
    from qkeras import quantized_relu

    return quantized_relu(q.activation_bits, q.activation_int)


def type_of_quantizer(quantizer: Any) -> FixedType:
    """The fixed-point type a QKeras quantizer object (or its serialized config dict) produces.

    Only the two quantizers our students use are accepted; anything else (``alpha != 1``, po2, ternary)
    is refused because its values are not a plain fixed-point grid.
    """
    if isinstance(quantizer, dict):
        name, conf = quantizer["class_name"], quantizer["config"]
    else:
        name, conf = type(quantizer).__name__, quantizer.get_config()
    if name == "quantized_bits":
        if conf.get("alpha") not in (1, 1.0) or not conf.get("keep_negative", True):
            raise ValueError(f"quantized_bits with alpha={conf.get('alpha')!r} is not a fixed-point grid")
        return bits_type(int(conf["bits"]), int(conf["integer"]))
    if name == "quantized_relu":
        if conf.get("negative_slope", 0.0) != 0.0:
            raise ValueError("quantized_relu with a negative slope is not supported")
        return relu_type(int(conf["bits"]), int(conf["integer"]))
    raise ValueError(f"unsupported quantizer {name}; students use quantized_bits(alpha=1) and quantized_relu")


def dense_accumulator_type(
    in_type: FixedType, w_type: FixedType, b_type: FixedType, n_inputs: int
) -> FixedType:
    """Smallest type that holds ``sum_i x_i * w_i + b`` exactly for ``n_inputs`` terms.

    The fractional bits are those of the finest term (a product or the bias); the integer bits cover the
    largest magnitude the sum can reach. The output of a student (its last QDense) lives on this grid.
    """
    frac = max(in_type.fractional + w_type.fractional, b_type.fractional)
    max_product = max(abs(in_type.min_value), in_type.max_value) * max(
        abs(w_type.min_value), w_type.max_value
    )
    bound = n_inputs * max_product + max(abs(b_type.min_value), b_type.max_value)
    integer = max(1, math.ceil(math.log2(bound + 2.0**-frac)) + 1)  # + 1: the sign bit
    return FixedType(integer + frac, integer, signed=True)


def quantize_inputs(x: np.ndarray, q: QuantConfig) -> np.ndarray:
    """Numpy twin of the student's input layer ``QActivation(quantized_bits(input_bits, input_int, alpha=1))``.

    Reproduces QKeras bit for bit, including its float32 arithmetic: scale to integer steps, round half
    to even, clip to the signed range, scale back, then the straight-through form ``x + (xq - x)`` that
    QKeras evaluates even at inference. For inputs inside the range that last step is exact; only for
    inputs far outside (|x| beyond ~2**24 steps) float32 rounding moves QKeras off the grid, and this
    function follows it there too.
    """
    x = np.asarray(x, dtype=np.float32)
    unsigned_bits = q.input_bits - 1
    m = np.float32(2.0**unsigned_bits)
    m_i = np.float32(2.0**q.input_int)
    with np.errstate(over="ignore", invalid="ignore"):
        p = (x * m) / m_i
        k = np.clip(np.round(p), -m, m - np.float32(1.0)).astype(np.float32)  # np.round: half to even
        xq = (m_i * k / m).astype(np.float32)
        out = (x + (xq - x)).astype(np.float32)
    return out
