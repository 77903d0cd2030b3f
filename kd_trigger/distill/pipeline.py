"""The distill stage: baseline and distilled students from the same start, then the physics evaluation.

For each student a label-only baseline and a distilled copy are trained from the SAME initial weights,
on the same jets in the same order (same seed), with the same optimiser settings and the same early
stopping rule, so their difference is the distillation and nothing else. The teacher's logits are
computed once (or read from the teacher stage) and fed with each batch: the teacher never runs in the
training loop. The training loop is :mod:`kd_trigger.distill.training`, the evaluation
:mod:`kd_trigger.distill.evaluation`. Outputs: artifacts/<run>/students/<name>/{baseline,kd}.h5 + history.json, and
artifacts/<run>/{metrics.json, summary.md, roc.png, boost.png}.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from kd_trigger.config import Config, parse_config
from kd_trigger.contracts import Metrics, finite_or_none
from kd_trigger.data.readers import load_jets
from kd_trigger.distill.evaluation import evaluate_run
from kd_trigger.distill.teachers import cached_logits
from kd_trigger.distill.training import (
    VARIANTS,
    student_seed,
    train_from_seed,
    train_subset,
    training_cost,
)
from kd_trigger.errors import ConfigError
from kd_trigger.evaluate import summary_markdown
from kd_trigger.layout import RunLayout, StudentFiles
from kd_trigger.models.students import (
    check_student,
    kernel_sparsity,
    load_student_file,
    save_student,
    student_inputs,
    weight_bits_needed,
)
from kd_trigger.runs import write_json_atomic, write_text_atomic
from kd_trigger.stage_types import StageContext, StageDecl, StageResult, teacher_stage_name

log = logging.getLogger(__name__)


def distill_stage(ctx: StageContext) -> StageResult:
    """Baseline and distilled students from the same start, then the physics evaluation.

    Reads the data stage's jets and each student's teacher's cached logits; writes
    ``students/<name>/{baseline,kd}.h5`` + ``history.json``, ``metrics.json``, ``summary.md`` and the plots.
    Every (student, variant) is trained by :func:`train_task` on a local Dask cluster of ``run.workers``
    one-thread workers (:mod:`kd_trigger.cluster`), the scan's and the study's set-up: the students here are
    bit for bit those of the scan's and the study's trainings with the run's seed.
    """
    from kd_trigger.cluster import run_tasks

    cfg = ctx.cfg
    layout = RunLayout.of(cfg)
    t_start = time.perf_counter()
    data = load_jets(cfg.data_path, cfg)
    train, val, test = (data.select(s) for s in ("train", "val", "test"))
    n_classes = len(cfg.data.classes)
    subset = train_subset(len(train.labels), cfg.distill.train_fraction, cfg.run.seed)
    if len(subset) < 2:
        raise ConfigError(
            f"distill.train_fraction = {cfg.distill.train_fraction:g} leaves {len(subset)} training jet(s); raise it"
        )
    log.info("students: %d train, %d val, %d test jets", len(subset), len(val.labels), len(test.labels))

    out_dir = ctx.out(layout.students_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = [(spec.name, variant) for spec in cfg.students for variant in VARIANTS]
    for spec in cfg.students:
        StudentFiles(out_dir / spec.name).root.mkdir()
    results = run_tasks(
        train_task,
        [
            {"config": cfg.to_dict(), "student": name, "variant": variant, "out": str(out_dir)}
            for name, variant in jobs
        ],
        [f"distill-{name}-{variant}" for name, variant in jobs],
        cfg.run.workers,
        None,
        "training students",
        [training_cost(cfg.student(name)) for name, _ in jobs],
    )
    trained: dict[str, Any] = {}
    records: dict[str, dict[str, dict[str, Any]]] = {}
    sparsity: dict[str, dict[str, dict[str, dict[str, float | int]]]] = {}
    for (name, variant), result in zip(jobs, results, strict=True):
        spec = cfg.student(name)
        files = StudentFiles(out_dir / name)
        trained[f"{name}/{variant}"] = load_student_file(files.model(variant), spec, n_classes)
        records.setdefault(name, {})[variant] = result["record"]
        sparsity.setdefault(name, {})[variant] = result["sparsity"]
    for spec in cfg.students:
        teacher = cfg.teacher_of(spec)
        temperature, kd_weight = cfg.kd_setting(spec)
        n_params, bits = weight_bits_needed(spec, n_classes)
        write_json_atomic(
            StudentFiles(out_dir / spec.name).history,
            finite_or_none(
                {
                    "student": spec.name,
                    "teacher": teacher.name,
                    "temperature": temperature,
                    "kd_weight": kd_weight,
                    "seed": student_seed(cfg, spec),
                    "n_params": n_params,
                    "weight_bits": bits,
                    "n_train": int(len(subset)),
                    **records[spec.name],
                }
            ),
        )
    train_seconds = time.perf_counter() - t_start

    metrics = evaluate_run(cfg, trained, test, ctx.out(layout.roc_plot), ctx.out(layout.boost_plot))
    for name, recs in records.items():
        metrics["students"][name].update(
            {
                "best_epoch": {v: r["best_epoch"] for v, r in recs.items()},
                "epochs_run": {v: r["epochs_run"] for v, r in recs.items()},
                "train_seconds": {v: round(r["seconds"], 1) for v, r in recs.items()},
                "sparsity_target": cfg.student(name).sparsity,
                "sparsity": sparsity[name],
            }
        )
    metrics["seconds"] = {
        "train": round(train_seconds, 1),
        "total": round(time.perf_counter() - t_start, 1),
    }
    document = Metrics.model_validate(finite_or_none(metrics))
    document.write(ctx.out(layout.metrics))
    write_text_atomic(
        ctx.out(layout.summary),
        f"# Run {cfg.run.name}: test split\n\n" + summary_markdown(document.model_dump(mode="json")),
    )
    log.info("distill stage done in %.0f s", metrics["seconds"]["total"])
    return StageResult(extra={"students": [s.name for s in cfg.students]})


def train_task(task: dict[str, Any]) -> dict[str, Any]:
    """One (student, variant) of the distill stage, on a Dask worker: trained from the student's seeded
    initial weights (the same for both variants), saved as ``<out>/<student>/<variant>.h5``; returns its
    record (:meth:`TrainRecord.to_dict`) and the kernel sparsity counted in the saved file."""
    cfg = parse_config(task["config"])
    spec, variant = cfg.student(task["student"]), task["variant"]
    n_classes = len(cfg.data.classes)
    data = load_jets(cfg.data_path, cfg)
    train, val = data.select("train"), data.select("val")
    subset = train_subset(len(train.labels), cfg.distill.train_fraction, cfg.run.seed)
    train_const = train.constituents[subset]
    teacher = cfg.teacher_of(spec)
    setting = cfg.distill_for(spec)
    student, record = train_from_seed(
        spec,
        n_classes,
        setting,
        variant,
        (
            student_inputs(spec, train_const),
            train.labels[subset].astype(np.int32),
            cached_logits(cfg, teacher.name, "train")[subset],
        ),
        (
            student_inputs(spec, val.constituents),
            val.labels.astype(np.int32),
            cached_logits(cfg, teacher.name, "val"),
        ),
        seed=student_seed(cfg, spec),
        label=f"{spec.name}/{variant}",
        constituents=train_const,
    )
    files = StudentFiles(Path(task["out"]) / spec.name)
    save_student(student, files.model(variant))
    # Counted in the file as saved, so the report states what the firmware flows will read.
    sparsity = kernel_sparsity(load_student_file(files.model(variant), spec, n_classes))
    return {"record": record.to_dict(), "sparsity": sparsity}


# -- the stage declaration ------------------------------------------------------------------------
def _distill_needs(cfg: Config) -> tuple[str, ...]:
    return ("data", *(teacher_stage_name(t.name) for t in cfg.teacher_specs))


def _distill_config(cfg: Config) -> dict[str, Any]:
    raw = cfg.to_dict()
    return {"seed": cfg.run.seed, **{k: raw[k] for k in ("students", "distill")}}


def _distill_outputs(cfg: Config) -> list[Path]:
    return RunLayout.of(cfg).distill_outputs()


def check_students(cfg: Config) -> None:
    """ConfigError for a student the model factories would refuse (before any training)."""
    for spec in cfg.students:
        check_student(spec)


STAGE = StageDecl(
    "distill",
    distill_stage,
    _distill_config,
    _distill_outputs,
    needs=_distill_needs,
    check=check_students,
    description="baseline and distilled students from the same start, physics metrics",
)
