"""The exact reference both firmware flows are held to: the QKeras model run layer for layer in float64.

Each layer's handler builds its float64 twin (:meth:`kd_trigger.layers.base.LayerHandler.twin`).
Inputs are put on the firmware's input grid by the model's own input quantizer; outputs are compared
exactly (:func:`compare_outputs`, pure numpy).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from kd_trigger.evaluate import roc_auc, scores_from_logits
from kd_trigger.fixed import FixedType
from kd_trigger.layers.batchnorm import BatchNormHandler
from kd_trigger.layers.dense import DenseHandler, emulated_dense, emulated_relu
from kd_trigger.layers.keras import activation_name
from kd_trigger.layers.lookup import emulated_lookup
from kd_trigger.layers.pooling import emulated_pool
from kd_trigger.layers.registry import DEFAULT, find_handler
from kd_trigger.layers.spec import LayerPrecision

CHUNK = 1024
"""Samples per call of a model (bounded memory)."""


def float64_twin(
    model: Any,
    exact_weights: dict[str, dict[str, np.ndarray]] | None = None,
    precision: dict[str, LayerPrecision] | None = None,
) -> Any:
    """The same single-chain QKeras model, layer for layer with the same weights, computing in float64.

    QKeras evaluates in float32, whose 24-bit significand holds the exact fixed-point sums only while
    they stay below 2^24 LSBs; the derived accumulators of a wide model can exceed that, and then QKeras
    itself is the inexact side of a comparison. In float64 every type up to 53 bits is exact, so the
    twin is the reference the firmware is held to. QKeras casts to Keras' floatx inside its quantizers,
    hence floatx is float64 while the twin is built and while it runs (see :func:`run_twin`).

    Each layer's handler (:mod:`kd_trigger.layers`) builds its twin. ``exact_weights``
    (:func:`kd_trigger.layers.model.quantized_weights`) replaces the float weights of layers without
    quantizers by the rounded values the firmware holds, and a batch norm by its rounded
    ``x * scale + bias``. A Dense/Conv1D's own activation is split into a layer ``<name>_<activation>``,
    as hls4ml does, so that the value before a final softmax can be compared. A layer of ``precision``
    marked ``emulated`` (configured types narrower than exact) computes as hls4ml does with them.
    """
    import tensorflow as tf

    exact_weights = exact_weights or {}
    previous = tf.keras.backend.floatx()
    tf.keras.backend.set_floatx("float64")
    try:
        inputs = tf.keras.Input(
            shape=model.input_shape[1:], dtype="float64", name=model.inputs[0].name.split(":")[0]
        )
        x = inputs
        input_cast: FixedType | None = None
        at_input = True  # only the input layer walked so far: a quantizer here is the input quantizer
        for layer in model.layers:
            chosen = (precision or {}).get(layer.name)
            kind = _kind(layer)
            if kind == "input":
                if chosen is not None and chosen.emulated:
                    input_cast = chosen.types["result"]  # cast after the input quantizer's twin, see below
                continue
            first, at_input = at_input, False
            configured = input_cast is not None or (chosen is not None and chosen.emulated)
            if kind == "quantizer" and first and configured:
                assert chosen is not None
                x = configured_input(layer, x, input_cast, chosen)
                continue
            if chosen is not None and chosen.kind == "lookup":
                x = lookup_layer(layer.name, chosen)(x)
                continue
            inner = activation_name(getattr(layer, "activation", "linear"))
            split = (precision or {}).get(f"{layer.name}_{inner}")
            activation = (
                lookup_layer(f"{layer.name}_{inner}", split) if split and split.kind == "lookup" else None
            )
            if chosen is not None and chosen.emulated and chosen.kind in ("relu", "linear"):
                x = emulated_relu(layer.name, x, chosen.types["result"], relu=chosen.kind == "relu")
                continue
            if chosen is not None and chosen.emulated and chosen.kind == "pooling":
                n = int(layer.input_shape[1])
                x = emulated_pool(layer.name, x, n, chosen.types["accum"], chosen.types["result"])
                continue
            if chosen is not None and chosen.emulated and chosen.kind == "batchnorm":
                x = BatchNormHandler().emulated_twin(layer, x, exact_weights, chosen.types["result"])
                continue
            if chosen is not None and chosen.emulated:
                split = (precision or {}).get(f"{layer.name}_relu")
                result = split.types["result"] if split is not None and split.emulated else None
                x = emulated_dense(layer, x, exact_weights[layer.name], chosen.types, result, activation)
                continue
            handler = find_handler(type(layer).__name__) or DEFAULT
            if activation is not None and isinstance(handler, DenseHandler):
                x = handler.split_twin(layer, x, exact_weights, activation)
                continue
            x = handler.twin(layer, x, exact_weights)
        return tf.keras.Model(inputs, x, name=f"{model.name}_float64")
    finally:
        tf.keras.backend.set_floatx(previous)


AS_CONFIGURED = "_as_configured"
"""Suffix of the twin layer that holds a first quantizer's output as the configured firmware computes it
(:func:`configured_input`); :func:`keras_layer_outputs` reads that layer for the quantizer's name."""


def configured_input(layer: Any, x: Any, input_type: FixedType | None, chosen: LayerPrecision) -> Any:
    """The first quantizer of a design whose input type or quantizer result type is configured, in the twin.

    The inputs arrive on the quantizer's grid (:func:`quantize_inputs` puts them there with the quantizer's
    own twin, kept under the layer's name), and the firmware casts them onto its input type (``input_type``,
    when configured narrower) and then, as hls4ml builds the quantizer, applies a relu or linear activation
    whose result type is the quantizer's (configured) result type.
    """
    x = (find_handler(type(layer).__name__) or DEFAULT).twin(layer, x, {})
    name, relu = f"{layer.name}{AS_CONFIGURED}", chosen.kind == "relu"
    return emulated_relu(name, x, chosen.types["result"], relu=relu, input_type=input_type)


