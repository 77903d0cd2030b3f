"""Trigger budgets: named profiles (configs/budget.yaml) and the PASS/FAIL verdict of a firmware.

A profile fixes the target part (hence its resources), the clock, the largest latency in ns, the largest
initiation interval in cycles and the largest share of each device resource. :func:`check_budget`
compares one design's figures (:class:`kd_trigger.fpga.figures.DesignFigures`) against it, taking for
each figure the most trustworthy value available: vendor post-synthesis > Yosys synthesis > vendor HLS >
estimates (see :data:`kd_trigger.fpga.SOURCE_RANK`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from kd_trigger.config import BudgetConfig, BudgetProfilesFile, format_validation_error, read_yaml
from kd_trigger.contracts import BudgetBlock
from kd_trigger.errors import ConfigError
from kd_trigger.fpga import RESOURCE_KEYS, SOURCE_RANK
from kd_trigger.fpga.figures import DesignFigures
from kd_trigger.fpga.parts import PARTS, find_part
from kd_trigger.runs import file_problem

_UNITS = {
    "latency_ns": "ns",
    "ii_cycles": "cycles",
    "clock_period_ns": "ns",
    "lut": "LUT",
    "ff": "FF",
    "dsp": "DSP",
    "bram_18k": "BRAM_18K",
    "uram": "URAM",
}


@dataclass(frozen=True)
class BudgetProfile:
    """One trigger budget. ``available`` are the part's total resources; limits = fraction x available."""

    name: str
    part: str
    available: dict[str, int]
    clock_period_ns: float
    max_latency_ns: float
    max_ii_cycles: int
    max_fraction: dict[str, float]

    def resource_limit(self, key: str) -> int:
        """The largest allowed count of resource ``key`` (rounded down)."""
        return math.floor(self.max_fraction[key] * self.available[key] + 1e-9)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "part": self.part,
            "available": dict(self.available),
            "clock_period_ns": self.clock_period_ns,
            "max_latency_ns": self.max_latency_ns,
            "max_ii_cycles": self.max_ii_cycles,
            "max_fraction": dict(self.max_fraction),
        }


@dataclass
class BudgetRow:
    """One figure of a budget check: its value, the limit, where the value comes from, and the verdict."""

    figure: str
    value: float | int | None
    limit: float | int
    unit: str
    source: str | None
    status: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "figure": self.figure,
            "value": self.value,
            "limit": self.limit,
            "unit": self.unit,
            "source": self.source,
            "status": self.status,
        }


@dataclass
class BudgetVerdict:
    """The outcome of :func:`check_budget`: one row per figure, ``passed`` only if every row passes."""

    profile: str
    rows: list[BudgetRow] = field(default_factory=list)
    flow: str = "hls4ml"

    @property
    def passed(self) -> bool:
        return all(r.status == "PASS" for r in self.rows)

    @property
    def violations(self) -> list[str]:
        out = []
        for r in self.rows:
            if r.status == "PASS":
                continue
            if r.value is None:
                out.append(f"{r.figure}: no figure available (limit {_fmt(r.limit)} {r.unit})")
            else:
                out.append(
                    f"{r.figure} = {_fmt(r.value)} {r.unit} > limit {_fmt(r.limit)} {r.unit} ({r.source})"
                )
        return out

    @property
    def decided_by(self) -> str | None:
        """The most trustworthy source among the figures of this verdict."""
        sources = [r.source for r in self.rows if r.source]
        return max(sources, key=lambda s: SOURCE_RANK.get(s, 0)) if sources else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "pass": self.passed,
            "violations": self.violations,
            "rows": [r.to_dict() for r in self.rows],
            "flow": self.flow,
            "decided_by": self.decided_by,
        }

    def to_block(self) -> BudgetBlock:
        """The typed ``budget`` block of hls_report.json."""
        return BudgetBlock.model_validate(self.to_dict())

    def format_table(self) -> str:
        """A plain-text table for the log."""
        header = ("figure", "value", "limit", "unit", "source", "status")
        body = [
            (
                r.figure,
                "-" if r.value is None else _fmt(r.value),
                _fmt(r.limit),
                r.unit,
                r.source or "-",
                r.status,
            )
            for r in self.rows
        ]
        widths = [max(len(str(x)) for x in col) for col in zip(header, *body, strict=False)]
        lines = [f"budget profile {self.profile}: {'PASS' if self.passed else 'FAIL'}"]
        for row in (header, *body):
            lines.append("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        return "\n".join(lines)


def _fmt(x: float | int) -> str:
    if isinstance(x, float) and not x.is_integer():
        return f"{x:g}"
    return f"{int(x):,}" if abs(x) >= 10_000 else str(int(x))


# ---------------------------------------------------------------------------------------------------
# Loading


def read_profiles(path: Path) -> BudgetProfilesFile:
    """The typed profiles file at ``path``; any problem is one ConfigError line naming the dotted key."""
    problem = file_problem(path)
    if problem is not None:
        raise ConfigError(
            f"budget.profiles: {path} {problem}; point it at a profiles file such as configs/budget.yaml"
        )
    raw = read_yaml(path, "budget profiles file")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a top-level 'profiles:' mapping of named budget profiles")
    try:
        return BudgetProfilesFile.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, str(path), BudgetProfilesFile)) from None


