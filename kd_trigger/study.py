"""The study stage: does distillation pay, for which student, from which teacher, at which (T, w)?

For every studied student and seed, one label-only baseline and one distilled copy per studied pairing
are trained from the SAME initial weights (shared per seed) on the same batches: by default the pairing
the student ships with (its teacher and (T, w)); with ``study.grid``, every setting of it for every
studied teacher (:meth:`kd_trigger.config.Config.study_pairs`). The setting per (student, teacher), and then the teacher per student, are
chosen on the validation split only (``study.select_on``); the test split only measures. The chosen
pairing is then trained again on smaller training fractions for a low-data curve and, with
``study.augment_beta_max`` > 0, for the augmentation control: baseline and KD trained on randomly boosted
jets (:mod:`kd_trigger.data.augment`), four arms compared at ``study.robustness_betas``; the report
claims a robustness gain from KD only where KD beats augmentation or adds to it
(:func:`kd_trigger.report.markdown.robustness_sentence`). The trainings run on a Dask cluster
(``study.workers`` local process workers, or ``study.scheduler``), each cached, so a killed study resumes.

Every figure is a KD/baseline ratio over seeds (the mean of the per-seed ratios, every per-seed value
kept) with a 68% interval, the wider of two (:data:`INTERVAL_TEXT`): a hierarchical bootstrap (seeds
with replacement, then the test jets within each drawn seed, the same jets for both models) and a
Student-t interval of the per-seed log ratios. Test-jet and seed-to-seed fluctuations both enter.

Outputs: ``artifacts/<run>/study.json`` (:class:`kd_trigger.contracts.Study`), ``study.md`` and the
plots in ``study/``. The trainings (each cached under a digest of all it depends on) are
:mod:`kd_trigger.study_training`'s, the statistics :mod:`kd_trigger.stats`'s, the Markdown
:mod:`kd_trigger.report.markdown`'s.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from kd_trigger.class_stats import class_comparison
from kd_trigger.cluster import run_tasks
from kd_trigger.config import Config, KdSetting, StudentConfig
from kd_trigger.contracts import (
    ARMS,
    COMPARISONS,
    AugmentationArms,
    Interval,
    KdOverBaseline,
    LowDataPoint,
    SeedFigures,
    StudentStudy,
    Study,
    StudySetting,
    TeacherSummary,
    finite_or_none,
)
from kd_trigger.distill.training import training_cost
from kd_trigger.evaluate import accuracy
from kd_trigger.layout import STUDY_LOW_DATA_PLOT, STUDY_RATIO_PLOT, RunLayout, study_boost_plot
from kd_trigger.models.students import check_student
from kd_trigger.report.markdown import fmt_interval, study_markdown
from kd_trigger.runs import write_text_atomic
from kd_trigger.stage_types import StageContext, StageDecl, StageResult, teacher_stage_name
from kd_trigger.stats import (
    METRICS,
    accuracy_metric,
    auc,
    figure_of_merit,
    jet_noise,
    paired_ratio,
    r30,
    r50,
    ratio,
    ratio_noise,
)
from kd_trigger.study_training import Trained, Trainer, TrainJob, train_task

log = logging.getLogger(__name__)

PAPER = {
    "source": "arXiv:2311.14160 (KD4Jets repository plots, read off approximately); shared/notes/physics.md",
    "data_set": "Top Quark Tagging reference, 1.2M training jets, all constituents: ANOTHER data set than ours",
    "rows": [
        {"model": "LorentzNet teacher", "accuracy": 0.9425, "rejection_at_30": 2193, "rejection_at_50": 534},
        {
            "model": "Deep Sets",
            "accuracy": 0.930,
            "rejection_at_30": 748,
            "rejection_at_50": 219,
            "acc_beta_0.5": 0.656,
        },
        {
            "model": "Deep Sets + KD",
            "accuracy": 0.932,
            "rejection_at_30": 935,
            "rejection_at_50": 242,
            "acc_beta_0.5": 0.672,
        },
        {
            "model": "MLP",
            "accuracy": 0.904,
            "rejection_at_30": 257,
            "rejection_at_50": 83,
            "acc_beta_0.5": 0.633,
        },
        {
            "model": "MLP + KD",
            "accuracy": 0.914,
            "rejection_at_30": 375,
            "rejection_at_50": 119,
            "acc_beta_0.5": 0.642,
        },
    ],
}
"""The paper's numbers, shown beside ours and labelled as another data set."""


