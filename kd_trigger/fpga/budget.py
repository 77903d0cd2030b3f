"""Trigger budgets: named profiles (configs/budget.yaml) and the PASS/FAIL verdict of a firmware.

A profile fixes the target part (hence its resources), the clock, the largest latency in ns, the largest
initiation interval in cycles and the largest share of each device resource. :func:`check_budget`
compares figures against it, taking for each figure the most trustworthy value available:
"vendor post-synthesis" > "vendor HLS estimate" > "estimate" (see :data:`kd_trigger.fpga.SOURCE_RANK`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kd_trigger.config import BudgetConfig, read_yaml
from kd_trigger.errors import ConfigError
from kd_trigger.fpga import RESOURCE_KEYS, SOURCE_ESTIMATE, SOURCE_HLS, SOURCE_POST_SYNTH, SOURCE_RANK
from kd_trigger.fpga.parts import find_part

_PROFILE_KEYS = ("part", "clock_period_ns", "max_latency_ns", "max_ii_cycles", "max_fraction", "available")
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

    def to_dict(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "pass": self.passed,
            "violations": self.violations,
            "rows": [r.to_dict() for r in self.rows],
        }

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


def _positive(where: str, key: str, value: Any, integer: bool = False) -> Any:
    if value is None:
        raise ConfigError(f"{where}: '{key}' is missing; every profile needs it")
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (integer and not float(value).is_integer())
    ):
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"{where}: '{key}' must be {kind}, got {value!r}")
    if value <= 0:
        raise ConfigError(f"{where}: '{key}' must be positive, got {value!r}")
    return int(value) if integer else float(value)


def load_budget(budget_cfg: BudgetConfig) -> BudgetProfile:
    """The profile ``budget_cfg.profile`` from the YAML file ``budget_cfg.profiles``, with
    ``budget_cfg.overrides`` applied. Any problem is a one-line :class:`ConfigError`."""
    path = Path(budget_cfg.profiles)
    if not path.is_file():
        raise ConfigError(
            f"budget.profiles: {path} does not exist; point it at a profiles file such as configs/budget.yaml"
        )
    raw = read_yaml(path)
    profiles = raw.get("profiles") if isinstance(raw, dict) else None
    if not isinstance(profiles, dict) or not profiles:
        raise ConfigError(f"{path}: expected a top-level 'profiles:' mapping of named budget profiles")
    name = budget_cfg.profile
    if name not in profiles:
        raise ConfigError(
            f"budget.profile: no profile {name!r} in {path}; known profiles: {', '.join(profiles)}"
        )
    prof = profiles[name]
    where = f"{path}: profile {name!r}"
    if not isinstance(prof, dict):
        raise ConfigError(f"{where}: expected a mapping of limits, got {type(prof).__name__}")
    unknown = sorted(set(prof) - set(_PROFILE_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; allowed: {', '.join(_PROFILE_KEYS)}")

    merged = dict(prof)
    ov = budget_cfg.overrides
    for key in ("part", "clock_period_ns", "max_latency_ns", "max_ii_cycles"):
        value = getattr(ov, key)
        if value is not None:
            merged[key] = value
    fractions = dict(prof.get("max_fraction") or {})
    if ov.max_fraction:
        fractions.update(ov.max_fraction)
        where += " (with budget.overrides)"

    part = merged.get("part")
    if not isinstance(part, str) or not part:
        raise ConfigError(f"{where}: 'part' is missing; name the FPGA part, e.g. xcvu13p-flga2577-2-e")
    available_raw = merged.get("available")
    if available_raw is not None and part == prof.get("part"):
        available = {
            k: _positive(where, f"available.{k}", available_raw.get(k), integer=True) for k in RESOURCE_KEYS
        }
    else:
        known = find_part(part)
        if known is None:
            raise ConfigError(
                f"{where}: part {part!r} is not in kd_trigger/fpga/parts.py; add an 'available:' mapping "
                f"({', '.join(RESOURCE_KEYS)}) to the profile"
            )
        available = known.to_dict()

    max_fraction: dict[str, float] = {}
    for key in RESOURCE_KEYS:
        value = fractions.get(key)
        if value is None:
            raise ConfigError(
                f"{where}: 'max_fraction.{key}' is missing; give a fraction 0..1 for each of {RESOURCE_KEYS}"
            )
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise ConfigError(f"{where}: 'max_fraction.{key}' must be a fraction in [0, 1], got {value!r}")
        max_fraction[key] = float(value)
    extra = sorted(set(fractions) - set(RESOURCE_KEYS))
    if extra:
        raise ConfigError(
            f"{where}: unknown max_fraction key(s) {extra}; allowed: {', '.join(RESOURCE_KEYS)}"
        )

    return BudgetProfile(
        name=name,
        part=part,
        available=available,
        clock_period_ns=_positive(where, "clock_period_ns", merged.get("clock_period_ns")),
        max_latency_ns=_positive(where, "max_latency_ns", merged.get("max_latency_ns")),
        max_ii_cycles=_positive(where, "max_ii_cycles", merged.get("max_ii_cycles"), integer=True),
        max_fraction=max_fraction,
    )


# ---------------------------------------------------------------------------------------------------
# Checking

FIGURES = ("latency_ns", "ii_cycles", "clock_period_ns", *RESOURCE_KEYS)


def _best(entry: Any) -> tuple[float | int | None, str | None]:
    """(value, source) of the most trustworthy candidate in ``entry``.

    ``entry`` is ``{source_label: value}`` (several candidates), ``{"value": v, "source": s}`` or a
    bare number (taken as an "estimate").
    """
    if entry is None:
        return None, None
    if isinstance(entry, int | float) and not isinstance(entry, bool):
        return entry, SOURCE_ESTIMATE
    if isinstance(entry, dict):
        if "value" in entry:
            return entry["value"], entry.get("source", SOURCE_ESTIMATE)
        present = [(SOURCE_RANK.get(src, 0), src, v) for src, v in entry.items() if v is not None]
        if not present:
            return None, None
        _, src, value = max(present, key=lambda t: t[0])
        return value, src
    raise TypeError(f"cannot read a budget figure from {entry!r}")


def check_budget(figures: dict[str, Any], profile: BudgetProfile) -> BudgetVerdict:
    """Compare ``figures`` with ``profile``. ``figures`` maps each of latency_ns, ii_cycles, lut, ff, dsp,
    bram_18k, uram (and optionally clock_period_ns) to ``{source_label: value}``; the most trustworthy
    value is used (see :func:`collect_figures`). A figure with no value fails: the budget is unproven."""
    verdict = BudgetVerdict(profile=profile.name)
    limits: dict[str, float | int] = {
        "latency_ns": profile.max_latency_ns,
        "ii_cycles": profile.max_ii_cycles,
        "clock_period_ns": profile.clock_period_ns,
    }
    for key in RESOURCE_KEYS:
        limits[key] = profile.resource_limit(key)
    for fig in FIGURES:
        if fig == "clock_period_ns" and fig not in figures:
            continue  # optional: only checked when the firmware's clock is given
        value, source = _best(figures.get(fig))
        limit = limits[fig]
        # Small tolerance: latency_ns = cycles x clock is a float product.
        ok = value is not None and value <= limit + 1e-9
        verdict.rows.append(BudgetRow(fig, value, limit, _UNITS[fig], source, "PASS" if ok else "FAIL"))
    return verdict


def collect_figures(
    estimate: dict[str, Any] | None = None, report: dict[str, Any] | None = None
) -> dict[str, dict[str, Any]]:
    """Gather budget figures from an estimate (``ResourceEstimate.to_dict()``) and/or vendor figures
    (:func:`kd_trigger.fpga.reports.read_report_path`), keyed by figure then source label."""
    out: dict[str, dict[str, Any]] = {fig: {} for fig in FIGURES}
    if estimate is not None:
        total = estimate.get("total", estimate)
        for key in RESOURCE_KEYS:
            out[key][SOURCE_ESTIMATE] = total.get(key)
        out["latency_ns"][SOURCE_ESTIMATE] = estimate.get("latency_ns")
        out["ii_cycles"][SOURCE_ESTIMATE] = estimate.get("ii_cycles")
        out["clock_period_ns"][SOURCE_ESTIMATE] = estimate.get("clock_period_ns")
    if report is not None:
        if report.get("hls"):
            for key in RESOURCE_KEYS:
                out[key][SOURCE_HLS] = report["hls"].get(key)
        if report.get("synth"):
            for key in RESOURCE_KEYS:
                out[key][SOURCE_POST_SYNTH] = report["synth"].get(key)
        out["latency_ns"][SOURCE_HLS] = report.get("latency_ns")
        out["ii_cycles"][SOURCE_HLS] = report.get("ii_cycles")
        out["clock_period_ns"][SOURCE_HLS] = report.get("clock_period_ns")
    return {k: {s: v for s, v in d.items() if v is not None} for k, d in out.items()}
