"""C simulation of the compiled firmware against the QKeras model it came from.

The firmware must compute exactly what QKeras computes. The reference is the QKeras model itself,
run layer for layer in float64 (:func:`float64_twin`): there every derived fixed-point type up to 53
bits is exact, where float32 QKeras rounds sums beyond 2^24 LSBs. Inputs are first put on the student's
input grid by its own input quantizer (so both sides see the same numbers), then the compiled C++
(g++, no vendor tools) and QKeras predict the same samples; every output is compared exactly.
On a mismatch, hls4ml's per-layer trace is compared with per-layer Keras outputs to name the first
layer that diverges.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from typing import Any

import numpy as np
from tqdm import tqdm

from kd_trigger.contracts import CsimBlock
from kd_trigger.evaluate import roc_auc, scores_from_logits
from kd_trigger.fixed import FixedType
from kd_trigger.hls.convert import quantized_weights, quiet_hls4ml
from kd_trigger.layers.registry import DEFAULT, find_handler

log = logging.getLogger(__name__)

CHUNK = 1024


def float64_twin(model: Any, exact_weights: dict[str, dict[str, np.ndarray]] | None = None) -> Any:
    """The same single-chain QKeras model, layer for layer with the same weights, computing in float64.

    QKeras evaluates in float32, whose 24-bit significand holds the exact fixed-point sums only while
    they stay below 2^24 LSBs; the derived accumulators of a wide model can exceed that, and then QKeras
    itself is the inexact side of a comparison. In float64 every type up to 53 bits is exact, so the
    twin is the reference the firmware is held to. QKeras casts to Keras' floatx inside its quantizers,
    hence floatx is float64 while the twin is built and while it runs (see :func:`run_twin`).

    Each layer's handler (:mod:`kd_trigger.layers`) builds its twin. ``exact_weights``
    (:func:`kd_trigger.hls.convert.quantized_weights`) replaces the float weights of layers without
    quantizers by the rounded values the firmware holds, and a batch norm by its rounded
    ``x * scale + bias``. A Dense/Conv1D's own activation is split into a layer ``<name>_<activation>``,
    as hls4ml does, so that the value before a final softmax can be compared.
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
        for layer in model.layers:
            x = (find_handler(type(layer).__name__) or DEFAULT).twin(layer, x, exact_weights)
        return tf.keras.Model(inputs, x, name=f"{model.name}_float64")
    finally:
        tf.keras.backend.set_floatx(previous)


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


def hls_predict(hls_model: Any, x: np.ndarray, desc: str = "C simulation") -> np.ndarray:
    """C-simulation outputs (float64) of ``x`` (already on the input grid), with a progress bar."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    outs = []
    with tqdm(total=len(x), desc=desc, unit="jet", leave=False, disable=len(x) < 2 * CHUNK) as bar:
        for i in range(0, len(x), CHUNK):
            chunk = np.ascontiguousarray(x[i : i + CHUNK])
            y = np.asarray(hls_model.predict(chunk), dtype=np.float64)
            outs.append(y.reshape(len(chunk), -1))
            bar.update(len(chunk))
    return np.concatenate(outs) if outs else np.zeros((0, 0))


def softmax_top(logits: np.ndarray) -> np.ndarray:
    """Probability of class 1 (top) from two logits."""
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e[:, 1] / e.sum(axis=1)


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

    layers = [twin.get_layer(n) for n in names]
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


def first_divergent_layer(twin: Any, hls_model: Any, x: np.ndarray) -> tuple[str | None, dict[str, Any]]:
    """Name of the first layer (in model order) whose C-simulation output differs from QKeras, with figures.

    Uses hls4ml's trace (recompiles the project with tracing on) against the float64 twin, where every
    fixed-point value is exact: any difference is a real one. Layers hls4ml folded away are skipped.
    """
    x = np.ascontiguousarray(x, dtype=np.float64)
    with quiet_hls4ml(), _keep_cwd():
        _, trace = hls_model.trace(x)
    names = [layer.name for layer in twin.layers if layer.name in trace]
    keras_out = keras_layer_outputs(twin, x, names)
    per_layer: dict[str, Any] = {}
    first: str | None = None
    for name in names:
        k = keras_out[name].reshape(len(x), -1)
        h = np.asarray(trace[name], dtype=np.float64).reshape(len(x), -1)
        if k.shape != h.shape:
            per_layer[name] = {"shape_keras": list(k.shape), "shape_hls": list(h.shape)}
            continue
        diff = np.abs(k - h)
        per_layer[name] = {
            "exact_fraction": float(np.mean(diff == 0.0)),
            "max_abs_diff": float(diff.max()),
        }
        if first is None and float(diff.max()) > 0.0:
            first = name
    return first, per_layer


@contextlib.contextmanager
def _keep_cwd() -> Any:
    """hls4ml's trace() changes directory; make sure we come back even if it fails half way."""
    cwd = os.getcwd()
    try:
        yield
    finally:
        os.chdir(cwd)


