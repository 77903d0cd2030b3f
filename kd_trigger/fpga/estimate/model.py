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

Method (per layer, then summed; :class:`~kd_trigger.fpga.estimate.coefficients.Coefficients` holds
every fitted number, read from ``coefficients.json``):

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

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from kd_trigger.fpga import RESOURCE_KEYS, SOURCE_ESTIMATE
from kd_trigger.fpga.estimate.coefficients import (
    CALIBRATION,
    COEFFICIENTS,
    FEATURE_GROUP,
    FF_FEATURES,
    LUT_FEATURES,
    METHOD,
    METHOD_NAME,
    Coefficients,
)
from kd_trigger.fpga.estimate.weights import random_code_profile
from kd_trigger.layers.spec import LayerSpec

DEFAULT_CLOCK_UNCERTAINTY = 0.125
"""Fraction of the clock period HLS reserves for uncertainty (Vivado HLS default 12.5%; Vitis HLS 27%)."""

MAC_KINDS = ("dense", "conv1d")
"""Layer kinds with products and an adder tree (the rest: activation, pooling, input, other)."""
RELU_LIKE = ("relu", "leaky_relu", "relu6", "elu", "selu", "prelu")
QUANTIZER_LIKE = ("linear", "quantizer")
TABLE_ACTIVATIONS = ("sigmoid", "tanh", "hard_sigmoid", "hard_tanh", "softsign", "softplus")


def _function(spec: LayerSpec) -> str:
    """An activation layer's function, lowercase (a spec that names none counts as a ReLU)."""
    return (spec.activation_kind or "relu").lower()


@dataclass
class LayerEstimate:
    """One layer's share of the estimate (post-synthesis and HLS figures, cycles, the features used)."""

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
        """JSON-able data; only the non-zero features, rounded to 3 decimals."""
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
        """Latency in ns: cycles x the clock period."""
        return round(self.latency_cycles * self.clock_period_ns, 6)

    def to_dict(self) -> dict[str, Any]:
        """The ``resources`` JSON: method, calibration record, totals and every layer."""
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
# The model


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
    f1, f2, mean_adders, widths = random_code_profile(spec.weight_bits or 16)
    pow2 = float(spec.n_pow2_mult) if spec.n_pow2_mult else f1 * nonzero
    two = f2 * nonzero
    hard = [(w, f * nonzero) for w, f in widths]
    n_hard = sum(c for _, c in hard)
    if spec.csd_adders is not None:
        hard_adders = max(float(spec.csd_adders) - two, 0.0)
    else:
        hard_adders = max(mean_adders * nonzero - two, 0.0)
    return pow2, two, n_hard, hard, hard_adders


def dsp_eligible(a_bits: int, b_bits: int, coeffs: Coefficients) -> bool:
    """Does HLS bind an ``a_bits x b_bits`` multiplication to a DSP48?"""
    return max(a_bits, b_bits) >= coeffs.dsp_wide_bits and min(a_bits, b_bits) >= coeffs.dsp_narrow_bits


def _levels(n: float) -> int:
    return max(0, math.ceil(math.log2(max(n, 1.0))))


@dataclass
class LayerModel:
    """What :func:`layer_model` works out for one layer before costs: feature bit counts (LUT and FF),
    multipliers and their binding, BRAMs, combinational delay and fixed cycles, II and reuse factor."""

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


def layer_model(spec: LayerSpec, reuse_factor: int, coeffs: Coefficients) -> LayerModel:
    """Features (bit counts), DSPs, delay and fixed cycles of one layer (see the module doc)."""
    rf = int(spec.reuse_factor or reuse_factor or 1)
    if rf < 1:
        raise ValueError(f"layer {spec.name}: reuse_factor must be >= 1, got {rf}")
    lut = dict.fromkeys(LUT_FEATURES, 0.0)
    ff = dict.fromkeys(FF_FEATURES, 0.0)
    m = LayerModel(features=lut, ff_features=ff, rf=rf)
    detail = m.detail
    out_elems = spec.n_out * (spec.n_positions if spec.kind in MAC_KINDS else 1)
    m.out_bits_total = int(out_elems * spec.output_bits)
    if spec.kind in MAC_KINDS:
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
        act = _function(spec)
        n = spec.n_out
        if act == "softmax":
            lut["softmax"] = n
            m.dsp_other = n
            m.bram = coeffs.softmax_bram_18k
            m.fixed_cycles = coeffs.softmax_cycles
        elif act in TABLE_ACTIVATIONS:
            lut["table"] = n
            m.bram = coeffs.table_bram_18k
            m.fixed_cycles = coeffs.table_cycles
        else:
            out_b = spec.output_bits
            if act in RELU_LIKE:
                lut["act_n"] = n
                lut["act"] = n * out_b
            if spec.output_rounding:
                lut["round_sat"] += n * out_b
            if spec.output_saturation:
                dropped = 0
                if spec.input_int_bits is not None and spec.output_int_bits is not None:
                    dropped = max(spec.input_int_bits - spec.output_int_bits, 0)
                lut["round_sat"] += n * (out_b + dropped)
            m.delay_ns = (coeffs.t_act_ns if act in RELU_LIKE else 0.0) + (
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
    total = first.n_in * first.input_bits * max(first.n_positions if first.kind in MAC_KINDS else 1, 1)
    if first.kind == "activation" and _function(first) in (*QUANTIZER_LIKE, *RELU_LIKE):
        used_per = min(first.input_bits, first.output_bits + (1 if first.output_rounding else 0))
        used = first.n_in * used_per
        return used, max(total - used, 0)
    return total, 0


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
    models: list[LayerModel] = []
    for spec in layers:
        if spec.kind not in (*MAC_KINDS, "activation", "pooling", "input", "other"):
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
        if dataflow and spec.kind in (*MAC_KINDS, "activation", "pooling"):
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

    mac_ii = [mod.ii for spec, mod in zip(layers, models, strict=True) if spec.kind in MAC_KINDS]
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
