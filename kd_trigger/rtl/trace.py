"""Trace a fixed-point program into da4ml: distributed arithmetic (shift-and-add) for every constant matrix.

Each segment of the program (a weight layer and what follows it up to the next one) is traced on its own
into a da4ml ``CombLogic`` and pipelined with ``to_pipeline``; the RTL chains the segments, so every
segment output is a register the simulation can observe. da4ml tracks the exact value interval of every
wire, so accumulators come out exact without being told a width; the hls4ml flow's derived types are
then applied on top (a cast with wrap-around, a no-op whenever the derived type holds the interval, which
the derivation guarantees) so that a type that is too narrow behaves as it would in the firmware.

A row-wise segment (per-particle layers: the same circuit for every particle, see
:mod:`kd_trigger.rtl.program`) is traced for one particle only, when every particle's input intervals are
the same (they are: particles share the input type and the weights); the RTL instantiates that circuit
once per particle. Otherwise a per-particle matrix is still solved only once per distinct input
intervals, and its adder graph reused for every row.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from kd_trigger.fixed import FixedType
from kd_trigger.layers.step import Step
from kd_trigger.rtl.program import Folding, Program, Segment, folding
from kd_trigger.rtl.rounding import trace_quantize, trace_wrap

log = logging.getLogger(__name__)

# da4ml's own defaults for hardware cost/latency modelling (as in hls4ml's DA backend and da4ml's CLI):
# an adder costs one LUT per bit and takes one unit of latency whatever its width.
ADDER_SIZE = 1
CARRY_SIZE = -1


@dataclass(frozen=True)
class SolverOptions:
    """da4ml CMVM solver options (``da4ml.cmvm.api.solve``); the defaults are hls4ml's DA defaults.

    ``hard_dc``: extra adder depth allowed beyond the minimum (-1: unbounded; more depth, fewer adders).
    ``method0``: 'wmc' (weighted most-common subexpression) or 'mc', '-dc'/'-pdc' for depth-constrained
    variants; ``search_all_decompose_dc`` tries every matrix decomposition depth and keeps the cheapest.

    Measured on the 112-64-32-32-2 MLP (da4ml LUT / FF / stages / CPU s): the defaults 121,536 / 25,674 /
    9 / 54; ``hard_dc=-1`` identical; ``method0='mc'`` 121,713 / 26,002 / 9 / 46;
    ``search_all_decompose_dc=False`` 122,487 / 29,492 / 11 / 19; ``hard_dc=0`` 127,304 / 13,692 / 8 / 26
    (5% more LUTs for half the flip-flops); ``method0='wmc-pdc'`` 124,067 / 16,943 / 9 / 52.
    """

    method0: str = "wmc"
    method1: str = "auto"
    hard_dc: int = 2
    decompose_dc: int = -2
    search_all_decompose_dc: bool = True

    def __post_init__(self) -> None:
        methods = ("wmc", "wmc-dc", "wmc-pdc", "mc", "mc-dc", "mc-pdc")
        if self.method0 not in methods or self.method1 not in (*methods, "auto"):
            raise ValueError(
                f"da4ml solver methods {self.method0!r}/{self.method1!r}: method0 must be one of {', '.join(methods)}"
                " and method1 one of those or 'auto'"
            )

    def kwargs(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TracedSegment:
    """One segment as a da4ml pipeline, with the value intervals of its inputs and outputs."""

    segment: Segment
    pipeline: Any  # da4ml.cmvm.types.Pipeline
    in_qints: list[Any]  # da4ml QInterval per (flattened) input element
    out_qints: list[Any]
    out_shape: tuple[int, ...]
    seconds: float
    overflows: list[str] = field(default_factory=list)  # layers whose derived type cannot hold the interval
    rows: int = 1  # copies of ``pipeline`` side by side (one per particle); in/out_qints cover all rows

    @property
    def n_stages(self) -> int:
        return len(self.pipeline.solutions)

    @property
    def cost(self) -> float:
        return float(self.pipeline.cost) * self.rows


@dataclass
class TracedProgram:
    """All segments of a program, in order, and how they were traced."""

    program: Program
    segments: list[TracedSegment]
    latency_cutoff: float
    solver: SolverOptions
    seconds: float
    cpu_seconds: float = 0.0  # this process, all threads (numba's solver runs in parallel)
    folding: Folding | None = None  # II > 1: phi shared over k cycles (see kd_trigger.rtl.program.Folding)

    @property
    def ii_cycles(self) -> int:
        return 1 if self.folding is None else self.folding.ii_cycles

    @property
    def n_stages(self) -> int:
        return sum(s.n_stages for s in self.segments)

    @property
    def latency_cycles(self) -> int:
        """Pipeline stages, plus k cycles of a folded design: its k groups and the accumulator register."""
        return self.n_stages + (0 if self.folding is None else self.folding.ii_cycles)

    def _fold_terms(self) -> tuple[float, int]:
        """LUTs and register bits a folded design adds: the group multiplexer in front of phi (a 4:1
        multiplexer per LUT6), the accumulator adders (one adder per phi copy and channel), the whole
        event's input register (phi's own register only covers one group) and the accumulator."""
        from da4ml.cmvm.types import _minimal_kif

        fold = self.folding
        if fold is None:
            return 0.0, 0
        phi_in = self.segments[0]
        row_in = sum(sum(_minimal_kif(q)) for q in phi_in.pipeline.inp_qint) // max(phi_in.rows, 1)
        mux = fold.copies * row_in * -(-(fold.ii_cycles - 1) // 3)
        pool = self.segments[fold.phi_segments]
        acc_bits = sum(sum(_minimal_kif(q)) for q in pool.pipeline.inp_qint)
        extra_in = (fold.n_particles - fold.copies) * row_in
        return float(mux + fold.copies * acc_bits), int(extra_in + acc_bits)

    @property
    def cost(self) -> float:
        return sum(s.cost for s in self.segments) + self._fold_terms()[0]

    @property
    def reg_bits(self) -> int:
        """Flip-flops of the chained pipeline: the input register, then every stage's output register."""
        from da4ml.cmvm.types import _minimal_kif

        first = self.segments[0]
        bits = first.rows * sum(sum(_minimal_kif(q)) for q in first.pipeline.inp_qint)
        for seg in self.segments:
            for stage in seg.pipeline.solutions:
                bits += seg.rows * sum(sum(_minimal_kif(q)) for q in stage.out_qint)
        return int(bits) + self._fold_terms()[1]

    @property
    def overflows(self) -> list[str]:
        return [name for s in self.segments for name in s.overflows]


