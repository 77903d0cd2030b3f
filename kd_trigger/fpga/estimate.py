"""Resource and latency estimates of an hls4ml firmware without the vendor tools.

Scope: hls4ml's ``Latency`` strategy with ``io_parallel`` (what kd_trigger builds), Vivado HLS / Vitis HLS
followed by Vivado synthesis. Every number made here is labelled ``"estimate"``. The model is fitted to
real vendor reports of public hls4ml projects (``tests/fixtures/calibration/designs.json``, cited per
design); its error on designs it was not fitted to is measured by ``benchmarks/estimator_calibration.py``
(leave-one-repository-out, plus the fastmachinelearning/l1-jet-id designs kept out of every fit) and kept
in :data:`CALIBRATION`.

Two sets of figures are made: ``total`` predicts what **Vivado synthesis** reports (LUT, FF, DSP, BRAM),
``total_hls`` what the **HLS C-synthesis report** says (which counts about twice the LUTs of the
synthesized netlist). Latency and II predict the HLS report.

Method (per layer, then summed; :class:`Coefficients` holds every fitted number):

* Constant products (reuse factor R = 1). hls4ml's latency kernels unroll ``x * w`` with ``w`` a
  compile-time constant. The compiler drops zero weights, turns weights with one or two non-zero
  canonical-signed-digit (CSD) digits into shifts and one add/sub, and keeps a ``mul`` only for "hard"
  weights (three or more digits; identical weights on one input are shared). A ``mul`` goes to a DSP48
  when one operand has at least :attr:`Coefficients.dsp_wide_bits` (11) bits and the other at least
  :attr:`Coefficients.dsp_narrow_bits` (5) (a constant's width: its odd part plus a sign bit); narrower
  ones become LUT shift-add networks. The thresholds are fitted to 12k multiplications of public HLS
  reports (``tests/fixtures/calibration/dsp_binding.json``; none misclassified).
* R > 1: the ``mul`` operations share ``ceil(n_in n_out / R) - n_zeros / R`` units (hls4ml's
  ``multiplier_limit``; fewer if there are fewer hard products), DSPs when the data and weight widths pass
  the same rule; each unit takes its data operand through a ``rounds``-to-1 multiplexer.
* LUT: bit-count features -- ``adder`` (shift-adds, LUT constant multipliers, general LUT multipliers and
  the adder tree: one adder per product, ``min(accum, input + weight range + 2)`` bits), ``mux``,
  activations (``act_n`` per element, ``act`` per output bit, ``round_sat`` for rounding and saturation),
  softmax and table activations per element, pooling, DATAFLOW channels (``fifo``), a top-level constant.
  HLS LUT = a fitted coefficient per feature (fitted to the HLS reports' per-function breakdown);
  post-synthesis LUT = HLS LUT x a fitted factor per group (arithmetic; plain activations, which synthesis
  largely merges into the next adders; rounding/saturation; top level).
* FF: registers of the pipeline -- layer outputs and adder-tree bits held across the clock edges each
  layer spans, operands and partial sums kept with R > 1, pooling inputs, FIFO channels, and the
  registered model input (synthesis drops the input bits no layer reads).
* A coefficient is fitted only where two or more designs exercise its feature; otherwise a physical
  prior is used (one LUT per adder bit, one register per held bit, two per FIFO bit).
* Latency: each layer's combinational delay (multiplier, adder-tree levels, activation) is chained as
  HLS schedules one pipelined top function and cut into clock periods less the clock uncertainty;
  softmax / table activations and shared multipliers add cycles; under DATAFLOW each layer is a process
  and every hand-over between processes adds a cycle. II = max over layers of R x the sequential
  partitions of conv layers (hls4ml's ``n_partitions``).
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np

from kd_trigger.fpga import RESOURCE_KEYS, SOURCE_ESTIMATE

log = logging.getLogger(__name__)

DEFAULT_CLOCK_UNCERTAINTY = 0.125
"""Fraction of the clock period HLS reserves for uncertainty (Vivado HLS default 12.5%; Vitis HLS 27%)."""
VITIS_CLOCK_UNCERTAINTY = 0.27

METHOD_NAME = "kd_trigger fitted model"
"""The short name every estimated figure is labelled with; METHOD says what it computes."""

_MAC_KINDS = ("dense", "conv1d")
_RELU_LIKE = ("relu", "leaky_relu", "relu6", "elu", "selu", "prelu")
_QUANTIZER_LIKE = ("linear", "quantizer")
_TABLE_ACTIVATIONS = ("sigmoid", "tanh", "hard_sigmoid", "hard_tanh", "softsign", "softplus")

LUT_FEATURES = ("adder", "mux", "act_n", "act", "round_sat", "softmax", "table", "pool", "fifo", "top")
"""Bit-count features of the LUT model (see :func:`layer_model`)."""
FF_FEATURES = ("stage", "mac_reg", "reuse", "pool_reg", "fifo", "top", "top_unused")
"""Bit-count features of the FF model."""
FEATURE_GROUP = {
    "adder": "arith",
    "mux": "arith",
    "pool": "arith",
    "act_n": "act",
    "act": "act",
    "round_sat": "round",
    "softmax": "arith",
    "table": "arith",
    "fifo": "top",
    "top": "top",
    "stage": "arith",
    "mac_reg": "arith",
    "reuse": "arith",
    "pool_reg": "arith",
    "top_unused": "unused",
}
"""Synthesis scale-factor group of each feature."""


@dataclass(frozen=True)
class Coefficients:
    """Every fitted number of the model (defaults: the fit to all non-held-out calibration designs)."""

    dsp_wide_bits: int = 11
    """A ``mul`` goes to a DSP48 only if one operand has at least this many bits ..."""
    dsp_narrow_bits: int = 5
    """... and the other at least this many (fitted to the HLS binding table, see the module doc)."""
    hls_lut: tuple[tuple[str, float], ...] = ()
    """HLS LUT per unit of each feature of :data:`LUT_FEATURES`."""
    hls_ff: tuple[tuple[str, float], ...] = ()
    """HLS FF per unit of each feature of :data:`FF_FEATURES`."""
    synth_lut_scale: tuple[tuple[str, float], ...] = ()
    """Post-synthesis LUT / HLS LUT per feature group (arith, act, round, top, unused)."""
    synth_ff_scale: tuple[tuple[str, float], ...] = ()
    """Post-synthesis FF / HLS FF per feature group."""
    t_dsp_ns: float = 5.0
    """Delay of a DSP48 multiplication (ns)."""
    t_lut_mul_ns: float = 2.0
    """Delay of a LUT constant multiplier or shift-add (ns)."""
    t_add_ns: float = 0.5
    """Delay of one adder-tree level (ns)."""
    t_act_ns: float = 0.8
    """Delay of a ReLU / quantizer without rounding (ns)."""
    t_round_ns: float = 0.0
    """Extra delay of rounding + saturation of an activation (ns)."""
    reuse_cycles: float = 0.6
    """Extra cycles per layer per extra round of the shared multipliers (rounds = hard products / units,
    at most R)."""
    softmax_cycles: int = 3
    table_cycles: int = 1
    dataflow_cycles: int = 1
    """DATAFLOW top level: cycles added at each boundary between two layer processes (channel hand-over);
    every layer then starts its own chain."""
    chain_layers: bool = True
    """True: delays of consecutive layers are chained (cut into cycles together); False: every MAC layer
    starts on a clock edge."""
    top_cycles: int = 1
    """Cycles of the top-level function besides the layers (input/output registers)."""
    softmax_bram_18k: int = 4
    table_bram_18k: int = 1

    def lut(self, which: str) -> dict[str, float]:
        return dict(self.hls_lut) if which == "hls" else dict(self.synth_lut_scale)

    def ff(self, which: str) -> dict[str, float]:
        return dict(self.hls_ff) if which == "hls" else dict(self.synth_ff_scale)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("hls_lut", "hls_ff", "synth_lut_scale", "synth_ff_scale"):
            out[key] = {k: float(v) for k, v in getattr(self, key)}
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Coefficients:
        kwargs = dict(data)
        for key in ("hls_lut", "hls_ff", "synth_lut_scale", "synth_ff_scale"):
            if key in kwargs and isinstance(kwargs[key], dict):
                kwargs[key] = tuple(sorted((k, float(v)) for k, v in kwargs[key].items()))
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in kwargs.items() if k in names})


@dataclass(frozen=True)
class LayerSpec:
    """What the estimate needs to know about one layer (plain data, no TensorFlow/hls4ml).

    For ``dense``: ``n_in`` inputs, ``n_out`` outputs, ``n_nonzero_mult`` non-zero weights.
    For ``conv1d`` (kernel over positions): ``n_in`` = fan-in per output (channels x kernel width),
    ``n_out`` = filters, ``n_nonzero_mult`` non-zero weights of the kernel, ``n_positions`` output positions,
    of which ``n_positions / n_partitions`` are computed in parallel.
    For ``activation``: ``n_out`` elements (``activation`` names the function: relu, linear, softmax,
    sigmoid, ...). For ``pooling``: ``n_out`` channels reduced over ``n_positions`` (``pool_op`` average or
    max). ``input``/``other`` layers cost nothing.

    Weight statistics (known when the weights are: :func:`weight_statistics` computes them):
    ``n_pow2_mult`` non-zero weights with one CSD digit, ``n_two_digit_mult`` with two, ``csd_adders`` the
    total (digits - 1), ``hard_mult_widths`` ``((constant_bits, count), ...)`` of the weights with three or
    more digits (after sharing identical weights on one input), ``weight_range_bits`` the bits of the
    largest |weight| code plus a sign bit. ``None`` = unknown: the statistics of uniformly random
    ``weight_bits``-bit codes are used.
    ``reuse_factor``: this layer's reuse factor (None: the model-wide value).
    """

    name: str
    kind: str
    n_in: int
    n_out: int
    n_nonzero_mult: int = 0
    weight_bits: int = 0
    input_bits: int = 16
    accum_bits: int = 16
    output_bits: int = 16
    n_positions: int = 1
    n_partitions: int = 1
    n_pow2_mult: int = 0
    csd_adders: int | None = None
    has_bias: bool = True
    reuse_factor: int | None = None
    activation: str = "relu"
    input_int_bits: int | None = None
    output_int_bits: int | None = None
    output_rounding: bool = False
    output_saturation: bool = False
    n_two_digit_mult: int | None = None
    hard_mult_widths: tuple[tuple[int, int], ...] | None = None
    weight_range_bits: int | None = None
    pool_op: str = "average"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LayerSpec:
        kwargs = dict(data)
        if kwargs.get("hard_mult_widths") is not None:
            kwargs["hard_mult_widths"] = tuple((int(w), int(c)) for w, c in kwargs["hard_mult_widths"])
        names = {f.name for f in fields(cls)}
        unknown = set(kwargs) - names
        if unknown:
            raise ValueError(f"layer {kwargs.get('name')!r}: unknown LayerSpec fields {sorted(unknown)}")
        return cls(**kwargs)


@dataclass
class LayerEstimate:
    name: str
    kind: str
    multiplications: int
    """Non-zero products per inference (all positions)."""
    multipliers: int
    """Instantiated ``mul`` operators (hard constants, or shared units with a reuse factor)."""
    dsp_multipliers: int
    lut_multipliers: int
    lut: int
    """Post-synthesis LUT estimate."""
    ff: int
    dsp: int
    bram_18k: int
    uram: int
    latency_cycles: int
    """This layer's share of the latency (the chained delay is cut into cycles over the whole model)."""
    ii_cycles: int
    lut_hls: int = 0
    """The HLS report's LUT estimate for this layer."""
    ff_hls: int = 0
    delay_ns: float = 0.0
    """Combinational delay this layer adds to the scheduled chain."""
    reuse_factor: int = 1
    features: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["features"] = {k: round(float(v), 3) for k, v in self.features.items() if v}
        return out


