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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kd_trigger.config import StudentConfig
from kd_trigger.data.features import particle_features
from kd_trigger.errors import ModelError
from kd_trigger.fixed import FixedType, dense_accumulator_type
from kd_trigger.models import quantizers as qz
from kd_trigger.runs import file_problem, write_h5_atomic

log = logging.getLogger(__name__)

N_CLASSES = 2
"""The default number of logits (top vs QCD); an N-class run passes ``len(cfg.data.classes)``."""


def student_input_shape(spec: StudentConfig) -> tuple[int, int]:
    """(n_particles, n_features): the shape of one jet as ``student_inputs`` gives it."""
    return (spec.n_particles, len(spec.features))


def student_inputs(spec: StudentConfig, constituents: np.ndarray) -> np.ndarray:
    """The float32 (N, n_particles, n_features) array a student takes, from (N, M, 4) constituents."""
    return particle_features(constituents, spec.n_particles, spec.features)


def _layer_sizes(spec: StudentConfig, n_classes: int = N_CLASSES) -> list[tuple[int, int]]:
    """(fan_in, fan_out) of every weight layer, in order (the order of ``spec.layer_pairs()``)."""
    n_feat = len(spec.features)
    if spec.kind == "mlp":
        widths = [spec.n_particles * n_feat, *spec.hidden, n_classes]
    else:
        widths = [n_feat, *spec.hidden, *spec.head, n_classes]
    return list(zip(widths[:-1], widths[1:], strict=True))


def weight_layers(spec: StudentConfig, n_classes: int = N_CLASSES) -> list[tuple[str, int, int]]:
    """(name, fan_in, fan_out) of every weight layer, in order (``n_classes`` logits out)."""
    names = [w for w, _ in spec.layer_pairs()]
    return [(n, fi, fo) for n, (fi, fo) in zip(names, _layer_sizes(spec, n_classes), strict=True)]


def weight_bits_needed(spec: StudentConfig, n_classes: int = N_CLASSES) -> tuple[int, int]:
    """(number of parameters, bits to store them): kernels at their weight_bits, biases at their bias_bits."""
    n_params = 0
    bits = 0
    for name, fan_in, fan_out in weight_layers(spec, n_classes):
        q = spec.layer_quant(name)
        n_params += fan_in * fan_out + fan_out
        bits += fan_in * fan_out * q.weight_bits + fan_out * q.bias_bits
    return n_params, bits


EXACT_REFERENCE_BITS = 53
"""float64's significand: see kd_trigger.hls.precision.EXACT_REFERENCE_BITS."""


def _input_types(spec: StudentConfig) -> list[FixedType]:
    """The exact type of each weight layer's input: the input quantizer, the ReLU before it, or for the
    first layer after a Deep Sets pooling the pooled average (log2(n_particles) more fractional bits: the
    average is a shift)."""
    pairs = spec.layer_pairs()
    types = [qz.input_type(spec.quant)]
    for i, (_, activation) in enumerate(pairs[:-1]):
        assert activation is not None  # only the output layer has no ReLU after it
        t = qz.activation_type(spec.layer_quant(activation))
        if spec.kind == "deepsets" and i == len(spec.hidden) - 1:
            shift = spec.n_particles.bit_length() - 1
            t = FixedType(t.width + shift, t.integer, signed=False)
        types.append(t)
    return types


def accumulator_widths(spec: StudentConfig) -> list[tuple[int, int]]:
    """(weight layer index, bits of its exact accumulator) for every weight layer of the student."""
    return [(i, acc.width) for i, (_, acc) in enumerate(_accumulators(spec))]


def _accumulators(spec: StudentConfig) -> list[tuple[str, FixedType]]:
    out = []
    for (name, fan_in, _), current in zip(weight_layers(spec), _input_types(spec), strict=True):
        q = spec.layer_quant(name)
        out.append((name, dense_accumulator_type(current, qz.weight_type(q), qz.bias_type(q), fan_in)))
    return out


