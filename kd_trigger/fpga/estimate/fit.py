"""Offline fitting of the estimator to real vendor reports (benchmark-only; the runtime never imports it).

:func:`fit_coefficients` fits every :class:`~kd_trigger.fpga.estimate.coefficients.Coefficients` number
to :class:`CalibrationSample` s read from ``tests/fixtures/calibration/designs.json``;
``benchmarks/estimator_calibration.py`` runs it (leave-one-repository-out) and stores the fit with
:func:`write_fit_file` in ``coefficients.json``, which the model reads. Pure numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from kd_trigger.fpga.estimate.coefficients import (
    FEATURE_GROUP,
    FF_FEATURES,
    FIT_FILE,
    LUT_FEATURES,
    Coefficients,
    fit_json,
)
from kd_trigger.fpga.estimate.model import (
    DEFAULT_CLOCK_UNCERTAINTY,
    MAC_KINDS,
    ResourceEstimate,
    design_features,
    estimate_layers,
)
from kd_trigger.layers.spec import LayerSpec

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
        """The model's estimate of this design (``coeffs``: the stored fit when None)."""
        return estimate_layers(
            self.layers,
            self.reuse_factor,
            self.clock_period_ns,
            self.clock_uncertainty,
            self.pipeline_style,
            coeffs,
        )

    def features(self, coeffs: Coefficients) -> dict[str, dict[str, float]]:
        """Summed LUT and FF features of this design (:func:`design_features`)."""
        return design_features(
            self.layers,
            self.reuse_factor,
            self.clock_period_ns,
            self.clock_uncertainty,
            self.pipeline_style,
            coeffs,
        )


def _synth_of(sample: CalibrationSample) -> dict[str, Any]:
    """The synthesis figures of a calibration sample the caller already selected for having them."""
    if sample.synth is None:
        raise ValueError(f"calibration design {sample.name} has no synthesis figures")
    return dict(sample.synth)


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
            if spec.kind in (*MAC_KINDS, "activation", "pooling")
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


def write_fit_file(coefficients: Coefficients, calibration: dict[str, Any], path: Path = FIT_FILE) -> Path:
    """Store a fit and its calibration record as ``coefficients.json`` (what the model reads)."""
    path.write_text(fit_json(coefficients, calibration))
    return path