@dataclass
class ResourceEstimate:
    """Per-layer and total estimate; every figure's source is ``"estimate"``."""

    layers: list[LayerEstimate]
    reuse_factor: int
    clock_period_ns: float
    latency_cycles: int
    ii_cycles: int
    total: dict[str, int] = field(default_factory=dict)
    """Post-synthesis (Vivado) estimate."""
    total_hls: dict[str, int] = field(default_factory=dict)
    """HLS C-synthesis report estimate."""
    overhead: dict[str, int] = field(default_factory=dict)
    """Top-level share of ``total`` (control, interface, DATAFLOW FIFOs): lut, ff, lut_hls, ff_hls."""
    pipeline_style: str = "pipeline"
    notes: list[str] = field(default_factory=list)

    @property
    def latency_ns(self) -> float:
        return round(self.latency_cycles * self.clock_period_ns, 6)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": SOURCE_ESTIMATE,
            "method": METHOD_NAME,
            "method_description": METHOD,
            "calibration": CALIBRATION,
            "reuse_factor": self.reuse_factor,
            "clock_period_ns": self.clock_period_ns,
            "latency_cycles": self.latency_cycles,
            "latency_ns": self.latency_ns,
            "ii_cycles": self.ii_cycles,
            "pipeline_style": self.pipeline_style,
            "total": dict(self.total),
            "total_hls": dict(self.total_hls),
            "total_meaning": "total: Vivado post-synthesis estimate; total_hls: HLS C-synthesis report estimate",
            "overhead": dict(self.overhead),
            "multiplications": sum(layer.multiplications for layer in self.layers),
            "layers": [layer.to_dict() for layer in self.layers],
            "notes": list(self.notes),
        }


# ---------------------------------------------------------------------------------------------------
# Weight statistics


def csd_digits(value: int) -> int:
    """Number of non-zero digits of ``value`` in canonical signed-digit form (0 for 0)."""
    n = abs(int(value))
    count = 0
    while n:
        if n & 1:
            # A run of ones ending here: take +1 or -1 so that the next digit becomes 0.
            digit = 2 - (n & 3)
            n -= digit
            count += 1
        n >>= 1
    return count


def constant_bits(value: int) -> int:
    """Width HLS gives a constant multiplier operand: bits of the odd part of |value|, plus a sign bit."""
    n = abs(int(value))
    if n == 0:
        return 0
    while n % 2 == 0:
        n //= 2
    return n.bit_length() + (1 if value < 0 else 0)


def weight_statistics(weights: np.ndarray, frac_bits: int) -> tuple[int, int, int]:
    """(non-zero, power-of-two, shift-add adders) of quantized weights with ``frac_bits`` fraction bits."""
    ints = np.rint(np.asarray(weights, dtype=np.float64) * (2.0**frac_bits)).astype(np.int64).ravel()
    nonzero = ints[ints != 0]
    digits = np.fromiter((csd_digits(int(v)) for v in nonzero), dtype=np.int64, count=nonzero.size)
    pow2 = int(np.count_nonzero(digits == 1))
    adders = int(np.sum(np.maximum(digits - 1, 0)))
    return int(nonzero.size), pow2, adders


def weight_profile(weights: np.ndarray, frac_bits: int, n_out: int) -> dict[str, Any]:
    """All the weight statistics of :class:`LayerSpec` for a kernel laid out ``(..., n_out)`` (hls4ml's
    order: one row of ``n_out`` weights per input, or per kernel tap and channel)."""
    ints = np.rint(np.asarray(weights, dtype=np.float64) * (2.0**frac_bits)).astype(np.int64).ravel()
    rows = ints.reshape(-1, max(int(n_out), 1))
    nonzero = ints[ints != 0]
    digits = np.fromiter((csd_digits(int(v)) for v in nonzero), dtype=np.int64, count=nonzero.size)
    hard: dict[int, int] = {}
    for row in rows:
        for value in {int(v) for v in row if v != 0 and csd_digits(int(v)) >= 3}:
            width = constant_bits(value)
            hard[width] = hard.get(width, 0) + 1
    return {
        "n_nonzero_mult": int(nonzero.size),
        "n_pow2_mult": int(np.count_nonzero(digits == 1)),
        "n_two_digit_mult": int(np.count_nonzero(digits == 2)),
        "csd_adders": int(np.sum(np.maximum(digits - 1, 0))),
        "hard_mult_widths": tuple(sorted(hard.items())),
        "weight_range_bits": int(np.max(np.abs(ints))).bit_length() + 1 if nonzero.size else 1,
    }


@functools.lru_cache(maxsize=64)
def _random_code_profile(bits: int) -> tuple[float, float, float, tuple[tuple[int, float], ...]]:
    """Per non-zero weight: fractions with 1 and 2 CSD digits, mean (digits - 1), and the constant-width
    distribution of the hard ones, for uniformly random ``bits``-bit signed codes."""
    bits = max(int(bits), 2)
    codes = [v for v in range(-(2 ** (bits - 1)), 2 ** (bits - 1)) if v != 0]
    digits = [csd_digits(v) for v in codes]
    n = len(codes)
    widths: dict[int, int] = {}
    for v, d in zip(codes, digits, strict=True):
        if d >= 3:
            w = constant_bits(v)
            widths[w] = widths.get(w, 0) + 1
    return (
        sum(d == 1 for d in digits) / n,
        sum(d == 2 for d in digits) / n,
        sum(max(d - 1, 0) for d in digits) / n,
        tuple(sorted((w, c / n) for w, c in widths.items())),
    )


def _profile(spec: LayerSpec) -> tuple[float, float, float, list[tuple[int, float]], float]:
    """(pow2, two-digit, hard count, [(const bits, count)], hard-constant adders) of a MAC layer."""
    nonzero = max(spec.n_nonzero_mult, 0)
    if spec.hard_mult_widths is not None and spec.n_two_digit_mult is not None:
        hard = [(int(w), float(c)) for w, c in spec.hard_mult_widths]
        two = float(spec.n_two_digit_mult)
        pow2 = float(spec.n_pow2_mult)
        adders = (
            float(spec.csd_adders) if spec.csd_adders is not None else two + 2.0 * sum(c for _, c in hard)
        )
        hard_adders = max(adders - two, 0.0)
        return pow2, two, sum(c for _, c in hard), hard, hard_adders
    f1, f2, mean_adders, widths = _random_code_profile(spec.weight_bits or 16)
    pow2 = float(spec.n_pow2_mult) if spec.n_pow2_mult else f1 * nonzero
    two = f2 * nonzero
    hard = [(w, f * nonzero) for w, f in widths]
    n_hard = sum(c for _, c in hard)
    if spec.csd_adders is not None:
        hard_adders = max(float(spec.csd_adders) - two, 0.0)
    else:
        hard_adders = max(mean_adders * nonzero - two, 0.0)
    return pow2, two, n_hard, hard, hard_adders


# ---------------------------------------------------------------------------------------------------
# The model


def dsp_eligible(a_bits: int, b_bits: int, coeffs: Coefficients) -> bool:
    """Does HLS bind an ``a_bits x b_bits`` multiplication to a DSP48?"""
    return max(a_bits, b_bits) >= coeffs.dsp_wide_bits and min(a_bits, b_bits) >= coeffs.dsp_narrow_bits


def _levels(n: float) -> int:
    return max(0, math.ceil(math.log2(max(n, 1.0))))


@dataclass
class _LayerModel:
    features: dict[str, float]
    ff_features: dict[str, float]
    detail: dict[str, float] = field(default_factory=dict)
    """Parts of the ``adder`` feature: shift_add, const_mult, general_mult, adder_tree (bits)."""
    multiplications: int = 0
    multipliers: int = 0
    dsp_mult: int = 0
    lut_mult: int = 0
    dsp_other: int = 0
    bram: int = 0
    delay_ns: float = 0.0
    fixed_cycles: int = 0
    reuse_cycles: int = 0
    ii: int = 1
    rf: int = 1
    out_bits_total: int = 0


