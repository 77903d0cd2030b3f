"""The pipeline's stage graph, assembled from the ``STAGE`` each stage module declares.

    data -> teacher:<name> (one per configured teacher) -> distill -> hls4ml --> hls -> report
                                     \\                             \\-> rtl --/
                                      \\-> study      scan (beside distill, from data + teachers)

``hls4ml`` and ``rtl`` are in the graph only when ``hls.flows`` names them; ``hls`` assembles each
student's firmware folder and budget verdict from the flows that are. Each stage module declares what
its stage needs beside its function (:class:`kd_trigger.stage_types.StageDecl`); this module only
orders the declarations, and :mod:`kd_trigger.runner` walks the graph (the digest rule, atomic commits,
the run lock). Importing this module imports every stage module, but never TensorFlow: their top-level
imports are TensorFlow-free, and their functions import it when they run.

Not result code (see :data:`kd_trigger.fingerprint.NOT_RESULT_CODE`): editing it reruns no stage.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from kd_trigger import runner, scan, study
from kd_trigger.config import Config
from kd_trigger.contracts import StageRecord
from kd_trigger.data import generate
from kd_trigger.distill import pipeline as distill
from kd_trigger.distill.teacher_stage import teacher_stage_decl
from kd_trigger.hls import hls4ml_stage
from kd_trigger.hls import pipeline as hls
from kd_trigger.layout import RECORDS_DIR
from kd_trigger.report import assemble
from kd_trigger.rtl import stage as rtl
from kd_trigger.runner import Graph
from kd_trigger.stage_types import Stage, StageDecl, teacher_stage_name

__all__ = [
    "RECORDS_DIR",
    "Stage",
    "build_graph",
    "declarations",
    "read_record",
    "record_path",
    "run_targets",
    "stage_status",
    "teacher_stage_name",
]


def declarations(cfg: Config) -> list[StageDecl]:
    """Every stage declaration of ``cfg``'s pipeline, in a valid execution order (upstream first)."""
    return [
        generate.STAGE,
        *(teacher_stage_decl(spec.name) for spec in cfg.teachers),
        distill.STAGE,
        hls4ml_stage.STAGE,
        rtl.STAGE,
        hls.STAGE,
        assemble.STAGE,
        study.STAGE,
        scan.STAGE,
    ]


def build_graph(cfg: Config) -> Graph:
    """The stages of ``cfg``'s pipeline, keyed by name, in a valid execution order."""
    return {decl.name: decl.resolve(cfg) for decl in declarations(cfg) if decl.when(cfg)}


def run_targets(cfg: Config, targets: Iterable[str], force: bool = False, graph: Graph | None = None) -> int:
    """:func:`kd_trigger.runner.run_targets` on ``graph`` (default: :func:`build_graph` of ``cfg``)."""
    return runner.run_targets(cfg, targets, graph if graph is not None else build_graph(cfg), force=force)


def stage_status(
    cfg: Config, targets: Iterable[str], graph: Graph | None = None
) -> list[tuple[str, str, str]]:
    """:func:`kd_trigger.runner.stage_status` on ``graph`` (default: :func:`build_graph` of ``cfg``)."""
    return runner.stage_status(cfg, targets, graph if graph is not None else build_graph(cfg))


def record_path(cfg: Config, stage: str) -> Path:
    """Where the record of ``stage`` is committed (see :func:`kd_trigger.runner.record_path`)."""
    return runner.record_path(cfg, stage)


def read_record(cfg: Config, stage: str) -> StageRecord | None:
    """The committed record of ``stage`` (see :func:`kd_trigger.runner.read_record`)."""
    return runner.read_record(cfg, stage)
