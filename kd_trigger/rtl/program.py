"""A QKeras student as a fixed-point program: one step per Keras layer, with the hls4ml flow's types.

Every type comes from :func:`kd_trigger.layers.model.model_precision` (the same derivation the hls4ml
firmware uses) and every weight from :func:`kd_trigger.layers.model.quantized_weights` (the values the
QKeras kernel quantizer produces, checked to lie on the weight type's grid). Nothing here invents a width.
Each layer's handler (:meth:`kd_trigger.layers.base.LayerHandler.rtl_step`) lowers it to a
:class:`~kd_trigger.layers.step.Step`; the step kinds (input, quantize, dense, pool, reshape) are the
program's instruction set, interpreted by :func:`evaluate` here and by :mod:`kd_trigger.rtl.trace`, so a
new layer kind that lowers to existing instructions needs nothing in this package.

The program is split into *segments*: a weight layer (QDense / QConv1D) with the layers that follow it up
to the next weight layer (its quantizer, a pooling, a flatten). Each segment becomes one pipelined block
of RTL whose output is registered and observable in simulation, so a mismatch can be pinned to a layer.
The boundaries sit right after a quantizer, the narrowest values in the network.

A segment whose every step works on one particle at a time (a per-particle dense layer and its
quantizer: the phi network of a Deep Sets student) is *row-wise*: its hardware is one circuit per
particle, identical for all of them. It is traced and emitted once and instantiated per particle, which
divides tracing, Verilog size and synthesis memory by the number of particles. A step that mixes
particles (pooling, flatten) therefore starts a new segment after a row-wise one.

:func:`evaluate` runs the program in exact integer arithmetic (numpy int64): the reference the RTL is
compared with when a simulation disagrees with QKeras.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kd_trigger.errors import ConfigError, ModelError
from kd_trigger.fixed import FixedType
from kd_trigger.layers.base import ProgramWalk, UnsupportedInRtl
from kd_trigger.layers.model import model_precision, quantized_weights
from kd_trigger.layers.registry import find_handler, rtl_supported
from kd_trigger.layers.spec import LayerPrecision
from kd_trigger.layers.step import Step, StepKind, derived_type
from kd_trigger.rtl.rounding import align_codes, quantize_codes, wrap_codes

__all__ = ["Folding", "Program", "Segment", "Step", "StepKind", "build_program", "evaluate", "folding"]


@dataclass(frozen=True)
class Segment:
    """Consecutive steps that become one pipelined RTL block; its output is registered (a probe)."""

    index: int
    steps: tuple[Step, ...]
    rows: int = 1  # > 1: a row-wise segment, one identical circuit per row (particle)

    @property
    def name(self) -> str:
        """The segment's weight layer (where its arithmetic lives), else its first layer."""
        weight = [s.name for s in self.steps if s.kind == "dense"]
        return weight[0] if weight else self.steps[0].name

    @property
    def layer_names(self) -> list[str]:
        return [s.name for s in self.steps]

    @property
    def last(self) -> Step:
        return self.steps[-1]


@dataclass
class Program:
    """The whole student: its input, its steps in order, and their grouping into segments."""

    name: str
    input_name: str
    input_type: FixedType
    input_shape: tuple[int, ...]
    steps: list[Step]
    segments: list[Segment] = field(default_factory=list)

    @property
    def output_type(self) -> FixedType:
        return self.steps[-1].out_type

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.steps[-1].out_shape


