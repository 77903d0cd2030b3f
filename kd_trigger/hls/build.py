"""Building hls4ml firmware from a QKeras model: conversion, bit-exact C simulation, resources, and the
budget verdict of a finished report. The hls4ml stage, the scan and ``kd-trigger hls --model`` build
here. The RTL flow is :mod:`kd_trigger.rtl.student`: nothing here imports it, so an edit to the RTL
flow never reruns the hls4ml conversion (the stages' code fingerprints follow imports).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from kd_trigger.config import Config, HlsConfig
from kd_trigger.contracts import (
    CsimBlock,
    EstimateBlock,
    HlsReport,
    LayerSparsity,
    VendorFigures,
)
from kd_trigger.errors import CsimMismatchError
from kd_trigger.fpga import RESOURCE_KEYS, SOURCE_HLS, SOURCE_POST_SYNTH
from kd_trigger.fpga.budget import decide, load_budget
from kd_trigger.fpga.estimate import estimate_model
from kd_trigger.fpga.figures import design_figures
from kd_trigger.fpga.synth import run_vendor_synthesis
from kd_trigger.hls.convert import (
    Converted,
    convert_model,
    firmware_sparsity,
    hls_layer_precision,
)
from kd_trigger.hls.csim import run_csim, softmax_top
from kd_trigger.layout import ProjectLayout
from kd_trigger.runs import package_versions

log = logging.getLogger(__name__)

RANDOM_SAMPLES = 10_000
"""On-grid edge and random inputs every simulation adds to the given ones."""


def build_report(
    student: str,
    hls: HlsConfig,
    converted: Converted,
    csim: CsimBlock,
    final_dir: Path,
    model_name: str = "",
) -> HlsReport:
    """The project's report document (resources, budget and RTL blocks are added by the caller)."""
    return HlsReport(
        student=student,
        model=model_name,
        backend=hls.backend,
        part=hls.part,
        clock_period_ns=hls.clock_period_ns,
        reuse_factor=hls.reuse_factor,
        io_type=hls.io_type,
        strategy=hls.strategy,
        project_dir=str(final_dir),
        input_type=converted.input_type.hls(),
        precision={name: chosen.to_dict() for name, chosen in converted.precision.items()},
        precision_hls4ml=hls_layer_precision(converted.hls_model),
        requantized_weights=converted.requantized_layers,
        csim=csim,
        min_exact_fraction=hls.min_exact_fraction,
        seconds={
            "convert": round(converted.convert_s, 3),
            "compile": round(converted.compile_s, 3),
            "simulation": round(csim.simulation_s, 3),
            "qkeras": round(csim.qkeras_s, 3),
        },
        versions=package_versions(),
        intake=converted.assumed,
        reuse_by_layer=converted.reuse_by_layer,
        sparsity={
            name: LayerSparsity.model_validate(entry)
            for name, entry in firmware_sparsity(converted.hls_model).items()
        },
        ii_cycles=hls.ii_cycles or 1,
        parallelization_by_layer={
            layer.name: int(layer.get_attr("parallelization_factor"))
            for layer in converted.hls_model.get_layers()
            if layer.get_attr("n_partitions") is not None and layer.get_attr("parallelization_factor")
        },
    )


def _mismatch(student: str, csim: CsimBlock, hls: HlsConfig, report_path: Path) -> CsimMismatchError:
    where = (
        f"first diverging layer: '{csim.first_divergent_layer}'"
        if csim.first_divergent_layer
        else "no single layer diverges in the trace"
    )
    return CsimMismatchError(
        f"{student}: the C simulation agrees with QKeras on {csim.exact_fraction:.6f} of outputs "
        f"(required {hls.min_exact_fraction}; max |diff| {csim.max_abs_diff:.4g}); {where}; see {report_path}"
    )


def _estimate(converted: Converted, hls: HlsConfig) -> EstimateBlock:
    figures = estimate_model(converted.hls_model, hls.reuse_factor, hls.clock_period_ns).to_dict()
    return EstimateBlock.model_validate(figures)


