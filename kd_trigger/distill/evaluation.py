"""The physics evaluation of a run's students and teachers on the test split (the distill stage's metrics)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from kd_trigger.class_stats import accuracy_difference
from kd_trigger.config import Config
from kd_trigger.data.boost import boost
from kd_trigger.distill.teachers import cached_logits, ensemble_logits, load_teacher
from kd_trigger.distill.teachers import predict as predict_teacher
from kd_trigger.distill.training import predict
from kd_trigger.evaluate import (
    boost_entry,
    one_vs_rest,
    paired_rejection_ratio,
    roc_points,
    score_metrics,
)
from kd_trigger.models.students import output_type, student_inputs

log = logging.getLogger(__name__)


def evaluate_run(
    cfg: Config, students: dict[str, Any], test: Any, roc_plot: Path, boost_plot: Path
) -> dict[str, Any]:
    """Metrics of the teachers and every ``<student>/<variant>`` on the test split and under boosts; draws
    the ROC curves into ``roc_plot`` and the accuracy under boosts into ``boost_plot``."""
    from kd_trigger.models.teacher import teacher_input_array  # TensorFlow
    from kd_trigger.report.physics_plots import plot_boost, plot_rejection  # matplotlib

    t0 = time.perf_counter()
    labels = test.labels.astype(np.int64)
    class_names = list(cfg.data.classes)
    dcfg = cfg.distill
    seed = cfg.run.seed
    specs = {s.name: s for s in cfg.students}
    teachers = {t.name: t for t in cfg.teacher_specs}
    logits: dict[str, np.ndarray] = {f"teacher/{n}": cached_logits(cfg, n, "test") for n in teachers}
    # Under boosts an ensemble's logits are its members' averaged, as its stage does on every split: each
    # member runs once per boost, also where a student learns from it directly.
    members = {m for t in teachers.values() for m in t.members}
    runnable = {
        t.name: (t, load_teacher(cfg, t.name))
        for t in cfg.teachers
        if t.name in members or (t.name in teachers and t.kind != "ensemble")
    }
    for key, model in students.items():
        logits[key] = predict(model, student_inputs(specs[key.split("/")[0]], test.constituents))
    models = {
        key: score_metrics(labels, lg, dcfg.rejection_bootstrap, seed, class_names=class_names)
        for key, lg in logits.items()
    }
    for m in models.values():
        m["boost"] = []
    for beta in dcfg.boost_betas:
        if beta == 0:  # the unboosted test split: reuse the logits computed above
            for key, lg in logits.items():
                models[key]["boost"].append(boost_entry(beta, labels, lg))
            continue
        # The teachers dominate the cost of the scan (~15-40 s per 18k jets on 2 cores, vs < 1 s a student).
        boosted = boost(test.constituents, beta)
        run = {n: predict_teacher(m, teacher_input_array(t, boosted)) for n, (t, m) in runnable.items()}
        for name, tspec in teachers.items():
            lg = ensemble_logits([run[m] for m in tspec.members]) if tspec.members else run[name]
            models[f"teacher/{name}"]["boost"].append(boost_entry(beta, labels, lg))
        for key, model in students.items():
            x = student_inputs(specs[key.split("/")[0]], boosted)
            models[key]["boost"].append(boost_entry(beta, labels, predict(model, x)))
        log.info("boost beta=%.2f evaluated", beta)
    # "teacher" (the contract key) is the teacher of the first student.
    first = f"teacher/{cfg.teacher_of(cfg.students[0]).name}"
    models = {"teacher": models[first], **models}
    summary: dict[str, Any] = {}
    for name, spec in specs.items():
        if f"{name}/kd" not in logits or f"{name}/baseline" not in logits:
            continue
        temperature, kd_weight = cfg.kd_setting(spec)
        summary[name] = {
            "teacher": cfg.teacher_of(spec).name,
            "temperature": temperature,
            "kd_weight": kd_weight,
            **{
                f"rejection_ratio_{round(eff * 100)}": paired_rejection_ratio(
                    labels,
                    logits[f"{name}/kd"],
                    logits[f"{name}/baseline"],
                    eff,
                    dcfg.rejection_bootstrap,
                    seed,
                )
                for eff in (0.3, 0.5)
            },
            "accuracy_difference_points": accuracy_difference(
                labels, logits[f"{name}/kd"], logits[f"{name}/baseline"], dcfg.rejection_bootstrap, seed
            ),
            "output_type": output_type(spec).hls(),
        }
    curves = {key: roc_points(*one_vs_rest(labels, lg)) for key, lg in logits.items() if key != "teacher"}
    plot_rejection(curves, roc_plot, title=f"run {cfg.run.name}, {len(labels)} test jets")
    plot_boost(
        {k: v for k, v in models.items() if k != "teacher"},
        boost_plot,
        title=f"run {cfg.run.name}: jets boosted along x",
    )
    log.info("evaluation took %.1f s", time.perf_counter() - t0)
    return {
        "run": cfg.run.name,
        "models": models,
        "students": summary,
        "test": {"n_jets": int(labels.size), "n_background": int(np.sum(labels != len(class_names) - 1))},
        "class_names": class_names,
        "distill": cfg.distill.model_dump(mode="json"),
        "evaluate_seconds": round(time.perf_counter() - t0, 1),
    }
