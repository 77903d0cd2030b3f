"""A real firmware report drives figures -> budget verdict -> report rendering, in the fast subset.

``tests/fixtures/hls_report/ci_mlp.json`` is the ``hls_report.json`` of the CI pipeline's MLP (configs/ci.yaml),
validated with the :class:`HlsReport` contract. ``test_the_fixture_matches_the_ci_pipeline_report`` (slow)
compares it with the report the CI run writes, and rewrites it when ``KD_TRIGGER_REGENERATE_FIXTURES=1``,
so it cannot drift from what the pipeline produces.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest
from conftest import REPO

from kd_trigger.config import BudgetConfig
from kd_trigger.contracts import BudgetBlock, HlsReport
from kd_trigger.fpga.budget import BudgetProfile, check_budget, decide, load_budget
from kd_trigger.fpga.figures import design_figures
from kd_trigger.report.assemble import summary_row
from kd_trigger.report.html import render_markdown
from kd_trigger.report.inputs import StudentInputs
from kd_trigger.report.sections import budget_blocks, csim_verdict, exactness_blocks, rtl_verdict

FIXTURE = REPO / "tests" / "fixtures" / "hls_report" / "ci_mlp.json"
# What the CI config decides; the rest of the report depends on the trained weights.
CONFIG_DECIDED = (
    "student",
    "model",
    "backend",
    "part",
    "clock_period_ns",
    "reuse_factor",
    "io_type",
    "strategy",
    "input_type",
    "precision",
    "precision_hls4ml",
    "reuse_by_layer",
    "min_exact_fraction",
    "vendor_hls",
    "vendor_synth",
)


def _report() -> HlsReport:
    return HlsReport.model_validate_json(FIXTURE.read_text())


def _profile() -> BudgetProfile:
    return load_budget(BudgetConfig(profiles=str(REPO / "configs" / "budget.yaml")))


def _student(report: HlsReport) -> StudentInputs:
    return StudentInputs("mlp", Path("firmware/ci/mlp/hls_report.json"), report, None)


def _markdown(blocks) -> str:
    return render_markdown(list(blocks))


def _rows(md: str, first: str) -> list[list[str]]:
    return [
        [c.strip() for c in line.strip("|").split("|")]
        for line in md.splitlines()
        if line.startswith(f"| {first}")
    ]


def test_the_fixture_is_a_valid_report_of_both_flows() -> None:
    report = _report()
    assert report.student == "mlp" and report.csim.exact_fraction == 1.0
    assert report.rtl_sim is not None and report.rtl is not None and report.budget is not None
    assert set(report.budget_by_flow) == {"hls4ml", "rtl"}


def test_figures_come_from_the_report_blocks() -> None:
    report = _report()
    hls, rtl = design_figures(report)
    assert (hls.flow, rtl.flow) == ("hls4ml", "rtl")
    assert hls.best("lut") == (report.resources.total.lut, "estimate")
    assert hls.best("latency_ns")[0] == report.resources.latency_ns
    assert hls.best("ii_cycles")[0] == report.resources.ii_cycles == report.reuse_factor
    assert report.rtl is not None and report.rtl.yosys is not None
    assert rtl.best("lut") == (report.rtl.yosys.lut, "yosys synth (open-source)")
    assert rtl.best("latency_ns")[0] == report.rtl.latency_ns
    assert rtl.rank > hls.rank  # synthesis counts beat an estimate


def test_the_stored_verdicts_are_recomputed_from_the_figures() -> None:
    report = _report()
    deciding, by_flow = decide(design_figures(report), _profile())
    assert deciding.to_block() == report.budget
    assert {flow: v.to_block() for flow, v in by_flow.items()} == report.budget_by_flow


def _limits_at(report: HlsReport, flow: str, **change: float) -> BudgetProfile:
    """A profile whose every limit is exactly the figure of ``flow``'s design (then ``change`` applied)."""
    design = next(d for d in design_figures(report) if d.flow == flow)
    profile = _profile()
    available = dict(profile.available)
    fractions = {}
    for key in profile.max_fraction:
        value, _ = design.best(key)
        available[key] = max(int(value), 1) * 4
        fractions[key] = value / available[key]
    return dataclasses.replace(
        profile,
        available=available,
        max_fraction=fractions,
        max_latency_ns=change.get("max_latency_ns", design.best("latency_ns")[0]),
        max_ii_cycles=int(design.best("ii_cycles")[0]),
        clock_period_ns=change.get("clock_period_ns", design.best("clock_period_ns")[0]),
    )


@pytest.mark.parametrize("flow", ["hls4ml", "rtl"])
def test_figures_exactly_at_their_limits_pass(flow: str) -> None:
    report = _report()
    design = next(d for d in design_figures(report) if d.flow == flow)
    verdict = check_budget(design, _limits_at(report, flow))
    assert verdict.passed and verdict.violations == []
    assert all(r.value == r.limit and r.status == "PASS" for r in verdict.rows), verdict.rows
    # one step over a limit fails: LUT limit one below the figure
    tight = _limits_at(report, flow)
    lut = design.best("lut")[0]
    tight = dataclasses.replace(
        tight, max_fraction={**tight.max_fraction, "lut": (lut - 1) / tight.available["lut"]}
    )
    assert not check_budget(design, tight).passed


