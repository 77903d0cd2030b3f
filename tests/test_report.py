"""The firmware-review report: read from a real end-to-end run (the producers' own files, no hand-written
fixtures), every table complete; and clear errors when its inputs are missing or out of contract."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from kd_trigger.config import load_config
from kd_trigger.errors import DataError
from kd_trigger.report.format import fmt_pct, fmt_rejection
from kd_trigger.report.fpga_plots import rejection_curve
from kd_trigger.report.inputs import load_run_inputs


def _tables(md: str) -> list[list[list[str]]]:
    """Every Markdown table of ``md`` as rows of cells (header and separator rows dropped)."""
    tables: list[list[list[str]]] = []
    current: list[list[str]] = []
    for line in [*md.splitlines(), ""]:
        if line.startswith("|"):
            current.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif current:
            tables.append([row for row in current[2:]])
            current = []
    return tables


def _row(md: str, first_cell: str) -> list[list[str]]:
    return [row for table in _tables(md) for row in table if row and row[0] == first_cell]


@pytest.fixture(scope="module")
def report(ci_run):
    md = (ci_run.cfg.firmware / "report.md").read_text()
    html = (ci_run.cfg.firmware / "report.html").read_text()
    return ci_run.cfg, md, html


@pytest.mark.slow
def test_no_table_of_a_real_run_has_an_na_cell(report):
    _, md, _ = report
    tables = _tables(md)
    assert len(tables) >= 12
    empty = [
        (i, row)
        for i, table in enumerate(tables)
        for row in table
        if any(c in ("n/a", "", "nan") for c in row)
    ]
    assert empty == []


@pytest.mark.slow
def test_summary_and_sections(report):
    cfg, md, _ = report
    assert md.startswith(f"# kd_trigger firmware review: run {cfg.run.name}")
    assert "**Overall: PASS**" in md
    for name in ("mlp", "deepsets"):
        summary = _row(md, name)[0]
        assert summary[1:4] == ["BIT-EXACT", "BIT-EXACT", "PASS"]
        # Both flows fit; the RTL flow's resources are measured by Yosys: it decides.
        assert summary[4] == "rtl" and summary[10] == "yosys synth (open-source)"
        section = md.split(f"## Student `{name}`")[1].split("\n## ")[0]
        for heading in (
            "Physics",
            "Exactness against QKeras",
            "Resources and latency",
            "Trigger budget",
            "Precision",
        ):
            assert heading in md.split(f"## Student `{name}`")[1]
        teacher = {"mlp": "lorentznet64", "deepsets": "lorentznet16"}[name]
        assert f"Distilled from teacher `{teacher}` with T = 2, w = 0.9" in section


@pytest.mark.slow
def test_figures_match_the_producers_files(report):
    cfg, md, _ = report
    metrics = json.loads((cfg.artifacts / "metrics.json").read_text())
    hls = json.loads((cfg.firmware / "mlp" / "hls_report.json").read_text())
    mlp = md.split("## Student `mlp`")[1].split("## Student `deepsets`")[0]
    kd = metrics["models"]["mlp/kd"]
    assert _row(mlp, "mlp distilled (KD)")[0][1] == f"{kd['accuracy']:.4f}"
    total = hls["resources"]["total"]
    designs, detail, utilisation = _row(mlp, "hls4ml")[:3]
    assert designs[1] == f"{total['lut']:,}" and designs[3] == f"{total['dsp']:,}"
    assert designs[9].startswith("estimate") and designs[-1] == "BIT-EXACT"
    assert detail[1].startswith("estimate") and f"LUT {total['lut']:,}" in detail[2]
    assert utilisation[2] == fmt_pct(total["lut"], 1_728_000)
    rtl_design, yosys, da4ml, rtl_util = _row(mlp, "rtl")[:4]
    yosys_lut = hls["rtl"]["yosys"]["lut"]
    assert rtl_design[1] == f"{yosys_lut:,}" and rtl_design[9] == "yosys synth (open-source)"
    assert rtl_design[10] == "da4ml estimate" and rtl_design[8] == "1"
    assert yosys[1] == "yosys synth (open-source)" and da4ml[1] == "da4ml estimate"
    assert rtl_util[2] == fmt_pct(yosys_lut, 1_728_000)
    ratio = metrics["students"]["mlp"]["rejection_ratio_30"]
    assert f"**{ratio['ratio']:.2f} [{ratio['low']:.2f}, {ratio['high']:.2f}]** at ε_S = 30%" in mlp
    diff = metrics["students"]["mlp"]["accuracy_difference_points"]
    assert (
        f"accuracy KD - baseline {diff['points']:+.2f} [{diff['low']:+.2f}, {diff['high']:+.2f}] points"
        in mlp
    )


@pytest.mark.slow
def test_plots_and_self_contained_html(report):
    cfg, md, html = report
    plots = cfg.firmware / "report_plots"
    pngs = sorted(p.name for p in plots.glob("*.png"))
    for name in ("mlp", "deepsets"):
        assert {f"{name}_csim_roc.png", f"{name}_latency.png", f"{name}_resources.png"} <= set(pngs)
    assert {"physics_roc.png", "physics_boost.png"} <= set(pngs)
    for name in pngs:
        assert (plots / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"](report_plots/{name})" in md
    assert not re.search(r"https?://", html)
    assert "<link" not in html and "<script" not in html
    assert html.count('<img src="data:image/png;base64,') == len(pngs)
    assert '<h2 id="student-mlp">Student <code>mlp</code></h2>' in html


@pytest.mark.slow
def test_provenance_lists_every_stage(report):
    _, md, _ = report
    stages = [row[0] for row in _tables(md.split("## Provenance")[1])[0]]
    assert stages == [
        "data",
        "teacher:lorentznet16",
        "teacher:lorentznet64",
        "distill",
        "hls4ml",
        "rtl",
        "hls",
    ]
    from importlib.metadata import version

    assert _row(md, "hls4ml")[-1][1] == version("hls4ml")


@pytest.mark.slow
def test_report_inputs_go_through_the_contracts(ci_run, tmp_path, make_config):
    inputs = load_run_inputs(ci_run.cfg)
    assert inputs.metrics.students["mlp"].teacher == "lorentznet64"
    assert inputs.students[0].report.csim.exact_fraction == 1.0
    assert inputs.profile.available["lut"] == 1_728_000


def test_missing_metrics_names_file_and_command(make_config):
    cfg = load_config(make_config())
    with pytest.raises(DataError) as err:
        load_run_inputs(cfg)
    msg = str(err.value)
    assert str(cfg.artifacts / "metrics.json") in msg and "make distill CONFIG=" in msg and "\n" not in msg


def test_out_of_contract_json_is_a_data_error(make_config):
    cfg = load_config(make_config())
    cfg.artifacts.mkdir(parents=True)
    (cfg.artifacts / "metrics.json").write_text("{not json")
    with pytest.raises(DataError, match=r"metrics\.json is not readable JSON.*make distill CONFIG="):
        load_run_inputs(cfg)
    (cfg.artifacts / "metrics.json").write_text(json.dumps({"models": {}}))
    with pytest.raises(DataError, match=r"does not match the Metrics contract \(run: Field required\)"):
        load_run_inputs(cfg)


def test_formatting_helpers():
    assert fmt_pct(17280, 1_728_000) == "1.0%"
    assert fmt_pct(0, 100) == "0.0%"
    assert fmt_pct(1, 1_000_000) == "<0.01%"
    assert fmt_pct(5, None) == "n/a"
    assert fmt_rejection(412.7, 48.2) == "413 ± 48"
    assert fmt_rejection(22.13, 0.91) == "22.1 ± 0.9"
    assert fmt_rejection(7.456, 0.33) == "7.46 ± 0.33"
    assert fmt_rejection(float("inf")) == "inf (no background passes)"
    assert fmt_rejection(None) == "n/a"


def test_rejection_curve_by_hand():
    y = np.array([1, 1, 0, 1, 0, 0])
    score = np.array([0.9, 0.8, 0.8, 0.4, 0.3, 0.1])
    eff, rej = rejection_curve(y, score)
    # Thresholds 0.9 (no background: dropped), 0.8 (2/3 signal, 1/3 bkg), 0.4, 0.3, 0.1.
    np.testing.assert_allclose(eff, [2 / 3, 1.0, 1.0, 1.0])
    np.testing.assert_allclose(rej, [3.0, 3.0, 1.5, 1.0])


def test_same_ii_comparison_pairs_comparable_sources() -> None:
    from kd_trigger.contracts import Da4mlEstimateBlock, HlsReport, RtlBlock, YosysBlock
    from kd_trigger.report.sections import same_ii_comparison

    report = HlsReport.model_construct(
        rtl=RtlBlock.model_construct(
            yosys=YosysBlock.model_construct(lut=144_039),
            da4ml_estimate=Da4mlEstimateBlock.model_construct(lut=136_545),
        ),
        hls4ml_at_ii1={"total": {"lut": 186_959}, "total_hls": {"lut": 370_728}},
    )
    text = same_ii_comparison(report)
    assert text is not None
    assert (
        "RTL 144,039 LUT (Yosys synthesis) vs hls4ml 186,959" in text and "**0.77x** (like for like)" in text
    )
    assert "RTL 136,545 LUT (da4ml estimate) vs hls4ml 370,728" in text and "0.37x" in text
    assert (
        same_ii_comparison(
            HlsReport.model_construct(
                rtl=RtlBlock.model_construct(
                    yosys=YosysBlock.model_construct(lut=1),
                    da4ml_estimate=Da4mlEstimateBlock.model_construct(lut=0),
                ),
                hls4ml_at_ii1=None,
            )
        )
        is None
    )


@pytest.mark.slow
def test_estimator_calibration_table_shows_every_held_out_design(report):
    """The report's calibration table is the estimator's own record: one row per held-out design, the
    blind designs included, each ratio estimate / real as stored in CALIBRATION."""
    from kd_trigger.fpga.estimate import CALIBRATION

    _, md, _ = report
    assert "## Estimator calibration" in md and "not blind" in md
    rows = {
        key: {row[1].strip("`"): row for row in _row(md, label)}
        for key, label in (("held_out", "leave-one-repository-out"), ("blind", "blind holdout"))
    }
    for key, by_design in rows.items():
        assert set(by_design) == set(CALIBRATION[key])
    lhc = rows["blind"]["lhc_ae_16b_rf4_a7_vitis2023"]
    figures = CALIBRATION["blind"]["lhc_ae_16b_rf4_a7_vitis2023"]
    assert lhc[2:5] == ["-", "-", "-"]  # HLS report only
    dsp_real, dsp_est = figures["hls_dsp"]
    lat_real, lat_est = figures["latency_cycles"]
    assert lhc[5] == f"{dsp_est / dsp_real:.2f}" and lhc[6] == f"{lat_est} vs {lat_real}"
