"""Typed contracts of the JSON files the stages hand to each other (and to tools outside kd_trigger).

One pydantic model per file, used by the code that writes it and by every reader, so that a schema
drift fails loudly where it happens instead of turning into "n/a" cells in a report:

* :class:`StageRecord`: ``artifacts/<run>/stages/<stage>.json``, what a committed stage was made from;
* :class:`Metrics`: ``artifacts/<run>/metrics.json`` (distill stage);
* :class:`HlsReport`: ``firmware/<run>/<student>/hls_report.json`` (hls stage, and ``hls --model``);
* :class:`Study` and :class:`Scan`: ``study.json`` and ``scan/scan.json``.

Keys named in the issues are contracts for tools outside this package: they are never renamed.
Readers call :func:`read_contract`, which turns a missing, unreadable or out-of-date file into one
:class:`~kd_trigger.errors.DataError` line that names the command that makes it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kd_trigger.errors import DataError
from kd_trigger.runs import write_json_atomic


class Contract(BaseModel):
    """Base of every contract: unknown keys are refused (a producer that adds a key adds it here)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    def write(self, path: Path) -> Path:
        """Write the file atomically; None fields are kept so readers see every key."""
        return write_json_atomic(path, self.model_dump(mode="json", by_alias=True))


C = TypeVar("C", bound=Contract)


def finite_or_none(value: Any) -> Any:
    """JSON has no NaN/inf: such floats (also inside lists and dicts) become None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_or_none(v) for v in value]
    return value


def read_contract(path: Path, model: type[C], make: str) -> C:
    """Read and validate ``path`` as ``model``; DataError (one line, naming ``make``) otherwise."""
    if not path.is_file():
        raise DataError(f"{path} not found; it is made by `{make}`")
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{path} is not readable JSON ({err}); remake it with `{make}`") from None
    try:
        return model.model_validate(payload)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "<top level>"
        raise DataError(
            f"{path} does not match the {model.__name__} contract ({where}: {first['msg']}); "
            f"remake it with `{make}`"
        ) from None


# -- stage records --------------------------------------------------------------------------------
class Fingerprint(Contract):
    """Content of a file or directory tree at the time a stage used or made it."""

    path: str
    sha256: str
    files: int = 0
    bytes: int = 0
    size: int | None = None
    """For input files: size and mtime let an unchanged file skip re-hashing (a 1.2M-jet file is GBs)."""
    mtime_ns: int | None = None


class DigestParts(Contract):
    """What a stage digest is made of, kept so a rerun can say exactly what changed."""

    version: str
    config: str
    inputs: dict[str, str] = Field(default_factory=dict)
    upstream: dict[str, str] = Field(default_factory=dict)
    code: dict[str, str] = Field(default_factory=dict)
    """Source file (relative to the project) -> SHA-256 prefix, for every module the stage's code imports."""
    packages: dict[str, str] = Field(default_factory=dict)
    """Installed versions of the third-party packages that decide results (TensorFlow, hls4ml, ...)."""


class StageRecord(Contract):
    """``artifacts/<run>/stages/<stage>.json``: written in the same commit as the stage's outputs."""

    stage: str
    digest: str
    parts: DigestParts
    config_path: str | None
    inputs: list[Fingerprint] = Field(default_factory=list)
    outputs: list[Fingerprint] = Field(default_factory=list)
    finished_utc: str
    seconds: float
    versions: dict[str, str]
    exit_status: int = 0
    extra: dict[str, Any] = Field(default_factory=dict)


# -- metrics.json ---------------------------------------------------------------------------------
class BoostPoint(Contract):
    beta: float
    accuracy: float
    auc: float | None


class ModelMetrics(Contract):
    """Physics figures of one model on the test split (errors: bootstrap standard deviations)."""

    n_jets: int
    n_background: int
    accuracy: float
    auc: float
    auc_err: float | None
    rejection_at_30: float | None
    """1/eps_B at eps_S = 30% (None where no background jet passes the cut: see ``_capped``)."""
    rejection_at_30_err: float | None
    rejection_at_30_background_pass: float
    rejection_at_30_capped: bool
    rejection_at_50: float | None
    rejection_at_50_err: float | None
    rejection_at_50_background_pass: float
    rejection_at_50_capped: bool
    boost: list[BoostPoint] = Field(default_factory=list)


