"""hls4ml conversion of a QKeras model with derived precision, written atomically and compiled in place.

The precision of every layer comes from :func:`kd_trigger.hls.precision.derive_precision`; this module
reads the model's quantizers, builds hls4ml's per-layer config from them, checks that the weights hls4ml
is about to write are exactly the QKeras quantized values (writing them back where hls4ml dropped a
quantizer), writes the project into a temporary directory, renames it into place and only then compiles
it: the compiled C-simulation library bakes in the project's path.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kd_trigger.config import HlsConfig, hls4ml_parallelization
from kd_trigger.errors import ConfigError, ModelError, ToolMissingError
from kd_trigger.fixed import FixedType
from kd_trigger.layers.keras import activation_name, qkeras_objects, scaled_kernel
from kd_trigger.layers.model import describe_layers, model_precision, quantized_weights
from kd_trigger.layers.registry import find_handler, weight_classes
from kd_trigger.layers.spec import Intake, LayerPrecision
from kd_trigger.runs import atomic_dir

log = logging.getLogger(__name__)

PROJECT_NAME = "kd_trigger_student"
# hls4ml names its own (plain Keras) errors this way; we turn them into one line naming the layer.
_UNSUPPORTED = re.compile(r"Unsupported layer type:\s*(\w+)")


@dataclass
class Converted:
    """A converted, written and compiled hls4ml model plus what was chosen for it."""

    hls_model: Any
    project_dir: Path
    precision: dict[str, LayerPrecision]
    input_type: FixedType
    requantized_layers: list[str] = field(default_factory=list)
    convert_s: float = 0.0
    compile_s: float = 0.0
    reuse_by_layer: dict[str, int] = field(default_factory=dict)

    @property
    def final_activation(self) -> tuple[str, str] | None:
        """(layer name, kind) of a final softmax/sigmoid, converted with hls4ml's lookup tables."""
        for name, chosen in self.precision.items():
            if chosen.final_activation:
                return name, chosen.final_activation
        return None

    @property
    def assumed(self) -> list[str]:
        """One line per layer whose types were assumed at intake rather than read from a quantizer."""
        return [
            f"{name}: {chosen.note} ({', '.join(f'{k} {t.hls()}' for k, t in chosen.types.items())})"
            for name, chosen in self.precision.items()
            if chosen.assumed
        ]


@contextlib.contextmanager
def quiet_hls4ml() -> Any:
    """hls4ml reports progress with print(); route it to our debug log instead of the user's terminal."""
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stdout(buffer):
            yield
    finally:
        for line in buffer.getvalue().splitlines():
            if line.strip():
                log.debug("hls4ml: %s", line)


FINAL_INPUT_SUFFIX = "_input"
"""A final softmax/sigmoid named N gets a cast layer N + this suffix in front of it (see for_hls4ml)."""


def _final_kind(layer: Any, last: bool) -> str | None:
    """'softmax'/'sigmoid' when ``layer`` is the model's last layer and is (or ends in) one."""
    if not last:
        return None
    cls = type(layer).__name__
    if cls == "Softmax":
        return "softmax"
    kind = activation_name(getattr(layer, "activation", "linear"))
    return kind if kind in ("softmax", "sigmoid") else None


