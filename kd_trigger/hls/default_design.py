"""The design hls4ml builds by default for a model with float layers (``hls --model`` with no types given).

A model saved without quantizers (hls4ml's jet tagger KERAS_3layer, for instance) has no derivable
firmware types. Without ``--hls-config``, ``--input-precision``, ``--default-precision`` or
``--precision``, the design built is the one hls4ml builds with its own default configuration,
``config_from_keras_model(model, granularity="name")``: the types hls4ml 1.3 resolves from it (its
model default ``ap_fixed<16,6>`` for the input, the float weights and biases, the accumulators and the
activations; results it infers) are read off hls4ml's own model graph and become the configured types
of every layer (:func:`kd_trigger.layers.model.apply_configured_types`). The reference then emulates
that design (truncation and wrap-around included), so the C-simulation gate stays exact, and the
precision loss against the float model is measured apart (:func:`precision_loss`).
"""

from __future__ import annotations

import logging
import tempfile
from typing import Any

import numpy as np

from kd_trigger.config import HlsConfig
from kd_trigger.errors import ConfigError, ModelError
from kd_trigger.hls.convert import hls_layer_precision, quiet_hls4ml
from kd_trigger.hls.layer_loss import (
    input_overflow_count,
    layer_overflow_counts,
    layer_precision_loss,
    reference_names,
    widened,
)
from kd_trigger.hls.project_config import float_layers, input_quantized, parse_precision
from kd_trigger.layers.lookup import LOOKUP_SPAN
from kd_trigger.layers.reference import AS_CONFIGURED
from kd_trigger.layers.registry import find_handler

log = logging.getLogger(__name__)

DESIGN = "hls4ml default (config_from_keras_model(model, granularity='name'))"
"""How the report names the design built for a model given without any types."""

_KEYS = ("weight", "bias", "accum", "result", "scale", "table")
"""The hls4ml type keys our layers have (a lookup-table activation's table included; index types are
hls4ml's own business)."""


def needs_default_design(model: Any, hls: HlsConfig) -> bool:
    """Whether ``model`` gets the design hls4ml resolves (from its default config, or from the one given):
    it has float layers or no input quantizer, and no type was given for them on the command line or in
    the pipeline config (no input or default precision, no per-layer precision)."""
    given = hls.input_precision or hls.default_precision or any(s.precision for s in hls.layers.values())
    if given:
        return False
    return bool(float_layers(model)) or not input_quantized(model)


def hls4ml_default_types(
    model: Any, hls: HlsConfig, config: dict[str, Any] | None = None
) -> tuple[str, dict[str, dict[str, str]], dict[str, tuple[str, Any]]]:
    """hls4ml's model default precision and, per layer, the types its graph resolves from ``config``
    (an engineer's HLSConfig), by default ``config_from_keras_model(model, granularity="name")``
    (nothing is written); and the batch norms it fused (:func:`_fused_batch_norms`)."""
    import copy

    import hls4ml

    from kd_trigger.hls.convert import check_supported

    check_supported(model, hls)
    # As hls4ml's tutorials call it: without a backend, the config has no accum entries, and hls4ml's
    # accumulators take the model default (with backend="Vitis" they would be 'auto', inferred exact).
    if config is None:
        config = hls4ml.utils.config_from_keras_model(model, granularity="name")
    config = copy.deepcopy(config)
    with tempfile.TemporaryDirectory(prefix="kd_trigger_default_") as tmp, quiet_hls4ml():
        try:
            graph = hls4ml.converters.convert_from_keras_model(
                model,
                hls_config=config,
                output_dir=tmp,
                backend=hls.backend,
                io_type=hls.io_type,
                part=hls.part,
                clock_period=hls.clock_period_ns,
            )
        except Exception as err:  # hls4ml raises bare Exception/RuntimeError for what it cannot convert
            text = " ".join(str(err).split())[:300]
            raise ModelError(f"hls4ml cannot convert this model: {text}") from None
        resolved = hls_layer_precision(graph)
        # every hls4ml activation has a table type; only the lookup-table functions use it
        lookups = {
            layer.name
            for layer in graph.get_layers()
            if str(layer.get_attr("activation", "")).lower() in LOOKUP_SPAN
        }
        fused = _fused_batch_norms(model, graph, resolved)
    floats = float_layers(model)
    types: dict[str, dict[str, str]] = {}
    for name, by_key in resolved.items():
        for key, text in by_key.items():
            # A quantized layer's constants are its quantizers' (hls4ml writes them already quantized).
            if key == "table" and name not in lookups:
                continue
            if key not in _KEYS or (key in ("weight", "bias") and name not in floats):
                continue
            try:
                t = parse_precision(text, f"layer '{name}' {key}")
            except ConfigError:
                raise ModelError(
                    f"hls4ml's default design gives layer '{name}' {key} type {text}, which the reference "
                    "cannot emulate (fixed-point types only); give the types with --hls-config"
                ) from None
            if t is not None:
                types.setdefault(name, {})[key] = t.hls()
    precision = config["Model"].get("Precision", "fixed<16,6>")
    text = precision.get("default", "fixed<16,6>") if isinstance(precision, dict) else precision
    default = parse_precision(text, "Model Precision")
    if default is None:
        raise ModelError("Model Precision auto: hls4ml needs a fixed-point default type for float layers")
    return default.hls(), types, fused