def build_program(
    model: Any,
    precision: dict[str, LayerPrecision] | None = None,
    weights: dict[str, dict[str, np.ndarray]] | None = None,
) -> Program:
    """The fixed-point program of a single-chain QKeras student.

    ``precision`` defaults to :func:`kd_trigger.layers.model.model_precision` (the hls4ml flow's derived
    types) and ``weights`` to :func:`kd_trigger.layers.model.quantized_weights`; both are parameters only so
    tests can show what a wrong type or weight does. Raises :class:`ModelError` naming the first layer that
    has no bit-exact fixed-point form.
    """
    prec = model_precision(model) if precision is None else precision
    wts = quantized_weights(model) if weights is None else weights
    layers = list(model.layers)
    first = find_handler(type(layers[0]).__name__) if layers else None
    if first is None or first.kind != "input":
        raise ModelError("the model must be a functional Keras model starting with an Input layer")
    input_name = layers[0].name
    input_type = derived_type(prec[input_name], "result", f"'{input_name}' (InputLayer)")
    shape = tuple(int(d) for d in model.input_shape[1:])
    walk = ProgramWalk(prec, wts, input_type)
    steps: list[Step] = []
    for layer in layers[1:]:
        handler = find_handler(type(layer).__name__)
        try:
            if handler is None:
                raise UnsupportedInRtl(layer)
            step = handler.rtl_step(layer, walk)
        except UnsupportedInRtl:
            raise ModelError(
                f"layer '{layer.name}' ({type(layer).__name__}) has no bit-exact RTL form in kd_trigger.rtl; "
                f"supported layers: {rtl_supported()}"
            ) from None
        if step is not None:
            steps.append(step)
    if not any(s.kind == "dense" for s in steps):
        raise ModelError("the model has no QDense/QConv1D layer: nothing to build in RTL")
    program = Program(model.name, input_name, input_type, shape, steps)
    program.segments = _segments(steps)
    return program


def _segments(steps: list[Step]) -> list[Segment]:
    """Cut before every weight layer but the first, and where a row-wise segment meets a step mixing rows.

    Leading steps without hardware (the input quantizer, a flatten) join the first segment.
    """
    groups: list[list[Step]] = [[]]

    def hardware(group: list[Step]) -> list[Step]:
        return [s for s in group if s.has_hardware]

    for step in steps:
        current = groups[-1]
        has_dense = any(s.kind == "dense" for s in current)
        row_wise_so_far = bool(hardware(current)) and all(s.row_wise for s in hardware(current))
        if (step.kind == "dense" and has_dense) or (row_wise_so_far and not step.row_wise):
            groups.append([])
        groups[-1].append(step)
    segments = []
    for i, group in enumerate(groups):
        hw = hardware(group)
        rows = 1
        if hw and all(s.row_wise for s in hw) and all(s.row_wise or not s.has_hardware for s in group):
            rows = group[-1].out_shape[0]
        segments.append(Segment(i, tuple(group), rows))
    return segments


@dataclass(frozen=True)
class Folding:
    """A Deep Sets program time-multiplexed over ``ii_cycles`` clock cycles (II = k).

    The leading ``phi_segments`` row-wise segments (the per-particle phi network) exist ``copies`` =
    ceil(n_particles / k) times; group j of particles (``j * copies`` ... ``j * copies + copies - 1``) goes
    through them on cycle j of an event, and the pooled sum is accumulated over the k groups (integer
    additions: exact). The pooling segment and everything after it (rho) exist once and run once per event.
    ``padding`` copies of the last group are empty slots whose phi outputs are masked to zero (phi(0) is
    not 0 in general: biases).
    """

    ii_cycles: int
    n_particles: int
    copies: int
    phi_segments: int

    @property
    def padding(self) -> int:
        return self.copies * self.ii_cycles - self.n_particles

    def to_dict(self) -> dict[str, int]:
        return {
            "ii_cycles": self.ii_cycles,
            "n_particles": self.n_particles,
            "phi_copies": self.copies,
            "padding_slots": self.padding,
            "phi_segments": self.phi_segments,
        }