def for_hls4ml(model: Any) -> Any:
    """``model``, or a functional copy of it that hls4ml 1.3 converts correctly. Arithmetic unchanged
    up to the final activation:

    * a final softmax/sigmoid (a ``Softmax`` layer, an ``Activation`` or a Dense's own activation) becomes
      ``Activation(kind)`` named as hls4ml names it, after a cast layer ``<name>_input`` onto the
      ap_fixed<16,6> input its lookup tables are built for (from our wide exact logits hls4ml would index
      its exp table in steps of several units; and hls4ml writes a Keras Softmax layer with a config name
      that differs from the call name, which does not compile);
    * a layer whose kernel quantizer computes a scale (``alpha="auto"``/``"auto_po2"``, what QKeras makes
      of ``alpha=None`` on a kernel) gets its already-quantized kernel and no kernel quantizer: hls4ml
      would split the scale into an extra ``<name>_alpha`` layer of default precision, which wraps. The
      firmware weights are written exactly either way.
    """
    import tensorflow as tf

    layers = model.layers[1:]
    final = _final_kind(layers[-1], True) if layers else None
    if final is None and not any(scaled_kernel(layer) for layer in layers):
        return model
    objects = qkeras_objects()
    x = inputs = tf.keras.Input(shape=model.input_shape[1:], name=model.layers[0].name)
    for i, layer in enumerate(layers):
        last = i == len(layers) - 1
        kind = _final_kind(layer, last)
        cls = type(layer).__name__
        own_activation = kind is not None and cls not in ("Softmax", "Activation")
        if kind is not None and not own_activation:
            name = layer.name
        elif scaled_kernel(layer) or own_activation:
            conf = layer.get_config()
            if scaled_kernel(layer):
                for key in ("kernel_quantizer", "kernel_constraint"):
                    conf.pop(key, None)
            if own_activation:
                conf["activation"] = "linear"
            with tf.keras.utils.custom_object_scope(objects):
                copy = type(layer).from_config(conf)
            x = copy(x)
            weights = layer.get_weights()
            if scaled_kernel(layer):
                weights[0] = layer.kernel_quantizer_internal(layer.kernel).numpy()
            copy.set_weights(weights)
            name = f"{layer.name}_{kind}"
        else:
            x = layer(x)
            continue
        if kind is not None:
            x = tf.keras.layers.Activation("linear", name=f"{name}{FINAL_INPUT_SUFFIX}")(x)
            x = tf.keras.layers.Activation(kind, name=name)(x)
    return tf.keras.Model(inputs, x, name=model.name)


__all__ = [
    "FINAL_ACTIVATION_INPUT",
    "FINAL_INPUT_SUFFIX",
    "PROJECT_NAME",
    "WEIGHT_LAYER_CLASSES",
    "Converted",
    "build_hls_config",
    "check_supported",
    "convert_model",
    "default_hls_config",
    "describe_layers",
    "firmware_sparsity",
    "for_hls4ml",
    "hls_layer_precision",
    "model_precision",
    "quantized_weights",
    "quiet_hls4ml",
    "requantize_weights",
    "weight_mismatches",
]

WEIGHT_LAYER_CLASSES = weight_classes()
"""The layers with weights the firmware flows compute (a model needs at least one)."""


def _hls4ml_config(model: Any, hls: HlsConfig) -> dict[str, Any]:
    """hls4ml's own per-layer config; its 'unsupported layer' error becomes a ModelError naming the layer."""
    import hls4ml

    try:
        with quiet_hls4ml():
            return hls4ml.utils.config_from_keras_model(
                model, granularity="name", backend=hls.backend, default_reuse_factor=hls.reuse_factor
            )
    except Exception as err:  # hls4ml raises bare Exception for unsupported layers
        raise _as_model_error(model, err) from None


def _as_model_error(model: Any, err: Exception) -> Exception:
    text = str(err)
    match = _UNSUPPORTED.search(text)
    if match is None:
        log.debug("hls4ml conversion failed", exc_info=err)
        one_line = " ".join(text.removeprefix("ERROR: ").split())[:300]
        return ModelError(f"hls4ml cannot convert this model: {one_line}")
    cls = match.group(1)
    names = [
        layer.name for layer in model.layers if type(layer).__name__ == cls or layer.__class__.__name__ == cls
    ]
    where = f"'{names[0]}' ({cls})" if names else f"of type {cls}"
    return ModelError(
        f"layer {where} is not supported by hls4ml {_hls4ml_version()}; "
        "remove it or replace it by a supported layer (QDense, QConv1D, QActivation, pooling)"
    )


def check_supported(model: Any, hls: HlsConfig) -> None:
    """Raise ModelError naming the first layer (name and class) that hls4ml cannot convert."""
    _hls4ml_config(model, hls)


def _hls4ml_version() -> str:
    import hls4ml

    return hls4ml.__version__


def default_hls_config(model: Any, hls: HlsConfig) -> dict[str, Any]:
    """hls4ml's underived per-layer config ('auto' and its fixed<16,6> defaults), with tracing enabled.

    Kept public so tests can show what our derived precision fixes.
    """
    config = _hls4ml_config(model, hls)
    config["Model"]["Strategy"] = hls.strategy
    for layer_cfg in config.get("LayerName", {}).values():
        layer_cfg["Trace"] = True
    return config


FINAL_ACTIVATION_INPUT = "ap_fixed<16,6,AP_RND_CONV,AP_SAT>"
"""The input type of a final softmax/sigmoid: hls4ml's usual default, the one its lookup tables suit."""