def _estimate_at_ii1(converted: Converted, hls: HlsConfig) -> dict[str, Any]:
    """The same hls4ml design with every layer at reuse factor 1: what the RTL flow (II = 1) is compared
    with at equal throughput."""
    figures = estimate_model(converted.hls_model, 1, hls.clock_period_ns, every_layer=True).to_dict()
    return {
        k: figures[k] for k in ("total", "total_hls", "latency_cycles", "ii_cycles", "source") if k in figures
    }


def _vendor_blocks(converted: Converted, hls: HlsConfig) -> tuple[VendorFigures | None, VendorFigures | None]:
    """Vendor HLS and post-synthesis figures (each stored once, apart), when hls.synth ran the tools."""
    figures = run_vendor_synthesis(converted.hls_model, hls, converted.project_dir)
    if figures is None:
        return None, None
    timing = {
        "latency_cycles": figures.get("latency_cycles"),
        "latency_ns": figures.get("latency_ns"),
        "ii_cycles": figures.get("ii_cycles"),
        "clock_period_ns": figures.get("clock_period_ns"),
    }
    hls_block = None
    if figures.get("hls"):
        hls_block = VendorFigures(
            source=SOURCE_HLS,
            tool=figures.get("hls_tool"),
            file=figures.get("hls_file"),
            **{k: figures["hls"].get(k) for k in RESOURCE_KEYS},
            **timing,
        )
    synth_block = None
    if figures.get("synth"):
        synth = figures["synth"]
        synth_block = VendorFigures(
            source=SOURCE_POST_SYNTH,
            tool=synth.get("tool"),
            file=synth.get("file"),
            **{k: synth.get(k) for k in RESOURCE_KEYS},
        )
    return hls_block, synth_block


def convert_and_simulate(
    model: Any,
    project_dir: Path,
    hls: HlsConfig,
    x_raw: np.ndarray,
    labels: np.ndarray | None,
    student: str,
    final_dir: Path | None = None,
    on_converted: Callable[[Any], None] | None = None,
) -> tuple[HlsReport, Converted]:
    """Convert into ``project_dir``, compile, C-simulate, add resources; write the project's report there
    (+ the C-simulation outputs with labels; see :class:`kd_trigger.layout.ProjectLayout`). ``final_dir``
    is where the project will live once committed.

    Raises CsimMismatchError (after writing the report) below ``hls.min_exact_fraction``.
    """
    final_dir = final_dir or project_dir
    converted = convert_model(model, project_dir, hls, on_converted=on_converted)
    csim, y_q, y_h = run_csim(model, converted, x_raw, labels, hls.min_exact_fraction)
    report = build_report(student, hls, converted, csim, final_dir, getattr(model, "name", ""))
    report_path = ProjectLayout(project_dir).report
    if csim.exact_fraction < hls.min_exact_fraction:
        report.write(report_path)
        raise _mismatch(student, csim, hls, ProjectLayout(final_dir).report)
    if labels is not None:
        np.savez_compressed(
            ProjectLayout(project_dir).csim_outputs,
            y_true=np.asarray(labels, dtype=np.int8),
            p_hls=softmax_top(y_h),
            p_qkeras=softmax_top(y_q),
            logits_hls=y_h,
            logits_qkeras=y_q,
        )
    report.resources = _estimate(converted, hls)
    report.hls4ml_at_ii1 = _estimate_at_ii1(converted, hls)
    report.vendor_hls, report.vendor_synth = _vendor_blocks(converted, hls)
    report.write(report_path)
    return report, converted


def apply_budget(report: HlsReport, cfg: Config) -> None:
    """The budget verdict of every flow in ``report`` (``budget``: the deciding one; ``budget_by_flow``)."""
    deciding, by_flow = decide(design_figures(report), load_budget(cfg.budget))
    report.budget = deciding.to_block()
    report.budget_by_flow = {flow: v.to_block() for flow, v in by_flow.items()}
