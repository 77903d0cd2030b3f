"""The sections of the review report, each a function from typed inputs to document blocks.

Every resource or latency figure names its source (:mod:`kd_trigger.fpga.figures`); estimates are
always printed as estimates. Plots are drawn into the directory the caller gives.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from kd_trigger.contracts import (
    HlsReport,
    LayerSparsity,
    Metrics,
    ModelMetrics,
    Scan,
    StageRecord,
    StudentSummary,
    read_contract,
)
from kd_trigger.fpga import RESOURCE_KEYS, RESOURCE_LABELS, SOURCE_ESTIMATE
from kd_trigger.fpga.budget import BudgetProfile
from kd_trigger.fpga.figures import DesignFigures, design_figures
from kd_trigger.layout import ScanFiles
from kd_trigger.report import fpga_plots
from kd_trigger.report.calibration import calibration_blocks as calibration_blocks  # re-exported
from kd_trigger.report.classes import class_blocks
from kd_trigger.report.format import (
    NA,
    fmt_fixed,
    fmt_int,
    fmt_pct,
    fmt_rejection,
    fmt_value,
    fmt_with_err,
    is_num,
    source_label,
    status_text,
    tone_of,
)
from kd_trigger.report.html import Block, Bullets, Heading, Image, Paragraph, Table, Tone
from kd_trigger.report.inputs import StudentInputs
from kd_trigger.report.markdown import fast_vs_yosys_text, front_texts

log = logging.getLogger(__name__)

PRECISION_ORDER = ("weight", "bias", "accum", "result")


# -- physics --------------------------------------------------------------------------------------
def _model_row(label: str, m: ModelMetrics | None) -> tuple[str, ...]:
    if m is None:
        return (label, NA, NA, NA, NA, NA)
    boost_acc = NA
    if m.boost:
        last = max(m.boost, key=lambda p: p.beta)
        boost_acc = f"{fmt_fixed(last.accuracy)} (β={last.beta:g})"
    return (
        label,
        fmt_fixed(m.accuracy),
        fmt_with_err(m.auc, m.auc_err),
        fmt_rejection(m.rejection_at_30, m.rejection_at_30_err),
        fmt_rejection(m.rejection_at_50, m.rejection_at_50_err),
        boost_acc,
    )


def _ratio(summary: StudentSummary, wp: int) -> str:
    r = summary.rejection_ratio_30 if wp == 30 else summary.rejection_ratio_50
    if not all(is_num(v) for v in (r.ratio, r.low, r.high)):
        return NA
    return f"{r.ratio:.2f} [{r.low:.2f}, {r.high:.2f}]"


def _difference(summary: StudentSummary) -> str:
    d = summary.accuracy_difference_points
    if d is None or not all(is_num(v) for v in (d.points, d.low, d.high)):
        return NA
    return f"{d.points:+.2f} [{d.low:+.2f}, {d.high:+.2f}]"


def physics_blocks(name: str, metrics: Metrics) -> list[Block]:
    """Teacher, baseline and distilled student on the test split, and the paired KD/baseline ratio."""
    summary = metrics.students[name]
    teacher = metrics.models.get(f"teacher/{summary.teacher}") or metrics.models.get("teacher")
    header = ("model", "accuracy", "AUC", "1/ε_B @ ε_S=30%", "1/ε_B @ ε_S=50%", "accuracy at largest boost")
    rows = (
        _model_row(f"teacher `{summary.teacher}`", teacher),
        _model_row(f"{name} baseline", metrics.models.get(f"{name}/baseline")),
        _model_row(f"{name} distilled (KD)", metrics.models.get(f"{name}/kd")),
    )
    setting = f"Distilled from teacher `{summary.teacher}` with T = {summary.temperature:g}, w = {summary.kd_weight:g}. "
    interval = "68% interval of a paired bootstrap over the test jets; one seed: see the study for several"
    if len(metrics.class_names) > 2:
        # N classes: the accuracy over all classes is the headline; one class against the rest is a detail.
        last = metrics.class_names[-1]
        text = (
            f"{setting}KD - baseline accuracy: **{_difference(summary)} points** ({interval}). Rejection of the "
            f"other classes at 30% / 50% efficiency of `{last}`, KD / baseline: {_ratio(summary, 30)} / "
            f"{_ratio(summary, 50)}; every class's figures are in the per-class table below."
        )
    else:
        text = (
            f"{setting}KD / baseline background rejection: **{_ratio(summary, 30)}** at ε_S = 30%, "
            f"**{_ratio(summary, 50)}** at ε_S = 50%; accuracy KD - baseline {_difference(summary)} points "
            f"({interval})."
        )
    heading = Heading(3, "Physics: teacher vs baseline vs distilled")
    return [heading, Table(header, rows), Paragraph(text), *class_blocks(name, metrics)]


# -- exactness ------------------------------------------------------------------------------------
def csim_verdict(report: HlsReport) -> tuple[str, Tone]:
    csim = report.csim
    if csim is None:
        return "not run", "plain"
    if csim.exact_fraction == 1.0 and csim.max_abs_diff == 0:
        return "BIT-EXACT", "pass"
    return "MISMATCH", "fail"


def rtl_verdict(report: HlsReport) -> tuple[str, Tone]:
    sim = report.rtl_sim
    if sim is None:
        return "not run", "plain"
    if sim.exact_fraction == 1.0 and sim.max_abs_diff == 0:
        return "BIT-EXACT", "pass"
    return "MISMATCH", "fail"


def exactness_blocks(student: StudentInputs) -> list[Block]:
    """C simulation (hls4ml) and RTL simulation (rtl flow) against QKeras, side by side."""
    report = student.report
    csim = report.csim
    sim = report.rtl_sim
    rows: list[tuple[str, ...]] = []
    tones: list[Tone] = []
    if csim is not None:
        rows.append(
            (
                "hls4ml C simulation (g++)",
                fmt_int(csim.n_samples),
                f"{fmt_fixed(csim.exact_fraction, 6)} ({round(csim.exact_fraction * csim.n_outputs):,} of "
                f"{csim.n_outputs:,} outputs)",
                f"{csim.max_abs_diff:.6g}",
                fmt_fixed(csim.argmax_agreement, 6),
                csim_verdict(report)[0],
            )
        )
        tones.append(csim_verdict(report)[1])
    if sim is not None:
        simulator = sim.simulator or "RTL simulation"
        rows.append(
            (
                f"RTL simulation ({simulator})",
                fmt_int(sim.n_samples),
                fmt_fixed(sim.exact_fraction, 6),
                f"{sim.max_abs_diff:.6g}",
                fmt_fixed(sim.argmax_agreement, 6),
                rtl_verdict(report)[0],
            )
        )
        tones.append(rtl_verdict(report)[1])
    blocks: list[Block] = [
        Heading(3, "Exactness against QKeras"),
        Table(
            ("simulation", "samples", "exact fraction", "max |diff|", "argmax agreement", "verdict"),
            tuple(rows),
            row_tones=tuple(tones),
        ),
    ]
    if csim is None:
        return blocks
    blocks.append(
        Paragraph(
            f"Reference: {csim.reference}. AUC of the test jets: QKeras {fmt_fixed(csim.auc_qkeras, 6)}, "
            f"C simulation {fmt_fixed(csim.auc_hls, 6)}. QKeras' own float32 arithmetic agrees with the exact "
            f"reference on {fmt_fixed(csim.float32_agreement, 6)} of outputs."
        )
    )
    if csim.final_activation:
        fa = csim.final_activation
        blocks.append(
            Paragraph(
                f"Exactness is judged on `{csim.compared_layer}`, before the final {fa.get('kind', 'activation')}; "
                f"the firmware's {fa.get('kind', 'activation')} deviates from QKeras by at most "
                f"{fmt_value(fa.get('max_abs_diff'))} (argmax agreement {fmt_fixed(fa.get('argmax_agreement'), 6)}).",
                "warn",
            )
        )
    if report.intake:
        blocks.append(Bullets(tuple(f"Assumed at intake: {item}" for item in report.intake)))
    return blocks


# -- resources ------------------------------------------------------------------------------------
def _exactness_of(flow: str, report: HlsReport) -> str:
    if flow == "rtl":
        return rtl_verdict(report)[0]
    return csim_verdict(report)[0]


_FIGURE_LABELS = {
    **RESOURCE_LABELS,
    "latency_cycles": "latency (cycles)",
    "latency_ns": "latency (ns)",
    "ii_cycles": "II (cycles)",
    "clock_period_ns": "clock (ns)",
}


def design_rows(report: HlsReport) -> list[tuple[DesignFigures, str]]:
    """(design, source) for every source of every design, most trustworthy first within a design."""
    return [(d, source) for d in design_figures(report) for source in d.sources()]


def _mults(layer: dict[str, object]) -> str:
    total = layer.get("multipliers")
    if not is_num(total):
        return NA
    dsp, lut = layer.get("dsp_multipliers"), layer.get("lut_multipliers")
    if is_num(dsp) and is_num(lut):
        return f"{fmt_int(total)} ({fmt_int(dsp)} DSP / {fmt_int(lut)} LUT)"
    return fmt_int(total)


def resource_blocks(
    student: StudentInputs, profile: BudgetProfile, plot_dir: Path, plot_rel: str
) -> list[Block]:
    """Both flows side by side (each figure from its most trustworthy source), every source's figures,
    utilisation of the part, the per-layer estimate and plots."""
    report = student.report
    blocks: list[Block] = [Heading(3, "Resources and latency")]
    designs = design_figures(report)
    rows = []
    for design in designs:
        best = {k: design.best(k) for k in (*RESOURCE_KEYS, "latency_cycles", "latency_ns", "ii_cycles")}
        rows.append(
            (
                design.flow,
                *(fmt_int(best[k][0]) for k in RESOURCE_KEYS),
                fmt_int(best["latency_cycles"][0]),
                fmt_value(best["latency_ns"][0]),
                fmt_int(best["ii_cycles"][0]),
                source_label(best["lut"][1]) if best["lut"][1] else NA,
                source_label(best["latency_ns"][1]) if best["latency_ns"][1] else NA,
                _exactness_of(design.flow, report),
            )
        )
    header = (
        "flow",
        *(RESOURCE_LABELS[k] for k in RESOURCE_KEYS),
        "latency (cycles)",
        "latency (ns)",
        "II (cycles)",
        "resources from",
        "timing from",
        "exactness",
    )
    blocks.append(
        Table(header, tuple(rows), caption="The two designs, each figure from its most trustworthy source")
    )
    detail = tuple(
        (
            design.flow,
            source_label(source),
            ", ".join(
                f"{_FIGURE_LABELS[k]} {fmt_value(v)}"
                for k, v in design.by_source[source].items()
                if k in _FIGURE_LABELS
            ),
        )
        for design, source in design_rows(report)
    )
    blocks.append(Table(("flow", "source", "figures it gives"), detail, caption="Every figure, by source"))
    util_rows = []
    for design in designs:
        source = design.best("lut")[1]
        util_rows.append(
            (
                design.flow,
                source_label(source) if source else NA,
                *(fmt_pct(design.best(k)[0], profile.available[k]) for k in RESOURCE_KEYS),
            )
        )
    blocks.append(
        Table(
            (
                "flow",
                "resources from",
                *(f"{RESOURCE_LABELS[k]} (of {profile.available[k]:,})" for k in RESOURCE_KEYS),
            ),
            tuple(util_rows),
            caption=f"Utilisation of the part {profile.part}",
        )
    )
    est = report.resources
    if est is not None:
        extra = est.model_extra or {}
        if extra.get("method_description"):
            blocks.append(Paragraph(f"How the estimate is computed: {extra['method_description']}."))
        calibration = extra.get("calibration")
        if isinstance(calibration, dict) and calibration.get("summary"):
            blocks.append(Paragraph(f"Measured error of the estimate: {calibration['summary']}"))
        if est.layers:
            layer_rows = tuple(
                (
                    str(layer.get("name", NA)),
                    str(layer.get("kind", NA)),
                    *(fmt_int(layer.get(k)) for k in ("lut", "ff", "dsp", "bram_18k")),
                    fmt_int(layer.get("latency_cycles")),
                    _mults(layer),
                )
                for layer in est.layers
            )
            blocks.append(
                Table(
                    ("layer", "kind", "LUT", "FF", "DSP", "BRAM_18K", "latency (cycles)", "multipliers"),
                    layer_rows,
                    caption=f"hls4ml flow per layer ({source_label(SOURCE_ESTIMATE, est.method)})",
                )
            )
            res_png = plot_dir / f"{student.name}_resources.png"
            lat_png = plot_dir / f"{student.name}_latency.png"
            label = source_label(SOURCE_ESTIMATE, est.method)
            fpga_plots.plot_layer_resources(
                est.layers, f"{student.name}: resources per layer ({label})", res_png
            )
            fpga_plots.plot_layer_latency(
                est.layers, report.clock_period_ns, f"{student.name}: latency per layer ({label})", lat_png
            )
            blocks.append(
                Image(res_png, f"{plot_rel}/{res_png.name}", f"{student.name}: LUT, FF and DSP per layer")
            )
            blocks.append(Image(lat_png, f"{plot_rel}/{lat_png.name}", f"{student.name}: latency per layer"))
    if report.rtl:
        blocks.append(
            Paragraph(
                "RTL flow: Yosys counts cells after open-source synthesis for the part family; it does not "
                "measure timing. The latency and II are da4ml's pipeline; timing closure needs the vendor tool."
            )
        )
        same_ii = same_ii_comparison(report)
        if same_ii:
            blocks.append(Paragraph(same_ii))
    return blocks


def same_ii_comparison(report: HlsReport) -> str | None:
    """The RTL's LUTs against the hls4ml design's at the same II = 1 (every layer at reuse factor 1). The
    like-for-like pair is synthesis vs synthesis: Yosys counts vs our post-synthesis estimate. da4ml's
    estimate vs our HLS-report estimate is shown too (both are pre-synthesis estimates, but da4ml's lands
    near synthesis while HLS reports count about twice the LUTs synthesis keeps)."""
    rtl, ii1 = report.rtl, report.hls4ml_at_ii1 or {}
    pairs = []
    yosys_lut = rtl.yosys.lut if rtl is not None and rtl.yosys is not None else None
    da4ml_lut = rtl.da4ml_estimate.lut if rtl is not None else None
    synth_lut = (ii1.get("total") or {}).get("lut")
    hls_lut = (ii1.get("total_hls") or {}).get("lut")
    if yosys_lut and synth_lut:
        pairs.append(
            f"RTL {yosys_lut:,} LUT (Yosys synthesis) vs hls4ml {synth_lut:,} (estimate of Vivado "
            f"post-synthesis): **{yosys_lut / synth_lut:.2f}x** (like for like)"
        )
    if da4ml_lut and hls_lut:
        pairs.append(
            f"RTL {da4ml_lut:,} LUT (da4ml estimate) vs hls4ml {hls_lut:,} (estimate of the HLS report): "
            f"{da4ml_lut / hls_lut:.2f}x"
        )
    if not pairs:
        return None
    return "At the same II = 1 (hls4ml with every layer at reuse factor 1): " + "; ".join(pairs) + "."


# -- budget ---------------------------------------------------------------------------------------
def budget_blocks(student: StudentInputs) -> tuple[list[Block], str]:
    """The deciding verdict's rows, which flow and source decided, and the other flow's verdict."""
    budget = student.report.budget
    if budget is None:
        return [
            Heading(3, "Trigger budget"),
            Paragraph("**Budget verdict: n/a** (no budget check)", "warn"),
        ], NA
    blocks: list[Block] = [Heading(3, f"Trigger budget: profile `{budget.profile}`")]
    rows, tones = [], []
    for r in budget.rows:
        status = status_text(r.status)
        rows.append(
            (
                r.figure,
                fmt_value(r.value),
                fmt_value(r.limit),
                r.unit,
                source_label(r.source) if r.source else NA,
                status,
            )
        )
        tones.append(tone_of(status))
    blocks.append(
        Table(("figure", "value", "limit", "unit", "source", "status"), tuple(rows), row_tones=tuple(tones))
    )
    verdict = "PASS" if budget.passed else "FAIL"
    why = "" if budget.passed else ": " + ("; ".join(budget.violations) or "see the FAIL rows")
    blocks.append(
        Paragraph(
            f"**Budget verdict: {verdict}** (profile `{budget.profile}`; decided by the {budget.flow} flow, "
            f"most trustworthy source: {budget.decided_by}){why}",
            "pass" if budget.passed else "fail",
        )
    )
    others = [(flow, v) for flow, v in student.report.budget_by_flow.items() if flow != budget.flow]
    for flow, v in others:
        blocks.append(
            Paragraph(
                f"The {flow} flow alone: {'PASS' if v.passed else 'FAIL: ' + '; '.join(v.violations)} "
                f"(its best source: {v.decided_by})."
            )
        )
    return blocks, verdict


# -- precision and the C-simulation ROC -----------------------------------------------------------
def precision_blocks(report: HlsReport) -> list[Block]:
    precision = report.precision
    blocks: list[Block] = [Heading(3, "Precision per layer (derived from the quantizers)")]
    columns = [k for k in PRECISION_ORDER if any(k in spec for spec in precision.values())]
    for spec in precision.values():
        columns.extend(k for k in spec if k not in columns)
    rows = tuple((layer, *(spec.get(c, "-") for c in columns)) for layer, spec in precision.items())
    return [*blocks, Table(("layer", *columns), rows)]


def sparsity_blocks(name: str, metrics: Metrics, report: HlsReport) -> list[Block]:
    """Zero weights per layer: the target, the saved baseline and distilled kernels (after their
    quantizer), and the firmware's constants. Zero weights cost no product in either flow."""
    summary = metrics.students.get(name)
    saved = summary.sparsity if summary is not None else {}
    layers = list(report.sparsity) or [layer for v in saved.values() for layer in v]
    if not layers:
        return []
    layers = list(dict.fromkeys(layers))

    def cell(entry: LayerSparsity | None) -> str:
        if entry is None:
            return "-"
        return (
            f"{entry.quantized_zeros} / {entry.n_weights} ({fmt_pct(entry.quantized_zeros, entry.n_weights)})"
        )

    variants = [v for v in ("baseline", "kd") if v in saved]
    header = ("layer", *(f"{v} (saved)" for v in variants), "firmware")
    rows = tuple(
        (
            layer,
            *(cell(saved[v].get(layer)) for v in variants),
            cell(report.sparsity.get(layer)),
        )
        for layer in layers
    )
    target = summary.sparsity_target if summary is not None else 0.0
    text = (
        f"Pruning target {100 * target:g}% of each kernel's weights (`students[].sparsity`)."
        if target
        else "Not pruned (`students[].sparsity` = 0): the zeros are those of the quantized weights."
    )
    return [Heading(3, "Zero weights per layer"), Paragraph(text), Table(header, rows)]


