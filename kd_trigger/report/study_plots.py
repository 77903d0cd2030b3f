"""Plots of the study (kd_trigger.study): ratios per seed, robustness under boosts, the low-data curve.

Drawn on ``matplotlib.figure.Figure`` objects with the Agg canvas: no pyplot state, no display.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from kd_trigger.contracts import Interval, Study
from kd_trigger.runs import atomic_file


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    fig.tight_layout()
    with atomic_file(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    return path


def _err(interval: Interval) -> tuple[float, list[list[float]]]:
    mean = interval.mean if interval.mean is not None else np.nan
    lo = interval.lo68 if interval.lo68 is not None else mean
    hi = interval.hi68 if interval.hi68 is not None else mean
    return mean, [[max(mean - lo, 0.0)], [max(hi - mean, 0.0)]]


def plot_ratios(study: Study, path: Path) -> Path:
    """KD/baseline 1/eps_B at 30% per student, teacher and setting: each seed a dot, the mean with its
    68% interval, the chosen setting filled."""
    students = list(study.students)
    fig = Figure(
        figsize=(6.0 + 1.2 * max(len(s.settings) for s in study.students.values()), 3.2 * len(students))
    )
    axes = fig.subplots(len(students), 1, squeeze=False)[:, 0]
    for ax, name in zip(axes, students, strict=True):
        settings = study.students[name].settings
        for i, st in enumerate(settings):
            interval = st.kd_over_baseline.rejection_at_30
            seeds = [v for v in interval.per_seed if v is not None]
            ax.scatter(
                np.full(len(seeds), i) + np.linspace(-0.12, 0.12, len(seeds)),
                seeds,
                s=14,
                color="grey",
                zorder=2,
            )
            mean, err = _err(interval)
            ax.errorbar(
                [i],
                [mean],
                yerr=err,
                fmt="o",
                color="C0",
                mfc="C0" if st.chosen else "white",
                capsize=4,
                zorder=3,
            )
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xticks(range(len(settings)))
        ax.set_xticklabels(
            [f"{st.teacher}\nT={st.temperature:g}, w={st.kd_weight:g}" for st in settings], fontsize=8
        )
        ax.set_ylabel("KD / baseline 1/ε_B @ 30%")
        ax.set_title(
            f"{name}: per seed (grey), mean and 68% interval (filled: best on validation per teacher)",
            fontsize=9,
        )
        ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def plot_robustness(study: Study, student: str, path: Path) -> Path:
    """Accuracy against the boost velocity beta: baseline and the chosen KD setting, seed bands."""
    s = study.students[student]
    chosen = s.chosen_setting()
    fig = Figure(figsize=(6.4, 4.4))
    ax = fig.subplots()
    arms = [
        ("baseline", s.baseline, "C1"),
        (f"KD ({chosen.teacher}, T={chosen.temperature:g}, w={chosen.kd_weight:g})", chosen.kd, "C0"),
    ]
    if s.augmentation is not None:
        aug = s.augmentation
        arms += [
            (f"baseline + boosts to β={aug.beta_max:g}", aug.baseline_augmented, "C2"),
            (f"KD + boosts to β={aug.beta_max:g}", aug.kd_augmented, "C3"),
        ]
    for label, runs, color in arms:
        betas = sorted(float(b) for b in runs[0].accuracy_at_beta)
        curves = np.array([[r.accuracy] + [r.accuracy_at_beta[f"{b:g}"] for b in betas] for r in runs])
        x = [0.0, *betas]
        ax.plot(x, curves.mean(axis=0), marker="o", color=color, label=label)
        ax.fill_between(x, curves.min(axis=0), curves.max(axis=0), color=color, alpha=0.25, linewidth=0)
    ax.set_xlabel("boost velocity β along x")
    ax.set_ylabel("accuracy")
    ax.set_title(f"{student}: accuracy under boosts (band: min-max over {len(s.baseline)} seeds)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_low_data(study: Study, path: Path) -> Path:
    """KD/baseline 1/eps_B at 30% against the fraction of the training split used (full split at 1)."""
    fig = Figure(figsize=(6.4, 4.4))
    ax = fig.subplots()
    for i, (name, s) in enumerate(study.students.items()):
        chosen = s.chosen_setting()
        points = [(p.train_fraction, p.kd_over_baseline.rejection_at_30) for p in s.low_data]
        points.append((1.0, chosen.kd_over_baseline.rejection_at_30))
        x = [f for f, _ in points]
        means = [_err(iv)[0] for _, iv in points]
        errs = np.hstack([np.array(_err(iv)[1]) for _, iv in points])
        ax.errorbar(x, means, yerr=errs, marker="o", capsize=4, color=f"C{i}", label=name)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("fraction of the training split")
    ax.set_ylabel("KD / baseline 1/ε_B @ 30%")
    ax.set_title("Low-data curve (chosen teacher and setting; 68% intervals)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)
