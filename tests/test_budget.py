"""Budget profiles (configs/budget.yaml), overrides, errors, and the PASS/FAIL verdict."""

from __future__ import annotations

from pathlib import Path

import pytest

from kd_trigger.config import BudgetConfig, BudgetOverrides
from kd_trigger.errors import ConfigError
from kd_trigger.fpga.budget import check_budget, decide, load_budget
from kd_trigger.fpga.figures import DesignFigures

REPO = Path(__file__).resolve().parents[1]
PROFILES = str(REPO / "configs" / "budget.yaml")


def _cfg(**kw: object) -> BudgetConfig:
    return BudgetConfig(profiles=kw.pop("profiles", PROFILES), **kw)  # type: ignore[arg-type]


def test_default_profile_is_vu13p_at_200_mhz() -> None:
    p = load_budget(_cfg())
    assert p.name == "l1_jet_tagger_vu13p"
    assert p.part == "xcvu13p-flga2577-2-e"
    assert p.available == {"lut": 1728000, "ff": 3456000, "dsp": 12288, "bram_18k": 5376, "uram": 1280}
    assert (p.clock_period_ns, p.max_latency_ns, p.max_ii_cycles) == (5.0, 200.0, 5)
    assert p.resource_limit("lut") == 259200  # 15% of 1,728,000
    assert p.resource_limit("dsp") == 1843  # floor(0.15 * 12288 = 1843.2)
    assert p.resource_limit("bram_18k") == 537


def test_every_shipped_profile_loads() -> None:
    for name in ("l1_jet_tagger_vu13p", "l1_jet_tagger_vu9p", "development"):
        assert load_budget(_cfg(profile=name)).name == name
    assert load_budget(_cfg(profile="l1_jet_tagger_vu9p")).available["dsp"] == 6840


def test_overrides_replace_fields_and_merge_fractions() -> None:
    ov = BudgetOverrides(
        max_latency_ns=120.0, max_ii_cycles=2, part="xcvu9p-flga2104-2L-e", max_fraction={"dsp": 0.5}
    )
    p = load_budget(_cfg(overrides=ov))
    assert (p.max_latency_ns, p.max_ii_cycles, p.part) == (120.0, 2, "xcvu9p-flga2104-2L-e")
    assert p.available["lut"] == 1182240
    assert p.max_fraction["dsp"] == 0.5 and p.max_fraction["lut"] == 0.15
    assert p.resource_limit("dsp") == 3420


def _write(tmp_path: Path, text: str) -> str:
    f = tmp_path / "budget.yaml"
    f.write_text(text)
    return str(f)


GOOD = """
profiles:
  p:
    part: xcvu13p-flga2577-2-e
    clock_period_ns: 5.0
    max_latency_ns: 100
    max_ii_cycles: 1
    max_fraction: {lut: 0.1, ff: 0.1, dsp: 0.1, bram_18k: 0.1, uram: 0.1}
"""


