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

from typing import Any

import numpy as np

from kd_trigger.config import QuantConfig
from kd_trigger.fixed import FixedType, bits_type, relu_type


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

    ``quantized_bits`` with ``alpha=1`` or ``alpha=None`` (QKeras then uses the scale 1.0: the very same
    grid), ``keep_negative`` either way, and ``quantized_relu``. Refused, because their values are not a
    plain fixed-point grid: ``alpha="auto"``/``"auto_po2"`` or any other scale, stochastic rounding, and a
    ``qnoise_factor`` below 1 (which mixes the float input into the output).
    """
    if isinstance(quantizer, dict):
        name, conf = quantizer["class_name"], quantizer["config"]
    else:
        name, conf = type(quantizer).__name__, quantizer.get_config()
    if conf.get("use_stochastic_rounding"):
        raise ValueError(f"{name} with stochastic rounding is not a deterministic fixed-point grid")
    if float(conf.get("qnoise_factor", 1.0) if conf.get("qnoise_factor") is not None else 1.0) != 1.0:
        raise ValueError(
            f"{name} with qnoise_factor={conf.get('qnoise_factor')} mixes float values into its output"
        )
    if name == "quantized_bits":
        if conf.get("alpha") not in (1, 1.0, None):
            raise ValueError(f"quantized_bits with alpha={conf.get('alpha')!r} is not a fixed-point grid")
        bits, integer = int(conf["bits"]), int(conf["integer"])
        if not conf.get("keep_negative", True):
            return FixedType(bits, integer, signed=False)
        if bits < 2:
            raise ValueError("quantized_bits with 1 bit is a sign function, not a fixed-point grid")
        return bits_type(bits, integer)
    if name == "quantized_relu":
        if conf.get("negative_slope", 0.0) not in (0, 0.0, None):
            raise ValueError("quantized_relu with a negative slope is not supported")
        return relu_type(int(conf["bits"]), int(conf["integer"]))
    raise ValueError(
        f"unsupported quantizer {name}; supported: quantized_bits (alpha=1 or None) and quantized_relu"
    )


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
