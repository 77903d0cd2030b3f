"""BatchNormalization: ``x * scale + bias`` with constants rounded onto a type given at intake."""

from __future__ import annotations

from typing import Any

import numpy as np

from kd_trigger.errors import ModelError
from kd_trigger.fixed import FixedType, accumulator_type, product_type
from kd_trigger.layers.base import LayerHandler, PrecisionWalk
from kd_trigger.layers.dense import rounded
from kd_trigger.layers.spec import LayerPrecision, LayerSpec


class BatchNormHandler(LayerHandler):
    """A batch norm as the firmware computes it: one product and one add per value, exact."""

    kind = "batchnorm"
    keras_classes = ("BatchNormalization",)
    hls4ml_classes = ("BatchNormalization",)
    estimate_kind = "batchnormalization"

    def precision(self, spec: LayerSpec, walk: PrecisionWalk) -> None:
        assumed = walk.intake.assumed_type(spec.name)
        if assumed is None:
            raise ModelError(
                f"layer {spec.where}: its scale and bias have no quantizer; give their type with --default-precision "
                "'ap_fixed<W,I>' (config: hls.default_precision or hls.layers.<name>.precision)"
            )
        t = assumed.exact()
        accum = accumulator_type(product_type(walk.type_in, t), 1, t)
        walk.out[spec.name] = LayerPrecision(
            {"scale": t, "bias": t, "result": accum},
            "scale and bias assumed; x * scale + bias, exact",
            assumed=True,
            kind="batchnorm",
        )
        walk.current = accum

    def twin(self, layer: Any, x: Any, exact_weights: dict[str, dict[str, np.ndarray]]) -> Any:
        """``x * scale + bias`` with the firmware's rounded constants, in float64 (else the Keras layer)."""
        if layer.name not in exact_weights:
            return super().twin(layer, x, exact_weights)
        import tensorflow as tf

        arrays = exact_weights[layer.name]
        s = tf.constant(arrays["scale"], dtype=tf.float64)
        b = tf.constant(arrays["bias"], dtype=tf.float64)
        return tf.keras.layers.Lambda(lambda v: v * s + b, name=layer.name, dtype="float64")(x)

    def emulated_twin(
        self, layer: Any, x: Any, exact_weights: dict[str, dict[str, np.ndarray]], result: FixedType
    ) -> Any:
        """A configured result type narrower than exact, as hls4ml's normalize computes it
        (nnet_batchnorm.h: ``res = data * scale + bias``, the full-precision value assigned to ``res_T``):
        the exact value (at most 53 bits, checked when the types were applied) cast by its modes."""
        import tensorflow as tf

        from kd_trigger.layers.apcast import ap_cast

        arrays = exact_weights[layer.name]
        s = tf.constant(arrays["scale"], dtype=tf.float64)
        b = tf.constant(arrays["bias"], dtype=tf.float64)
        return tf.keras.layers.Lambda(lambda v: ap_cast(v * s + b, result), name=layer.name, dtype="float64")(
            x
        )

    def firmware_weights(
        self, layer: Any, types: dict[str, FixedType], as_hls4ml: bool = False
    ) -> dict[str, np.ndarray] | None:
        """Scale gamma / sqrt(var + eps) and bias beta - mean x scale, rounded onto the assumed types."""
        if "scale" not in types:
            return None
        gamma = np.asarray(layer.gamma.numpy() if layer.scale else 1.0, dtype=np.float64)
        beta = np.asarray(layer.beta.numpy() if layer.center else 0.0, dtype=np.float64)
        var = np.asarray(layer.moving_variance.numpy(), dtype=np.float64)
        mean = np.asarray(layer.moving_mean.numpy(), dtype=np.float64)
        scale = gamma / np.sqrt(var + float(layer.epsilon))
        scale = np.broadcast_to(scale, var.shape)
        return {
            "scale": rounded(scale, types["scale"], as_hls4ml),
            "bias": rounded(np.broadcast_to(beta - mean * scale, var.shape), types["bias"], as_hls4ml),
        }