def roc_blocks(student: StudentInputs, plot_dir: Path, plot_rel: str) -> list[Block]:
    if student.csim_npz is None:
        return [
            Paragraph(
                f"No {student.report_path.parent.name}/csim_outputs.npz: the C-simulation ROC is not plotted."
            )
        ]
    try:
        with np.load(student.csim_npz) as data:
            y_true, p_hls, p_q = (np.asarray(data[k]) for k in ("y_true", "p_hls", "p_qkeras"))
            # N classes: the curve of the last class (p_* are its probabilities) against the rest
            n_classes = np.asarray(data["logits_hls"]).shape[1] if "logits_hls" in data.files else 2
            y_true = y_true == n_classes - 1
    except (OSError, KeyError, ValueError) as err:
        log.warning("cannot read %s: %s", student.csim_npz, err)
        return [
            Paragraph(
                f"{student.csim_npz} is unreadable ({err}): the C-simulation ROC is not plotted.", "warn"
            )
        ]
    png = plot_dir / f"{student.name}_csim_roc.png"
    fpga_plots.plot_csim_roc(y_true, p_hls, p_q, f"{student.name}: C simulation vs QKeras", png)
    caption = f"{student.name}: background rejection vs signal efficiency, HLS C simulation over QKeras"
    return [Image(png, f"{plot_rel}/{png.name}", caption)]


