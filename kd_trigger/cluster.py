"""Running independent tasks on Dask: the configured scheduler, or a local cluster of process workers.

The scan's points (:mod:`kd_trigger.scan_cluster`) and the study's trainings (:mod:`kd_trigger.study`)
run here. Only plumbing: where a task runs never changes its result, so this module is in no cache key;
it imports nothing of the project, so a stage that uses it depends on no other stage's code through it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from tqdm import tqdm

log = logging.getLogger(__name__)


def _client(workers: int, scheduler: str | None) -> Any:
    """A Dask client: ``scheduler``, or a LocalCluster of ``workers`` process workers (one thread each)."""
    from distributed import Client, LocalCluster

    logging.getLogger("distributed").setLevel(logging.WARNING)  # its INFO lines drown the stages' own

    if scheduler:
        return Client(scheduler)
    # One TensorFlow thread per worker: the workers already use the cores.
    env = {
        "OMP_NUM_THREADS": "1",
        "TF_NUM_INTRAOP_THREADS": "1",
        "TF_NUM_INTEROP_THREADS": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    cluster = LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        silence_logs=logging.ERROR,
        env=env,
    )
    return Client(cluster)


def _log_info_from(logger_name: str) -> None:
    """On a worker: let ``logger_name``'s INFO records through (a worker's root logger stops at WARNING)."""
    logging.getLogger(logger_name).setLevel(logging.INFO)


def run_tasks(
    fn: Callable[[dict[str, Any]], dict[str, Any]],
    tasks: list[dict[str, Any]],
    keys: list[str],
    workers: int,
    scheduler: str | None,
    what: str,
    cost: list[float] | None = None,
) -> list[dict[str, Any]]:
    """``fn(task)`` of every task on Dask workers, in the order of ``tasks``; ``keys`` name the tasks (unique,
    the Dask keys). ``fn`` must be importable (a module-level function) and return plain data.

    ``cost``: a rough relative cost per task; the costliest are submitted first (Dask starts tasks in the
    order they arrive), so that a long training does not start last and leave the other workers idle.
    """
    from distributed import as_completed  # Dask

    client = _client(workers, scheduler)
    try:
        log.info(
            "%s: %d tasks on %s; dashboard %s",
            what,
            len(tasks),
            client.scheduler.address,
            client.dashboard_link,
        )
        # The tasks' own log lines (a training's epochs, its early stop) reach this process's log, as they
        # did when the stages trained in-process.
        client.run(_log_info_from, __name__.split(".")[0])
        client.forward_logging(__name__.split(".")[0], level=logging.INFO)
        # No retries: a task is a seeded computation, so an exception it raises (a pruning target that no
        # epoch reached, a bad model file) raises again; a lost worker is retried by the scheduler itself.
        order = sorted(range(len(tasks)), key=lambda i: -cost[i]) if cost else list(range(len(tasks)))
        futures = client.map(
            fn, [tasks[i] for i in order], key=[keys[i] for i in order], retries=0, pure=False
        )
        by_key: dict[str, dict[str, Any]] = {}
        with tqdm(total=len(tasks), desc=what, unit="task") as bar:
            for future in as_completed(futures):
                by_key[future.key] = future.result()
                bar.update(1)
    finally:
        cluster = getattr(client, "cluster", None)
        client.close()
        if cluster is not None:
            cluster.close()
    return [by_key[k] for k in keys]