def _fused_batch_norms(model: Any, graph: Any, resolved: dict[str, Any]) -> dict[str, tuple[str, Any]]:
    """The float batch norms hls4ml fused into the Dense before it (its FuseBatchNormalization pass,
    taken when that layer's result type is auto): {batch norm: (dense, {weight, bias} as hls4ml computed
    them, in float)}. Any other float layer missing from hls4ml's graph: ModelError naming it."""
    floats = float_layers(model)
    by_name = {layer.name: layer for layer in graph.get_layers()}
    fused: dict[str, tuple[str, Any]] = {}
    for i, layer in enumerate(model.layers):
        if layer.name not in floats or layer.name in resolved:
            continue
        before = model.layers[i - 1] if i > 0 else None
        kind = find_handler(type(layer).__name__)
        if kind is None or kind.kind != "batchnorm" or before is None or before.name not in by_name:
            raise ModelError(
                f"hls4ml removes layer '{layer.name}' ({type(layer).__name__}) from its design in a way the "
                "reference does not emulate; give its types with --default-precision 'ap_fixed<W,I>'"
            )
        dense = by_name[before.name]
        arrays = {k: np.asarray(dense.weights[k].data, dtype=np.float64) for k in ("weight", "bias")}
        fused[layer.name] = (before.name, arrays)
    return fused


def fused_model(model: Any, fused: dict[str, tuple[str, Any]]) -> Any:
    """``model`` with every batch norm of ``fused`` folded into the Dense before it, with the fused float
    constants hls4ml computed: the design hls4ml builds, layer for layer (a single-chain model)."""
    if not fused:
        return model
    import tensorflow as tf

    from kd_trigger.layers.keras import qkeras_objects

    into = {dense: arrays for dense, arrays in fused.values()}
    x = inputs = tf.keras.Input(shape=model.input_shape[1:], name=model.layers[0].name)
    for layer in model.layers[1:]:
        if layer.name in fused:
            continue
        with tf.keras.utils.custom_object_scope(qkeras_objects()):
            copy = type(layer).from_config(layer.get_config())
        x = copy(x)
        weights = layer.get_weights()
        if layer.name in into:
            kernel = into[layer.name]["weight"].reshape(np.shape(weights[0]))
            weights = [kernel, into[layer.name]["bias"].reshape(np.shape(weights[1]))]
        copy.set_weights(weights)
    return tf.keras.Model(inputs, x, name=model.name)


def default_design(model: Any, hls: HlsConfig, config: dict[str, Any] | None = None) -> tuple[HlsConfig, Any]:
    """``hls`` set up to build hls4ml's design of ``model`` from ``config`` (an engineer's HLSConfig;
    None: hls4ml's default config): the types hls4ml resolves configured per layer, its model default
    as the input type (without an input quantizer) and as the float weights' type; and the model that
    design computes (``model``, or with the batch norms hls4ml fuses folded, :func:`fused_model`)."""
    default, types, fused = hls4ml_default_types(model, hls, config)
    for bn, (dense, _) in fused.items():
        log.info(
            "%s: hls4ml fuses batch norm %s into %s; so does the design built here", model.name, bn, dense
        )
    update: dict[str, Any] = {"configured_types": types, "default_precision": default}
    if not input_quantized(model):
        input_name = model.layers[0].name
        update["input_precision"] = types.get(input_name, {}).get("result", default)
    log.info(
        "%s: no types given for its float layers: building hls4ml's default design (%s everywhere hls4ml "
        "puts its default); the precision loss against the float model is measured",
        model.name,
        default,
    )
    return hls.model_copy(update=update), fused_model(model, fused)


