"""Typed contracts of the JSON files the stages hand to each other (and to tools outside kd_trigger).

One pydantic model per file, used by the code that writes it and by every reader, so that a schema
drift fails loudly where it happens instead of turning into "n/a" cells in a report:

* :class:`StageRecord`: ``artifacts/<run>/stages/<stage>.json``, what a committed stage was made from;
* :class:`Metrics`: ``artifacts/<run>/metrics.json`` (distill stage);
* :class:`HlsReport`: ``firmware/<run>/<student>/hls_report.json`` (hls stage, and ``hls --model``);
* :class:`Study` and :class:`Scan`: ``study.json`` and ``scan/scan.json``.

One module per file (``records``, ``metrics``, ``hls_report``, ``study``, ``scan``) on a common ``base``;
this package re-exports every model.

Keys named in the issues are contracts for tools outside this package: they are never renamed.
Readers call :func:`read_contract`, which turns a missing, unreadable or out-of-date file into one
:class:`~kd_trigger.errors.DataError` line that names the command that makes it.
"""

from __future__ import annotations

from kd_trigger.contracts.base import C, Contract, finite_or_none, read_contract
from kd_trigger.contracts.hls_report import (
    BudgetBlock,
    BudgetRowModel,
    CsimBlock,
    Da4mlEstimateBlock,
    EstimateBlock,
    HlsReport,
    ResourceTotals,
    RtlBlock,
    RtlResult,
    RtlSimBlock,
    VendorFigures,
    YosysBlock,
)
from kd_trigger.contracts.metrics import (
    BoostPoint,
    ClassMetrics,
    DifferenceInterval,
    LayerSparsity,
    Metrics,
    ModelMetrics,
    RatioInterval,
    StudentSummary,
    TestSplit,
)
from kd_trigger.contracts.records import DigestParts, Fingerprint, StageRecord
from kd_trigger.contracts.scan import Scan, ScanCopy, ScanPoint
from kd_trigger.contracts.study import (
    ARMS,
    COMPARISONS,
    AugmentationArms,
    Bounds,
    Interval,
    KdOverBaseline,
    LowDataPoint,
    RatioNoise,
    SeedFigures,
    StudentStudy,
    Study,
    StudySetting,
    TeacherSummary,
)

__all__ = [
    "ARMS",
    "COMPARISONS",
    "AugmentationArms",
    "Bounds",
    "BoostPoint",
    "BudgetBlock",
    "BudgetRowModel",
    "C",
    "ClassMetrics",
    "Contract",
    "CsimBlock",
    "Da4mlEstimateBlock",
    "DigestParts",
    "EstimateBlock",
    "Fingerprint",
    "HlsReport",
    "Interval",
    "RatioNoise",
    "KdOverBaseline",
    "LayerSparsity",
    "LowDataPoint",
    "Metrics",
    "ModelMetrics",
    "DifferenceInterval",
    "RatioInterval",
    "ResourceTotals",
    "RtlBlock",
    "RtlResult",
    "RtlSimBlock",
    "Scan",
    "ScanCopy",
    "ScanPoint",
    "SeedFigures",
    "StageRecord",
    "StudentStudy",
    "StudentSummary",
    "Study",
    "StudySetting",
    "TeacherSummary",
    "TestSplit",
    "VendorFigures",
    "YosysBlock",
    "finite_or_none",
    "read_contract",
]
