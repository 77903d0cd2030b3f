"""Activations: the QActivation quantizer, and plain Keras activations (relu, linear, final softmax/sigmoid)."""

from __future__ import annotations

from typing import Any

from kd_trigger.errors import ModelError
from kd_trigger.fixed import FixedType
from kd_trigger.layers.base import LayerHandler, PrecisionWalk, ProgramWalk, out_shape
from kd_trigger.layers.keras import activation_name, quantizer_type
from kd_trigger.layers.spec import LayerPrecision, LayerSpec
from kd_trigger.layers.step import Step, StepKind, derived_type

FINAL_ONLY = frozenset({"softmax", "sigmoid"})
"""Activations converted with hls4ml's lookup tables: accepted as the model's last layer only."""


def relu_result(t: FixedType) -> FixedType:
    """ReLU keeps every non-negative value of ``t``: the same bits serve (exact, never overflows)."""
    return t.exact()


class QuantizerHandler(LayerHandler):
    """QActivation: its quantizer fixes the type of what flows on; the first one is the input grid."""

    kind = "quantizer"
    keras_classes = ("QActivation",)
    rtl_classes = ("QActivation",)
    rtl_note = "QActivation"

    def describe(self, layer: Any, where: str) -> LayerSpec:
        t, qname = quantizer_type(layer.quantizer, where)
        return LayerSpec(layer.name, type(layer).__name__, activation=t, activation_class=qname)

    def precision(self, spec: LayerSpec, walk: PrecisionWalk) -> None:
        if spec.activation is None:
            raise ModelError(f"layer {spec.where}: no quantizer")
        walk.current = spec.activation
        walk.out[spec.name] = LayerPrecision({"result": walk.current}, "quantizer")

    def rtl_step(self, layer: Any, walk: ProgramWalk) -> Step | None:
        where = f"'{layer.name}' ({type(layer).__name__})"
        t = derived_type(walk.precision[layer.name], "result", where)
        shape = out_shape(layer)
        # The first quantizer defines the firmware's input type: inputs arrive already on its grid
        # (the caller quantizes them exactly as this layer does), so it is the identity in hardware.
        kind: StepKind = "quantize" if walk.first_quantizer_seen else "input"
        walk.first_quantizer_seen = True
        walk.current = t
        return Step(layer.name, type(layer).__name__, kind, t, shape, row_wise=len(shape) == 2)


class ActivationHandler(LayerHandler):
    """Activation, ReLU, Softmax: relu of an exact value is exact; linear is nothing; softmax/sigmoid
    only as the model's last layer (hls4ml's lookup tables)."""

    kind = "activation"
    keras_classes = ("Activation", "ReLU", "Softmax")
    hls4ml_classes = ("Activation", "ParametrizedActivation", "HardActivation", "Softmax", "ReLU")
    estimate_kind = "activation"

    def describe(self, layer: Any, where: str) -> LayerSpec:
        cls = type(layer).__name__
        kind = {"ReLU": "relu", "Softmax": "softmax"}.get(cls) or activation_name(layer.activation)
        if cls == "ReLU" and (layer.max_value is not None or float(layer.negative_slope) != 0.0):
            raise ModelError(
                f"layer {where}: only a plain ReLU (no max_value, no negative slope) is supported"
            )
        return LayerSpec(layer.name, "Activation", activation_kind=kind)

    def precision(self, spec: LayerSpec, walk: PrecisionWalk) -> None:
        kind = spec.activation_kind or "linear"
        if kind == "linear":
            return
        if kind == "relu":
            walk.current = relu_result(walk.type_in)
            walk.out[spec.name] = LayerPrecision({"result": walk.current}, "relu of an exact value, exact")
        elif kind in FINAL_ONLY and walk.last:
            walk.out[spec.name] = LayerPrecision(
                {}, f"final {kind}: hls4ml lookup tables", final_activation=kind
            )
        else:
            raise ModelError(
                f"layer {spec.where}: activation {kind!r} is supported only as the model's last layer (softmax, "
                "sigmoid) or as relu/linear; quantize it with QActivation(quantized_relu(...))"
            )
