"""Firmware plots for the review report: resources and latency per layer, ROC of the C simulation.

Figures are drawn on ``matplotlib.figure.Figure`` objects with the Agg canvas (no pyplot state, no
display needed) and saved through a temporary name, so a crash never leaves a half-written PNG.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from kd_trigger.evaluate import roc_points
from kd_trigger.runs import atomic_file

log = logging.getLogger(__name__)

RESOURCE_PANELS = (("lut", "LUT"), ("ff", "FF"), ("dsp", "DSP"))


def _number(value: Any) -> float:
    """A plottable number: missing or non-numeric figures count as 0 (the table says n/a)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    return float(value) if np.isfinite(value) else 0.0


def _compact(value: float, _pos: int | None = None) -> str:
    if abs(value) >= 1e6:
        return f"{value / 1e6:g}M"
    return f"{value / 1e3:g}k" if abs(value) >= 1e4 else f"{value:g}"


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    with atomic_file(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    return path


def plot_layer_resources(layers: Sequence[Mapping[str, Any]], title: str, path: Path) -> Path:
    """Horizontal bars of LUT, FF and DSP per layer, one panel each (their scales differ a lot)."""
    names = [str(layer.get("name", f"layer{i}")) for i, layer in enumerate(layers)]
    y = np.arange(len(names))
    fig = Figure(figsize=(12, 1.4 + 0.38 * max(len(names), 3)), layout="constrained")
    axes = fig.subplots(1, len(RESOURCE_PANELS), sharey=True)
    for ax, (key, label) in zip(axes, RESOURCE_PANELS, strict=True):
        values = [_number(layer.get(key)) for layer in layers]
        ax.barh(y, values, color="#4a78b5")
        ax.set_xlabel(label)
        ax.grid(axis="x", alpha=0.3)
        # Few, compact ticks: LUT counts in the 100k range otherwise run into each other.
        ax.xaxis.set_major_locator(MaxNLocator(4, integer=True))
        ax.xaxis.set_major_formatter(FuncFormatter(_compact))
        for yi, v in zip(y, values, strict=True):
            if v > 0:
                ax.text(v, yi, f" {v:,.0f}", va="center", fontsize=8)
        ax.margins(x=0.25)
    axes[0].set_yticks(y, names)
    axes[0].invert_yaxis()  # network order, first layer on top
    fig.suptitle(title)
    return _save(fig, path)


def plot_layer_latency(
    layers: Sequence[Mapping[str, Any]], clock_period_ns: float | None, title: str, path: Path
) -> Path:
    """Horizontal bars of the latency of each layer in clock cycles (and ns on a second axis)."""
    names = [str(layer.get("name", f"layer{i}")) for i, layer in enumerate(layers)]
    values = [_number(layer.get("latency_cycles")) for layer in layers]
    y = np.arange(len(names))
    fig = Figure(figsize=(8, 1.8 + 0.38 * max(len(names), 3)), layout="constrained")
    ax = fig.subplots()
    ax.barh(y, values, color="#c0713a")
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlabel("latency [clock cycles]")
    ax.grid(axis="x", alpha=0.3)
    for yi, v in zip(y, values, strict=True):
        ax.text(v, yi, f" {v:.0f}", va="center", fontsize=8)
    ax.margins(x=0.2)
    if clock_period_ns:
        period = float(clock_period_ns)

        def to_ns(cycles: Any) -> Any:
            return np.asarray(cycles) * period

        def to_cycles(ns: Any) -> Any:
            return np.asarray(ns) / period

        sec = ax.secondary_xaxis("top", functions=(to_ns, to_cycles))
        sec.set_xlabel(f"latency [ns] at {period:g} ns clock")
    fig.suptitle(title)
    return _save(fig, path)


def rejection_curve(y_true: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Signal efficiency and background rejection 1/eps_B over all score thresholds.

    Points where no background passes (infinite rejection) are dropped: a log axis cannot show them.
    """
    eps_b, eps_s = roc_points(np.asarray(y_true).astype(np.int64), np.asarray(score, dtype=np.float64))
    keep = eps_b > 0
    return eps_s[keep], 1.0 / eps_b[keep]


def plot_csim_roc(
    y_true: np.ndarray, p_hls: np.ndarray, p_qkeras: np.ndarray, title: str, path: Path
) -> Path:
    """Rejection vs signal efficiency of the HLS C simulation, drawn over the QKeras model's curve.

    The C-simulation curve is wide and pale, QKeras thin and dashed on top: when the firmware is
    bit-exact the dashed line runs exactly inside the pale band.
    """
    fig = Figure(figsize=(7, 5), layout="constrained")
    ax = fig.subplots()
    eff, rej = rejection_curve(y_true, p_hls)
    ax.plot(eff, rej, color="#e08a2e", lw=5, alpha=0.55, label="HLS C simulation")
    eff, rej = rejection_curve(y_true, p_qkeras)
    ax.plot(eff, rej, color="#1f3f77", lw=1.3, ls="--", label="QKeras")
    for wp in (0.3, 0.5):
        ax.axvline(wp, color="grey", lw=0.8, ls=":")
    ax.set_yscale("log")
    ax.set_xlim(0, 1)
    ax.set_xlabel(r"signal efficiency $\varepsilon_S$")
    ax.set_ylabel(r"background rejection $1/\varepsilon_B$")
    ax.grid(which="both", alpha=0.25)
    ax.legend()
    ax.set_title(title)
    return _save(fig, path)
