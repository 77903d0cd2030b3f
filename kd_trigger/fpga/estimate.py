"""Resource and latency estimates of an hls4ml firmware without the vendor tools.

Scope: hls4ml's ``Latency`` strategy with ``io_parallel`` (what kd_trigger builds). Every number made
here is labelled ``"estimate"``; it is a first-order model, calibrated against real vendor reports in
``benchmarks/estimator_calibration.py`` (measured error printed there and in
tests/fixtures/reports/README.md). Use it to rank models and to catch budget violations early, not
as a substitute for C synthesis.

Method (per layer, then summed):

* Multiplications: one per **non-zero** weight and output position. hls4ml's latency dense/conv kernels
  unroll the products and the HLS compiler drops products with a constant zero weight; a weight that is
  a power of two (one non-zero digit) becomes a shift and costs no multiplier. With reuse factor R,
  ``ceil(n / R)`` multipliers are instantiated and each is used R times.
* DSP or LUT: a product goes to a DSP48E2 only when both operands are at least
  :data:`DSP_MIN_OPERAND_BITS` (10) bits wide; narrower products are built in LUT fabric. That is how
  Vivado/Vitis HLS bind ``mul`` operations of hls4ml's small fixed-point types in practice (hls4ml
  designs at <= 8-bit weights use almost no DSPs); the exact threshold depends on the tool version and on
  the constant value, so this is the main source of DSP error.
* LUT: a constant-coefficient LUT multiplier is a shift-and-add network: (non-zero canonical-signed-digit
  digits of the weight - 1) adders, each about ``input_bits + 1`` LUTs (one LUT per bit with the carry
  chain). The adder tree that sums the products of one output costs one adder of ``accum_bits`` per
  product (including the bias add). Activations (ReLU, quantizing linear) cost ``output_bits`` LUTs per
  element; average pooling one adder per summed element.
* FF: each layer holds its inputs and its outputs for each of its pipeline cycles.
* BRAM/URAM: 0 (io_parallel Latency keeps weights as constants in logic, activations in registers).
* Latency: a dense/conv layer takes 1 cycle for the products plus the adder tree,
  ``ceil(log2(fan_in + 1))`` levels of :data:`ADDER_DELAY_NS` each, packed into clock periods less the
  clock uncertainty; activations are combinational (0 cycles); R - 1 extra cycles with reuse factor R.
  II = reuse factor x the number of sequential partitions (conv layers with ParallelizationFactor < width).
  latency_ns = latency_cycles x clock_period_ns.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from kd_trigger.fpga import RESOURCE_KEYS, SOURCE_ESTIMATE

log = logging.getLogger(__name__)

DSP_MIN_OPERAND_BITS = 10
"""A product is mapped to a DSP48E2 only if both operands are at least this wide (else LUTs)."""
ADDER_DELAY_NS = 0.5
"""Delay of one carry-chain adder level on UltraScale+ at -2 speed grade (first-order)."""
DEFAULT_CLOCK_UNCERTAINTY = 0.125
"""Fraction of the clock period HLS reserves for uncertainty (Vivado HLS default 12.5%; Vitis 27%)."""

METHOD_NAME = "kd_trigger first-order model"
"""The short name every estimated figure is labelled with; METHOD says what it computes."""

METHOD = (
    "first-order model of hls4ml Latency strategy, io_parallel: one multiplier per non-zero, non-power-of-two "
    f"weight (/ reuse factor); DSP48E2 if both operands >= {DSP_MIN_OPERAND_BITS} bits else LUT shift-add "
    "(CSD digits - 1 adders x (input_bits + 1) LUT); adder tree accum_bits LUT per product; activations "
    "output_bits LUT per element; FF = layer inputs + outputs x its cycles; BRAM = 0; latency = 1 + adder-tree "
    f"levels x {ADDER_DELAY_NS} ns per dense layer; II = reuse factor x partitions. Calibrated against "
    "real Vivado HLS / Vivado reports (benchmarks/estimator_calibration.py)"
)

CALIBRATION = {
    "design": "hls4ml jet tagger 16-64-32-32-5, ap_fixed<16,6>, reuse 1, io_parallel, xcvu9p, 5 ns",
    "reports": "Vivado HLS 2019.2 C synthesis and Vivado 2019.2 synthesis (public hls4ml project)",
    "ratio_estimate_over_hls": {"lut": 0.62, "ff": 0.58, "dsp": 1.28, "latency_cycles": 0.8},
    "ratio_estimate_over_synth": {"lut": 1.16, "ff": 0.6, "dsp": 1.29},
    "caveat": "one comparable report; its 16-bit weights map to DSPs, the <= 8-bit weights of our students "
    "to LUTs, a rule no real report here has checked: read LUT figures as +-2x",
}
"""The estimate's measured error (estimate / real), reproduced by benchmarks/estimator_calibration.py
and checked against the fixtures by tests/test_fpga_estimate.py."""

_MAC_KINDS = ("dense", "conv1d")


@dataclass(frozen=True)
class LayerSpec:
    """What the estimate needs to know about one layer (plain data, no TensorFlow/hls4ml).

    For ``dense``: ``n_in`` inputs, ``n_out`` outputs, ``n_nonzero_mult`` non-zero weights.
    For ``conv1d`` (kernel over positions): ``n_in`` = fan-in per output (channels x kernel width),
    ``n_out`` = filters, ``n_nonzero_mult`` non-zero weights of the kernel, ``n_positions`` output positions,
    of which ``n_positions / n_partitions`` are computed in parallel.
    For ``activation``: ``n_out`` elements. For ``pooling``: ``n_out`` channels averaged over
    ``n_positions``. ``input``/``other`` layers cost nothing.
    ``n_pow2_mult``: non-zero weights that are a power of two (shifts, no multiplier).
    ``csd_adders``: total shift-add adders of the LUT multipliers when the weights are known (None: use
    ``ceil(weight_bits / 3) - 1`` per product, the mean for random weights).
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


