"""The teacher stages: one per configured teacher, each trained once and its logits cached.

``artifacts/<run>/teachers/<name>/`` holds ``teacher.h5`` (trained teachers only), ``metrics.json``
(test AUC, R30, R50 and accuracy, training time), ``{train,val,test}_logits.npy`` (so no student ever
recomputes the teacher) and ``history.json``. A teacher of ``kind: path`` is a model you bring: it is
checked and its logits cached, nothing is trained.
"""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from kd_trigger.config import Config, TeacherSpec
from kd_trigger.contracts import finite_or_none
from kd_trigger.data.readers import load_jets
from kd_trigger.errors import ModelError
from kd_trigger.layout import RunLayout
from kd_trigger.runs import file_problem, write_h5_atomic, write_json_atomic
from kd_trigger.stage_types import StageContext, StageDecl, StageResult, dump, teacher_stage_name

log = logging.getLogger(__name__)

TEACHER_FILE = "teacher.h5"
SPLITS = ("train", "val", "test")
_PREDICT_BATCH = 2048


def teacher_dir(cfg: Config, name: str) -> Path:
    """``artifacts/<run>/teachers/<name>``."""
    return cfg.artifacts / "teachers" / name


def teacher_path(cfg: Config, spec: TeacherSpec) -> Path:
    """The model file of a teacher: ``path`` for a teacher you bring, else the trained ``teacher.h5``."""
    return Path(spec.path) if spec.path else teacher_dir(cfg, spec.name) / TEACHER_FILE


def _shape(shape: Any) -> tuple[int | None, ...]:
    return tuple(None if d is None else int(d) for d in shape)


def _fmt(shape: tuple[int | None, ...]) -> str:
    return "(" + ", ".join("N" if d is None else str(d) for d in shape) + ")"


def check_teacher(model: Any, path: Path, spec: TeacherSpec) -> None:
    """Raise :class:`ModelError` unless ``model`` maps the teacher's input array to (N, 2) logits."""
    from kd_trigger.models.teacher import teacher_input_shape

    expected_in = (None, *teacher_input_shape(spec))
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
            f"(teacher '{spec.name}': n_particles = {spec.n_particles} scaled (E, px, py, pz) 4-vectors)"
        )
    if found_out[1:] != expected_out[1:]:
        raise ModelError(
            f"teacher {path}: output shape {_fmt(found_out)} does not match the expected {_fmt(expected_out)} "
            "(two logits, class 1 = top)"
        )


def load_teacher_file(path: Path, spec: TeacherSpec) -> Any:
    """A teacher model from ``path``; ModelError (one line naming the file) when it is missing,
    unreadable as a Keras model, or of the wrong input/output shape."""
    problem = file_problem(path, want="any")
    if problem is not None:
        hint = (
            "set its path to a saved Keras model (.h5, .keras or a SavedModel directory)"
            if spec.path
            else "train it first: make teacher CONFIG=<your config>"
        )
        raise ModelError(f"teacher '{spec.name}': file {path} {problem}; {hint}")

    from tensorflow import keras

    from kd_trigger.models.teacher import CUSTOM_OBJECTS

    try:
        model = keras.models.load_model(path, custom_objects=CUSTOM_OBJECTS, compile=False)
    except Exception as err:  # Keras raises OSError, ValueError, TypeError... for unreadable files
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelError(f"teacher file {path} is not a readable Keras model: {reason[:200]}") from None
    check_teacher(model, path, spec)
    return model


def load_teacher(cfg: Config, name: str) -> Any:
    """The committed teacher ``name`` of this run as a Keras model."""
    spec = cfg.teacher_spec(name)
    return load_teacher_file(teacher_path(cfg, spec), spec)


def predict(model: Any, x: np.ndarray) -> np.ndarray:
    """Float32 logits in batches (Keras' own progress bar off: logging only)."""
    return np.asarray(model.predict(x, batch_size=_PREDICT_BATCH, verbose=0), dtype=np.float32)


def teacher_metrics(labels: np.ndarray, logits: np.ndarray) -> dict[str, Any]:
    """accuracy, AUC and background rejection at 30% and 50% signal efficiency on one split."""
    from kd_trigger.evaluate import accuracy, rejection_at, roc_auc, scores_from_logits

    scores = scores_from_logits(logits)
    return {
        "accuracy": accuracy(labels, logits),
        "auc": roc_auc(labels, scores),
        "rejection_at_30": rejection_at(labels, scores, 0.3).rejection,
        "rejection_at_50": rejection_at(labels, scores, 0.5).rejection,
    }


