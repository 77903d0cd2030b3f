"""The Dask plumbing the scan, the study and the distill stage share: a real LocalCluster of process workers."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from kd_trigger.cluster import run_tasks


def test_a_failing_task_runs_once_and_its_error_surfaces(tmp_path: Path) -> None:
    calls = tmp_path / "calls.txt"

    def fails(task: dict) -> dict:  # a local function: pickled by value for the worker
        with open(task["file"], "a") as f:
            f.write("called\n")
        raise ValueError("no epoch reached the pruning target")

    with pytest.raises(ValueError, match="no epoch reached the pruning target"):
        run_tasks(fails, [{"file": str(calls)}], ["fails-0"], workers=1, scheduler=None, what="failing")
    # A seeded task fails the same way every time: it must not be retried.
    assert calls.read_text() == "called\n"


def test_task_results_come_back_in_order_with_their_log_lines(caplog: pytest.LogCaptureFixture) -> None:
    def square(task: dict) -> dict:
        logging.getLogger("kd_trigger.worker_task").info("task %d on a worker", task["n"])
        return {"n": task["n"], "square": task["n"] ** 2}

    caplog.set_level(logging.INFO, logger="kd_trigger")
    tasks = [{"n": n} for n in range(4)]
    out = run_tasks(
        square, tasks, [f"square-{n}" for n in range(4)], workers=2, scheduler=None, what="squares"
    )
    assert out == [{"n": n, "square": n * n} for n in range(4)]
    forwarded = sorted(r.getMessage() for r in caplog.records if r.name == "kd_trigger.worker_task")
    assert forwarded == [f"task {n} on a worker" for n in range(4)]


def test_the_costliest_tasks_start_first_and_results_keep_the_callers_order(tmp_path: Path) -> None:
    """One worker runs the tasks one after another in the order they were submitted: by cost, highest
    first (a Deep Sets training before the MLP's), while the results come back in the caller's order."""
    log_file = tmp_path / "order.txt"

    def record(task: dict) -> dict:
        with open(task["file"], "a") as f:
            f.write(f"{task['n']}\n")
        return {"n": task["n"]}

    tasks = [{"n": n, "file": str(log_file)} for n in range(4)]
    out = run_tasks(
        record, tasks, [f"t-{n}" for n in range(4)], 1, None, "ordered", cost=[1.0, 30.0, 2.0, 30.0]
    )
    assert out == [{"n": n} for n in range(4)]
    assert log_file.read_text().split() == ["1", "3", "2", "0"]  # ties keep the caller's order
