"""The design scan: planning and the Pareto front by hand; on Dask, a 4-point scan of the CI config on a
2-worker LocalCluster, resumed after a killed worker and after a killed scan; a budget nothing fits."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from kd_trigger.cli import main
from kd_trigger.config import load_config, parse_config
from kd_trigger.contracts import Scan, ScanPoint
from kd_trigger.errors import ConfigError
from kd_trigger.report.markdown import scan_markdown
from kd_trigger.scan_points import plan_points
from kd_trigger.stats import choose_best, pareto_front, promote_by_kind, promoted_best


def test_pareto_front_against_a_hand_made_set() -> None:
    # (physics up, LUT down): b beats a (better, cheaper); c is best physics; d is cheapest; e ties d.
    points = [
        (0.90, 500),
        (0.92, 400),
        (0.95, 900),
        (0.80, 100),
        (0.80, 100),
        (0.70, 200),
        (float("nan"), 50),
    ]
    assert pareto_front(points, (True, False)) == [False, True, True, True, True, False, False]
    three = [(0.9, 100, 50.0), (0.9, 100, 40.0), (0.95, 200, 60.0)]
    assert pareto_front(three, (True, False, False)) == [False, True, True]


def test_grid_and_lhs_plans() -> None:
    raw = {"scan": {"axes": {"mlp": {"weight_bits": [4, 6, 8], "reuse_factor": [1, 2]}}}}
    grid = plan_points(parse_config(raw))
    assert [(p.axes["weight_bits"], p.reuse_factor) for p in grid] == [
        (4, 1),
        (4, 2),
        (6, 1),
        (6, 2),
        (8, 1),
        (8, 2),
    ]
    assert grid[0].spec["quant"]["weight_bits"] == 4 and grid[0].spec["name"] == "mlp-w4"
    assert len({p.key for p in grid}) == 6
    raw["scan"].update(mode="lhs", points=3, seed=1)
    lhs = plan_points(parse_config(raw))
    assert sorted(p.axes["weight_bits"] for p in lhs) == [4, 6, 8]  # every level once: a Latin hypercube
    assert plan_points(parse_config(raw)) == lhs  # seeded
    # Any change of what a point depends on changes its key (the cache never serves a stale result).
    other = plan_points(parse_config({**raw, "distill": {"epochs": 3}}))
    assert {p.key for p in other}.isdisjoint({p.key for p in lhs})
    with pytest.raises(ConfigError, match="scan.axes is empty"):
        plan_points(parse_config({"scan": {"axes": {}}}))
    # The default scan: the cost levers around the deployed students, RTL flow, 4 points per kind.
    default = plan_points(parse_config({}))
    assert {p.flow for p in default} == {"rtl"}
    assert {(p.axes["sparsity"], p.axes["weight_bits"]) for p in default if p.student == "mlp"} == {
        (s, b) for s in (0.75, 0.9) for b in (6, 8)
    }
    assert {(p.axes["late_weight_bits"], p.axes["sparsity"]) for p in default if p.student == "deepsets"} == {
        (b, s) for b in (4, 6) for s in (0.0, 0.5)
    }


def test_random_plan_is_a_seeded_subset_of_the_grid() -> None:
    axes = {"mlp": {"weight_bits": [4, 5, 6, 7, 8], "reuse_factor": [1, 2, 4]}}
    raw = {"scan": {"axes": axes, "mode": "random", "points": 6, "seed": 3}}
    grid = {
        (p.axes["weight_bits"], p.reuse_factor) for p in plan_points(parse_config({"scan": {"axes": axes}}))
    }
    chosen = plan_points(parse_config(raw))
    pairs = [(p.axes["weight_bits"], p.reuse_factor) for p in chosen]
    assert len(pairs) == len(set(pairs)) == 6 and set(pairs) <= grid
    assert pairs == sorted(pairs)  # drawn without replacement, kept in grid order
    assert plan_points(parse_config(raw)) == chosen  # seeded
    draws = {
        tuple((p.axes["weight_bits"], p.reuse_factor) for p in plan_points(parse_config({"scan": {**raw["scan"], "seed": seed}})))
        for seed in range(6)
    }  # fmt: skip
    assert len(draws) > 1  # the seed chooses
    # as many points as the grid has: the whole grid once (more is refused: tests/test_scan_levers.py)
    every = plan_points(parse_config({"scan": {**raw["scan"], "points": 15}}))
    assert {(p.axes["weight_bits"], p.reuse_factor) for p in every} == grid and len(every) == 15


def test_the_flow_axis_makes_distinct_points_per_flow() -> None:
    axes = {"mlp": {"weight_bits": [4, 6], "flow": ["hls4ml", "rtl"]}}
    points = plan_points(parse_config({"scan": {"axes": axes}}))
    assert sorted((p.axes["weight_bits"], p.flow) for p in points) == [
        (4, "hls4ml"),
        (4, "rtl"),
        (6, "hls4ml"),
        (6, "rtl"),
    ]
    assert len({p.key for p in points}) == 4  # the flow is part of what a cached result is keyed by
    # without the axis, every point uses the first configured flow
    only = plan_points(
        parse_config({"scan": {"axes": {"mlp": {"weight_bits": [4]}}}, "hls": {"flows": ["rtl"]}})
    )
    assert [p.flow for p in only] == ["rtl"]


def test_a_point_that_errors_is_kept_with_its_error_and_cached(tmp_path, monkeypatch) -> None:
    """A refused design is a result, not a crash: its error is recorded, cached like any point (a rerun
    does not rebuild it), and it renders as ERROR in scan.md without blocking the others."""
    import kd_trigger.scan_points as scan_module
    from kd_trigger.errors import ModelError

    cfg = parse_config({"scan": {"axes": {"mlp": {"weight_bits": [4]}}}})
    [point] = plan_points(cfg)
    calls = []

    def refuse(cfg, point, out):
        calls.append(point.key)
        (out / "half-written").write_text("x")
        raise ModelError("layer dense_0: refused, an accumulator wider than 64 bits")

    monkeypatch.setattr(scan_module, "_build_point", refuse)
    task = {"config": cfg.to_dict(), "point": dataclasses.asdict(point), "cache": str(tmp_path)}
    result = scan_module.evaluate_point(task)
    assert result["error"] == "layer dense_0: refused, an accumulator wider than 64 bits"
    assert result["exact"] is False and result["project"] is None and result["key"] == point.key
    assert sorted(p.name for p in tmp_path.iterdir()) == [point.key]  # no staging left
    assert scan_module.evaluate_point(task) == result and calls == [point.key]  # cached, not rebuilt
    errored = ScanPoint.model_validate({**result, "budget_pass": False})
    ok = _point("ok", 0.9, [("lut", 1.0, 2.0)])
    assert choose_best([errored, ok], "auc")[0].key == "ok"
    md = scan_markdown(
        Scan(
            run="r",
            objective="auc",
            mode="grid",
            points=[errored, ok],
            best="ok",
            workers=1,
            scheduler=None,
            seconds=0.0,
        )
    )
    [row] = [line for line in md.splitlines() if line.startswith(f"| {point.key} ")]
    assert "| ERROR | FAIL |" in row


def _point(key: str, auc: float | None, rows: list[tuple[str, float | None, float]], **extra) -> ScanPoint:
    """A scan point with its budget rows (figure, value, limit); it passes when every value is within."""
    budget_rows = [
        {"figure": f, "value": v, "limit": lim, "unit": "", "source": "estimate",
         "status": "ok" if v is not None and v <= lim else "over"}
        for f, v, lim in rows
    ]  # fmt: skip
    passed = all(r["status"] == "ok" for r in budget_rows)
    violations = [f"{r['figure']} {r['value']} > {r['limit']}" for r in budget_rows if r["status"] != "ok"]
    return ScanPoint.model_validate(
        {"key": key, "student": "mlp", "kind": "mlp", "axes": {"k": key}, "physics": {"auc": auc},
         "figures": {}, "sources": {}, "exact": True, "exactness": {}, "budget_pass": passed,
         "budget": {"profile": "p", "pass": passed, "violations": violations, "rows": budget_rows}} | extra
    )  # fmt: skip


def test_the_best_is_the_highest_objective_among_exact_error_free_points_in_budget() -> None:
    fits = [("lut", 90.0, 100.0), ("latency_ns", 10.0, 10.0)]
    points = [
        _point("ok-low", 0.80, fits),
        _point("ok-high", 0.90, fits),
        _point("over", 0.99, [("lut", 101.0, 100.0)]),  # better physics, out of budget
        _point("inexact", 0.98, fits, exact=False),  # in budget but not bit-exact
        _point("errored", 0.97, fits, error="refused: unsupported layer"),
        _point("zero", 0.0, fits),
    ]
    best, nearest = choose_best(points, "auc")
    assert best is not None and best.key == "ok-high" and nearest is None
    assert choose_best([_point("zero", 0.0, fits), _point("none", None, fits)], "auc")[0].key == "zero"
    # equal physics (two reuse factors of one trained student): the fewest LUT, then the lowest latency
    tied = [
        _point("more-lut", 0.9, fits, figures={"lut": 900.0, "latency_ns": 10.0}),
        _point("less-lut", 0.9, fits, figures={"lut": 500.0, "latency_ns": 20.0}),
        _point("less-lut-faster", 0.9, fits, figures={"lut": 500.0, "latency_ns": 15.0}),
        _point("no-lut", 0.9, fits),
    ]
    assert choose_best(tied, "auc")[0].key == "less-lut-faster"


def test_each_kind_promotes_the_best_median_over_seeds_of_its_retrained_designs_in_budget() -> None:
    """The default scan's MLP case: 75% pruned won its one training (94 vs 92) but 90% pruned wins over
    three seeds (median 92 vs 83); a kind with no retrained design in budget keeps its one training."""
    fits = [("lut", 90.0, 100.0)]

    def design(key: str, kind: str, r30: float, lut: int, **extra) -> ScanPoint:
        p = _point(key, 0.9, fits, figures={"lut": lut, "latency_ns": 40.0}, **extra)
        return p.model_copy(update={"kind": kind, "student": kind, "physics": {"rejection_at_30": r30}})

    points = [
        design("mlp-75", "mlp", 94.0, 64_985),
        design("mlp-90", "mlp", 92.0, 31_632),
        design("mlp-90-6b", "mlp", 77.0, 24_962),
        design("mlp-over", "mlp", 120.0, 200_000, budget_pass=False),  # retrained, out of budget
        design("ds-a", "deepsets", 385.0, 64_887),
        design("ds-b", "deepsets", 290.0, 45_420),
    ]
    per_seed = {
        "mlp-75": [94.0, 83.0, 78.0],
        "mlp-90": [92.0, 101.0, 87.0],
        "mlp-90-6b": [77.0, 79.0, 86.0],
        "mlp-over": [120.0, 130.0, 125.0],
    }
    promoted = promote_by_kind(points, "rejection_at_30", per_seed)
    assert promoted == {
        "deepsets": {"key": "ds-a", "objective": 385.0, "per_seed": [385.0], "rule": "one training"},
        "mlp": {"key": "mlp-90", "objective": 92.0, "per_seed": [92.0, 101.0, 87.0],
                "rule": "median over 3 seeds"},
    }  # fmt: skip
    assert choose_best(points, "rejection_at_30")[0].key == "ds-a"  # one training: the 75% MLP beat 90%
    assert choose_best([p for p in points if p.kind == "mlp"], "rejection_at_30")[0].key == "mlp-75"
    assert promoted_best(points, promoted).key == "ds-a"
    # equal medians: the fewer LUT wins, as for one training
    assert (
        promote_by_kind(points, "rejection_at_30", {"mlp-75": [92.0], "mlp-90": [92.0]})["mlp"]["key"]
        == "mlp-90"
    )
    md = scan_markdown(
        Scan(run="r", objective="rejection_at_30", mode="grid", points=points, best="ds-a", workers=1,
             scheduler=None, seconds=0.0, promoted=promoted)
    )  # fmt: skip
    assert (
        "| mlp | mlp-90 | k=mlp-90 | 92 / 101 / 87 | 92 (median over 3 seeds) | 31,632 | - | 40 | - |" in md
    )
    assert "| deepsets | ds-a | k=ds-a | 385 | 385 (one training) | 64,887 |" in md
    assert "| **mlp-90** |" in md and "| **ds-a** |" in md and "| mlp-75 |" in md


def test_the_nearest_miss_is_the_point_with_the_smallest_worst_overshoot() -> None:
    """Points breaking different limits by different amounts: the worst value/limit ratio ranks them."""
    points = [
        _point("lut-x1.5", 0.9, [("lut", 150.0, 100.0), ("latency_ns", 5.0, 10.0)]),
        _point("latency-x1.1", 0.8, [("lut", 50.0, 100.0), ("latency_ns", 11.0, 10.0)]),
        _point("both-x1.05-x1.3", 0.95, [("lut", 105.0, 100.0), ("latency_ns", 13.0, 10.0)]),
        _point("dsp-x1.2", 0.85, [("dsp", 120.0, 100.0)]),
        _point("no-figure", 0.99, [("lut", None, 100.0)]),
        _point("errored", 0.99, [], error="failed", budget=None, budget_pass=False),
    ]
    best, nearest = choose_best(points, "auc")
    assert best is None and nearest is not None
    assert nearest["key"] == "latency-x1.1" and nearest["violations"] == ["latency_ns 11.0 > 10.0"]
    # without it, the next is the dsp point (1.2 beats 1.3 and 1.5), not the one with the best physics
    assert choose_best([p for p in points if p.key != "latency-x1.1"], "auc")[1]["key"] == "dsp-x1.2"
    assert choose_best([points[0], points[2]], "auc")[1]["key"] == "both-x1.05-x1.3"
    assert choose_best([points[4], points[5]], "auc") == (
        None,
        {"key": "no-figure", "axes": {"k": "no-figure"}, "violations": ["lut None > 100.0"]},
    )
    assert choose_best([points[5]], "auc") == (None, None)


def _scan(cfg) -> Scan:
    return Scan.model_validate_json((cfg.artifacts / "scan" / "scan.json").read_text())


@pytest.mark.slow
def test_scan_on_the_ci_config(ci_run) -> None:
    cfg = ci_run.cfg
    assert cfg.scan.workers == 2 and len(plan_points(cfg)) == 4
    assert main(["scan", "--config", str(ci_run.path)]) == 0
    scan = _scan(cfg)
    assert len(scan.points) == 4 and scan.workers == 2
    assert {p.axes["sparsity"] for p in scan.points} == {0.0, 0.5}  # pruned points build firmware too
    for p in scan.points:
        assert p.error is None and p.exact and p.exactness["csim_exact_fraction"] == 1.0
        assert p.figures["lut"] > 0 and p.sources["lut"] == "estimate"
        assert p.figures["ii_cycles"] == p.axes["reuse_factor"]
        assert {"auc", "auc_err", "rejection_at_30", "rejection_at_50_err"} <= set(p.physics)
    assert any(p.pareto for p in scan.points)
    # issue 21: every point has its label-only copy from the same start, built and gated the same way
    for p in scan.points:
        assert p.baseline is not None and p.baseline.error is None and p.baseline.exact
        assert p.baseline.figures["lut"] > 0 and p.baseline.physics["auc"] != p.physics["auc"]
    mlp = scan.fronts["mlp"]
    assert mlp["kd"] and mlp["baseline"] and mlp["gains"]["interpolation"] == "stepwise"
    assert scan.fast_vs_yosys is None  # hls4ml points only: nothing for Yosys
    # The unpruned points train the CI run's own MLP (same spec, seed and epochs): the distill stage trains
    # on the same one-thread Dask workers, so its students are these, bit for bit.
    metrics = json.loads((cfg.artifacts / "metrics.json").read_text())["models"]
    for p in (p for p in scan.points if p.axes["sparsity"] == 0.0):
        assert p.physics["auc"] == metrics["mlp/kd"]["auc"]
        assert p.baseline.physics["auc"] == metrics["mlp/baseline"]["auc"]
    # front_points 1 retrains the cheapest front design; the best of one training is retrained too (it is
    # promoted on its median over seeds), and the promoted design is the best median of those in budget
    in_budget = [p for p in scan.points if p.exact and p.error is None and p.budget_pass]
    one_training = max(in_budget, key=lambda p: (p.physics[scan.objective], -p.figures["lut"]))
    retrained = scan.front_seeds["mlp"]["designs"]
    assert scan.front_seeds["mlp"]["seeds"] == 2 and one_training.key in retrained and len(retrained) <= 2
    medians = {
        key: float(np.median([r["kd_objective"] for r in scan.front_seeds["mlp"]["rows"] if r["key"] == key]))
        for key in retrained
    }
    promoted = scan.promoted["mlp"]
    assert promoted["rule"] == "median over 2 seeds" and len(promoted["per_seed"]) == 2
    assert promoted["objective"] == medians[promoted["key"]] == max(medians.values())
    assert scan.best == promoted["key"] and next(p for p in scan.points if p.key == scan.best).budget_pass
    report = json.loads((cfg.firmware / "best" / "hls_report.json").read_text())
    assert report["csim"]["exact_fraction"] == 1.0 and report["budget"]["pass"] is True
    assert report["project_dir"] == str(cfg.firmware / "best")
    for png in ("pareto_lut.png", "pareto_latency.png"):
        assert (cfg.artifacts / "scan" / png).read_bytes()[:4] == b"\x89PNG"
    # The review report shows the scan once it is remade.
    assert main(["report", "--config", str(ci_run.path)]) == 0
    assert "## Design scan" in (cfg.firmware / "report.md").read_text()
    md = (cfg.artifacts / "scan" / "scan.md").read_text()
    assert (
        "## mlp: KD and baseline fronts" in md
        and f"Over 2 seeds ({len(retrained)} front designs retrained" in md
    )
    assert f"| mlp | {scan.best} |" in md and "(median over 2 seeds) |" in md


def _scan_process(path, *extra):
    return subprocess.Popen(
        [sys.executable, "-m", "kd_trigger", "scan", "--config", str(path), *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _wait_for(predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def _resume_config(ci_run, make_config, name: str):
    # front_seeds 1: no front design is retrained with a second seed (test_scan_on_the_ci_config covers
    # that); what these tests kill and resume are the 4 points.
    # sparsity [0.0] replaces ci.yaml's sparsity axis (configs merge key by key): 4 points, not 8
    axes = {"mlp": {"weight_bits": [5, 6], "reuse_factor": [2, 4], "sparsity": [0.0]}}
    path = make_config(f"{name}.yaml", run={"name": name}, data={"path": str(ci_run.cfg.data_path)},
                       scan={"axes": axes, "epochs": 2, "workers": 2, "front_seeds": 1})  # fmt: skip
    cfg = load_config(path)
    return path, cfg, cfg.artifacts / "scan-cache"


@pytest.mark.slow
def test_scan_survives_a_killed_worker(ci_run, make_config) -> None:
    """A worker process killed in the middle: Dask restarts it and reruns its task; the scan completes."""
    import psutil

    path, cfg, cache = _resume_config(ci_run, make_config, "scanworker")
    proc = _scan_process(path)

    def workers() -> list:
        return [
            c
            for c in psutil.Process(proc.pid).children(recursive=True)
            if "spawn_main" in " ".join(c.cmdline())
        ]

    try:
        _wait_for(lambda: len(workers()) >= 2 and cache.is_dir(), 240)
        time.sleep(3)
        workers()[0].kill()
        assert proc.wait(timeout=600) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    scan = _scan(cfg)
    assert len(scan.points) == 4 and all(p.exact for p in scan.points)


@pytest.mark.slow
def test_a_killed_scan_resumes_without_recomputing_finished_points(ci_run, make_config) -> None:
    path, cfg, cache = _resume_config(ci_run, make_config, "scankilled")
    proc = _scan_process(path)
    try:
        _wait_for(lambda: cache.is_dir() and len(list(cache.glob("*/point.json"))) >= 1, 600)
        kept = {p.parent.name: p.stat().st_mtime_ns for p in cache.glob("*/point.json")}
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the whole job, workers included, as a batch system would
        proc.wait(timeout=60)
    assert not (cfg.artifacts / "scan").exists()  # nothing committed
    assert main(["scan", "--config", str(path)]) == 0
    assert len(_scan(cfg).points) == 4
    for key, stamp in kept.items():
        assert (cache / key / "point.json").stat().st_mtime_ns == stamp  # not recomputed


@pytest.mark.slow
def test_a_scan_nothing_fits_exits_3_naming_the_nearest_miss(ci_run, make_config, caplog) -> None:
    # front_seeds 1: no front retraining, which decides nothing about the budget verdict tested here
    path = make_config("tight.yaml", run={"name": "scantight"}, data={"path": str(ci_run.cfg.data_path)},
                       budget={"overrides": {"max_latency_ns": 1.0}}, scan={"front_seeds": 1})  # fmt: skip
    caplog.set_level("ERROR")
    assert main(["scan", "--config", str(path)]) == 3
    scan = _scan(load_config(path))
    assert scan.best is None and not any(p.budget_pass for p in scan.points)
    assert scan.nearest_miss is not None and "latency_ns" in scan.nearest_miss["violations"][0]
    assert any(
        "no design of 4 fits the budget" in r.getMessage() and "nearest miss" in r.getMessage()
        for r in caplog.records
    )
    assert not (load_config(path).firmware / "best").exists()


def test_an_rtl_point_builds_only_the_rtl_flow(tmp_path, monkeypatch) -> None:
    """``flow: rtl`` gates and measures the RTL alone: no hls4ml conversion runs for it, and its figures,
    sources and exactness are the RTL flow's; an hls4ml point converts (and runs no RTL)."""
    import numpy as np
    from conftest import REPO

    import kd_trigger.scan_points as sp
    from kd_trigger.contracts import Da4mlEstimateBlock, RtlBlock, RtlSimBlock, YosysBlock
    from kd_trigger.errors import ModelError
    from kd_trigger.layout import ProjectLayout, point_baseline, point_project

    raw = {"scan": {"axes": {"mlp": {"weight_bits": [4], "flow": ["hls4ml", "rtl"]}}}}
    cfg = parse_config({**raw, "budget": {"profiles": str(REPO / "configs" / "budget.yaml")}})
    points = {p.flow: p for p in plan_points(cfg)}
    calls: list[object] = []

    def rtl(model, out_dir, hls, x, ii_cycles, synth):
        assert synth is False  # Yosys waits for the ranking (scan.rank_and_measure)
        calls.append(out_dir)
        block = RtlBlock.model_construct(
            latency_cycles=3,
            latency_ns=15.0,
            ii_cycles=1,
            clock_period_ns=5.0,
            da4ml_estimate=Da4mlEstimateBlock.model_construct(),
            yosys=YosysBlock.model_construct(lut=10, ff=5),
        )
        sim = RtlSimBlock(n_samples=len(x), exact_fraction=1.0, max_abs_diff=0.0, argmax_agreement=1.0)
        return block, sim

    def convert(*args, **kwargs):
        calls.append("hls4ml")
        raise ModelError("converted")

    x = np.zeros((3, 4))
    copies = {"baseline": (None, {"auc": 0.8}), "kd": (None, {"auc": 0.9})}
    monkeypatch.setattr(sp, "_train_point", lambda cfg, point, spec: (copies, x, np.zeros(3)))
    monkeypatch.setattr(sp, "rtl_inputs", lambda model, x_test, seed: x_test)
    monkeypatch.setattr(sp, "rtl_design", rtl)
    monkeypatch.setattr(sp, "convert_and_simulate", convert)
    result = sp._build_point(cfg, points["rtl"], tmp_path)
    # the KD copy into the point's project, the baseline copy into its own, both in the RTL flow only
    assert calls == [
        ProjectLayout(point_project(tmp_path)).rtl,
        ProjectLayout(point_project(point_baseline(tmp_path))).rtl,
    ]
    assert result["flow"] == "rtl" and result["exact"] is True and result["physics"]["auc"] == 0.9
    baseline = result["baseline"]
    assert (
        baseline["physics"]["auc"] == 0.8 and baseline["exact"] is True and baseline["figures"]["lut"] == 10
    )
    assert "flow" not in baseline
    assert result["figures"]["lut"] == 10 and result["sources"]["lut"] == "yosys synth (open-source)"
    assert result["figures"]["latency_ns"] == 15.0
    assert result["exactness"] == {"rtl_exact_fraction": 1.0, "rtl_samples": 3, "max_abs_diff": 0.0}
    with pytest.raises(ModelError, match="converted"):
        sp._build_point(cfg, points["hls4ml"], tmp_path)
    assert calls[2:] == ["hls4ml"]
