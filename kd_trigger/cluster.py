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


def run_tasks(
    fn: Callable[[dict[str, Any]], dict[str, Any]],
    tasks: list[dict[str, Any]],
    keys: list[str],
    workers: int,
    scheduler: str | None,
    what: str,
) -> list[dict[str, Any]]:
    """``fn(task)`` of every task on Dask workers, in the order of ``tasks``; ``keys`` name the tasks (unique,
    the Dask keys). ``fn`` must be importable (a module-level function) and return plain data."""
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
        futures = client.map(fn, tasks, key=keys, retries=2, pure=False)
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
