"""The firmware-review report, built from a fixture run that follows the stage output contracts."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from kd_trigger.cli import main
from kd_trigger.config import Config, parse_config
from kd_trigger.errors import DataError
from kd_trigger.report.build import fmt_pct, fmt_rejection, write_run_report
from kd_trigger.report.fpga_plots import rejection_curve

FIXTURES = Path(__file__).parent / "fixtures" / "run"
RUN = "fx"


def _config(tmp_path: Path) -> Config:
    return parse_config(
        {
            "run": {
                "name": RUN,
                "artifacts_dir": str(tmp_path / "artifacts"),
                "firmware_dir": str(tmp_path / "firmware"),
            }
        }
    )


def _fixture_run(tmp_path: Path, with_npz: bool = True) -> Config:
    """metrics.json, the two students' hls_report.json and one csim_outputs.npz, laid out like a run."""
    cfg = _config(tmp_path)
    cfg.artifacts.mkdir(parents=True)
    shutil.copyfile(FIXTURES / "metrics.json", cfg.artifacts / "metrics.json")
    for name in ("mlp", "deepsets"):
        (cfg.firmware / name).mkdir(parents=True)
        shutil.copyfile(FIXTURES / name / "hls_report.json", cfg.firmware / name / "hls_report.json")
    if with_npz:
        rng = np.random.default_rng(3)
        y_true = rng.integers(0, 2, 2000)
        p = np.clip(0.5 + 0.35 * (2 * y_true - 1) + rng.normal(0, 0.25, y_true.size), 0, 1)
        np.savez(cfg.firmware / "mlp" / "csim_outputs.npz", y_true=y_true, p_hls=p, p_qkeras=p)
    return cfg


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Config, str, str]:
    """One report for the read-only checks below (plots take a second or two to draw)."""
    cfg = _fixture_run(tmp_path_factory.mktemp("run"))
    # Two stages that recorded different numpy versions: both must be listed.
    for sub, stage, numpy_version in (("data", "data", "1.26.4"), ("../../firmware/fx", "hls", "1.26.3")):
        d = (cfg.artifacts / sub).resolve()
        d.mkdir(parents=True, exist_ok=True)
        payload = {
            "stage": stage,
            "digest": f"digest-{stage}",
            "finished_utc": "2026-11-27T10:00:00Z",
            "versions": {"hls4ml": "1.3.0", "numpy": numpy_version},
        }
        (d / "stage.json").write_text(json.dumps(payload))
    md_path = write_run_report(cfg, config_path="configs/fx.yaml")
    assert md_path == cfg.firmware / "report.md"
    return cfg, md_path.read_text(), (cfg.firmware / "report.html").read_text()


def _row(md: str, first_cell: str) -> list[list[str]]:
    """All Markdown table rows whose first cell is ``first_cell``, split into cells."""
    rows = []
    for line in md.splitlines():
        if line.startswith(f"| {first_cell} |"):
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    return rows


def test_header_summary_and_sections(report):
    cfg, md, _ = report
    assert md.startswith(f"# kd_trigger firmware review: run {RUN}\n")
    assert "Config: `configs/fx.yaml`" in md
    assert f"`{cfg.section_hash('run', 'data', 'teacher', 'students', 'distill', 'hls', 'budget')}`" in md
    assert "HLS stage digest: `digest-hls`" in md
    assert "## How to read this" in md and "far from post-synthesis" in md
    assert "## Student `mlp`" in md and "## Student `deepsets`" in md
    assert md.index("## Student `mlp`") < md.index("## Student `deepsets`")
    # Summary: the most trustworthy figures of each student, and the overall verdict.
    est = "estimate (hls4ml-mult-count)"
    assert _row(md, "mlp")[0] == ["mlp", "BIT-EXACT", "PASS", "9", "45", "1", est, "17,280", "112", est]
    # deepsets: latency from the vendor HLS report, resources from post-synthesis (the best of each).
    assert _row(md, "deepsets")[0] == [
        "deepsets", "MISMATCH", "FAIL", "40", "200", "1", "vendor HLS estimate", "216,000", "2,100", "vendor post-synthesis"
    ]  # fmt: skip
    assert "**Overall: FAIL**: deepsets: MISMATCH, budget FAIL" in md
    # Versions recorded by the stages; a package with two versions lists both with their stage.
    assert _row(md, "hls4ml") == [["hls4ml", "1.3.0"]]
    assert _row(md, "numpy") == [["numpy", "1.26.4 (data); 1.26.3 (hls)"]]


