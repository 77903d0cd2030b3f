"""The report stage: assemble firmware/<run>/report.md and a self-contained report.html.

Inputs (through their contracts): artifacts/<run>/metrics.json, every student's hls_report.json (+ its
csim_outputs.npz), the stage records and the budget profile. The document is built once as blocks
(:mod:`kd_trigger.report.html`) and rendered twice, so the Markdown and the HTML never disagree.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

from kd_trigger.config import Config
from kd_trigger.fpga.figures import design_figures
from kd_trigger.layout import REPORT_PLOTS_DIR, RunLayout
from kd_trigger.report.format import NA, fmt_int, fmt_value, source_label
from kd_trigger.report.html import (
    Block,
    Bullets,
    Heading,
    Image,
    Paragraph,
    Table,
    Tone,
    render_html,
    render_markdown,
)
from kd_trigger.report.inputs import RunInputs, StudentInputs, load_run_inputs
from kd_trigger.report.precision_loss import precision_loss_blocks
from kd_trigger.report.sections import (
    HOW_TO_READ,
    budget_blocks,
    calibration_blocks,
    csim_verdict,
    exactness_blocks,
    physics_blocks,
    precision_blocks,
    provenance_blocks,
    resource_blocks,
    roc_blocks,
    rtl_verdict,
    scan_blocks,
    sparsity_blocks,
)
from kd_trigger.report.study_section import study_blocks
from kd_trigger.runs import write_text_atomic
from kd_trigger.stage_types import StageContext, StageDecl, StageResult

log = logging.getLogger(__name__)


def summary_row(student: StudentInputs, verdict: str) -> tuple[tuple[str, ...], Tone]:
    """The student's row of the summary table (exactness per flow, budget verdict, deciding figures)."""
    report = student.report
    flow = report.budget.flow if report.budget and report.budget.flow else "hls4ml"
    design = next((d for d in design_figures(report) if d.flow == flow), design_figures(report)[0])
    latency, lat_src = design.best("latency_ns")
    ii, _ = design.best("ii_cycles")
    lut, res_src = design.best("lut")
    dsp, _ = design.best("dsp")
    csim = csim_verdict(report)[0]
    rtl = rtl_verdict(report)[0]
    # Each flow that was built must be exact (hls.flows may leave one out, never both).
    ok = {csim, rtl} <= {"BIT-EXACT", "not run"} and verdict == "PASS"
    row = (
        student.name,
        csim,
        rtl,
        verdict,
        flow,
        fmt_value(latency),
        fmt_int(ii),
        source_label(lat_src) if lat_src else NA,
        fmt_int(lut),
        fmt_int(dsp),
        source_label(res_src) if res_src else NA,
    )
    return row, "pass" if ok else "fail"


