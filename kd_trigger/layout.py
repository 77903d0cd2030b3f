"""Where every artifact of a run lives: the one module that spells the pipeline's file and folder names.

A run writes into two trees::

    artifacts/<run>/                       firmware/<run>/
      data/jets.h5, summary.json             <student>/  hls4ml project, hls_report.json,
      teachers/<name>/teacher.h5,                        csim_outputs.npz, rtl/ (the RTL flow)
        metrics.json, history.json,          report.md, report.html, report_plots/
        {train,val,test}_logits.npy          best/       the scan's best design in budget
      students/<name>/{baseline,kd}.h5,
        history.json
      metrics.json, summary.md, roc.png, boost.png
      study.json, study.md, study/ (plots), study-cache/
      scan/ (scan.json, scan.md, Pareto plots), scan-cache/<key>/ (point.json, project/)
      stages/<stage>.json                    (the runner's stage records)

Writers and readers ask :class:`RunLayout` (one run's paths) or :class:`ProjectLayout` (the files of one
firmware project, wherever it lies: a staging folder, a scan point, ``--out``), never spell a name
themselves. This module imports nothing of the project, so any module may use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kd_trigger.config import Config

# -- file and folder names --------------------------------------------------------------------------
DATA_DIR = "data"
JETS_FILE = "jets.h5"
DATA_SUMMARY_FILE = "summary.json"

TEACHERS_DIR = "teachers"
TEACHER_FILE = "teacher.h5"
LOGITS_SUFFIX = "_logits.npy"

STUDENTS_DIR = "students"
STUDENT_SUFFIX = ".h5"
HISTORY_FILE = "history.json"
METRICS_FILE = "metrics.json"
SUMMARY_FILE = "summary.md"
ROC_PLOT = "roc.png"
BOOST_PLOT = "boost.png"

STUDY_FILE = "study.json"
STUDY_MD = "study.md"
STUDY_PLOTS_DIR = "study"
STUDY_CACHE_DIR = "study-cache"
STUDY_RATIO_PLOT = "ratio_per_seed.png"
STUDY_LOW_DATA_PLOT = "low_data.png"

SCAN_DIR = "scan"
SCAN_FILE = "scan.json"
SCAN_MD = "scan.md"
SCAN_CACHE_DIR = "scan-cache"
POINT_FILE = "point.json"
POINT_PROJECT_DIR = "project"
POINT_BASELINE_DIR = "baseline"
POINT_YOSYS_FILE = "yosys.json"
PARETO_LUT_PLOT = "pareto_lut.png"
PARETO_LATENCY_PLOT = "pareto_latency.png"

HLS_REPORT_FILE = "hls_report.json"
CSIM_OUTPUTS_FILE = "csim_outputs.npz"
CSIM_FAILED_FILE = "CSIM_FAILED.txt"
RTL_SIM_FAILED_FILE = "RTL_SIM_FAILED.txt"
RTL_DIR = "rtl"
RTL_REPORT_FILE = "rtl_report.json"

REPORT_MD = "report.md"
REPORT_HTML = "report.html"
REPORT_PLOTS_DIR = "report_plots"
BEST_DIR = "best"

RECORDS_DIR = "stages"


@dataclass(frozen=True)
class ProjectLayout:
    """The files of one firmware project folder (``firmware/<run>/<student>``, a staging copy of it,
    a scan point's project, or the ``--out`` of ``kd-trigger hls/rtl --model``)."""

    root: Path

    @property
    def report(self) -> Path:
        """``hls_report.json`` (:class:`kd_trigger.contracts.HlsReport`)."""
        return self.root / HLS_REPORT_FILE

    @property
    def csim_outputs(self) -> Path:
        """``csim_outputs.npz``: labels, QKeras and C-simulation outputs of the test jets."""
        return self.root / CSIM_OUTPUTS_FILE

    @property
    def csim_failed(self) -> Path:
        """The marker a failed C simulation of ``hls --model`` leaves, saying why."""
        return self.root / CSIM_FAILED_FILE

    @property
    def rtl_sim_failed(self) -> Path:
        """The marker a failed RTL simulation of ``rtl --model`` leaves, saying why."""
        return self.root / RTL_SIM_FAILED_FILE

    @property
    def rtl(self) -> Path:
        """The RTL flow's folder inside an hls4ml project (Verilog, simulation, synthesis)."""
        return self.root / RTL_DIR

    @property
    def rtl_report(self) -> Path:
        """``rtl/rtl_report.json`` (:class:`kd_trigger.contracts.RtlResult`)."""
        return self.rtl / RTL_REPORT_FILE


@dataclass(frozen=True)
class DataFiles:
    """The files of the data stage's folder (``data/``, or its staging copy)."""

    root: Path

    @property
    def jets(self) -> Path:
        """The generated jet file (a run with ``data.path`` reads that file instead)."""
        return self.root / JETS_FILE

    @property
    def summary(self) -> Path:
        """``summary.json``: the jets per split and class the later stages will read."""
        return self.root / DATA_SUMMARY_FILE


@dataclass(frozen=True)
class TeacherFiles:
    """The files of one teacher folder (``teachers/<name>``, or its staging copy while the stage runs)."""

    root: Path

    @property
    def model(self) -> Path:
        """A trained teacher's model file (a teacher you bring is read from its own ``path``)."""
        return self.root / TEACHER_FILE

    @property
    def metrics(self) -> Path:
        return self.root / METRICS_FILE

    @property
    def history(self) -> Path:
        return self.root / HISTORY_FILE

    def logits(self, split: str) -> Path:
        """The cached logits on ``split`` (train, val or test)."""
        return self.root / f"{split}{LOGITS_SUFFIX}"


@dataclass(frozen=True)
class StudentFiles:
    """The files of one student folder (``students/<name>``, or its staging copy)."""

    root: Path

    def model(self, variant: str = "kd") -> Path:
        """``<variant>.h5``: a trained student (variant ``baseline`` or ``kd``)."""
        return self.root / f"{variant}{STUDENT_SUFFIX}"

    @property
    def history(self) -> Path:
        return self.root / HISTORY_FILE


@dataclass(frozen=True)
class ScanFiles:
    """The files of the scan's output folder (``scan/``, or its staging copy)."""

    root: Path

    @property
    def scan(self) -> Path:
        """``scan.json`` (:class:`kd_trigger.contracts.Scan`)."""
        return self.root / SCAN_FILE

    @property
    def scan_md(self) -> Path:
        return self.root / SCAN_MD

    @property
    def pareto_lut(self) -> Path:
        return self.root / PARETO_LUT_PLOT

    @property
    def pareto_latency(self) -> Path:
        return self.root / PARETO_LATENCY_PLOT


@dataclass(frozen=True)
class RunLayout:
    """Every path one run writes or reads, from its config's run name and folders."""

    run: str
    artifacts: Path
    firmware: Path
    data_file: Path
    """The jet file the run reads: ``data.path`` if given, else the generated ``data/jets.h5``."""

    @classmethod
    def of(cls, cfg: Config) -> RunLayout:
        """The layout of ``cfg``'s run."""
        return cls(cfg.run.name, cfg.artifacts, cfg.firmware, cfg.data_path)

    # -- data ---------------------------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        """``artifacts/<run>/data``: the data stage's output."""
        return self.artifacts / DATA_DIR

    @property
    def data(self) -> DataFiles:
        return DataFiles(self.data_dir)

    @property
    def generated_jets(self) -> Path:
        """Where the data stage writes generated jets (``data_file`` unless ``data.path`` is set)."""
        return self.data.jets

    @property
    def data_summary(self) -> Path:
        return self.data.summary

    # -- teachers -----------------------------------------------------------------------------------
    @property
    def teachers_dir(self) -> Path:
        return self.artifacts / TEACHERS_DIR

    def teacher_dir(self, name: str) -> Path:
        """``artifacts/<run>/teachers/<name>``: one teacher stage's output."""
        return self.teachers_dir / name

    def teacher(self, name: str) -> TeacherFiles:
        return TeacherFiles(self.teacher_dir(name))

    def teacher_model(self, name: str) -> Path:
        """A trained teacher's model file (a teacher you bring is read from its own ``path``)."""
        return self.teacher(name).model

    def teacher_metrics(self, name: str) -> Path:
        return self.teacher(name).metrics

    def teacher_logits(self, name: str, split: str) -> Path:
        """The cached logits of teacher ``name`` on ``split`` (train, val or test)."""
        return self.teacher(name).logits(split)

    # -- distill ------------------------------------------------------------------------------------
    @property
    def students_dir(self) -> Path:
        return self.artifacts / STUDENTS_DIR

    def student_dir(self, name: str) -> Path:
        return self.students_dir / name

    def student(self, name: str) -> StudentFiles:
        return StudentFiles(self.student_dir(name))

    def student_model(self, name: str, variant: str = "kd") -> Path:
        """``students/<name>/<variant>.h5``: a trained student (variant ``baseline`` or ``kd``)."""
        return self.student(name).model(variant)

    @property
    def metrics(self) -> Path:
        """``metrics.json`` (:class:`kd_trigger.contracts.Metrics`)."""
        return self.artifacts / METRICS_FILE

    @property
    def summary(self) -> Path:
        return self.artifacts / SUMMARY_FILE

    @property
    def roc_plot(self) -> Path:
        return self.artifacts / ROC_PLOT

    @property
    def boost_plot(self) -> Path:
        return self.artifacts / BOOST_PLOT

    def distill_outputs(self) -> list[Path]:
        """Everything the distill stage writes."""
        return [self.students_dir, self.metrics, self.summary, self.roc_plot, self.boost_plot]

    # -- study --------------------------------------------------------------------------------------
    @property
    def study(self) -> Path:
        """``study.json`` (:class:`kd_trigger.contracts.Study`)."""
        return self.artifacts / STUDY_FILE

    @property
    def study_md(self) -> Path:
        return self.artifacts / STUDY_MD

    @property
    def study_plots(self) -> Path:
        return self.artifacts / STUDY_PLOTS_DIR

    @property
    def study_cache(self) -> Path:
        """One ``<key>.npz`` per training of the study (kept across runs: a killed study resumes)."""
        return self.artifacts / STUDY_CACHE_DIR

    def study_outputs(self) -> list[Path]:
        """Everything the study stage writes (its cache is not an output: it outlives a rerun)."""
        return [self.study, self.study_md, self.study_plots]

    # -- scan ---------------------------------------------------------------------------------------
    @property
    def scan_dir(self) -> Path:
        return self.artifacts / SCAN_DIR

    @property
    def scan_files(self) -> ScanFiles:
        return ScanFiles(self.scan_dir)

    @property
    def scan(self) -> Path:
        """``scan/scan.json`` (:class:`kd_trigger.contracts.Scan`)."""
        return self.scan_files.scan

    @property
    def scan_cache(self) -> Path:
        """One folder per scan point (see :func:`point_file`), kept across runs."""
        return self.artifacts / SCAN_CACHE_DIR

    @property
    def best(self) -> Path:
        """``firmware/<run>/best``: the scan's best design within the budget."""
        return self.firmware / BEST_DIR

    def scan_outputs(self) -> list[Path]:
        """Everything the scan stage writes."""
        return [self.scan_dir, self.best]

    # -- firmware -----------------------------------------------------------------------------------
    def firmware_dir(self, student: str) -> Path:
        """``firmware/<run>/<student>``: the student's hls4ml project, report and RTL flow."""
        return self.firmware / student

    def project(self, student: str) -> ProjectLayout:
        """The files of a student's committed firmware project."""
        return ProjectLayout(self.firmware_dir(student))

    def hls_report(self, student: str) -> Path:
        return self.project(student).report

    def flow_dir(self, flow: str, student: str) -> Path:
        """``artifacts/<run>/stages/<flow>/<student>``: what the ``flow`` stage (hls4ml or rtl) built for
        ``student``, before the hls stage links it into :meth:`firmware_dir`. It lies in the stage
        runner's folder: a reserved name, so no student shares it."""
        return self.records_dir / flow / student

    # -- review report ------------------------------------------------------------------------------
    @property
    def report_md(self) -> Path:
        return self.firmware / REPORT_MD

    @property
    def report_html(self) -> Path:
        return self.firmware / REPORT_HTML

    @property
    def report_plots(self) -> Path:
        return self.firmware / REPORT_PLOTS_DIR

    def report_outputs(self) -> list[Path]:
        """Everything the report stage writes."""
        return [self.report_md, self.report_html, self.report_plots]

    # -- stage records ------------------------------------------------------------------------------
    @property
    def records_dir(self) -> Path:
        return self.artifacts / RECORDS_DIR

    def record(self, stage: str) -> Path:
        """The committed record of ``stage`` (``teacher:x`` is stored as ``teacher-x.json``)."""
        return self.records_dir / f"{stage.replace(':', '-')}.json"

    def record_config(self, stage: str) -> Path:
        """The resolved config ``stage`` was committed with, beside its record (``<stage>.config.yaml``)."""
        return self.records_dir / f"{stage.replace(':', '-')}.config.yaml"


# -- inside folders that have no run ----------------------------------------------------------------
def point_file(point_dir: Path) -> Path:
    """A scan point's result (``scan-cache/<key>/point.json``)."""
    return Path(point_dir) / POINT_FILE


def point_baseline(point_dir: Path) -> Path:
    """A scan point's baseline copy (``scan-cache/<key>/baseline``, its firmware in ``baseline/project``)."""
    return Path(point_dir) / POINT_BASELINE_DIR


def point_yosys(copy_dir: Path) -> Path:
    """The Yosys counts of a scan copy's RTL design, measured after the ranking (``<copy>/yosys.json``)."""
    return Path(copy_dir) / POINT_YOSYS_FILE


def point_project(point_dir: Path) -> Path:
    """A scan point's firmware project (``scan-cache/<key>/project``)."""
    return Path(point_dir) / POINT_PROJECT_DIR


def study_cache_file(cache: Path, key: str) -> Path:
    """One cached training of the study."""
    return Path(cache) / f"{key}.npz"


def study_boost_plot(plots: Path, student: str) -> Path:
    """The study's robustness plot of one student."""
    return Path(plots) / f"boost_{student}.png"