def test_physics_numbers(report):
    _, md, _ = report
    teacher = _row(md, "teacher")
    assert len(teacher) == 2  # once per student section
    assert teacher[0] == ["teacher", "0.9313", "0.9841 ± 0.0006", "413 ± 48", "121 ± 10", "0.7012 (β=0.5)"]
    assert _row(md, "mlp baseline")[0] == [
        "mlp baseline",
        "0.8923",
        "0.9541 ± 0.0010",
        "60.4 ± 4.2",
        "22.1 ± 0.9",
        "0.6123 (β=0.5)",
    ]
    assert _row(md, "mlp distilled (KD)")[0] == [
        "mlp distilled (KD)", "0.9011", "0.9619 ± 0.0009", "73.1 ± 5.3", "25.0 ± 1.0", "0.6452 (β=0.5)"
    ]  # fmt: skip
    # 73.1 / 60.4 = 1.210, error 1.210 * hypot(5.3/73.1, 4.2/60.4) = 0.122
    assert "**1.21 ± 0.12** at ε_S = 30%, **1.13 ± 0.07** at ε_S = 50%" in md
    assert _row(md, "deepsets distilled (KD)")[0][3] == "123 ± 11"


def test_csim_verdicts(report):
    _, md, _ = report
    mlp = md[md.index("## Student `mlp`") : md.index("## Student `deepsets`")]
    deepsets = md[md.index("## Student `deepsets`") :]
    assert "**BIT-EXACT**: the C simulation reproduces QKeras on all 5,400 test jets." in mlp
    assert "MISMATCH" not in mlp
    assert "| exact fraction | 1.000000 (5,400 of 5,400 jets identical) |" in mlp
    assert "| AUC QKeras | 0.961872 |" in mlp and "| AUC HLS C simulation | 0.961872 |" in mlp
    assert (
        "**MISMATCH**: 5,390 of 5,400 jets identical (exact fraction 0.998148), max |diff| 0.0078125;"
        in deepsets
    )
    assert "below the required hls.min_exact_fraction = 1." in deepsets
    assert "| max \\|HLS − QKeras\\| | 0.0078125 |" in deepsets
    assert "BIT-EXACT" not in deepsets.split("### Resources")[0].replace("BIT-EXACT or", "")


def test_resources_sources_and_utilization(report):
    _, md, _ = report
    # Per layer: every figure names its source, and the estimator's figures say 'estimate'.
    assert _row(md, "dense_0")[0][:9] == [
        "dense_0", "QDense", "12,000", "6,400", "96", "0", "4", "1,248", "estimate (hls4ml-mult-count)"
    ]  # fmt: skip
    totals = _row(md, "estimate (hls4ml-mult-count)")
    assert totals[0] == [
        "estimate (hls4ml-mult-count)", "17,280", "9,512", "112", "0", "0", "9", "45", "1", "1,536 (112 DSP / 1,424 LUT)"
    ]  # fmt: skip
    # Utilization: 17,280 of 1,728,000 LUT is 1.0%; 9,512 of 3,456,000 FF is 0.28%.
    assert totals[1] == ["estimate (hls4ml-mult-count)", "1.0%", "0.28%", "0.91%", "0.0%", "0.0%"]
    assert "| source | LUT (of 1,728,000) | FF (of 3,456,000) | DSP (of 12,288) |" in md
    # deepsets: the estimate, the vendor HLS report and post-synthesis side by side, each labelled.
    vendor = _row(md, "vendor HLS estimate")
    assert vendor[0] == [
        "vendor HLS estimate",
        "432,000",
        "150,000",
        "2,100",
        "0",
        "0",
        "40",
        "200",
        "1",
        "n/a",
    ]
    assert vendor[1] == ["vendor HLS estimate", "25.0%", "4.3%", "17.1%", "0.0%", "0.0%"]
    synth = _row(md, "vendor post-synthesis")
    assert synth[0] == [
        "vendor post-synthesis",
        "216,000",
        "141,000",
        "2,100",
        "0",
        "0",
        "n/a",
        "n/a",
        "n/a",
        "n/a",
    ]
    assert synth[1] == ["vendor post-synthesis", "12.5%", "4.1%", "17.1%", "0.0%", "0.0%"]
    assert _row(md, "estimate (hls4ml-mult-count)")[3][1] == "14.5%"


