"""Quantization-aware students (QKeras, Keras functional API, so hls4ml can convert them).

Both kinds quantize their own inputs first, use ``alpha=1`` quantizers everywhere and end in a QDense that
returns the two class LOGITS (class 1 = top), with no softmax: what they compute is exactly what the
fixed-point firmware computes.

* ``mlp``: Flatten -> [QDense -> QActivation(quantized_relu)] x len(hidden) -> QDense(2).
* ``deepsets``: [QConv1D(kernel_size=1) -> QActivation] x len(hidden) per particle (a pointwise QConv1D, not a
  Dense on a 3-D input: hls4ml rewrites the latter and drops its quantizers) -> GlobalAveragePooling1D ->
  [QDense -> QActivation] x len(head) -> QDense(2).
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from kd_trigger.config import StudentConfig
from kd_trigger.errors import ModelError
from kd_trigger.models import quantizers as qz

log = logging.getLogger(__name__)

N_CLASSES = 2


def student_input_shape(spec: StudentConfig) -> tuple[int, int]:
    """(n_particles, n_features): the shape of one jet as ``student_inputs`` gives it."""
    return (spec.n_particles, len(spec.features))


def student_inputs(spec: StudentConfig, constituents: np.ndarray) -> np.ndarray:
    """The float32 (N, n_particles, n_features) array a student takes, from (N, M, 4) constituents."""
    from kd_trigger.data.features import particle_features

    return particle_features(constituents, spec.n_particles, spec.features)


def _layer_sizes(spec: StudentConfig) -> list[tuple[int, int]]:
    """(fan_in, fan_out) of every weight layer, in order."""
    n_feat = len(spec.features)
    if spec.kind == "mlp":
        widths = [spec.n_particles * n_feat, *spec.hidden, N_CLASSES]
    else:
        widths = [n_feat, *spec.hidden, *spec.head, N_CLASSES]
    return list(zip(widths[:-1], widths[1:], strict=True))


def weight_bits_needed(spec: StudentConfig) -> tuple[int, int]:
    """(number of parameters, bits to store them): kernels at weight_bits, biases at bias_bits."""
    n_params = 0
    bits = 0
    for fan_in, fan_out in _layer_sizes(spec):
        n_params += fan_in * fan_out + fan_out
        bits += fan_in * fan_out * spec.quant.weight_bits + fan_out * spec.quant.bias_bits
    return n_params, bits


EXACT_REFERENCE_BITS = 53
"""float64's significand: see kd_trigger.hls.precision.EXACT_REFERENCE_BITS."""


def accumulator_widths(spec: StudentConfig) -> list[tuple[int, int]]:
    """(weight layer index, bits of its exact accumulator) for every weight layer of the student."""
    q = spec.quant
    widths = []
    current = qz.input_type(q)
    for i, (fan_in, _) in enumerate(_layer_sizes(spec)):
        acc = qz.dense_accumulator_type(current, qz.weight_type(q), qz.bias_type(q), fan_in)
        widths.append((i, acc.width))
        current = qz.activation_type(q)
    return widths


def check_student(spec: StudentConfig) -> None:
    """Refuse a student that cannot become the firmware we promise (one line, exit status 2)."""
    if spec.kind == "deepsets" and spec.n_particles & (spec.n_particles - 1):
        raise ModelError(
            f"student '{spec.name}': deepsets n_particles must be a power of two (the average pooling is then an "
            f"exact shift in fixed point), got {spec.n_particles}; use e.g. {1 << (spec.n_particles.bit_length() - 1)}"
        )
    widest = max(accumulator_widths(spec), key=lambda item: item[1])
    if widest[1] > EXACT_REFERENCE_BITS:
        raise ModelError(
            f"student '{spec.name}': the exact accumulator of layer {widest[0]} needs {widest[1]} bits, more than "
            f"the {EXACT_REFERENCE_BITS} that the exact reference (QKeras in float64) can hold; lower its quant "
            "input_bits / weight_bits / activation_bits"
        )
    n_params, bits = weight_bits_needed(spec)
    if spec.max_weight_bits is not None and bits > spec.max_weight_bits:
        raise ModelError(
            f"student '{spec.name}' needs {bits} weight bits ({n_params} parameters), above its budget "
            f"students[name={spec.name}].max_weight_bits = {spec.max_weight_bits}; narrow its hidden/head widths, "
            "lower n_particles or weight_bits, or raise max_weight_bits"
        )


def _qdense(units: int, spec: StudentConfig, name: str) -> Any:
    from qkeras import QDense

    return QDense(
        units,
        kernel_quantizer=qz.weight_quantizer(spec.quant),
        bias_quantizer=qz.bias_quantizer(spec.quant),
        name=name,
    )


