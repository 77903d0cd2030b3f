"""C simulation of the compiled firmware against the QKeras model it came from.

The firmware must compute exactly what QKeras computes. The reference is the QKeras model itself,
run layer for layer in float64 (:func:`kd_trigger.layers.reference.float64_twin`, shared with the RTL
flow and re-exported here): there every derived fixed-point type up to 53
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
from kd_trigger.hls.convert import quiet_hls4ml
from kd_trigger.layers.model import quantized_weights
from kd_trigger.layers.reference import (
    CHUNK,
    compare_outputs,
    float64_twin,
    keras_layer_outputs,
    qkeras_predict,
    quantize_inputs,
    run_twin,
)

__all__ = [
    "CHUNK",
    "compare_outputs",
    "first_divergent_layer",
    "float64_twin",
    "hls_predict",
    "keras_layer_outputs",
    "qkeras_predict",
    "quantize_inputs",
    "run_csim",
    "run_twin",
    "softmax_top",
]

log = logging.getLogger(__name__)


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
    """Probability of the last class (top of two) from the logits."""
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e[:, -1] / e.sum(axis=1)


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
    twin = float64_twin(model, quantized_weights(model, converted.precision), converted.precision)
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
