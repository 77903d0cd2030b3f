"""Training a student: the one loop the distill stage, the study and the scan share.

:func:`train_student` trains a baseline (labels only) or a distilled copy with early stopping (and,
optionally, a pruning schedule); :func:`predict` gives a model's logits; the per-student seeds and the
low-data subset make baseline and KD runs start from the same weights and see the same batches.
This module (with what it imports) is the training code the study's and the scan's caches are keyed on.
"""

from __future__ import annotations

import logging
import math
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kd_trigger.config import PARTICLE_FEATURES, Config, DistillConfig, StudentConfig
from kd_trigger.data.augment import BoostAugmenter
from kd_trigger.distill.pruning import (
    PruningPlan,
    check_sparsity,
    prune_wrap,
    pruning_callbacks,
    pruning_plan,
    strip_pruned,
)
from kd_trigger.errors import ModelError
from kd_trigger.layout import RunLayout
from kd_trigger.models.students import build_student, load_student_file, student_inputs

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


def boost_augmenter(
    dcfg: DistillConfig, spec: StudentConfig, constituents: np.ndarray, seed: int
) -> BoostAugmenter | None:
    """The augmentation of ``dcfg.augment`` for ``spec``'s training jets (None when it is off): the
    student inputs recomputed from the boosted four-vectors by :func:`student_inputs`, seeded by ``seed``."""
    if dcfg.augment.beta_max <= 0:
        return None
    return BoostAugmenter(
        constituents,
        dcfg.augment.beta_max,
        seed,
        lambda c: student_inputs(spec, c),
        n_particles=spec.n_particles,
    )


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
    augment: BoostAugmenter | None = None,
) -> TrainRecord:
    """Train ``student`` in place (baseline: labels only; kd: the distillation loss) with early stopping.

    ``train``/``val`` are (student inputs, labels, teacher logits or None). The data order of epoch ``e``
    depends only on ``seed`` and ``e``, so a baseline and a KD run with the same seed see the same batches.
    The weights of the best epoch on the validation split (``dcfg.monitor``) are restored at the end.

    With ``pruning`` (see :func:`kd_trigger.distill.pruning.pruning_plan`) the kernels are pruned on that
    schedule; only epochs from ``pruning.end_epoch`` on (at the target sparsity, with the final mask) can
    be kept or count towards the patience, and ``student`` ends as plain QKeras with exact zeros
    (wrappers stripped; ModelError if a kernel is short of the target).

    With ``augment`` (:func:`boost_augmenter`) every epoch trains on freshly boosted training jets (their
    inputs replace ``train``'s, in the same jet order). ``dcfg.ema_decay`` > 0 validates, keeps and leaves
    in ``student`` the averaged weights; ``dcfg.kd_weight_schedule`` = linear ramps w up (epochs of the
    ramp are not eligible, for both variants alike); ``dcfg.lr_plateau`` lowers the learning rate when the
    monitored value stalls (each epoch's rate is then in the history).
    """
    import tensorflow as tf

    from kd_trigger.distill.distiller import Distiller  # TensorFlow

    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    x_tr, y_tr, t_tr = train
    x_va, y_va, t_va = val
    if pruning is not None and pruning.end_epoch > dcfg.epochs:
        raise ValueError(f"pruning ends at epoch {pruning.end_epoch}, after the cap of {dcfg.epochs} epochs")
    if pruning is not None and dcfg.ema_decay > 0:
        raise ValueError(
            "distill.ema_decay with a pruned student: the average of masked kernels is not sparse"
        )
    ramp = dcfg.kd_weight_ramp_epochs if dcfg.kd_weight_schedule == "linear" else 0
    if ramp > dcfg.epochs:
        raise ValueError(f"the w ramp of {ramp} epochs is longer than the cap of {dcfg.epochs} epochs")
    if augment is not None and len(augment) != len(y_tr):
        raise ValueError(f"the augmentation holds {len(augment)} jets, the training split {len(y_tr)}")
    steps_per_epoch = math.ceil(len(y_tr) / dcfg.batch_size)
    trained = student if pruning is None else prune_wrap(student, pruning, steps_per_epoch)
    callbacks = [] if pruning is None else pruning_callbacks()
    first_eligible = max(1 if pruning is None else pruning.end_epoch, ramp)
    kd_weight = dcfg.kd_weight if variant == "kd" else 0.0
    distiller = Distiller(
        trained,
        temperature=dcfg.temperature,
        kd_weight=kd_weight,
        ema_decay=dcfg.ema_decay,
        kd_ramp=ramp > 0,
        name=f"distiller_{variant}",
    )
    distiller.compile(optimizer=tf.keras.optimizers.Adam(learning_rate=dcfg.learning_rate))
    plateau = dcfg.lr_plateau
    learning_rate = dcfg.learning_rate
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
        # The augmented inputs are the boosted jets'; the teacher's logits stay those of the unboosted jet
        # (what the teacher says about the jet as measured), for every epoch.
        x_epoch = x_tr if augment is None else augment.inputs(epoch)
        if distiller.kd_scale is not None:
            distiller.kd_scale.assign(min(1.0, epoch / ramp))
        train_ds = tf.data.Dataset.from_tensor_slices(
            (_inputs(x_epoch[order], None if t_tr is None else t_tr[order]), y_tr[order])
        ).batch(dcfg.batch_size)
        if distiller.ema:
            hist = distiller.fit(train_ds, epochs=1, verbose=0, callbacks=callbacks).history
            distiller.swap_ema()  # validate (and keep) the averaged weights
            scores = distiller.evaluate(val_ds, verbose=0, return_dict=True)
            hist.update({f"val_{k}": [float(v)] for k, v in scores.items()})
        else:
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
            if plateau is not None and since_best % plateau.patience == 0:
                lowered = max(learning_rate * plateau.factor, plateau.min_learning_rate)
                if lowered < learning_rate:
                    learning_rate = lowered
                    distiller.optimizer.learning_rate.assign(learning_rate)
                    log.info(
                        "%s: learning rate -> %.3g after epoch %d", label or variant, learning_rate, epoch
                    )
        if plateau is not None:
            # the optimizer's own value: what the next epoch trains with
            record.history.setdefault("learning_rate", []).append(float(distiller.optimizer.learning_rate))
        if distiller.ema:
            distiller.swap_ema()  # training goes on from the raw weights
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