def test_a_clock_slower_than_the_budget_fails_and_renders_as_fail() -> None:
    report = _report()
    clock = report.clock_period_ns
    profile = _limits_at(report, "rtl", clock_period_ns=clock - 0.5, max_latency_ns=1e6)
    deciding, by_flow = decide(design_figures(report), profile)
    assert not deciding.passed and not any(v.passed for v in by_flow.values())
    rows = {r.figure: r for r in deciding.rows}
    assert rows["clock_period_ns"].status == "FAIL" and rows["clock_period_ns"].value == clock
    assert [r.figure for r in deciding.rows if r.status == "FAIL"] == ["clock_period_ns"]
    failing = report.model_copy(
        update={
            "budget": deciding.to_block(),
            "budget_by_flow": {f: v.to_block() for f, v in by_flow.items()},
        }
    )
    blocks, verdict = budget_blocks(_student(failing))
    md = _markdown(blocks)
    assert verdict == "FAIL"
    assert "**Budget verdict: FAIL**" in md and "clock_period_ns" in md
    [clock_row] = _rows(md, "clock_period_ns")
    assert clock_row[-1] == "FAIL" and clock_row[2] == f"{clock - 0.5:g}"
    assert "The hls4ml flow alone: FAIL" in md
    row, tone = summary_row(_student(failing), verdict)
    assert row[:4] == ("mlp", "BIT-EXACT", "BIT-EXACT", "FAIL") and tone == "fail"


def test_a_passing_report_renders_pass_everywhere() -> None:
    report = _report()
    blocks, verdict = budget_blocks(_student(report))
    md = _markdown(blocks)
    assert verdict == "PASS" and "**Budget verdict: PASS**" in md and "FAIL" not in md
    row, tone = summary_row(_student(report), verdict)
    assert row[:5] == ("mlp", "BIT-EXACT", "BIT-EXACT", "PASS", "rtl") and tone == "pass"
    assert "MISMATCH" not in _markdown(exactness_blocks(_student(report)))


@pytest.mark.parametrize("flow", ["csim", "rtl_sim"])
def test_a_simulation_that_disagrees_renders_as_mismatch(flow: str) -> None:
    report = _report()
    block = getattr(report, flow)
    # one output in a thousand off by one LSB: the AUCs would not show it
    off = block.model_copy(update={"exact_fraction": 0.999, "max_abs_diff": 2.0**-6})
    bad = report.model_copy(update={flow: off})
    verdicts = {"csim": csim_verdict(bad), "rtl_sim": rtl_verdict(bad)}
    assert verdicts[flow] == ("MISMATCH", "fail")
    other = "rtl_sim" if flow == "csim" else "csim"
    assert verdicts[other] == ("BIT-EXACT", "pass")
    md = _markdown(exactness_blocks(_student(bad)))
    assert md.count("MISMATCH") == 1 and md.count("BIT-EXACT") == 1
    row, tone = summary_row(_student(bad), "PASS")
    assert row[1:4] == (("MISMATCH", "BIT-EXACT") if flow == "csim" else ("BIT-EXACT", "MISMATCH")) + (
        "PASS",
    )
    assert tone == "fail"  # in budget, but not exact: the student fails


def test_a_flow_that_did_not_run_renders_as_not_run() -> None:
    report = _report()
    hls_only = report.model_copy(
        update={
            "rtl": None,
            "rtl_sim": None,
            "budget": report.budget_by_flow["hls4ml"],
            "budget_by_flow": {"hls4ml": report.budget_by_flow["hls4ml"]},
        }
    )
    assert rtl_verdict(hls_only) == ("not run", "plain")
    assert [d.flow for d in design_figures(hls_only)] == ["hls4ml"]
    row, tone = summary_row(_student(hls_only), "PASS")
    assert row[:5] == ("mlp", "BIT-EXACT", "not run", "PASS", "hls4ml") and tone == "pass"
    md = _markdown(exactness_blocks(_student(hls_only)))
    assert "RTL simulation" not in md


def _shape(node):
    """The keys of a JSON document, recursively (lists: the union over their items). Yosys' cell-type
    histogram is data, not format: which cell types appear depends on the trained weights."""
    if isinstance(node, dict):
        return {k: "histogram" if k == "cells" else _shape(v) for k, v in node.items()}
    if isinstance(node, list):
        merged: dict = {}
        for item in node:
            shape = _shape(item)
            if isinstance(shape, dict):
                merged.update(shape)
        return [merged] if merged else []
    return type(node).__name__ if node is not None else None


@pytest.mark.slow
def test_the_fixture_matches_the_ci_pipeline_report(ci_run) -> None:
    """The committed fixture has the shape of the report the pipeline writes today, and the same
    config-decided content; KD_TRIGGER_REGENERATE_FIXTURES=1 rewrites it from the CI run."""
    path = ci_run.cfg.firmware / "mlp" / "hls_report.json"
    fresh = json.loads(path.read_text())
    fresh["project_dir"] = "firmware/ci/mlp"
    if os.environ.get("KD_TRIGGER_REGENERATE_FIXTURES") == "1":
        FIXTURE.write_text(json.dumps(fresh, indent=1, sort_keys=True) + "\n")
    stored = json.loads(FIXTURE.read_text())
    HlsReport.model_validate(stored)
    assert _shape(stored) == _shape(fresh)
    for key in CONFIG_DECIDED:
        assert stored[key] == fresh[key], key
    for block in ("budget", *(f"budget_by_flow.{f}" for f in fresh["budget_by_flow"])):
        s, f = stored, fresh
        for part in block.split("."):
            s, f = s[part], f[part]
        s, f = BudgetBlock.model_validate(s), BudgetBlock.model_validate(f)
        assert (s.profile, s.flow, [(r.figure, r.limit, r.unit) for r in s.rows]) == (
            f.profile,
            f.flow,
            [(r.figure, r.limit, r.unit) for r in f.rows],
        )