def lookup_layer(name: str, chosen: LayerPrecision) -> Callable[[Any], Any]:
    """The emulated lookup-table activation ``name`` (its function and types in ``chosen``), to apply."""
    assert chosen.function is not None and chosen.input_type is not None
    function, input_type = chosen.function, chosen.input_type
    return lambda x: emulated_lookup(name, x, function, chosen, input_type)


def _kind(layer: Any) -> str | None:
    handler = find_handler(type(layer).__name__)
    return handler.kind if handler is not None else None


def run_twin(twin: Any, x: np.ndarray) -> np.ndarray:
    """Outputs of a :func:`float64_twin` (float64), in chunks."""
    import tensorflow as tf

    previous = tf.keras.backend.floatx()
    tf.keras.backend.set_floatx("float64")
    try:
        outs = [
            np.asarray(twin(np.asarray(x[i : i + CHUNK], dtype=np.float64), training=False), dtype=np.float64)
            for i in range(0, len(x), CHUNK)
        ]
    finally:
        tf.keras.backend.set_floatx(previous)
    return np.concatenate(outs) if outs else np.zeros((0,) + tuple(twin.output_shape[1:]))


def quantize_inputs(twin: Any, x: np.ndarray, input_type: FixedType | None = None) -> np.ndarray:
    """``x`` put on the firmware's input grid: by the first layer (the input QActivation) of the float64
    twin, or, for a model without an input quantizer, rounded onto ``input_type`` (half to even,
    saturated). Either way exactly the numbers the firmware's input type holds."""
    import tensorflow as tf

    first = next(layer for layer in twin.layers if _kind(layer) != "input")
    if _kind(first) != "quantizer":
        if input_type is None:
            raise ValueError("a model without an input quantizer needs the input type")
        return np.ascontiguousarray(input_type.quantize(x))
    previous = tf.keras.backend.floatx()
    tf.keras.backend.set_floatx("float64")
    try:
        out = [
            np.asarray(first(tf.constant(x[i : i + CHUNK], dtype=tf.float64)), dtype=np.float64)
            for i in range(0, len(x), CHUNK)
        ]
    finally:
        tf.keras.backend.set_floatx(previous)
    return np.ascontiguousarray(np.concatenate(out) if out else np.zeros(np.shape(x), dtype=np.float64))


def qkeras_predict(model: Any, x: np.ndarray) -> np.ndarray:
    """The QKeras model's own float32 outputs (as in training), as float64."""
    outs = [
        np.asarray(model(x[i : i + CHUNK].astype(np.float32), training=False), dtype=np.float64)
        for i in range(0, len(x), CHUNK)
    ]
    return np.concatenate(outs) if outs else np.zeros((0,) + tuple(model.output_shape[1:]))


def _auc(labels: np.ndarray | None, logits: np.ndarray) -> float | None:
    if labels is None or logits.shape[1] != 2 or len(np.unique(labels)) < 2:
        return None
    # The same score and AUC as the physics metrics: l1 - l0 keeps every distinct fixed-point output
    # distinct, where a float softmax can round large logit gaps to equal probabilities.
    return roc_auc(labels, scores_from_logits(logits))


def compare_outputs(
    y_qkeras: np.ndarray, y_hls: np.ndarray, labels: np.ndarray | None = None
) -> dict[str, float | int | None]:
    """Exact-agreement figures of two output arrays (pure numpy, no TensorFlow)."""
    y_qkeras = np.asarray(y_qkeras, dtype=np.float64).reshape(len(y_qkeras), -1)
    y_hls = np.asarray(y_hls, dtype=np.float64).reshape(len(y_hls), -1)
    if y_qkeras.shape != y_hls.shape:
        raise ValueError(f"output shapes differ: QKeras {y_qkeras.shape}, C simulation {y_hls.shape}")
    diff = np.abs(y_qkeras - y_hls)
    return {
        "n_samples": int(len(y_qkeras)),
        "n_outputs": int(y_qkeras.size),
        "exact_fraction": float(np.mean(diff == 0.0)) if diff.size else 1.0,
        "max_abs_diff": float(diff.max()) if diff.size else 0.0,
        "argmax_agreement": float(np.mean(y_qkeras.argmax(1) == y_hls.argmax(1))) if len(diff) else 1.0,
        "auc_qkeras": _auc(labels, y_qkeras),
        "auc_hls": _auc(labels, y_hls),
        "nonzero_output_fraction": float(np.mean(y_qkeras != 0.0)) if diff.size else 0.0,
    }


def keras_layer_outputs(twin: Any, x: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
    """Outputs of the named layers of a float64 twin for ``x`` (one sub-model with all of them as outputs)."""
    import tensorflow as tf

    present = {layer.name for layer in twin.layers}
    layers = [twin.get_layer(f"{n}{AS_CONFIGURED}" if f"{n}{AS_CONFIGURED}" in present else n) for n in names]
    previous = tf.keras.backend.floatx()
    tf.keras.backend.set_floatx("float64")
    try:
        sub = tf.keras.Model(twin.inputs, [layer.output for layer in layers])
        outs = sub(np.asarray(x, dtype=np.float64), training=False)
    finally:
        tf.keras.backend.set_floatx(previous)
    if not isinstance(outs, list | tuple):
        outs = [outs]
    return {n: np.asarray(o, dtype=np.float64) for n, o in zip(names, outs, strict=True)}