def check_student(spec: StudentConfig) -> None:
    """Refuse a student that cannot become the firmware we promise (one line, exit status 2)."""
    if spec.kind == "deepsets" and spec.n_particles & (spec.n_particles - 1):
        raise ModelError(
            f"student '{spec.name}': deepsets n_particles must be a power of two (the average pooling is then an "
            f"exact shift in fixed point), got {spec.n_particles}; use e.g. {1 << (spec.n_particles.bit_length() - 1)}"
        )
    pairs = spec.layer_pairs()
    for index, (name, acc) in enumerate(_accumulators(spec)):
        if acc.width <= EXACT_REFERENCE_BITS:
            continue
        # The layer's own widths, or the ReLU before it (its input), may come from a per-layer override.
        key = spec.override_key(name) or (spec.override_key(pairs[index - 1][0]) if index else None)
        fix = f"lower {key}" if key else "lower its quant input_bits / weight_bits / activation_bits"
        raise ModelError(
            f"student '{spec.name}': the exact accumulator of layer {index} ({name}) needs {acc.width} bits, more "
            f"than the {EXACT_REFERENCE_BITS} that the exact reference (QKeras in float64) can hold; {fix}"
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

    q = spec.layer_quant(name)
    return QDense(
        units,
        kernel_quantizer=qz.weight_quantizer(q),
        bias_quantizer=qz.bias_quantizer(q),
        name=name,
    )


def _relu(spec: StudentConfig, name: str) -> Any:
    from qkeras import QActivation

    return QActivation(qz.activation_quantizer(spec.layer_quant(name)), name=name)


def student_layer_names(spec: StudentConfig) -> list[str]:
    """The layer names :func:`build_student` gives (without building it: no TensorFlow), in order.

    The weight layers and their ReLUs are ``spec.layer_pairs()``; around them the input, its quantizer,
    and the MLP's flatten or the Deep Sets' pooling between phi and rho.
    """
    pairs = spec.layer_pairs()
    n_first = len(spec.hidden)  # the MLP's hidden layers, or the Deep Sets' phi layers before the pooling
    first = [name for pair in pairs[:n_first] for name in pair if name is not None]
    rest = [name for pair in pairs[n_first:-1] for name in pair if name is not None]
    if spec.kind == "mlp":
        return ["particles", "input_quant", "flatten", *first, *rest, "output"]
    return ["particles", "input_quant", *first, "pool", *rest, "output"]


def build_student(spec: StudentConfig, n_classes: int = N_CLASSES) -> Any:
    """Build the QKeras student ``spec`` describes, ``n_classes`` logits out (weights freshly initialised
    from the Keras global seed).

    Every layer's quantizers take that layer's widths (``spec.layer_quant``: ``quant`` with its
    ``quant.layers`` override, if any).
    """
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
            x = _relu(spec, f"relu_{i}")(x)
    else:
        for i, width in enumerate(spec.hidden):
            lq = spec.layer_quant(f"phi_{i}")
            x = QConv1D(
                width,
                kernel_size=1,
                kernel_quantizer=qz.weight_quantizer(lq),
                bias_quantizer=qz.bias_quantizer(lq),
                name=f"phi_{i}",
            )(x)
            x = _relu(spec, f"phi_relu_{i}")(x)
        x = tf.keras.layers.GlobalAveragePooling1D(name="pool")(x)
        for i, width in enumerate(spec.head):
            x = _qdense(width, spec, f"rho_{i}")(x)
            x = _relu(spec, f"rho_relu_{i}")(x)
    outputs = _qdense(n_classes, spec, "output")(x)
    return tf.keras.Model(inputs, outputs, name=f"student_{spec.name}")


HEAD_LAYER = "output_head"
"""The name of the softmax layer a ``softmax`` or ``argmax`` head appends after the logits."""


def with_output_head(model: Any, spec: StudentConfig) -> Any:
    """The firmware model of a trained student: ``model`` itself for the ``logits`` head, else ``model``
    followed by a softmax layer :data:`HEAD_LAYER` (the same layer for ``argmax``: the hls4ml stage builds it
    as hls4ml's argmax softmax, see :func:`kd_trigger.hls.hls4ml_stage.argmax_head`). The weights are shared, the logits unchanged."""
    if spec.output_head == "logits":
        return model
    import tensorflow as tf

    probabilities = tf.keras.layers.Activation("softmax", name=HEAD_LAYER)(model.output)
    return tf.keras.Model(model.input, probabilities, name=f"{model.name}_{spec.output_head}")


def head_class_index(outputs: np.ndarray) -> np.ndarray:
    """The class index a head's (N, C) outputs name: the argmax (ties to the lowest index, as numpy and as
    hls4ml's argmax softmax, which keeps the first maximum)."""
    return np.argmax(np.asarray(outputs).reshape(len(outputs), -1), axis=1)


def output_type(spec: StudentConfig) -> FixedType:
    """The exact fixed-point type of the student's logits (the last QDense's accumulator).

    Its input is a quantized_relu output, or for a Deep Sets student without a head the pooled average
    (log2(n_particles) extra fractional bits: the average is a shift).
    """
    return _accumulators(spec)[-1][1]


def kernel_sparsity(model: Any) -> dict[str, dict[str, float | int]]:
    """Per weight layer of a (saved, stripped) QKeras model: ``n_weights``, ``zeros`` (kernel entries that
    are exactly 0.0 as stored), ``sparsity`` (= zeros / n_weights), and ``quantized_zeros`` /
    ``quantized_sparsity`` (entries the kernel quantizer maps to 0: what the firmware sees, at least the
    stored zeros)."""
    out: dict[str, dict[str, float | int]] = {}
    for layer in model.layers:
        kernel = getattr(layer, "kernel", None)
        if kernel is None:
            continue
        w = np.asarray(kernel.numpy())
        quantizer = getattr(layer, "kernel_quantizer_internal", None)
        wq = np.asarray(quantizer(w)) if quantizer is not None else w
        n = int(w.size)
        zeros, qzeros = int(np.count_nonzero(w == 0)), int(np.count_nonzero(wq == 0))
        out[layer.name] = {
            "n_weights": n,
            "zeros": zeros,
            "sparsity": zeros / n if n else 0.0,
            "quantized_zeros": qzeros,
            "quantized_sparsity": qzeros / n if n else 0.0,
        }
    return out


def save_student(model: Any, path: Path) -> Path:
    """Save a student as .h5 (built in memory, then written atomically: see runs.write_h5_atomic)."""
    with warnings.catch_warnings():
        # HDF5 is what qkeras.utils.load_qmodel and hls4ml read; Keras' "legacy format" and
        # "quantizer is not a Constraint" warnings are expected here and say nothing to a user.
        warnings.simplefilter("ignore", UserWarning)
        return write_h5_atomic(Path(path), lambda handle: model.save(handle, save_format="h5"))


class _DropQKerasChatter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.pathname.endswith("safe_eval.py")


def check_output_classes(model: Any, classes: Sequence[str], model_path: Path, config_source: str) -> None:
    """ModelError (one line) unless ``model`` puts out one value per class of ``classes``: a saved model
    given to a run of N classes (``hls --model`` / ``rtl --model`` with an N-class config) must be an
    N-logit tagger, as the run's own students are."""
    got = tuple(model.output_shape[1:])
    if got != (len(classes),):
        raise ModelError(
            f"{model_path} puts out {got} per jet but data.classes of {config_source} names {len(classes)} "
            f"classes ({', '.join(classes)}): the model must put out one value per class; give a model with "
            f"{len(classes)} outputs or a config with its classes"
        )


def load_student_file(path: Path, spec: StudentConfig | None = None, n_classes: int = N_CLASSES) -> Any:
    """Load a saved student with ``qkeras.utils.load_qmodel``; check its input shape against ``spec`` and
    its output against ``n_classes`` logits."""
    path = Path(path)
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
        if got != want or tuple(model.output_shape[1:]) != (n_classes,):
            raise ModelError(
                f"{path}: input {got} / output {tuple(model.output_shape[1:])} do not match student "
                f"'{spec.name}' ({want} -> ({n_classes},): one logit per class); rerun `make distill ... FORCE=1`"
            )
    return model
