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
    name = type(quantizer).__name__
    conf = quantizer.get_config() if hasattr(quantizer, "get_config") else {}
    try:
        t = qz.type_of_quantizer(quantizer)
    except ValueError as err:
        raise ModelError(f"layer {where}: {err}; the firmware type cannot be derived") from None
    return quantizer_fixed_type(t.width, t.integer, t.signed, bool(conf.get("symmetric", False))), name


def kernel_type(layer: Any, quantizer: Any, where: str) -> FixedType:
    """The type of a layer's quantized kernel.

    QKeras turns ``quantized_bits(alpha=None)`` used as a kernel quantizer into per-channel
    power-of-two scales (``alpha="auto_po2"``): the grid is then not known in advance, but the quantized
    constants are, and the narrowest type that holds them all exactly is read off them.
    """
    alpha = quantizer.get_config().get("alpha") if hasattr(quantizer, "get_config") else None
    if isinstance(alpha, str) and "po2" in alpha:
        values = np.asarray(quantizer(layer.kernel).numpy(), dtype=np.float64)
        try:
            return grid_type(values)
        except ValueError as err:
            raise ModelError(f"layer {where}: {err}; the firmware type cannot be derived") from None
    return quantizer_type(quantizer, where)[0]


def scaled_kernel(layer: Any) -> bool:
    """A kernel quantizer with a computed scale (``alpha="auto"``/``"auto_po2"``, what QKeras makes of
    ``alpha=None`` on a kernel)."""
    quantizer = getattr(layer, "kernel_quantizer_internal", None)
    conf = quantizer.get_config() if quantizer is not None and hasattr(quantizer, "get_config") else {}
    return isinstance(conf.get("alpha"), str)


def activation_name(fn: Any) -> str:
    """'relu', 'linear', 'softmax'... of a Keras activation function or string."""
    return str(getattr(fn, "__name__", fn)).lower()


def qkeras_objects() -> dict[str, Any]:
    """QKeras' custom objects, for rebuilding a layer from its config."""
    from qkeras.utils import _add_supported_quantized_objects

    objects: dict[str, Any] = {}
    _add_supported_quantized_objects(objects)
    return objects
