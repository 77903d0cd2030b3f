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

from kd_trigger.config import HlsConfig
from kd_trigger.errors import ModelError, ToolMissingError
from kd_trigger.hls.precision import (
    FixedType,
    LayerPrecision,
    LayerSpec,
    derive_precision,
    quantizer_fixed_type,
)
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


def _quantizer_type(quantizer: Any, where: str) -> tuple[FixedType, str]:
    """Fixed type (with QKeras rounding/saturation) and class name of a QKeras quantizer object or string."""
    from kd_trigger.models import quantizers as qz

    if isinstance(quantizer, str):
        import qkeras

        quantizer = qkeras.get_quantizer(quantizer)
    name = type(quantizer).__name__
    conf = quantizer.get_config() if hasattr(quantizer, "get_config") else {}
    try:
        t = qz.type_of_quantizer(quantizer)
    except ValueError as err:
        raise ModelError(f"layer {where}: {err}; the firmware type cannot be derived") from None
    return quantizer_fixed_type(t.width, t.integer, t.signed, bool(conf.get("symmetric", False))), name


def describe_layers(model: Any) -> list[LayerSpec]:
    """Plain-data description of a single-chain Keras model, in order, for precision derivation."""
    specs: list[LayerSpec] = []
    for layer in model.layers:
        cls = type(layer).__name__
        where = f"'{layer.name}' ({cls})"
        inbound = [n for node in layer.inbound_nodes for n in _inbound_names(node)]
        if len(set(inbound)) > 1:
            raise ModelError(f"layer {where} has several inputs; only single-chain models can be converted")
        if cls == "QActivation":
            t, qname = _quantizer_type(layer.quantizer, where)
            specs.append(LayerSpec(layer.name, cls, activation=t, activation_class=qname))
        elif cls in ("QDense", "QConv1D", "Dense", "Conv1D"):
            kq = getattr(layer, "kernel_quantizer_internal", None)
            bq = getattr(layer, "bias_quantizer_internal", None)
            kernel = _quantizer_type(kq, where)[0] if kq is not None else None
            bias = _quantizer_type(bq, where)[0] if bq is not None else None
            in_channels = int(layer.input_shape[-1])
            fan_in = in_channels * (int(layer.kernel_size[0]) if cls.endswith("Conv1D") else 1)
            if cls.endswith("Conv1D") and int(layer.kernel_size[0]) != 1:
                raise ModelError(f"layer {where}: only kernel_size=1 (per-particle) Conv1D is supported")
            act = getattr(layer.activation, "__name__", str(layer.activation))
            specs.append(
                LayerSpec(
                    layer.name,
                    cls,
                    fan_in=fan_in,
                    kernel=kernel,
                    bias=bias,
                    use_bias=bool(layer.use_bias),
                    inner_activation=act,
                )
            )
        elif cls == "GlobalAveragePooling1D":
            specs.append(LayerSpec(layer.name, cls, fan_in=int(layer.input_shape[1])))
        else:
            specs.append(LayerSpec(layer.name, cls))
    return specs


def _inbound_names(node: Any) -> list[str]:
    layers = node.inbound_layers
    if not isinstance(layers, list | tuple):
        layers = [layers]
    return [layer.name for layer in layers]


def model_precision(model: Any) -> dict[str, LayerPrecision]:
    """Derived precision of every layer of ``model`` (see :mod:`kd_trigger.hls.precision`)."""
    return derive_precision(describe_layers(model))


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


def build_hls_config(model: Any, hls: HlsConfig, precision: dict[str, LayerPrecision]) -> dict[str, Any]:
    """hls4ml's per-layer config with every type of ours written in (layers hls4ml adds keep its own)."""
    config = default_hls_config(model, hls)
    names = config.setdefault("LayerName", {})
    for layer in model.layers:
        if type(layer).__name__ in ("QConv1D", "Conv1D") and layer.name in names:
            # Scheduling only, never arithmetic: how many particles the pointwise Conv1D computes at once.
            width = int(layer.output_shape[1])
            pf = width if hls.conv_parallelization is None else min(hls.conv_parallelization, width)
            names[layer.name]["ParallelizationFactor"] = pf
    for name, chosen in precision.items():
        layer_cfg = names.setdefault(name, {})
        layer_cfg.setdefault("Precision", {})
        if not isinstance(layer_cfg["Precision"], dict):
            layer_cfg["Precision"] = {}
        for key, t in chosen.types.items():
            layer_cfg["Precision"][key] = t.hls()
        layer_cfg["Trace"] = True
        # hls4ml inserts '<name>_linear' after a Dense/Conv1D and merges it away only while the layer's
        # result is 'auto'. With the result set, the linear layer stays and its 'auto' result falls back
        # to the model default fixed<16,6>, which wraps: give it the layer's own (exact) result type.
        linear = names.get(f"{name}_linear")
        if linear is not None and "result" in chosen.types:
            linear.setdefault("Precision", {})["result"] = chosen.types["result"].hls()
    return config


