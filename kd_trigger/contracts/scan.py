"""``artifacts/<run>/scan/scan.json``: the design scan."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from kd_trigger.contracts.base import Contract
from kd_trigger.contracts.hls_report import BudgetBlock


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
    """The key of the promoted design (the best objective among exact points within the budget; over seeds,
    see ``promoted``)."""
    nearest_miss: dict[str, Any] | None = None
    workers: int
    scheduler: str | None
    seconds: float
    fronts: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Per student kind: ``kd`` and ``baseline`` fronts ([{key, lut, objective}] by LUT), ``gains``."""
    fast_vs_yosys: dict[str, Any] | None = None  # da4ml estimate / Yosys LUT on the measured RTL copies
    front_seeds: dict[str, Any] | None = None  # per kind: the KD saving over seeds on retrained front designs
    promoted: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Per student kind, the design to deploy ({key, objective, per_seed, rule}): the best median objective
    over seeds among its retrained designs within the budget (one training where none was retrained).
    ``best`` is the one of these with the largest objective."""
