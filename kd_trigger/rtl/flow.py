"""The open-source RTL flow: QKeras student -> da4ml Verilog -> Verilator proof of bit exactness -> Yosys.

:func:`run_rtl_flow` is the whole flow. Its steps are public too (:func:`build_rtl`, :func:`verify_rtl`,
:func:`kd_trigger.rtl.synth.synthesize`) so a test can change the emitted Verilog and check the gate.

The gate is the hls4ml C simulation's (:mod:`kd_trigger.hls.csim`): inputs are put on the student's
input grid by its own first layer, the QKeras model run layer for layer in float64 (its "twin", exact for
every derived type up to 53 bits, where float32 QKeras rounds wide sums) and the RTL compute the same
samples, and every logit must agree exactly. How often QKeras' own float32 outputs equal that exact
reference is reported next to it (``float32_agreement``).

On a mismatch the first diverging layer is located from three views of every layer: QKeras' (twin)
outputs, the exact integer evaluation of the fixed-point program (:func:`kd_trigger.rtl.program.evaluate`)
and the RTL's segment registers. A layer where the program already differs from QKeras is a type or
rounding problem; a segment whose registers differ from the program while it agrees with QKeras is an
RTL problem.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kd_trigger.contracts import Da4mlEstimateBlock, RtlResult, RtlSimBlock, YosysBlock
from kd_trigger.errors import ConfigError, DataError
from kd_trigger.layers.model import model_precision
from kd_trigger.layers.reference import (
    compare_outputs,
    float64_twin,
    keras_layer_outputs,
    qkeras_predict,
    quantize_inputs,
    run_twin,
)
from kd_trigger.layers.spec import LayerPrecision
from kd_trigger.layout import RTL_REPORT_FILE
from kd_trigger.rtl.emit import DEFAULT_TOP, Design, emit_design
from kd_trigger.rtl.errors import RtlMismatchError
from kd_trigger.rtl.program import Program, build_program, evaluate, folding, input_codes
from kd_trigger.rtl.sim import simulate
from kd_trigger.rtl.synth import FAMILIES, synthesize
from kd_trigger.rtl.tools import da4ml_version, find_verilator, find_yosys
from kd_trigger.rtl.trace import SolverOptions, TracedProgram, latency_cutoff_for, trace_program
from kd_trigger.runs import raise_if_terminated

log = logging.getLogger(__name__)

REPORT_FILE = RTL_REPORT_FILE


RtlSimResult = RtlSimBlock
"""Agreement of the RTL simulation with QKeras (the contract's ``rtl_sim`` block)."""

Da4mlEstimate = Da4mlEstimateBlock
"""da4ml's own cost model: LUTs of the adder graph, flip-flops of the pipeline registers."""


@dataclass
class BuiltRtl:
    """The result of :func:`build_rtl`: the program, its trace and the emitted design."""

    program: Program
    traced: TracedProgram
    design: Design
    out_dir: Path
    emit_seconds: float
    emit_cpu_seconds: float = 0.0


def build_rtl(
    model: Any,
    out_dir: Path,
    clock_period_ns: float = 5.0,
    part_family: str = "xcup",
    *,
    solver: SolverOptions | None = None,
    latency_cutoff: float | None = None,
    precision: dict[str, LayerPrecision] | None = None,
    top: str = DEFAULT_TOP,
    ii_cycles: int = 1,
) -> BuiltRtl:
    """Trace ``model`` into da4ml and write its Verilog, testbench and Yosys script into ``out_dir``.

    ``ii_cycles`` > 1 folds a Deep Sets student: ceil(n_particles / k) phi copies, an event every k
    cycles (see :func:`kd_trigger.rtl.folded.folded_top_module` for the interface).
    ``precision`` replaces the derived types (for what-if studies and the negative-control tests only).
    Raises :class:`kd_trigger.errors.ModelError` for a model without a bit-exact RTL form (or a folding
    of a model that is not a Deep Sets), ConfigError for an ``ii_cycles`` below 1 or above the particles.
    """
    if part_family not in FAMILIES:
        raise ConfigError(
            f"part_family {part_family!r}: Yosys synth_xilinx families are {', '.join(FAMILIES)}"
        )
    if clock_period_ns <= 0:
        raise ConfigError(f"clock_period_ns must be positive, got {clock_period_ns}")
    da4ml_version()  # ToolMissingError before any work if da4ml is absent
    program = build_program(model, precision)
    folding(program, ii_cycles)  # refuse a bad II before minutes of tracing
    cutoff = latency_cutoff if latency_cutoff is not None else latency_cutoff_for(clock_period_ns)
    traced = trace_program(program, cutoff, solver, ii_cycles)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0, cpu0 = time.perf_counter(), time.process_time()
    design = emit_design(traced, out_dir, top, part_family)
    return BuiltRtl(program, traced, design, out_dir, time.perf_counter() - t0, time.process_time() - cpu0)


def verify_rtl(
    built: BuiltRtl,
    model: Any,
    x_raw: np.ndarray,
    labels: np.ndarray | None = None,
    *,
    keep_build: bool = False,
    raise_on_mismatch: bool = True,
) -> RtlSimResult:
    """Simulate the emitted RTL on ``x_raw`` (quantized as the student does) and compare with QKeras exactly.

    Raises :class:`RtlMismatchError` naming the first diverging layer unless every output agrees (or
    ``raise_on_mismatch`` is False: the result then carries the diagnosis).
    """
    x_raw = np.asarray(x_raw, dtype=np.float64)
    if len(x_raw) == 0 or tuple(x_raw.shape[1:]) != built.program.input_shape:
        raise DataError(
            f"RTL inputs: expected (n > 0, {', '.join(map(str, built.program.input_shape))}) samples, "
            f"got shape {x_raw.shape}"
        )
    twin = float64_twin(model)
    x = quantize_inputs(twin, x_raw)
    try:
        codes = input_codes(built.program, x)
    except ValueError as err:
        raise DataError(f"RTL inputs: {err}") from None
    y_q = run_twin(twin, x).reshape(len(x), -1)
    y_32 = qkeras_predict(model, x).reshape(len(x), -1)
    t0 = time.perf_counter()
    run = simulate(built.design, built.out_dir, codes, keep_build=keep_build)
    seconds = time.perf_counter() - t0
    figures: dict[str, Any] = dict(compare_outputs(y_q, run.outputs, labels))
    exact_rows = np.all(y_q == run.outputs, axis=1)
    result = RtlSimResult(
        n_samples=int(figures["n_samples"]),
        n_outputs=int(figures["n_outputs"]),
        exact_fraction=float(figures["exact_fraction"]),
        max_abs_diff=float(figures["max_abs_diff"]),
        argmax_agreement=float(figures["argmax_agreement"]),
        first_divergent_layer=None,
        simulator=run.simulator,
        seconds=seconds,
        n_exact_samples=int(exact_rows.sum()),
        float32_agreement=float(np.mean(y_32 == y_q)) if y_q.size else 1.0,
        auc_qkeras=figures["auc_qkeras"],
        auc_rtl=figures["auc_hls"],
        nonzero_output_fraction=float(figures["nonzero_output_fraction"]),
        build_seconds=run.build_s,
        run_seconds=run.run_s,
        cpu_seconds=run.build_cpu_s + run.run_cpu_s,
    )
    log.info(
        "RTL vs QKeras: %d/%d samples exact, max |diff| %.3g, argmax agreement %.6f",
        result.n_exact_samples,
        result.n_samples,
        result.max_abs_diff,
        result.argmax_agreement,
    )
    if result.n_exact_samples < result.n_samples:
        bad = np.nonzero(~exact_rows)[0]
        result.first_divergent_layer, result.divergence = locate_divergence(
            built.program, twin, x, run.probes, bad
        )
        if raise_on_mismatch:
            raise RtlMismatchError(mismatch_message(result), result)
    return result


def locate_divergence(
    program: Program,
    twin: Any,
    x: np.ndarray,
    probes: dict[str, np.ndarray],
    bad: np.ndarray,
    limit: int = 512,
) -> tuple[str, dict[str, Any]]:
    """First layer where the fixed-point program leaves QKeras, or where the RTL leaves the program.

    Compares, on (at most ``limit`` of) the disagreeing samples ``bad``: the per-layer outputs of the
    float64 QKeras ``twin``, the exact program (:func:`evaluate`) and the RTL segment registers ``probes``
    (keyed by layer name). All three are exact, so any difference is a real one.
    """
    idx = bad[:limit] if len(bad) else np.arange(min(limit, len(x)))
    xs = x[idx]
    names = [s.name for s in program.steps]
    keras = keras_layer_outputs(twin, xs, names)
    ref = evaluate(program, xs)
    per_layer: dict[str, Any] = {}
    segment_of = {s.name: seg for seg in program.segments for s in seg.steps}
    for step in program.steps:
        k = keras[step.name].reshape(len(xs), -1)
        r = ref[step.name].reshape(len(xs), -1)
        diff = np.abs(k - r)
        entry: dict[str, Any] = {
            "program_vs_qkeras_exact_fraction": float(np.mean(diff == 0.0)),
            "program_vs_qkeras_max_abs_diff": float(diff.max()) if diff.size else 0.0,
        }
        per_layer[step.name] = entry
        if not step.matches_keras:
            entry["note"] = (
                "rounded onto the next quantizer's grid in firmware; compared after that quantizer"
            )
        elif float(entry["program_vs_qkeras_max_abs_diff"]) > 0.0:
            entry["verdict"] = "the fixed-point program differs from QKeras here (type or rounding)"
            return step.name, per_layer
        if step.name in probes:
            p = probes[step.name][idx].reshape(len(xs), -1)
            pd = np.abs(p - r)
            entry["rtl_vs_program_exact_fraction"] = float(np.mean(pd == 0.0))
            entry["rtl_vs_program_max_abs_diff"] = float(pd.max()) if pd.size else 0.0
            if pd.size and float(pd.max()) > 0.0:
                seg = segment_of[step.name]
                entry["verdict"] = (
                    f"the RTL of layers {' -> '.join(seg.layer_names)} differs from the fixed-point program "
                    f"(observed in the register after '{step.name}')"
                )
                return seg.name, per_layer
    # Every layer and register agreed on these samples: blame the output layer (cannot happen unless the
    # port wiring itself is wrong).
    last = program.segments[-1]
    per_layer[program.steps[-1].name]["verdict"] = "outputs differ only at the output port wiring"
    return last.name, per_layer


def mismatch_message(result: RtlSimResult) -> str:
    """One line: how many samples disagree and where it starts."""
    layer = result.first_divergent_layer
    verdict = ""
    if result.divergence and layer:
        verdicts = [v.get("verdict") for v in result.divergence.values() if v.get("verdict")]
        verdict = f": {verdicts[-1]}" if verdicts else ""
    return (
        f"RTL simulation is not bit-exact with QKeras: {result.n_samples - result.n_exact_samples} of "
        f"{result.n_samples} samples differ (max |diff| {result.max_abs_diff:.3g}); first diverging layer "
        f"'{layer}'{verdict}"
    )


def _files(design: Design, out_dir: Path, yosys: YosysBlock | None) -> dict[str, list[str]]:
    logs = [
        p for p in ("logs/verilator.log", "logs/simulation.log", "logs/yosys.log") if (out_dir / p).is_file()
    ]
    reports = [p for p in ("synth/yosys_stat.json", "design.json", REPORT_FILE) if (out_dir / p).is_file()]
    if REPORT_FILE not in reports:
        reports.append(REPORT_FILE)
    return {
        "verilog": list(design.verilog),
        "testbench": [design.testbench],
        "synth_script": [design.synth_script],
        "logs": logs,
        "reports": reports,
    }


def run_rtl_flow(
    model: Any,
    out_dir: Path,
    x_raw: np.ndarray,
    clock_period_ns: float = 5.0,
    part_family: str = "xcup",
    labels: np.ndarray | None = None,
    synth: bool = True,
    *,
    solver: SolverOptions | None = None,
    latency_cutoff: float | None = None,
    precision: dict[str, LayerPrecision] | None = None,
    top: str = DEFAULT_TOP,
    keep_build: bool = False,
    ii_cycles: int = 1,
) -> RtlResult:
    """QKeras student -> pipelined Verilog (da4ml) -> Verilator proof against QKeras -> Yosys counts.

    ``ii_cycles``: 1 is the fully parallel design (a new sample every clock); k > 1 folds a Deep Sets
    student over k cycles (ceil(n/k) phi copies, an accumulator, rho once), simulated on back-to-back
    events at II k.

    ``x_raw``: samples shaped like the model input (quantized here by the student's first layer).
    ``clock_period_ns`` sets how many adder levels fit in a pipeline stage (see
    :func:`kd_trigger.rtl.trace.latency_cutoff_for`); ``part_family``: Yosys ``synth_xilinx -family``.
    Writes Verilog, testbench, Yosys script, logs and ``rtl_report.json`` into ``out_dir``.

    Raises :class:`kd_trigger.errors.ModelError` (unsupported model), :class:`ToolMissingError`, and
    :class:`RtlMismatchError` (after writing the report, without synthesizing) when any output differs
    from QKeras.
    """
    out_dir = Path(out_dir)
    find_verilator()  # fail on a missing tool before minutes of tracing
    if synth:
        find_yosys()
    built = build_rtl(
        model,
        out_dir,
        clock_period_ns,
        part_family,
        solver=solver,
        latency_cutoff=latency_cutoff,
        precision=precision,
        top=top,
        ii_cycles=ii_cycles,
    )
    # numba's JIT (inside da4ml) runs Python callbacks from C: a SIGTERM there can be swallowed. Stop now
    # rather than after minutes of simulation and synthesis.
    raise_if_terminated()
    sim = verify_rtl(built, model, x_raw, labels, keep_build=keep_build, raise_on_mismatch=False)
    exact = sim.n_exact_samples == sim.n_samples
    # Minutes of synthesis are not spent on a design that has just failed its gate.
    yosys = synthesize(built.design, out_dir, part_family) if synth and exact else None
    traced = built.traced
    prec = precision if precision is not None else model_precision(model)
    estimate = Da4mlEstimate(
        lut=round(traced.cost),
        ff=traced.reg_bits,
        latency_cycles=built.design.latency,
        latency_cutoff=traced.latency_cutoff,
        solver=traced.solver.kwargs(),
        segments=built.design.segments,
        trace_seconds=traced.seconds,
    )
    result = RtlResult(
        top=built.design.top,
        model=str(getattr(model, "name", "")),
        rtl_sim=sim,
        latency_cycles=built.design.latency,
        clock_period_ns=float(clock_period_ns),
        latency_ns=built.design.latency * float(clock_period_ns),
        da4ml_estimate=estimate,
        yosys=yosys,
        files=_files(built.design, out_dir, yosys),
        seconds={
            "trace": traced.seconds,
            "emit": built.emit_seconds,
            "simulate": sim.seconds,
            "synth": yosys.seconds if yosys else 0.0,
        },
        cpu_seconds={
            "trace": traced.cpu_seconds,
            "emit": built.emit_cpu_seconds,
            "simulate": sim.cpu_seconds,
            "synth": yosys.cpu_seconds if yosys else 0.0,
        },
        precision={name: p.to_dict() for name, p in prec.items()},
        input_type=built.program.input_type.hls(),
        output_type=built.program.output_type.hls(),
        tools={
            "da4ml": da4ml_version(),
            "simulator": sim.simulator,
            **({"yosys": yosys.tool} if yosys else {}),
        },
        overflow_layers=traced.overflows,
        ii_cycles=built.design.ii_cycles,
        folding=built.design.folding,
        interface=built.design.interface,
    )
    (out_dir / REPORT_FILE).write_text(json.dumps(result.to_dict(), indent=1))
    if not exact:
        raise RtlMismatchError(mismatch_message(sim), result)
    log.info(
        "RTL flow: %d/%d exact, II %d, latency %d cycles (%.1f ns), da4ml %d LUT / %d FF%s",
        sim.n_exact_samples,
        sim.n_samples,
        result.ii_cycles,
        result.latency_cycles,
        result.latency_ns,
        estimate.lut,
        estimate.ff,
        f", Yosys {yosys.lut} LUT / {yosys.ff} FF" if yosys else "",
    )
    return result
