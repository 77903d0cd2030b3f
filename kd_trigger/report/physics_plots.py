"""Physics plots of a run: rejection vs signal efficiency (roc.png) and accuracy vs boost (boost.png).

Drawn on ``matplotlib.figure.Figure`` objects with the Agg canvas: no pyplot state, no global backend
switch, no display needed.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from kd_trigger.runs import atomic_file


def _axes() -> tuple[Figure, Axes]:
    fig = Figure(figsize=(6.4, 4.8))
    FigureCanvasAgg(fig)
    return fig, fig.subplots()


def _style(name: str) -> dict[str, Any]:
    if name == "teacher" or name.startswith("teacher/"):
        return {"color": "black", "linestyle": "-", "linewidth": 2.0}
    return {"linestyle": "--" if name.endswith("/baseline") else "-"}


def plot_rejection(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], path: Path, title: str = "") -> Path:
    """``curves`` maps a model name to (fpr, tpr); draws 1/eps_B (log) against eps_S."""
    fig, ax = _axes()
    for name, (fpr, tpr) in curves.items():
        keep = (fpr > 0) & (tpr > 0)
        ax.plot(tpr[keep], 1.0 / fpr[keep], label=name, **_style(name))
    for eff in (0.3, 0.5):
        ax.axvline(eff, color="grey", linewidth=0.6, linestyle=":")
    ax.set_yscale("log")
    ax.set_xlim(0.0, 1.0)
    ax.set_xlabel(r"signal efficiency $\varepsilon_S$ (top jets)")
    ax.set_ylabel(r"background rejection $1/\varepsilon_B$ (QCD jets)")
    ax.grid(True, which="both", alpha=0.3)
    return _finish(fig, ax, path, title)


def _finish(fig: Figure, ax: Axes, path: Path, title: str) -> Path:
    """Legend, title and an atomic PNG write shared by the physics plots."""
    ax.legend(frameon=False, fontsize="small")
    if title:
        ax.set_title(title, fontsize="medium")
    fig.tight_layout()
    with atomic_file(Path(path)) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    return Path(path)


def plot_boost(models: Mapping[str, Mapping[str, Any]], path: Path, title: str = "") -> Path:
    """Accuracy against the boost velocity beta for every model's ``boost`` list (metrics.json layout)."""
    fig, ax = _axes()
    for name, m in models.items():
        entries = sorted(m.get("boost", []), key=lambda b: b["beta"])
        if not entries:
            continue
        ax.plot(
            [b["beta"] for b in entries],
            [b["accuracy"] for b in entries],
            marker="o",
            label=name,
            **_style(name),
        )
    ax.set_xlabel(r"boost velocity $\beta$ along $x$ (units of $c$)")
    ax.set_ylabel("accuracy")
    ax.grid(True, alpha=0.3)
    return _finish(fig, ax, path, title)
