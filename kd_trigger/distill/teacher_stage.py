"""The teacher stage: train the LorentzNet-style teacher (or check a bring-your-own one) and keep its logits.

Outputs in ``artifacts/<run>/teacher/``: ``teacher.h5`` (trained teachers only), ``metrics.json``,
``{train,val,test}_logits.npy`` (so the students never recompute the teacher), ``history.json`` and the
``stage.json`` provenance. The stage is skipped when those outputs belong to the same configuration.
"""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from kd_trigger.config import Config
from kd_trigger.errors import DataError, ModelError
from kd_trigger.runs import atomic_dir, check_stage, write_json_atomic, write_stage

log = logging.getLogger(__name__)

STAGE = "teacher"
STAGE_SECTIONS = ("run", "data", "teacher")
TEACHER_FILE = "teacher.h5"
SPLITS = ("train", "val", "test")
_PREDICT_BATCH = 2048


def teacher_dir(cfg: Config) -> Path:
    """``artifacts/<run>/teacher``."""
    return cfg.artifacts / "teacher"


def teacher_path(cfg: Config) -> Path:
    """The teacher model this run uses: ``teacher.path`` if given, else the trained ``teacher.h5``."""
    return Path(cfg.teacher.path) if cfg.teacher.path else teacher_dir(cfg) / TEACHER_FILE


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    if path.is_dir():  # a TensorFlow SavedModel directory
        for item in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(item.relative_to(path).as_posix().encode())
            digest.update(item.read_bytes())
    else:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def teacher_digest(cfg: Config) -> str:
    """Digest of the config sections the teacher depends on (+ the content of a bring-your-own teacher)."""
    base = cfg.section_hash(*STAGE_SECTIONS)
    if not cfg.teacher.path or not Path(cfg.teacher.path).exists():
        return base
    # A replaced bring-your-own file under the same name must not leave stale logits behind.
    both = f"{base}:{_file_sha256(Path(cfg.teacher.path))}"
    return hashlib.sha256(both.encode()).hexdigest()[:16]


def _shape(shape: Any) -> tuple[int | None, ...]:
    return tuple(None if d is None else int(d) for d in shape)


def _fmt(shape: tuple[int | None, ...]) -> str:
    return "(" + ", ".join("N" if d is None else str(d) for d in shape) + ")"


def check_teacher(model: Any, path: Path, n_particles: int) -> None:
    """Raise :class:`ModelError` unless ``model`` takes (N, n_particles, 4) and returns (N, 2) logits."""
    expected_in = (None, n_particles, 4)
    expected_out = (None, 2)
    inputs, outputs = list(model.inputs or []), list(model.outputs or [])
    if len(inputs) != 1 or len(outputs) != 1:
        raise ModelError(
            f"teacher {path}: has {len(inputs)} inputs and {len(outputs)} outputs; expected one input "
            f"{_fmt(expected_in)} and one output {_fmt(expected_out)}"
        )
    found_in, found_out = _shape(inputs[0].shape), _shape(outputs[0].shape)
    if found_in[1:] != expected_in[1:]:
        raise ModelError(
            f"teacher {path}: input shape {_fmt(found_in)} does not match the expected {_fmt(expected_in)} "
            f"(teacher.n_particles = {n_particles} scaled (E, px, py, pz) 4-vectors)"
        )
    if found_out[1:] != expected_out[1:]:
        raise ModelError(
            f"teacher {path}: output shape {_fmt(found_out)} does not match the expected {_fmt(expected_out)} "
            "(two logits, class 1 = top)"
        )