def folding(program: Program, ii_cycles: int) -> Folding | None:
    """How ``program`` folds at II = ``ii_cycles`` (None for 1: the fully parallel design).

    Raises ConfigError for an II below 1 or above the number of particles, ModelError for a program that is
    not a Deep Sets (per-particle layers, then a mean over the particles): only its phi can be shared.
    """
    if isinstance(ii_cycles, bool) or not isinstance(ii_cycles, int) or ii_cycles < 1:
        raise ConfigError(f"ii_cycles must be an integer >= 1, got {ii_cycles!r}")
    if ii_cycles == 1:
        return None
    segs = program.segments
    n_phi = 0
    while n_phi < len(segs) and segs[n_phi].rows > 1:
        n_phi += 1
    pool = segs[n_phi] if n_phi < len(segs) else None
    first_hw = next((s for s in pool.steps if s.has_hardware), None) if pool is not None else None
    if n_phi == 0 or first_hw is None or first_hw.kind != "pool":
        raise ModelError(
            f"ii_cycles {ii_cycles}: only a Deep Sets student (per-particle layers, then a mean over the "
            f"particles) can be folded; '{program.name}' has no per-particle network feeding a pooling"
        )
    n = segs[0].rows
    if any(s.rows != n for s in segs[:n_phi]) or first_hw.pool_n != n:
        raise ModelError(
            f"ii_cycles {ii_cycles}: the pooling of '{program.name}' does not average its particles"
        )
    if ii_cycles > n:
        raise ConfigError(f"ii_cycles {ii_cycles} is above the number of particles ({n})")
    return Folding(ii_cycles, n, -(-n // ii_cycles), n_phi)


# -- exact reference ----------------------------------------------------------------------------------
@dataclass
class Fixed:
    """Exact fixed-point values: integer ``codes`` times ``2**-frac``."""

    codes: np.ndarray
    frac: int

    def values(self) -> np.ndarray:
        return self.codes.astype(np.float64) * 2.0**-self.frac


def input_codes(program: Program, x: np.ndarray) -> np.ndarray:
    """Integer codes of inputs that are already on the program's input grid (raises ValueError if not)."""
    t = program.input_type
    scaled = np.asarray(x, dtype=np.float64) / t.lsb
    codes = np.rint(scaled)
    if not np.array_equal(codes, scaled) or (
        codes.size and (codes.min() < t.min_code or codes.max() > t.max_code)
    ):
        raise ValueError(
            f"inputs are not on the input grid {t.hls()}; quantize them with the student's first layer"
        )
    return codes.astype(np.int64)


def apply_step(step: Step, v: Fixed) -> Fixed:
    """One step on a batch (first axis = samples) in exact integer arithmetic."""
    if step.kind in ("input",):
        return v
    if step.kind == "reshape":
        return Fixed(v.codes.reshape((len(v.codes), *step.out_shape)), v.frac)
    if step.kind == "quantize":
        return Fixed(quantize_codes(v.codes, v.frac, step.out_type), step.out_type.fractional)
    if step.kind == "dense":
        assert step.weight is not None and step.weight_type is not None
        w_frac = step.weight_type.fractional
        w_codes = np.rint(step.weight / 2.0**-w_frac).astype(np.int64)
        frac = v.frac + w_frac
        # int64 matmul: exact (the derived accumulators are far below 63 bits)
        acc = np.einsum("...i,ij->...j", v.codes, w_codes, dtype=np.int64, optimize=False)
        out_frac = step.out_type.fractional
        acc = align_codes(acc, frac, out_frac)
        if step.bias is not None and step.bias_type is not None:
            b_codes = np.rint(step.bias / step.bias_type.lsb).astype(np.int64)
            acc = acc + align_codes(b_codes, step.bias_type.fractional, out_frac)
        return Fixed(wrap_codes(acc, step.out_type), out_frac)
    if step.kind == "pool":
        acc = step.pool_accum
        assert acc is not None
        n = step.pool_n
        total = wrap_codes(align_codes(v.codes.sum(axis=1), v.frac, acc.fractional), acc)
        if n & (n - 1) == 0:
            mean_frac = acc.fractional + n.bit_length() - 1  # dividing by 2**k moves the binary point
            out = align_codes(total, mean_frac, step.out_type.fractional)
            return Fixed(wrap_codes(out, step.out_type), step.out_type.fractional)
        quotient = wrap_codes(np.floor_divide(total, n), acc)  # truncated to the accumulator's grid
        return Fixed(quantize_codes(quotient, acc.fractional, step.out_type), step.out_type.fractional)
    raise AssertionError(step.kind)


def evaluate(program: Program, x: np.ndarray) -> dict[str, np.ndarray]:
    """Every step's output (float64, exact) for inputs ``x`` already on the input grid."""
    v = Fixed(input_codes(program, x), program.input_type.fractional)
    out: dict[str, np.ndarray] = {}
    for step in program.steps:
        v = apply_step(step, v)
        out[step.name] = v.values()
    return out