# -- provenance -----------------------------------------------------------------------------------
def provenance_blocks(records: tuple[StageRecord, ...]) -> list[Block]:
    """Every stage's digest and finish time, and the package versions each recorded."""
    blocks: list[Block] = [Heading(2, "Provenance")]
    stage_rows = tuple((r.stage, r.digest, r.finished_utc, f"{r.seconds:.1f}") for r in records)
    blocks.append(Table(("stage", "digest", "finished (UTC)", "seconds"), stage_rows, caption="Stages"))
    seen: dict[str, dict[str, list[str]]] = {}
    for r in records:
        for pkg, ver in r.versions.items():
            seen.setdefault(pkg, {}).setdefault(ver, []).append(r.stage)
    rows = tuple(
        (pkg, "; ".join(f"{ver} ({', '.join(st)})" if len(by) > 1 else ver for ver, st in by.items()))
        for pkg, by in seen.items()
    )
    blocks.append(Table(("package", "version (stage)"), rows, caption="Versions recorded by the stages"))
    return blocks


HOW_TO_READ = (
    "Every resource and latency figure names its source. **estimate**: kd_trigger's model of the hls4ml "
    "firmware, calibrated on public vendor reports; **da4ml estimate**: da4ml's cost model of its own "
    "Verilog; **yosys synth (open-source)**: cells counted by Yosys after synthesis of the RTL flow's Verilog; "
    "**vendor HLS estimate**: the Vivado/Vitis HLS C-synthesis report; **vendor post-synthesis**: Vivado "
    "synthesis, the figures closest to what the chip will hold.",
    "The two flows are two firmware designs of the same student: hls4ml's HLS C++ and the open-source RTL "
    "(da4ml distributed arithmetic). Figures of one flow never stand in for the other; the budget verdict "
    "is decided by the flow whose resource figures come from the most trustworthy source.",
    "BIT-EXACT means the simulation of the firmware gave identical outputs to the QKeras model on every "
    "simulated input; anything else is a MISMATCH, whatever the AUCs say.",
    "Rejection 1/ε_B at signal efficiency ε_S with its bootstrap error; at high rejection few background "
    "jets survive the cut, so read the errors before the central values.",
)


