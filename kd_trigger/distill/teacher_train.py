"""Train a teacher (:class:`~kd_trigger.config.TeacherSpec`) with the measured recipe.

The recipe: AdamW with decoupled weight decay, linear warm-up then cosine decay to zero over
``epochs``, global gradient-norm clipping, dropout in the head and batch norm with masked statistics
(both part of the model), and the epoch with the best validation ROC AUC kept. The AUC, not the
validation loss, picks the epoch: the headline figures are ROC figures, and at a high rate the
validation loss of a batch-norm network jumps from epoch to epoch (the moving statistics trail the
weights). Measured on the default 60k jets, the recipe took the 16-particle LorentzNet from test AUC
0.977 to 0.981, almost all of it from batch norm (config.TeacherSpec says more).

With more than two classes the AUC is the macro one-vs-rest AUC (the mean over classes of each class's
AUC against all others, :func:`kd_trigger.evaluate.macro_auc`): it weighs every class alike and, unlike
accuracy, moves smoothly from epoch to epoch on a small validation split; the record's ``selection``
names the figure used.

One TensorFlow device strategy is picked from what TensorFlow sees: several GPUs -> MirroredStrategy
(data parallel, the batch split across them); one GPU or none -> the default strategy.
"""

from __future__ import annotations

import functools
import logging
import time
from typing import Any

import numpy as np

from kd_trigger.config import TeacherSpec
from kd_trigger.evaluate import macro_auc

log = logging.getLogger(__name__)

PREDICT_BATCH = 2048
"""Inference batch for the per-epoch validation pass (memory, not results, depends on it)."""

SPLITS = ("train", "val")


def selection_name(n_classes: int) -> str:
    """The validation figure the best epoch is chosen on: ``auc`` (two classes), ``macro_ovr_auc`` (more)."""
    return "auc" if n_classes == 2 else "macro_ovr_auc"


@functools.cache
def device_strategy() -> Any:
    """MirroredStrategy over all GPUs when TensorFlow sees several, else the default strategy
    (which places work on the one GPU if there is one, else on the CPU).

    One per process: a second MirroredStrategy in the same process reuses collective-op keys and the
    next model's gradient all-reduce fails with "Shape mismatch in the collective instance"."""
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy([g.name for g in gpus])
    return tf.distribute.get_strategy()


def learning_rate_schedule(spec: TeacherSpec, steps_per_epoch: int) -> Any:
    """Linear warm-up from 0 to ``learning_rate`` over ``warmup_epochs``, then cosine decay to 0 at
    ``epochs`` (a serialisable Keras schedule, stepped once per batch)."""
    from tensorflow import keras

    total = spec.epochs * steps_per_epoch
    warmup = int(round(spec.warmup_epochs * steps_per_epoch))
    if warmup == 0:
        return keras.optimizers.schedules.CosineDecay(spec.learning_rate, total)
    return keras.optimizers.schedules.CosineDecay(
        0.0, total - warmup, warmup_target=spec.learning_rate, warmup_steps=warmup
    )


