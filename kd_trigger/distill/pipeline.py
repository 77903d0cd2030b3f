"""The distill stage: baseline and distilled students from the same start, then the physics evaluation.

For each student a label-only baseline and a distilled copy are trained from the SAME initial weights,
on the same jets in the same order (same seed), with the same optimiser settings and the same early
stopping rule, so their difference is the distillation and nothing else. The teacher's logits are
computed once (or read from the teacher stage) and fed with each batch: the teacher never runs in the
training loop. Outputs: artifacts/<run>/students/<name>/{baseline,kd}.h5 + history.json, and
artifacts/<run>/{metrics.json, summary.md, roc.png, boost.png}.
"""

from __future__ import annotations

import logging
import math
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kd_trigger.config import Config, DistillConfig, StudentConfig
from kd_trigger.contracts import Metrics, finite_or_none
from kd_trigger.distill.pruning import PruningPlan, check_sparsity, pruning_plan
from kd_trigger.errors import ConfigError, ModelError
from kd_trigger.layout import RunLayout
from kd_trigger.models.students import (
    build_student,
    check_student,
    kernel_sparsity,
    load_student_file,
    output_type,
    save_student,
    student_inputs,
    weight_bits_needed,
)
from kd_trigger.runs import write_json_atomic, write_text_atomic
from kd_trigger.stage_types import StageContext, StageDecl, StageResult, teacher_stage_name

log = logging.getLogger(__name__)

VARIANTS = ("baseline", "kd")
_PREDICT_BATCH = 4096


@dataclass
class TrainRecord:
    """What one training run did: per-epoch history, the epoch kept and how long it took."""

    variant: str
    monitor: str
    history: dict[str, list[float]] = field(default_factory=dict)
    best_epoch: int = 0
    best_value: float = math.nan
    epochs_run: int = 0
    seconds: float = 0.0
    pruning: PruningPlan | None = None
    sparsity: dict[str, float] = field(default_factory=dict)
    """Stored-zero fraction of each pruned kernel after training (empty without pruning)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "monitor": f"val_{self.monitor}",
            "best_epoch": self.best_epoch,
            "best_value": self.best_value,
            "epochs_run": self.epochs_run,
            "seconds": round(self.seconds, 2),
            "seconds_per_epoch": round(self.seconds / max(self.epochs_run, 1), 3),
            "pruning": self.pruning.to_dict() if self.pruning else None,
            "sparsity": self.sparsity,
            "history": self.history,
        }


def student_seed_for(seed: int, spec: StudentConfig) -> int:
    """A per-student seed that does not change when other students are added or reordered."""
    return (seed * 1_000_003 + zlib.crc32(spec.name.encode())) % (2**31 - 1)


def student_seed(cfg: Config, spec: StudentConfig) -> int:
    """The run's seed for ``spec``: initial weights and batch order of its baseline and KD copies."""
    return student_seed_for(cfg.run.seed, spec)


def train_subset(n_train: int, fraction: float, seed: int) -> np.ndarray:
    """Indices of the deterministic low-data subset (sorted, so the data order stays the split's order)."""
    if fraction >= 1.0:
        return np.arange(n_train)
    k = max(1, int(round(fraction * n_train)))
    return np.sort(np.random.default_rng(seed).permutation(n_train)[:k])


def _inputs(x: np.ndarray, teacher_logits: np.ndarray | None) -> dict[str, np.ndarray]:
    batch = {"student": x}
    if teacher_logits is not None:
        batch["teacher_logits"] = teacher_logits
    return batch


