"""The teacher stages: one per configured teacher, each trained once and its logits cached.

``artifacts/<run>/teachers/<name>/`` holds ``teacher.h5`` (trained teachers only), ``metrics.json``
(test AUC, R30, R50 and accuracy, training time), ``{train,val,test}_logits.npy`` (so no student ever
recomputes the teacher) and ``history.json``. A teacher of ``kind: path`` is a model you bring: it is
checked and its logits cached, nothing is trained. A teacher of ``kind: ensemble`` averages the logits of
its members (teachers configured before it); its ``teacher.h5`` is the averaging model.
"""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from kd_trigger.contracts import finite_or_none
from kd_trigger.data.readers import load_jets
from kd_trigger.distill.teacher_train import train_teacher
from kd_trigger.distill.teachers import (
    SPLITS,
    cached_logits,
    check_teacher,
    ensemble_logits,
    load_teacher,
    load_teacher_file,
    predict,
    teacher_metrics,
    teacher_path,
)
from kd_trigger.errors import ModelError
from kd_trigger.layout import RunLayout, TeacherFiles
from kd_trigger.runs import file_problem, write_h5_atomic, write_json_atomic
from kd_trigger.stage_types import StageContext, StageDecl, StageResult, dump, teacher_stage_name

if TYPE_CHECKING:
    from kd_trigger.config import Config  # annotations only

log = logging.getLogger(__name__)


def teacher_stage(ctx: StageContext) -> StageResult:
    """Train (or check) one teacher, cache its logits on every split, record its test metrics."""
    from kd_trigger.models.teacher import teacher_input_array  # TensorFlow

    cfg = ctx.cfg
    name = ctx.stage.split(":", 1)[1]
    spec = cfg.teacher_spec(name)
    out = ctx.out(RunLayout.of(cfg).teacher_dir(name))
    out.mkdir(parents=True, exist_ok=True)
    files = TeacherFiles(out)

    data = load_jets(cfg.data_path, cfg)
    parts = {s: data.select(s) for s in SPLITS}
    y = {s: parts[s].labels.astype(np.int32) for s in SPLITS}
    n_classes = len(cfg.data.classes)

    record: dict[str, Any]
    if spec.kind == "ensemble":
        model = _ensemble(cfg, spec, n_classes)
        write_h5_atomic(files.model, lambda h: model.save(h, save_format="h5", include_optimizer=False))
        record = {"training_seconds": 0.0, "epochs_run": 0, "best_epoch": 0, "members": list(spec.members)}
        logits = {s: ensemble_logits([cached_logits(cfg, m, s) for m in spec.members]) for s in SPLITS}
    else:
        x = {s: teacher_input_array(spec, parts[s].constituents) for s in SPLITS}
        if spec.kind == "path":
            model = load_teacher_file(teacher_path(cfg, spec), spec, n_classes)
            record = {"training_seconds": 0.0, "epochs_run": 0, "best_epoch": 0}
        else:
            model, record = train_teacher(
                spec,
                {"train": x["train"], "val": x["val"]},
                y,
                seed=teacher_seed(cfg, name),
                n_classes=n_classes,
            )
            write_h5_atomic(files.model, lambda h: model.save(h, save_format="h5", include_optimizer=False))
            write_json_atomic(files.history, finite_or_none(record.get("history", {})))
        logits = {s: predict(model, x[s]) for s in SPLITS}
    for s in SPLITS:
        np.save(files.logits(s), logits[s])
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
    write_json_atomic(files.metrics, finite_or_none(metrics))
    log.info(
        "teacher %s: test accuracy %.4f, AUC %.4f, 1/eps_B(30%%) %.0f (%s)",
        name,
        metrics["accuracy"],
        metrics["auc"],
        metrics["rejection_at_30"],
        {"path": "brought", "ensemble": f"mean of {', '.join(spec.members)}"}.get(
            spec.kind, f"{record.get('training_seconds', 0):.0f} s training"
        ),
    )
    return StageResult(extra={"auc": metrics["auc"], "rejection_at_30": metrics["rejection_at_30"]})


def teacher_seed(cfg: Config, name: str) -> int:
    """The seed teacher ``name`` trains from: its own ``seed``, else ``run.seed``."""
    seed = cfg.teacher_spec(name).seed
    return cfg.run.seed if seed is None else seed


def _ensemble(cfg: Config, spec: Any, n_classes: int) -> Any:
    """The averaging model of the ensemble ``spec``, from its members' committed models."""
    from kd_trigger.models.teacher import ensemble_teacher  # TensorFlow

    members = {m: (cfg.teacher_spec(m).n_particles, load_teacher(cfg, m)) for m in spec.members}
    model = ensemble_teacher(members, spec.n_particles, name=spec.name)
    check_teacher(model, RunLayout.of(cfg).teacher_model(spec.name), spec, n_classes)
    return model


# -- the stage declarations (one per configured teacher) ------------------------------------------
def _teacher_config(cfg: Config, name: str) -> Any:
    return {"seed": teacher_seed(cfg, name), "teacher": dump(cfg.teacher_spec(name))}


def _teacher_outputs(cfg: Config, name: str) -> list[Path]:
    return [RunLayout.of(cfg).teacher_dir(name)]


def _teacher_needs(cfg: Config, name: str) -> tuple[str, ...]:
    """data, and for an ensemble its members' stages."""
    return ("data", *(teacher_stage_name(m) for m in cfg.teacher_spec(name).members))


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
        needs=partial(_teacher_needs, name=name),
        inputs=partial(_teacher_files, name=name),
        check=partial(check_teacher_file, name=name),
        description=f"train teacher '{name}' (or check the file it names) and cache its logits",
    )
