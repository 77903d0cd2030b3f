"""``firmware/<run>/<student>/hls_report.json`` (hls stage, ``hls --model``) and the RTL flow's ``rtl_report.json``."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field

from kd_trigger.contracts.base import Contract
from kd_trigger.contracts.metrics import LayerSparsity
from kd_trigger.errors import DataError
from kd_trigger.fpga import SOURCE_YOSYS


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
    """Cells after Yosys ``synth_xilinx``, counted by :func:`kd_trigger.rtl.synth.count_cells`.

    ``lut`` counts every cell that occupies a LUT, like Vivado's "CLB LUTs": LUT1-6, LUTs used as shift
    registers (``lut_srl``) and Yosys' ``INV`` cells (``lut_inv``; inverters left at the stage-module
    boundaries that a flattening Vivado run would mostly absorb into neighbouring LUTs). ``log``: the
    Yosys log, relative to the flow's folder.
    """

    lut: int
    ff: int
    carry: int
    dsp: int
    bram_18k: float
    family: str
    seconds: float
    log: str
    uram: int = 0
    """URAM288 cells (the counted netlist has every cell; none means none)."""
    source: str = SOURCE_YOSYS
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
    precision_loss: dict[str, Any] | None = None
    """``hls --model``: the design's outputs against the float model's on the simulated inputs (design,
    compared_layer, n_samples, max_abs_diff, mean_abs_diff, decision_changed_fraction); see
    :func:`kd_trigger.hls.default_design.precision_loss`. ``layers``: per layer of the design up to the
    compared one ({compared_with, result_type, n_values, max_abs_diff, mean_abs_diff, overflow_count}) and
    ``first_overflow_layer`` (None: no overflow); see :mod:`kd_trigger.hls.layer_loss`."""

    def require_csim(self) -> CsimBlock:
        """The C simulation of a report whose hls4ml flow ran; DataError for an RTL-only report."""
        if self.csim is None:
            raise DataError(f"{self.student}: hls_report.json has no C simulation (hls.flows without hls4ml)")
        return self.csim