def train_student(
    student: Any,
    dcfg: DistillConfig,
    variant: str,
    train: tuple[np.ndarray, np.ndarray, np.ndarray | None],
    val: tuple[np.ndarray, np.ndarray, np.ndarray | None],
    seed: int,
    label: str = "",
    pruning: PruningPlan | None = None,
) -> TrainRecord:
    """Train ``student`` in place (baseline: labels only; kd: the distillation loss) with early stopping.

    ``train``/``val`` are (student inputs, labels, teacher logits or None). The data order of epoch ``e``
    depends only on ``seed`` and ``e``, so a baseline and a KD run with the same seed see the same batches.
    The weights of the best epoch on the validation split (``dcfg.monitor``) are restored at the end.

    With ``pruning`` (see :func:`kd_trigger.distill.pruning.pruning_plan`) the kernels are pruned on that
    schedule; only epochs from ``pruning.end_epoch`` on (at the target sparsity, with the final mask) can
    be kept or count towards the patience, and ``student`` ends as plain QKeras with exact zeros
    (wrappers stripped; ModelError if a kernel is short of the target).
    """
    import tensorflow as tf

    from kd_trigger.distill.distiller import Distiller
    from kd_trigger.distill.pruning import prune_wrap, pruning_callbacks, strip_pruned

    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    x_tr, y_tr, t_tr = train
    x_va, y_va, t_va = val
    if pruning is not None and pruning.end_epoch > dcfg.epochs:
        raise ValueError(f"pruning ends at epoch {pruning.end_epoch}, after the cap of {dcfg.epochs} epochs")
    steps_per_epoch = math.ceil(len(y_tr) / dcfg.batch_size)
    trained = student if pruning is None else prune_wrap(student, pruning, steps_per_epoch)
    callbacks = [] if pruning is None else pruning_callbacks()
    first_eligible = 1 if pruning is None else pruning.end_epoch
    kd_weight = dcfg.kd_weight if variant == "kd" else 0.0
    distiller = Distiller(
        trained, temperature=dcfg.temperature, kd_weight=kd_weight, name=f"distiller_{variant}"
    )
    distiller.compile(optimizer=tf.keras.optimizers.Adam(learning_rate=dcfg.learning_rate))
    val_ds = tf.data.Dataset.from_tensor_slices((_inputs(x_va, t_va), y_va)).batch(_PREDICT_BATCH)
    maximise = dcfg.monitor == "accuracy"
    record = TrainRecord(variant=variant, monitor=dcfg.monitor, pruning=pruning)
    best_weights = student.get_weights()
    best = -math.inf if maximise else math.inf
    since_best = 0
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    for epoch in range(1, dcfg.epochs + 1):
        t0 = time.perf_counter()
        order = rng.permutation(len(y_tr))
        train_ds = tf.data.Dataset.from_tensor_slices(
            (_inputs(x_tr[order], None if t_tr is None else t_tr[order]), y_tr[order])
        ).batch(dcfg.batch_size)
        hist = distiller.fit(
            train_ds, validation_data=val_ds, epochs=1, verbose=0, callbacks=callbacks
        ).history
        for key, values in hist.items():
            record.history.setdefault(key, []).append(float(values[-1]))
        value = float(hist[f"val_{dcfg.monitor}"][-1])
        improved = epoch >= first_eligible and (value > best if maximise else value < best)
        if improved:
            best, since_best = value, 0
            record.best_epoch, record.best_value = epoch, value
            best_weights = student.get_weights()  # the wrapped layers are student's own: masked kernels
        elif epoch >= first_eligible:
            since_best += 1
        record.epochs_run = epoch
        log.info(
            "%s epoch %d/%d: loss %.4f ce %.4f kd %.4f acc %.4f | val loss %.4f ce %.4f acc %.4f%s (%.1f s)",
            label or variant,
            epoch,
            dcfg.epochs,
            hist["loss"][-1],
            hist["ce"][-1],
            hist["kd"][-1],
            hist["accuracy"][-1],
            hist["val_loss"][-1],
            hist["val_ce"][-1],
            hist["val_accuracy"][-1],
            " *" if improved else "",
            time.perf_counter() - t0,
        )
        if since_best >= dcfg.patience:
            log.info(
                "%s: early stop after epoch %d, keeping epoch %d", label or variant, epoch, record.best_epoch
            )
            break
    student.set_weights(best_weights)
    if pruning is not None:
        if record.best_epoch < pruning.end_epoch:
            raise ModelError(
                f"{label or variant}: no epoch from {pruning.end_epoch} on had a finite val_{dcfg.monitor}; "
                "nothing at the target sparsity to keep"
            )
        # The kernels of the kept epoch already hold the final mask's zeros; stripping makes that explicit
        # (and applies the mask once more) and leaves student as plain QKeras.
        student.set_weights(strip_pruned(trained).get_weights())
        record.sparsity = check_sparsity(student, pruning, label or variant)
    record.seconds = time.perf_counter() - start
    return record


