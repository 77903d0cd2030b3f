"""The scan over the cost levers (issue 21): the lever axes applied to the planned students, the bad
axes refused at planning (exit 2, one line naming the key), and the KD saving read off two fronts."""

from __future__ import annotations

import pytest

from kd_trigger.cli import main
from kd_trigger.config import parse_config
from kd_trigger.errors import ConfigError
from kd_trigger.scan_fronts import best_objective_at, front, gains_over_seeds, kd_gains, least_lut_for
from kd_trigger.scan_points import plan_points


def test_lever_axes_set_the_planned_students() -> None:
    axes = {"deepsets": {"late_weight_bits": [4], "sparsity": [0.0, 0.75], "ii_cycles": [2, 4]}}
    points = plan_points(parse_config({"scan": {"axes": axes}}))
    assert [p.spec["name"] for p in points] == [
        "deepsets-l4-s0-k2",
        "deepsets-l4-s0-k4",
        "deepsets-l4-s0p75-k2",
        "deepsets-l4-s0p75-k4",
    ]
    assert [(p.spec["sparsity"], p.spec["ii_cycles"]) for p in points] == [
        (0.0, 2),
        (0.0, 4),
        (0.75, 2),
        (0.75, 4),
    ]
    # late_weight_bits: every weight layer after the first, the first keeps the student's weight_bits
    spec = points[0].spec
    assert spec["quant"]["weight_bits"] == 8
    set_fields = {
        layer: {k: v for k, v in e.items() if v is not None} for layer, e in spec["quant"]["layers"].items()
    }
    assert set_fields == {
        "phi_1": {"weight_bits": 4},
        "rho_0": {"weight_bits": 4},
        "output": {"weight_bits": 4},
    }
    assert len({p.key for p in points}) == 4
    # widths and the flow on an MLP: late layers follow the scanned hidden widths
    mlp = {"mlp": {"hidden": [[16], [16, 8]], "late_weight_bits": [3], "flow": ["rtl"]}}
    planned = plan_points(parse_config({"scan": {"axes": mlp}}))
    assert [sorted(p.spec["quant"]["layers"]) for p in planned] == [["output"], ["dense_1", "output"]]
    assert [p.flow for p in planned] == ["rtl", "rtl"]


def test_lhs_over_lever_axes_uses_every_level() -> None:
    axes = {
        "deepsets": {"sparsity": [0.0, 0.5, 0.75], "ii_cycles": [1, 2, 4], "flow": ["hls4ml", "rtl", "rtl"]}
    }
    raw = {"scan": {"axes": axes, "mode": "lhs", "points": 3, "seed": 2}}
    points = plan_points(parse_config(raw))
    assert sorted(p.spec["sparsity"] for p in points) == [0.0, 0.5, 0.75]
    assert sorted(p.spec["ii_cycles"] for p in points) == [1, 2, 4]


@pytest.mark.parametrize(
    ("scan", "message"),
    [
        (
            {"axes": {"mlp": {"ii_cycles": [2]}}},
            "scan.axes.mlp.ii_cycles: a mlp student has no ii_cycles lever (only deepsets); drop the axis",
        ),
        (
            {"axes": {"mlp": {"head": [[8]]}}},
            "scan.axes.mlp.head: a mlp student has no head lever (only deepsets); drop the axis",
        ),
        (
            {"axes": {"mlp": {"weight_bits": [4, 8]}}, "mode": "random", "points": 3},
            "scan.points: random sampling asks 3 points, but the grid of scan.axes.mlp holds 2; ask at most 2 "
            "or use mode grid",
        ),
        (
            {"axes": {"mlp": {"weight_bits": [4, 8]}}, "mode": "lhs", "points": 5},
            "scan.points: lhs sampling asks 5 points, but the grid of scan.axes.mlp holds 2; ask at most 2 "
            "or use mode grid",
        ),
        (
            {"axes": {"deepsets": {"ii_cycles": [64]}}},
            "scan.axes.deepsets: the point ii_cycles=64 makes an invalid student (ii_cycles: ii_cycles 64 is "
            "above n_particles (16): at most one particle per cycle)",
        ),
    ],
)
def test_bad_scan_axes_are_refused_at_planning(scan, message) -> None:
    with pytest.raises(ConfigError) as err:
        plan_points(parse_config({"scan": scan}))
    assert str(err.value) == message


