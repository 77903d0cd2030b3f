"""`kd-trigger fpga-report PATH` (JSON figures on stdout, exit 2 and one line on bad input) and the
vendor-synthesis entry point when the tools are missing."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from kd_trigger.cli import main
from kd_trigger.config import HlsConfig
from kd_trigger.fpga.synth import find_vendor_tool, run_vendor_synthesis

FIX = Path(__file__).parent / "fixtures" / "reports"


def test_fpga_report_prints_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fpga-report", str(FIX / "vivado_hls_2019_jet")]) == 0
    fig = json.loads(capsys.readouterr().out)
    for key in (
        "latency_cycles",
        "latency_ns",
        "ii_cycles",
        "clock_period_ns",
        "part",
        "hls",
        "synth",
        "available",
    ):
        assert key in fig
    assert fig["latency_cycles"] == 10 and type(fig["latency_cycles"]) is int
    assert fig["latency_ns"] == 50.0 and type(fig["latency_ns"]) is float
    assert fig["hls"] == {"lut": 112473, "ff": 15168, "dsp": 3317, "bram_18k": 4, "uram": 0}
    assert all(type(v) is int for v in fig["available"].values())
    assert fig["synth"]["lut"] == 60597


def test_fpga_report_part_option(capsys: pytest.CaptureFixture[str]) -> None:
    path = FIX / "loose" / "design_1_wrapper_utilization_placed.rpt"
    assert main(["fpga-report", str(path), "--part", "xc7z020clg400-1"]) == 0
    fig = json.loads(capsys.readouterr().out)
    assert fig["part"] == "7z020clg400-1"
    assert fig["synth"]["bram_18k"] == 14


@pytest.mark.parametrize(
    "bad", ["broken/truncated_csynth.xml", "broken/empty_dir", "broken/unknown_format.rpt"]
)
def test_fpga_report_bad_input_exit_2(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fpga-report", str(FIX / bad)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("kd-trigger fpga-report: error: ")
    assert bad.split("/")[-1] in lines[0]


# --- vendor synthesis (kd_trigger.fpga.synth): tool detection and the missing-tool path ---------------


def _fake_tool(bin_dir: Path, name: str) -> Path:
    """An executable used ONLY to test PATH detection; it is never run."""
    bin_dir.mkdir(exist_ok=True)
    exe = bin_dir / name
    exe.write_text("#!/bin/sh\nexit 1\n")
    exe.chmod(0o755)
    return exe


def test_missing_tool_logs_one_line_and_returns_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    caplog.set_level(logging.INFO, logger="kd_trigger")
    # hls_model is never touched when the tool is missing.
    assert run_vendor_synthesis(None, HlsConfig(synth=True), tmp_path) is None
    records = [r for r in caplog.records if r.name.startswith("kd_trigger.fpga")]
    assert len(records) == 1
    msg = records[0].getMessage()
    assert "vitis-run" in msg and "not on PATH" in msg and "estimates" in msg
    assert "\n" not in msg


def test_vivado_backend_names_vivado_hls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    caplog.set_level(logging.INFO, logger="kd_trigger")
    assert run_vendor_synthesis(None, HlsConfig(synth=True, backend="Vivado"), tmp_path) is None
    assert "vivado_hls (Vivado backend) is not on PATH" in caplog.records[-1].getMessage()


def test_legacy_vitis_hls_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _fake_tool(tmp_path / "bin", "vitis_hls")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    caplog.set_level(logging.INFO, logger="kd_trigger")
    assert run_vendor_synthesis(None, HlsConfig(synth=True), tmp_path) is None
    assert (
        "vitis_hls is there, but hls4ml 1.3's Vitis backend calls vitis-run"
        in caplog.records[-1].getMessage()
    )


def test_synthesis_not_requested(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="kd_trigger")
    assert run_vendor_synthesis(None, HlsConfig(synth=False), tmp_path) is None
    assert "not requested" in caplog.records[-1].getMessage()


def test_tool_detection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    assert find_vendor_tool("Vitis") is None and find_vendor_tool("Vivado") is None
    vitis = _fake_tool(tmp_path / "bin", "vitis-run")
    vivado = _fake_tool(tmp_path / "bin", "vivado_hls")
    assert find_vendor_tool("Vitis") == str(vitis)
    assert find_vendor_tool("Vivado") == str(vivado)
    (tmp_path / "bin" / "vitis-run").chmod(0o644)  # not executable: not a tool
    assert find_vendor_tool("Vitis") is None
