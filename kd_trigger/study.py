"""The study stage: does distillation pay, for which student, from which teacher, at which (T, w)?

For every studied student and seed, one label-only baseline and, for every studied teacher and every
setting of ``study.grid``, one distilled copy are trained from the SAME initial weights (shared per
seed) on the same batches. The setting per (student, teacher), and then the teacher per student, are
chosen on the validation split only (``study.select_on``); the test split only measures. The chosen
pairing is then trained again on smaller training fractions for a low-data curve.

Every figure is a KD/baseline ratio over seeds, with a 68% interval from a paired bootstrap: each
replica draws the seeds with replacement and the test jets with replacement (the same jets for both
models), and averages the per-seed ratios. Test-jet and seed-to-seed fluctuations both enter.

Outputs: ``artifacts/<run>/study.json`` (:class:`kd_trigger.contracts.Study`), ``study.md`` and the
plots in ``study/``. Each training is cached in ``artifacts/<run>/study-cache/`` under a digest of all
it depends on, so a killed study resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kd_trigger.config import PAIRING_FIELDS, Config, KdSetting, StudentConfig
from kd_trigger.contracts import (
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
from kd_trigger.evaluate import accuracy, rejection_at, roc_auc, scores_from_logits
from kd_trigger.fingerprint import code_digest
from kd_trigger.layout import RunLayout
from kd_trigger.models.students import check_student
from kd_trigger.runs import remove_path, tmp_name, write_text_atomic
from kd_trigger.stage_types import StageContext, StageDecl, StageResult, teacher_stage_name

log = logging.getLogger(__name__)

CACHE_DIR = "study-cache"
PLOTS_DIR = "study"

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

Metric = Callable[[np.ndarray, np.ndarray], float]


# -- metrics and the bootstrap (pure numpy) -------------------------------------------------------
def r30(labels: np.ndarray, logits: np.ndarray) -> float:
    return rejection_at(labels, scores_from_logits(logits), 0.3).rejection


def r50(labels: np.ndarray, logits: np.ndarray) -> float:
    return rejection_at(labels, scores_from_logits(logits), 0.5).rejection


def auc(labels: np.ndarray, logits: np.ndarray) -> float:
    return roc_auc(labels, scores_from_logits(logits))


METRICS: dict[str, Metric] = {"rejection_at_30": r30, "rejection_at_50": r50, "auc": auc}


def resample_plan(n_items: int, n_seeds: int, n_boot: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(seed indices (n_boot, n_seeds), item indices (n_boot, n_items)) of the paired bootstrap."""
    rng = np.random.default_rng([seed, 0xB007])
    return rng.integers(0, n_seeds, size=(n_boot, n_seeds)), rng.integers(0, n_items, size=(n_boot, n_items))


def _ratio(metric: Metric, labels: np.ndarray, kd: np.ndarray, base: np.ndarray) -> float:
    denominator = metric(labels, base)
    return metric(labels, kd) / denominator if denominator else float("nan")


def paired_ratio(
    labels: np.ndarray,
    base: Sequence[np.ndarray],
    kd: Sequence[np.ndarray],
    metric: Metric,
    n_boot: int,
    seed: int,
) -> Interval:
    """KD/baseline ``metric`` over seeds: per-seed ratios, their mean and a 68% paired-bootstrap interval.

    ``base[s]`` and ``kd[s]`` are the two models' outputs of seed s on the same jets ``labels``. Each
    replica resamples the seeds and the jets (the same jets for both models) and averages the per-seed
    ratios; replicas that lose a class are skipped.
    """
    labels = np.asarray(labels).astype(np.int64).ravel()
    per_seed = [_ratio(metric, labels, k, b) for b, k in zip(base, kd, strict=True)]
    seeds_b, jets_b = resample_plan(len(labels), len(base), n_boot, seed)
    replicas = []
    for seeds, jets in zip(seeds_b, jets_b, strict=True):
        lb = labels[jets]
        if lb.min() == lb.max():
            continue
        replicas.append(float(np.mean([_ratio(metric, lb, kd[s][jets], base[s][jets]) for s in seeds])))
    finite = [r for r in replicas if np.isfinite(r)]
    lo, hi = np.percentile(finite, [16, 84]) if finite else (np.nan, np.nan)
    return Interval.model_validate(
        finite_or_none(
            {
                "mean": float(np.mean(per_seed)),
                "lo68": float(lo),
                "hi68": float(hi),
                "per_seed": [float(r) for r in per_seed],
            }
        )
    )


