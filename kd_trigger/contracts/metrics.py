"""``artifacts/<run>/metrics.json``: the physics of the baseline and distilled students (distill stage)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from kd_trigger.contracts.base import Contract


class BoostPoint(Contract):
    beta: float
    accuracy: float
    auc: float | None


class ClassMetrics(Contract):  # one class against all the others (N > 2; evaluate.per_class_metrics)
    n_jets: int
    auc: float
    efficiency: float
    rejection_at_30: float
    rejection_at_30_capped: bool
    rejection_at_50: float
    rejection_at_50_capped: bool


class ModelMetrics(Contract):
    """Physics figures of one model on the test split (bootstrap errors; N > 2 classes: see evaluate.py)."""

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
    classes: dict[str, ClassMetrics] | None = None  # N > 2 only; with confusion_matrix [true][argmax]
    confusion_matrix: list[list[int]] | None = None


class RatioInterval(Contract):
    """A paired-bootstrap ratio: central value and the 16th/84th percentiles."""

    ratio: float | None
    low: float | None
    high: float | None


class DifferenceInterval(Contract):
    """A paired-bootstrap difference KD - baseline in percentage points, with the 16th/84th percentiles."""

    points: float | None
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
    accuracy_difference_points: DifferenceInterval | None = None
    """KD - baseline test accuracy (the N-class headline; absent in metrics.json files older than it)."""
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
    class_names: list[str] = Field(default_factory=lambda: ["qcd", "top"])  # data.classes: logit order