INTERVAL_TEXT = (
    "68% intervals: the wider of a hierarchical bootstrap (seeds with replacement, then the test jets with "
    "replacement within each drawn seed, the same jets for both models; mean of the per-seed ratios) and a "
    "Student-t interval of the mean per-seed log ratio (exponentiated); each interval's `method` names the "
    "one its lo68/hi68 are, both are kept under `hierarchical_bootstrap` and `t_log_ratio`"
)
"""study.json's ``interval_method``."""


# -- the stage ------------------------------------------------------------------------------------
def _teacher_summary(cfg: Config, name: str) -> TeacherSummary:
    """What the teacher stage of ``name`` recorded (its test metrics, size and training time)."""
    m = json.loads(RunLayout.of(cfg).teacher_metrics(name).read_text())
    return TeacherSummary(
        kind=m["kind"],
        n_particles=m["n_particles"],
        auc=m["auc"],
        rejection_at_30=m.get("rejection_at_30"),
        rejection_at_50=m.get("rejection_at_50"),
        n_parameters=m["n_parameters"],
        training_seconds=float(m.get("training_seconds") or 0.0),
    )


def _figures(trainer: Trainer, seed: int, trained: Trained, select_on: str) -> SeedFigures:
    labels = trainer.labels["test"]
    logits = trained.test_logits
    return SeedFigures.model_validate(
        finite_or_none(
            {
                "seed": seed,
                "auc": auc(labels, logits),
                "rejection_at_30": r30(labels, logits),
                "rejection_at_50": r50(labels, logits),
                "accuracy": accuracy(labels, logits),
                "rejection_at_30_jet_noise": jet_noise(
                    labels, logits, r30, trainer.cfg.study.bootstrap, trainer.cfg.run.seed + seed
                )
                if len(trainer.cfg.data.classes) == 2
                else None,
                "accuracy_at_beta": {
                    f"{beta:g}": accuracy(labels, trained.boost_logits[beta]) for beta in trainer.betas
                },
                "val_selection": figure_of_merit(select_on, trainer.cfg.data.classes)(
                    trainer.labels["val"], trained.val_logits
                ),
                "best_epoch": trained.best_epoch,
                "train_seconds": round(trained.seconds, 1),
            }
        )
    )


def _compare(
    trainer: Trainer, base: list[Trained], kd: list[Trained], n_boot: int, seed: int
) -> KdOverBaseline:
    labels = trainer.labels["test"]
    b = [t.test_logits for t in base]
    k = [t.test_logits for t in kd]
    intervals = {name: paired_ratio(labels, b, k, metric, n_boot, seed) for name, metric in METRICS.items()}
    if len(trainer.cfg.data.classes) == 2:
        # R30 rests on the fewest background jets: say how much of its interval the test split makes.
        intervals["rejection_at_30"] = intervals["rejection_at_30"].model_copy(
            update={"noise": ratio_noise(labels, b, k, r30, n_boot, seed)}
        )
    return KdOverBaseline(
        **intervals,
        accuracy_at_beta={
            f"{beta:g}": paired_ratio(
                labels,
                [t.boost_logits[beta] for t in base],
                [t.boost_logits[beta] for t in kd],
                accuracy_metric,
                n_boot,
                seed,
            )
            for beta in trainer.betas
        },
        **class_comparison(labels, b, k, trainer.cfg.data.classes, n_boot, seed),
    )


def _val_ratio(trainer: Trainer, base: list[Trained], kd: list[Trained], select_on: str) -> float:
    labels = trainer.labels["val"]
    metric = figure_of_merit(select_on, trainer.cfg.data.classes)
    return float(
        np.mean([ratio(metric, labels, k.val_logits, b.val_logits) for b, k in zip(base, kd, strict=True)])
    )