def _cross_entropy(labels: np.ndarray, logits: np.ndarray) -> float:
    """Mean softmax cross-entropy of (N, C) logits, stable in float64."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-np.mean(log_p[np.arange(len(labels)), labels]))


def _make_callback(spec: TeacherSpec, x_val: np.ndarray, y_val: np.ndarray) -> Any:
    from tensorflow import keras

    class BestValidationAuc(keras.callbacks.Callback):
        """Scores the validation split after every epoch, keeps the weights of the best AUC, stops after
        ``patience`` epochs without a better one, and logs one line per epoch."""

        def __init__(self) -> None:
            super().__init__()
            self.best_auc = -np.inf
            self.best_epoch = 0
            self.best_weights: list[np.ndarray] | None = None
            self.wait = 0
            self.history: dict[str, list[float]] = {
                k: [] for k in ("loss", "accuracy", "val_loss", "val_accuracy", "val_auc", "lr", "seconds")
            }
            self._started = 0.0

        def on_epoch_begin(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            self._started = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            logs = logs if logs is not None else {}
            train_seconds = time.perf_counter() - self._started
            logits = np.asarray(self.model.predict(x_val, batch_size=PREDICT_BATCH, verbose=0))
            # Two classes: the AUC; more: the macro one-vs-rest AUC (see the module docstring).
            auc = macro_auc(y_val, logits)
            val_loss = _cross_entropy(y_val, logits)
            val_acc = float(np.mean(np.argmax(logits, axis=1) == y_val))
            # The rate of the last step (keras.backend.get_value also reads a MirroredStrategy variable).
            lr = float(keras.backend.get_value(self.model.optimizer.learning_rate))
            logs.update(val_auc=auc, val_loss=val_loss, val_accuracy=val_acc)
            for key, value in (
                ("loss", logs.get("loss", np.nan)),
                ("accuracy", logs.get("accuracy", np.nan)),
                ("val_loss", val_loss),
                ("val_accuracy", val_acc),
                ("val_auc", auc),
                ("lr", lr),
                ("seconds", train_seconds),
            ):
                self.history[key].append(float(value))
            improved = auc > self.best_auc
            if improved:
                self.best_auc, self.best_epoch, self.wait = auc, epoch + 1, 0
                self.best_weights = self.model.get_weights()
            else:
                self.wait += 1
            log.info(
                "teacher %s epoch %d/%d: loss %.4f acc %.4f | val loss %.4f acc %.4f AUC %.5f%s | "
                "lr %.2e | %.1f s",
                spec.name,
                epoch + 1,
                spec.epochs,
                self.history["loss"][-1],
                self.history["accuracy"][-1],
                val_loss,
                val_acc,
                auc,
                " *" if improved else "",
                lr,
                train_seconds,
            )
            if self.wait >= spec.patience:
                log.info("teacher %s: no better validation AUC for %d epochs; stopping", spec.name, self.wait)
                self.model.stop_training = True

    return BestValidationAuc()


def train_teacher(
    spec: TeacherSpec, x: dict[str, np.ndarray], y: dict[str, np.ndarray], seed: int, n_classes: int = 2
) -> tuple[Any, dict[str, Any]]:
    """Train a fresh teacher of ``spec`` on ``x["train"]``, pick the epoch on ``x["val"]``.

    ``x`` holds :func:`kd_trigger.models.teacher.teacher_input_array` arrays and ``y`` integer labels
    (0 .. n_classes - 1; two classes: 1 = top), keyed "train" and "val". Returns the model with the weights of the epoch with the best
    validation AUC and a record: ``training_seconds``, ``seconds_per_epoch``, ``epochs_run``,
    ``best_epoch`` (1-based), ``best_val_auc``, ``last_val_auc``, ``n_parameters``,
    ``median_fit_seconds_per_epoch``, ``selection`` (:func:`selection_name`: with more than two classes
    ``best_val_auc``, ``last_val_auc`` and the history's ``val_auc`` are the macro one-vs-rest AUC) and the
    per-epoch ``history``.
    """
    if spec.kind == "path":
        raise ValueError(f"teacher {spec.name}: kind 'path' names a trained model; there is nothing to train")
    missing = [s for s in SPLITS if s not in x or s not in y]
    if missing:
        raise ValueError(f"train_teacher needs x and y for {list(SPLITS)}; missing {missing}")

    from tensorflow import keras

    from kd_trigger.models.teacher import build_teacher

    y_train = np.asarray(y["train"]).astype(np.int32).ravel()
    y_val = np.asarray(y["val"]).astype(np.int64).ravel()
    present = np.unique(y_val)
    if len(present) != n_classes:
        raise ValueError(
            f"teacher {spec.name}: the validation split holds classes {present.tolist()} of 0..{n_classes - 1}; "
            "every class needs validation jets to choose the epoch"
        )
    # Seeds Python, NumPy and TF (initial weights, shuffling, dropout); same seed, same CPU: same weights.
    keras.utils.set_random_seed(seed)
    strategy = device_strategy()
    steps_per_epoch = int(np.ceil(len(y_train) / spec.batch_size))
    with strategy.scope():
        model = build_teacher(spec, n_classes=n_classes)
        optimizer = keras.optimizers.AdamW(
            learning_rate=learning_rate_schedule(spec, steps_per_epoch),
            weight_decay=spec.weight_decay,
            global_clipnorm=spec.clip_norm,
        )
        # No decay on biases and batch-norm scales/offsets: shrinking them toward 0 is no regulariser.
        optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
        model.compile(
            optimizer=optimizer,
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
            jit_compile=spec.jit_compile,
        )
    log.info(
        "teacher %s: %s, %d parameters, %d particles; %d train / %d val jets; %s, %d replica(s)",
        spec.name,
        spec.kind if spec.neighbours is None else f"{spec.kind} (k = {spec.neighbours})",
        model.count_params(),
        spec.n_particles,
        len(y_train),
        len(y_val),
        type(strategy).__name__,
        strategy.num_replicas_in_sync,
    )
    callback = _make_callback(spec, x["val"], y_val)
    start = time.perf_counter()
    model.fit(
        x["train"],
        y_train,
        epochs=spec.epochs,
        batch_size=spec.batch_size,
        shuffle=True,
        callbacks=[callback],
        verbose=0,
    )
    seconds = time.perf_counter() - start
    if callback.best_weights is not None:
        model.set_weights(callback.best_weights)
    epochs_run = len(callback.history["val_auc"])
    record: dict[str, Any] = {
        "training_seconds": round(seconds, 2),
        "seconds_per_epoch": round(seconds / max(epochs_run, 1), 2),
        # The fit alone, without the first epoch's tracing and the validation pass: the speed figure.
        "median_fit_seconds_per_epoch": round(float(np.median(callback.history["seconds"])), 2),
        "epochs_run": epochs_run,
        "best_epoch": callback.best_epoch,
        "best_val_auc": float(callback.best_auc),
        "last_val_auc": callback.history["val_auc"][-1],
        "n_parameters": int(model.count_params()),
        "selection": selection_name(n_classes),
        "history": callback.history,
    }
    log.info(
        "teacher %s: best epoch %d of %d (val AUC %.5f), %.0f s (%.1f s/epoch)",
        spec.name,
        record["best_epoch"],
        epochs_run,
        record["best_val_auc"],
        seconds,
        record["seconds_per_epoch"],
    )
    return model, record
