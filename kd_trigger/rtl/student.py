"""The RTL flow of one student as the pipeline runs it: the inputs it is proven on, and the run.

Shared by the rtl stage (:mod:`kd_trigger.rtl.stage`), the design scan and the benchmarks; nothing here
builds hls4ml firmware.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from kd_trigger.config import HlsConfig
from kd_trigger.contracts import HlsReport, RtlBlock, RtlResult, RtlSimBlock
from kd_trigger.fpga.parts import yosys_family
from kd_trigger.hls.precision import edge_case_inputs
from kd_trigger.layers.model import model_precision
from kd_trigger.rtl.flow import run_rtl_flow

EDGE_SAMPLES = 10_000
"""On-grid edge and random inputs added to the test jets (extremes and one-LSB steps included)."""


def rtl_inputs(model: Any, x_test: np.ndarray, seed: int = 0) -> np.ndarray:
    """What the RTL simulation proves the Verilog on: the given jets plus 10,000 on-grid edge inputs."""
    input_type = next(iter(model_precision(model).values())).types["result"]
    shape = tuple(int(d) for d in model.input_shape[1:])
    edges = edge_case_inputs(input_type, shape, EDGE_SAMPLES, seed=seed)
    return np.concatenate([np.asarray(x_test, dtype=np.float64), edges])


def rtl_firmware(
    model: Any, out_dir: Path, hls: HlsConfig, x: np.ndarray, ii_cycles: int = 1, synth: bool = True
) -> RtlResult:
    """The open-source RTL flow of ``model`` into ``out_dir`` (with its ``rtl_report.json``).
    ``ii_cycles`` > 1 folds a Deep Sets student (an event every k cycles). ``synth=False`` stops after the
    Verilator gate (da4ml's estimate only; the scan runs Yosys later on the designs that count).
    Raises RtlMismatchError (exit 1, after writing rtl_report.json) when it is not exact."""
    return run_rtl_flow(
        model,
        out_dir,
        x,
        clock_period_ns=hls.clock_period_ns,
        part_family=yosys_family(hls.part),
        ii_cycles=ii_cycles,
        synth=synth,
    )


def rtl_design(
    model: Any, out_dir: Path, hls: HlsConfig, x: np.ndarray, ii_cycles: int = 1, synth: bool = True
) -> tuple[RtlBlock, RtlSimBlock]:
    """:func:`rtl_firmware` as the report's blocks: (``rtl``, naming its folder; ``rtl_sim``)."""
    result = rtl_firmware(model, out_dir, hls, x, ii_cycles, synth)
    return result.block(Path(out_dir).name), result.rtl_sim


def add_rtl(report: HlsReport, result: RtlResult, directory: str) -> None:
    """Put the RTL flow's figures into ``report`` (``rtl``, with the flow's folder, and ``rtl_sim``)."""
    report.rtl_sim = result.rtl_sim
    report.rtl = result.block(directory)


def run_rtl(
    model: Any, out_dir: Path, hls: HlsConfig, x: np.ndarray, report: HlsReport, ii_cycles: int = 1
) -> None:
    """:func:`rtl_firmware` into ``out_dir``, its figures added to ``report`` (``rtl`` and ``rtl_sim``)."""
    add_rtl(report, rtl_firmware(model, out_dir, hls, x, ii_cycles), str(Path(out_dir).name))