class RatioInterval(Contract):
    """A paired-bootstrap ratio: central value and the 16th/84th percentiles."""

    ratio: float | None
    low: float | None
    high: float | None


class LayerSparsity(Contract):
    """Zeros of one weight layer's kernel, counted in the saved model (see ``students.kernel_sparsity``)."""

    n_weights: int
    zeros: int
    sparsity: float
    quantized_zeros: int
    quantized_sparsity: float


class StudentSummary(Contract):
    """How one student was distilled, and what distillation did to it on the test split."""

    teacher: str
    temperature: float
    kd_weight: float
    rejection_ratio_30: RatioInterval
    rejection_ratio_50: RatioInterval
    output_type: str
    best_epoch: dict[str, int] = Field(default_factory=dict)
    epochs_run: dict[str, int] = Field(default_factory=dict)
    train_seconds: dict[str, float] = Field(default_factory=dict)
    sparsity_target: float = 0.0
    """``students[].sparsity`` (0: not pruned)."""
    sparsity: dict[str, dict[str, LayerSparsity]] = Field(default_factory=dict)
    """Per variant (``baseline``, ``kd``) and weight layer, measured in the saved .h5."""


class TestSplit(Contract):
    __test__ = False  # not a pytest class
    n_jets: int
    n_background: int


class Metrics(Contract):
    """``artifacts/<run>/metrics.json``. ``models`` keys: ``teacher`` (the first student's teacher),
    ``teacher/<name>`` (every teacher used), ``<student>/baseline`` and ``<student>/kd``."""

    run: str
    models: dict[str, ModelMetrics]
    students: dict[str, StudentSummary]
    test: TestSplit
    distill: dict[str, Any]
    evaluate_seconds: float
    seconds: dict[str, float] = Field(default_factory=dict)


# -- hls_report.json ------------------------------------------------------------------------------
class ResourceTotals(Contract):
    lut: int | None = None
    ff: int | None = None
    dsp: int | None = None
    bram_18k: int | None = None
    uram: int | None = None


class EstimateBlock(Contract):
    """``resources``: kd_trigger's own estimate. The estimator owns its inner detail (per-layer rows,
    calibration), so only the contract keys are typed; the rest is kept as written."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    source: str
    method: str
    total: ResourceTotals
    latency_cycles: int
    latency_ns: float
    ii_cycles: int
    clock_period_ns: float
    reuse_factor: int
    layers: list[dict[str, Any]] = Field(default_factory=list)


class VendorFigures(Contract):
    """Figures of one vendor report: ``vendor_hls`` (C synthesis) or ``vendor_synth`` (Vivado)."""

    source: str
    tool: str | None = None
    file: str | None = None
    lut: int | None = None
    ff: int | None = None
    dsp: int | None = None
    bram_18k: int | None = None
    uram: int | None = None
    latency_cycles: int | None = None
    latency_ns: float | None = None
    ii_cycles: int | None = None
    clock_period_ns: float | None = None


class CsimBlock(Contract):
    """Agreement of the C simulation with QKeras (``csim``)."""

    n_samples: int
    n_outputs: int
    exact_fraction: float
    max_abs_diff: float
    argmax_agreement: float
    auc_qkeras: float | None
    auc_hls: float | None
    nonzero_output_fraction: float
    simulation_s: float
    qkeras_s: float
    float32_agreement: float = 1.0
    """Fraction of outputs where QKeras' own float32 arithmetic equals the exact reference."""
    reference: str = "QKeras, float64 twin"
    first_divergent_layer: str | None = None
    divergence: dict[str, Any] | None = None
    compared_layer: str | None = None
    """The layer whose outputs were compared, when it is not the model's last (a final softmax)."""
    final_activation: dict[str, Any] | None = None
    """A final softmax/sigmoid: not bit-exact by nature; its deviation from QKeras is measured here."""