def load_teacher(cfg: Config) -> Any:
    """The run's teacher as a Keras model: ``teacher.path`` (bring your own) or the trained teacher.

    Raises :class:`ModelError` (one line naming the file) when the file is missing, cannot be read as a
    Keras model, or does not map (N, teacher.n_particles, 4) inputs to (N, 2) logits.
    """
    path = teacher_path(cfg)
    if not path.exists():
        hint = (
            "set teacher.path to a saved Keras model (.h5, .keras or a SavedModel directory)"
            if cfg.teacher.path
            else "train it first: make teacher CONFIG=<your config>"
        )
        raise ModelError(f"teacher file {path} does not exist; {hint}")

    from tensorflow import keras

    from kd_trigger.models.teacher import CUSTOM_OBJECTS

    try:
        model = keras.models.load_model(path, custom_objects=CUSTOM_OBJECTS, compile=False)
    except Exception as err:  # Keras raises OSError, ValueError, TypeError... for unreadable files
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelError(f"teacher file {path} is not a readable Keras model: {reason[:200]}") from None
    check_teacher(model, path, cfg.teacher.n_particles)
    return model


def _epoch_logger(n_epochs: int) -> Any:
    """A Keras callback that logs one line per epoch (logging, not Keras' progress bar on stdout)."""
    from tensorflow import keras

    started: list[float] = [0.0]

    def begin(epoch: int, logs: dict[str, float] | None = None) -> None:
        started[0] = time.perf_counter()

    def end(epoch: int, logs: dict[str, float] | None = None) -> None:
        shown = " ".join(f"{k} {v:.4f}" for k, v in (logs or {}).items())
        log.info(
            "teacher epoch %d/%d: %s (%.1f s)", epoch + 1, n_epochs, shown, time.perf_counter() - started[0]
        )

    return keras.callbacks.LambdaCallback(on_epoch_begin=begin, on_epoch_end=end)


def _predict(model: Any, x: np.ndarray) -> np.ndarray:
    return np.asarray(model.predict(x, batch_size=_PREDICT_BATCH, verbose=0), dtype=np.float32)


def _train(cfg: Config, x: dict[str, np.ndarray], y: dict[str, np.ndarray]) -> tuple[Any, dict[str, Any]]:
    """Fit a fresh teacher; early stopping on the validation loss, best weights restored."""
    from tensorflow import keras

    from kd_trigger.models.teacher import build_teacher

    tcfg = cfg.teacher
    # Seeds Python, NumPy and TF (initial weights, shuffling, dropout). Two trainings with the same seed
    # gave bit-identical weights on CPU, so the process-wide tf.config.experimental.enable_op_determinism()
    # switch (hidden global state that would also bind the students) is not set here.
    keras.utils.set_random_seed(cfg.run.seed)
    model = build_teacher(tcfg)
    # Cosine decay over the epoch budget: with a constant rate the validation loss of this network jumps
    # from epoch to epoch and early stopping picks a noisy minimum.
    steps = tcfg.epochs * int(np.ceil(len(y["train"]) / tcfg.batch_size))
    model.compile(
        optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(tcfg.learning_rate, steps)),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    log.info(
        "teacher: %d parameters, %d layers x %d hidden, %d particles; %d train / %d val jets",
        model.count_params(),
        tcfg.n_layers,
        tcfg.hidden,
        tcfg.n_particles,
        len(y["train"]),
        len(y["val"]),
    )
    stop = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=tcfg.patience, restore_best_weights=True
    )
    start = time.perf_counter()
    history = model.fit(
        x["train"],
        y["train"],
        validation_data=(x["val"], y["val"]),
        epochs=tcfg.epochs,
        batch_size=tcfg.batch_size,
        shuffle=True,
        callbacks=[stop, _epoch_logger(tcfg.epochs)],
        verbose=0,
    )
    seconds = time.perf_counter() - start
    val_loss = [float(v) for v in history.history["val_loss"]]
    best = int(np.argmin(val_loss))
    # Keras 2 restores the best weights only when it stops early; a run that uses every epoch keeps the
    # last weights unless they are restored here.
    if stop.best_weights is not None:
        model.set_weights(stop.best_weights)
    record = {
        "training_seconds": round(seconds, 2),
        "seconds_per_epoch": round(seconds / max(len(val_loss), 1), 2),
        "epochs_run": len(val_loss),
        "best_epoch": best + 1,
        "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
    }
    log.info(
        "teacher: best epoch %d of %d (val_loss %.4f), %.0f s",
        best + 1,
        len(val_loss),
        val_loss[best],
        seconds,
    )
    return model, record