def build_blocks(cfg: Config, inputs: RunInputs, plot_dir: Path, plot_rel: str) -> list[Block]:
    """All blocks of the report; writes the plots into ``plot_dir`` on the way."""
    body: list[Block] = []
    summary: list[tuple[str, ...]] = []
    tones: list[Tone] = []
    for student in inputs.students:
        report = student.report
        body.append(Heading(2, f"Student `{student.name}`", anchor=f"student-{student.name}"))
        body.append(
            Paragraph(
                f"Firmware: `{student.report_path.parent}`; {report.backend} backend, part `{report.part}`, clock "
                f"{report.clock_period_ns:g} ns, reuse factor {report.reuse_factor}, {report.io_type}, "
                f"{report.strategy}."
            )
        )
        body.extend(physics_blocks(student.name, inputs.metrics))
        body.extend(exactness_blocks(student))
        body.extend(roc_blocks(student, plot_dir, plot_rel))
        body.extend(resource_blocks(student, inputs.profile, plot_dir, plot_rel))
        budget, verdict = budget_blocks(student)
        body.extend(budget)
        body.extend(precision_blocks(report))
        body.extend(precision_loss_blocks(report.precision_loss))
        body.extend(sparsity_blocks(student.name, inputs.metrics, report))
        row, tone = summary_row(student, verdict)
        summary.append(row)
        tones.append(tone)

    all_ok = all(t == "pass" for t in tones)
    failing = [row[0] for row, t in zip(summary, tones, strict=True) if t != "pass"]
    overall = (
        "**Overall: PASS**: every student is bit-exact in every flow that ran, and within the budget."
        if all_ok
        else f"**Overall: FAIL** for {', '.join(failing)}: see the summary."
    )
    header: list[Block] = [
        Heading(1, f"kd_trigger firmware review: run {cfg.run.name}"),
        Bullets(
            (
                f"Run: `{cfg.run.name}`",
                f"Written: {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}",
                f"Config: `{cfg.source}`" if cfg.source else "Config: built in code",
                f"Target: {cfg.hls.backend} backend, part `{cfg.hls.part}`, clock {cfg.hls.clock_period_ns:g} ns, "
                f"reuse factor {cfg.hls.reuse_factor}, {cfg.hls.io_type}, {cfg.hls.strategy}; flows: "
                f"{', '.join(cfg.hls.flows)}",
                f"Budget profile: `{inputs.profile.name}` from `{cfg.budget.profiles}`",
            )
        ),
        Paragraph(overall, "pass" if all_ok else "fail"),
        Table(
            (
                "student",
                "C simulation",
                "RTL simulation",
                "budget",
                "decided by flow",
                "latency (ns)",
                "II (cycles)",
                "latency from",
                "LUT",
                "DSP",
                "resources from",
            ),
            tuple(summary),
            caption="Summary",
            row_tones=tuple(tones),
        ),
        Heading(2, "How to read this"),
        Bullets(HOW_TO_READ),
    ]
    physics: list[Block] = []
    layout = RunLayout.of(cfg)
    for src, caption in (
        (layout.roc_plot, "ROC of teachers and students (distill stage)"),
        (layout.boost_plot, "Accuracy under boosts (distill stage)"),
    ):
        if src.is_file():
            dst = plot_dir / f"physics_{src.name}"
            shutil.copyfile(src, dst)
            physics.append(Image(dst, f"{plot_rel}/{dst.name}", caption))
    if physics:
        physics.insert(0, Heading(2, "Physics plots"))
    study = study_blocks(cfg, layout.study)
    scan = scan_blocks(layout.scan, plot_dir, plot_rel)
    calibration = calibration_blocks(inputs.students[0].report) if inputs.students else []
    return [*header, *body, *study, *calibration, *scan, *physics, *provenance_blocks(inputs.records)]


def write_report(
    cfg: Config, md_path: Path, html_path: Path, plot_dir: Path, stages: Sequence[str] | None = None
) -> Path:
    """Render the report of ``cfg``'s run into the given paths (plots into ``plot_dir``); its provenance
    lists the records of ``stages`` (default: every committed record)."""
    inputs = load_run_inputs(cfg, stages)
    plot_dir.mkdir(parents=True, exist_ok=True)
    blocks = build_blocks(cfg, inputs, plot_dir, REPORT_PLOTS_DIR)
    title = f"kd_trigger firmware review: run {cfg.run.name}"
    write_text_atomic(html_path, render_html(blocks, title))
    write_text_atomic(md_path, render_markdown(blocks))
    return md_path


def report_stage(ctx: StageContext) -> StageResult:
    """The report stage: firmware/<run>/report.md, report.html and report_plots/."""
    cfg = ctx.cfg
    layout = RunLayout.of(cfg)
    write_report(
        cfg,
        ctx.out(layout.report_md),
        ctx.out(layout.report_html),
        ctx.out(layout.report_plots),
        ctx.graph or None,
    )
    log.info("review report written (%s and %s)", layout.report_md, layout.report_html.name)
    return StageResult()


# -- the stage declaration ------------------------------------------------------------------------
def _report_config(cfg: Config) -> dict[str, str]:
    return {"run": cfg.run.name}


def _report_outputs(cfg: Config) -> list[Path]:
    return RunLayout.of(cfg).report_outputs()


def _report_inputs(cfg: Config) -> list[Path]:
    # A study or a scan run later (make study, make scan) changes these files: the report then shows them
    # on its next run.
    layout = RunLayout.of(cfg)
    return [layout.study, layout.scan]


STAGE = StageDecl(
    "report",
    report_stage,
    _report_config,
    _report_outputs,
    needs=("distill", "hls"),
    inputs=_report_inputs,
    description="the firmware review report (Markdown and self-contained HTML)",
)