@dataclass
class LayerEstimate:
    name: str
    kind: str
    multiplications: int
    """Non-zero products per inference (all positions)."""
    multipliers: int
    """Instantiated multipliers (after sharing by the reuse factor)."""
    dsp_multipliers: int
    lut_multipliers: int
    lut: int
    ff: int
    dsp: int
    bram_18k: int
    uram: int
    latency_cycles: int
    ii_cycles: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ResourceEstimate:
    """Per-layer and total estimate; every figure's source is ``"estimate"``."""

    layers: list[LayerEstimate]
    reuse_factor: int
    clock_period_ns: float
    latency_cycles: int
    ii_cycles: int
    total: dict[str, int] = field(default_factory=dict)
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
            "total": dict(self.total),
            "multiplications": sum(layer.multiplications for layer in self.layers),
            "layers": [layer.to_dict() for layer in self.layers],
            "notes": list(self.notes),
        }


def _adder_levels(fan_in: int) -> int:
    return max(1, math.ceil(math.log2(max(fan_in, 1) + 1)))


def estimate_layers(
    layers: list[LayerSpec],
    reuse_factor: int,
    clock_period_ns: float,
    clock_uncertainty: float = DEFAULT_CLOCK_UNCERTAINTY,
) -> ResourceEstimate:
    """The pure core of the estimate: :class:`LayerSpec` list -> :class:`ResourceEstimate`."""
    if reuse_factor < 1:
        raise ValueError(f"reuse_factor must be >= 1, got {reuse_factor}")
    if clock_period_ns <= 0:
        raise ValueError(f"clock_period_ns must be positive, got {clock_period_ns}")
    usable_ns = clock_period_ns * (1.0 - clock_uncertainty)
    out: list[LayerEstimate] = []
    notes: list[str] = []
    ii = reuse_factor
    for spec in layers:
        lut = ff = dsp = 0
        mults = n_hw = n_dsp = n_lut = 0
        cycles = 0
        layer_ii = reuse_factor
        if spec.kind in _MAC_KINDS:
            parallel_positions = max(1, spec.n_positions // max(spec.n_partitions, 1))
            real_mult = max(spec.n_nonzero_mult - spec.n_pow2_mult, 0)
            mults = spec.n_nonzero_mult * spec.n_positions
            per_pass = real_mult * parallel_positions
            n_hw = math.ceil(per_pass / reuse_factor)
            to_dsp = spec.weight_bits >= DSP_MIN_OPERAND_BITS and spec.input_bits >= DSP_MIN_OPERAND_BITS
            n_dsp = n_hw if to_dsp else 0
            n_lut = 0 if to_dsp else n_hw
            dsp = n_dsp
            if not to_dsp and per_pass:
                adders = (
                    spec.csd_adders
                    if spec.csd_adders is not None
                    else real_mult * max(math.ceil(spec.weight_bits / 3) - 1, 0)
                )
                lut += math.ceil(adders * parallel_positions / reuse_factor) * (spec.input_bits + 1)
            # Adder tree: one add per non-zero product (the bias add replaces the missing first one).
            tree_adds = spec.n_nonzero_mult + (0 if spec.has_bias else -spec.n_out)
            lut += math.ceil(max(tree_adds, 0) * parallel_positions / reuse_factor) * spec.accum_bits
            fan_in = max(1, math.ceil(spec.n_nonzero_mult / max(spec.n_out, 1)))
            cycles = 1 + math.ceil(_adder_levels(fan_in) * ADDER_DELAY_NS / usable_ns) + (reuse_factor - 1)
            ff = cycles * parallel_positions * (spec.n_in * spec.input_bits + spec.n_out * spec.accum_bits)
            layer_ii = reuse_factor * max(spec.n_partitions, 1)
        elif spec.kind == "activation":
            lut = spec.n_out * spec.output_bits
        elif spec.kind == "pooling":
            adds = max(spec.n_positions - 1, 0) * spec.n_out
            lut = adds * spec.accum_bits
            cycles = math.ceil(_adder_levels(spec.n_positions) * ADDER_DELAY_NS / usable_ns)
            ff = cycles * spec.n_out * spec.accum_bits
        elif spec.kind not in ("input", "other"):
            notes.append(f"layer {spec.name}: kind {spec.kind!r} is not modelled (counted as 0)")
        ii = max(ii, layer_ii)
        out.append(
            LayerEstimate(
                name=spec.name,
                kind=spec.kind,
                multiplications=mults,
                multipliers=n_hw,
                dsp_multipliers=n_dsp,
                lut_multipliers=n_lut,
                lut=int(lut),
                ff=int(ff),
                dsp=int(dsp),
                bram_18k=0,
                uram=0,
                latency_cycles=int(cycles),
                ii_cycles=int(layer_ii),
            )
        )
    total = {k: int(sum(getattr(layer, k) for layer in out)) for k in RESOURCE_KEYS}
    return ResourceEstimate(
        layers=out,
        reuse_factor=reuse_factor,
        clock_period_ns=float(clock_period_ns),
        latency_cycles=int(sum(layer.latency_cycles for layer in out)),
        ii_cycles=int(ii),
        total=total,
        notes=notes,
    )


# ---------------------------------------------------------------------------------------------------
# Weights -> counts


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


def weight_statistics(weights: np.ndarray, frac_bits: int) -> tuple[int, int, int]:
    """(non-zero, power-of-two, shift-add adders) of quantized weights with ``frac_bits`` fraction bits."""
    ints = np.rint(np.asarray(weights, dtype=np.float64) * (2.0**frac_bits)).astype(np.int64).ravel()
    nonzero = ints[ints != 0]
    digits = np.fromiter((csd_digits(int(v)) for v in nonzero), dtype=np.int64, count=nonzero.size)
    pow2 = int(np.count_nonzero(digits == 1))
    adders = int(np.sum(np.maximum(digits - 1, 0)))
    return int(nonzero.size), pow2, adders


# ---------------------------------------------------------------------------------------------------
# hls4ml ModelGraph adapter


def _bits(precision: Any, default: int = 16) -> int:
    width = getattr(precision, "width", None)
    return int(width) if width is not None else default


def _frac(precision: Any) -> int:
    width = getattr(precision, "width", None)
    integer = getattr(precision, "integer", None)
    if width is None or integer is None:
        return 0
    return int(width) - int(integer)


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


def layers_from_hls_model(hls_model: Any) -> list[LayerSpec]:
    """Extract :class:`LayerSpec` s from an hls4ml ``ModelGraph`` (after conversion; no compile needed)."""
    specs: list[LayerSpec] = []
    for layer in hls_model.get_layers():
        kind = _kind(type(layer).__name__)
        out_var = layer.get_output_variable()
        out_bits = _bits(out_var.type.precision)
        n_out_elems = int(np.prod(out_var.shape))
        in_var = layer.get_input_variable() if getattr(layer, "inputs", None) else None
        in_bits = _bits(in_var.type.precision) if in_var is not None else out_bits
        accum = layer.get_attr("accum_t")
        accum_bits = _bits(accum.precision, out_bits) if accum is not None else out_bits
        if kind in _MAC_KINDS:
            weights = [w for w in layer.get_weights() if w.name.startswith("w") or "weight" in w.name]
            biases = [w for w in layer.get_weights() if w.name.startswith("b") or "bias" in w.name]
            if not weights:
                specs.append(LayerSpec(name=layer.name, kind="other", n_in=0, n_out=n_out_elems))
                continue
            w = weights[0]
            nonzero, pow2, adders = weight_statistics(w.data, _frac(w.type.precision))
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
            specs.append(
                LayerSpec(
                    name=layer.name,
                    kind=kind,
                    n_in=n_in,
                    n_out=n_out,
                    n_nonzero_mult=nonzero,
                    weight_bits=_bits(w.type.precision),
                    input_bits=in_bits,
                    accum_bits=accum_bits,
                    output_bits=out_bits,
                    n_positions=positions,
                    n_partitions=partitions,
                    n_pow2_mult=pow2,
                    csd_adders=adders,
                    has_bias=has_bias,
                )
            )
        elif kind == "pooling":
            n_chan = int(layer.get_attr("n_filt") or out_var.shape[-1])
            positions = int(layer.get_attr("n_in") or 1)
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
        return DEFAULT_CLOCK_UNCERTAINTY
    if isinstance(value, str) and value.strip().endswith("%"):
        return float(value.strip()[:-1]) / 100.0
    return DEFAULT_CLOCK_UNCERTAINTY


def estimate_model(hls_model: Any, reuse_factor: int, clock_period_ns: float) -> ResourceEstimate:
    """Estimate resources and latency of a converted hls4ml model (Latency strategy, io_parallel)."""
    specs = layers_from_hls_model(hls_model)
    estimate = estimate_layers(specs, reuse_factor, clock_period_ns, _clock_uncertainty(hls_model))
    log.debug("estimate: %s", estimate.total)
    return estimate