def latency_cutoff_for(clock_period_ns: float) -> float:
    """Adder levels per pipeline stage for a clock period.

    da4ml's CLI pairs its default cutoff of 5 adder levels with a 5 ns clock: about one carry-chain adder
    of these widths per nanosecond on UltraScale+, routing included. Never below one adder per stage.
    """
    return float(max(1, math.floor(clock_period_ns)))


def _hwconf() -> Any:
    from da4ml.trace import HWConfig

    return HWConfig(ADDER_SIZE, CARRY_SIZE, -1)


def _interval(t: FixedType) -> tuple[float, float, float]:
    return t.min_value, t.max_value, t.lsb


def _fits(v: Any, t: FixedType) -> bool:
    return t.min_value <= float(v.low) and float(v.high) <= t.max_value and float(v.step) >= t.lsb


class _Solver:
    """da4ml's CMVM solve, memoized on (matrix, input intervals): per-particle rows share one solution."""

    def __init__(self, options: SolverOptions) -> None:
        self.options = options
        self._cache: dict[tuple[Any, ...], Any] = {}
        self.n_solves = 0

    def __call__(self, kernel: np.ndarray, row: np.ndarray) -> np.ndarray:
        from da4ml.cmvm.api import solve
        from da4ml.cmvm.types import QInterval
        from numba.typed import List as NumbaList

        qints = tuple((float(v.low), float(v.high), float(v.step)) for v in row)
        lats = tuple(float(v.latency) for v in row)
        key = (kernel.tobytes(), kernel.shape, qints, lats)
        sol = self._cache.get(key)
        if sol is None:
            sol = solve(
                np.ascontiguousarray(kernel.astype(np.float32)),
                qintervals=NumbaList([QInterval(*q) for q in qints]),
                latencies=NumbaList(list(lats)),
                adder_size=ADDER_SIZE,
                carry_size=CARRY_SIZE,
                **self.options.kwargs(),
            )
            self._cache[key] = sol
            self.n_solves += 1
        return np.asarray(sol(row), dtype=object)