def _per_particle(layer: Any) -> bool:
    """A Dense/Conv1D applied to every particle of a (particles, features) input."""
    handler = find_handler(type(layer).__name__)
    kind = handler.kind if handler is not None else None
    return kind == "conv1d" or (kind == "dense" and len(layer.input_shape) == 3)


def _table_size(model: Any, name: str, size: int, precision: dict[str, LayerPrecision]) -> None:
    """ConfigError unless ``name`` is a lookup-table activation (any size: the reference emulates its
    index) or the model's final softmax/sigmoid (``size`` a power of two)."""
    if name in precision and precision[name].kind == "lookup":
        return
    last = model.layers[-1]
    if last.name != name or _final_kind(last, True) is None:
        raise ConfigError(
            f"layer {name}: TableSize is built for lookup-table activations (tanh, sigmoid, softplus, softsign) "
            f"and the model's final softmax/sigmoid only ({last.name})"
        )
    if size & (size - 1):
        raise ConfigError(f"layer {name}: TableSize {size} is not a power of two (hls4ml indexes by bits)")


def build_hls_config(model: Any, hls: HlsConfig, precision: dict[str, LayerPrecision]) -> dict[str, Any]:
    """hls4ml's per-layer config with every type of ours written in (layers hls4ml adds keep its own)."""
    config = default_hls_config(model, hls)
    names = config.setdefault("LayerName", {})
    fold = hls.ii_cycles or 1
    if fold > 1 and not any(_per_particle(layer) for layer in model.layers):
        raise ModelError(
            f"hls.ii_cycles {fold}: only a Deep Sets student (per-particle layers) can be folded; "
            f"'{model.name}' has no per-particle layer"
        )
    for layer in model.layers:
        if _per_particle(layer) and layer.name in names:
            # Scheduling only, never arithmetic: how many particles the per-particle layer computes at once.
            # hls4ml rewrites a Dense on (particles, features) into a pointwise Conv1D whose default is ONE
            # particle at a time (II = particles x reuse); all at once keeps II = the reuse factor. A
            # folded student computes ceil(n / k) at once (II = k x reuse); conv_parallelization wins.
            width = int(layer.output_shape[1])
            if fold > width:
                raise ConfigError(
                    f"hls.ii_cycles {fold} is above the {width} particles of layer {layer.name}"
                )
            pf = hls4ml_parallelization(width, fold)
            if hls.conv_parallelization is not None:
                pf = min(hls.conv_parallelization, width)
            own = hls.layers.get(layer.name)
            if own is not None and own.parallelization_factor is not None:
                if width % own.parallelization_factor:
                    raise ConfigError(
                        f"layer {layer.name}: ParallelizationFactor {own.parallelization_factor} does not "
                        f"divide its {width} particles (hls4ml would silently build another one)"
                    )
                pf = own.parallelization_factor
            names[layer.name]["ParallelizationFactor"] = pf
    for name, layer_hls in hls.layers.items():
        if layer_hls.reuse_factor is not None and name in names:
            names[name]["ReuseFactor"] = layer_hls.reuse_factor
        if layer_hls.parallelization_factor is not None and not any(
            _per_particle(layer) for layer in model.layers if layer.name == name
        ):
            raise ConfigError(
                f"layer {name}: ParallelizationFactor applies to per-particle Conv1D/Dense layers only"
            )
        if layer_hls.table_size is not None:
            _table_size(model, name, layer_hls.table_size, precision)
            names.setdefault(name, {})["TableSize"] = layer_hls.table_size
    for name, chosen in precision.items():
        layer_cfg = names.setdefault(name, {})
        layer_cfg.setdefault("Precision", {})
        if not isinstance(layer_cfg["Precision"], dict):
            layer_cfg["Precision"] = {}
        if chosen.final_activation and f"{name}{FINAL_INPUT_SUFFIX}" in names:
            cast = names[f"{name}{FINAL_INPUT_SUFFIX}"]
            cast.setdefault("Precision", {})
            if not isinstance(cast["Precision"], dict):
                cast["Precision"] = {}
            cast["Precision"]["result"] = FINAL_ACTIVATION_INPUT
        for key, t in chosen.types.items():
            layer_cfg["Precision"][key] = t.hls()
        if chosen.kind == "lookup" and chosen.table_size is not None:
            layer_cfg["TableSize"] = chosen.table_size
            # hls4ml 1.3 reads an activation's table type from the layer-level key table_t only (its
            # Precision 'table' entry is parsed but never applied): write both, so the table built is ours.
            layer_cfg["table_t"] = chosen.types["table"].hls()
        layer_cfg["Trace"] = True
        # hls4ml inserts '<name>_linear' after a Dense/Conv1D and merges it away only while the layer's
        # result is 'auto'. With the result set, the linear layer stays and its 'auto' result falls back
        # to the model default fixed<16,6>, which wraps: give it the layer's own (exact) result type.
        linear = names.get(f"{name}_linear")
        if linear is not None and "result" in chosen.types:
            linear.setdefault("Precision", {})["result"] = chosen.types["result"].hls()
    return config


