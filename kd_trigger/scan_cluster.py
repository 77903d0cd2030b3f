"""Running the scan's points on Dask (:func:`kd_trigger.cluster.run_tasks`): the configured scheduler, or
a local cluster of process workers.

Only plumbing: where a point runs never changes its result, so this module is not in a point's cache key.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

from kd_trigger.cluster import run_tasks
from kd_trigger.config import Config
from kd_trigger.scan_points import PointSpec, evaluate_point

log = logging.getLogger(__name__)


def run_points(cfg: Config, points: list[PointSpec], cache: Path) -> list[dict[str, Any]]:
    """Every point's result (:func:`kd_trigger.scan_points.evaluate_point`), in the order of ``points``,
    computed on Dask workers (each point once; a point already in ``cache`` is read back)."""
    tasks = [{"config": cfg.to_dict(), "point": asdict(p), "cache": str(cache)} for p in points]
    return run_tasks(
        evaluate_point,
        tasks,
        [f"scan-point-{p.key}" for p in points],
        cfg.scan.workers,
        cfg.scan.scheduler,
        "scan points",
    )