def student_layer_names(spec: StudentConfig) -> list[str]:
    """The layer names :func:`build_student` gives (without building it: no TensorFlow), in order."""
    names = ["particles", "input_quant"]
    if spec.kind == "mlp":
        names.append("flatten")
        for i in range(len(spec.hidden)):
            names += [f"dense_{i}", f"relu_{i}"]
    else:
        for i in range(len(spec.hidden)):
            names += [f"phi_{i}", f"phi_relu_{i}"]
        names.append("pool")
        for i in range(len(spec.head)):
            names += [f"rho_{i}", f"rho_relu_{i}"]
    return [*names, "output"]


def build_student(spec: StudentConfig) -> Any:
    """Build the QKeras student ``spec`` describes (weights freshly initialised from the Keras global seed)."""
    import tensorflow as tf
    from qkeras import QActivation, QConv1D

    check_student(spec)
    q = spec.quant
    inputs = tf.keras.Input(shape=student_input_shape(spec), name="particles")
    x = QActivation(qz.input_quantizer(q), name="input_quant")(inputs)
    if spec.kind == "mlp":
        x = tf.keras.layers.Flatten(name="flatten")(x)
        for i, width in enumerate(spec.hidden):
            x = _qdense(width, spec, f"dense_{i}")(x)
            x = QActivation(qz.activation_quantizer(q), name=f"relu_{i}")(x)
    else:
        for i, width in enumerate(spec.hidden):
            x = QConv1D(
                width,
                kernel_size=1,
                kernel_quantizer=qz.weight_quantizer(q),
                bias_quantizer=qz.bias_quantizer(q),
                name=f"phi_{i}",
            )(x)
            x = QActivation(qz.activation_quantizer(q), name=f"phi_relu_{i}")(x)
        x = tf.keras.layers.GlobalAveragePooling1D(name="pool")(x)
        for i, width in enumerate(spec.head):
            x = _qdense(width, spec, f"rho_{i}")(x)
            x = QActivation(qz.activation_quantizer(q), name=f"rho_relu_{i}")(x)
    outputs = _qdense(N_CLASSES, spec, "output")(x)
    return tf.keras.Model(inputs, outputs, name=f"student_{spec.name}")


def output_type(spec: StudentConfig) -> qz.FixedType:
    """The exact fixed-point type of the student's logits (the last QDense's accumulator).

    Its input is a quantized_relu output, or for a Deep Sets student without a head the pooled average
    (log2(n_particles) extra fractional bits: the average is a shift).
    """
    act = qz.activation_type(spec.quant)
    fan_in = _layer_sizes(spec)[-1][0]
    if spec.kind == "deepsets" and not spec.head:
        shift = spec.n_particles.bit_length() - 1
        act = qz.FixedType(act.width + shift, act.integer, signed=False)
    return qz.dense_accumulator_type(act, qz.weight_type(spec.quant), qz.bias_type(spec.quant), fan_in)


def save_student(model: Any, path: Path) -> Path:
    """Save a student as .h5 (built in memory, then written atomically: see runs.write_h5_atomic)."""
    from kd_trigger.runs import write_h5_atomic

    with warnings.catch_warnings():
        # HDF5 is what qkeras.utils.load_qmodel and hls4ml read; Keras' "legacy format" and
        # "quantizer is not a Constraint" warnings are expected here and say nothing to a user.
        warnings.simplefilter("ignore", UserWarning)
        return write_h5_atomic(Path(path), lambda handle: model.save(handle, save_format="h5"))


class _DropQKerasChatter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.pathname.endswith("safe_eval.py")


def load_student_file(path: Path, spec: StudentConfig | None = None) -> Any:
    """Load a saved student with ``qkeras.utils.load_qmodel``; check its input shape against ``spec``."""
    path = Path(path)
    from kd_trigger.runs import file_problem

    problem = file_problem(path)
    if problem is not None:
        raise ModelError(f"student model {path} {problem}; run `make distill CONFIG=...` first")
    from qkeras.utils import load_qmodel

    root = logging.getLogger()
    quiet = _DropQKerasChatter()
    root.addFilter(quiet)  # qkeras' safe_eval logs "keras dict linear" on the root logger for every layer
    try:
        model = load_qmodel(str(path), compile=False)
    except (OSError, ValueError, KeyError) as err:
        raise ModelError(f"{path} is not a loadable QKeras model: {err}") from None
    finally:
        root.removeFilter(quiet)
    if spec is not None:
        want = student_input_shape(spec)
        got = tuple(model.input_shape[1:])
        if got != want or tuple(model.output_shape[1:]) != (N_CLASSES,):
            raise ModelError(
                f"{path}: input {got} / output {tuple(model.output_shape[1:])} do not match student "
                f"'{spec.name}' ({want} -> ({N_CLASSES},)); rerun `make distill ... FORCE=1`"
            )
    return model
