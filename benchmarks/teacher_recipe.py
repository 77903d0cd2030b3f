"""Train one teacher spec on a jet file and print its test figures, cost and the machine load.

    .venv/bin/python benchmarks/teacher_recipe.py --data /work/data/jets60k.h5 \
        --set name=lorentznet16 --set epochs=23 [--spec spec.yaml] [--seed 42] [--save DIR]

``--spec`` reads a YAML mapping of TeacherSpec fields, ``--set key=value`` overrides one (values are read
as YAML: ``neighbours=null``, ``phi=[64,64]``). Prints test AUC, 1/eps_B at eps_S = 30% and 50% with
bootstrap errors, parameters, seconds per epoch, total time and the 1-minute load average before and
after (the machine is shared: a timing means little without it). ``--save DIR`` writes the model
(``teacher.h5``), ``{train,val,test}_logits.npy``, ``metrics.json``, ``history.json`` and ``spec.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kd_trigger.config import Config, TeacherSpec  # noqa: E402
from kd_trigger.data.readers import load_jets  # noqa: E402
from kd_trigger.evaluate import score_metrics  # noqa: E402

log = logging.getLogger("teacher_recipe")
SPLITS = ("train", "val", "test")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="jet file (our layout or Top Tagging)")
    parser.add_argument("--spec", type=Path, help="YAML mapping of TeacherSpec fields")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a field")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--bootstrap", type=int, default=200, help="test-set bootstrap resamples")
    parser.add_argument("--train-fraction", type=float, default=1.0, help="use the first part of train")
    parser.add_argument("--save", type=Path, help="directory for the model, logits and metrics")
    return parser.parse_args(argv)


def read_spec(path: Path | None, overrides: list[str]) -> TeacherSpec:
    """TeacherSpec from an optional YAML file and KEY=VALUE overrides (values parsed as YAML)."""
    raw: dict[str, Any] = yaml.safe_load(path.read_text()) if path else {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set needs KEY=VALUE, got {item!r}")
        raw[key.strip()] = yaml.safe_load(value)
    return TeacherSpec.model_validate(raw)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    spec = read_spec(args.spec, args.set)

    from kd_trigger.distill.teacher_train import train_teacher
    from kd_trigger.models.teacher import teacher_input_array

    data = load_jets(args.data, Config())
    parts = {s: data.select(s) for s in SPLITS}
    x = {s: teacher_input_array(spec, parts[s].constituents) for s in SPLITS}
    y = {s: parts[s].is_signal.astype(np.int64) for s in SPLITS}
    if args.train_fraction < 1.0:
        n = int(round(args.train_fraction * len(y["train"])))
        x["train"], y["train"] = x["train"][:n], y["train"][:n]

    load_before = os.getloadavg()[0]
    wall = time.perf_counter()
    cpu = _cpu_seconds()
    model, record = train_teacher(spec, {s: x[s] for s in ("train", "val")}, y, seed=args.seed)
    wall = time.perf_counter() - wall
    # CPU time (all threads) does not grow with other workers' load the way wall time does: on an
    # otherwise idle machine with N cores the wall time is about cpu / N at best.
    cpu = _cpu_seconds() - cpu
    load_after = os.getloadavg()[0]

    logits = {
        s: np.asarray(model.predict(x[s], batch_size=2048, verbose=0), dtype=np.float32) for s in SPLITS
    }
    m = score_metrics(y["test"], logits["test"], n_bootstrap=args.bootstrap, seed=0)
    result = {
        "spec": spec.model_dump(mode="json"),
        "seed": args.seed,
        "data": str(args.data),
        "n_train": int(len(y["train"])),
        "test": m,
        "cpu_seconds": round(cpu, 1),
        "load_1min_before": load_before,
        "load_1min_after": load_after,
        **{k: v for k, v in record.items() if k != "history"},
    }
    print(
        f"{spec.name}: test AUC {m['auc']:.5f} ± {m['auc_err']:.5f} | "
        f"R30 {m['rejection_at_30']:.0f} ± {m['rejection_at_30_err']:.0f}"
        f"{' (capped)' if m['rejection_at_30_capped'] else ''} | "
        f"R50 {m['rejection_at_50']:.1f} ± {m['rejection_at_50_err']:.1f} | acc {m['accuracy']:.4f}\n"
        f"  {record['n_parameters']} parameters | {record['epochs_run']} epochs, best {record['best_epoch']} "
        f"(val AUC {record['best_val_auc']:.5f}, last {record['last_val_auc']:.5f}) | "
        f"{record['seconds_per_epoch']:.1f} s/epoch (fit only {record['median_fit_seconds_per_epoch']:.1f}) | "
        f"total {wall:.0f} s, CPU {cpu:.0f} s | load {load_before:.2f} -> {load_after:.2f} on {os.cpu_count()} cores"
    )
    print("RESULT " + json.dumps({k: v for k, v in result.items() if k != "spec"} | {"name": spec.name}))

    if args.save:
        args.save.mkdir(parents=True, exist_ok=True)
        model.save(args.save / "teacher.h5", include_optimizer=False)
        for s in SPLITS:
            np.save(args.save / f"{s}_logits.npy", logits[s])
            np.save(args.save / f"{s}_labels.npy", y[s].astype(np.int8))
        (args.save / "metrics.json").write_text(json.dumps(result, indent=2))
        (args.save / "history.json").write_text(json.dumps(record["history"], indent=2))
        (args.save / "spec.json").write_text(json.dumps(spec.model_dump(mode="json"), indent=2))
        log.info("saved to %s", args.save)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
