"""What the review report reads, each file through its typed contract (:mod:`kd_trigger.contracts`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from kd_trigger.config import Config
from kd_trigger.contracts import HlsReport, Metrics, StageRecord, read_contract
from kd_trigger.fpga.budget import BudgetProfile, load_budget
from kd_trigger.layout import RunLayout
from kd_trigger.runner import read_records


@dataclass(frozen=True)
class StudentInputs:
    name: str
    report_path: Path
    report: HlsReport
    csim_npz: Path | None


@dataclass(frozen=True)
class RunInputs:
    metrics_path: Path
    metrics: Metrics
    students: tuple[StudentInputs, ...]
    records: tuple[StageRecord, ...]
    profile: BudgetProfile


def load_run_inputs(cfg: Config, stages: Sequence[str] | None = None) -> RunInputs:
    """Read the run's metrics, every student's firmware report and the stage records of the run (of
    ``stages``, in that order: the report stage passes its graph; else every committed record).

    A missing or out-of-contract file is a DataError naming the command that makes it.
    """
    hint = cfg.source or "<config.yaml>"
    layout = RunLayout.of(cfg)
    metrics_path = layout.metrics
    metrics = read_contract(metrics_path, Metrics, f"make distill CONFIG={hint}")
    students = []
    for spec in cfg.students:
        project = layout.project(spec.name)
        report = read_contract(project.report, HlsReport, f"make hls CONFIG={hint}")
        npz = project.csim_outputs
        students.append(StudentInputs(spec.name, project.report, report, npz if npz.is_file() else None))
    records = tuple(r for r in read_records(cfg, stages) if r.stage != "report")
    return RunInputs(metrics_path, metrics, tuple(students), records, load_budget(cfg.budget))