def training_cost(spec: StudentConfig, fraction: float = 1.0) -> float:
    """A rough relative cost of training ``spec`` (products per jet of a forward pass, times the fraction
    of the training split): only to start the long trainings first on the Dask workers, never a result."""
    n_features = len(PARTICLE_FEATURES)

    def products(widths: tuple[int, ...]) -> int:
        return sum(a * b for a, b in zip(widths, widths[1:], strict=False))

    if spec.kind == "deepsets":  # phi on every particle, then the head once
        cost = spec.n_particles * products((n_features, *spec.hidden)) + products(
            (spec.hidden[-1], *spec.head)
        )
    else:  # the MLP sees every particle's features at once
        cost = products((spec.n_particles * n_features, *spec.hidden))
    return fraction * cost


def train_from_seed(
    spec: StudentConfig,
    n_classes: int,
    dcfg: DistillConfig,
    variant: str,
    train: tuple[np.ndarray, np.ndarray, np.ndarray | None],
    val: tuple[np.ndarray, np.ndarray, np.ndarray | None],
    *,
    seed: int,
    label: str,
    constituents: np.ndarray,
) -> tuple[Any, TrainRecord]:
    """A ``spec`` student built from ``seed``'s initial weights and trained by :func:`train_student` with the
    student's pruning plan and ``dcfg``'s augmentation of the training jets ``constituents``.

    The one way every caller trains (the distill stage, each scan point, each study training): the initial
    weights and the batch order depend on ``seed`` alone, so a baseline and its KD copy start from the same
    weights, and the scan's and the study's copy of a design at the run's seed is the distill stage's.
    """
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    student = build_student(spec, n_classes)
    record = train_student(
        student,
        dcfg,
        variant,
        train,
        val,
        seed=seed,
        label=label,
        pruning=pruning_plan(spec, dcfg.epochs),
        augment=boost_augmenter(dcfg, spec, constituents, seed),
    )
    return student, record


def predict(model: Any, x: np.ndarray) -> np.ndarray:
    """Float32 outputs (logits) of ``model`` on ``x``, in batches, without Keras' progress bar."""
    return np.asarray(model.predict(x, batch_size=_PREDICT_BATCH, verbose=0), dtype=np.float32)


def load_student(cfg: Config, name: str, variant: str = "kd") -> Any:
    """Load a trained student of this run: artifacts/<run>/students/<name>/<variant>.h5."""
    if variant not in VARIANTS:
        raise ModelError(f"student variant must be one of {list(VARIANTS)}, got {variant!r}")
    spec = cfg.student(name)
    return load_student_file(RunLayout.of(cfg).student_model(name, variant), spec, len(cfg.data.classes))