def _predict(model: Any, x: np.ndarray) -> np.ndarray:
    return np.asarray(model.predict(x, batch_size=_PREDICT_BATCH, verbose=0), dtype=np.float32)


def distill_stage(ctx: StageContext) -> StageResult:
    """Baseline and distilled students from the same start, then the physics evaluation.

    Reads the data stage's jets and each student's teacher's cached logits; writes
    ``students/<name>/{baseline,kd}.h5`` + ``history.json``, ``metrics.json``, ``summary.md`` and the plots.
    """
    import tensorflow as tf

    from kd_trigger.data.readers import load_jets
    from kd_trigger.distill.teacher_stage import cached_logits

    cfg = ctx.cfg
    t_start = time.perf_counter()
    data = load_jets(cfg.data_path, cfg)
    train, val, test = (data.select(s) for s in ("train", "val", "test"))
    subset = train_subset(len(train.is_signal), cfg.distill.train_fraction, cfg.run.seed)
    if len(subset) < 2:
        raise ConfigError(
            f"distill.train_fraction = {cfg.distill.train_fraction:g} leaves {len(subset)} training jet(s); raise it"
        )
    train_const = train.constituents[subset]
    y_train = train.is_signal[subset].astype(np.int32)
    y_val = val.is_signal.astype(np.int32)
    log.info("students: %d train, %d val, %d test jets", len(y_train), len(y_val), len(test.is_signal))

    out_dir = ctx.out(cfg.artifacts / "students")
    out_dir.mkdir(parents=True, exist_ok=True)
    trained: dict[str, Any] = {}
    records: dict[str, dict[str, TrainRecord]] = {}
    sparsity: dict[str, dict[str, dict[str, dict[str, float | int]]]] = {}
    for spec in cfg.students:
        teacher = cfg.teacher_of(spec)
        temperature, kd_weight = cfg.kd_setting(spec)
        t_train = cached_logits(cfg, teacher.name, "train")[subset]
        t_val = cached_logits(cfg, teacher.name, "val")
        x_tr = student_inputs(spec, train_const)
        x_va = student_inputs(spec, val.constituents)
        seed = student_seed(cfg, spec)
        tf.keras.utils.set_random_seed(seed)
        initial = build_student(spec).get_weights()
        records[spec.name] = {}
        sdir = out_dir / spec.name
        sdir.mkdir()
        setting = cfg.distill.model_copy(update={"temperature": temperature, "kd_weight": kd_weight})
        plan = pruning_plan(spec, setting.epochs)  # the same schedule for both variants
        for variant in VARIANTS:
            student = build_student(spec)
            student.set_weights(initial)  # the fair comparison: both variants start from the same weights
            record = train_student(
                student,
                setting,
                variant,
                (x_tr, y_train, t_train),
                (x_va, y_val, t_val),
                seed=seed,
                label=f"{spec.name}/{variant}",
                pruning=plan,
            )
            save_student(student, sdir / f"{variant}.h5")
            # Counted in the file as saved, so the report states what the firmware flows will read.
            sparsity.setdefault(spec.name, {})[variant] = kernel_sparsity(
                load_student_file(sdir / f"{variant}.h5", spec)
            )
            trained[f"{spec.name}/{variant}"] = student
            records[spec.name][variant] = record
        n_params, bits = weight_bits_needed(spec)
        write_json_atomic(
            sdir / "history.json",
            finite_or_none(
                {
                    "student": spec.name,
                    "teacher": teacher.name,
                    "temperature": temperature,
                    "kd_weight": kd_weight,
                    "seed": seed,
                    "n_params": n_params,
                    "weight_bits": bits,
                    "n_train": int(len(y_train)),
                    **{v: r.to_dict() for v, r in records[spec.name].items()},
                }
            ),
        )
    train_seconds = time.perf_counter() - t_start

    plots = {name: ctx.out(cfg.artifacts / name) for name in ("roc.png", "boost.png")}
    metrics = evaluate_run(cfg, trained, test, plots)
    for name, recs in records.items():
        metrics["students"][name].update(
            {
                "best_epoch": {v: r.best_epoch for v, r in recs.items()},
                "epochs_run": {v: r.epochs_run for v, r in recs.items()},
                "train_seconds": {v: round(r.seconds, 1) for v, r in recs.items()},
                "sparsity_target": cfg.student(name).sparsity,
                "sparsity": sparsity[name],
            }
        )
    metrics["seconds"] = {
        "train": round(train_seconds, 1),
        "total": round(time.perf_counter() - t_start, 1),
    }
    document = Metrics.model_validate(finite_or_none(metrics))
    document.write(ctx.out(cfg.artifacts / "metrics.json"))
    from kd_trigger.evaluate import summary_markdown

    write_text_atomic(
        ctx.out(cfg.artifacts / "summary.md"),
        f"# Run {cfg.run.name}: test split\n\n" + summary_markdown(document.model_dump(mode="json")),
    )
    log.info("distill stage done in %.0f s", metrics["seconds"]["total"])
    return StageResult(extra={"students": [s.name for s in cfg.students]})