def _accuracy_metric(labels: np.ndarray, logits: np.ndarray) -> float:
    return accuracy(labels, logits)


# -- training, with a cache -----------------------------------------------------------------------
@dataclass
class Trained:
    """What the study keeps of one training: outputs on the splits it is judged on."""

    val_logits: np.ndarray
    test_logits: np.ndarray
    boost_logits: dict[float, np.ndarray]
    best_epoch: int
    seconds: float


class Trainer:
    """Trains (or reads from the cache) the students of the study, on arrays prepared once."""

    def __init__(self, ctx: StageContext) -> None:
        from kd_trigger.data.boost import boost
        from kd_trigger.data.readers import load_jets

        self.cfg = ctx.cfg
        self.cache = self.cfg.artifacts / CACHE_DIR
        self.cache.mkdir(parents=True, exist_ok=True)
        data = load_jets(self.cfg.data_path, self.cfg)
        self.train, self.val, self.test = (data.select(s) for s in ("train", "val", "test"))
        self.labels: dict[str, np.ndarray] = {
            "train": self.train.is_signal.astype(np.int32),
            "val": self.val.is_signal.astype(np.int64),
            "test": self.test.is_signal.astype(np.int64),
        }
        self.betas = [b for b in self.cfg.distill.boost_betas if b > 0]
        self.boosted = {beta: boost(self.test.constituents, beta) for beta in self.betas}
        # Every upstream digest enters the cache key: new jets or a retrained teacher invalidate it.
        self.upstream = {name: record.digest for name, record in ctx.upstream.items()}
        self.code = code_digest("kd_trigger.distill.pipeline", "kd_trigger.models.students")
        self._inputs: dict[tuple[str, str], np.ndarray] = {}

    def inputs(self, spec: StudentConfig, split: str | float) -> np.ndarray:
        from kd_trigger.models.students import student_inputs

        key = (spec.name, str(split))
        if key not in self._inputs:
            source = {"train": self.train, "val": self.val, "test": self.test}
            constituents = self.boosted[split] if isinstance(split, float) else source[split].constituents
            self._inputs[key] = student_inputs(spec, constituents)
        return self._inputs[key]

    def _key(
        self, spec: StudentConfig, seed: int, teacher: str | None, setting: KdSetting | None, fraction: float
    ) -> str:
        payload = {
            "student": spec.model_dump(mode="json", exclude=set(PAIRING_FIELDS)),
            "seed": seed,
            "teacher": teacher,
            "setting": setting.model_dump(mode="json") if setting else None,
            "fraction": fraction,
            "distill": self.cfg.distill.model_dump(mode="json", exclude=set(PAIRING_FIELDS)),
            "upstream": {k: v for k, v in self.upstream.items() if k == "data" or k == f"teacher:{teacher}"},
            # The training functions (distill.pipeline, the students, what they import): a change there
            # retrains; a change to this module's tables and plots keeps 45 minutes of trainings.
            "code": self.code,
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]

    def run(
        self,
        spec: StudentConfig,
        seed: int,
        teacher: str | None,
        setting: KdSetting | None,
        fraction: float = 1.0,
    ) -> Trained:
        """One training (baseline when ``teacher`` is None) from the seed's shared initial weights."""
        key = self._key(spec, seed, teacher, setting, fraction)
        path = self.cache / f"{key}.npz"
        if path.is_file():
            with np.load(path) as cached:
                return Trained(
                    val_logits=cached["val"],
                    test_logits=cached["test"],
                    boost_logits={beta: cached[f"boost_{beta:g}"] for beta in self.betas},
                    best_epoch=int(cached["best_epoch"]),
                    seconds=float(cached["seconds"]),
                )
        trained = self._train(spec, seed, teacher, setting, fraction)
        staging = tmp_name(path)
        try:
            with open(staging, "wb") as handle:
                np.savez(
                    handle,
                    val=trained.val_logits,
                    test=trained.test_logits,
                    best_epoch=trained.best_epoch,
                    seconds=trained.seconds,
                    **{f"boost_{beta:g}": logits for beta, logits in trained.boost_logits.items()},
                )
            staging.replace(path)
        finally:
            remove_path(staging)
        return trained

    def _train(
        self, spec: StudentConfig, seed: int, teacher: str | None, setting: KdSetting | None, fraction: float
    ) -> Trained:
        import tensorflow as tf

        from kd_trigger.distill.pipeline import _predict, student_seed_for, train_student, train_subset
        from kd_trigger.distill.pruning import pruning_plan
        from kd_trigger.distill.teacher_stage import cached_logits
        from kd_trigger.models.students import build_student

        subset = train_subset(len(self.labels["train"]), fraction, seed)
        x_tr = self.inputs(spec, "train")[subset]
        y_tr = self.labels["train"][subset]
        x_va = self.inputs(spec, "val")
        y_va = self.labels["val"].astype(np.int32)
        t_tr = t_va = None
        dcfg = self.cfg.distill.model_copy(update={"kd_weight": 0.0})
        variant = "baseline"
        if teacher is not None and setting is not None:
            t_tr = cached_logits(self.cfg, teacher, "train")[subset]
            t_va = cached_logits(self.cfg, teacher, "val")
            dcfg = self.cfg.distill.model_copy(
                update={"temperature": setting.temperature, "kd_weight": setting.kd_weight}
            )
            variant = "kd"
        init_seed = student_seed_for(seed, spec)
        tf.keras.utils.set_random_seed(init_seed)
        student = build_student(spec)  # the seed's initial weights: identical for baseline and every KD run
        label = (
            f"study {spec.name} seed {seed} "
            + (f"{teacher} T={setting.temperature:g} w={setting.kd_weight:g}" if setting else "baseline")
            + (f" on {fraction:g} of train" if fraction < 1 else "")
        )
        record = train_student(
            student,
            dcfg,
            variant,
            (x_tr, y_tr, t_tr),
            (x_va, y_va, t_va),
            seed=init_seed,
            label=label,
            pruning=pruning_plan(spec, dcfg.epochs),
        )
        return Trained(
            val_logits=_predict(student, x_va),
            test_logits=_predict(student, self.inputs(spec, "test")),
            boost_logits={beta: _predict(student, self.inputs(spec, beta)) for beta in self.betas},
            best_epoch=record.best_epoch,
            seconds=record.seconds,
        )