class RtlSimBlock(Contract):
    """Agreement of the RTL simulation with QKeras (``rtl_sim``): every output value compared exactly."""

    n_samples: int
    exact_fraction: float
    max_abs_diff: float
    argmax_agreement: float
    first_divergent_layer: str | None = None
    n_outputs: int = 0
    simulator: str = ""
    seconds: float = 0.0
    n_exact_samples: int = 0
    float32_agreement: float = 1.0
    """Fraction of outputs where QKeras' own float32 arithmetic equals the exact (float64) reference."""
    auc_qkeras: float | None = None
    auc_rtl: float | None = None
    nonzero_output_fraction: float = 0.0
    build_seconds: float = 0.0
    run_seconds: float = 0.0
    cpu_seconds: float = 0.0
    """Verilator build + run, all processes: comparable across machine loads."""
    divergence: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The block as JSON-able data."""
        return self.model_dump(mode="json")


class Da4mlEstimateBlock(Contract):
    """da4ml's own cost model of the RTL: LUTs of the adder graph, flip-flops of the pipeline registers."""

    lut: int
    ff: int
    latency_cycles: int
    latency_cutoff: float
    solver: dict[str, Any]
    segments: list[dict[str, Any]]
    trace_seconds: float
    source: str = "da4ml estimate"

    def to_dict(self) -> dict[str, Any]:
        """The block as JSON-able data."""
        return self.model_dump(mode="json")


class YosysBlock(Contract):
    """Cells after Yosys ``synth_xilinx`` (see :class:`kd_trigger.rtl.synth.YosysResult`)."""

    lut: int
    ff: int
    carry: int
    dsp: int
    bram_18k: float
    family: str
    seconds: float
    log: str
    uram: int = 0
    source: str = "yosys synth (open-source)"
    tool: str = ""
    cpu_seconds: float = 0.0
    lut_logic: int = 0
    lut_srl: int = 0
    lut_inv: int = 0
    muxf: int = 0
    cells: dict[str, int] = Field(default_factory=dict)


class RtlBlock(Contract):
    """The RTL flow's figures (``rtl`` of hls_report.json; :class:`RtlResult` adds the simulation).

    ``latency_cycles``: rising clock edges from the one that registers ``model_inp`` to the one that puts
    that sample's logits on ``model_out`` (da4ml's convention: the number of pipeline stages).
    ``seconds`` are wall-clock, ``cpu_seconds`` the CPU time of this process and the tools it ran.
    """

    top: str
    latency_cycles: int
    ii_cycles: int = 1
    clock_period_ns: float
    latency_ns: float
    da4ml_estimate: Da4mlEstimateBlock
    yosys: YosysBlock | None = None
    files: dict[str, list[str]]
    seconds: dict[str, float]
    cpu_seconds: dict[str, float]
    precision: dict[str, dict[str, str]]
    input_type: str
    output_type: str
    tools: dict[str, str]
    overflow_layers: list[str] = Field(default_factory=list)
    folding: dict[str, Any] | None = None
    """A folded Deep Sets (II > 1): phi copies, padding slots (see :class:`kd_trigger.rtl.program.Folding`)."""
    interface: str = ""
    """How events enter and leave the top module (ports and timing)."""
    model: str = ""
    """The name of the Keras model the flow built."""
    directory: str | None = None
    """The flow's folder, relative to the hls_report.json beside it (``rtl``); None in rtl_report.json."""


class RtlResult(RtlBlock):
    """Everything the RTL flow measured: ``rtl_report.json`` (the ``rtl`` block plus ``rtl_sim``)."""

    rtl_sim: RtlSimBlock

    def to_dict(self) -> dict[str, Any]:
        """What ``rtl_report.json`` holds."""
        return self.model_dump(mode="json", exclude={"directory"})

    def block(self, directory: str) -> RtlBlock:
        """The ``rtl`` block of an hls_report.json whose flow folder is ``directory``."""
        return RtlBlock.model_validate({**self.model_dump(exclude={"rtl_sim"}), "directory": directory})


