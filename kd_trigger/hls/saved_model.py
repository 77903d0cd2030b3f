"""Firmware of any saved QKeras model: ``kd-trigger hls --model`` and ``kd-trigger rtl --model``.

Load and check the model (a ``Sequential`` one is rebuilt as functional), read the inputs to simulate,
build into a staging folder beside ``--out`` and move it there when done (see :mod:`kd_trigger.hls.build`).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from kd_trigger.config import HlsConfig
from kd_trigger.errors import EXIT_OK, CsimMismatchError, DataError, ModelError, StaleOutputError
from kd_trigger.fpga.parts import yosys_family
from kd_trigger.hls.build import RANDOM_SAMPLES, convert_and_simulate
from kd_trigger.hls.convert import WEIGHT_LAYER_CLASSES, check_supported, model_precision
from kd_trigger.hls.default_design import DESIGN, default_design, measure_precision_loss, needs_default_design
from kd_trigger.hls.layer_loss import overflow_summary
from kd_trigger.hls.precision import Intake, edge_case_inputs
from kd_trigger.hls.project_config import ProjectConfig, configure
from kd_trigger.layout import ProjectLayout
from kd_trigger.rtl import RtlMismatchError, run_rtl_flow
from kd_trigger.runs import (
    check_creatable_dir,
    clean_dead_temporaries,
    created_dir,
    file_problem,
    raise_if_terminated,
    remove_path,
    tmp_name,
    write_text_atomic,
)

log = logging.getLogger(__name__)


def load_qkeras_model(model_path: Path) -> Any:
    """Load a saved QKeras model (.h5) with qkeras.utils.load_qmodel; ModelError in one line if it cannot."""
    model_path = Path(model_path)
    problem = file_problem(model_path)
    if problem is not None:
        raise ModelError(f"model file {model_path} {problem}; pass --model PATH.h5 of a saved QKeras model")
    from qkeras.utils import load_qmodel

    windows = windows_weight_path(model_path)
    try:
        if windows is None:
            model = load_qmodel(str(model_path), compile=False)
        else:
            log.warning(
                "%s: its weights are stored under Windows paths (%r: a Keras .keras file saved on Windows); "
                "read with '/' as the separator",
                model_path,
                windows,
            )
            with tempfile.TemporaryDirectory(prefix="kd_trigger_keras_") as tmp:
                model = load_qmodel(str(posix_weight_paths(model_path, Path(tmp))), compile=False)
    except Exception as err:  # Keras raises ValueError/TypeError/OSError for unknown layers and bad files
        hgq = [name for name, module in saved_layer_classes(model_path) if module.lower().startswith("hgq")]
        if hgq:
            raise ModelError(
                f"{model_path}: layer class {hgq[0]} is HGQ's (High Granularity Quantization), not QKeras or "
                "Keras; its types are per weight, which this project does not emulate: convert a QKeras or "
                "Keras model"
            ) from None
        text = " ".join(str(err).split())
        raise ModelError(f"{model_path} cannot be loaded as a QKeras model: {text[:300]}") from None
    return as_functional(model)


def posix_weight_paths(model_path: Path, folder: Path) -> Path:
    """A copy of the Keras zip ``model_path`` in ``folder`` whose ``model.weights.h5`` groups are named with
    '/' where Keras on Windows wrote '\\' (``layers\\dense`` -> ``layers/dense``): the weights Keras looks
    for under the POSIX names are those very arrays, moved, not changed."""
    import zipfile

    import h5py

    weights = folder / "model.weights.h5"
    with zipfile.ZipFile(model_path) as archive:
        weights.write_bytes(archive.read("model.weights.h5"))
        others = {n: archive.read(n) for n in archive.namelist() if n != "model.weights.h5"}

    def rename(group: Any) -> None:
        for key in list(group.keys()):
            name = key.replace("\\", "/")
            if name != key:
                group.require_group(name.rsplit("/", 1)[0])
                group.move(key, name)
            if isinstance(group[name], h5py.Group):
                rename(group[name])

    with h5py.File(weights, "r+") as f:
        rename(f)
    out = folder / Path(model_path).name
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in others.items():
            archive.writestr(name, data)
        archive.write(weights, "model.weights.h5")
    return out


def windows_weight_path(model_path: Path) -> str | None:
    """The first weight group of a Keras zip whose name holds a backslash, or None: Keras 2.15 on Windows
    wrote ``layers\\dense`` into ``model.weights.h5`` (tests/fixtures/corpus/fatigue_dense_16_8_3)."""
    import io
    import zipfile

    import h5py

    try:
        if not zipfile.is_zipfile(model_path):
            return None
        with zipfile.ZipFile(model_path) as archive:
            data = archive.read("model.weights.h5")
        with h5py.File(io.BytesIO(data), "r") as f:
            return next((str(k) for k in f if "\\" in str(k)), None)
    except (OSError, KeyError, ValueError):
        return None


def saved_layer_classes(model_path: Path) -> list[tuple[str, str]]:
    """(class name, module) of every layer a saved model's config lists, read without building it (an
    HDF5 file's ``model_config`` attribute, or the ``config.json`` of a Keras zip); [] when unreadable.
    Saved by Keras 2, the module is empty."""
    import json
    import zipfile

    import h5py

    text: Any = None
    try:
        if zipfile.is_zipfile(model_path):
            with zipfile.ZipFile(model_path) as archive:
                text = archive.read("config.json")
        else:
            with h5py.File(model_path, "r") as f:
                text = f.attrs.get("model_config")
        config = json.loads(text)
    except (OSError, KeyError, ValueError, TypeError):
        return []
    layers = config.get("config", {}).get("layers", []) if isinstance(config, dict) else []
    return [(str(x.get("class_name")), str(x.get("module") or "")) for x in layers if isinstance(x, dict)]


def as_functional(model: Any) -> Any:
    """A Keras ``Sequential`` model as the equivalent functional model (same layer types, configs, weights).

    Every walk over a model (precision, the float64 twin, the RTL program) starts from its InputLayer,
    which a Sequential model does not list among its layers: built as hls4ml tutorials build models, it
    crashed there. The layers are rebuilt from their configs (a layer called in two models would have two
    inbound nodes, and look like a merge) and take the saved weights. Other models are returned unchanged.
    """
    import tensorflow as tf

    if not isinstance(model, tf.keras.Sequential):
        return model
    if not model.built or model.input_shape is None:
        raise ModelError(
            f"Sequential model {model.name} has no input shape; give it an Input layer and save it again"
        )
    # Keras' own name of a Sequential's input (``<first layer>_input``): hls4ml's configs use it.
    name = model.inputs[0].name.split(":")[0] if model.inputs else f"{model.name}_input"
    inputs = tf.keras.Input(batch_shape=model.input_shape, name=name)
    x = inputs
    copies = []
    for layer in model.layers:
        copy = type(layer).from_config(layer.get_config())
        x = copy(x)
        copies.append((copy, layer))
    functional = tf.keras.Model(inputs, x, name=model.name)
    for copy, layer in copies:
        copy.set_weights(layer.get_weights())
    return functional


def _read_array(data_path: Path) -> np.ndarray:
    """The array of a .npy file, or of a .npz file (``file.npz`` with one array, or ``file.npz:name``)."""
    text = str(data_path)
    name = None
    if ".npz:" in text:
        text, name = text.rsplit(":", 1)
    path = Path(text)
    problem = file_problem(path)
    if problem is not None:
        raise DataError(f"--data file {path} {problem}")
    if path.suffix not in (".npy", ".npz"):
        raise DataError(f"--data {path}: expected a .npy file or a .npz file (FILE.npz or FILE.npz:ARRAY)")
    try:
        loaded = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise DataError(f"{path} is not a readable {path.suffix} file: {err}") from None
    if path.suffix == ".npy":
        return np.asarray(loaded)
    with loaded as archive:
        names = list(archive.files)
        if name is None:
            if len(names) != 1:
                raise DataError(
                    f"--data {path} holds {len(names)} arrays ({', '.join(names) or 'none'}); "
                    f"name one: --data {path}:ARRAY"
                )
            name = names[0]
        if name not in names:
            raise DataError(f"--data {path} has no array {name!r}; it holds {', '.join(names) or 'none'}")
        try:
            return np.asarray(archive[name])
        except (ValueError, OSError, EOFError) as err:  # object arrays (pickles), a damaged member
            raise DataError(f"{path} is not a readable .npz file: {err}") from None


def load_inputs(data_path: Path, input_shape: tuple[int, ...]) -> np.ndarray:
    """Inputs to simulate: shape (N, *input_shape) (or one sample), numeric and finite; DataError otherwise."""
    x = _read_array(Path(data_path))
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise DataError(f"{data_path}: expected a real numeric array, got dtype {x.dtype}")
    if x.size == 0:
        raise DataError(f"{data_path}: the array is empty (shape {tuple(x.shape)}); give at least one sample")
    if tuple(x.shape) == tuple(input_shape):
        x = x[None]
    if tuple(x.shape[1:]) != tuple(input_shape):
        raise DataError(
            f"{data_path}: shape {tuple(x.shape)} does not match the model input (N, {', '.join(map(str, input_shape))})"
        )
    if not np.all(np.isfinite(x)):
        bad = int(np.sum(~np.isfinite(x)))
        raise DataError(f"{data_path}: {bad} NaN/inf value(s); the firmware input must be finite numbers")
    return x.astype(np.float64)


def _check_out(out_dir: Path, force: bool, *inputs: tuple[str, Path | None]) -> None:
    for flag, path in inputs:
        inside = Path(os.path.realpath(str(path).split(".npz:")[0])) if path is not None else None
        if inside is not None and inside.is_relative_to(os.path.realpath(out_dir)):
            raise StaleOutputError(
                f"{flag} {path} lies inside --out {out_dir}, which is replaced by the new project; "
                f"move it out or choose another --out"
            )
    if out_dir.exists() and not out_dir.is_dir():
        raise StaleOutputError(f"--out {out_dir} is a file; pass a directory to write the project into")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not force:
        raise StaleOutputError(
            f"--out {out_dir} exists and is not empty; pass a new or empty directory, or --force to replace it"
        )
    check_creatable_dir(out_dir.parent, "--out parent directory")


def check_saved_model(model: Any, hls: HlsConfig) -> tuple[int, ...]:
    """The checks ``hls --model`` and ``rtl --model`` share, before any conversion; returns the input
    shape (without the batch axis). ModelError (one line) for a model with several inputs or outputs, with
    no Dense/Conv1D layer, with NaN/inf weights, or per-layer options naming a layer it does not have."""
    n_in, n_out = len(model.inputs), len(model.outputs)
    if n_in != 1 or n_out != 1:
        raise ModelError(
            f"the model has {n_in} input(s) and {n_out} output(s); only single-input, single-output "
            "chains can be converted"
        )
    shape = tuple(model.input_shape[1:])
    if any(d is None for d in shape):
        shown = ", ".join("None" if d is None else str(d) for d in shape)
        raise ModelError(
            f"the model input has shape (N, {shown}); the firmware needs a fixed input shape (save the model "
            "with e.g. Input(shape=(16, 7)))"
        )
    classes = [type(layer).__name__ for layer in model.layers]
    if not any(cls in WEIGHT_LAYER_CLASSES for cls in classes):
        raise ModelError(
            f"the model has no Dense/Conv1D layer (its layers: {', '.join(classes) or 'none'}); "
            "nothing to build in firmware"
        )
    for layer in model.layers:
        for weight in layer.weights:
            values = np.asarray(weight.numpy())
            bad = int(np.count_nonzero(~np.isfinite(values)))
            if bad:
                raise ModelError(
                    f"layer '{layer.name}' ({type(layer).__name__}): {bad} NaN/inf value(s) in "
                    f"{weight.name}; the model cannot be converted (was its training diverging?)"
                )
    names = [layer.name for layer in model.layers]
    for layer in model.layers:
        # hls4ml's name of the activation it splits off a Dense/Conv1D (a config may set its TableSize)
        inner = getattr(layer, "activation", None)
        kind = getattr(inner, "__name__", None)
        if kind not in (None, "linear") and type(layer).__name__ not in ("Activation", "QActivation"):
            names.append(f"{layer.name}_{kind}")
    hls.check_layer_names(names, "the model")
    return tuple(int(d) for d in model.input_shape[1:])


def convert_saved_model(
    model_path: Path,
    out_dir: Path,
    data_path: Path | None,
    hls: HlsConfig,
    force: bool = False,
    on_converted: Callable[[Any], None] | None = None,
    project: ProjectConfig | None = None,
) -> int:
    """Convert any saved QKeras model into the HLS project ``out_dir`` and prove it bit-exact.

    The project is built beside ``out_dir`` and moved there only when the C simulation passed; after a
    mismatch ``out_dir`` holds the project with the report and a marker saying why
    (:attr:`kd_trigger.layout.ProjectLayout.csim_failed`).
    Without ``data_path`` it simulates 10,000 inputs on the input grid spread over its whole range,
    extremes and one-LSB steps included. Returns 0; raises CsimMismatchError (exit 1) or ModelError /
    DataError / StaleOutputError / OutputError (exit 2). ``on_converted`` (tests: negative controls) is
    called with the hls4ml model before its project is written. ``project``: an hls4ml configuration
    (``--hls-config``) whose types the design takes (:func:`kd_trigger.hls.project_config.configure`).
    """
    out_dir = Path(out_dir)
    _check_out(out_dir, force, ("--model", model_path), ("--data", data_path))
    model = load_qkeras_model(model_path)
    hls = configure(hls, model, project)
    input_shape = check_saved_model(model, hls)
    check_supported(model, hls)
    design = f"--hls-config {project.source}" if project is not None else "derived exact types"
    saved = model
    if needs_default_design(model, hls):
        # float layers: the types hls4ml resolves from the given config (auto: its default), or from its own
        hls, model = default_design(model, hls, project.hls_config if project is not None else None)
        design = f"{design}, as hls4ml 1.3 resolves it" if project is not None else DESIGN
    # Fails early, in one line, when a type cannot be derived (no input quantizer and no --input-precision).
    try:
        precision = model_precision(model, Intake.from_hls(hls))
    except ModelError as err:
        if design != DESIGN:
            raise
        raise ModelError(str(err).replace("--hls-config:", "hls4ml's default design:", 1)) from None
    input_type = next(iter(precision.values())).types["result"]
    if data_path is not None:
        x_raw = load_inputs(data_path, input_shape)
    else:
        x_raw = edge_case_inputs(input_type, input_shape, RANDOM_SAMPLES, seed=0)
    with created_dir(out_dir.parent, "--out parent directory"):
        return _convert_into(
            model, model_path, out_dir, data_path, hls, x_raw, input_type, on_converted, (design, saved)
        )


def _convert_into(
    model: Any,
    model_path: Path,
    out_dir: Path,
    data_path: Path | None,
    hls: HlsConfig,
    x_raw: np.ndarray,
    input_type: Any,
    on_converted: Callable[[Any], None] | None,
    design_of: tuple[str, Any],
) -> int:
    design, saved = design_of
    # A killed earlier run leaves its staging directory beside --out (never --out itself): remove it.
    clean_dead_temporaries(out_dir.parent, depth=1)
    staging = tmp_name(out_dir, "staging")
    remove_path(staging)
    try:
        try:
            report, converted = convert_and_simulate(
                model, staging, hls, x_raw, None, Path(model_path).stem, out_dir, on_converted=on_converted
            )
        except CsimMismatchError as err:
            if ProjectLayout(staging).report.is_file():
                write_text_atomic(ProjectLayout(staging).csim_failed, f"{err}\n")
                _replace(staging, out_dir)
            raise
        report.inputs = (
            str(data_path)
            if data_path is not None
            else f"{RANDOM_SAMPLES} random inputs on {input_type.hls()}"
        )
        compared = report.require_csim().compared_layer
        loss = measure_precision_loss(model, converted, x_raw, compared, design, saved)
        report.precision_loss = loss
        report.write(ProjectLayout(staging).report)
        _replace(staging, out_dir)
    finally:
        remove_path(staging)
    log.info(
        "%s -> %s: C simulation exact on %.6f of outputs (%d samples)",
        model_path,
        out_dir,
        report.require_csim().exact_fraction,
        report.require_csim().n_samples,
    )
    log.info(
        "precision loss of the design (%s) against the float model, at %s: max |diff| %.4g, mean |diff| %.4g, "
        "decisions changed on %.4f of %d samples; %s",
        design,
        loss["compared_layer"] or "the output",
        loss["max_abs_diff"],
        loss["mean_abs_diff"],
        loss["decision_changed_fraction"],
        loss["n_samples"],
        overflow_summary(loss),
    )
    return EXIT_OK


def _replace(staging: Path, out_dir: Path) -> None:
    """Move the finished project onto ``out_dir`` (an empty or forced-over directory)."""
    raise_if_terminated()
    if out_dir.exists():
        old = tmp_name(out_dir, "trash")
        os.replace(out_dir, old)
        os.replace(staging, out_dir)
        remove_path(old)
    else:
        os.replace(staging, out_dir)


def rtl_saved_model(
    model_path: Path,
    out_dir: Path,
    data_path: Path | None,
    hls: HlsConfig,
    force: bool = False,
    project: ProjectConfig | None = None,
) -> int:
    """``kd-trigger rtl --model M.h5 --out DIR``: the open-source RTL flow of any supported QKeras model.

    Verilog (da4ml, II = 1), its Verilator simulation against QKeras on the given inputs (or 10,000 on-grid
    random and edge inputs) plus the edge inputs, and Yosys resource counts, moved into ``out_dir`` when
    complete. Returns 0; raises RtlMismatchError (exit 1, the design kept in ``out_dir`` with a marker)
    or ModelError / DataError / StaleOutputError / ToolMissingError (exit 2).
    """
    out_dir = Path(out_dir)
    _check_out(out_dir, force, ("--model", model_path), ("--data", data_path))
    model = load_qkeras_model(model_path)
    hls = configure(hls, model, project)
    shape = check_saved_model(model, hls)
    precision = model_precision(model, Intake.from_hls(hls))
    refuse_narrowed_types(precision)
    input_type = next(iter(precision.values())).types["result"]
    edges = edge_case_inputs(input_type, shape, RANDOM_SAMPLES, seed=0)
    x = np.concatenate([load_inputs(data_path, shape), edges]) if data_path is not None else edges
    with created_dir(out_dir.parent, "--out parent directory"):
        clean_dead_temporaries(out_dir.parent, depth=1)
        return _rtl_into(model, model_path, out_dir, x, hls, precision)


def refuse_narrowed_types(precision: dict[str, Any]) -> None:
    """ModelError naming every configured field the RTL flow cannot honour: a type narrower than exact.

    The RTL flow builds each weight layer's sum exactly (da4ml's shift-and-add graph shares partial
    sums across products, so hls4ml's per-product rounding into a narrower accumulator has no place
    in it) and rounds only where a quantizer stands; hls --model builds and judges such a design.
    """
    fields = [
        f"layer '{name}' {key} {chosen.types[key].hls()} "
        + (
            f"(exact {exact.hls()})"
            if exact is not None
            else "(no exact type: a mean over a non-power-of-two count)"
        )
        for name, chosen in precision.items()
        for key, exact in chosen.narrowed.items()
    ]
    if fields:
        raise ModelError(
            f"--hls-config: the RTL flow cannot honour {', '.join(fields)}: it builds exact types only and "
            "rounds only at quantizers (hls --model builds and judges this design)"
        )


def _rtl_into(
    model: Any, model_path: Path, out_dir: Path, x: np.ndarray, hls: HlsConfig, precision: Any
) -> int:
    staging = tmp_name(out_dir, "staging")
    remove_path(staging)
    try:
        try:
            result = run_rtl_flow(
                model,
                staging,
                x,
                clock_period_ns=hls.clock_period_ns,
                part_family=yosys_family(hls.part),
                precision=precision,
                ii_cycles=hls.ii_cycles or 1,
            )
        except RtlMismatchError as err:
            if staging.is_dir():
                write_text_atomic(ProjectLayout(staging).rtl_sim_failed, f"{err}\n")
                _replace(staging, out_dir)
            raise
        _replace(staging, out_dir)
    finally:
        remove_path(staging)
    log.info(
        "%s -> %s: RTL exact on %d of %d samples; latency %d cycles, II %d; %s",
        model_path,
        out_dir,
        result.rtl_sim.n_exact_samples,
        result.rtl_sim.n_samples,
        result.latency_cycles,
        result.ii_cycles,
        f"Yosys {result.yosys.lut:,} LUT / {result.yosys.ff:,} FF" if result.yosys else "not synthesized",
    )
    return EXIT_OK