def precision_loss(
    y_float: np.ndarray, y_design: np.ndarray, compared_layer: str | None, design: str
) -> dict[str, Any]:
    """How far the design's outputs are from the float model's (``precision_loss`` of hls_report.json).

    ``y_float``: the model's own arithmetic (Keras in float64, QKeras quantizers included) on the given
    inputs; ``y_design``: the configured design's outputs (the exact reference the C simulation equals)
    on the same inputs put on the firmware's input grid. Compared before a final softmax/sigmoid
    (``compared_layer``), as the gate is. ``decision_changed_fraction``: samples whose argmax (one
    output: its sign, the 0.5 cut of a sigmoid) differs.
    """
    f = np.asarray(y_float, dtype=np.float64).reshape(len(y_float), -1)
    d = np.asarray(y_design, dtype=np.float64).reshape(len(y_design), -1)
    diff = np.abs(f - d)
    one = f.shape[1] == 1
    changed = ((f[:, 0] > 0) != (d[:, 0] > 0)) if one else (f.argmax(1) != d.argmax(1))
    return {
        "design": design,
        "reference": "the model in float64 (its own quantizers, float layers unquantized)",
        "compared_layer": compared_layer,
        "n_samples": int(len(f)),
        "max_abs_diff": float(diff.max()) if diff.size else 0.0,
        "mean_abs_diff": float(diff.mean()) if diff.size else 0.0,
        "decision_changed_fraction": float(np.mean(changed)) if len(f) else 0.0,
    }


def measure_precision_loss(
    model: Any,
    converted: Any,
    x_raw: np.ndarray,
    compared_layer: str | None,
    design: str,
    float_model: Any = None,
) -> dict[str, Any]:
    """:func:`precision_loss` of the converted design (``Converted``) of ``model`` against
    ``float_model`` (default ``model``; the saved model where the design fused its batch norms)."""
    from kd_trigger.layers.model import quantized_weights
    from kd_trigger.layers.reference import float64_twin, keras_layer_outputs, quantize_inputs

    x_raw = np.asarray(x_raw, dtype=np.float64)
    twin = float64_twin(model, quantized_weights(model, converted.precision), converted.precision)
    x = quantize_inputs(twin, x_raw, converted.input_type)
    saved = float_model if float_model is not None else model
    # Quantized layers hold QKeras' own quantized constants (its power-of-two scales cannot run in
    # float64), float layers their float weights: the model's own arithmetic.
    reference = float64_twin(saved, quantized_weights(saved))
    names = _compared_layers(twin, compared_layer)
    reference_of = reference_names(model, saved)
    y_design = keras_layer_outputs(twin, x, names)
    y_float = keras_layer_outputs(
        reference,
        x_raw,
        [reference_of.get(n, n) for n in names if reference_of.get(n, n) in _names(reference)],
    )
    last = names[-1]
    loss = precision_loss(y_float[reference_of.get(last, last)], y_design[last], compared_layer, design)
    emulated = {name for name, chosen in converted.precision.items() if chosen.emulated}
    wide = float64_twin(model, quantized_weights(model, converted.precision), widened(converted.precision))
    overflows = layer_overflow_counts(twin, wide, y_design, emulated)
    first = names[0]
    if not input_quantized(model) and converted.input_type is not None:
        overflows[first] = input_overflow_count(x_raw, converted.input_type)
    else:
        names = names[1:]  # the input quantizer puts the inputs on the grid in the model too
    layers, first_overflow = layer_precision_loss(
        names, y_design, y_float, overflows, converted.precision, reference_of
    )
    loss["layers"] = layers
    loss["first_overflow_layer"] = first_overflow
    return loss


def _names(twin: Any) -> set[str]:
    return {layer.name for layer in twin.layers}


def _compared_layers(twin: Any, compared_layer: str | None) -> list[str]:
    """The design twin's layers in model order, up to the compared one (a final lookup-table softmax or
    sigmoid is not part of the exact design, as in the gate)."""
    names: list[str] = []
    for layer in twin.layers:
        if layer.name.endswith(AS_CONFIGURED):
            continue  # read under the quantizer's own name (keras_layer_outputs)
        names.append(layer.name)
        if layer.name == compared_layer:
            break
    return names


__all__ = [
    "DESIGN",
    "default_design",
    "float_layers",
    "input_quantized",
    "hls4ml_default_types",
    "measure_precision_loss",
    "needs_default_design",
    "precision_loss",
]