def evaluate_run(cfg: Config, students: dict[str, Any], test: Any, plots: dict[str, Path]) -> dict[str, Any]:
    """Metrics of the teachers and every ``<student>/<variant>`` on the test split, plots and boost scans."""
    from kd_trigger.data.boost import boost
    from kd_trigger.distill.teacher_stage import cached_logits, load_teacher, predict
    from kd_trigger.evaluate import (
        boost_entry,
        paired_rejection_ratio,
        roc_points,
        score_metrics,
        scores_from_logits,
    )
    from kd_trigger.models.teacher import teacher_input_array
    from kd_trigger.report.physics_plots import plot_boost, plot_rejection

    t0 = time.perf_counter()
    labels = test.is_signal.astype(np.int64)
    dcfg = cfg.distill
    seed = cfg.run.seed
    specs = {s.name: s for s in cfg.students}
    teachers = {t.name: (t, load_teacher(cfg, t.name)) for t in cfg.teacher_specs}
    logits: dict[str, np.ndarray] = {f"teacher/{n}": cached_logits(cfg, n, "test") for n in teachers}
    for key, model in students.items():
        logits[key] = _predict(model, student_inputs(specs[key.split("/")[0]], test.constituents))
    models = {key: score_metrics(labels, lg, dcfg.rejection_bootstrap, seed) for key, lg in logits.items()}
    for m in models.values():
        m["boost"] = []
    for beta in dcfg.boost_betas:
        if beta == 0:  # the unboosted test split: reuse the logits computed above
            for key, lg in logits.items():
                models[key]["boost"].append(boost_entry(beta, labels, lg))
            continue
        # The teachers dominate the cost of the scan (~15-40 s per 18k jets on 2 cores, vs < 1 s a student).
        boosted = boost(test.constituents, beta)
        for name, (tspec, tmodel) in teachers.items():
            x = teacher_input_array(tspec, boosted)
            models[f"teacher/{name}"]["boost"].append(boost_entry(beta, labels, predict(tmodel, x)))
        for key, model in students.items():
            x = student_inputs(specs[key.split("/")[0]], boosted)
            models[key]["boost"].append(boost_entry(beta, labels, _predict(model, x)))
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
            "output_type": output_type(spec).hls(),
        }
    curves = {
        key: roc_points(labels, scores_from_logits(lg)) for key, lg in logits.items() if key != "teacher"
    }
    plot_rejection(curves, plots["roc.png"], title=f"run {cfg.run.name}, {len(labels)} test jets")
    plot_boost(
        {k: v for k, v in models.items() if k != "teacher"},
        plots["boost.png"],
        title=f"run {cfg.run.name}: jets boosted along x",
    )
    log.info("evaluation took %.1f s", time.perf_counter() - t0)
    return {
        "run": cfg.run.name,
        "models": models,
        "students": summary,
        "test": {"n_jets": int(labels.size), "n_background": int(np.sum(labels == 0))},
        "distill": cfg.distill.model_dump(mode="json"),
        "evaluate_seconds": round(time.perf_counter() - t0, 1),
    }


def load_student(cfg: Config, name: str, variant: str = "kd") -> Any:
    """Load a trained student of this run: artifacts/<run>/students/<name>/<variant>.h5."""
    if variant not in VARIANTS:
        raise ModelError(f"student variant must be one of {list(VARIANTS)}, got {variant!r}")
    spec = cfg.student(name)
    return load_student_file(cfg.artifacts / "students" / name / f"{variant}.h5", spec)


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
