"""The design scan: planning and the Pareto front by hand; on Dask, a 4-point scan of the CI config on a
2-worker LocalCluster, resumed after a killed worker and after a killed scan; a budget nothing fits."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from kd_trigger.cli import main
from kd_trigger.config import load_config, parse_config
from kd_trigger.contracts import Scan
from kd_trigger.errors import ConfigError
from kd_trigger.scan import pareto_front, plan_points


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
    # The default scan: 4, 6, 8-bit weights x reuse factor 2, 4 for each of the two students.
    default = plan_points(parse_config({}))
    assert len(default) == 12 and {p.student for p in default} == {"mlp", "deepsets"}
    assert {(p.axes["weight_bits"], p.reuse_factor) for p in default} == {
        (b, r) for b in (4, 6, 8) for r in (2, 4)
    }


def _scan(cfg) -> Scan:
    return Scan.model_validate_json((cfg.artifacts / "scan" / "scan.json").read_text())


@pytest.mark.slow
def test_scan_on_the_ci_config(ci_run) -> None:
    cfg = ci_run.cfg
    assert cfg.scan.workers == 2 and len(plan_points(cfg)) == 4
    assert main(["scan", "--config", str(ci_run.path)]) == 0
    scan = _scan(cfg)
    assert len(scan.points) == 4 and scan.workers == 2
    for p in scan.points:
        assert p.error is None and p.exact and p.exactness["csim_exact_fraction"] == 1.0
        assert p.figures["lut"] > 0 and p.sources["lut"] == "estimate"
        assert p.figures["ii_cycles"] == p.axes["reuse_factor"]
        assert {"auc", "auc_err", "rejection_at_30", "rejection_at_50_err"} <= set(p.physics)
    assert any(p.pareto for p in scan.points)
    best = next(p for p in scan.points if p.key == scan.best)
    assert best.budget_pass and best.pareto_lut
    report = json.loads((cfg.firmware / "best" / "hls_report.json").read_text())
    assert report["csim"]["exact_fraction"] == 1.0 and report["budget"]["pass"] is True
    assert report["project_dir"] == str(cfg.firmware / "best")
    for png in ("pareto_lut.png", "pareto_latency.png"):
        assert (cfg.artifacts / "scan" / png).read_bytes()[:4] == b"\x89PNG"
    # The review report shows the scan once it is remade.
    assert main(["report", "--config", str(ci_run.path)]) == 0
    assert "## Design scan" in (cfg.firmware / "report.md").read_text()


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
    axes = {"mlp": {"weight_bits": [5, 6], "reuse_factor": [2, 4]}}
    path = make_config(f"{name}.yaml", run={"name": name}, data={"path": str(ci_run.cfg.data_path)},
                       scan={"axes": axes, "epochs": 2, "workers": 2})  # fmt: skip
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
    path = make_config("tight.yaml", run={"name": "scantight"}, data={"path": str(ci_run.cfg.data_path)},
                       budget={"overrides": {"max_latency_ns": 1.0}})  # fmt: skip
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