# -- the stage ------------------------------------------------------------------------------------
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
                "accuracy_at_beta": {
                    f"{beta:g}": accuracy(labels, trained.boost_logits[beta]) for beta in trainer.betas
                },
                "val_selection": METRICS[select_on](trainer.labels["val"], trained.val_logits),
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
    return KdOverBaseline(
        **{name: paired_ratio(labels, b, k, metric, n_boot, seed) for name, metric in METRICS.items()},
        accuracy_at_beta={
            f"{beta:g}": paired_ratio(
                labels,
                [t.boost_logits[beta] for t in base],
                [t.boost_logits[beta] for t in kd],
                _accuracy_metric,
                n_boot,
                seed,
            )
            for beta in trainer.betas
        },
    )


def _val_ratio(trainer: Trainer, base: list[Trained], kd: list[Trained], select_on: str) -> float:
    labels = trainer.labels["val"]
    metric = METRICS[select_on]
    return float(
        np.mean([_ratio(metric, labels, k.val_logits, b.val_logits) for b, k in zip(base, kd, strict=True)])
    )


def _teacher_summary(cfg: Config, name: str) -> TeacherSummary:
    from kd_trigger.distill.teacher_stage import teacher_dir

    m = json.loads((teacher_dir(cfg, name) / "metrics.json").read_text())
    return TeacherSummary(
        kind=m["kind"],
        n_particles=m["n_particles"],
        auc=m["auc"],
        rejection_at_30=m.get("rejection_at_30"),
        rejection_at_50=m.get("rejection_at_50"),
        n_parameters=m["n_parameters"],
        training_seconds=float(m.get("training_seconds") or 0.0),
    )


