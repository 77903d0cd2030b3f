"""Per-layer precision loss of a configured design (``precision_loss.layers`` of hls_report.json).

hls4ml overflows silently: a configured accumulator or result type that is too narrow wraps (or
saturates) and the firmware goes on. Here every layer of the design is compared with the same layer
of the model's own arithmetic (:func:`layer_precision_loss`), and the values whose computation left a
configured type's range are counted, on the design's own inputs to that layer, so that the count
belongs to the layer where the overflow happens and not to the layers that inherit its error.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from kd_trigger.fixed import FixedType
from kd_trigger.layers.reference import AS_CONFIGURED
from kd_trigger.layers.spec import LayerPrecision

WIDENED_BITS = 64
"""Integer bits added to an emulated type to compute the same layer without overflow (same LSB, same
rounding): far more than any value of a design the reference can judge reaches."""

_EMULATED_KEYS = ("accum", "result")


def widened(precision: dict[str, LayerPrecision]) -> dict[str, LayerPrecision]:
    """``precision`` with the accum and result types of every emulated layer given
    :data:`WIDENED_BITS` more integer bits and saturation (never reached): the same layers, computed
    with the configured LSBs and rounding, but without any overflow."""
    out: dict[str, LayerPrecision] = {}
    for name, chosen in precision.items():
        if not chosen.emulated:
            out[name] = chosen
            continue
        types = {
            key: (
                FixedType(t.width + WIDENED_BITS, t.integer + WIDENED_BITS, t.signed, t.rounding, "SAT")
                if key in _EMULATED_KEYS
                else t
            )
            for key, t in chosen.types.items()
        }
        out[name] = dataclasses.replace(chosen, types=types)
    return out


def input_overflow_count(x_raw: np.ndarray, input_type: FixedType) -> int:
    """Inputs that leave ``input_type``'s range once rounded onto its grid (half to even, as
    :meth:`FixedType.quantize` puts them there): saturated on the way in."""
    codes = np.rint(np.asarray(x_raw, dtype=np.float64) / input_type.lsb)
    return int(np.count_nonzero((codes < input_type.min_code) | (codes > input_type.max_code)))


def _inbound_name(layer: Any) -> str:
    node = layer.inbound_nodes[0]
    inbound = node.inbound_layers
    if isinstance(inbound, list | tuple):
        inbound = inbound[0]
    return str(inbound.name)


def layer_overflow_counts(
    design_twin: Any, wide_twin: Any, outputs: dict[str, np.ndarray], emulated: set[str]
) -> dict[str, int]:
    """Per emulated layer of the design: the output values that differ from the same layer computed
    without overflow (:func:`widened`), both on the design's own input to that layer (``outputs``: the
    design twin's layer outputs): the values where an accumulator or the result type wrapped or
    saturated."""
    import tensorflow as tf

    counts: dict[str, int] = {}
    present = {layer.name for layer in design_twin.layers}
    input_name = design_twin.layers[0].name
    previous = tf.keras.backend.floatx()
    tf.keras.backend.set_floatx("float64")
    try:
        for layer in design_twin.layers:
            name = layer.name
            if name.endswith(AS_CONFIGURED):
                # A first quantizer's configured casts (the input type's and its own): its input is the
                # model input, already on the quantizer's grid; the count goes to the quantizer.
                name, inbound = name[: -len(AS_CONFIGURED)], input_name
            elif f"{name}{AS_CONFIGURED}" in present or layer.name == input_name:
                continue  # counted on its configured casts; the model input computes nothing
            else:
                inbound = _inbound_name(layer)
            if name not in emulated or name not in outputs or inbound not in outputs:
                continue
            wide = wide_twin.get_layer(layer.name)
            unbounded = np.asarray(wide(tf.constant(outputs[inbound], dtype=tf.float64)), dtype=np.float64)
            counts[name] = int(np.count_nonzero(unbounded != outputs[name]))
    finally:
        tf.keras.backend.set_floatx(previous)
    return counts


def reference_names(design_model: Any, float_model: Any) -> dict[str, str]:
    """Which layer of ``float_model`` each layer of the design is compared with: its own name, except a
    Dense hls4ml fused a batch norm into (absent from the design), compared with that batch norm."""
    names = {layer.name for layer in design_model.layers}
    out: dict[str, str] = {}
    layers = list(float_model.layers)
    for before, layer in zip(layers, layers[1:], strict=False):
        if layer.name not in names and before.name in names:
            out[before.name] = layer.name
    return out


def layer_precision_loss(
    design_layers: list[str],
    y_design: dict[str, np.ndarray],
    y_float: dict[str, np.ndarray],
    overflows: dict[str, int],
    precision: dict[str, LayerPrecision],
    reference_of: dict[str, str],
) -> tuple[dict[str, dict[str, Any]], str | None]:
    """``precision_loss.layers`` and ``precision_loss.first_overflow_layer``: per layer of the design
    (model order), the largest and mean |design - model| of its output, the number of values that
    overflowed a configured type there (``overflow_count``) out of ``n_values``, and the layer's result
    type; the first layer with an overflow (None: none overflowed on these inputs)."""
    layers: dict[str, dict[str, Any]] = {}
    first: str | None = None
    for name in design_layers:
        ref = reference_of.get(name, name)
        if name not in y_design or ref not in y_float:
            continue
        d = y_design[name].astype(np.float64)
        f = y_float[ref].astype(np.float64)
        diff = np.abs(d - f)
        chosen = precision.get(name)
        result = chosen.types.get("result") if chosen is not None else None
        count = overflows.get(name, 0)
        layers[name] = {
            "compared_with": ref,
            "result_type": result.hls() if result is not None else None,
            "n_values": int(diff.size),
            "max_abs_diff": float(diff.max()) if diff.size else 0.0,
            "mean_abs_diff": float(diff.mean()) if diff.size else 0.0,
            "overflow_count": count,
        }
        if count and first is None:
            first = name
    return layers, first


def overflow_summary(loss: dict[str, Any]) -> str:
    """The overflows of ``precision_loss`` in words, for the CLI's summary line."""
    layers = loss.get("layers", {})
    over = {name: v["overflow_count"] for name, v in layers.items() if v["overflow_count"]}
    if not over:
        return "no value overflowed a configured type"
    listed = ", ".join(f"{name} {count}/{layers[name]['n_values']}" for name, count in over.items())
    return f"overflows (wrapped/saturated values) first at {loss['first_overflow_layer']}: {listed}"


__all__ = [
    "WIDENED_BITS",
    "input_overflow_count",
    "layer_overflow_counts",
    "layer_precision_loss",
    "overflow_summary",
    "reference_names",
    "widened",
]