def _settings(
    trainer: Trainer, spec: StudentConfig, seeds: list[int], done: dict[TrainJob, Trained]
) -> tuple[list[StudySetting], StudySetting]:
    """Every studied (teacher, setting) with its figures (:meth:`Config.study_pairs`), each teacher's best
    marked ``chosen`` on the validation split, and the student's best of those."""
    scfg = trainer.cfg.study
    base = [done[TrainJob.of(spec.name, s)] for s in seeds]
    pairs = trainer.cfg.study_pairs(spec.name)
    settings: list[StudySetting] = []
    for teacher in dict.fromkeys(t for t, _ in pairs):
        best_val, best_index = -np.inf, -1
        for setting in [k for t, k in pairs if t == teacher]:
            kd = [done[TrainJob.of(spec.name, s, teacher, setting)] for s in seeds]
            val = _val_ratio(trainer, base, kd, scfg.select_on)
            settings.append(
                StudySetting.model_validate(
                    finite_or_none(
                        {
                            "teacher": teacher,
                            "temperature": setting.temperature,
                            "kd_weight": setting.kd_weight,
                            "val_selection_ratio": val,
                            "kd": [
                                _figures(trainer, s, t, scfg.select_on).model_dump()
                                for s, t in zip(seeds, kd, strict=True)
                            ],
                            "kd_over_baseline": _compare(
                                trainer, base, kd, scfg.bootstrap, trainer.cfg.run.seed
                            ),
                        }
                    )
                )
            )
            if np.isfinite(val) and val > best_val:
                best_val, best_index = val, len(settings) - 1
        if best_index >= 0:
            settings[best_index].chosen = True
    chosen = [s for s in settings if s.chosen]
    best = max(chosen, key=lambda s: s.val_selection_ratio or -np.inf) if chosen else settings[0]
    return settings, best


def follow_up_jobs(
    cfg: Config, spec: StudentConfig, seeds: list[int], teacher: str, setting: KdSetting
) -> list[TrainJob]:
    """The trainings at the chosen (``teacher``, ``setting``): the low-data curve and the augmentation
    control's two arms."""
    jobs = []
    for fraction in cfg.study.train_fractions:
        jobs += [TrainJob.of(spec.name, s, None, None, fraction) for s in seeds]
        jobs += [TrainJob.of(spec.name, s, teacher, setting, fraction) for s in seeds]
    beta_max = cfg.study.augment_beta_max
    if beta_max > 0:
        jobs += [TrainJob.of(spec.name, s, augment=beta_max) for s in seeds]
        jobs += [TrainJob.of(spec.name, s, teacher, setting, augment=beta_max) for s in seeds]
    return jobs


def first_round(cfg: Config, students: list[StudentConfig], seeds: list[int]) -> list[TrainJob]:
    """The trainings the study can start at once: every baseline and every (teacher, setting) copy, and,
    for a student with a single pairing (the default study: nothing for the validation split to choose),
    its follow-up trainings too. One round then trains everything on one cluster, the costliest first,
    instead of two rounds with a worker idle at the end of each."""
    jobs = []
    for spec in students:
        pairs = cfg.study_pairs(spec.name)
        jobs += [TrainJob.of(spec.name, s) for s in seeds]
        jobs += [TrainJob.of(spec.name, s, t, setting) for t, setting in pairs for s in seeds]
        if len(pairs) == 1:
            jobs += follow_up_jobs(cfg, spec, seeds, *pairs[0])
    return jobs