def _dense(step: Step, x: np.ndarray, solve: _Solver, shape: tuple[int, ...]) -> tuple[np.ndarray, bool]:
    assert step.weight is not None
    kernel = step.weight
    if not np.array_equal(kernel.astype(np.float32).astype(np.float64), kernel):
        raise AssertionError(f"{step.name}: kernel not exact in float32")  # 8-bit grids always are
    fan_in = kernel.shape[0]
    rows = x.reshape(-1, fan_in)
    out = np.empty((len(rows), kernel.shape[1]), dtype=object)
    for r, row in enumerate(rows):
        out[r] = solve(kernel, row)
    if step.bias is not None:
        # A constant add per output; da4ml merges it with later constant adds (e.g. rounding's half LSB).
        out = out + step.bias[None, :].astype(np.float64)
    overflow = False
    flat = out.ravel()
    for n, v in enumerate(flat):
        overflow |= not _fits(v, step.out_type)
        flat[n] = trace_wrap(v, step.out_type)
    return flat.reshape(shape), overflow


def floor_divide(v: Any, n: int, frac: int) -> Any:
    """Traced ``floor(v * 2**frac / n) * 2**-frac``: a constant division truncated to ``frac`` bits, exact.

    ``v`` must lie on a grid no finer than ``2**-frac``. Division by a constant is a multiplication by
    ``m = ceil(2**s / n)`` and a shift by ``s`` (Granlund-Montgomery): for 0 <= u <= u_max,
    ``floor(u * m / 2**s) == floor(u / n)`` whenever ``2**s > u_max * n``. Negative values are first
    offset by a multiple of n (a constant add before, one after).
    """
    u = v * 2.0**frac  # integer-valued
    offset = max(0, math.ceil(-float(u.low) / n))
    if offset:
        u = u + float(offset * n)
    high = int(float(u.high))
    s = (high * n + 1).bit_length() + 1
    m = -(-(1 << s) // n)  # ceil(2**s / n)
    q = (u * float(m)) * 2.0**-s
    q = q.quantize(0, max(1, (high // n + 1).bit_length()), 0)  # floor: drop the fraction
    if offset:
        q = q - float(offset)
    return q * 2.0**-frac


def _pool(step: Step, x: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, bool]:
    from da4ml.trace.ops import reduce

    acc = step.pool_accum
    assert acc is not None
    n = step.pool_n
    # da4ml's reduce builds the sum as a latency-balanced adder tree. A folded design feeds the sum
    # accumulated over its k groups: one row, already summed.
    if x.shape[0] == 1:
        sums = np.asarray(x[0], dtype=object).ravel()
    else:
        sums = np.atleast_1d(np.asarray(reduce(lambda a, b: a + b, x, axis=0), dtype=object))
    overflow = not all(_fits(v, acc) for v in sums)
    if n & (n - 1) == 0:  # a power of two: the mean is the sum with the binary point moved
        shift = n.bit_length() - 1
        means = [trace_wrap(trace_wrap(v, acc) * 2.0**-shift, step.out_type) for v in sums]
    else:  # the hls4ml flow's types: quotient truncated in the accumulator, rounded onto the result
        means = [
            trace_quantize(
                trace_wrap(floor_divide(trace_wrap(v, acc), n, acc.fractional), acc), step.out_type
            )
            for v in sums
        ]
    return np.asarray(means, dtype=object).reshape(shape), overflow


def _same_rows(qints: list[tuple[float, float, float]], rows: int) -> bool:
    if rows <= 1 or len(qints) % rows:
        return False
    per_row = len(qints) // rows
    return all(qints[r * per_row : (r + 1) * per_row] == qints[:per_row] for r in range(1, rows))


def trace_segment(
    segment: Segment,
    in_qints: list[tuple[float, float, float]],
    in_shape: tuple[int, ...],
    solve: _Solver,
    latency_cutoff: float,
) -> TracedSegment:
    """Trace one segment from inputs with the given value intervals and pipeline it.

    A row-wise segment whose rows have identical input intervals is traced for one row (``rows`` copies).
    """
    from da4ml.trace import FixedVariable, comb_trace, to_pipeline

    t0 = time.perf_counter()
    hw = _hwconf()
    rows = segment.rows if _same_rows(in_qints, segment.rows) else 1
    if rows > 1:
        in_qints = in_qints[: len(in_qints) // rows]
        in_shape = (1, *in_shape[1:])

    def shape_of(step: Step) -> tuple[int, ...]:
        return (1, *step.out_shape[1:]) if rows > 1 else step.out_shape

    inputs = [FixedVariable(lo, hi, st, hwconf=hw) for lo, hi, st in in_qints]
    x = np.asarray(inputs, dtype=object).reshape(in_shape)
    overflows: list[str] = []
    for step in segment.steps:
        if step.kind == "input":
            continue
        if step.kind == "reshape":
            x = x.reshape(shape_of(step))
        elif step.kind == "quantize":
            x = np.asarray([trace_quantize(v, step.out_type) for v in x.ravel()], dtype=object).reshape(
                shape_of(step)
            )
        elif step.kind == "dense":
            x, overflow = _dense(step, x, solve, shape_of(step))
            if overflow:
                overflows.append(step.name)
        elif step.kind == "pool":
            x, overflow = _pool(step, x, shape_of(step))
            if overflow:
                overflows.append(step.name)
        else:  # pragma: no cover - program.py only makes the kinds above
            raise AssertionError(step.kind)
    outputs = list(x.ravel())
    comb = comb_trace(inputs, outputs)
    pipe = to_pipeline(comb, latency_cutoff, retiming=True, verbose=False)
    seconds = time.perf_counter() - t0
    log.info(
        "traced %s (%s)%s: %d stages, da4ml cost %.0f LUT, %.1f s",
        segment.name,
        " -> ".join(segment.layer_names),
        f" for 1 of {rows} particles" if rows > 1 else "",
        len(pipe.solutions),
        pipe.cost * rows,
        seconds,
    )
    out_shape = (rows, *x.shape[1:]) if rows > 1 else tuple(x.shape)
    return TracedSegment(
        segment,
        pipe,
        list(pipe.inp_qint) * rows,
        list(pipe.out_qint) * rows,
        out_shape,
        seconds,
        overflows,
        rows,
    )


def _fold_rows(seg: TracedSegment, copies: int) -> TracedSegment:
    """A row-wise segment kept as ``copies`` circuits (one per particle of a group) instead of one per particle."""
    if seg.rows <= 1:
        raise AssertionError(f"segment {seg.segment.name}: a folded phi segment must be traced per particle")
    per_in, per_out = len(seg.in_qints) // seg.rows, len(seg.out_qints) // seg.rows
    return TracedSegment(
        seg.segment,
        seg.pipeline,
        seg.in_qints[: per_in * copies],
        seg.out_qints[: per_out * copies],
        (copies, *seg.out_shape[1:]),
        seg.seconds,
        seg.overflows,
        copies,
    )


def _sum_intervals(qints: list[tuple[float, float, float]], n_rows: int) -> list[tuple[float, float, float]]:
    """Intervals of the per-channel sum over ``n_rows`` particles, and of every partial sum of fewer
    (zero included: masked padding slots and the accumulator's restart)."""
    per_row = qints[: len(qints) // n_rows]
    return [(min(0.0, n_rows * lo), max(0.0, n_rows * hi), step) for lo, hi, step in per_row]


def trace_program(
    program: Program,
    latency_cutoff: float = 5.0,
    solver: SolverOptions | None = None,
    ii_cycles: int = 1,
) -> TracedProgram:
    """Trace every segment of ``program`` in order; each starts from its predecessor's output intervals.

    ``ii_cycles`` > 1 folds a Deep Sets (:func:`kd_trigger.rtl.program.folding`): its phi segments are
    kept as ceil(n / k) copies, and the pooling segment is traced from the accumulated per-channel sum.
    """
    solver = solver or SolverOptions()
    fold = folding(program, ii_cycles)
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    solve = _Solver(solver)
    n_in = int(np.prod(program.input_shape))
    qints = [_interval(program.input_type)] * n_in
    shape = program.input_shape
    traced: list[TracedSegment] = []
    for i, segment in enumerate(program.segments):
        if fold is not None and i == fold.phi_segments:
            qints = _sum_intervals(qints, fold.n_particles)
            shape = (1, len(qints))
        seg = trace_segment(segment, qints, shape, solve, latency_cutoff)
        qints = [(float(q.min), float(q.max), float(q.step)) for q in seg.out_qints]
        shape = seg.out_shape
        if fold is not None and i < fold.phi_segments:
            seg = _fold_rows(seg, fold.copies)
        traced.append(seg)
    result = TracedProgram(
        program,
        traced,
        latency_cutoff,
        solver,
        time.perf_counter() - t0,
        time.process_time() - cpu0,
        folding=fold,
    )
    for name in result.overflows:
        log.warning(
            "layer %s: its fixed-point type cannot hold every value the layer can produce; the RTL wraps "
            "there exactly like the firmware type would",
            name,
        )
    log.info(
        "da4ml: %d segments, %d stages, cost %.0f LUT, %d register bits, %d CMVM solves, %.1f s",
        len(traced),
        result.n_stages,
        result.cost,
        result.reg_bits,
        solve.n_solves,
        result.seconds,
    )
    return result
