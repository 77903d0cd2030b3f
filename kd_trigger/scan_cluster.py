"""Running the scan's points on Dask: the configured scheduler, or a local cluster of process workers.

Only plumbing: where a point runs never changes its result, so this module is not in a point's cache key.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tqdm import tqdm

from kd_trigger.config import Config
from kd_trigger.scan_points import PointSpec, evaluate_point

log = logging.getLogger(__name__)


def _client(cfg: Config) -> Any:
    """A Dask client: the configured scheduler, or a LocalCluster of process workers (one thread each)."""
    from distributed import Client, LocalCluster

    logging.getLogger("distributed").setLevel(logging.WARNING)  # its INFO lines drown the scan's own

    if cfg.scan.scheduler:
        return Client(cfg.scan.scheduler)
    # One TensorFlow thread per worker: the workers already use the cores.
    env = {
        "OMP_NUM_THREADS": "1",
        "TF_NUM_INTRAOP_THREADS": "1",
        "TF_NUM_INTEROP_THREADS": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    cluster = LocalCluster(
        n_workers=cfg.scan.workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        silence_logs=logging.ERROR,
        env=env,
    )
    return Client(cluster)


def run_points(cfg: Config, points: list[PointSpec], cache: Path) -> list[dict[str, Any]]:
    """Every point's result (:func:`kd_trigger.scan_points.evaluate_point`), in the order of ``points``,
    computed on Dask workers (each point once; a point already in ``cache`` is read back)."""
    from distributed import as_completed  # Dask

    tasks = [{"config": cfg.to_dict(), "point": asdict(p), "cache": str(cache)} for p in points]
    client = _client(cfg)
    try:
        log.info(
            "scan: %d points on %s; dashboard %s",
            len(points),
            client.scheduler.address,
            client.dashboard_link,
        )
        futures = client.map(
            evaluate_point, tasks, key=[f"scan-point-{p.key}" for p in points], retries=2, pure=False
        )
        by_key: dict[str, dict[str, Any]] = {}
        with tqdm(total=len(points), desc="scan points", unit="point") as bar:
            for future in as_completed(futures):
                result = future.result()
                by_key[result["key"]] = result
                bar.update(1)
    finally:
        cluster = getattr(client, "cluster", None)
        client.close()
        if cluster is not None:
            cluster.close()
    return [by_key[p.key] for p in points]