def run_teacher_stage(cfg: Config, force: bool = False) -> Path:
    """Train the teacher on the train split (or check ``teacher.path``), save it, its metrics and logits.

    Runs the data stage first when the run generates its data. Returns ``artifacts/<run>/teacher``;
    skipped when that directory already holds this configuration's outputs.
    """
    directory = teacher_dir(cfg)
    digest = teacher_digest(cfg)
    if check_stage(directory, STAGE, digest, force):
        log.info("teacher stage up to date in %s (digest %s); nothing to do", directory, digest)
        return directory

    from kd_trigger.data.features import teacher_inputs
    from kd_trigger.data.generate import run_data_stage
    from kd_trigger.data.readers import load_jets
    from kd_trigger.evaluate import accuracy, rejection_at, roc_auc, scores_from_logits

    bring_your_own = cfg.teacher.path is not None
    if bring_your_own:
        load_teacher(cfg)  # a bad teacher fails before the data are read

    run_data_stage(cfg, force=force)
    data = load_jets(cfg.data_path, cfg)
    parts = {s: data.select(s) for s in SPLITS}
    counts = {s: len(parts[s]) for s in SPLITS}
    if counts["train"] < 2 or counts["val"] < 1 or counts["test"] < 2:
        raise DataError(
            f"{cfg.data_path}: too few jets to train and test the teacher ({counts}); raise data.n_jets"
        )
    x = {s: teacher_inputs(parts[s].constituents, cfg.teacher.n_particles) for s in SPLITS}
    y = {s: parts[s].is_signal.astype(np.int32) for s in SPLITS}

    if bring_your_own:
        model = load_teacher(cfg)
        record: dict[str, Any] = {"training_seconds": 0.0, "epochs_run": 0, "best_epoch": 0}
    else:
        model, record = _train(cfg, x, y)

    logits = {s: _predict(model, x[s]) for s in SPLITS}
    labels_test = y["test"]
    has_both = labels_test.min() != labels_test.max()
    scores = scores_from_logits(logits["test"])
    metrics: dict[str, Any] = {
        "source": str(teacher_path(cfg)) if bring_your_own else "trained",
        "accuracy": accuracy(labels_test, logits["test"]),
        "auc": roc_auc(labels_test, scores) if has_both else None,
        "rejection_at_30": rejection_at(labels_test, scores, 0.3).rejection if has_both else None,
        "rejection_at_50": rejection_at(labels_test, scores, 0.5).rejection if has_both else None,
        "val_accuracy": accuracy(y["val"], logits["val"]),
        "n_parameters": int(model.count_params()),
        "n_particles": cfg.teacher.n_particles,
        "n_jets": counts,
        **{k: v for k, v in record.items() if k != "history"},
    }
    metrics = {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in metrics.items()}

    with atomic_dir(directory) as tmp:
        if not bring_your_own:
            model.save(tmp / TEACHER_FILE, include_optimizer=False)
            write_json_atomic(tmp / "history.json", record["history"])
        for s in SPLITS:
            np.save(tmp / f"{s}_logits.npy", logits[s])
        write_json_atomic(tmp / "metrics.json", metrics)
    write_stage(directory, STAGE, digest, cfg, extra={"outputs": sorted(p.name for p in directory.iterdir())})
    log.info(
        "teacher: test accuracy %.4f, AUC %s -> %s",
        metrics["accuracy"],
        "n/a" if metrics["auc"] is None else f"{metrics['auc']:.4f}",
        directory,
    )
    return directory