def _augmentation(
    trainer: Trainer, spec: StudentConfig, seeds: list[int], best: StudySetting, done: dict[TrainJob, Trained]
) -> AugmentationArms:
    """The four arms' accuracies at the robustness betas and the control's ratios (:data:`COMPARISONS`)."""
    cfg = trainer.cfg
    beta_max = cfg.study.augment_beta_max
    setting = KdSetting(temperature=best.temperature, kd_weight=best.kd_weight)
    runs = {
        "baseline": [done[TrainJob.of(spec.name, s)] for s in seeds],
        "kd": [done[TrainJob.of(spec.name, s, best.teacher, setting)] for s in seeds],
        "baseline_augmented": [done[TrainJob.of(spec.name, s, augment=beta_max)] for s in seeds],
        "kd_augmented": [
            done[TrainJob.of(spec.name, s, best.teacher, setting, augment=beta_max)] for s in seeds
        ],
    }
    labels = trainer.labels["test"]
    mean_accuracy: dict[str, dict[str, float | None]] = {}
    ratios: dict[str, dict[str, Interval]] = {}
    for beta in cfg.study.robustness_betas:
        key = f"{beta:g}"
        mean_accuracy[key] = finite_or_none(
            {arm: float(np.mean([accuracy(labels, t.boost_logits[beta]) for t in runs[arm]])) for arm in ARMS}
        )
        ratios[key] = {
            name: paired_ratio(
                labels,
                [t.boost_logits[beta] for t in runs[den]],
                [t.boost_logits[beta] for t in runs[num]],
                accuracy_metric,
                cfg.study.bootstrap,
                cfg.run.seed,
            )
            for name, (num, den) in COMPARISONS.items()
        }
    return AugmentationArms(
        beta_max=beta_max,
        teacher=best.teacher,
        temperature=best.temperature,
        kd_weight=best.kd_weight,
        baseline_augmented=[
            _figures(trainer, s, t, cfg.study.select_on)
            for s, t in zip(seeds, runs["baseline_augmented"], strict=True)
        ],
        kd_augmented=[
            _figures(trainer, s, t, cfg.study.select_on)
            for s, t in zip(seeds, runs["kd_augmented"], strict=True)
        ],
        accuracy=mean_accuracy,
        ratios=ratios,
        kd_over_baseline_augmented=_compare(
            trainer, runs["baseline_augmented"], runs["kd_augmented"], cfg.study.bootstrap, cfg.run.seed
        ),
    )


def run_all(trainer: Trainer, jobs: list[TrainJob]) -> dict[TrainJob, Trained]:
    """Every job's result: the cached ones read back, the others trained on the Dask cluster of
    ``study.workers`` / ``study.scheduler`` (each written to the cache as it finishes, so a killed study
    keeps what was done)."""
    unique = list(dict.fromkeys(jobs))
    todo = [j for j in unique if not trainer.cached(j)]
    log.info("study: %d trainings, %d cached, %d to run", len(unique), len(unique) - len(todo), len(todo))
    if todo:
        run_tasks(
            train_task,
            [trainer.task(j) for j in todo],
            [f"study-training-{trainer.key(j)}" for j in todo],
            trainer.cfg.study.workers,
            trainer.cfg.study.scheduler,
            "study trainings",
            [_cost(trainer.cfg, j) for j in todo],
        )
    return {j: trainer.run(j) for j in unique}


AUGMENTED_COST = 2.0
"""How much longer an augmented training takes than its unaugmented twin (the default study, 5 seeds:
1.7x for the Deep Sets, 2.2x for the MLP: boosting every epoch and more epochs before the best)."""


def _cost(cfg: Config, job: TrainJob) -> float:
    """The rough cost that orders the study's trainings on the workers (the longest first)."""
    cost = training_cost(cfg.student(job.student), job.fraction)
    return cost * AUGMENTED_COST if job.augment else cost


