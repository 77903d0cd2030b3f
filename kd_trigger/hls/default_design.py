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
from kd_trigger.hls.project_config import float_layers, input_quantized, parse_precision

log = logging.getLogger(__name__)

DESIGN = "hls4ml default (config_from_keras_model(model, granularity='name'))"
"""How the report names the design built for a model given without any types."""

_KEYS = ("weight", "bias", "accum", "result", "scale")
"""The hls4ml type keys our layers have (tables and index types are hls4ml's own business)."""


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
) -> tuple[str, dict[str, dict[str, str]]]:
    """hls4ml's model default precision and, per layer, the types its graph resolves from ``config``
    (an engineer's HLSConfig), by default ``config_from_keras_model(model, granularity="name")``
    (nothing is written)."""
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
    floats = float_layers(model)
    for layer in model.layers:
        if layer.name in floats and layer.name not in resolved:
            raise ModelError(
                f"hls4ml folds layer '{layer.name}' ({type(layer).__name__}) into the constants of the layer "
                "before it, which the reference does not emulate; give its types with --default-precision "
                "'ap_fixed<W,I>' (exact accumulators)"
            )
    types: dict[str, dict[str, str]] = {}
    for name, by_key in resolved.items():
        for key, text in by_key.items():
            # A quantized layer's constants are its quantizers' (hls4ml writes them already quantized).
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
    return default.hls(), types


def default_design(model: Any, hls: HlsConfig, config: dict[str, Any] | None = None) -> HlsConfig:
    """``hls`` set up to build hls4ml's design of ``model`` from ``config`` (an engineer's HLSConfig;
    None: hls4ml's default config): the types hls4ml resolves configured per layer, its model default
    as the input type (without an input quantizer) and as the float weights' type."""
    default, types = hls4ml_default_types(model, hls, config)
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
    return hls.model_copy(update=update)


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
    model: Any, converted: Any, x_raw: np.ndarray, compared_layer: str | None, design: str
) -> dict[str, Any]:
    """:func:`precision_loss` of the converted design (``Converted``) against ``model`` on ``x_raw``."""
    from kd_trigger.layers.model import quantized_weights
    from kd_trigger.layers.reference import float64_twin, keras_layer_outputs, quantize_inputs, run_twin

    x_raw = np.asarray(x_raw, dtype=np.float64)
    twin = float64_twin(model, quantized_weights(model, converted.precision), converted.precision)
    x = quantize_inputs(twin, x_raw, converted.input_type)
    reference = float64_twin(model)
    if compared_layer is None:
        y_design, y_float = run_twin(twin, x), run_twin(reference, x_raw)
    else:
        y_design = keras_layer_outputs(twin, x, [compared_layer])[compared_layer]
        y_float = keras_layer_outputs(reference, x_raw, [compared_layer])[compared_layer]
    return precision_loss(y_float, y_design, compared_layer, design)


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
