"""Fit kd_trigger's resource/latency estimator to real vendor reports and measure its error (offline).

Reads the committed calibration set (tests/fixtures/calibration/designs.json: public hls4ml designs with
their Vivado HLS / Vitis HLS and Vivado synthesis figures; dsp_binding.json: how HLS bound ~10k
multiplications) and prints, per design, the real figure, the estimate and the ratio estimate / real:

1. fit set: the model fitted to all non-held-out designs, evaluated on them (in-sample);
2. held out, leave-one-repository-out: each repository's designs predicted by a model fitted to the
   other repositories only (the error to expect on a new design);
3. l1-jet-id holdout: fastmachinelearning/l1-jet-id designs (never used for fitting), predicted by the
   model fitted to all non-held-out designs. Not blind: its rows were printed while three modelling
   rules were chosen (see tests/fixtures/calibration/README.md);
4. blind holdout: designs collected after the estimator was frozen (``holdout_set`` in designs.json),
   evaluated once with the frozen rules and fit; HLS reports only.

Synthesis LUT/FF/DSP are compared with ``total`` (post-synthesis estimate), the HLS figures with
``total_hls``, latency and II with the HLS report. No TensorFlow needed; runs in seconds.

    .venv/bin/python benchmarks/estimator_calibration.py          # print the tables
    .venv/bin/python benchmarks/estimator_calibration.py --write  # also store the fit (coefficients.json)
    .venv/bin/python benchmarks/estimator_calibration.py --write --out /tmp/fit.json  # ... elsewhere
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kd_trigger.fpga.estimate import fit as estfit  # noqa: E402
from kd_trigger.fpga.estimate.coefficients import FIT_FILE, Coefficients  # noqa: E402

FIXTURES = REPO / "tests" / "fixtures" / "calibration"
HOLDOUT_REPO = "fastmachinelearning/l1-jet-id"
BLIND_SET = "blind-2026-11-28"
"""The holdout_set of designs.json collected after the rules were frozen at commit 06bf0de."""
METRICS = ("lut", "ff", "dsp")
TARGETS = {"lut": 0.25, "ff": 0.25, "dsp": 0.30, "dsp_abs": 10, "latency_cycles": 2}
"""The accuracy asked of the estimate on designs it was not fitted to (ratio band, cycles)."""
TARGET_METRICS = ("synth_lut", "synth_ff", "synth_dsp", "hls_dsp", "latency_cycles", "ii_cycles")
"""Held-out figures the targets apply to (LUT/FF: post-synthesis; DSP: synthesis, or HLS without one)."""

_POMINIQ_LUT = (
    "pominiq/DNNonSilicon (Iris MLPs, 40 MHz) has the lowest synthesized/HLS LUT ratio of the set (0.37-0.47) "
    "and the only large share of plain 16-bit ReLUs: left out, the activation synthesis factor and the ReLU "
    "HLS costs come from the other repositories, whose ReLUs cost 2x more in HLS"
)
_PRUNED_REUSE = (
    "75% pruned weights with reuse 8/16/64: HLS schedules the remaining products in fewer cycles than the "
    "reuse factor (II 6, 12, 15 instead of 8, 16, 64); the model keeps hls4ml's II = R"
)
_DATAFLOW_CONV = (
    "the only DATAFLOW design with sequential conv partitions, window multiplexers and a max pool: with it "
    "left out no other repository exercises these features (priors only); its latency is the conv and "
    "pooling loops (131 + 44 cycles), not a chained datapath"
)
MISSES: dict[tuple[str, str], str] = {
    ("iris_mlp_16b_rf1_pruned_z7020", "synth_lut"): (_POMINIQ_LUT),
    ("iris_mlp_16b_rf8_pruned_z7020", "synth_lut"): (_POMINIQ_LUT),
    ("iris_mlp_16b_rf16_pruned_z7020", "synth_lut"): (_POMINIQ_LUT),
    ("iris_mlp_16b_rf8_pruned_z7020", "synth_ff"): (
        "FF of the shared-multiplier operands and "
        "partial sums kept over the reuse cycles is fitted on too few reuse designs"
    ),
    ("iris_mlp_16b_rf8_pruned_z7020", "latency_cycles"): (_PRUNED_REUSE),
    ("iris_mlp_16b_rf8_pruned_z7020", "ii_cycles"): (_PRUNED_REUSE),
    ("iris_mlp_16b_rf16_pruned_z7020", "ii_cycles"): (_PRUNED_REUSE),
    ("jet_tagger_6b_rf64_pynq_z7020", "latency_cycles"): (
        _PRUNED_REUSE + "; its softmax alone takes 13 cycles"
    ),
    ("jet_tagger_6b_rf64_pynq_z7020", "ii_cycles"): (_PRUNED_REUSE),
    ("har_conv1d_16b_dataflow_u250", "synth_lut"): (_DATAFLOW_CONV),
    ("har_conv1d_16b_dataflow_u250", "latency_cycles"): (_DATAFLOW_CONV),
    ("jet_tagger_16b_rf1_vu9p", "synth_ff"): (
        "its synthesized/HLS FF ratio is 0.97; the FF synthesis "
        "factor fitted to the other repositories is ~0.6 (Vivado removed most HLS registers of the 40 MHz Iris designs)"
    ),
    ("dnd_mlp_6b_random_zu9eg", "synth_ff"): (
        "weights not committed (untrained model: statistics of "
        "redrawn Glorot-uniform weights); its adder-tree register estimate follows the FF fit of the other repositories"
    ),
    ("openml_jet_hgq_5_u50", "latency_cycles"): (
        "HGQ per-element quantizers: the real bit widths are "
        "much smaller than the layer types the model reads"
    ),
    ("openml_jet_hgq_1_u50", "hls_dsp"): (
        "HGQ per-element quantizers: some products are narrower " "than the layer types and stay in LUTs"
    ),
    ("l1jetid_deepsets_4b_vu13p", "synth_dsp"): (
        "4-bit weights: the model binds to DSPs only the "
        "12-bit-data layers' hard products (40); HLS bound 71 and Vivado synthesis 101"
    ),
    ("l1jetid_deepsets_6b_vu13p", "synth_lut"): (
        "synthesized/HLS LUT ratio of this design (0.42) " "below the fitted factors"
    ),
    ("l1jetid_deepsets_4b_vu13p", "latency_cycles"): (
        "DATAFLOW: one hand-over cycle per process, "
        "fitted on the one DATAFLOW design of the fit set (5 processes), overestimates this 12-process design"
    ),
    ("l1jetid_deepsets_6b_vu13p", "latency_cycles"): ("see the 4-bit design"),
    ("l1jetid_deepsets_8b_vu13p", "latency_cycles"): ("see the 4-bit design"),
    ("iris_mlp_16b_rf1_z7020_vitis2025", "latency_cycles"): (
        "7-series part (xc7z020, speed -1) at 5 ns with 27% uncertainty: HLS pipelines every 16-bit DSP48E1 "
        "product and adder tree over 4-5 cycles per dense layer and the stable softmax over 9; no design of "
        "the fit set has DSP products on a 7-series part at 5 ns, so the per-layer delays are UltraScale+-like"
    ),
    ("lhc_ae_16b_rf4_a7_vitis2023", "latency_cycles"): (
        "Artix-7 (xc7a50t, speed -1) at 5 ns: 5-6 cycles per reuse-4 dense layer; see the blind Iris design"
    ),
}
"""Why each held-out figure outside :data:`TARGETS` misses. A reason, never a band: a miss stays a miss in
the record (``misses`` in CALIBRATION, the README's held-out table), and no test passes because of an entry
here. Every band the gate once accepted was written after the evaluation it excused (git log -p of this
file: the leave-one-repository-out and l1-jet-id bands came with their first evaluation in 33e84b8, the
blind ones after its one evaluation in 98ee170); only :data:`TARGETS` was fixed before the blind
evaluation, so only the targets decide what passes."""


def load() -> tuple[list[estfit.CalibrationSample], list[dict[str, Any]]]:
    """The calibration designs and the DSP binding observations of the committed fixtures."""
    designs = json.loads((FIXTURES / "designs.json").read_text())
    binding = json.loads((FIXTURES / "dsp_binding.json").read_text())["observations"]
    return estfit.samples_from_designs(designs), binding


def fit(
    samples: list[estfit.CalibrationSample], binding: list[dict[str, Any]], exclude: set[str]
) -> Coefficients:
    """The model fitted to every sample and binding observation whose repository is not in ``exclude``."""
    train = [s for s in samples if not s.holdout_only and s.group not in exclude]
    obs = [o for o in binding if o["repo"] not in exclude and o["repo"] != HOLDOUT_REPO]
    return estfit.fit_coefficients(train, obs)


def evaluate(sample: estfit.CalibrationSample, coeffs: Coefficients) -> dict[str, Any]:
    """Real figures, estimates and ratios of one design."""
    e = sample.estimate(coeffs)
    row: dict[str, Any] = {"design": sample.name, "repo": sample.group}
    for key in METRICS:
        row[f"hls_{key}"] = (sample.hls[key], e.total_hls[key])
        row[f"synth_{key}"] = (
            (sample.synth[key], e.total[key]) if "synth" in sample.use and sample.synth else None
        )
    row["latency_cycles"] = (sample.hls["latency_cycles"], e.latency_cycles)
    row["ii_cycles"] = (sample.hls["ii_cycles"], e.ii_cycles)
    return row


def within_target(metric: str, real: float, estimate: float) -> bool:
    """Is ``estimate`` of ``metric`` within :data:`TARGETS` of the ``real`` figure?"""
    if metric == "latency_cycles":
        return abs(estimate - real) <= TARGETS["latency_cycles"]
    if metric == "ii_cycles":
        return estimate == real
    kind = metric.split("_", 1)[1]
    if kind == "dsp" and max(real, estimate) <= TARGETS["dsp_abs"] / TARGETS["dsp"]:
        return abs(estimate - real) <= TARGETS["dsp_abs"]
    if real == 0:
        return estimate == 0
    return abs(estimate / real - 1.0) <= TARGETS[kind]


HELD_OUT_SETS = ("held_out", "holdout_l1_jet_id", "blind")


def misses(result: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """Every held-out figure outside :data:`TARGETS`, keyed (design, metric): its set, real and estimate.

    DSP counts are judged on synthesis where a design has one, on the HLS report otherwise."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for name in HELD_OUT_SETS:
        for row in result[name]:
            for metric in TARGET_METRICS:
                pair = row.get(metric)
                if pair is None or (metric == "hls_dsp" and row.get("synth_dsp") is not None):
                    continue
                if not within_target(metric, *pair):
                    out[(row["design"], metric)] = {"set": name, "real": pair[0], "estimate": pair[1]}
    return out


def tables(
    samples: list[estfit.CalibrationSample], binding: list[dict[str, Any]]
) -> dict[str, list[dict[str, Any]]]:
    """Rows per set (fit, held_out, holdout_l1_jet_id, blind), plus the full fit as ``_coefficients``."""
    full = fit(samples, binding, set())
    out: dict[str, list[dict[str, Any]]] = {"fit": [], "held_out": [], "holdout_l1_jet_id": [], "blind": []}
    for s in samples:
        if s.holdout_only:
            out["holdout_l1_jet_id" if s.group == HOLDOUT_REPO else "blind"].append(evaluate(s, full))
        else:
            out["fit"].append(evaluate(s, full))
    groups = sorted({s.group for s in samples if not s.holdout_only})
    for group in groups:
        coeffs = fit(samples, binding, {group})
        out["held_out"].extend(
            evaluate(s, coeffs) for s in samples if s.group == group and not s.holdout_only
        )
    return {**out, "_coefficients": full}  # type: ignore[dict-item]


def _cell(pair: tuple[float, float] | None) -> str:
    if pair is None:
        return f"{'-':>21}"
    real, estimate = pair
    ratio = f"{estimate / real:5.2f}" if real else ("  =0 " if estimate == 0 else "   - ")
    return f"{real:>7} {estimate:>7} {ratio}"


def print_table(title: str, rows: list[dict[str, Any]]) -> None:
    """Print one set's rows: real, estimate and ratio per figure."""
    print(f"== {title}")
    cols = (
        "synth_lut",
        "synth_ff",
        "synth_dsp",
        "hls_lut",
        "hls_ff",
        "hls_dsp",
        "latency_cycles",
        "ii_cycles",
    )
    print(f"{'':34}" + "".join(f" {c:>21}" for c in cols))
    print(f"{'design':34}" + "".join(f" {'real':>7} {'est':>7} {'ratio':>5}" for _ in cols))
    for row in rows:
        print(f"{row['design'][:34]:34}" + "".join(f" {_cell(row[c])}" for c in cols))
    print()


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per metric: how many designs are within the target, and the ratio range."""
    out: dict[str, Any] = {}
    for metric in (
        "synth_lut",
        "synth_ff",
        "synth_dsp",
        "hls_lut",
        "hls_ff",
        "hls_dsp",
        "latency_cycles",
        "ii_cycles",
    ):
        pairs = [row[metric] for row in rows if row.get(metric) is not None]
        if not pairs:
            continue
        ok = sum(within_target(metric, r, e) for r, e in pairs)
        if metric in ("latency_cycles", "ii_cycles"):
            errs = [e - r for r, e in pairs]
            out[metric] = {
                "n": len(pairs),
                "within_target": ok,
                "error_min": min(errs),
                "error_max": max(errs),
            }
        else:
            ratios = [e / r for r, e in pairs if r]
            out[metric] = {
                "n": len(pairs),
                "within_target": ok,
                "ratio_min": round(min(ratios), 2) if ratios else None,
                "ratio_max": round(max(ratios), 2) if ratios else None,
            }
    return out


def calibration_record(result: dict[str, Any]) -> dict[str, Any]:
    """The CALIBRATION record stored in coefficients.json: held-out errors, per design and summarized."""

    def compact(rows: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            row["design"]: {
                k: [v[0], v[1]] for k, v in row.items() if isinstance(v, tuple) and not k.startswith("hls_")
            }
            | {k: [v[0], v[1]] for k, v in row.items() if isinstance(v, tuple) and k.startswith("hls_")}
            for row in rows
        }

    held = result["held_out"]
    hold = result["holdout_l1_jet_id"]
    blind = result["blind"]

    # Keys kept from the old record so report builders keep working: medians of the held-out ratios.
    def median_ratio(rows: list[dict[str, Any]], metric: str) -> float | None:
        vals = sorted(e / r for row in rows if row.get(metric) for r, e in [row[metric]] if r)
        return round(vals[len(vals) // 2], 2) if vals else None

    def sentence() -> str:
        sh, sl, sb = summary(held), summary(hold), summary(blind)
        n_designs = len(held)
        n_repos = len({row["repo"] for row in held})

        def frac(d: dict[str, Any], key: str) -> str:
            return f"{d[key]['within_target']}/{d[key]['n']}" if key in d else "-"

        def band(d: dict[str, Any], key: str) -> str:
            if key not in d:
                return "-"
            lo, hi = (
                d[key].get("ratio_min", d[key].get("error_min")),
                d[key].get("ratio_max", d[key].get("error_max")),
            )
            return f"{lo}..{hi}"

        return (
            f"on designs it was not fitted to (leave-one-repository-out, {n_designs} public hls4ml designs from "
            f"{n_repos} repositories) the estimate is within the targets for post-synthesis LUT (+-25%) "
            f"{frac(sh, 'synth_lut')}, FF (+-25%) {frac(sh, 'synth_ff')}, DSP (+-30%) {frac(sh, 'synth_dsp')}, "
            f"latency (+-2 cycles of the HLS report) {frac(sh, 'latency_cycles')}, II (exact) {frac(sh, 'ii_cycles')}; "
            f"on the l1-jet-id Deep Sets (never fitted, not blind) estimate/synthesis LUT {band(sl, 'synth_lut')}, "
            f"FF {band(sl, 'synth_ff')}, DSP {band(sl, 'synth_dsp')}, latency error {band(sl, 'latency_cycles')} "
            f"cycles, II exact; on {len(blind)} blind designs (HLS reports only) DSP {band(sb, 'hls_dsp')}, "
            f"HLS LUT {band(sb, 'hls_lut')}, latency error {band(sb, 'latency_cycles')} cycles, II "
            f"{frac(sb, 'ii_cycles')} exact. {len(misses(result))} held-out figures miss the targets; each is listed with its reason in misses."
        )

    return {
        "summary": sentence(),
        "design": "leave-one-repository-out over the public designs of tests/fixtures/calibration, plus the "
        "fastmachinelearning/l1-jet-id Deep Sets and the blind designs held out of every fit",
        "reports": "Vivado HLS 2019.2-2020.1 / Vitis HLS 2022.2-2025.1 C synthesis and Vivado synthesis (public repositories)",
        "targets": dict(TARGETS),
        "ratio_estimate_over_hls": {
            "lut": median_ratio(held, "hls_lut"),
            "ff": median_ratio(held, "hls_ff"),
            "dsp": median_ratio(held, "hls_dsp"),
        },
        "ratio_estimate_over_synth": {
            "lut": median_ratio(held, "synth_lut"),
            "ff": median_ratio(held, "synth_ff"),
            "dsp": median_ratio(held, "synth_dsp"),
        },
        "misses": {
            f"{d}:{m}": {**miss, "why": MISSES.get((d, m), "")}
            for (d, m), miss in sorted(misses(result).items())
        },
        "held_out_summary": summary(held),
        "l1_jet_id_summary": summary(hold),
        "blind_summary": summary(blind),
        "held_out": compact(held),
        "l1_jet_id": compact(hold),
        "blind": compact(blind),
        "holdout_hygiene": "l1-jet-id: never fitted, but its rows were printed while three rules were chosen "
        "(pointwise-conv partitions parallel, a separate activation synthesis factor, >= 2 designs per "
        f"coefficient), so it is not blind. {BLIND_SET}: 2 designs from repositories never seen, collected after "
        "the rules and fit were frozen (commit 06bf0de) and evaluated once (HLS reports only).",
        "caveat": "medians over held-out designs (real, estimate pairs per design in held_out / l1_jet_id / blind); "
        "see benchmarks/estimator_calibration.py for the per-design table and the designs that miss the targets",
    }


def write_fit(coeffs: Coefficients, record: dict[str, Any], path: Path = FIT_FILE) -> None:
    """Store the fit and its held-out record where the estimator reads them (``coefficients.json``)."""
    estfit.write_fit_file(coeffs, record, path)
    print(f"wrote the fit into {path}")


def main(argv: list[str] | None = None) -> int:
    """Print the tables; with ``--write``, store the fit and its held-out record."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--write", action="store_true", help="store the fit and the held-out table in coefficients.json"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=FIT_FILE,
        help=f"where --write stores the fit (default: {FIT_FILE.relative_to(REPO)})",
    )
    parser.add_argument(
        "--no-holdout", action="store_true", help="do not print the l1-jet-id table (model development)"
    )
    args = parser.parse_args(argv)
    samples, binding = load()
    result = tables(samples, binding)
    coeffs = result.pop("_coefficients")
    wide, narrow, miss = estfit.fit_dsp_rule([o for o in binding if o["repo"] != HOLDOUT_REPO])
    total = sum(o["dsp"] + o["lut"] for o in binding)
    print(
        f"DSP rule: a mul goes to a DSP48 if max(bits) >= {wide} and min(bits) >= {narrow} "
        f"({miss} of {total} observed multiplications misclassified)\n"
    )
    print_table("fit set: model fitted to all non-held-out designs (in-sample)", result["fit"])
    print_table(
        "held out: leave-one-repository-out (each repository predicted by a fit to the others)",
        result["held_out"],
    )
    names = ["held_out"]
    if not args.no_holdout:
        print_table(
            "l1-jet-id holdout (fastmachinelearning/l1-jet-id, never fitted; seen while rules were chosen)",
            result["holdout_l1_jet_id"],
        )
        print_table(f"blind holdout ({BLIND_SET}: collected after the rules were frozen)", result["blind"])
        names += ["holdout_l1_jet_id", "blind"]
    for name in names:
        print(f"summary {name}: {json.dumps(summary(result[name]))}")
    if args.write:
        write_fit(coeffs, calibration_record(result), args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