class BudgetRowModel(Contract):
    figure: str
    value: float | None
    limit: float
    unit: str
    source: str | None
    status: str


class BudgetBlock(Contract):
    """The verdict against one trigger-budget profile (``budget``)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, populate_by_name=True)

    profile: str
    passed: bool = Field(alias="pass")
    violations: list[str]
    rows: list[BudgetRowModel]
    flow: str | None = None
    """The flow (hls4ml or rtl) whose figures decided the verdict."""
    decided_by: str | None = None
    """The most trustworthy source among the figures that decided."""


class HlsReport(Contract):
    """``firmware/<run>/<student>/hls_report.json`` (and ``hls --model``'s ``<out>/hls_report.json``)."""

    student: str
    model: str
    backend: str
    part: str
    clock_period_ns: float
    reuse_factor: int
    io_type: str
    strategy: str
    project_dir: str
    input_type: str
    precision: dict[str, dict[str, str]]
    precision_hls4ml: dict[str, dict[str, str]]
    requantized_weights: list[str]
    csim: CsimBlock | None
    """None when the hls4ml flow is not built (``hls.flows: [rtl]``)."""
    min_exact_fraction: float
    seconds: dict[str, float]
    versions: dict[str, str]
    resources: EstimateBlock | None = None
    vendor_hls: VendorFigures | None = None
    vendor_synth: VendorFigures | None = None
    rtl: RtlBlock | None = None
    rtl_sim: RtlSimBlock | None = None
    hls4ml_at_ii1: dict[str, Any] | None = None
    """Our estimate of the same hls4ml design with every layer at reuse factor 1 (II = 1, as the RTL):
    ``total`` (predicts post-synthesis) and ``total_hls`` (predicts the HLS report), latency, II."""
    budget: BudgetBlock | None = None
    budget_by_flow: dict[str, BudgetBlock] = Field(default_factory=dict)
    inputs: str | None = None
    intake: list[str] = Field(default_factory=list)
    """What was assumed to convert a model as it was saved (an input type, a default precision)."""
    reuse_by_layer: dict[str, int] = Field(default_factory=dict)
    sparsity: dict[str, LayerSparsity] = Field(default_factory=dict)
    """Zeros per weight layer of the converted model's kernels (pruned entries cost no product)."""

    ii_cycles: int = 1
    """The folding k of the hls4ml firmware (``hls.ii_cycles``; 1: unfolded): its II is k x reuse factor."""
    parallelization_by_layer: dict[str, int] = Field(default_factory=dict)
    """Per-particle Conv1D layers: hls4ml's ParallelizationFactor (particles computed at once)."""

    def require_csim(self) -> CsimBlock:
        """The C simulation of a report whose hls4ml flow ran; DataError for an RTL-only report."""
        if self.csim is None:
            raise DataError(f"{self.student}: hls_report.json has no C simulation (hls.flows without hls4ml)")
        return self.csim


# -- study.json -----------------------------------------------------------------------------------
class Interval(Contract):
    """A KD/baseline ratio over seeds: the mean of the per-seed ratios and its 68% interval (a paired
    bootstrap that resamples the test jets, the same for both models, and the seeds)."""

    mean: float | None
    lo68: float | None
    hi68: float | None
    per_seed: list[float | None]


class KdOverBaseline(Contract):
    rejection_at_30: Interval
    rejection_at_50: Interval
    auc: Interval
    accuracy_at_beta: dict[str, Interval] = Field(default_factory=dict)
    """Keyed by the boost velocity beta as text ("0.9")."""


class SeedFigures(Contract):
    """One trained model on the test split (and the validation figure the selection used)."""

    seed: int
    auc: float
    rejection_at_30: float | None
    rejection_at_50: float | None
    accuracy: float
    accuracy_at_beta: dict[str, float] = Field(default_factory=dict)
    val_selection: float | None = None
    best_epoch: int = 0
    train_seconds: float = 0.0


class StudySetting(Contract):
    teacher: str
    temperature: float
    kd_weight: float
    chosen: bool = False
    """The setting the validation split picked for this student and teacher."""
    val_selection_ratio: float | None = None
    kd: list[SeedFigures]
    kd_over_baseline: KdOverBaseline


class LowDataPoint(Contract):
    train_fraction: float
    n_train: int
    teacher: str
    temperature: float
    kd_weight: float
    baseline: list[SeedFigures]
    kd: list[SeedFigures]
    kd_over_baseline: KdOverBaseline


class StudentStudy(Contract):
    baseline: list[SeedFigures]
    settings: list[StudySetting]
    best: dict[str, Any]
    """The (teacher, temperature, kd_weight) the validation split picked for this student."""
    low_data: list[LowDataPoint] = Field(default_factory=list)

    def chosen_setting(self) -> StudySetting:
        """The setting named by ``best`` (each teacher also marks its own best one ``chosen``)."""
        for st in self.settings:
            if (st.teacher, st.temperature, st.kd_weight) == (
                self.best.get("teacher"),
                self.best.get("temperature"),
                self.best.get("kd_weight"),
            ):
                return st
        return self.settings[0]


class TeacherSummary(Contract):
    kind: str
    n_particles: int
    auc: float
    rejection_at_30: float | None
    rejection_at_50: float | None
    n_parameters: int
    training_seconds: float


class Study(Contract):
    """``artifacts/<run>/study.json``."""

    run: str
    seeds: list[int]
    select_on: str
    n_test: int
    n_test_background: int
    teachers: dict[str, TeacherSummary]
    students: dict[str, StudentStudy]
    seconds: float
    paper: dict[str, Any]


# -- scan/scan.json -------------------------------------------------------------------------------
class ScanCopy(Contract):
    """One trained copy of a scan design, built, gated, measured: the KD copy is the :class:`ScanPoint`
    itself, the label-only copy (same design, initial weights and batches) its ``baseline``."""

    physics: dict[str, float | None] = Field(default_factory=dict)
    figures: dict[str, float | int | None] = Field(default_factory=dict)
    sources: dict[str, str | None] = Field(default_factory=dict)
    exact: bool = False
    exactness: dict[str, Any] = Field(default_factory=dict)
    budget_pass: bool = False
    budget: BudgetBlock | None = None
    pareto_lut: bool = False
    """On a front of objective up, LUT down: the KD copies' over all points, a baseline's over its kind's."""
    error: str | None = None
    """Why the copy has no figures (a refused model): it is kept, never dropped."""
    yosys: dict[str, Any] | None = None  # RTL copies measured after the ranking: counts, fast_lut, lut_ratio


class ScanPoint(ScanCopy):
    """One design of the scan: its axes and its KD copy's physics, figures (each with its source), budget."""

    key: str
    student: str
    kind: str
    axes: dict[str, Any]
    pareto: bool = False
    """On the front of (physics up, LUT down, latency down) jointly."""
    pareto_latency: bool = False
    seconds: float = 0.0
    project: str | None = None
    baseline: ScanCopy | None = None  # None in a scan.json written before issue 21


class Scan(Contract):
    """``artifacts/<run>/scan/scan.json``."""

    run: str
    objective: str
    mode: str
    points: list[ScanPoint]
    best: str | None
    """The key of the promoted design (the best objective among exact points within the budget)."""
    nearest_miss: dict[str, Any] | None = None
    workers: int
    scheduler: str | None
    seconds: float
    fronts: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Per student kind: ``kd`` and ``baseline`` fronts ([{key, lut, objective}] by LUT), ``gains``."""
    fast_vs_yosys: dict[str, Any] | None = None  # da4ml estimate / Yosys LUT on the measured RTL copies
    front_seeds: dict[str, Any] | None = None  # per kind: the KD saving over seeds on retrained front designs