def teacher_stage(ctx: StageContext) -> StageResult:
    """Train (or check) one teacher, cache its logits on every split, record its test metrics."""
    from kd_trigger.models.teacher import teacher_input_array

    cfg = ctx.cfg
    name = ctx.stage.split(":", 1)[1]
    spec = cfg.teacher_spec(name)
    out = ctx.out(teacher_dir(cfg, name))
    out.mkdir(parents=True, exist_ok=True)

    data = load_jets(cfg.data_path, cfg)
    parts = {s: data.select(s) for s in SPLITS}
    x = {s: teacher_input_array(spec, parts[s].constituents) for s in SPLITS}
    y = {s: parts[s].is_signal.astype(np.int32) for s in SPLITS}

    record: dict[str, Any]
    if spec.kind == "path":
        model = load_teacher_file(teacher_path(cfg, spec), spec)
        record = {"training_seconds": 0.0, "epochs_run": 0, "best_epoch": 0}
    else:
        from kd_trigger.distill.teacher_train import train_teacher

        model, record = train_teacher(spec, {"train": x["train"], "val": x["val"]}, y, seed=cfg.run.seed)
        write_h5_atomic(
            out / TEACHER_FILE, lambda h: model.save(h, save_format="h5", include_optimizer=False)
        )
        write_json_atomic(out / "history.json", finite_or_none(record.get("history", {})))

    logits = {s: predict(model, x[s]) for s in SPLITS}
    for s in SPLITS:
        np.save(out / f"{s}_logits.npy", logits[s])
    metrics = {
        "name": name,
        "kind": spec.kind,
        "source": str(teacher_path(cfg, spec)) if spec.kind == "path" else "trained",
        "n_particles": spec.n_particles,
        "n_parameters": int(model.count_params()),
        **teacher_metrics(y["test"], logits["test"]),
        "val_accuracy": teacher_metrics(y["val"], logits["val"])["accuracy"],
        "n_jets": {s: int(len(y[s])) for s in SPLITS},
        **{k: v for k, v in record.items() if k != "history"},
    }
    write_json_atomic(out / "metrics.json", finite_or_none(metrics))
    log.info(
        "teacher %s: test accuracy %.4f, AUC %.4f, 1/eps_B(30%%) %.0f (%s)",
        name,
        metrics["accuracy"],
        metrics["auc"],
        metrics["rejection_at_30"],
        "brought" if spec.kind == "path" else f"{record.get('training_seconds', 0):.0f} s training",
    )
    return StageResult(extra={"auc": metrics["auc"], "rejection_at_30": metrics["rejection_at_30"]})


def cached_logits(cfg: Config, name: str, split: str) -> np.ndarray:
    """The logits teacher ``name`` gave on ``split`` (cached by its stage)."""
    path = teacher_dir(cfg, name) / f"{split}_logits.npy"
    if not path.is_file():
        raise ModelError(f"{path} is missing; run `make teacher CONFIG=...` first")
    return np.load(path).astype(np.float32)


# -- the stage declarations (one per configured teacher) ------------------------------------------
def _teacher_config(cfg: Config, name: str) -> Any:
    return {"seed": cfg.run.seed, "teacher": dump(cfg.teacher_spec(name))}


def _teacher_outputs(cfg: Config, name: str) -> list[Path]:
    return [RunLayout.of(cfg).teacher_dir(name)]


def _teacher_files(cfg: Config, name: str) -> list[Path]:
    path = cfg.teacher_spec(name).path
    return [Path(path)] if path else []


def check_teacher_file(cfg: Config, name: str) -> None:
    """ModelError when the file a brought teacher names is missing or unreadable (before any work)."""
    path = cfg.teacher_spec(name).path
    problem = file_problem(Path(path), want="any") if path else None
    if problem is not None:
        raise ModelError(
            f"teacher '{name}': file {path} {problem}; set its path to a saved Keras model "
            "(.h5, .keras or a SavedModel directory)"
        )


def teacher_stage_decl(name: str) -> StageDecl:
    """The stage of the configured teacher ``name`` (``teacher:<name>``)."""
    return StageDecl(
        teacher_stage_name(name),
        teacher_stage,
        partial(_teacher_config, name=name),
        partial(_teacher_outputs, name=name),
        needs=("data",),
        inputs=partial(_teacher_files, name=name),
        check=partial(check_teacher_file, name=name),
        description=f"train teacher '{name}' (or check the file it names) and cache its logits",
    )
