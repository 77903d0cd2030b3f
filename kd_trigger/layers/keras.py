"""Reading Keras/QKeras layer objects: the fixed-point types of their quantizers, their activations.

Duck-typed on the layer objects (TensorFlow and QKeras are imported only where a quantizer is given
as a string), shared by the handlers' ``describe`` and by :mod:`kd_trigger.hls.convert`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kd_trigger.errors import ModelError
from kd_trigger.fixed import QUANTIZER_ROUNDING, QUANTIZER_SATURATION, FixedType, grid_type
from kd_trigger.models import quantizers as qz


def quantizer_fixed_type(width: int, integer: int, signed: bool, symmetric: bool = False) -> FixedType:
    """The type of a QKeras quantizer's outputs, with the QKeras rounding and saturation modes.

    The width/integer mapping itself (``quantized_bits(b, i, alpha=1)`` -> ``ap_fixed<b, i+1>``,
    ``quantized_relu(b, i)`` -> ``ap_ufixed<b, i>``) lives in :mod:`kd_trigger.models.quantizers`.
    """
    sat = "SAT_SYM" if (symmetric and signed) else QUANTIZER_SATURATION
    return FixedType(width, integer, signed, QUANTIZER_ROUNDING, sat)


def quantizer_type(quantizer: Any, where: str) -> tuple[FixedType, str]:
    """Fixed type (with QKeras rounding/saturation) and class name of a QKeras quantizer object or string."""
    if isinstance(quantizer, str):
        import qkeras

        quantizer = qkeras.get_quantizer(quantizer)
    if isinstance(quantizer, dict):
        name, conf = quantizer["class_name"], quantizer["config"]
    else:
        name = type(quantizer).__name__
        conf = quantizer.get_config() if hasattr(quantizer, "get_config") else {}
    # QKeras rounds stochastically only while training (``_round_through`` switches on the learning
    # phase); inference, which the firmware implements, rounds half to even: the same grid as without.
    plain = {"class_name": name, "config": {**conf, "use_stochastic_rounding": False}}
    try:
        t = qz.type_of_quantizer(plain)
    except ValueError as err:
        raise ModelError(f"layer {where}: {err}; the firmware type cannot be derived") from None
    return quantizer_fixed_type(t.width, t.integer, t.signed, bool(conf.get("symmetric", False))), name


CONSTANT_QUANTIZERS = frozenset({"quantized_po2", "binary", "ternary"})
"""Kernel quantizers whose constants are read off (hls4ml is handed the quantized kernel itself)."""


def constants_read_off(quantizer: Any) -> bool:
    """A kernel quantizer whose grid is not ``quantized_bits(alpha=1)``'s: a computed scale
    (``alpha="auto"``/``"auto_po2"``, what QKeras makes of ``alpha=None`` on a kernel), a fixed scale
    (``alpha=2``), powers of two, binary or ternary."""
    if quantizer is None:
        return False
    if type(quantizer).__name__ in CONSTANT_QUANTIZERS:
        return True
    conf = quantizer.get_config() if hasattr(quantizer, "get_config") else {}
    return type(quantizer).__name__ == "quantized_bits" and conf.get("alpha") not in (1, 1.0, None)


def scaled_alpha_type(quantizer: Any, where: str) -> FixedType | None:
    """``quantized_bits(b, i, alpha=2**k)``: QKeras computes ``alpha * q(x)`` with ``q`` the alpha=1
    quantizer (the input is not divided by alpha), so the constants are ``ap_fixed<b, i+1>``'s grid
    shifted left by ``k``: ``ap_fixed<b, i+1+k>``. None for any other quantizer."""
    conf = quantizer.get_config() if hasattr(quantizer, "get_config") else {}
    alpha = conf.get("alpha")
    if type(quantizer).__name__ != "quantized_bits" or isinstance(alpha, str) or alpha in (1, 1.0, None):
        return None
    shift = float(np.log2(float(alpha))) if float(alpha) > 0 else 0.5
    if shift != round(shift):
        raise ModelError(
            f"layer {where}: quantized_bits with alpha={alpha!r} (not a power of two) is not a fixed-point grid"
        )
    base, _ = quantizer_type({"class_name": "quantized_bits", "config": {**conf, "alpha": 1}}, where)
    return FixedType(base.width, base.integer + int(shift), base.signed, base.rounding, base.saturation)


def kernel_type(layer: Any, quantizer: Any, where: str) -> FixedType:
    """The type of a layer's quantized kernel.

    A fixed power-of-two ``alpha`` shifts the grid (:func:`scaled_alpha_type`). Computed scales,
    ``quantized_po2``, binary and ternary (:func:`constants_read_off`): the grid is not known in advance,
    but the quantized constants are, and the narrowest type that holds them all exactly is read off them.
    """
    shifted = scaled_alpha_type(quantizer, where)
    if shifted is not None:
        return shifted
    if constants_read_off(quantizer):
        values = np.asarray(quantizer(layer.kernel).numpy(), dtype=np.float64)
        try:
            return grid_type(values)
        except ValueError as err:
            raise ModelError(f"layer {where}: {err}; the firmware type cannot be derived") from None
    return quantizer_type(quantizer, where)[0]


def scaled_kernel(layer: Any) -> bool:
    """A kernel quantizer whose constants are handed to hls4ml already quantized
    (:func:`constants_read_off`)."""
    return constants_read_off(getattr(layer, "kernel_quantizer_internal", None))


def activation_name(fn: Any) -> str:
    """'relu', 'linear', 'softmax'... of a Keras activation function or string."""
    return str(getattr(fn, "__name__", fn)).lower()


def qkeras_objects() -> dict[str, Any]:
    """QKeras' custom objects, for rebuilding a layer from its config."""
    from qkeras.utils import _add_supported_quantized_objects

    objects: dict[str, Any] = {}
    _add_supported_quantized_objects(objects)
    return objects