def load_budget(budget_cfg: BudgetConfig) -> BudgetProfile:
    """The profile ``budget_cfg.profile`` from the YAML file ``budget_cfg.profiles``, with
    ``budget_cfg.overrides`` applied. Any problem is a one-line :class:`ConfigError`."""
    path = Path(budget_cfg.profiles)
    profiles = read_profiles(path).profiles
    name = budget_cfg.profile
    if name not in profiles:
        raise ConfigError(
            f"budget.profile: no profile {name!r} in {path}; known profiles: {', '.join(profiles)}"
        )
    prof = profiles[name]
    ov = budget_cfg.overrides
    where = f"{path}: profile {name!r}" + (" (with budget.overrides)" if ov.model_fields_set else "")
    part = ov.part or prof.part
    fractions = prof.max_fraction.model_dump()
    fractions.update({str(k): v for k, v in (ov.max_fraction or {}).items()})
    if prof.available is not None and part == prof.part:
        available = prof.available.model_dump()
    else:
        known = find_part(part)
        if known is None:
            raise ConfigError(
                f"{where}: part {part!r} is not in kd_trigger/fpga/parts.py; add an 'available:' mapping "
                f"({', '.join(RESOURCE_KEYS)}) to the profile"
            )
        available = known.to_dict()
    return BudgetProfile(
        name=name,
        part=part,
        available={k: int(available[k]) for k in RESOURCE_KEYS},
        clock_period_ns=ov.clock_period_ns if ov.clock_period_ns is not None else prof.clock_period_ns,
        max_latency_ns=ov.max_latency_ns if ov.max_latency_ns is not None else prof.max_latency_ns,
        max_ii_cycles=ov.max_ii_cycles if ov.max_ii_cycles is not None else prof.max_ii_cycles,
        max_fraction={k: float(fractions[k]) for k in RESOURCE_KEYS},
    )


def check_hls_part(part: str, budget_cfg: BudgetConfig | None = None) -> None:
    """ConfigError (one line, the known parts listed) when ``hls.part`` is neither in
    kd_trigger/fpga/parts.py nor the part of the budget profile, whose ``available:`` then gives its
    resources. Without this, firmware for an unknown part would be judged against another part's budget.
    """
    if find_part(part) is not None:
        return
    if budget_cfg is not None and Path(budget_cfg.profiles).is_file():
        profile = load_budget(budget_cfg)  # an unknown profile part without 'available:' fails here
        if profile.part == part:
            return
    raise ConfigError(
        f"hls.part {part!r} is not a known FPGA part; known parts: {', '.join(PARTS)}; for another part, "
        "name it as the budget profile's part with an 'available:' mapping of its resources"
    )


# ---------------------------------------------------------------------------------------------------
# Checking

FIGURES = ("latency_ns", "ii_cycles", "clock_period_ns", *RESOURCE_KEYS)


def check_budget(figures: DesignFigures, profile: BudgetProfile) -> BudgetVerdict:
    """Compare one design's figures with ``profile``, each figure from its most trustworthy source.

    A figure with no value fails: the budget is unproven. ``clock_period_ns`` is checked only when the
    design states its clock.
    """
    verdict = BudgetVerdict(profile=profile.name, flow=figures.flow)
    limits: dict[str, float | int] = {
        "latency_ns": profile.max_latency_ns,
        "ii_cycles": profile.max_ii_cycles,
        "clock_period_ns": profile.clock_period_ns,
    }
    for key in RESOURCE_KEYS:
        limits[key] = profile.resource_limit(key)
    for fig in FIGURES:
        value, source = figures.best(fig)
        if fig == "clock_period_ns" and value is None:
            continue
        limit = limits[fig]
        # Small tolerance: latency_ns = cycles x clock is a float product.
        ok = value is not None and value <= limit + 1e-9
        verdict.rows.append(BudgetRow(fig, value, limit, _UNITS[fig], source, "PASS" if ok else "FAIL"))
    return verdict


def decide(
    designs: list[DesignFigures], profile: BudgetProfile
) -> tuple[BudgetVerdict, dict[str, BudgetVerdict]]:
    """The verdict of every design of a student, and the one that decides for the student.

    The designs are alternatives (hls4ml firmware, open-source RTL): the student fits when one of them
    fits. The deciding design is the fitting one whose resource figures come from the most trustworthy
    source; when none fits, the most trustworthy failing one (the hls4ml firmware on a tie).
    """
    verdicts = {d.flow: check_budget(d, profile) for d in designs}
    fitting = [d for d in designs if verdicts[d.flow].passed]
    deciding = max(fitting or designs, key=lambda d: d.rank)  # max() keeps the first of equals: hls4ml
    return verdicts[deciding.flow], verdicts