def study_stage(ctx: StageContext) -> StageResult:
    """Run the study of ``cfg.study`` and write study.json, study.md and the plots.

    The trainings run on the Dask cluster (:func:`run_all`) in up to two rounds: every baseline and every
    KD setting of the grid (:func:`first_round`); then, at the setting the validation split chose, the
    low-data curve and the augmentation control's arms, unless there was nothing to choose and they ran
    in the first round.
    """
    cfg = ctx.cfg
    scfg = cfg.study
    layout = RunLayout.of(cfg)
    t0 = time.perf_counter()
    # Every upstream digest enters the cache keys: new jets or a retrained teacher invalidate them.
    trainer = Trainer(cfg, {name: record.digest for name, record in ctx.upstream.items()})
    seeds = [cfg.run.seed + k for k in range(scfg.seeds)]
    teachers = cfg.studied_teachers()
    students = [cfg.student(n) for n in cfg.studied_students()]
    done = run_all(trainer, first_round(cfg, students, seeds))
    chosen = {spec.name: _settings(trainer, spec, seeds, done) for spec in students}
    follow_ups = [
        job
        for spec in students
        for best in [chosen[spec.name][1]]
        for job in follow_up_jobs(
            cfg, spec, seeds, best.teacher, KdSetting(temperature=best.temperature, kd_weight=best.kd_weight)
        )
    ]
    if rest := [j for j in follow_ups if j not in done]:
        done.update(run_all(trainer, rest))
    results: dict[str, StudentStudy] = {}
    for spec in students:
        settings, best = chosen[spec.name]
        setting = KdSetting(temperature=best.temperature, kd_weight=best.kd_weight)
        low_data = []
        for fraction in scfg.train_fractions:
            b = [done[TrainJob.of(spec.name, s, None, None, fraction)] for s in seeds]
            k = [done[TrainJob.of(spec.name, s, best.teacher, setting, fraction)] for s in seeds]
            low_data.append(
                LowDataPoint(
                    train_fraction=fraction,
                    n_train=int(round(fraction * len(trainer.labels["train"]))),
                    teacher=best.teacher,
                    temperature=best.temperature,
                    kd_weight=best.kd_weight,
                    baseline=[_figures(trainer, s, t, scfg.select_on) for s, t in zip(seeds, b, strict=True)],
                    kd=[_figures(trainer, s, t, scfg.select_on) for s, t in zip(seeds, k, strict=True)],
                    kd_over_baseline=_compare(trainer, b, k, scfg.bootstrap, cfg.run.seed),
                )
            )
        base = [done[TrainJob.of(spec.name, s)] for s in seeds]
        results[spec.name] = StudentStudy(
            baseline=[_figures(trainer, s, t, scfg.select_on) for s, t in zip(seeds, base, strict=True)],
            settings=settings,
            best={"teacher": best.teacher, "temperature": best.temperature, "kd_weight": best.kd_weight},
            low_data=low_data,
            augmentation=_augmentation(trainer, spec, seeds, best, done)
            if scfg.augment_beta_max > 0
            else None,
        )
        log.info(
            "study %s: best on validation: teacher %s, T=%g, w=%g; test R30 ratio %s",
            spec.name,
            best.teacher,
            best.temperature,
            best.kd_weight,
            fmt_interval(best.kd_over_baseline.rejection_at_30),
        )
    study = Study(
        run=cfg.run.name,
        seeds=seeds,
        select_on=scfg.select_on,
        n_test=len(trainer.labels["test"]),
        n_test_background=int(np.sum(trainer.labels["test"] == 0)),
        teachers={name: _teacher_summary(cfg, name) for name in teachers},
        students=results,
        seconds=round(time.perf_counter() - t0, 1),
        paper=PAPER,
        interval_method=INTERVAL_TEXT,
    )
    study.write(ctx.out(layout.study))
    plots = ctx.out(layout.study_plots)
    plots.mkdir(parents=True, exist_ok=True)
    from kd_trigger.report.study_plots import plot_low_data, plot_ratios, plot_robustness  # matplotlib

    images = [plot_ratios(study, plots / STUDY_RATIO_PLOT)]
    images += [plot_robustness(study, name, study_boost_plot(plots, name)) for name in results]
    if scfg.train_fractions:
        images.append(plot_low_data(study, plots / STUDY_LOW_DATA_PLOT))
    write_text_atomic(ctx.out(layout.study_md), study_markdown(study, [p.name for p in images]))
    return StageResult(extra={"seconds": study.seconds})


# -- the stage declaration ------------------------------------------------------------------------
def _study_needs(cfg: Config) -> tuple[str, ...]:
    return ("data", *(teacher_stage_name(name) for name in cfg.studied_teachers()))


def _study_config(cfg: Config) -> dict[str, Any]:
    return {"seed": cfg.run.seed, **cfg.study_view()}


def _study_outputs(cfg: Config) -> list[Path]:
    return RunLayout.of(cfg).study_outputs()


def _check_students(cfg: Config) -> None:
    for spec in cfg.students:
        check_student(spec)


STAGE = StageDecl(
    "study",
    study_stage,
    _study_config,
    _study_outputs,
    needs=_study_needs,
    check=_check_students,
    description="multi-seed study: baseline and KD per student, teacher and setting, with intervals",
)