def _keras_layout(layer: Any, key: str, data: Any) -> Any:
    """A weight array of hls4ml in the Keras kernel layout: hls4ml's Resource strategy stores Dense
    kernels transposed and Conv1D kernels as (F, W, C) (its ApplyResourceStrategy pass)."""
    data = np.asarray(data)
    if key != "weight" or layer.get_attr("_weights_transposed", False) is not True:
        return data
    return np.transpose(data) if data.ndim == 2 else np.transpose(data, (1, 2, 0)) if data.ndim == 3 else data


def _hls4ml_layout(layer: Any, key: str, data: Any) -> Any:
    """The inverse of :func:`_keras_layout`."""
    data = np.asarray(data)
    if key != "weight" or layer.get_attr("_weights_transposed", False) is not True:
        return data
    return np.transpose(data) if data.ndim == 2 else np.transpose(data, (2, 0, 1)) if data.ndim == 3 else data


def weight_mismatches(
    model: Any, hls_model: Any, precision: dict[str, LayerPrecision] | None = None
) -> dict[str, float]:
    """Layers whose hls4ml weight/bias arrays differ from the QKeras quantized ones: {layer/array: max |diff|}."""
    want = quantized_weights(model, precision)
    bad: dict[str, float] = {}
    for layer in hls_model.get_layers():
        if layer.name not in want:
            continue
        for key, expected in want[layer.name].items():
            var = layer.weights.get(key)
            if var is None:
                bad[f"{layer.name}/{key}"] = float("inf")
                continue
            got = _keras_layout(layer, key, np.asarray(var.data, dtype=np.float64)).reshape(expected.shape)
            diff = float(np.max(np.abs(got - expected))) if expected.size else 0.0
            if diff != 0.0:
                bad[f"{layer.name}/{key}"] = diff
    return bad


def requantize_weights(
    model: Any, hls_model: Any, precision: dict[str, LayerPrecision] | None = None
) -> list[str]:
    """Write the QKeras quantized weights into hls4ml's arrays where they differ; returns those layers.

    hls4ml rewrites a QDense on a 3-D input into a pointwise Conv1D and drops its quantizers, so the
    float kernel would be truncated instead of rounded half to even (off by one LSB, silently).
    """
    want = quantized_weights(model, precision)
    fixed: list[str] = []
    for key in weight_mismatches(model, hls_model, precision):
        layer_name, array = key.split("/")
        layer = next(layer for layer in hls_model.get_layers() if layer.name == layer_name)
        var = layer.weights[array]
        shape = _keras_layout(layer, array, var.data).shape
        var.data = _hls4ml_layout(layer, array, want[layer_name][array].reshape(shape)).astype(var.data.dtype)
        if layer_name not in fixed:
            fixed.append(layer_name)
    return fixed