def layer_model(spec: LayerSpec, reuse_factor: int, coeffs: Coefficients) -> _LayerModel:
    """Features (bit counts), DSPs, delay and fixed cycles of one layer (see the module doc)."""
    rf = int(spec.reuse_factor or reuse_factor or 1)
    if rf < 1:
        raise ValueError(f"layer {spec.name}: reuse_factor must be >= 1, got {rf}")
    lut = dict.fromkeys(LUT_FEATURES, 0.0)
    ff = dict.fromkeys(FF_FEATURES, 0.0)
    m = _LayerModel(features=lut, ff_features=ff, rf=rf)
    detail = m.detail
    out_elems = spec.n_out * (spec.n_positions if spec.kind in _MAC_KINDS else 1)
    m.out_bits_total = int(out_elems * spec.output_bits)
    if spec.kind in _MAC_KINDS:
        partitions = max(spec.n_partitions, 1)
        par = max(1, spec.n_positions // partitions)
        in_b, w_b, acc_b = spec.input_bits, max(spec.weight_bits, 1), spec.accum_bits
        _, two, n_hard, hard, hard_adders = _profile(spec)
        m.multiplications = int(spec.n_nonzero_mult * spec.n_positions)
        if rf == 1:
            dsp = sum(c for w, c in hard if dsp_eligible(in_b, w, coeffs))
            lut_hard = [(w, c) for w, c in hard if not dsp_eligible(in_b, w, coeffs)]
            n_lut_hard = sum(c for _, c in lut_hard)
            mean_w = sum(w * c for w, c in lut_hard) / n_lut_hard if n_lut_hard else 0.0
            share = n_lut_hard / n_hard if n_hard else 0.0
            detail["const_mult"] = par * hard_adders * share * (in_b + mean_w)
            m.dsp_mult = round(par * dsp)
            m.lut_mult = round(par * n_lut_hard)
            t_mul = coeffs.t_dsp_ns if dsp else (coeffs.t_lut_mul_ns if (n_lut_hard or two) else 0.0)
        else:
            n_zeros = max(spec.n_in * spec.n_out - spec.n_nonzero_mult, 0)
            limit = max(math.ceil(spec.n_in * spec.n_out * par / rf) - (n_zeros * par) // rf, 1)
            units = min(limit, math.ceil(par * n_hard)) if n_hard else 0
            if dsp_eligible(in_b, w_b, coeffs):
                m.dsp_mult = units
                t_mul = coeffs.t_dsp_ns
            else:
                m.lut_mult = units
                detail["general_mult"] = units * in_b * w_b
                t_mul = coeffs.t_lut_mul_ns
            # Each shared unit takes one of ``rounds`` data operands per cycle through a multiplexer
            # (the constant operand's multiplexer folds into a few LUTs).
            rounds = min(rf, math.ceil(par * n_hard / units)) if units else 1
            lut["mux"] = units * in_b * (rounds - 1)
            ff["reuse"] = units * (in_b + w_b) * (rounds - 1)
            m.reuse_cycles = math.ceil(coeffs.reuse_cycles * (rounds - 1) - 1e-9)
        m.multipliers = m.dsp_mult + m.lut_mult
        detail["shift_add"] = par * two * (in_b + 1)
        adds = max(spec.n_nonzero_mult + (spec.n_out if spec.has_bias else 0) - spec.n_out, 0)
        w_range = min(spec.weight_range_bits or w_b, w_b)
        width = min(acc_b, in_b + w_range + 2)
        detail["adder_tree"] = par * adds * width
        if rf > 1:
            ff["reuse"] += par * adds * width
        lut["adder"] = sum(detail.values())
        fan_in = spec.n_nonzero_mult / max(spec.n_out, 1) + (1 if spec.has_bias else 0)
        m.delay_ns = t_mul + coeffs.t_add_ns * _levels(fan_in)
        m.ii = rf * partitions
        if partitions > 1:
            # One window of positions at a time: the inputs of each window are selected by muxes.
            lut["mux"] += spec.n_in * in_b * (partitions - 1)
            ff["reuse"] += spec.n_in * in_b * partitions
            m.fixed_cycles += (partitions - 1) * rf
    elif spec.kind == "activation":
        act = spec.activation.lower()
        n = spec.n_out
        if act == "softmax":
            lut["softmax"] = n
            m.dsp_other = n
            m.bram = coeffs.softmax_bram_18k
            m.fixed_cycles = coeffs.softmax_cycles
        elif act in _TABLE_ACTIVATIONS:
            lut["table"] = n
            m.bram = coeffs.table_bram_18k
            m.fixed_cycles = coeffs.table_cycles
        else:
            out_b = spec.output_bits
            if act in _RELU_LIKE:
                lut["act_n"] = n
                lut["act"] = n * out_b
            if spec.output_rounding:
                lut["round_sat"] += n * out_b
            if spec.output_saturation:
                dropped = 0
                if spec.input_int_bits is not None and spec.output_int_bits is not None:
                    dropped = max(spec.input_int_bits - spec.output_int_bits, 0)
                lut["round_sat"] += n * (out_b + dropped)
            m.delay_ns = (coeffs.t_act_ns if act in _RELU_LIKE else 0.0) + (
                coeffs.t_round_ns if (spec.output_rounding or spec.output_saturation) else 0.0
            )
    elif spec.kind == "pooling":
        n = max(spec.n_positions, 1)
        detail["pool_inputs"] = n * spec.n_out * spec.input_bits
        if spec.pool_op.lower().startswith("max"):
            lut["pool"] = (n - 1) * spec.n_out * 2 * spec.input_bits
        else:
            lut["pool"] = (n - 1) * spec.n_out * spec.accum_bits
        m.delay_ns = coeffs.t_add_ns * _levels(n)
    return m


def _input_bits(layers: list[LayerSpec]) -> tuple[int, int]:
    """(used, unused) bits of the registered model input: a first quantizing activation reads only the
    bits it keeps (its output bits, one more when it rounds); the rest is dropped by synthesis."""
    real = [spec for spec in layers if spec.kind not in ("input", "other")]
    if not real:
        return 0, 0
    first = real[0]
    total = first.n_in * first.input_bits * max(first.n_positions if first.kind in _MAC_KINDS else 1, 1)
    if first.kind == "activation" and first.activation.lower() in (*_QUANTIZER_LIKE, *_RELU_LIKE):
        used_per = min(first.input_bits, first.output_bits + (1 if first.output_rounding else 0))
        used = first.n_in * used_per
        return used, max(total - used, 0)
    return total, 0


def _synth_of(sample: Any) -> dict[str, Any]:
    """The synthesis figures of a calibration sample the caller already selected for having them."""
    if sample.synth is None:
        raise ValueError(f"calibration design {sample.name} has no synthesis figures")
    return dict(sample.synth)


def _scaled(features: dict[str, float], hls: dict[str, float], scale: dict[str, float] | None) -> float:
    total = 0.0
    for key, value in features.items():
        if not value:
            continue
        coef = hls.get(key, 0.0)
        if scale is not None:
            coef *= scale.get(FEATURE_GROUP.get(key, "arith"), 1.0)
        total += coef * value
    return total


def estimate_layers(
    layers: list[LayerSpec],
    reuse_factor: int,
    clock_period_ns: float,
    clock_uncertainty: float = DEFAULT_CLOCK_UNCERTAINTY,
    pipeline_style: str = "pipeline",
    coefficients: Coefficients | None = None,
) -> ResourceEstimate:
    """The pure core of the estimate: :class:`LayerSpec` list -> :class:`ResourceEstimate`.

    ``reuse_factor`` is the model-wide value (a layer's own ``reuse_factor`` wins); ``pipeline_style``
    is the top function's: ``"pipeline"`` (hls4ml io_parallel default) or ``"dataflow"`` (conv layers
    with fewer parallel positions than outputs, Resource strategy, older hls4ml with conv layers).
    """
    if reuse_factor < 1:
        raise ValueError(f"reuse_factor must be >= 1, got {reuse_factor}")
    if clock_period_ns <= 0:
        raise ValueError(f"clock_period_ns must be positive, got {clock_period_ns}")
    if pipeline_style not in ("pipeline", "dataflow"):
        raise ValueError(f"pipeline_style must be 'pipeline' or 'dataflow', got {pipeline_style!r}")
    coeffs = coefficients or COEFFICIENTS
    hls_lut, hls_ff = coeffs.lut("hls"), coeffs.ff("hls")
    syn_lut, syn_ff = coeffs.lut("synth"), coeffs.ff("synth")
    usable = clock_period_ns * (1.0 - clock_uncertainty)
    notes: list[str] = []
    models: list[_LayerModel] = []
    for spec in layers:
        if spec.kind not in (*_MAC_KINDS, "activation", "pooling", "input", "other"):
            notes.append(f"layer {spec.name}: kind {spec.kind!r} is not modelled (counted as 0)")
        models.append(layer_model(spec, reuse_factor, coeffs))

    # Latency: chain the combinational delays; fixed-latency blocks (softmax, tables, reuse, partitions)
    # break the chain. Each layer gets the cycles its delay completes.
    out: list[LayerEstimate] = []
    chain_ns = 0.0
    cycles_done = 0
    total_cycles = coeffs.top_cycles
    layer_cycles: list[int] = []
    dataflow = pipeline_style == "dataflow"
    processes = 0
    for spec, mod in zip(layers, models, strict=True):
        cycles = 0
        if dataflow:
            # Every layer is its own process: its chain starts afresh, after the channel hand-over.
            chain_ns = 0.0
            cycles_done = 0
        if mod.delay_ns:
            if (mod.multipliers or mod.multiplications) and not coeffs.chain_layers:
                chain_ns = 0.0
                cycles_done = 0
            chain_ns += mod.delay_ns
            need = math.ceil(chain_ns / usable - 1e-9)
            cycles = max(need - cycles_done, 0)
            cycles_done = max(need, cycles_done)
        extra = mod.fixed_cycles + mod.reuse_cycles
        if dataflow and spec.kind in (*_MAC_KINDS, "activation", "pooling"):
            if processes:
                extra += coeffs.dataflow_cycles
            processes += 1
        if extra:
            cycles += extra
            chain_ns = 0.0
            cycles_done = 0
        layer_cycles.append(cycles)
        total_cycles += cycles

    # Registers: every layer output is held for the cycles it waits (its own and the next layer's).
    for i, mod in enumerate(models):
        mod.ff_features["stage"] = layer_cycles[i] * mod.out_bits_total
        mod.ff_features["mac_reg"] = layer_cycles[i] * mod.detail.get("adder_tree", 0.0)
        mod.ff_features["pool_reg"] = layer_cycles[i] * mod.detail.get("pool_inputs", 0.0)
    in_used, in_unused = _input_bits(layers)

    mac_ii = [mod.ii for spec, mod in zip(layers, models, strict=True) if spec.kind in _MAC_KINDS]
    ii = max(mac_ii) if mac_ii else reuse_factor
    for spec, mod, cycles in zip(layers, models, layer_cycles, strict=True):
        lut_hls = _scaled(mod.features, hls_lut, None)
        lut_syn = _scaled(mod.features, hls_lut, syn_lut)
        ff_hls = _scaled(mod.ff_features, hls_ff, None)
        ff_syn = _scaled(mod.ff_features, hls_ff, syn_ff)
        dsp = mod.dsp_mult + mod.dsp_other
        out.append(
            LayerEstimate(
                name=spec.name,
                kind=spec.kind,
                multiplications=mod.multiplications,
                multipliers=mod.multipliers,
                dsp_multipliers=mod.dsp_mult,
                lut_multipliers=mod.lut_mult,
                lut=round(lut_syn),
                ff=round(ff_syn),
                dsp=int(dsp),
                bram_18k=int(mod.bram),
                uram=0,
                latency_cycles=int(cycles),
                ii_cycles=int(mod.ii),
                lut_hls=round(lut_hls),
                ff_hls=round(ff_hls),
                delay_ns=round(mod.delay_ns, 3),
                reuse_factor=mod.rf,
                features={
                    k: v
                    for k, v in {
                        **mod.features,
                        **{f"ff_{k}": v for k, v in mod.ff_features.items()},
                        **mod.detail,
                    }.items()
                    if v
                },
            )
        )

    # Top level: a constant, the registered model input, and the DATAFLOW channels between layers.
    top_lut = {"top": 1.0, "fifo": 0.0}
    top_ff = {"top": float(in_used), "top_unused": float(in_unused), "fifo": 0.0}
    if pipeline_style == "dataflow":
        fifo_bits = float(sum(mod.out_bits_total for mod in models[:-1]))
        top_lut["fifo"] = fifo_bits
        top_ff["fifo"] = fifo_bits
    overhead = {
        "lut": round(_scaled(top_lut, hls_lut, syn_lut)),
        "ff": round(_scaled(top_ff, hls_ff, syn_ff)),
        "lut_hls": round(_scaled(top_lut, hls_lut, None)),
        "ff_hls": round(_scaled(top_ff, hls_ff, None)),
    }
    total = {k: int(sum(getattr(layer, k) for layer in out)) for k in RESOURCE_KEYS}
    total["lut"] += overhead["lut"]
    total["ff"] += overhead["ff"]
    total_hls = dict(total)
    total_hls["lut"] = int(sum(layer.lut_hls for layer in out) + overhead["lut_hls"])
    total_hls["ff"] = int(sum(layer.ff_hls for layer in out) + overhead["ff_hls"])
    return ResourceEstimate(
        layers=out,
        reuse_factor=reuse_factor,
        clock_period_ns=float(clock_period_ns),
        latency_cycles=int(total_cycles),
        ii_cycles=int(ii),
        total=total,
        total_hls=total_hls,
        overhead=overhead,
        pipeline_style=pipeline_style,
        notes=notes,
    )


def design_features(
    layers: list[LayerSpec],
    reuse_factor: int,
    clock_period_ns: float,
    clock_uncertainty: float = DEFAULT_CLOCK_UNCERTAINTY,
    pipeline_style: str = "pipeline",
    coefficients: Coefficients | None = None,
) -> dict[str, dict[str, float]]:
    """Summed LUT and FF features of a design (``{"lut": {...}, "ff": {...}}``), for fitting."""
    coeffs = coefficients or COEFFICIENTS
    unit = replace(
        coeffs,
        hls_lut=tuple((k, 1.0) for k in LUT_FEATURES),
        hls_ff=tuple((k, 1.0) for k in FF_FEATURES),
        synth_lut_scale=(),
        synth_ff_scale=(),
    )
    est = estimate_layers(layers, reuse_factor, clock_period_ns, clock_uncertainty, pipeline_style, unit)
    lut = dict.fromkeys(LUT_FEATURES, 0.0)
    ff = dict.fromkeys(FF_FEATURES, 0.0)
    for layer in est.layers:
        for k, v in layer.features.items():
            if k.startswith("ff_") and k[3:] in ff:
                ff[k[3:]] += v
            elif k in lut:
                lut[k] += v
    # The top-level features are not per layer: recompute them the way estimate_layers does.
    lut["top"] = 1.0
    ff["top"], ff["top_unused"] = (float(v) for v in _input_bits(layers))
    if pipeline_style == "dataflow":
        models = [layer_model(s, reuse_factor, coeffs) for s in layers]
        bits = float(sum(mod.out_bits_total for mod in models[:-1]))
        lut["fifo"] = bits
        ff["fifo"] = bits
    return {"lut": lut, "ff": ff}


# ---------------------------------------------------------------------------------------------------
# Fitting (pure numpy; used by benchmarks/estimator_calibration.py and the tests)

HLS_LUT_CATEGORIES = {
    "mac": ("adder", "mux"),
    "act": ("act_n", "act", "round_sat"),
    "softmax": ("softmax",),
    "table": ("table",),
    "pool": ("pool",),
    "top": ("top", "fifo"),
}
"""LUT features fitted to each category of the HLS report's instance table (``breakdown_lut``)."""
FITTED_FF_FEATURES = FF_FEATURES
LUT_PRIOR_FEATURE = "adder"
"""A LUT feature that fewer than :data:`MIN_DESIGNS` designs of the fit exercise (e.g. pooling, FIFOs)
takes the fitted cost of one adder bit: one LUT (plus carry) per bit."""
MIN_DESIGNS = 2
"""A coefficient is fitted only where at least this many designs exercise its feature; otherwise its
physical prior is used (one design cannot separate collinear features)."""
FF_PRIOR = {
    "stage": 1.0,
    "mac_reg": 0.1,
    "reuse": 1.0,
    "pool_reg": 1.0,
    "fifo": 2.0,
    "top": 1.0,
    "top_unused": 1.0,
}
"""FF per bit of a feature no fitted design exercises: one register per held bit (two per FIFO bit, a
depth-2 channel; a tenth of the adder-tree bits)."""
FF_FIXED = {"top": 1.0, "top_unused": 1.0}
"""FF coefficients not fitted: the model input is registered once (one FF per input bit); synthesis
removes the registers of input bits no layer reads (group ``unused``, factor 0)."""
SYNTH_GROUPS = ("arith", "act", "round", "top", "unused")
"""Post-synthesis / HLS factor groups: layer arithmetic (and softmax/tables), plain activations (ReLU,
truncating quantizers: synthesis merges them into the next adders), rounding/saturation, the top level
(DATAFLOW channels), input bits nothing reads (removed)."""
LATENCY_GRID: dict[str, tuple[Any, ...]] = {
    "t_dsp_ns": (1.0, 2.0, 3.0, 4.0, 5.0, 6.0),
    "t_lut_mul_ns": (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0),
    "t_add_ns": (0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.2),
    "t_act_ns": (0.0, 0.2, 0.4, 0.8, 1.2),
    "t_round_ns": (0.0, 0.4, 0.8, 1.2, 1.6, 2.0),
    "reuse_cycles": (0.2, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0),
    "softmax_cycles": (1, 2, 3, 4, 5),
    "table_cycles": (0, 1, 2),
    "top_cycles": (0, 1, 2, 3),
    "chain_layers": (True, False),
}
"""Values the latency fit (coordinate descent on the summed cycle error) may choose from."""
LATENCY_FIT_MAX_CYCLES = 30
"""Designs with a longer HLS latency (deep reuse, sequential conv partitions) are left out of the
latency fit: they are dominated by loop schedules the model does not describe."""


@dataclass
class CalibrationSample:
    """One real design: its layers, build settings and the vendor figures (see designs.json)."""

    name: str
    group: str
    """Fitting unit for leave-one-group-out (the repository)."""
    layers: list[LayerSpec]
    reuse_factor: int
    clock_period_ns: float
    clock_uncertainty: float
    pipeline_style: str
    hls: dict[str, Any]
    synth: dict[str, Any] | None
    use: frozenset[str] = frozenset({"dsp", "latency", "lut", "ff", "synth"})
    holdout_only: bool = False
    instance_latency: list[int | None] = field(default_factory=list)
    """Per layer: the latency of its own function in the HLS report (None when it was inlined)."""

    def estimate(self, coeffs: Coefficients | None = None) -> ResourceEstimate:
        return estimate_layers(
            self.layers,
            self.reuse_factor,
            self.clock_period_ns,
            self.clock_uncertainty,
            self.pipeline_style,
            coeffs,
        )

    def features(self, coeffs: Coefficients) -> dict[str, dict[str, float]]:
        return design_features(
            self.layers,
            self.reuse_factor,
            self.clock_period_ns,
            self.clock_uncertainty,
            self.pipeline_style,
            coeffs,
        )


def samples_from_designs(doc: dict[str, Any]) -> list[CalibrationSample]:
    """Calibration samples from the parsed ``tests/fixtures/calibration/designs.json``."""
    out = []
    for d in doc["designs"]:
        layers = [
            LayerSpec.from_dict({k: v for k, v in layer.items() if not k.startswith("_")})
            for layer in d["layers"]
        ]
        use = set(d.get("fit_use", ("dsp", "latency", "lut", "ff", "synth")))
        if not d.get("synth") or d.get("synth_comparable") is False:
            use.discard("synth")
        out.append(
            CalibrationSample(
                name=d["id"],
                group=d["repo"],
                layers=layers,
                reuse_factor=int(d["reuse_factor"]),
                clock_period_ns=float(d["clock_period_ns"]),
                clock_uncertainty=float(d.get("clock_uncertainty") or DEFAULT_CLOCK_UNCERTAINTY),
                pipeline_style=d.get("pipeline_style", "pipeline"),
                hls=d["hls"],
                synth=d.get("synth"),
                use=frozenset(use),
                holdout_only=bool(d.get("holdout_only", False)),
                instance_latency=[(layer.get("_hls_instance") or {}).get("lat") for layer in d["layers"]],
            )
        )
    return out


def nnls(a: np.ndarray, b: np.ndarray, max_iter: int = 500) -> np.ndarray:
    """Non-negative least squares, min ||a x - b|| with x >= 0 (Lawson-Hanson active set)."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    n = a.shape[1]
    x = np.zeros(n)
    passive = np.zeros(n, dtype=bool)
    w = a.T @ (b - a @ x)
    for _ in range(max_iter):
        if passive.all() or np.max(np.where(passive, -np.inf, w)) <= 1e-12:
            break
        passive[int(np.argmax(np.where(passive, -np.inf, w)))] = True
        while True:
            z = np.zeros(n)
            z[passive] = np.linalg.lstsq(a[:, passive], b, rcond=None)[0]
            if np.all(z[passive] > 0):
                x = z
                break
            neg = passive & (z <= 0)
            alpha = np.min(x[neg] / np.maximum(x[neg] - z[neg], 1e-300))
            x = x + alpha * (z - x)
            passive &= x > 1e-12
            x[~passive] = 0.0
        w = a.T @ (b - a @ x)
    return x


def fit_dsp_rule(observations: list[dict[str, Any]]) -> tuple[int, int, int]:
    """(wide, narrow, misclassified): the DSP thresholds that misclassify the fewest observed ``mul``
    operations (each observation: operand ``bits`` pair, ``dsp`` and ``lut`` counts)."""
    best = (11, 5, 1 << 60)
    for wide in range(4, 25):
        for narrow in range(2, wide + 1):
            miss = 0
            for obs in observations:
                a, b = obs["bits"]
                to_dsp = max(a, b) >= wide and min(a, b) >= narrow
                miss += obs["lut"] if to_dsp else obs["dsp"]
            if miss < best[2]:
                best = (wide, narrow, miss)
    return best


def _latency_cost(samples: list[CalibrationSample], coeffs: Coefficients) -> float:
    cost = 0.0
    for smp in samples:
        err = abs(smp.estimate(coeffs).latency_cycles - int(smp.hls["latency_cycles"]))
        cost += err + 2.0 * max(err - 2, 0)
    return cost


def fit_coefficients(
    samples: list[CalibrationSample],
    binding: list[dict[str, Any]] | None = None,
    start: Coefficients | None = None,
) -> Coefficients:
    """Fit every coefficient to ``samples`` (held-out samples must not be passed)."""
    coeffs = start or Coefficients()
    if binding:
        wide, narrow, _ = fit_dsp_rule(binding)
        coeffs = replace(coeffs, dsp_wide_bits=wide, dsp_narrow_bits=narrow)

    # DATAFLOW: the cycles between processes = (total - sum of the processes' own latencies) / boundaries,
    # read off the designs whose every layer function has its own row in the HLS report.
    handover = []
    for smp in samples:
        procs = [
            lat
            for spec, lat in zip(smp.layers, smp.instance_latency, strict=False)
            if spec.kind in (*_MAC_KINDS, "activation", "pooling")
        ]
        if smp.pipeline_style == "dataflow" and len(procs) > 1 and all(p is not None for p in procs):
            own = sum(p for p in procs if p is not None)
            handover.append((int(smp.hls["latency_cycles"]) - own) / (len(procs) - 1))
    if handover:
        coeffs = replace(coeffs, dataflow_cycles=max(round(float(np.median(handover))), 0))

    lat = [
        s for s in samples if "latency" in s.use and int(s.hls["latency_cycles"]) <= LATENCY_FIT_MAX_CYCLES
    ]
    if lat:
        best = _latency_cost(lat, coeffs)
        for _ in range(4):
            improved = False
            for key, values in LATENCY_GRID.items():
                for value in values:
                    trial = replace(coeffs, **{key: value})
                    cost = _latency_cost(lat, trial)
                    if cost < best - 1e-9:
                        best, coeffs, improved = cost, trial, True
            if not improved:
                break

    feats = {s.name: s.features(coeffs) for s in samples}
    # Every repository weighs the same in the fits, however many designs it holds.
    per_group: dict[str, int] = {}
    for smp in samples:
        per_group[smp.group] = per_group.get(smp.group, 0) + 1

    def gw(smp: CalibrationSample) -> float:
        return 1.0 / math.sqrt(per_group[smp.group])

    def exercised(kind: str, name: str) -> int:
        use = "lut" if kind == "lut" else "ff"
        return len([smp for smp in samples if use in smp.use and feats[smp.name][kind][name]])

    hls_lut: dict[str, float] = dict.fromkeys(LUT_FEATURES, 0.0)
    for category, names in HLS_LUT_CATEGORIES.items():
        rows, rhs = [], []
        for smp in samples:
            if "lut" not in smp.use:
                continue
            f = feats[smp.name]["lut"]
            target = float(smp.hls.get("breakdown_lut", {}).get(category, 0))
            if target <= 0 and not any(f[k] for k in names):
                continue
            weight = gw(smp) / max(target, 200.0)
            rows.append([f[k] * weight for k in names])
            rhs.append(target * weight)
        if rows:
            a = np.array(rows)
            keep = [j for j, name in enumerate(names) if exercised("lut", name) >= MIN_DESIGNS]
            x = nnls(a[:, keep], np.array(rhs)) if keep else np.zeros(0)
            fitted = dict(zip([names[j] for j in keep], x, strict=True))
            for name in names:
                # Too few repositories exercise it: the physical prior (one adder bit).
                hls_lut[name] = float(fitted[name]) if name in fitted else hls_lut.get(LUT_PRIOR_FEATURE, 1.0)

    hls_ff: dict[str, float] = dict.fromkeys(FF_FEATURES, 0.0)
    free = [k for k in FITTED_FF_FEATURES if k not in FF_FIXED and exercised("ff", k) >= MIN_DESIGNS]
    hls_ff.update(FF_FIXED)
    prior = [k for k in FITTED_FF_FEATURES if k not in FF_FIXED and k not in free]
    hls_ff.update({k: FF_PRIOR[k] for k in prior})
    rows, rhs = [], []
    for smp in samples:
        if "ff" not in smp.use:
            continue
        f = feats[smp.name]["ff"]
        weight = gw(smp) / max(float(smp.hls["ff"]), 200.0)
        fixed = sum(hls_ff[k] * f[k] for k in (*FF_FIXED, *prior))
        rows.append([f[k] * weight for k in free])
        rhs.append((float(smp.hls["ff"]) - fixed) * weight)
    if rows:
        a = np.array(rows)
        x = nnls(a, np.array(rhs))
        for j, name in enumerate(free):
            hls_ff[name] = float(x[j])

    def weighted_median(values: list[float], weights: list[float]) -> float:
        order = np.argsort(values)
        v = np.asarray(values)[order]
        w = np.cumsum(np.asarray(weights)[order])
        return float(v[np.searchsorted(w, 0.5 * w[-1])])

    # Post-synthesis / HLS factors: robust (weighted median of real / predicted, every repository weighing
    # the same); the top-level factor from DATAFLOW designs (the only ones with a sizeable top level).
    scales = {}
    for kind, coef in (("lut", hls_lut), ("ff", hls_ff)):
        synth = [smp for smp in samples if "synth" in smp.use and smp.synth]
        logic_of = {}
        top_of = {}
        for smp in synth:
            f = feats[smp.name][kind]
            logic_of[smp.name] = sum(
                coef.get(k, 0.0) * v for k, v in f.items() if FEATURE_GROUP.get(k) != "top"
            )
            top_of[smp.name] = sum(
                coef.get(k, 0.0) * v for k, v in f.items() if FEATURE_GROUP.get(k) == "top"
            )
        plain = [
            smp
            for smp in synth
            if smp.pipeline_style != "dataflow" and logic_of[smp.name] + top_of[smp.name] > 0
        ]
        logic = 1.0
        if plain:
            logic = weighted_median(
                [float(_synth_of(smp)[kind]) / (logic_of[smp.name] + top_of[smp.name]) for smp in plain],
                [1.0 / per_group[smp.group] for smp in plain],
            )
        act_scale = logic
        if kind == "lut" and plain:
            # Activations (rounding, saturation) shrink more in synthesis than the arithmetic: a second
            # factor, fitted (relative least squares) where the designs' activation share allows it.
            cols = []
            for smp in plain:
                f = feats[smp.name][kind]
                arith = sum(
                    coef.get(k, 0.0) * v
                    for k, v in f.items()
                    if FEATURE_GROUP.get(k) in ("arith", "round", "top")
                )
                act = sum(coef.get(k, 0.0) * v for k, v in f.items() if FEATURE_GROUP.get(k) == "act")
                w = math.sqrt(1.0 / per_group[smp.group]) / float(_synth_of(smp)[kind])
                cols.append((arith * w, act * w, float(_synth_of(smp)[kind]) * w))
            a = np.array([[c[0], c[1]] for c in cols])
            shares = a[:, 1] / np.maximum(a.sum(axis=1), 1e-12)
            if np.max(shares) > 0.15:
                x = nnls(a, np.array([c[2] for c in cols]))
                if x[0] > 0:
                    logic, act_scale = float(x[0]), float(x[1])
        flow = [smp for smp in synth if smp.pipeline_style == "dataflow" and top_of[smp.name] > 0]
        top = logic
        if flow:
            top = max(
                weighted_median(
                    [
                        (float(_synth_of(smp)[kind]) - logic * logic_of[smp.name]) / top_of[smp.name]
                        for smp in flow
                    ],
                    [1.0 / per_group[smp.group] for smp in flow],
                ),
                0.0,
            )
        # Rounding/saturation logic: no synthesized design of the fit separates it: the logic factor.
        scales[kind] = {"arith": logic, "act": act_scale, "round": logic, "top": top, "unused": 0.0}

    return replace(
        coeffs,
        hls_lut=tuple(sorted((k, float(v)) for k, v in hls_lut.items())),
        hls_ff=tuple(sorted((k, float(v)) for k, v in hls_ff.items())),
        synth_lut_scale=tuple(sorted(scales["lut"].items())),
        synth_ff_scale=tuple(sorted(scales["ff"].items())),
    )


# ---------------------------------------------------------------------------------------------------
# Fitted coefficients and their measured error (written by benchmarks/estimator_calibration.py --write)

# BEGIN FITTED (written by benchmarks/estimator_calibration.py --write; do not edit by hand)
COEFFICIENTS = Coefficients.from_dict(
    {
        "chain_layers": True,
        "dataflow_cycles": 1,
        "dsp_narrow_bits": 5,
        "dsp_wide_bits": 11,
        "hls_ff": {
            "fifo": 2.0,
            "mac_reg": 0.10369407293362508,
            "pool_reg": 1.0,
            "reuse": 0.0,
            "stage": 0.04130737012738959,
            "top": 1.0,
            "top_unused": 1.0,
        },
        "hls_lut": {
            "act": 0.5724641067391067,
            "act_n": 11.696413113602004,
            "adder": 1.2148658743875658,
            "fifo": 1.2148658743875658,
            "mux": 0.8032329106332322,
            "pool": 1.2148658743875658,
            "round_sat": 2.786533074967313,
            "softmax": 47.97082938323325,
            "table": 114.99999999999997,
            "top": 49.14252179983294,
        },
        "reuse_cycles": 0.6,
        "softmax_bram_18k": 4,
        "softmax_cycles": 3,
        "synth_ff_scale": {
            "act": 0.7898612833337386,
            "arith": 0.7898612833337386,
            "round": 0.7898612833337386,
            "top": 0.5889276401934828,
            "unused": 0.0,
        },
        "synth_lut_scale": {
            "act": 0.0,
            "arith": 0.5068593040042025,
            "round": 0.5068593040042025,
            "top": 2.698934576661306,
            "unused": 0.0,
        },
        "t_act_ns": 0.8,
        "t_add_ns": 0.5,
        "t_dsp_ns": 5.0,
        "t_lut_mul_ns": 2.0,
        "t_round_ns": 0.0,
        "table_bram_18k": 1,
        "table_cycles": 1,
        "top_cycles": 1,
    }
)
"""The fit to all non-held-out calibration designs."""

CALIBRATION: dict[str, Any] = {
    "blind": {
        "iris_mlp_16b_rf1_z7020_vitis2025": {
            "hls_dsp": [110, 114],
            "hls_ff": [13240, 499],
            "hls_lut": [4725, 3046],
            "ii_cycles": [1, 1],
            "latency_cycles": [32, 11],
        },
        "lhc_ae_16b_rf4_a7_vitis2023": {
            "hls_dsp": [34, 34],
            "hls_ff": [6007, 919],
            "hls_lut": [4893, 4467],
            "ii_cycles": [4, 4],
            "latency_cycles": [28, 17],
        },
    },
    "blind_summary": {
        "hls_dsp": {"n": 2, "ratio_max": 1.04, "ratio_min": 1.0, "within_target": 2},
        "hls_ff": {"n": 2, "ratio_max": 0.15, "ratio_min": 0.04, "within_target": 0},
        "hls_lut": {"n": 2, "ratio_max": 0.91, "ratio_min": 0.64, "within_target": 1},
        "ii_cycles": {"error_max": 0, "error_min": 0, "n": 2, "within_target": 2},
        "latency_cycles": {"error_max": -11, "error_min": -21, "n": 2, "within_target": 0},
    },
    "caveat": "medians over held-out designs (real, estimate pairs per design in held_out / l1_jet_id / blind); see benchmarks/estimator_calibration.py for the per-design table and the designs that miss the targets",
    "design": "leave-one-repository-out over the public designs of tests/fixtures/calibration, plus the fastmachinelearning/l1-jet-id Deep Sets and the blind designs held out of every fit",
    "held_out": {
        "dnd_mlp_4b_z7100": {
            "hls_dsp": [0, 0],
            "hls_ff": [2340, 2335],
            "hls_lut": [7381, 7574],
            "ii_cycles": [1, 1],
            "latency_cycles": [5, 4],
            "synth_dsp": [0, 0],
            "synth_ff": [1072, 908],
            "synth_lut": [3891, 3847],
        },
        "dnd_mlp_6b_random_zu9eg": {
            "hls_dsp": [0, 0],
            "hls_ff": [4561, 8999],
            "hls_lut": [59561, 57301],
            "ii_cycles": [1, 1],
            "latency_cycles": [5, 5],
            "synth_dsp": [0, 0],
            "synth_ff": [4555, 7836],
            "synth_lut": [31277, 28436],
        },
        "har_conv1d_16b_dataflow_u250": {
            "hls_dsp": [471, 454],
            "hls_ff": [495589, 694911],
            "hls_lut": [449837, 137488],
            "ii_cycles": [128, 128],
            "latency_cycles": [184, 143],
            "synth_dsp": [469, 454],
            "synth_ff": [377196, 469167],
            "synth_lut": [306396, 52846],
        },
        "iris_mlp_16b_rf16_pruned_z7020": {
            "hls_dsp": [17, 17],
            "hls_ff": [3892, 4451],
            "hls_lut": [7025, 12126],
            "ii_cycles": [12, 16],
            "latency_cycles": [25, 24],
            "synth_dsp": [17, 17],
            "synth_ff": [3614, 2712],
            "synth_lut": [3299, 6397],
        },
        "iris_mlp_16b_rf1_dense_z7020": {
            "hls_dsp": [664, 631],
            "hls_ff": [2767, 983],
            "hls_lut": [29277, 27259],
            "ii_cycles": [1, 1],
            "latency_cycles": [5, 5],
        },
        "iris_mlp_16b_rf1_pruned_z7020": {
            "hls_dsp": [162, 203],
            "hls_ff": [1294, 358],
            "hls_lut": [6787, 9080],
            "ii_cycles": [1, 1],
            "latency_cycles": [4, 5],
            "synth_dsp": [162, 203],
            "synth_ff": [245, 239],
            "synth_lut": [2545, 4810],
        },
        "iris_mlp_16b_rf8_pruned_z7020": {
            "hls_dsp": [31, 31],
            "hls_ff": [2994, 2667],
            "hls_lut": [6931, 12179],
            "ii_cycles": [6, 8],
            "latency_cycles": [13, 16],
            "synth_dsp": [31, 31],
            "synth_ff": [2848, 1634],
            "synth_lut": [2796, 6424],
        },
        "jet_tagger_16b_pruned_u250": {
            "hls_dsp": [803, 777],
            "hls_ff": [5734, 3830],
            "hls_lut": [30204, 28711],
            "ii_cycles": [1, 1],
            "latency_cycles": [11, 10],
        },
        "jet_tagger_16b_rf1_u250": {
            "hls_dsp": [1450, 1414],
            "hls_ff": [10961, 11602],
            "hls_lut": [84942, 89654],
            "ii_cycles": [1, 1],
            "latency_cycles": [13, 11],
        },
        "jet_tagger_16b_rf1_u250_vitis2022": {
            "hls_dsp": [2557, 2476],
            "hls_ff": [24233, 13340],
            "hls_lut": [116694, 91084],
            "ii_cycles": [1, 1],
            "latency_cycles": [15, 14],
        },
        "jet_tagger_16b_rf1_vu9p": {
            "hls_dsp": [3317, 3225],
            "hls_ff": [15168, 11856],
            "hls_lut": [112473, 104012],
            "ii_cycles": [1, 1],
            "latency_cycles": [10, 12],
            "synth_dsp": [3306, 3225],
            "synth_ff": [14719, 7488],
            "synth_lut": [60597, 48097],
        },
        "jet_tagger_16b_rf2_u250": {
            "hls_dsp": [1444, 1459],
            "hls_ff": [8878, 12167],
            "hls_lut": [87251, 94583],
            "ii_cycles": [2, 2],
            "latency_cycles": [12, 13],
        },
        "jet_tagger_6b_rf1_u250": {
            "hls_dsp": [23, 22],
            "hls_ff": [2762, 2227],
            "hls_lut": [32195, 31631],
            "ii_cycles": [1, 1],
            "latency_cycles": [9, 8],
        },
        "jet_tagger_6b_rf64_pynq_z7020": {
            "hls_dsp": [9, 9],
            "hls_ff": [17330, 11028],
            "hls_lut": [33690, 29523],
            "ii_cycles": [15, 64],
            "latency_cycles": [52, 30],
        },
        "openml_jet_16b_pruned60_u50": {
            "hls_dsp": [817, 815],
            "hls_ff": [8462, 4751],
            "hls_lut": [35326, 28148],
            "ii_cycles": [1, 1],
            "latency_cycles": [14, 13],
        },
        "openml_jet_hgq_1_u50": {
            "hls_dsp": [60, 80],
            "hls_ff": [9376, 12541],
            "hls_lut": [88980, 89196],
            "ii_cycles": [1, 1],
            "latency_cycles": [10, 10],
        },
        "openml_jet_hgq_2_u50": {
            "hls_dsp": [20, 18],
            "hls_ff": [5294, 6491],
            "hls_lut": [53621, 53334],
            "ii_cycles": [1, 1],
            "latency_cycles": [9, 9],
        },
        "openml_jet_hgq_3_u50": {
            "hls_dsp": [3, 3],
            "hls_ff": [1630, 1766],
            "hls_lut": [14507, 15576],
            "ii_cycles": [1, 1],
            "latency_cycles": [8, 8],
        },
        "openml_jet_hgq_4_u50": {
            "hls_dsp": [0, 0],
            "hls_ff": [574, 558],
            "hls_lut": [4968, 8168],
            "ii_cycles": [1, 1],
            "latency_cycles": [6, 6],
        },
        "openml_jet_hgq_5_u50": {
            "hls_dsp": [0, 10],
            "hls_ff": [333, 1399],
            "hls_lut": [1460, 9526],
            "ii_cycles": [1, 1],
            "latency_cycles": [4, 8],
        },
    },
    "held_out_summary": {
        "hls_dsp": {"n": 20, "ratio_max": 1.33, "ratio_min": 0.9, "within_target": 19},
        "hls_ff": {"n": 20, "ratio_max": 4.2, "ratio_min": 0.28, "within_target": 9},
        "hls_lut": {"n": 20, "ratio_max": 6.52, "ratio_min": 0.31, "within_target": 14},
        "ii_cycles": {"error_max": 49, "error_min": 0, "n": 20, "within_target": 17},
        "latency_cycles": {"error_max": 4, "error_min": -41, "n": 20, "within_target": 16},
        "synth_dsp": {"n": 7, "ratio_max": 1.25, "ratio_min": 0.97, "within_target": 7},
        "synth_ff": {"n": 7, "ratio_max": 1.72, "ratio_min": 0.51, "within_target": 4},
        "synth_lut": {"n": 7, "ratio_max": 2.3, "ratio_min": 0.17, "within_target": 3},
    },
    "holdout_hygiene": "l1-jet-id: never fitted, but its rows were printed while three rules were chosen (pointwise-conv partitions parallel, a separate activation synthesis factor, >= 2 designs per coefficient), so it is not blind. blind-2026-11-28: 2 designs from repositories never seen, collected after the rules and fit were frozen (commit 06bf0de) and evaluated once (HLS reports only).",
    "l1_jet_id": {
        "l1jetid_deepsets_4b_vu13p": {
            "hls_dsp": [71, 40],
            "hls_ff": [56865, 123588],
            "hls_lut": [518548, 472141],
            "ii_cycles": [2, 2],
            "latency_cycles": [19, 29],
            "synth_dsp": [101, 40],
            "synth_ff": [90190, 88375],
            "synth_lut": [235359, 293708],
        },
        "l1jetid_deepsets_6b_vu13p": {
            "hls_dsp": [298, 268],
            "hls_ff": [75016, 141787],
            "hls_lut": [739886, 721659],
            "ii_cycles": [2, 2],
            "latency_cycles": [19, 30],
            "synth_dsp": [292, 268],
            "synth_ff": [114745, 102747],
            "synth_lut": [313230, 420179],
        },
        "l1jetid_deepsets_8b_vu13p": {
            "hls_dsp": [619, 742],
            "hls_ff": [81429, 143678],
            "hls_lut": [898212, 1173713],
            "ii_cycles": [2, 2],
            "latency_cycles": [20, 30],
        },
    },
    "l1_jet_id_summary": {
        "hls_dsp": {"n": 3, "ratio_max": 1.2, "ratio_min": 0.56, "within_target": 2},
        "hls_ff": {"n": 3, "ratio_max": 2.17, "ratio_min": 1.76, "within_target": 0},
        "hls_lut": {"n": 3, "ratio_max": 1.31, "ratio_min": 0.91, "within_target": 2},
        "ii_cycles": {"error_max": 0, "error_min": 0, "n": 3, "within_target": 3},
        "latency_cycles": {"error_max": 11, "error_min": 10, "n": 3, "within_target": 0},
        "synth_dsp": {"n": 2, "ratio_max": 0.92, "ratio_min": 0.4, "within_target": 1},
        "synth_ff": {"n": 2, "ratio_max": 0.98, "ratio_min": 0.9, "within_target": 2},
        "synth_lut": {"n": 2, "ratio_max": 1.34, "ratio_min": 1.25, "within_target": 1},
    },
    "misses": {
        "dnd_mlp_6b_random_zu9eg:synth_ff": {
            "estimate": 7836,
            "real": 4555,
            "set": "held_out",
            "why": "weights not committed (untrained model: statistics of redrawn Glorot-uniform weights); its adder-tree register estimate follows the FF fit of the other repositories",
        },
        "har_conv1d_16b_dataflow_u250:latency_cycles": {
            "estimate": 143,
            "real": 184,
            "set": "held_out",
            "why": "the only DATAFLOW design with sequential conv partitions, window multiplexers and a max pool: with it left out no other repository exercises these features (priors only); its latency is the conv and pooling loops (131 + 44 cycles), not a chained datapath",
        },
        "har_conv1d_16b_dataflow_u250:synth_lut": {
            "estimate": 52846,
            "real": 306396,
            "set": "held_out",
            "why": "the only DATAFLOW design with sequential conv partitions, window multiplexers and a max pool: with it left out no other repository exercises these features (priors only); its latency is the conv and pooling loops (131 + 44 cycles), not a chained datapath",
        },
        "iris_mlp_16b_rf16_pruned_z7020:ii_cycles": {
            "estimate": 16,
            "real": 12,
            "set": "held_out",
            "why": "75% pruned weights with reuse 8/16/64: HLS schedules the remaining products in fewer cycles than the reuse factor (II 6, 12, 15 instead of 8, 16, 64); the model keeps hls4ml's II = R",
        },
        "iris_mlp_16b_rf16_pruned_z7020:synth_lut": {
            "estimate": 6397,
            "real": 3299,
            "set": "held_out",
            "why": "pominiq/DNNonSilicon (Iris MLPs, 40 MHz) has the lowest synthesized/HLS LUT ratio of the set (0.37-0.47) and the only large share of plain 16-bit ReLUs: left out, the activation synthesis factor and the ReLU HLS costs come from the other repositories, whose ReLUs cost 2x more in HLS",
        },
        "iris_mlp_16b_rf1_pruned_z7020:synth_lut": {
            "estimate": 4810,
            "real": 2545,
            "set": "held_out",
            "why": "pominiq/DNNonSilicon (Iris MLPs, 40 MHz) has the lowest synthesized/HLS LUT ratio of the set (0.37-0.47) and the only large share of plain 16-bit ReLUs: left out, the activation synthesis factor and the ReLU HLS costs come from the other repositories, whose ReLUs cost 2x more in HLS",
        },
        "iris_mlp_16b_rf1_z7020_vitis2025:latency_cycles": {
            "estimate": 11,
            "real": 32,
            "set": "blind",
            "why": "7-series part (xc7z020, speed -1) at 5 ns with 27% uncertainty: HLS pipelines every 16-bit DSP48E1 product and adder tree over 4-5 cycles per dense layer and the stable softmax over 9; no design of the fit set has DSP products on a 7-series part at 5 ns, so the per-layer delays are UltraScale+-like",
        },
        "iris_mlp_16b_rf8_pruned_z7020:ii_cycles": {
            "estimate": 8,
            "real": 6,
            "set": "held_out",
            "why": "75% pruned weights with reuse 8/16/64: HLS schedules the remaining products in fewer cycles than the reuse factor (II 6, 12, 15 instead of 8, 16, 64); the model keeps hls4ml's II = R",
        },
        "iris_mlp_16b_rf8_pruned_z7020:latency_cycles": {
            "estimate": 16,
            "real": 13,
            "set": "held_out",
            "why": "75% pruned weights with reuse 8/16/64: HLS schedules the remaining products in fewer cycles than the reuse factor (II 6, 12, 15 instead of 8, 16, 64); the model keeps hls4ml's II = R",
        },
        "iris_mlp_16b_rf8_pruned_z7020:synth_ff": {
            "estimate": 1634,
            "real": 2848,
            "set": "held_out",
            "why": "FF of the shared-multiplier operands and partial sums kept over the reuse cycles is fitted on too few reuse designs",
        },
        "iris_mlp_16b_rf8_pruned_z7020:synth_lut": {
            "estimate": 6424,
            "real": 2796,
            "set": "held_out",
            "why": "pominiq/DNNonSilicon (Iris MLPs, 40 MHz) has the lowest synthesized/HLS LUT ratio of the set (0.37-0.47) and the only large share of plain 16-bit ReLUs: left out, the activation synthesis factor and the ReLU HLS costs come from the other repositories, whose ReLUs cost 2x more in HLS",
        },
        "jet_tagger_16b_rf1_vu9p:synth_ff": {
            "estimate": 7488,
            "real": 14719,
            "set": "held_out",
            "why": "its synthesized/HLS FF ratio is 0.97; the FF synthesis factor fitted to the other repositories is ~0.6 (Vivado removed most HLS registers of the 40 MHz Iris designs)",
        },
        "jet_tagger_6b_rf64_pynq_z7020:ii_cycles": {
            "estimate": 64,
            "real": 15,
            "set": "held_out",
            "why": "75% pruned weights with reuse 8/16/64: HLS schedules the remaining products in fewer cycles than the reuse factor (II 6, 12, 15 instead of 8, 16, 64); the model keeps hls4ml's II = R",
        },
        "jet_tagger_6b_rf64_pynq_z7020:latency_cycles": {
            "estimate": 30,
            "real": 52,
            "set": "held_out",
            "why": "75% pruned weights with reuse 8/16/64: HLS schedules the remaining products in fewer cycles than the reuse factor (II 6, 12, 15 instead of 8, 16, 64); the model keeps hls4ml's II = R; its softmax alone takes 13 cycles",
        },
        "l1jetid_deepsets_4b_vu13p:latency_cycles": {
            "estimate": 29,
            "real": 19,
            "set": "holdout_l1_jet_id",
            "why": "DATAFLOW: one hand-over cycle per process, fitted on the one DATAFLOW design of the fit set (5 processes), overestimates this 12-process design",
        },
        "l1jetid_deepsets_4b_vu13p:synth_dsp": {
            "estimate": 40,
            "real": 101,
            "set": "holdout_l1_jet_id",
            "why": "4-bit weights: the model binds to DSPs only the 12-bit-data layers' hard products (40); HLS bound 71 and Vivado synthesis 101",
        },
        "l1jetid_deepsets_6b_vu13p:latency_cycles": {
            "estimate": 30,
            "real": 19,
            "set": "holdout_l1_jet_id",
            "why": "see the 4-bit design",
        },
        "l1jetid_deepsets_6b_vu13p:synth_lut": {
            "estimate": 420179,
            "real": 313230,
            "set": "holdout_l1_jet_id",
            "why": "synthesized/HLS LUT ratio of this design (0.42) below the fitted factors",
        },
        "l1jetid_deepsets_8b_vu13p:latency_cycles": {
            "estimate": 30,
            "real": 20,
            "set": "holdout_l1_jet_id",
            "why": "see the 4-bit design",
        },
        "lhc_ae_16b_rf4_a7_vitis2023:latency_cycles": {
            "estimate": 17,
            "real": 28,
            "set": "blind",
            "why": "Artix-7 (xc7a50t, speed -1) at 5 ns: 5-6 cycles per reuse-4 dense layer; see the blind Iris design",
        },
        "openml_jet_hgq_1_u50:hls_dsp": {
            "estimate": 80,
            "real": 60,
            "set": "held_out",
            "why": "HGQ per-element quantizers: some products are narrower than the layer types and stay in LUTs",
        },
        "openml_jet_hgq_5_u50:latency_cycles": {
            "estimate": 8,
            "real": 4,
            "set": "held_out",
            "why": "HGQ per-element quantizers: the real bit widths are much smaller than the layer types the model reads",
        },
    },
    "ratio_estimate_over_hls": {"dsp": 1.0, "ff": 1.0, "lut": 1.0},
    "ratio_estimate_over_synth": {"dsp": 1.0, "ff": 0.85, "lut": 0.99},
    "reports": "Vivado HLS 2019.2-2020.1 / Vitis HLS 2022.2-2025.1 C synthesis and Vivado synthesis (public repositories)",
    "summary": "on designs it was not fitted to (leave-one-repository-out, 20 public hls4ml designs from 7 repositories) the estimate is within the targets for post-synthesis LUT (+-25%) 3/7, FF (+-25%) 4/7, DSP (+-30%) 7/7, latency (+-2 cycles of the HLS report) 16/20, II (exact) 17/20; on the l1-jet-id Deep Sets (never fitted, not blind) estimate/synthesis LUT 1.25..1.34, FF 0.9..0.98, DSP 0.4..0.92, latency error 10..11 cycles, II exact; on 2 blind designs (HLS reports only) DSP 1.0..1.04, HLS LUT 0.64..0.91, latency error -21..-11 cycles, II 2/2 exact. 22 held-out figures miss the targets; each is listed with its reason in misses.",
    "targets": {"dsp": 0.3, "dsp_abs": 10, "ff": 0.25, "latency_cycles": 2, "lut": 0.25},
}
"""Measured error of the estimate on designs it was not fitted to (benchmarks/estimator_calibration.py)."""
# END FITTED

METHOD = (
    "fitted model of hls4ml Latency strategy, io_parallel: zero and 1-2-digit (CSD) constant weights cost "
    f"no multiplier; a mul goes to a DSP48 when one operand >= {COEFFICIENTS.dsp_wide_bits} bits and the other >= {COEFFICIENTS.dsp_narrow_bits} bits, "
    "else LUTs; with reuse factor R the muls share hls4ml's multiplier_limit units; LUT/FF from bit-count "
    "features (adder trees, multiplexers, activations with rounding/saturation, softmax, DATAFLOW channels, "
    "pipeline registers) with HLS coefficients and post-synthesis factors fitted to public Vivado HLS / "
    "Vitis HLS + Vivado reports (tests/fixtures/calibration); latency = chained layer delays / (clock - "
    "uncertainty) + fixed cycles; II = R x sequential partitions. total = post-synthesis, total_hls = HLS report"
)


# ---------------------------------------------------------------------------------------------------
# hls4ml ModelGraph adapter


def _bits(precision: Any, default: int = 16) -> int:
    width = getattr(precision, "width", None)
    return int(width) if width is not None else default


def _int_bits(precision: Any) -> int | None:
    integer = getattr(precision, "integer", None)
    return int(integer) if integer is not None else None


def _frac(precision: Any) -> int:
    width = getattr(precision, "width", None)
    integer = getattr(precision, "integer", None)
    if width is None or integer is None:
        return 0
    return int(width) - int(integer)


def _mode(precision: Any, attr: str) -> str:
    value = getattr(precision, attr, None)
    return str(getattr(value, "name", value) or "").upper()


def _kind(class_name: str) -> str:
    # Backend classes are prefixed (VitisDense, VivadoPointwiseConv1D, ...).
    for prefix in ("Vitis", "Vivado"):
        if class_name.startswith(prefix):
            class_name = class_name[len(prefix) :]
    if class_name == "Dense":
        return "dense"
    if class_name in ("Conv1D", "PointwiseConv1D"):
        return "conv1d"
    if class_name in ("Activation", "ParametrizedActivation", "HardActivation", "Softmax", "ReLU"):
        return "activation"
    if class_name in ("GlobalPooling1D", "Pooling1D"):
        return "pooling"
    if class_name in ("Input", "InputLayer"):
        return "input"
    if class_name in ("Reshape", "Flatten", "Transpose"):
        return "other"
    return class_name.lower()


def _layer_reuse(layer: Any, default: int) -> int:
    try:
        value = layer.get_attr("reuse_factor")
    except Exception:  # noqa: BLE001 - a layer type without attributes: the model-wide value
        return default
    try:
        return int(value) if value is not None else default
    except (TypeError, ValueError):
        return default


def layers_from_hls_model(hls_model: Any, reuse_factor: int | None = None) -> list[LayerSpec]:
    """Extract :class:`LayerSpec` s from an hls4ml ``ModelGraph`` (after conversion; no compile needed).

    Each layer's reuse factor is read from the layer (``reuse_factor`` attribute), else ``reuse_factor``.
    """
    specs: list[LayerSpec] = []
    for layer in hls_model.get_layers():
        kind = _kind(type(layer).__name__)
        out_var = layer.get_output_variable()
        out_prec = out_var.type.precision
        out_bits = _bits(out_prec)
        n_out_elems = int(np.prod(out_var.shape))
        in_var = layer.get_input_variable() if getattr(layer, "inputs", None) else None
        in_prec = in_var.type.precision if in_var is not None else out_prec
        in_bits = _bits(in_prec)
        accum = layer.get_attr("accum_t")
        accum_bits = _bits(accum.precision, out_bits) if accum is not None else out_bits
        rf = _layer_reuse(layer, reuse_factor or 1) if kind in _MAC_KINDS else None
        if kind in _MAC_KINDS:
            weights = [w for w in layer.get_weights() if w.name.startswith("w") or "weight" in w.name]
            biases = [w for w in layer.get_weights() if w.name.startswith("b") or "bias" in w.name]
            if not weights:
                specs.append(LayerSpec(name=layer.name, kind="other", n_in=0, n_out=n_out_elems))
                continue
            w = weights[0]
            has_bias = bool(biases) and bool(np.any(np.asarray(biases[0].data) != 0))
            if kind == "dense":
                n_in = int(layer.get_attr("n_in"))
                n_out = int(layer.get_attr("n_out"))
                positions, partitions = 1, 1
            else:
                n_in = int(layer.get_attr("n_chan")) * int(layer.get_attr("filt_width") or 1)
                n_out = int(layer.get_attr("n_filt"))
                positions = int(layer.get_attr("out_width") or 1)
                partitions = int(layer.get_attr("n_partitions") or 1)
            profile = weight_profile(w.data, _frac(w.type.precision), n_out)
            specs.append(
                LayerSpec(
                    name=layer.name,
                    kind=kind,
                    n_in=n_in,
                    n_out=n_out,
                    weight_bits=_bits(w.type.precision),
                    input_bits=in_bits,
                    accum_bits=accum_bits,
                    output_bits=out_bits,
                    n_positions=positions,
                    n_partitions=partitions,
                    has_bias=has_bias,
                    reuse_factor=rf,
                    **profile,
                )
            )
        elif kind == "pooling":
            n_chan = int(layer.get_attr("n_filt") or out_var.shape[-1])
            positions = int(layer.get_attr("n_in") or 1)
            op = str(layer.get_attr("pool_op") or "Average")
            specs.append(
                LayerSpec(
                    name=layer.name,
                    kind=kind,
                    n_in=n_chan * positions,
                    n_out=n_chan,
                    input_bits=in_bits,
                    accum_bits=accum_bits,
                    output_bits=out_bits,
                    n_positions=positions,
                    pool_op="max" if "max" in op.lower() else "average",
                )
            )
        elif kind == "activation":
            func = str(layer.get_attr("activation") or type(layer).__name__).lower()
            if "softmax" in type(layer).__name__.lower():
                func = "softmax"
            specs.append(
                LayerSpec(
                    name=layer.name,
                    kind=kind,
                    n_in=n_out_elems,
                    n_out=n_out_elems,
                    input_bits=in_bits,
                    accum_bits=accum_bits,
                    output_bits=out_bits,
                    activation=func,
                    input_int_bits=_int_bits(in_prec),
                    output_int_bits=_int_bits(out_prec),
                    output_rounding=_mode(out_prec, "rounding_mode") not in ("", "TRN", "NONE"),
                    output_saturation=_mode(out_prec, "saturation_mode") not in ("", "WRAP", "NONE"),
                )
            )
        else:
            specs.append(
                LayerSpec(
                    name=layer.name,
                    kind=kind,
                    n_in=n_out_elems,
                    n_out=n_out_elems,
                    input_bits=in_bits,
                    accum_bits=accum_bits,
                    output_bits=out_bits,
                )
            )
    return specs


def _clock_uncertainty(hls_model: Any) -> float:
    try:
        value = hls_model.config.get_config_value("ClockUncertainty")
    except Exception:  # noqa: BLE001 - an old or foreign config object: fall back to the default
        value = None
    if isinstance(value, str) and value.strip().endswith("%"):
        return float(value.strip()[:-1]) / 100.0
    if isinstance(value, int | float) and value > 0:
        period = _clock_period(hls_model)
        if period:
            return float(value) / period
    backend = str(getattr(getattr(hls_model.config, "backend", None), "name", "") or "")
    return VITIS_CLOCK_UNCERTAINTY if backend.lower().startswith("vitis") else DEFAULT_CLOCK_UNCERTAINTY


def _clock_period(hls_model: Any) -> float | None:
    try:
        return float(hls_model.config.get_config_value("ClockPeriod"))
    except Exception:  # noqa: BLE001 - no clock in the config
        return None


def _pipeline_style(hls_model: Any) -> str:
    style = str(getattr(hls_model.config, "pipeline_style", None) or "pipeline").lower()
    return "dataflow" if style == "dataflow" else "pipeline"


def estimate_model(
    hls_model: Any, reuse_factor: int, clock_period_ns: float, *, every_layer: bool = False
) -> ResourceEstimate:
    """Estimate resources and latency of a converted hls4ml model (Latency strategy, io_parallel).

    ``every_layer``: the same design with every layer at ``reuse_factor``, whatever the layers were
    configured with (what the hls4ml firmware would need at another II, without converting it again).
    """
    specs = layers_from_hls_model(hls_model, reuse_factor)
    if every_layer:
        specs = [replace(s, reuse_factor=reuse_factor) if s.reuse_factor is not None else s for s in specs]
    estimate = estimate_layers(
        specs, reuse_factor, clock_period_ns, _clock_uncertainty(hls_model), _pipeline_style(hls_model)
    )
    log.debug("estimate: %s", estimate.total)
    return estimate