# -- the design scan ------------------------------------------------------------------------------
def scan_blocks(scan_path: Path, plot_dir: Path, plot_rel: str, limit: int = 12) -> list[Block]:
    """The scan's designs (best objective first, at most ``limit``) and its Pareto plots, when a scan ran."""
    if not scan_path.is_file():
        return []
    scan = read_contract(scan_path, Scan, "make scan CONFIG=...")
    header = (
        "design",
        "student and axes",
        scan.objective,
        "LUT",
        "latency (ns)",
        "II",
        "figures from",
        "exact",
        "budget",
        "Pareto",
    )
    ranked = sorted(scan.points, key=lambda p: -(p.physics.get(scan.objective) or -1e9))[:limit]
    rows = tuple(
        (
            f"**{p.key}**" if p.key == scan.best else p.key,
            f"{p.student}: " + ", ".join(f"{k}={v}" for k, v in p.axes.items()),
            fmt_fixed(p.physics.get(scan.objective)),
            fmt_int(p.figures.get("lut")),
            fmt_value(p.figures.get("latency_ns")),
            fmt_int(p.figures.get("ii_cycles")),
            source_label(p.sources.get("lut")) if p.sources.get("lut") else NA,
            "yes" if p.exact else ("error" if p.error else "NO"),
            "PASS" if p.budget_pass else "FAIL",
            "yes" if p.pareto else "no",
        )
        for p in ranked
    )
    tones = tuple(tone_of("PASS" if p.budget_pass and p.exact else "FAIL") for p in ranked)
    best = next((p for p in scan.points if p.key == scan.best), None)
    text = (
        f"Best design within the budget: **{best.key}** ({best.student}: {best.axes}), promoted to `firmware/<run>/best/`."
        if best
        else f"No design fits the budget; nearest miss: {scan.nearest_miss}."
    )
    blocks: list[Block] = [
        Heading(2, "Design scan"),
        Paragraph(
            f"{len(scan.points)} designs ({scan.mode}), each KD-trained, converted, gated by the bit-exact C simulation "
            f"and measured; {sum(p.exact for p in scan.points)} exact, {sum(p.budget_pass for p in scan.points)} within "
            f"the budget. " + text,
            "pass" if best else "fail",
        ),
        Table(header, rows, caption=f"The {len(rows)} best designs by {scan.objective}", row_tones=tones),
        *(
            Paragraph(f"{kind}, KD against the label-only baseline: {text}")
            for kind, text in front_texts(scan)
        ),
        *([Paragraph(fast_vs_yosys_text(scan.fast_vs_yosys))] if scan.fast_vs_yosys else []),
    ]
    files = ScanFiles(scan_path.parent)
    for src, caption in ((files.pareto_lut, "physics vs LUT"), (files.pareto_latency, "physics vs latency")):
        if src.is_file():
            dst = plot_dir / f"scan_{src.name}"
            dst.write_bytes(src.read_bytes())
            blocks.append(
                Image(dst, f"{plot_rel}/{dst.name}", f"Design scan: {caption}, with the budget limit")
            )
    return blocks