def convert_model(
    model: Any,
    project_dir: Path,
    hls: HlsConfig,
    *,
    config: dict[str, Any] | None = None,
    fix_weights: bool = True,
    compile_model: bool = True,
    on_converted: Callable[[Any], None] | None = None,
) -> Converted:
    """Convert ``model`` into the HLS project ``project_dir`` (atomically), then compile it there.

    ``config`` replaces the derived hls4ml config (tests use it to show hls4ml's defaults failing);
    ``fix_weights=False`` keeps whatever weights hls4ml chose (same purpose). ``on_converted`` is called
    with the hls4ml model before it is written (negative controls change a firmware weight there). The intake settings
    of ``hls`` (input type, default precision, per-layer settings) apply.
    """
    import hls4ml

    converted_model = for_hls4ml(model)
    check_supported(converted_model, hls)  # hls4ml's verdict on the layer types comes first, then ours
    precision = model_precision(model, Intake.from_hls(hls))
    input_name = next(iter(precision))
    hls_config = config if config is not None else build_hls_config(converted_model, hls, precision)
    project_dir = Path(project_dir)
    t0 = time.perf_counter()
    with atomic_dir(project_dir) as tmp:
        try:
            with quiet_hls4ml():
                hls_model = hls4ml.converters.convert_from_keras_model(
                    converted_model,
                    hls_config=hls_config,
                    output_dir=str(tmp),
                    project_name=PROJECT_NAME,
                    backend=hls.backend,
                    io_type=hls.io_type,
                    part=hls.part,
                    clock_period=hls.clock_period_ns,
                    # Weights go into the headers, not into text files that the compiled C simulation
                    # would load from an absolute path: the project then works wherever it is moved.
                    write_weights_txt=False,
                )
        except ModelError:
            raise
        except Exception as err:
            raise _as_model_error(model, err) from None
        requantized = requantize_weights(model, hls_model, precision) if fix_weights else []
        for name in requantized:
            log.info(
                "layer %s: wrote the exact firmware weights (QKeras-quantized or rounded onto the assumed type)",
                name,
            )
        if on_converted is not None:
            on_converted(hls_model)
        with quiet_hls4ml():
            hls_model.write()
    convert_s = time.perf_counter() - t0
    # The compiled library bakes in its directory (build_lib.sh uses the absolute BASEDIR), so point
    # the model at the final place and build there, after the rename.
    hls_model.config.config["OutputDir"] = str(project_dir.resolve())
    compile_s = 0.0
    if compile_model:
        if shutil.which("g++") is None:
            raise ToolMissingError(
                "g++ is not on PATH: the C simulation needs a C++ compiler (apt install g++)"
            )
        t1 = time.perf_counter()
        with quiet_hls4ml():
            hls_model._compile()  # the project is already written; compile() would rewrite it in place
        compile_s = time.perf_counter() - t1
    log.info("converted %s -> %s (%.1f s), compiled in %.1f s", model.name, project_dir, convert_s, compile_s)
    reuse = {
        layer.name: int(layer.get_attr("reuse_factor"))
        for layer in hls_model.get_layers()
        if layer.get_attr("reuse_factor") is not None and hasattr(layer, "weights") and layer.weights
    }
    for name, layer_hls in hls.layers.items():
        if layer_hls.reuse_factor is not None and name in reuse and reuse[name] != layer_hls.reuse_factor:
            log.warning(
                "layer %s: hls4ml changed the reuse factor %d to %d (the nearest it can build)",
                name,
                layer_hls.reuse_factor,
                reuse[name],
            )
    return Converted(
        hls_model=hls_model,
        project_dir=project_dir,
        precision=precision,
        input_type=precision[input_name].types["result"],
        requantized_layers=requantized,
        convert_s=convert_s,
        compile_s=compile_s,
        reuse_by_layer=reuse,
    )


def hls_layer_precision(hls_model: Any) -> dict[str, dict[str, str]]:
    """The types hls4ml actually wrote for every layer (after its own passes), as strings."""
    out: dict[str, dict[str, str]] = {}
    for layer in hls_model.get_layers():
        out[layer.name] = {
            k.removesuffix("_t"): str(v.precision) for k, v in layer.types.items() if k != "index_t"
        }
    return out


def firmware_sparsity(hls_model: Any) -> dict[str, dict[str, float | int]]:
    """Zeros of every weight layer's kernel as the firmware holds it (hls4ml's quantized constants).

    Same keys as :func:`kd_trigger.models.students.kernel_sparsity`; the firmware weights are quantized
    already, so ``zeros`` = ``quantized_zeros``. A zero weight costs no product in either flow.
    """
    out: dict[str, dict[str, float | int]] = {}
    for layer in hls_model.get_layers():
        weights = [w for w in layer.get_weights() if w.name.startswith("w") or "weight" in w.name]
        if not weights:
            continue
        data = np.asarray(weights[0].data)
        n, zeros = int(data.size), int(np.count_nonzero(data == 0))
        frac = zeros / n if n else 0.0
        out[layer.name] = {
            "n_weights": n,
            "zeros": zeros,
            "sparsity": frac,
            "quantized_zeros": zeros,
            "quantized_sparsity": frac,
        }
    return out