def _pre_activation(twin: Any, name: str) -> str:
    """The layer whose output feeds the final activation ``name``."""
    names = [layer.name for layer in twin.layers]
    index = names.index(name)
    return names[index - 1]


def run_csim(
    model: Any,
    converted: Any,
    x_raw: np.ndarray,
    labels: np.ndarray | None = None,
    min_exact_fraction: float = 1.0,
    diagnose_samples: int = 256,
) -> tuple[CsimBlock, np.ndarray, np.ndarray]:
    """Put ``x_raw`` on the input grid, run QKeras (float64 twin) and the C simulation, compare exactly.

    The figures are returned as the ``csim`` block of hls_report.json itself (one type for producer
    and readers).

    ``converted`` is :class:`kd_trigger.hls.convert.Converted`. With a final softmax/sigmoid the outputs
    compared bit for bit are those of the layer before it (read from hls4ml's trace), and the final
    activation's deviation is measured. Below ``min_exact_fraction`` the first diverging layer is
    located (on at most ``diagnose_samples`` of the disagreeing samples). Returns the result and the
    compared QKeras and C-simulation outputs.
    """
    hls_model = converted.hls_model
    twin = float64_twin(model, quantized_weights(model, converted.precision))
    x = quantize_inputs(twin, np.asarray(x_raw, dtype=np.float64), converted.input_type)
    t0 = time.perf_counter()
    y_q = run_twin(twin, x)
    qkeras_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    y_h = hls_predict(hls_model, x)
    simulation_s = time.perf_counter() - t1
    final = converted.final_activation
    compared, deviation = None, None
    if final is not None:
        final_name, kind = final
        compared = _pre_activation(twin, final_name)
        with quiet_hls4ml(), _keep_cwd():
            _, trace = hls_model.trace(np.ascontiguousarray(x))
        diff = np.abs(y_q.reshape(len(x), -1) - y_h.reshape(len(x), -1))
        deviation = {
            "kind": kind,
            "layer": final_name,
            "max_abs_diff": float(diff.max()) if diff.size else 0.0,
            "mean_abs_diff": float(diff.mean()) if diff.size else 0.0,
            "argmax_agreement": float(
                np.mean(y_q.reshape(len(x), -1).argmax(1) == y_h.reshape(len(x), -1).argmax(1))
            ),
        }
        y_q = keras_layer_outputs(twin, x, [compared])[compared].reshape(len(x), -1)
        y_h = np.asarray(trace[compared], dtype=np.float64).reshape(len(x), -1)
    figures = compare_outputs(y_q, y_h, labels)
    y_32 = qkeras_predict(model, x) if final is None else y_q
    result = CsimBlock(
        **figures,  # type: ignore[arg-type]
        simulation_s=simulation_s,
        qkeras_s=qkeras_s,
        float32_agreement=float(np.mean(y_32.reshape(y_q.shape) == y_q)) if y_q.size else 1.0,
        compared_layer=compared,
        final_activation=deviation,
    )
    if result.exact_fraction < min_exact_fraction:
        bad = np.nonzero(np.any(y_q.reshape(len(x), -1) != y_h.reshape(len(x), -1), axis=1))[0]
        sample = x[bad[:diagnose_samples]] if len(bad) else x[:diagnose_samples]
        result.first_divergent_layer, result.divergence = first_divergent_layer(twin, hls_model, sample)
    log.info(
        "C simulation: %d samples, exact %.6f, max |diff| %.3g, argmax agreement %.6f (%.1f s)%s",
        result.n_samples,
        result.exact_fraction,
        result.max_abs_diff,
        result.argmax_agreement,
        simulation_s,
        f"; compared before the final {final[1]}" if final else "",
    )
    return result, y_q, y_h
