"""The study's N-class figures (issue 24), pure numpy: the accuracy difference KD - baseline in points and
each class's R50 ratio, both with the intervals of :mod:`kd_trigger.stats`.

The accuracy of a multi-class tagger is a difference, not a ratio: "KD adds 1.2 points" is what a
trigger engineer compares, and a ratio of two accuracies near 0.8 would hide it in the third decimal.
The replicas are those of :func:`kd_trigger.stats.paired_ratio` with the same bootstrap seed (the same
seeds and jets drawn), so the difference and the ratios of one setting are read off the same replicas.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict

import numpy as np

from kd_trigger.contracts import Interval, finite_or_none
from kd_trigger.stats import Metric, accuracy_metric, class_rejection, hierarchical_bootstrap, paired_ratio

POINTS = 100.0
"""Accuracy differences are in percentage points."""


class ClassComparison(TypedDict):
    """The N-class keys of :class:`kd_trigger.contracts.KdOverBaseline` (see :func:`class_comparison`)."""

    accuracy_difference_points: Interval
    rejection_at_50_by_class: dict[str, Interval]


def paired_difference(
    labels: np.ndarray,
    base: Sequence[np.ndarray],
    kd: Sequence[np.ndarray],
    metric: Metric,
    n_boot: int,
    seed: int,
    scale: float = POINTS,
) -> Interval:
    """KD - baseline ``metric`` (times ``scale``) over seeds: per-seed differences, their mean and a 68%
    interval from :func:`kd_trigger.stats.hierarchical_bootstrap` with a difference for the ratio (each replica
    resamples the seeds, then the jets within each drawn seed, the same jets for both models, and averages
    the per-seed differences; replicas of one class only are skipped, as the ratios skip them)."""
    labels = np.asarray(labels).astype(np.int64).ravel()

    def diff(kd_value: float, base_value: float) -> float:
        return scale * (kd_value - base_value)

    per_seed = [diff(metric(labels, k), metric(labels, b)) for b, k in zip(base, kd, strict=True)]
    lo, hi = hierarchical_bootstrap(labels, base, kd, metric, n_boot, seed, compare=diff)
    return Interval.model_validate(
        finite_or_none(
            {
                "mean": float(np.mean(per_seed)),
                "lo68": float(lo),
                "hi68": float(hi),
                "per_seed": [float(d) for d in per_seed],
            }
        )
    )


def accuracy_difference(
    labels: np.ndarray, kd: np.ndarray, base: np.ndarray, n_boot: int, seed: int
) -> dict[str, float | None]:
    """One trained pair's accuracy KD - baseline in points, as ``metrics.json`` gives it (``points``,
    ``low``, ``high``): :func:`paired_difference` over one seed, so the interval resamples the test jets
    (the same jets for both models). For N classes this is the headline of distillation."""
    one = paired_difference(labels, [base], [kd], accuracy_metric, n_boot, seed)
    return {"points": one.mean, "low": one.lo68, "high": one.hi68}


def class_comparison(
    labels: np.ndarray,
    base: Sequence[np.ndarray],
    kd: Sequence[np.ndarray],
    class_names: Sequence[str],
    n_boot: int,
    seed: int,
) -> ClassComparison:
    """The N-class keys of :class:`kd_trigger.contracts.KdOverBaseline`: ``accuracy_difference_points``
    (every number of classes) and, with more than two classes, ``rejection_at_50_by_class`` (class name
    -> the R50 ratio of that class against all others; two classes: empty, ``rejection_at_50`` is the
    signal's)."""
    by_class: dict[str, Interval] = {}
    if len(class_names) > 2:
        by_class = {
            name: paired_ratio(labels, base, kd, class_rejection(k, 0.5), n_boot, seed)
            for k, name in enumerate(class_names)
        }
    return ClassComparison(
        accuracy_difference_points=paired_difference(labels, base, kd, accuracy_metric, n_boot, seed),
        rejection_at_50_by_class=by_class,
    )
