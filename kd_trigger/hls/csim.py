"""C simulation of the compiled firmware against the QKeras model it came from.

The firmware must compute exactly what QKeras computes. Inputs are first put on the student's input
grid by the student's own input quantizer (so both sides see the same numbers), then the compiled
C++ (g++, no vendor tools) and QKeras predict the same samples; every output is compared exactly.
On a mismatch, hls4ml's per-layer trace is compared with per-layer Keras outputs to name the first
layer that diverges.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from tqdm import tqdm

from kd_trigger.hls.convert import quiet_hls4ml

log = logging.getLogger(__name__)

CHUNK = 1024


@dataclass
class CsimResult:
    """Agreement of the C simulation with QKeras (keys of hls_report.json's ``csim`` object)."""

    n_samples: int
    n_outputs: int
    exact_fraction: float
    max_abs_diff: float
    argmax_agreement: float
    auc_qkeras: float | None
    auc_hls: float | None
    nonzero_output_fraction: float
    simulation_s: float
    qkeras_s: float
    first_divergent_layer: str | None = None
    divergence: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def quantize_inputs(model: Any, x: np.ndarray) -> np.ndarray:
    """``x`` put on the student's input grid by its own first layer (the input QActivation), float64."""
    import tensorflow as tf

    first = next(layer for layer in model.layers if type(layer).__name__ != "InputLayer")
    q = first.quantizer
    out = (
        np.concatenate(
            [q(tf.constant(x[i : i + CHUNK], dtype=tf.float32)).numpy() for i in range(0, len(x), CHUNK)]
        )
        if len(x)
        else np.zeros_like(x, dtype=np.float32)
    )
    return np.ascontiguousarray(out, dtype=np.float64)


def qkeras_predict(model: Any, x: np.ndarray) -> np.ndarray:
    """QKeras outputs in float64 (the model itself runs in float32, like in training)."""
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
    from kd_trigger.evaluate import roc_auc, scores_from_logits

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


def keras_layer_outputs(model: Any, x: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
    """Outputs of the named Keras layers for ``x`` (one sub-model with all of them as outputs)."""
    import tensorflow as tf

    layers = [model.get_layer(n) for n in names]
    sub = tf.keras.Model(model.inputs, [layer.output for layer in layers])
    outs = sub(x.astype(np.float32), training=False)
    if not isinstance(outs, list | tuple):
        outs = [outs]
    return {n: np.asarray(o, dtype=np.float64) for n, o in zip(names, outs, strict=True)}


def first_divergent_layer(model: Any, hls_model: Any, x: np.ndarray) -> tuple[str | None, dict[str, Any]]:
    """Name of the first layer (in model order) whose C-simulation output differs from Keras, with figures.

    Uses hls4ml's trace (recompiles the project with tracing on). Layers hls4ml folded away are skipped.
    """
    x = np.ascontiguousarray(x, dtype=np.float64)
    with quiet_hls4ml(), _keep_cwd():
        _, trace = hls_model.trace(x)
    names = [layer.name for layer in model.layers if layer.name in trace]
    keras_out = keras_layer_outputs(model, x, names)
    per_layer: dict[str, Any] = {}
    first: str | None = None
    for name in names:
        k = keras_out[name].reshape(len(x), -1)
        h = np.asarray(trace[name], dtype=np.float64).reshape(len(x), -1)
        if k.shape != h.shape:
            per_layer[name] = {"shape_keras": list(k.shape), "shape_hls": list(h.shape)}
            continue
        diff = np.abs(k - h)
        # Keras computes wide accumulators in float32; allow its rounding, not a fixed-point LSB.
        tol = 1e-6 * max(1.0, float(np.max(np.abs(k))))
        per_layer[name] = {
            "exact_fraction": float(np.mean(diff == 0.0)),
            "max_abs_diff": float(diff.max()),
        }
        if first is None and float(diff.max()) > tol:
            first = name
    return first, per_layer


@contextlib.contextmanager
def _keep_cwd() -> Any:
    """hls4ml's trace() changes directory; make sure we come back even if it fails half way."""
    import os

    cwd = os.getcwd()
    try:
        yield
    finally:
        os.chdir(cwd)


def run_csim(
    model: Any,
    hls_model: Any,
    x_raw: np.ndarray,
    labels: np.ndarray | None = None,
    min_exact_fraction: float = 1.0,
    diagnose_samples: int = 256,
) -> tuple[CsimResult, np.ndarray, np.ndarray]:
    """Quantize ``x_raw`` as the student does, run QKeras and the C simulation, compare exactly.

    Below ``min_exact_fraction`` the first diverging layer is located (on at most ``diagnose_samples``
    of the disagreeing samples) and recorded in the result; raising is left to the caller, so it can
    write the report first. Returns the result and the QKeras and C-simulation outputs.
    """
    x = quantize_inputs(model, np.asarray(x_raw, dtype=np.float32))
    t0 = time.perf_counter()
    y_q = qkeras_predict(model, x)
    qkeras_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    y_h = hls_predict(hls_model, x)
    simulation_s = time.perf_counter() - t1
    figures = compare_outputs(y_q, y_h, labels)
    result = CsimResult(**figures, simulation_s=simulation_s, qkeras_s=qkeras_s)  # type: ignore[arg-type]
    if result.exact_fraction < min_exact_fraction:
        bad = np.nonzero(np.any(y_q.reshape(len(x), -1) != y_h.reshape(len(x), -1), axis=1))[0]
        sample = x[bad[:diagnose_samples]] if len(bad) else x[:diagnose_samples]
        result.first_divergent_layer, result.divergence = first_divergent_layer(model, hls_model, sample)
    log.info(
        "C simulation: %d samples, exact %.6f, max |diff| %.3g, argmax agreement %.6f (%.1f s)",
        result.n_samples,
        result.exact_fraction,
        result.max_abs_diff,
        result.argmax_agreement,
        simulation_s,
    )
    return result, y_q, y_h
