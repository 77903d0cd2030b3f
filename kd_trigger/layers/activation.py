"""Activations: the QActivation quantizer, and plain Keras activations (relu, linear, lookup-table functions
anywhere, final softmax/sigmoid)."""

from __future__ import annotations

from typing import Any

import numpy as np

from kd_trigger.errors import ModelError
from kd_trigger.fixed import FixedType
from kd_trigger.layers.base import LayerHandler, PrecisionWalk, ProgramWalk, out_shape
from kd_trigger.layers.keras import activation_name, quantizer_type
from kd_trigger.layers.lookup import LOOKUP_SPAN, lookup_precision
from kd_trigger.layers.spec import LayerPrecision, LayerSpec
from kd_trigger.layers.step import Step, StepKind, derived_type

FINAL_ONLY = frozenset({"softmax", "sigmoid"})
"""Activations converted with hls4ml's lookup tables that, as the model's last layer, are left out of the
exact comparison (judged before them); a sigmoid elsewhere is emulated (:mod:`kd_trigger.layers.lookup`)."""


def activation_precision(
    name: str, where: str, kind: str, walk: PrecisionWalk, hint: str
) -> LayerPrecision | None:
    """The types of activation ``kind`` applied to ``walk.current`` (None: linear, nothing to compute).

    relu keeps the exact type; a final softmax/sigmoid is hls4ml's tables, outside the exact comparison;
    tanh, sigmoid, softplus and softsign elsewhere (tanh, softplus, softsign last too) are emulated
    lookup tables. Anything else: ModelError naming the layer, why, and ``hint``.
    """
    if kind == "linear":
        return None
    if kind == "relu":
        return LayerPrecision(
            {"result": relu_result(walk.type_in)}, "relu of an exact value, exact", kind="relu"
        )
    if kind in FINAL_ONLY and walk.last:
        return LayerPrecision({}, f"final {kind}: hls4ml lookup tables", final_activation=kind)
    if kind in LOOKUP_SPAN:
        return lookup_precision(name, where, kind, walk.type_in, walk.intake.table_sizes.get(name))
    raise ModelError(
        f"layer {where}: activation {kind!r} has no bit-exact reference here (supported: relu, linear, "
        f"{', '.join(LOOKUP_SPAN)} as hls4ml's lookup tables, softmax last); {hint}"
    )


def relu_result(t: FixedType) -> FixedType:
    """ReLU keeps every non-negative value of ``t``: the same bits serve (exact, never overflows)."""
    return t.exact()


def exact_relu(quantizer: Any) -> bool:
    """A plain ``quantized_relu`` (no slope, sigmoid, upper bound or noise): its outputs are exactly the
    single half-to-even rounding of its input onto ``ap_ufixed<bits, integer>``, saturated."""
    if type(quantizer).__name__ != "quantized_relu":
        return False
    conf = quantizer.get_config()
    return (
        float(conf.get("negative_slope") or 0.0) == 0.0
        and not conf.get("use_sigmoid")
        and conf.get("relu_upper_bound") is None
        and float(conf.get("qnoise_factor") if conf.get("qnoise_factor") is not None else 1.0) == 1.0
    )


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
        # hls4ml builds every quantizer as a plain relu/linear activation whose result type is the
        # quantizer's grid, or the configured type: a configured one other than the grid is emulated. The
        # first one too: the inputs arrive on its grid, and the firmware casts them onto the configured
        # input type and then onto its result type (kd_trigger.layers.reference.float64_twin).
        kind = {"quantized_relu": "relu", "quantized_bits": "linear"}.get(spec.activation_class or "", "")
        walk.out[spec.name] = LayerPrecision({"result": walk.current}, "quantizer", kind=kind)

    def twin(self, layer: Any, x: Any, exact_weights: dict[str, dict[str, np.ndarray]]) -> Any:
        """A ``quantized_relu`` rounds in float64, once, onto its grid; other quantizers as QKeras has them.

        Why (issue 22, the 1-LSB divergence at ``quantized_relu(18, 3)``): QKeras' ``quantized_relu``
        casts its input to float32 whatever Keras' floatx is (``x = K.cast(x, dtype="float32")``,
        qkeras/quantizers.py), where ``quantized_bits`` uses floatx. An accumulator with more than about
        24 significant bits (23 fractional bits at values of 4..8, for instance) is then rounded twice:
        to float32, which can land exactly on a tie of the quantizer's grid, then half to even onto the
        grid, one LSB off the single rounding the firmware (``ap_ufixed<18,3,AP_RND_CONV,AP_SAT>`` of
        the exact accumulator) does. The twin is the exact reference, so it does that single rounding.
        """
        quantizer = layer.quantizer
        if not exact_relu(quantizer):
            return super().twin(layer, x, exact_weights)
        import tensorflow as tf

        t = quantizer_type(quantizer, f"'{layer.name}' (QActivation)")[0]
        scale, top = 2.0**t.fractional, float(t.max_code)

        def quantize(v: Any) -> Any:
            # tf.round is half to even, as QKeras' rounding; clipping the code to [0, 2**bits - 1] is
            # its relu and its saturation at 2**integer - LSB.
            return tf.clip_by_value(tf.round(tf.cast(v, tf.float64) * scale), 0.0, top) / scale

        return tf.keras.layers.Lambda(quantize, name=layer.name, dtype="float64")(x)

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
    """Activation, ReLU, Softmax: relu of an exact value is exact; linear is nothing; tanh, sigmoid,
    softplus, softsign are hls4ml's lookup tables, emulated; softmax only as the model's last layer."""

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
        chosen = activation_precision(
            spec.name,
            spec.where,
            spec.activation_kind or "linear",
            walk,
            "quantize it with QActivation(quantized_relu(...)) or replace the function",
        )
        if chosen is None:
            return
        walk.out[spec.name] = chosen
        if "result" in chosen.types:
            walk.current = chosen.types["result"]
