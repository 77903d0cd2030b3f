"""Wall time of the Dask stages on the CI config with 1 and with 2 workers: the design scan or the study.

    .venv/bin/python benchmarks/dask_workers.py [--stage scan|study] [--workers 1 2] [--keep DIR]

scan: 24 points, 3 weight widths x 4 reuse factors for each of the two CI students. study: the CI
config's study (both teachers x two (T, w) settings x 2 seeds, a half-data point and the augmentation
arms). Every worker count gets its own fresh run directory (no cache carried over); data and teachers
are made once per directory before the clock starts, so the time is the stage alone. Prints one line per
worker count (wall seconds, points or trainings) and the speed-up, with the 1-minute load average
before and after: the machine may be shared, and a timing means little without it.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kd_trigger.contracts import Scan  # noqa: E402

log = logging.getLogger("dask_workers")
AXES = {"weight_bits": [4, 6, 8], "reuse_factor": [1, 2, 4, 8]}


def write_config(run_dir: Path, stage: str, workers: int) -> Path:
    """A config extending configs/ci.yaml with its own run directory: the 24-point grid for the scan,
    ``workers`` study workers for the study (the scan's come from its --workers option)."""
    cfg: dict[str, object] = {
        "extends": str(REPO / "configs" / "ci.yaml"),
        "run": {"artifacts_dir": str(run_dir / "artifacts"), "firmware_dir": str(run_dir / "firmware")},
    }
    if stage == "scan":
        cfg["scan"] = {"axes": {"mlp": AXES, "deepsets": AXES}}
    else:
        cfg["study"] = {"workers": workers}
    path = run_dir / f"{stage}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return path


def kd(*args: str) -> int:
    """Run the kd-trigger CLI of this checkout in a subprocess (the scan starts its own Dask cluster)."""
    return subprocess.run([sys.executable, "-m", "kd_trigger", *args], cwd=REPO, check=False).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", choices=["scan", "study"], default="scan")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--keep", type=Path, help="run directories go here (default: a deleted temp dir)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")

    base = args.keep or Path(tempfile.mkdtemp(prefix=f"kdt-{args.stage}-bench-"))
    walls: dict[int, float] = {}
    for workers in args.workers:
        run_dir = base / f"workers{workers}"
        run_dir.mkdir(parents=True, exist_ok=True)
        config = write_config(run_dir, args.stage, workers)
        if kd("teacher", "--config", str(config)) != 0:
            log.error("data/teacher stages failed for %s", config)
            return 1
        load = os.getloadavg()[0]
        start = time.perf_counter()
        if args.stage == "scan":
            rc = kd("scan", "--config", str(config), "--workers", str(workers))
        else:
            rc = kd("study", "--config", str(config))
        walls[workers] = time.perf_counter() - start
        artifacts = run_dir / "artifacts" / "ci"
        if args.stage == "scan":
            scan = Scan.model_validate_json((artifacts / "scan" / "scan.json").read_text())
            what = f"{len(scan.points)} points, {sum(1 for p in scan.points if p.exact)} bit-exact"
        else:
            what = f"{len(list((artifacts / 'study-cache').glob('*.npz')))} trainings"
        print(
            f"{args.stage}, workers {workers}: {walls[workers]:.0f} s wall, {what}, "
            f"exit {rc}, load {load:.1f} -> {os.getloadavg()[0]:.1f}",
            flush=True,
        )
    if 1 in walls and len(walls) > 1:
        for workers, wall in walls.items():
            if workers != 1:
                print(f"speed-up with {workers} workers: {walls[1] / wall:.2f}x", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
