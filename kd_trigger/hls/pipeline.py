"""The hls stage: distilled students -> hls4ml firmware -> bit-exact C simulation -> resources -> budget.

``run_hls_stage`` works on a run's students; ``convert_saved_model`` on any saved QKeras model
(``kd-trigger hls --model PATH.h5 --out DIR``). Both write the HLS project and ``hls_report.json``
(keys are a contract with the report, see /tmp/kd_design.md) and fail (CsimMismatchError, exit 1)
when the C simulation does not agree with QKeras as exactly as ``hls.min_exact_fraction`` requires.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from kd_trigger.config import Config, HlsConfig
from kd_trigger.errors import EXIT_BUDGET, EXIT_OK, CsimMismatchError, DataError, ModelError, StaleOutputError
from kd_trigger.hls.convert import Converted, convert_model, hls_layer_precision
from kd_trigger.hls.csim import CsimResult, run_csim, softmax_top
from kd_trigger.hls.precision import edge_case_inputs
from kd_trigger.runs import (
    check_stage,
    package_versions,
    read_stage,
    stage_digest,
    write_json_atomic,
    write_stage,
)

log = logging.getLogger(__name__)

STAGE = "hls"
REPORT_NAME = "hls_report.json"
RANDOM_SAMPLES = 10_000


def build_report(
    student: str, hls: HlsConfig, converted: Converted, csim: CsimResult, model_name: str = ""
) -> dict[str, Any]:
    """The hls_report.json payload (contract keys first)."""
    precision: dict[str, Any] = {}
    for name, chosen in converted.precision.items():
        precision[name] = chosen.to_dict()
    return {
        "student": student,
        "model": model_name,
        "backend": hls.backend,
        "part": hls.part,
        "clock_period_ns": hls.clock_period_ns,
        "reuse_factor": hls.reuse_factor,
        "io_type": hls.io_type,
        "strategy": hls.strategy,
        "project_dir": str(converted.project_dir),
        "input_type": converted.input_type.hls(),
        "precision": precision,
        "precision_hls4ml": hls_layer_precision(converted.hls_model),
        "requantized_weights": converted.requantized_layers,
        "csim": csim.to_dict(),
        "min_exact_fraction": hls.min_exact_fraction,
        "seconds": {
            "convert": round(converted.convert_s, 3),
            "compile": round(converted.compile_s, 3),
            "simulation": round(csim.simulation_s, 3),
            "qkeras": round(csim.qkeras_s, 3),
        },
        "versions": package_versions(),
    }


def _mismatch(student: str, csim: CsimResult, hls: HlsConfig, report_path: Path) -> CsimMismatchError:
    where = (
        f"first diverging layer: '{csim.first_divergent_layer}'"
        if csim.first_divergent_layer
        else "no single layer diverges in the trace"
    )
    return CsimMismatchError(
        f"{student}: the C simulation agrees with QKeras on {csim.exact_fraction:.6f} of outputs "
        f"(required {hls.min_exact_fraction}; max |diff| {csim.max_abs_diff:.4g}); {where}; see {report_path}"
    )


def _resources(converted: Converted, hls: HlsConfig) -> dict[str, Any]:
    from kd_trigger.fpga.estimate import estimate_model

    return estimate_model(converted.hls_model, hls.reuse_factor, hls.clock_period_ns).to_dict()


def _vendor_synthesis(converted: Converted, hls: HlsConfig) -> dict[str, Any] | None:
    """Vendor figures (fpga.reports layout) when hls.synth is set and the tool is on PATH, else None."""
    from kd_trigger.fpga.synth import run_vendor_synthesis

    return run_vendor_synthesis(converted.hls_model, hls, converted.project_dir)


def convert_and_simulate(
    model: Any,
    project_dir: Path,
    hls: HlsConfig,
    x_raw: np.ndarray,
    labels: np.ndarray | None,
    student: str,
) -> tuple[dict[str, Any], Converted]:
    """Convert, compile, C-simulate, add resources, write hls_report.json (+ csim_outputs.npz with labels).

    Raises CsimMismatchError (after writing the report) below ``hls.min_exact_fraction``.
    """
    converted = convert_model(model, project_dir, hls)
    csim, y_q, y_h = run_csim(model, converted.hls_model, x_raw, labels, hls.min_exact_fraction)
    report = build_report(student, hls, converted, csim, getattr(model, "name", ""))
    report_path = project_dir / REPORT_NAME
    if csim.exact_fraction < hls.min_exact_fraction:
        write_json_atomic(report_path, report)
        raise _mismatch(student, csim, hls, report_path)
    if labels is not None:
        np.savez_compressed(
            project_dir / "csim_outputs.npz",
            y_true=np.asarray(labels, dtype=np.int8),
            p_hls=softmax_top(y_h),
            p_qkeras=softmax_top(y_q),
            logits_hls=y_h,
            logits_qkeras=y_q,
        )
    report["resources"] = _resources(converted, hls)
    synth = _vendor_synthesis(converted, hls)
    report["vendor"] = synth
    if synth is not None:
        # The review report reads the vendor figures beside the estimate: HLS ("hls") and post-synthesis
        # ("synth") figures stay in separate sub-keys of the parsed report.
        report["resources"]["vendor_hls"] = synth
        report["resources"]["vendor_synth"] = synth
    write_json_atomic(report_path, report)
    return report, converted


# -- the run's students --------------------------------------------------------------------------
def hls_digest(cfg: Config, distill_digest: str | None) -> str:
    sections = ("run", "data", "teacher", "students", "distill", "hls", "budget")
    return stage_digest(cfg, sections, {"distill": distill_digest or ""})


def _budget(report: dict[str, Any], cfg: Config, synth: dict[str, Any] | None) -> dict[str, Any]:
    from kd_trigger.fpga.budget import check_budget, collect_figures, load_budget

    profile = load_budget(cfg.budget)
    figures = collect_figures(estimate=report.get("resources"), report=synth)
    return check_budget(figures, profile).to_dict()


def _verdict_table(reports: list[dict[str, Any]]) -> str:
    lines = [
        f"{'student':<14} {'C sim exact':>11} {'argmax':>8} {'latency ns':>10} {'LUT':>9} {'DSP':>6}  budget"
    ]
    for r in reports:
        res = r.get("resources") or {}
        total = res.get("total", {}) if isinstance(res, dict) else {}
        budget = r.get("budget") or {}
        verdict = (
            "PASS" if budget.get("pass") else "FAIL: " + "; ".join(map(str, budget.get("violations", [])))
        )
        latency = res.get("latency_ns")
        lines.append(
            f"{r['student']:<14} {r['csim']['exact_fraction']:>11.6f} {r['csim']['argmax_agreement']:>8.4f} "
            f"{latency if latency is not None else 'n/a':>10} {total.get('lut', 'n/a'):>9} "
            f"{total.get('dsp', 'n/a'):>6}  {verdict}"
        )
    return "\n".join(lines)


def run_hls_stage(cfg: Config, force: bool = False) -> int:
    """Firmware for every distilled student of the run; returns 0, or 3 when a budget is broken.

    Runs the distill stage first (it skips itself when up to date). Raises CsimMismatchError (exit 1)
    naming the first diverging layer when a C simulation is not exact enough.
    """
    from kd_trigger.data.readers import load_jets
    from kd_trigger.distill.pipeline import distill_digest, load_student, run_distill_stage
    from kd_trigger.fpga.budget import load_budget
    from kd_trigger.models.students import student_inputs

    load_budget(cfg.budget)  # a bad budget profile fails now, not after minutes of training
    run_distill_stage(cfg, force=force)
    digest = hls_digest(cfg, distill_digest(cfg))
    out_dir = cfg.firmware
    if check_stage(out_dir, STAGE, digest, force):
        status = int((read_stage(out_dir) or {}).get("exit_status", EXIT_OK))
        log.info("hls stage up to date in %s (digest %s); nothing to do", out_dir, digest)
        return status
    t0 = time.perf_counter()
    test = load_jets(cfg.data_path, cfg).select("test")
    n = (
        len(test.is_signal)
        if cfg.hls.csim_max_samples is None
        else min(cfg.hls.csim_max_samples, len(test.is_signal))
    )
    labels = np.asarray(test.is_signal[:n], dtype=np.int8)
    reports: list[dict[str, Any]] = []
    for spec in cfg.students:
        model = load_student(cfg, spec.name, "kd")
        x_raw = student_inputs(spec, test.constituents[:n])
        log.info("student %s: converting the distilled model, C-simulating %d test jets", spec.name, n)
        report, converted = convert_and_simulate(
            model, out_dir / spec.name, cfg.hls, x_raw, labels, spec.name
        )
        report["budget"] = _budget(report, cfg, report.get("vendor"))
        write_json_atomic(out_dir / spec.name / REPORT_NAME, report)
        reports.append(report)
    broken = [r["student"] for r in reports if not r["budget"]["pass"]]
    log.info("hls verdict (profile %s):\n%s", cfg.budget.profile, _verdict_table(reports))
    status = EXIT_BUDGET if broken else EXIT_OK
    write_stage(
        out_dir,
        STAGE,
        digest,
        cfg,
        extra={
            "students": [s.name for s in cfg.students],
            "exit_status": status,
            "seconds": round(time.perf_counter() - t0, 1),
        },
    )
    from kd_trigger.report.build import write_run_report

    report_path = write_run_report(cfg)
    log.info("report: %s", report_path)
    if broken:
        log.error("trigger budget %s broken by: %s", cfg.budget.profile, ", ".join(broken))
    return status


# -- any saved QKeras model ----------------------------------------------------------------------
def load_qkeras_model(model_path: Path) -> Any:
    """Load a saved QKeras model (.h5) with qkeras.utils.load_qmodel; ModelError in one line if it cannot."""
    model_path = Path(model_path)
    if not model_path.is_file():
        raise ModelError(
            f"model file {model_path} does not exist; pass --model PATH.h5 of a saved QKeras model"
        )
    from qkeras.utils import load_qmodel

    try:
        return load_qmodel(str(model_path), compile=False)
    except Exception as err:  # Keras raises ValueError/TypeError/OSError for unknown layers and bad files
        text = " ".join(str(err).split())
        raise ModelError(f"{model_path} cannot be loaded as a QKeras model: {text[:300]}") from None


def load_inputs(data_path: Path, input_shape: tuple[int, ...]) -> np.ndarray:
    """Inputs to simulate from a .npy: shape (N, *input_shape) (or one sample), finite; DataError otherwise."""
    data_path = Path(data_path)
    if not data_path.is_file():
        raise DataError(f"--data file {data_path} does not exist")
    try:
        x = np.load(data_path, allow_pickle=False)
    except (ValueError, OSError) as err:
        raise DataError(f"{data_path} is not a readable .npy array: {err}") from None
    if not np.issubdtype(x.dtype, np.number):
        raise DataError(f"{data_path}: expected a numeric array, got dtype {x.dtype}")
    if tuple(x.shape) == tuple(input_shape):
        x = x[None]
    if tuple(x.shape[1:]) != tuple(input_shape) or len(x) == 0:
        raise DataError(
            f"{data_path}: shape {tuple(x.shape)} does not match the model input (N, {', '.join(map(str, input_shape))})"
        )
    if not np.all(np.isfinite(x)):
        bad = int(np.sum(~np.isfinite(x)))
        raise DataError(f"{data_path}: {bad} NaN/inf value(s); the firmware input must be finite numbers")
    return x.astype(np.float32)


def convert_saved_model(model_path: Path, out_dir: Path, data_path: Path | None, hls: HlsConfig) -> int:
    """Convert any saved QKeras model into the HLS project ``out_dir`` and prove it bit-exact.

    The model's first layer must be QActivation(quantized_bits(...)): it defines the firmware input
    type. Without ``data_path`` it simulates 10,000 inputs on that grid spread over its whole range,
    extremes and one-LSB steps included. Returns 0; raises CsimMismatchError (exit 1) or ModelError /
    DataError / StaleOutputError (exit 2).
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise StaleOutputError(f"--out {out_dir} exists and is not empty; pass a new or empty directory")
    model = load_qkeras_model(model_path)
    input_shape = tuple(int(d) for d in model.input_shape[1:])
    from kd_trigger.hls.convert import check_supported, model_precision

    check_supported(model, hls)
    precision = model_precision(model)  # fails early, in one line, without an input quantizer
    input_type = next(iter(precision.values())).types["result"]
    if data_path is not None:
        x_raw = load_inputs(data_path, input_shape)
    else:
        x_raw = edge_case_inputs(input_type, input_shape, RANDOM_SAMPLES, seed=0).astype(np.float32)
    report, _ = convert_and_simulate(model, out_dir, hls, x_raw, None, Path(model_path).stem)
    report["inputs"] = (
        str(data_path) if data_path is not None else f"{RANDOM_SAMPLES} random inputs on {input_type.hls()}"
    )
    write_json_atomic(out_dir / REPORT_NAME, report)
    log.info(
        "%s -> %s: C simulation exact on %.6f of outputs (%d samples)",
        model_path,
        out_dir,
        report["csim"]["exact_fraction"],
        report["csim"]["n_samples"],
    )
    return EXIT_OK
