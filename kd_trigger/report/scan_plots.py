"""The design scan's Pareto plots: physics against LUT and against latency, with the budget limit.

Drawn on ``matplotlib.figure.Figure`` objects with the Agg canvas: no pyplot state, no display.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from kd_trigger.contracts import Scan, ScanPoint
from kd_trigger.runs import atomic_file

LABELS = {
    "lut": "LUT",
    "latency_ns": "latency [ns]",
    "auc": "AUC",
    "rejection_at_30": "1/ε_B @ ε_S = 30%",
    "rejection_at_50": "1/ε_B @ ε_S = 50%",
}


def _xy(points: list[ScanPoint], figure: str, objective: str) -> tuple[np.ndarray, np.ndarray]:
    """(figure, objective) of each point as float arrays (NaN where missing)."""
    x = np.array([np.nan if p.figures.get(figure) is None else float(p.figures[figure] or 0) for p in points])
    y = np.array(
        [np.nan if p.physics.get(objective) is None else float(p.physics[objective] or 0) for p in points]
    )
    return x, y


def plot_front(scan: Scan, figure: str, limit: float, path: Path) -> Path:
    """Every exact design (grey), failed gates (red x), the limit; on the LUT plot each kind's KD front
    (blue) and baseline front (orange), drawn as the stepwise staircases the KD saving is read off; on
    the latency plot the 2-D Pareto front (blue, joined)."""
    fig = Figure(figsize=(6.4, 4.6))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    front_flag = "pareto_lut" if figure == "lut" else "pareto_latency"
    ok = [p for p in scan.points if p.error is None and p.exact and p.figures.get(figure) is not None]
    bad = [p for p in scan.points if p.error is None and not p.exact and p.figures.get(figure) is not None]
    y = scan.objective
    ax.scatter(*_xy(ok, figure, y), color="grey", s=18, label="bit-exact design")
    if figure == "lut" and scan.fronts:
        # Per kind: the KD front and the baseline front, both as the stepwise staircases the KD saving is
        # read off (one front across kinds would join an MLP to a Deep Sets design nobody built).
        for i, (kind, fronts) in enumerate(scan.fronts.items()):
            marker = "o^sv"[i % 4]
            for copy, style, color, label in (
                ("kd", "-", "C0", f"KD front ({kind})"),
                ("baseline", "--", "C1", f"baseline front ({kind}, no teacher)"),
            ):
                rows = fronts[copy]
                if rows:
                    ax.step(
                        [r["lut"] for r in rows],
                        [r["objective"] for r in rows],
                        marker + style,
                        where="post",
                        color=color,
                        label=label,
                    )
    else:
        front_x, front_y = _xy([p for p in ok if getattr(p, front_flag)], figure, y)
        if len(front_x):
            order = np.argsort(front_x)
            ax.plot(front_x[order], front_y[order], "o-", color="C0", label="Pareto front")
    if bad:
        ax.scatter(*_xy(bad, figure, y), marker="x", color="C3", label="failed the exactness gate")
    best = [p for p in scan.points if p.key == scan.best]
    if best:
        x, yy = _xy(best, figure, y)
        ax.scatter(
            x, yy, s=120, facecolors="none", edgecolors="C2", linewidths=2, label="promoted (best in budget)"
        )
    ax.axvline(limit, color="C3", linestyle="--", linewidth=1, label=f"budget limit ({limit:,.0f})")
    ax.set_xlabel(LABELS.get(figure, figure))
    ax.set_ylabel(LABELS.get(y, y))
    ax.set_title(f"Design scan of run {scan.run}: {len(scan.points)} points", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_file(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    return path