def quantized_weights(model: Any) -> dict[str, dict[str, np.ndarray]]:
    """The QKeras quantized kernel and bias of every quantized layer: what the firmware must hold."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for layer in model.layers:
        kq = getattr(layer, "kernel_quantizer_internal", None)
        if kq is None:
            continue
        arrays = {"weight": np.asarray(kq(layer.kernel).numpy(), dtype=np.float64)}
        bq = getattr(layer, "bias_quantizer_internal", None)
        if getattr(layer, "use_bias", False) and layer.bias is not None:
            bias = layer.bias if bq is None else bq(layer.bias)
            arrays["bias"] = np.asarray(bias.numpy() if hasattr(bias, "numpy") else bias, dtype=np.float64)
        out[layer.name] = arrays
    return out


def weight_mismatches(model: Any, hls_model: Any) -> dict[str, float]:
    """Layers whose hls4ml weight/bias arrays differ from the QKeras quantized ones: {layer/array: max |diff|}."""
    want = quantized_weights(model)
    bad: dict[str, float] = {}
    for layer in hls_model.get_layers():
        if layer.name not in want:
            continue
        for key, expected in want[layer.name].items():
            var = layer.weights.get(key)
            if var is None:
                bad[f"{layer.name}/{key}"] = float("inf")
                continue
            got = np.asarray(var.data, dtype=np.float64).reshape(expected.shape)
            diff = float(np.max(np.abs(got - expected))) if expected.size else 0.0
            if diff != 0.0:
                bad[f"{layer.name}/{key}"] = diff
    return bad


def requantize_weights(model: Any, hls_model: Any) -> list[str]:
    """Write the QKeras quantized weights into hls4ml's arrays where they differ; returns those layers.

    hls4ml rewrites a QDense on a 3-D input into a pointwise Conv1D and drops its quantizers, so the
    float kernel would be truncated instead of rounded half to even (off by one LSB, silently).
    """
    want = quantized_weights(model)
    fixed: list[str] = []
    for key in weight_mismatches(model, hls_model):
        layer_name, array = key.split("/")
        layer = next(layer for layer in hls_model.get_layers() if layer.name == layer_name)
        var = layer.weights[array]
        var.data = want[layer_name][array].reshape(np.shape(var.data)).astype(var.data.dtype)
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
    on_written: Callable[[Path], None] | None = None,
) -> Converted:
    """Convert ``model`` into the HLS project ``project_dir`` (atomically), then compile it there.

    ``config`` replaces the derived hls4ml config (tests use it to show hls4ml's defaults failing);
    ``fix_weights=False`` keeps whatever weights hls4ml chose (same purpose). ``on_written`` is called
    with the temporary directory before it is renamed, to add files to the project.
    """
    import hls4ml

    check_supported(model, hls)  # hls4ml's verdict on the layer types comes first, then ours
    precision = model_precision(model)
    input_name = next(iter(precision))
    hls_config = config if config is not None else build_hls_config(model, hls, precision)
    project_dir = Path(project_dir)
    t0 = time.perf_counter()
    with atomic_dir(project_dir) as tmp:
        try:
            with quiet_hls4ml():
                hls_model = hls4ml.converters.convert_from_keras_model(
                    model,
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
        requantized = requantize_weights(model, hls_model) if fix_weights else []
        for name in requantized:
            log.warning(
                "layer %s: hls4ml dropped its quantizer; wrote the QKeras quantized weights back", name
            )
        with quiet_hls4ml():
            hls_model.write()
        if on_written is not None:
            on_written(tmp)
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
    return Converted(
        hls_model=hls_model,
        project_dir=project_dir,
        precision=precision,
        input_type=precision[input_name].types["result"],
        requantized_layers=requantized,
        convert_s=convert_s,
        compile_s=compile_s,
    )


def hls_layer_precision(hls_model: Any) -> dict[str, dict[str, str]]:
    """The types hls4ml actually wrote for every layer (after its own passes), as strings."""
    out: dict[str, dict[str, str]] = {}
    for layer in hls_model.get_layers():
        out[layer.name] = {
            k.removesuffix("_t"): str(v.precision) for k, v in layer.types.items() if k != "index_t"
        }
    return out
