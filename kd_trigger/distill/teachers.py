"""Teachers of a run as a library: load (and check) a teacher model, its cached logits, its metrics.

The teacher stages (:mod:`kd_trigger.distill.teacher_stage`) write ``artifacts/<run>/teachers/<name>/``;
the distill stage, the study and the scan read it through these functions.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from kd_trigger.config import TeacherSpec
from kd_trigger.errors import ModelError
from kd_trigger.evaluate import accuracy, one_vs_rest, rejection_at, roc_auc
from kd_trigger.layout import RunLayout
from kd_trigger.runs import file_problem

if TYPE_CHECKING:
    from kd_trigger.config import Config  # annotations only

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
_PREDICT_BATCH = 2048


def teacher_dir(cfg: Config, name: str) -> Path:
    """``artifacts/<run>/teachers/<name>``: one teacher stage's output."""
    return RunLayout.of(cfg).teacher_dir(name)


def teacher_path(cfg: Config, spec: TeacherSpec) -> Path:
    """The model file of a teacher: ``path`` for a teacher you bring, else the trained ``teacher.h5``."""
    return Path(spec.path) if spec.path else RunLayout.of(cfg).teacher_model(spec.name)


def _shape(shape: Any) -> tuple[int | None, ...]:
    return tuple(None if d is None else int(d) for d in shape)


def _fmt(shape: tuple[int | None, ...]) -> str:
    return "(" + ", ".join("N" if d is None else str(d) for d in shape) + ")"


def check_teacher(model: Any, path: Path, spec: TeacherSpec, n_classes: int = 2) -> None:
    """Raise :class:`ModelError` unless ``model`` maps the teacher's input array to (N, n_classes) logits."""
    from kd_trigger.models.teacher import teacher_input_shape  # TensorFlow

    expected_in = (None, *teacher_input_shape(spec))
    expected_out = (None, n_classes)
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
            f"({n_classes} logits: one per class of data.classes)"
        )


def load_teacher_file(path: Path, spec: TeacherSpec, n_classes: int = 2) -> Any:
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
    check_teacher(model, path, spec, n_classes)
    return model


def load_teacher(cfg: Config, name: str) -> Any:
    """The committed teacher ``name`` of this run as a Keras model."""
    spec = cfg.teacher_spec(name)
    return load_teacher_file(teacher_path(cfg, spec), spec, len(cfg.data.classes))


def predict(model: Any, x: np.ndarray) -> np.ndarray:
    """Float32 logits in batches (Keras' own progress bar off: logging only)."""
    return np.asarray(model.predict(x, batch_size=_PREDICT_BATCH, verbose=0), dtype=np.float32)


def teacher_metrics(labels: np.ndarray, logits: np.ndarray) -> dict[str, Any]:
    """accuracy, AUC and background rejection at 30% and 50% signal efficiency on one split (with more
    than two classes: accuracy over all classes, the rest for the last class against the others)."""
    binary, scores = one_vs_rest(labels, logits)
    return {
        "accuracy": accuracy(labels, logits),
        "auc": roc_auc(binary, scores),
        "rejection_at_30": rejection_at(binary, scores, 0.3).rejection,
        "rejection_at_50": rejection_at(binary, scores, 0.5).rejection,
    }


def ensemble_logits(member_logits: list[np.ndarray]) -> np.ndarray:
    """An ensemble teacher's logits from its members' (their mean): what its saved averaging model computes,
    equal to the last bit on the default run's test split, without running every member again."""
    return np.asarray(np.mean(member_logits, axis=0), dtype=np.float32)


def cached_logits(cfg: Config, name: str, split: str) -> np.ndarray:
    """The logits teacher ``name`` gave on ``split`` (cached by its stage)."""
    path = RunLayout.of(cfg).teacher_logits(name, split)
    if not path.is_file():
        raise ModelError(f"{path} is missing; run `make teacher CONFIG=...` first")
    return np.load(path).astype(np.float32)
