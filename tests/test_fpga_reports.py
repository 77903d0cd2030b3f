"""Vendor report parsers against real report layouts (see tests/fixtures/reports/README.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kd_trigger.errors import ReportError
from kd_trigger.fpga.reports import (
    detect_format,
    parse_csynth_rpt,
    parse_csynth_xml,
    parse_utilization_rpt,
    read_report_path,
)

FIX = Path(__file__).parent / "fixtures" / "reports"
V19 = FIX / "vivado_hls_2019_jet"
V19_REPORT = V19 / "myproject_prj" / "solution1" / "syn" / "report"
V25 = FIX / "vitis_hls_2025_jet"
V25_REPORT = V25 / "myproject_prj" / "solution1" / "syn" / "report"
V24_REPORT = FIX / "vitis_hls_2024" / "myproject_prj" / "solution1" / "syn" / "report"
V20 = FIX / "vivado_hls_2020"

JET_V19_HLS = {"lut": 112473, "ff": 15168, "dsp": 3317, "bram_18k": 4, "uram": 0}
VU9P = {"lut": 1182240, "ff": 2364480, "dsp": 6840, "bram_18k": 4320, "uram": 960}


def test_vivado_hls_2019_xml() -> None:
    r = parse_csynth_xml((V19_REPORT / "myproject_csynth.xml").read_text(), "x.xml")
    assert r.tool == "Vivado HLS"
    assert r.tool_version == "2019.2.1"
    assert r.top == "myproject"
    assert r.part == "xcvu9p-flga2104-2L-e"
    assert r.clock_period_ns == 5.0
    assert r.estimated_clock_period_ns == 3.985
    assert (r.latency_best_cycles, r.latency_worst_cycles) == (10, 10)
    assert (r.interval_min_cycles, r.interval_max_cycles) == (1, 1)
    assert r.pipeline_type == "function"
    assert r.resources == JET_V19_HLS
    assert r.available == VU9P


def test_vivado_hls_2019_rpt_matches_xml() -> None:
    text = (V19_REPORT / "myproject_csynth.rpt").read_text()
    r = parse_csynth_rpt(text, "x.rpt")
    assert r.tool == "Vivado HLS"
    assert r.tool_version == "2019.2.1"
    assert r.top == "myproject"
    assert r.part == "xcvu9p-flga2104-2L-e"
    assert (r.clock_period_ns, r.estimated_clock_period_ns) == (5.0, 3.985)
    assert (r.latency_best_cycles, r.latency_worst_cycles, r.interval_min_cycles, r.interval_max_cycles) == (
        10,
        10,
        1,
        1,
    )
    assert r.pipeline_type == "function"
    assert r.resources == JET_V19_HLS
    # The "Available" row, not "Available SLR" (one of the three SLRs of the VU9P).
    assert r.available == VU9P


def test_vivado_hls_2020_rpt() -> None:
    r = parse_csynth_rpt((V20 / "myproject_prj/solution1/syn/report/myproject_csynth.rpt").read_text())
    assert r.tool_version == "2020.1"
    assert r.part == "xcvu13p-flga2577-2-e"
    assert (r.clock_period_ns, r.estimated_clock_period_ns) == (4.17, 3.65)
    assert (r.latency_best_cycles, r.latency_worst_cycles) == (7, 8)
    assert r.resources == {"lut": 20188, "ff": 5012, "dsp": 40, "bram_18k": 0, "uram": 0}
    assert r.available == {"lut": 1728000, "ff": 3456000, "dsp": 12288, "bram_18k": 5376, "uram": 1280}


def test_vitis_hls_2025_xml_and_rpt() -> None:
    x = parse_csynth_xml((V25_REPORT / "csynth.xml").read_text())
    t = parse_csynth_rpt((V25_REPORT / "myproject_csynth.rpt").read_text())
    for r in (x, t):
        assert r.tool == "Vitis HLS"
        assert r.tool_version == "2025.2"
        assert r.part == "xczu7ev-ffvc1156-2-e"
        assert (r.clock_period_ns, r.estimated_clock_period_ns) == (10.0, 7.023)
        assert (r.latency_best_cycles, r.latency_worst_cycles) == (20, 20)
        assert (r.interval_min_cycles, r.interval_max_cycles) == (7, 7)
        assert r.pipeline_type == "dataflow"
        assert r.resources == {"lut": 127264, "ff": 5127, "dsp": 3334, "bram_18k": 4, "uram": 0}
        assert r.available == {"lut": 230400, "ff": 460800, "dsp": 1728, "bram_18k": 624, "uram": 96}


def test_vitis_hls_2024_xml_and_rpt() -> None:
    x = parse_csynth_xml((V24_REPORT / "myproject_csynth.xml").read_text())
    t = parse_csynth_rpt((V24_REPORT / "myproject_csynth.rpt").read_text())
    for r in (x, t):
        assert r.tool == "Vitis HLS"
        assert r.tool_version == "2024.1"
        assert (r.clock_period_ns, r.estimated_clock_period_ns) == (5.0, 3.612)
        assert (r.latency_worst_cycles, r.interval_max_cycles) == (6, 1)
        assert r.pipeline_type == "yes"
        assert r.resources == {"lut": 23456, "ff": 3456, "dsp": 12, "bram_18k": 0, "uram": 0}
        assert r.available == {"lut": 1728000, "ff": 3456000, "dsp": 12288, "bram_18k": 5376, "uram": 1280}


def test_utilization_ultrascale_synth() -> None:
    u = parse_utilization_rpt((V19 / "vivado_synth.rpt").read_text())
    assert u.tool_version == "2019.2.1"
    assert u.part == "xcvu9pflga2104-2L"
    assert u.design_state == "Synthesized"
    # 1.5 Block RAM tiles = 3 BRAM_18K; the per-SLR table further down (all zeros) is ignored.
    assert u.resources == {"lut": 60597, "ff": 14719, "dsp": 3306, "bram_18k": 3, "uram": 0}
    assert u.available == {"lut": 1182240, "ff": 2364480, "dsp": 6840, "bram_18k": 4320, "uram": 960}


def test_utilization_with_prohibited_column() -> None:
    u = parse_utilization_rpt((V25 / "vivado_synth.rpt").read_text())
    assert u.tool_version == "2025.2"
    assert u.design_state == "Optimized"
    assert u.resources == {"lut": 136463, "ff": 9250, "dsp": 1728, "bram_18k": 4, "uram": 0}
    assert u.available == {"lut": 230400, "ff": 460800, "dsp": 1728, "bram_18k": 624, "uram": 96}


def test_utilization_7series_placed() -> None:
    u = parse_utilization_rpt((FIX / "loose" / "design_1_wrapper_utilization_placed.rpt").read_text())
    assert u.part == "7z020clg400-1"
    assert u.design_state == "Fully Placed"
    assert u.resources == {"lut": 20668, "ff": 23097, "dsp": 9, "bram_18k": 14, "uram": 0}
    assert u.available == {"lut": 53200, "ff": 106400, "dsp": 220, "bram_18k": 280, "uram": 0}


def test_read_project_directory_keeps_hls_and_synth_apart() -> None:
    fig = read_report_path(V19)
    assert fig["source"] == "vendor post-synthesis"
    assert fig["latency_cycles"] == 10 and isinstance(fig["latency_cycles"], int)
    assert fig["latency_ns"] == 50.0 and isinstance(fig["latency_ns"], float)
    assert fig["ii_cycles"] == 1
    assert fig["clock_period_ns"] == 5.0
    assert fig["part"] == "xcvu9p-flga2104-2L-e"
    assert fig["hls"] == JET_V19_HLS
    assert fig["hls_file"] == "myproject_prj/solution1/syn/report/myproject_csynth.xml"
    assert fig["hls_tool"] == "Vivado HLS 2019.2.1"
    synth = fig["synth"]
    assert {k: synth[k] for k in JET_V19_HLS} == {
        "lut": 60597,
        "ff": 14719,
        "dsp": 3306,
        "bram_18k": 3,
        "uram": 0,
    }
    assert synth["source"] == "vendor post-synthesis"
    assert fig["available"] == VU9P


def test_read_vitis_project_prefers_project_report() -> None:
    fig = read_report_path(V24_REPORT.parents[3])
    assert fig["hls_file"] == "myproject_prj/solution1/syn/report/myproject_csynth.xml"
    assert fig["latency_ns"] == 30.0
    assert fig["synth"] is None
    assert fig["source"] == "vendor HLS estimate"


def test_read_rpt_only_directory() -> None:
    fig = read_report_path(V20)
    assert fig["hls_file"].endswith("myproject_csynth.rpt")
    assert fig["latency_cycles"] == 8 and fig["latency_best_cycles"] == 7
    assert fig["latency_ns"] == pytest.approx(33.36)


def test_loose_utilization_file_uses_parts_table_for_nothing_missing() -> None:
    fig = read_report_path(FIX / "loose" / "design_1_wrapper_utilization_placed.rpt")
    assert fig["hls"] is None and fig["latency_cycles"] is None
    assert fig["synth"]["lut"] == 20668
    assert fig["available"]["dsp"] == 220


def test_part_option_fills_available_when_report_has_none(tmp_path: Path) -> None:
    xml = (V19_REPORT / "myproject_csynth.xml").read_text()
    start, end = (
        xml.index("<AvailableResources>"),
        xml.index("</AvailableResources>") + len("</AvailableResources>"),
    )
    xml = xml[:start] + xml[end:]
    xml = xml.replace("<Part>xcvu9p-flga2104-2L-e</Part>", "")
    f = tmp_path / "myproject_csynth.xml"
    f.write_text(xml)
    fig = read_report_path(f, part="xcvu13p-flga2577-2-e")
    assert fig["part"] == "xcvu13p-flga2577-2-e"
    assert fig["available"] == {"lut": 1728000, "ff": 3456000, "dsp": 12288, "bram_18k": 5376, "uram": 1280}
    assert fig["available_source"] == "kd_trigger.fpga.parts"


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("broken/truncated_csynth.xml", "not well-formed XML"),
        ("broken/no_tables_csynth.rpt", "'Utilization Estimates' section is missing"),
        ("broken/unknown_format.rpt", "unknown report format"),
        ("broken/empty_dir", "no report found"),
        ("broken/no_top", "2 csynth reports and none named after the project"),
        ("broken/does_not_exist", "no such file or directory"),
    ],
)
def test_bad_input_is_one_line_report_error(path: str, message: str) -> None:
    with pytest.raises(ReportError) as info:
        read_report_path(FIX / path)
    text = str(info.value)
    assert message in text
    assert "\n" not in text
    assert str(FIX / path).split("/")[-1] in text


def test_rpt_missing_latency_table() -> None:
    text = (V19_REPORT / "myproject_csynth.rpt").read_text()
    cut = text.replace("|       10|       10| 50.000 ns | 50.000 ns |    1|    1| function |", "")
    with pytest.raises(ReportError, match="latency summary table has no data row"):
        parse_csynth_rpt(cut, "cut.rpt")


def test_xml_missing_resources() -> None:
    text = (V19_REPORT / "myproject_csynth.xml").read_text().replace("<LUT>112473</LUT>", "")
    with pytest.raises(ReportError, match="AreaEstimates/Resources has no LUT element"):
        parse_csynth_xml(text, "x.xml")


def test_utilization_truncated() -> None:
    text = (V19 / "vivado_synth.rpt").read_text()
    cut = text[: text.index("2. BLOCKRAM\n---")]
    with pytest.raises(ReportError, match="no 'Block RAM Tile', 'DSPs' row"):
        parse_utilization_rpt(cut, "u.rpt")


def test_detect_format() -> None:
    assert detect_format((V19 / "vivado_synth.rpt").read_text()) == "utilization"
    assert detect_format((V19_REPORT / "myproject_csynth.rpt").read_text()) == "csynth_rpt"
    assert detect_format((V25_REPORT / "csynth.xml").read_text()) == "csynth_xml"
    assert detect_format("hello") == "unknown"


def test_reports_of_different_projects_are_never_merged(tmp_path) -> None:
    import shutil

    from kd_trigger.errors import ReportError
    from kd_trigger.fpga.reports import read_report_path

    fixtures = Path(__file__).parent / "fixtures" / "reports"
    # two whole projects side by side: two top-level csynth reports
    shutil.copytree(fixtures / "vivado_hls_2019_jet", tmp_path / "two" / "a")
    shutil.copytree(fixtures / "vitis_hls_2024", tmp_path / "two" / "b")
    with pytest.raises(ReportError, match=r"2 C-synthesis reports from different projects"):
        read_report_path(tmp_path / "two")
    # one project's C synthesis beside another project's Vivado synthesis
    shutil.copytree(fixtures / "vitis_hls_2024", tmp_path / "mixed" / "a")
    (tmp_path / "mixed" / "b").mkdir()
    shutil.copy(fixtures / "vivado_hls_2019_jet" / "vivado_synth.rpt", tmp_path / "mixed" / "b")
    with pytest.raises(ReportError, match=r"belong to different projects"):
        read_report_path(tmp_path / "mixed")
