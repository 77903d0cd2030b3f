"""The hls stage: every student's firmware folder from the flows ``hls.flows`` builds, and the budget.

``hls_stage`` assembles ``firmware/<run>/<student>`` from the hls4ml stage's project
(:mod:`kd_trigger.hls.hls4ml_stage`) and the rtl stage's ``rtl/`` (:mod:`kd_trigger.rtl.stage`), adds
the RTL blocks and the budget verdicts to ``hls_report.json`` (:class:`kd_trigger.contracts.HlsReport`)
and logs the verdict table. It converts, simulates and synthesizes nothing: cheap to rerun after either
flow changed. :mod:`kd_trigger.hls.saved_model` builds the same firmware for any saved QKeras model.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from kd_trigger.config import Config, HlsConfig
from kd_trigger.contracts import HlsReport, RtlResult, read_contract
from kd_trigger.errors import EXIT_BUDGET, EXIT_OK
from kd_trigger.hls.build import apply_budget
from kd_trigger.hls.flows import HLS4ML, RTL, budget_file, check_hls
from kd_trigger.layout import ProjectLayout, RunLayout
from kd_trigger.report.markdown import verdict_table
from kd_trigger.rtl.student import add_rtl
from kd_trigger.runs import copy_tree_linked, package_versions
from kd_trigger.stage_types import StageContext, StageDecl, StageResult, dump

log = logging.getLogger(__name__)


def hls_stage(ctx: StageContext) -> StageResult:
    """Every student's ``firmware/<run>/<student>`` from the flows ``hls.flows`` names, its budget
    verdict, and the verdict table; exit status 3 when a budget is broken.

    The hls4ml project (with ``hls_report.json`` and ``csim_outputs.npz``) and the RTL flow's folder
    (``rtl/``) are hard-linked (copied across file systems) from the hls4ml and rtl stages' outputs;
    ``hls_report.json`` gains the ``rtl``/``rtl_sim`` blocks and the budget verdicts.
    """
    cfg = ctx.cfg
    layout = RunLayout.of(cfg)
    reports: list[HlsReport] = []
    for spec in cfg.students:
        final = layout.firmware_dir(spec.name)
        project = ProjectLayout(ctx.out(final))
        project.root.mkdir(parents=True, exist_ok=True)
        report: HlsReport | None = None
        if HLS4ML in cfg.hls.flows:
            copy_tree_linked(layout.flow_dir(HLS4ML, spec.name), project.root)
            report = read_contract(project.report, HlsReport, "make hls")
        if RTL in cfg.hls.flows:
            copy_tree_linked(layout.flow_dir(RTL, spec.name), project.rtl)
            result = read_contract(project.rtl_report, RtlResult, "make hls")
            if report is None:
                report = rtl_only_report(spec.name, cfg.hls, result, final)
            add_rtl(report, result, project.rtl.name)
        if report is None:  # hls.flows has at least one entry (the config refuses an empty one)
            raise AssertionError(f"hls.flows {cfg.hls.flows} builds nothing")
        apply_budget(report, cfg)
        report.write(project.report)
        reports.append(report)
    broken = [r.student for r in reports if r.budget is not None and not r.budget.passed]
    log.info("hls verdict (profile %s):\n%s", cfg.budget.profile, verdict_table(reports))
    if broken:
        log.error("trigger budget %s broken by: %s", cfg.budget.profile, ", ".join(broken))
    return StageResult(
        exit_status=EXIT_BUDGET if broken else EXIT_OK,
        extra={"students": [s.name for s in cfg.students], "broken": broken},
    )


def rtl_only_report(student: str, hls: HlsConfig, result: RtlResult, final_dir: Path) -> HlsReport:
    """hls_report.json of a student built by the RTL flow alone (``hls.flows: [rtl]``): no hls4ml
    project, no C simulation (``csim`` is null); types and timing are the RTL's."""
    return HlsReport(
        student=student,
        model=result.model,
        backend=hls.backend,
        part=hls.part,
        clock_period_ns=hls.clock_period_ns,
        reuse_factor=hls.reuse_factor,
        io_type=hls.io_type,
        strategy=hls.strategy,
        project_dir=str(final_dir),
        input_type=result.input_type,
        precision=dict(result.precision),
        precision_hls4ml={},
        requantized_weights=[],
        csim=None,
        min_exact_fraction=hls.min_exact_fraction,
        seconds={},
        versions=package_versions(),
        ii_cycles=result.ii_cycles,
    )


# -- the stage declaration ------------------------------------------------------------------------
def _hls_needs(cfg: Config) -> tuple[str, ...]:
    return tuple(flow for flow in (HLS4ML, RTL) if flow in cfg.hls.flows)


def _hls_config(cfg: Config) -> dict[str, Any]:
    return {"hls": dump(cfg.hls), "budget": dump(cfg.budget)}


def _hls_outputs(cfg: Config) -> list[Path]:
    layout = RunLayout.of(cfg)
    return [layout.firmware_dir(s.name) for s in cfg.students]


STAGE = StageDecl(
    "hls",
    hls_stage,
    _hls_config,
    _hls_outputs,
    needs=_hls_needs,
    inputs=budget_file,
    check=check_hls,
    description="each student's firmware folder from the flows, budget verdict per flow",
)