@pytest.mark.parametrize(
    ("text", "profile", "message"),
    [
        (GOOD, "nope", "no profile 'nope' in"),
        (
            GOOD.replace("max_latency_ns: 100", "max_latency_ns: -3"),
            "p",
            "'profiles.p.max_latency_ns' (-3): Input should be greater than 0",
        ),
        (
            GOOD.replace("    max_ii_cycles: 1\n", ""),
            "p",
            "required key 'profiles.p.max_ii_cycles' is missing",
        ),
        (
            GOOD.replace("dsp: 0.1,", "dsp: -0.1,"),
            "p",
            "'profiles.p.max_fraction.dsp' (-0.1): Input should be greater than or equal to 0",
        ),
        (GOOD.replace("dsp: 0.1, ", ""), "p", "required key 'profiles.p.max_fraction.dsp' is missing"),
        (GOOD.replace("profiles:", "profiles: [oops"), "p", "not valid YAML"),
        (GOOD.replace("xcvu13p-flga2577-2-e", "xc9z999"), "p", "is not in kd_trigger/fpga/parts.py"),
        (
            GOOD.replace("    max_ii_cycles: 1\n", "    max_ii_cycles: 1\n    colour: red\n"),
            "p",
            "unknown key 'profiles.p.colour'; allowed keys here: available, clock_period_ns",
        ),
        (GOOD.replace("max_latency_ns: 100", "max_latency_ns: .inf"), "p", "Input should be a finite number"),
        (GOOD.replace("lut: 0.1,", "lut: [0.1],"), "p", "'profiles.p.max_fraction.lut' ([0.1])"),
        (GOOD + "    available: [1, 2]\n", "p", "'profiles.p.available' ([1, 2])"),
        (GOOD + "profiles: {}\n", "p", "key 'profiles' appears twice"),
        (GOOD.replace("profiles:", "- profiles:"), "p", "expected a top-level 'profiles:' mapping"),
        ("profiles: {}\n", "p", "'profiles' ({}): Dictionary should have at least 1 item"),
    ],
)
def test_profile_errors_are_one_line(tmp_path: Path, text: str, profile: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_budget(_cfg(profiles=_write(tmp_path, text), profile=profile))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_unknown_profile_lists_known_ones() -> None:
    with pytest.raises(
        ConfigError, match="known profiles: l1_jet_tagger_vu13p, l1_jet_tagger_vu9p, development"
    ):
        load_budget(_cfg(profile="atlas"))


def test_missing_profiles_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_budget(_cfg(profiles=str(tmp_path / "none.yaml")))


def test_explicit_available_for_unlisted_part(tmp_path: Path) -> None:
    text = GOOD.replace("xcvu13p-flga2577-2-e", "xcmy-part") + (
        "    available: {lut: 1000, ff: 2000, dsp: 10, bram_18k: 20, uram: 1}\n"
    )
    p = load_budget(_cfg(profiles=_write(tmp_path, text), profile="p"))
    assert p.available == {"lut": 1000, "ff": 2000, "dsp": 10, "bram_18k": 20, "uram": 1}
    assert p.resource_limit("lut") == 100


def _design(flow: str = "hls4ml", **by_source: dict) -> DesignFigures:
    figures = DesignFigures(flow)
    for source, values in by_source.items():
        figures.add(source.replace("_", " "), **values)
    return figures


def test_verdict_pass_rows() -> None:
    p = load_budget(_cfg())
    design = _design(
        estimate={
            "latency_ns": 45.0,
            "ii_cycles": 1,
            "lut": 20000,
            "ff": 3000,
            "dsp": 0,
            "bram_18k": 0,
            "uram": 0,
        }
    )
    v = check_budget(design, p).to_dict()
    assert v["profile"] == "l1_jet_tagger_vu13p"
    assert v["pass"] is True and v["violations"] == []
    assert v["flow"] == "hls4ml" and v["decided_by"] == "estimate"
    assert [r["figure"] for r in v["rows"]] == [
        "latency_ns",
        "ii_cycles",
        "lut",
        "ff",
        "dsp",
        "bram_18k",
        "uram",
    ]
    assert v["rows"][0] == {
        "figure": "latency_ns",
        "value": 45.0,
        "limit": 200.0,
        "unit": "ns",
        "source": "estimate",
        "status": "PASS",
    }
    assert all(r["status"] == "PASS" for r in v["rows"])
    assert check_budget(design, p).to_block().passed is True


def test_verdict_uses_most_trustworthy_source_and_fails() -> None:
    p = load_budget(_cfg())
    design = DesignFigures("hls4ml")
    design.add("estimate", latency_ns=150.0, ii_cycles=1, lut=300000, ff=1000, dsp=10, bram_18k=0, uram=0)
    design.add("vendor HLS estimate", latency_ns=210.0, ii_cycles=6, lut=400000, clock_period_ns=5.0)
    # The HLS estimate breaks the LUT limit, but the post-synthesis count does not: synthesis wins.
    design.add("vendor post-synthesis", lut=250000, dsp=2000)
    verdict = check_budget(design, p)
    rows = {r["figure"]: r for r in verdict.to_dict()["rows"]}
    assert verdict.passed is False
    assert rows["latency_ns"]["value"] == 210.0 and rows["latency_ns"]["status"] == "FAIL"
    assert rows["latency_ns"]["source"] == "vendor HLS estimate"
    assert rows["ii_cycles"]["status"] == "FAIL"
    assert rows["lut"] == {
        "figure": "lut",
        "value": 250000,
        "limit": 259200,
        "unit": "LUT",
        "source": "vendor post-synthesis",
        "status": "PASS",
    }
    assert rows["ff"]["source"] == "estimate"
    assert rows["dsp"]["status"] == "FAIL" and rows["dsp"]["limit"] == 1843
    assert rows["clock_period_ns"]["status"] == "PASS"
    assert verdict.violations == [
        "latency_ns = 210 ns > limit 200 ns (vendor HLS estimate)",
        "ii_cycles = 6 cycles > limit 5 cycles (vendor HLS estimate)",
        "dsp = 2000 DSP > limit 1843 DSP (vendor post-synthesis)",
    ]
    assert verdict.decided_by == "vendor post-synthesis"
    table = verdict.format_table()
    assert table.splitlines()[0] == "budget profile l1_jet_tagger_vu13p: FAIL"
    assert "vendor post-synthesis" in table and "FAIL" in table


def test_missing_figure_fails() -> None:
    design = _design(estimate={"ii_cycles": 1, "lut": 1, "ff": 1, "dsp": 1, "bram_18k": 0, "uram": 0})
    v = check_budget(design, load_budget(_cfg()))
    assert not v.passed
    assert v.violations == ["latency_ns: no figure available (limit 200 ns)"]


def test_yosys_beats_vendor_hls_and_the_better_measured_flow_decides() -> None:
    """vendor post-synthesis > yosys > vendor HLS > estimates, and a student's verdict comes from the
    design whose resources are measured by the most trustworthy source."""
    p = load_budget(_cfg())
    hls = _design(
        estimate={
            "latency_ns": 100.0,
            "ii_cycles": 4,
            "lut": 400000,
            "ff": 1,
            "dsp": 0,
            "bram_18k": 0,
            "uram": 0,
        }
    )
    rtl = DesignFigures("rtl")
    rtl.add("da4ml estimate", latency_ns=40.0, ii_cycles=1, lut=90000, ff=5000, dsp=0, bram_18k=0, uram=0)
    rtl.add("yosys synth (open-source)", lut=80000, ff=4000, dsp=0, bram_18k=0, uram=0)
    deciding, by_flow = decide([hls, rtl], p)
    assert deciding.flow == "rtl" and deciding.passed
    assert deciding.decided_by == "yosys synth (open-source)"
    assert {r.figure: r.source for r in deciding.rows}["latency_ns"] == "da4ml estimate"
    assert not by_flow["hls4ml"].passed  # 400k LUT > 15% of a VU13P
    tie, _ = decide([hls, _design("rtl", da4ml_estimate={"lut": 1})], p)
    assert tie.flow == "hls4ml"  # both fail, estimates on both sides: the hls4ml firmware decides
    # Alternatives: a fitting design beats a better-measured one that does not fit.
    big = DesignFigures("rtl")
    big.add("yosys synth (open-source)", lut=400_000, ff=1, dsp=0, bram_18k=0, uram=0)
    big.add("da4ml estimate", latency_ns=40.0, ii_cycles=1)
    small = _design(
        estimate={
            "latency_ns": 100.0,
            "ii_cycles": 4,
            "lut": 1000,
            "ff": 1,
            "dsp": 0,
            "bram_18k": 0,
            "uram": 0,
        }
    )
    fits, both = decide([small, big], p)
    assert fits.flow == "hls4ml" and fits.passed and not both["rtl"].passed


def test_vendor_figures_from_report_fixture() -> None:
    from kd_trigger.fpga.reports import read_report_path

    report = read_report_path(REPO / "tests/fixtures/reports/vivado_hls_2019_jet")
    design = _design(
        estimate={"lut": 1, "ff": 2, "dsp": 3, "bram_18k": 0, "uram": 0, "latency_ns": 40.0, "ii_cycles": 1}
    )
    design.add(
        "vendor HLS estimate", latency_ns=report["latency_ns"], ii_cycles=report["ii_cycles"], **report["hls"]
    )
    design.add("vendor post-synthesis", **{k: v for k, v in report["synth"].items() if isinstance(v, int)})
    assert design.best("lut") == (60597, "vendor post-synthesis")
    assert design.best("latency_ns") == (50.0, "vendor HLS estimate")
    v = check_budget(design, load_budget(_cfg(profile="l1_jet_tagger_vu9p")))
    assert [r.figure for r in v.rows if r.status == "FAIL"] == ["dsp"]


def test_hls_with_unknown_profile_fails_before_any_work(tmp_path, make_config, capsys) -> None:
    from kd_trigger.cli import main

    path = make_config(budget={"profile": "nosuch"})
    assert main(["hls", "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "no profile 'nosuch'" in err and "l1_jet_tagger_vu13p" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "artifacts").exists() and not (tmp_path / "firmware").exists()


def test_a_folded_rtl_design_above_the_budget_ii_fails_on_its_ii() -> None:
    """The RTL block of a folded design (rtl_report.json's ii_cycles and latency) decides the II check:
    II 4 passes, II 6 (built on request) fails like any other figure over budget."""
    from types import SimpleNamespace

    from kd_trigger.contracts import Da4mlEstimateBlock, RtlBlock, YosysBlock
    from kd_trigger.fpga.figures import rtl_figures

    p = load_budget(_cfg())
    for ii, passed in ((4, True), (6, False)):
        rtl = RtlBlock.model_construct(
            latency_cycles=13 + ii,
            latency_ns=5.0 * (13 + ii),
            ii_cycles=ii,
            clock_period_ns=5.0,
            da4ml_estimate=Da4mlEstimateBlock.model_construct(lut=1000, ff=100),
            yosys=YosysBlock.model_construct(lut=900, ff=90, dsp=0, bram_18k=0.0, uram=0),
        )
        figures = rtl_figures(SimpleNamespace(rtl=rtl))  # type: ignore[arg-type]
        assert figures is not None
        verdict = check_budget(figures, p)
        assert verdict.passed is passed
        if not passed:
            assert verdict.violations == ["ii_cycles = 6 cycles > limit 5 cycles (da4ml estimate)"]