def study_stage(ctx: StageContext) -> StageResult:
    """Run the study of ``cfg.study`` and write study.json, study.md and the plots."""
    cfg = ctx.cfg
    scfg = cfg.study
    t0 = time.perf_counter()
    trainer = Trainer(ctx)
    seeds = [cfg.run.seed + k for k in range(scfg.seeds)]
    teachers = list(scfg.teachers or [t.name for t in cfg.teachers])
    students = [cfg.student(n) for n in (scfg.students or [s.name for s in cfg.students])]
    results: dict[str, StudentStudy] = {}
    for spec in students:
        base = [trainer.run(spec, s, None, None) for s in seeds]
        settings: list[StudySetting] = []
        kd_runs: dict[tuple[str, int], list[Trained]] = {}
        for teacher in teachers:
            best_val, best_index = -np.inf, -1
            for setting in scfg.grid:
                kd = [trainer.run(spec, s, teacher, setting) for s in seeds]
                val = _val_ratio(trainer, base, kd, scfg.select_on)
                kd_runs[(teacher, len(settings))] = kd
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
                                "kd_over_baseline": _compare(trainer, base, kd, scfg.bootstrap, cfg.run.seed),
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
        low_data = []
        for fraction in scfg.train_fractions:
            setting = KdSetting(temperature=best.temperature, kd_weight=best.kd_weight)
            b = [trainer.run(spec, s, None, None, fraction) for s in seeds]
            k = [trainer.run(spec, s, best.teacher, setting, fraction) for s in seeds]
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
        results[spec.name] = StudentStudy(
            baseline=[_figures(trainer, s, t, scfg.select_on) for s, t in zip(seeds, base, strict=True)],
            settings=settings,
            best={"teacher": best.teacher, "temperature": best.temperature, "kd_weight": best.kd_weight},
            low_data=low_data,
        )
        log.info(
            "study %s: best on validation: teacher %s, T=%g, w=%g; test R30 ratio %s",
            spec.name,
            best.teacher,
            best.temperature,
            best.kd_weight,
            _fmt_interval(best.kd_over_baseline.rejection_at_30),
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
    )
    study.write(ctx.out(cfg.artifacts / "study.json"))
    plots = ctx.out(cfg.artifacts / PLOTS_DIR)
    plots.mkdir(parents=True, exist_ok=True)
    from kd_trigger.report.study_plots import plot_low_data, plot_ratios, plot_robustness

    images = [plot_ratios(study, plots / "ratio_per_seed.png")]
    images += [plot_robustness(study, name, plots / f"boost_{name}.png") for name in results]
    if scfg.train_fractions:
        images.append(plot_low_data(study, plots / "low_data.png"))
    write_text_atomic(ctx.out(cfg.artifacts / "study.md"), study_markdown(study, [p.name for p in images]))
    return StageResult(extra={"seconds": study.seconds})


# -- study.md -------------------------------------------------------------------------------------
def _picked(s: StudentStudy, st: StudySetting) -> str:
    """'chosen' for the student's setting, 'best for teacher' for each other teacher's best."""
    if st is s.chosen_setting():
        return "**chosen**"
    return "best for this teacher" if st.chosen else ""


def _fmt_interval(interval: Interval, digits: int = 2) -> str:
    if interval.mean is None:
        return "n/a"
    text = f"{interval.mean:.{digits}f}"
    if interval.lo68 is not None and interval.hi68 is not None:
        text += f" [{interval.lo68:.{digits}f}, {interval.hi68:.{digits}f}]"
    return text


def _seeds(interval: Interval) -> str:
    return " / ".join("n/a" if v is None else f"{v:.2f}" for v in interval.per_seed)


def _mean(values: list[float | None]) -> str:
    present = [v for v in values if v is not None]
    return f"{np.mean(present):.3f}" if present else "n/a"