def test_budget_tables(report):
    _, md, html = report
    assert "| latency_ns | 45 | 150 | ns | estimate | PASS |" in md
    assert "| lut | 17,280 | 172,800 | LUT | estimate | PASS |" in md
    assert "| latency_ns | 200 | 150 | ns | vendor HLS estimate | FAIL |" in md
    assert "| ii_cycles | 1 | 5 | cycles | vendor HLS estimate | PASS |" in md
    assert "| lut | 216,000 | 172,800 | LUT | vendor post-synthesis | FAIL |" in md
    assert "| dsp | 2,100 | 2,457 | DSP | vendor post-synthesis | PASS |" in md
    assert "**Budget verdict: PASS** (profile `l1_jet_tagger_vu13p`)" in md
    assert (
        "**Budget verdict: FAIL** (profile `l1_jet_tagger_vu13p`): latency_ns = 200 ns > limit 150 ns "
        "(vendor HLS estimate); lut = 216,000 LUT > limit 172,800 LUT (vendor post-synthesis)"
    ) in md
    assert html.count('<tr class="fail">') == 2 + 1  # two FAIL budget rows + the deepsets summary row


def test_precision_table(report):
    _, md, _ = report
    assert "| layer | weight | bias | accum | result |" in md
    assert _row(md, "dense_0")[1] == [
        "dense_0",
        "ap_fixed<8,2>",
        "ap_fixed<8,4>",
        "ap_fixed<24,10>",
        "ap_fixed<24,10>",
    ]
    assert _row(md, "pool")[1] == ["pool", "-", "-", "ap_fixed<24,12>", "ap_fixed<16,6>"]
    assert _row(md, "relu_0")[1] == ["relu_0", "-", "-", "-", "ap_ufixed<8,3>"]