@pytest.mark.parametrize(
    ("axes", "fragment"),
    [
        ({"mlp": {"ii_cycles": [2]}}, "scan.axes.mlp.ii_cycles: a mlp student has no ii_cycles lever"),
        ({"mlp": {"sparsity": []}}, "'scan.axes.mlp.sparsity'"),
        ({"deepsets": {"late_weight_bits": []}}, "'scan.axes.deepsets.late_weight_bits'"),
    ],
)
def test_bad_scan_axes_exit_2_with_one_line(tmp_path, capsys, axes, fragment) -> None:
    import yaml

    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"run": {"name": "bad"}, "scan": {"axes": axes}}))
    assert main(["scan", "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0] and err[0].startswith("kd-trigger scan: error:")
    assert not (tmp_path / "artifacts").exists()


def test_status_of_the_scan_refuses_what_the_scan_refuses(tmp_path, capsys) -> None:
    """'status --target scan' plans the points: it never calls a config valid that 'scan' refuses."""
    import yaml

    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"run": {"name": "bad"}, "scan": {"axes": {"mlp": {"ii_cycles": [2]}}}}))
    assert main(["status", "--config", str(path), "--target", "scan"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("kd-trigger status: error: scan.axes.mlp.ii_cycles: a mlp")


def test_front_and_its_stepwise_readings() -> None:
    points = [(100, 10.0), (200, 30.0), (150, 5.0), (300, 25.0), (400, 40.0), (float("nan"), 99.0)]
    steps = front(points)
    assert steps == [(100.0, 10.0), (200.0, 30.0), (400.0, 40.0)]
    assert best_objective_at(steps, 99) is None
    assert best_objective_at(steps, 250) == 30.0
    assert least_lut_for(steps, 30.0) == 200.0
    assert least_lut_for(steps, 31.0) == 400.0
    assert least_lut_for(steps, 41.0) is None


def test_kd_gains_at_equal_objective_and_equal_lut() -> None:
    baseline = [(100, 10.0), (200, 20.0), (400, 30.0)]
    kd = [(50, 10.0), (100, 20.0), (300, 35.0)]
    gains = kd_gains(kd, baseline)
    assert gains["interpolation"] == "stepwise"
    # at R 10 / 20 / 30: KD needs 50 / 100 / 300 LUT against 100 / 200 / 400
    assert [r["kd_lut"] for r in gains["levels"]] == [50.0, 100.0, 300.0]
    assert [r["lut_ratio"] for r in gains["levels"]] == [0.5, 0.5, 0.75]
    assert gains["lut_ratio"] == 0.5 and gains["lut_saving"] == 0.5
    # within 100 / 200 / 400 LUT: KD reaches 20 / 20 / 35 against 10 / 20 / 30
    assert [r["objective_ratio"] for r in gains["levels"]] == [2.0, 1.0, 35.0 / 30.0]
    assert gains["objective_ratio"] == 35.0 / 30.0
    # a level KD does not reach gives no reading
    short = kd_gains([(300, 15.0)], baseline)
    assert [r["lut_ratio"] for r in short["levels"]] == [3.0, None, None]
    assert [r["objective_ratio"] for r in short["levels"]] == [None, None, 0.5]
    assert (short["n_lut_readings"], short["n_objective_readings"]) == (1, 1)
    assert kd_gains([], baseline)["lut_saving"] is None


def test_gains_over_seeds_give_median_and_spread() -> None:
    baseline = [(100, 10.0), (200, 20.0)]
    per_seed = [
        ([(50, 10.0), (100, 20.0)], baseline),  # lut ratios 0.5, 0.5 -> saving 0.5; objective 2.0, 1.0 -> 1.5
        ([(100, 10.0), (200, 20.0)], baseline),  # equal fronts: saving 0, ratio 1
        ([(75, 10.0), (150, 20.0)], baseline),  # 0.75, 0.75 -> saving 0.25; objective 1.0, 1.0 -> 1
    ]
    out = gains_over_seeds(per_seed)
    assert out["seeds"] == 3
    assert out["lut_saving"] == {"median": 0.25, "lo": 0.0, "hi": 0.5, "n": 3}
    assert out["objective_ratio"] == {"median": 1.0, "lo": 1.0, "hi": 1.5, "n": 3}


def _copy(auc: float, r30: float, lut: int, exact: bool = True) -> dict:
    return {"physics": {"auc": auc, "rejection_at_30": r30}, "figures": {"lut": lut}, "sources": {"lut": "estimate"},
            "exact": exact, "exactness": {}, "budget_pass": True}  # fmt: skip


def test_scan_json_keeps_both_copies_and_both_fronts() -> None:
    from kd_trigger.contracts import Scan, ScanPoint
    from kd_trigger.report.markdown import scan_markdown
    from kd_trigger.scan import kd_fronts

    def point(key: str, kd: dict, base: dict) -> ScanPoint:
        return ScanPoint.model_validate(
            {"key": key, "student": "mlp", "kind": "mlp", "axes": {}, **kd, "baseline": base}
        )

    points = [
        point("a", _copy(0.9, 50.0, 1000), _copy(0.85, 20.0, 1000)),
        point("b", _copy(0.92, 80.0, 4000), _copy(0.9, 40.0, 4000)),
        point(
            "c", _copy(0.93, 99.0, 8000), _copy(0.91, 60.0, 8000, exact=False)
        ),  # inexact baseline: off its front
    ]
    fronts = kd_fronts(points, "rejection_at_30")
    assert list(fronts) == ["mlp"]
    mlp = fronts["mlp"]
    assert [r["key"] for r in mlp["kd"]] == ["a", "b", "c"] and [r["key"] for r in mlp["baseline"]] == [
        "a",
        "b",
    ]
    assert [p.baseline.pareto_lut for p in points] == [True, True, False]
    # at the baseline's R30 20 / 40: KD needs 1000 / 1000 LUT (ratios 1, 0.25 -> median 0.625);
    # within 1000 / 4000 LUT KD reaches 50 / 80 (ratios 2.5, 2.0 -> median 2.25)
    assert mlp["gains"]["lut_ratio"] == 0.625 and mlp["gains"]["lut_saving"] == 0.375
    assert mlp["gains"]["objective_ratio"] == 2.25
    scan = Scan(run="r", objective="rejection_at_30", mode="grid", points=points, best="a", workers=1,
                scheduler=None, seconds=0.0, fronts=fronts)  # fmt: skip
    again = Scan.model_validate_json(scan.model_dump_json())
    assert again.points[0].baseline.physics["rejection_at_30"] == 20.0 and again.fronts == scan.fronts
    md = scan_markdown(scan)
    assert (
        "KD saves 38% of the LUT at equal rejection_at_30 (2 levels) and reaches 2.25x the baseline's "
        "rejection_at_30 at equal LUT (2 levels); stepwise readings at each baseline front point, median."
        in md
    )
    assert "| baseline | b | 40 | 4,000 |" in md and "| kd | c | 99 | 8,000 |" in md
    [row] = [line for line in md.splitlines() if line.startswith("| c ")]
    assert row.endswith("| 0.91 | 60 | 8,000 | NO |")


def test_yosys_runs_on_front_and_promoted_rtl_copies_only(tmp_path) -> None:
    """Ranked by da4ml's estimate; the copies on a front (and the promoted one) get Yosys's counts (here
    from the per-copy cache a previous Yosys run leaves), the rest keep the estimate; the ratio is stated."""
    import json

    from conftest import REPO

    from kd_trigger.contracts import ScanPoint
    from kd_trigger.fpga import SOURCE_DA4ML, SOURCE_YOSYS
    from kd_trigger.fpga.budget import load_budget
    from kd_trigger.layout import point_baseline, point_yosys
    from kd_trigger.scan import fast_vs_yosys, rank_and_measure

    cfg = parse_config(
        {
            "budget": {"profiles": str(REPO / "configs" / "budget.yaml")},
            "scan": {"objective": "rejection_at_30"},
        }
    )
    profile = load_budget(cfg.budget)

    def copy(r30: float, lut: int) -> dict:
        return {"physics": {"rejection_at_30": r30}, "figures": {"lut": lut, "ff": 10, "latency_ns": 20.0, "ii_cycles": 1},
                "sources": {"lut": SOURCE_DA4ML, "ff": SOURCE_DA4ML, "latency_ns": SOURCE_DA4ML, "ii_cycles": SOURCE_DA4ML},
                "exact": True, "exactness": {}, "budget_pass": False}  # fmt: skip

    points = [
        ScanPoint.model_validate({"key": "a", "student": "mlp", "kind": "mlp", "axes": {}, **copy(50.0, 1000), "baseline": copy(20.0, 1000)}),
        ScanPoint.model_validate({"key": "b", "student": "mlp", "kind": "mlp", "axes": {}, **copy(40.0, 3000), "baseline": copy(30.0, 3000)}),
    ]  # fmt: skip
    counts = {"ff": 12, "dsp": 0, "bram_18k": 0.0, "uram": 0, "seconds": 1.0, "family": "xcup"}
    for where, lut in (
        (tmp_path / "a", 800),
        (point_baseline(tmp_path / "a"), 1250),
        (point_baseline(tmp_path / "b"), 2000),
    ):
        where.mkdir(parents=True, exist_ok=True)
        point_yosys(where).write_text(json.dumps({"lut": lut, **counts}))
    # b's KD copy is dominated by a (worse R30, more LUT): no Yosys for it (its cache holds none: it would fail)
    best, nearest, fronts = rank_and_measure(cfg, points, profile, tmp_path)
    a, b = points
    assert a.figures["lut"] == 800 and a.sources["lut"] == SOURCE_YOSYS and a.yosys["fast_lut"] == 1000
    assert a.baseline.figures["lut"] == 1250 and b.baseline.figures["lut"] == 2000
    assert b.yosys is None and b.figures["lut"] == 3000 and b.sources["lut"] == SOURCE_DA4ML
    assert best is not None and best.key == "a" and best.budget_pass and nearest is None
    assert [r["lut"] for r in fronts["mlp"]["baseline"]] == [1250.0, 2000.0]
    summary = fast_vs_yosys(points)
    assert [r["ratio"] for r in summary["points"]] == [1.25, 0.8, 1.5]
    assert summary["median_ratio"] == 1.25 and summary["min_ratio"] == 0.8 and summary["max_ratio"] == 1.5
    assert summary["max_abs_deviation"] == 0.5
    from kd_trigger.contracts import Scan
    from kd_trigger.report.markdown import scan_markdown

    scan = Scan(run="r", objective="rejection_at_30", mode="grid", points=points, best="a", workers=1, scheduler=None,
                seconds=0.0, fronts=fronts, fast_vs_yosys=summary)  # fmt: skip
    md = scan_markdown(scan)
    assert (
        "Yosys measured 3 RTL copies (every front point and the promoted design): da4ml estimate / Yosys LUT "
        "median 1.250, min 0.800, max 1.500." in md
    )
    assert "| a | baseline | 1,000 | 1,250 | 0.800 |" in md


def test_front_designs_are_retrained_with_more_seeds() -> None:
    from kd_trigger.scan_points import plan_front_seeds

    axes = {"mlp": {"weight_bits": [3, 4, 5, 6, 8]}}
    cfg = parse_config({"scan": {"axes": axes, "front_seeds": 3, "front_points": 3}})
    points = plan_points(cfg)
    keys = [p.key for p in points]
    plan = plan_front_seeds(cfg, points, {"mlp": keys})
    # three designs spread along a five-point front: its ends and its middle
    assert list(plan) == [keys[0], keys[2], keys[4]]
    runs = plan[keys[2]]
    assert [r.seed_offset for r in runs] == [1, 2] and [r.spec for r in runs] == [points[2].spec] * 2
    assert (
        len({r.key for rs in plan.values() for r in rs} | set(keys)) == 5 + 6
    )  # every retraining its own key
    assert plan_front_seeds(cfg, points, {"mlp": keys}) == plan  # pure, stable keys
    one = parse_config({"scan": {"axes": axes, "front_seeds": 1}})
    assert plan_front_seeds(one, plan_points(one), {"mlp": keys}) == {}
    short = plan_front_seeds(cfg, points, {"mlp": keys[:2]})
    assert list(short) == keys[:2]
    # the best design of one training is retrained too when the spread did not pick it (it is promoted on
    # its median over seeds), once when it did
    assert list(plan_front_seeds(cfg, points, {"mlp": keys}, promoted=[keys[3]])) == [*plan, keys[3]]
    assert list(plan_front_seeds(cfg, points, {"mlp": keys}, promoted=[keys[4]])) == list(plan)


def test_seed_gains_over_the_retrained_front_designs() -> None:
    from kd_trigger.contracts import ScanPoint
    from kd_trigger.scan import seed_gains
    from kd_trigger.scan_points import plan_front_seeds

    cfg = parse_config({"run": {"seed": 7}, "scan": {"axes": {"mlp": {"weight_bits": [4, 8]}}, "front_seeds": 2,
                        "front_points": 2, "objective": "rejection_at_30"}})  # fmt: skip
    planned = plan_points(cfg)
    plan = plan_front_seeds(cfg, planned, {"mlp": [p.key for p in planned]})

    def copy(r30: float, lut: int) -> dict:
        return _copy(0.9, r30, lut)

    # seed 7 (the points): baseline (100, 10), (200, 20); KD (50, 10), (100, 20) -> LUT saving 0.5, ratio 1.5
    points = [
        ScanPoint.model_validate({"key": planned[0].key, "student": "mlp", "kind": "mlp", "axes": {}, **copy(10.0, 50), "baseline": copy(10.0, 100)}),
        ScanPoint.model_validate({"key": planned[1].key, "student": "mlp", "kind": "mlp", "axes": {}, **copy(20.0, 100), "baseline": copy(20.0, 200)}),
    ]  # fmt: skip
    # seed 8 (the retrainings): KD equal to the baseline -> saving 0, ratio 1
    reruns = {
        plan[planned[0].key][0].key: {**copy(10.0, 100), "baseline": copy(10.0, 100)},
        plan[planned[1].key][0].key: {**copy(20.0, 200), "baseline": copy(20.0, 200)},
    }
    out = seed_gains(cfg, points, plan, reruns)["mlp"]
    assert out["designs"] == [p.key for p in planned] and out["seeds"] == 2
    assert [(r["seed"], r["kd_lut"], r["baseline_lut"]) for r in out["rows"]] == [
        (7, 50.0, 100.0), (8, 100.0, 100.0), (7, 100.0, 200.0), (8, 200.0, 200.0)
    ]  # fmt: skip
    assert out["lut_saving"] == {"median": 0.25, "lo": 0.0, "hi": 0.5, "n": 2}
    assert out["objective_ratio"] == {"median": 1.25, "lo": 1.0, "hi": 1.5, "n": 2}
    from kd_trigger.report.markdown import seed_gain_text

    assert seed_gain_text("rejection_at_30", out) == (
        "Over 2 seeds (2 front designs retrained, fast LUT figures): LUT saving at equal rejection_at_30 "
        "25.00% [0.00, 50.00], rejection_at_30 ratio at equal LUT 1.25x [1.00, 1.50] (median [min, max])."
    )


def test_a_negative_saving_reads_as_more_lut_and_an_unmeasured_design_is_not_judged() -> None:
    from kd_trigger.contracts import BudgetBlock, Scan, ScanPoint
    from kd_trigger.report.markdown import kd_gain_text, scan_markdown

    text = kd_gain_text(
        "rejection_at_30", {"lut_saving": -1.68, "objective_ratio": None, "n_lut_readings": 1}
    )
    assert text.startswith("KD needs 168% more LUT at equal rejection_at_30 (1 levels) and reaches n/a ")

    def row(figure: str, value: float | None, status: str) -> dict:
        return {"figure": figure, "value": value, "limit": 1.0, "unit": "", "source": None, "status": status}

    def point(key: str, rows: list[dict]) -> ScanPoint:
        budget = BudgetBlock.model_validate(
            {"profile": "p", "pass": False, "violations": ["x"], "rows": rows, "flow": "rtl"}
        )
        return ScanPoint.model_validate(
            {
                "key": key,
                "student": "mlp",
                "kind": "mlp",
                "axes": {},
                **_copy(0.9, 50.0, 1000),
                "budget": budget,
                "budget_pass": False,
            }  # fmt: skip
        )

    unmeasured = point("u", [row("lut", 0.5, "PASS"), row("dsp", None, "FAIL")])
    over = point("o", [row("lut", 2.0, "FAIL"), row("dsp", None, "FAIL")])
    md = scan_markdown(Scan(run="r", objective="rejection_at_30", mode="grid", points=[unmeasured, over],
                            best=None, workers=1, scheduler=None, seconds=0.0))  # fmt: skip
    assert "0 within the budget, 1 not judged (ranked by an estimate without DSP/BRAM/URAM figures" in md
    [u] = [line for line in md.splitlines() if line.startswith("| u ")]
    [o] = [line for line in md.splitlines() if line.startswith("| o ")]
    assert "| not judged |" in u and "| FAIL |" in o


def test_the_budget_ii_limit_enters_the_point_keys() -> None:
    """A Deep Sets without its own ii_cycles is folded by the budget's II limit, so a cached point built
    under another limit (other firmware, other LUT) must not be reused."""
    axes = {"deepsets": {"late_weight_bits": [4]}}
    at_5 = plan_points(parse_config({"scan": {"axes": axes}}))
    at_2 = plan_points(parse_config({"scan": {"axes": axes}, "budget": {"overrides": {"max_ii_cycles": 2}}}))
    again = plan_points(parse_config({"scan": {"axes": axes}, "budget": {"overrides": {"max_ii_cycles": 5}}}))
    assert at_5[0].key != at_2[0].key
    assert at_5[0].key == again[0].key  # the limit itself, not whether an override is written