def study_markdown(study: Study, images: list[str]) -> str:
    """The study as Markdown: teachers, per-student settings with intervals, low-data curve, the paper."""
    top_beta = max(
        (float(b) for s in study.students.values() for b in s.baseline[0].accuracy_at_beta), default=None
    )
    beta_key = f"{top_beta:g}" if top_beta is not None else None
    lines = [
        f"# Study of run {study.run}",
        "",
        f"{len(study.seeds)} seeds ({', '.join(map(str, study.seeds))}), initial weights shared per seed; "
        f"test split {study.n_test:,} jets ({study.n_test_background:,} background). Settings chosen on the "
        f"validation split by the KD/baseline ratio of `{study.select_on}`; the test split only measures. "
        "Ratios: mean of the per-seed ratios [68% interval of a paired bootstrap over test jets and seeds].",
        "",
        "## Teachers",
        "",
        "| teacher | kind | particles | parameters | test AUC | 1/eps_B @ 30% | training (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, t in study.teachers.items():
        r = "n/a" if t.rejection_at_30 is None else f"{t.rejection_at_30:.0f}"
        lines.append(
            f"| {name} | {t.kind} | {t.n_particles} | {t.n_parameters:,} | {t.auc:.4f} | {r} | {t.training_seconds:.0f} |"
        )
    for name, s in study.students.items():
        lines += [
            "",
            f"## Student `{name}`",
            "",
            f"Baseline: AUC {_mean([f.auc for f in s.baseline])}, 1/eps_B @ 30% "
            f"{_mean([f.rejection_at_30 for f in s.baseline])} (mean over seeds). Chosen on validation: "
            f"teacher `{s.best['teacher']}`, T = {s.best['temperature']:g}, w = {s.best['kd_weight']:g}.",
            "",
            "| teacher | T | w | picked on validation | val ratio | R30 ratio | per seed | R50 ratio | AUC ratio | "
            f"accuracy at beta={beta_key}: baseline -> KD |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for st in s.settings:
            acc_b = _mean([f.accuracy_at_beta.get(beta_key or "", None) for f in s.baseline])
            acc_k = _mean([f.accuracy_at_beta.get(beta_key or "", None) for f in st.kd])
            val = "n/a" if st.val_selection_ratio is None else f"{st.val_selection_ratio:.2f}"
            lines.append(
                f"| {st.teacher} | {st.temperature:g} | {st.kd_weight:g} | {_picked(s, st)} | {val} | "
                f"{_fmt_interval(st.kd_over_baseline.rejection_at_30)} | {_seeds(st.kd_over_baseline.rejection_at_30)} | "
                f"{_fmt_interval(st.kd_over_baseline.rejection_at_50)} | {_fmt_interval(st.kd_over_baseline.auc, 4)} | "
                f"{acc_b} -> {acc_k} |"
            )
        if s.low_data:
            lines += [
                "",
                "Low-data curve (chosen teacher and setting):",
                "",
                "| train fraction | jets | baseline R30 | KD R30 | R30 ratio |",
                "|---|---|---|---|---|",
            ]
            for p in s.low_data:
                lines.append(
                    f"| {p.train_fraction:g} | {p.n_train:,} | {_mean([f.rejection_at_30 for f in p.baseline])} | "
                    f"{_mean([f.rejection_at_30 for f in p.kd])} | {_fmt_interval(p.kd_over_baseline.rejection_at_30)} |"
                )
    lines += [
        "",
        "## The paper, on another data set",
        "",
        f"{study.paper['data_set']}. Source: {study.paper['source']}.",
        "",
        "| model | accuracy | 1/eps_B @ 30% | 1/eps_B @ 50% | accuracy at beta = 0.5 |",
        "|---|---|---|---|---|",
    ]
    for row in study.paper["rows"]:
        lines.append(
            f"| {row['model']} | {row['accuracy']:.3f} | {row['rejection_at_30']} | {row['rejection_at_50']} | "
            f"{row.get('acc_beta_0.5', '-')} |"
        )
    lines += ["", "## Plots", ""] + [f"![{image}]({PLOTS_DIR}/{image})" for image in images]
    return "\n".join(lines) + "\n"


# -- the stage declaration ------------------------------------------------------------------------
def _study_needs(cfg: Config) -> tuple[str, ...]:
    studied = cfg.study.teachers or tuple(t.name for t in cfg.teachers)
    return ("data", *(teacher_stage_name(name) for name in studied))


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