def test_plots_and_self_contained_html(report):
    cfg, md, html = report
    plots = cfg.firmware / "report_plots"
    pngs = sorted(p.name for p in plots.glob("*.png"))
    assert pngs == [
        "deepsets_latency.png",
        "deepsets_resources.png",
        "mlp_csim_roc.png",
        "mlp_latency.png",
        "mlp_resources.png",
    ]
    for name in pngs:
        assert (plots / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"](report_plots/{name})" in md
    assert "No deepsets/csim_outputs.npz" in md
    assert not re.search(r"https?://", html)
    assert "<link" not in html and "<script" not in html
    assert html.count('<img src="data:image/png;base64,') == len(pngs)
    assert '<h2 id="student-mlp">Student <code>mlp</code></h2>' in html
    assert "<strong>BIT-EXACT</strong>" in html
    # No temporary files left behind by the atomic writes.
    assert not [p for p in cfg.firmware.rglob(".*") if ".tmp" in p.name]


def test_missing_metrics_names_file_and_command(tmp_path):
    cfg = _config(tmp_path)
    with pytest.raises(DataError) as err:
        write_run_report(cfg, config_path="configs/ci.yaml")
    msg = str(err.value)
    assert str(cfg.artifacts / "metrics.json") in msg
    assert "make distill CONFIG=configs/ci.yaml" in msg
    assert "\n" not in msg


def test_missing_hls_report_names_file_and_command(tmp_path):
    cfg = _fixture_run(tmp_path, with_npz=False)
    (cfg.firmware / "deepsets" / "hls_report.json").unlink()
    with pytest.raises(DataError) as err:
        write_run_report(cfg)
    msg = str(err.value)
    assert str(cfg.firmware / "deepsets" / "hls_report.json") in msg
    assert "make hls CONFIG=" in msg and "\n" not in msg
    assert not (cfg.firmware / "report.md").exists()


def test_cli_report_without_inputs_exits_2_with_one_line(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text(
        f"run:\n  name: {RUN}\n  artifacts_dir: {tmp_path / 'a'}\n  firmware_dir: {tmp_path / 'f'}\n"
    )
    assert main(["report", "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    assert "metrics.json not found" in err and "make distill CONFIG=" in err


def test_broken_json_is_a_data_error(tmp_path):
    cfg = _fixture_run(tmp_path, with_npz=False)
    (cfg.artifacts / "metrics.json").write_text("{not json")
    with pytest.raises(DataError, match=r"metrics\.json is not valid JSON.*make distill CONFIG="):
        write_run_report(cfg)


def test_missing_optional_keys_show_na(tmp_path):
    cfg = _fixture_run(tmp_path, with_npz=False)
    path = cfg.firmware / "mlp" / "hls_report.json"
    report = json.loads(path.read_text())
    del (
        report["resources"]["total"]["uram"],
        report["resources"]["available"]["dsp"],
        report["csim"]["auc_hls"],
    )
    report["resources"]["layers"][1].pop("ff")
    path.write_text(json.dumps(report))
    stale = cfg.firmware / "report_plots" / "mlp_csim_roc.png"  # left by an earlier run that had csim outputs
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")
    md = write_run_report(cfg).read_text()
    assert not stale.exists()
    assert sorted(p.name for p in stale.parent.iterdir()) == [
        "deepsets_latency.png", "deepsets_resources.png", "mlp_latency.png", "mlp_resources.png"
    ]  # fmt: skip
    mlp = md[md.index("## Student `mlp`") : md.index("## Student `deepsets`")]
    assert "| AUC HLS C simulation | n/a |" in mlp
    assert _row(mlp, "dense_0")[0][3] == "n/a"
    assert _row(mlp, "estimate (hls4ml-mult-count)")[0][5] == "n/a"
    assert _row(mlp, "estimate (hls4ml-mult-count)")[1][3] == "n/a"  # DSP % without the part's DSP count


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


def test_kd_ratio_uses_the_paired_bootstrap_interval_when_recorded(tmp_path):
    cfg = _fixture_run(tmp_path, with_npz=False)
    metrics = json.loads((cfg.artifacts / "metrics.json").read_text())
    metrics["students"] = {
        "mlp": {
            "rejection_ratio_30": {"ratio": 1.234, "low": 1.1, "high": 1.4},
            "rejection_ratio_50": {"ratio": 0.987, "low": 0.91, "high": 1.05},
        }
    }
    (cfg.artifacts / "metrics.json").write_text(json.dumps(metrics))
    md = write_run_report(cfg).read_text()
    assert "**1.23 [1.10, 1.40]** at ε_S = 30%, **0.99 [0.91, 1.05]** at ε_S = 50% (68% interval" in md
    # a student without recorded intervals falls back to independent errors, and says so
    assert "as if independent" in md.split("## Student `deepsets`")[1]


def test_estimate_method_and_measured_error_are_printed(tmp_path):
    from kd_trigger.fpga.estimate import CALIBRATION

    cfg = _fixture_run(tmp_path, with_npz=False)
    path = cfg.firmware / "mlp" / "hls_report.json"
    report = json.loads(path.read_text())
    report["resources"]["method_description"] = "one multiplier per non-zero weight"
    report["resources"]["calibration"] = CALIBRATION
    path.write_text(json.dumps(report))
    md = write_run_report(cfg).read_text()
    mlp = md.split("## Student `mlp`")[1].split("## Student `deepsets`")[0]
    assert "How the estimate is computed: one multiplier per non-zero weight." in mlp
    assert "LUT 0.62 (HLS) / 1.16 (post-synthesis)" in mlp
    assert "map to DSPs" in mlp and "Read LUT figures" not in mlp
