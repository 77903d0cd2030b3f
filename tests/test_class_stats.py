"""The study's N-class figures (issue 24): the accuracy difference in points and the per-class R50 ratios,
against hand computations, in the study.json contract and in the study table."""

from __future__ import annotations

import numpy as np
import pytest

from kd_trigger.class_stats import accuracy_difference, class_comparison, paired_difference
from kd_trigger.contracts import Interval, KdOverBaseline, SeedFigures, StudentStudy, StudySetting
from kd_trigger.evaluate import accuracy, one_vs_rest, rejection_at
from kd_trigger.report.markdown import study_class_lines
from kd_trigger.stats import accuracy_metric, hierarchical_plan, paired_ratio

CLASSES = ["q", "w", "t"]


def _three_class(seed: int, n: int = 300, n_seeds: int = 3) -> tuple[np.ndarray, list, list]:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    onehot = np.eye(3)[labels]
    base = [rng.normal(size=(n, 3)) + 1.0 * onehot for _ in range(n_seeds)]
    kd = [rng.normal(size=(n, 3)) + 2.0 * onehot for _ in range(n_seeds)]
    return labels, base, kd


def test_paired_difference_matches_a_hand_computation() -> None:
    labels, base, kd = _three_class(0, n=60)
    interval = paired_difference(labels, base, kd, accuracy_metric, n_boot=40, seed=7)
    per_seed = [100 * (accuracy(labels, k) - accuracy(labels, b)) for b, k in zip(base, kd, strict=True)]
    # The hierarchical bootstrap: seeds drawn, then each drawn seed's own resample of the jets.
    replicas = [
        np.mean(
            [
                100 * (accuracy(labels[j], kd[s][j]) - accuracy(labels[j], base[s][j]))
                for s, j in zip(seeds, jets, strict=True)
            ]
        )
        for seeds, jets in hierarchical_plan(60, 3, 40, 7)
    ]
    lo, hi = np.percentile(replicas, [16, 84])
    assert interval.per_seed == pytest.approx(per_seed, abs=1e-12)
    assert interval.mean == pytest.approx(np.mean(per_seed), abs=1e-12)
    assert (interval.lo68, interval.hi68) == pytest.approx((lo, hi), abs=1e-12)
    assert interval.lo68 <= interval.mean <= interval.hi68
    # One jet of 60 is 1.667 points: every per-seed difference is a multiple of it.
    assert all(abs(d / (100 / 60) - round(d / (100 / 60))) < 1e-9 for d in interval.per_seed)
    same = paired_difference(labels, base, base, accuracy_metric, n_boot=40, seed=7)
    assert (same.mean, same.lo68, same.hi68, same.per_seed) == (0.0, 0.0, 0.0, [0.0, 0.0, 0.0])


def test_class_comparison_per_class_r50_ratios_and_the_accuracy_difference() -> None:
    labels, base, kd = _three_class(1)
    out = class_comparison(labels, base, kd, CLASSES, n_boot=30, seed=3)
    assert set(out) == {"accuracy_difference_points", "rejection_at_50_by_class"}
    by_class = out["rejection_at_50_by_class"]
    assert isinstance(by_class, dict) and list(by_class) == CLASSES
    for k, name in enumerate(CLASSES):
        expected = [
            rejection_at(*one_vs_rest(labels, kk, k), 0.5).rejection
            / rejection_at(*one_vs_rest(labels, bb, k), 0.5).rejection
            for bb, kk in zip(base, kd, strict=True)
        ]
        assert by_class[name].per_seed == pytest.approx(expected, rel=1e-12)
        assert by_class[name].lo68 <= by_class[name].hi68
    # The sharper KD logits (2.0 against 1.0 of signal) win on every seed and class.
    assert all(r > 1 for i in by_class.values() for r in i.per_seed)
    acc = out["accuracy_difference_points"]
    assert isinstance(acc, Interval) and acc.mean is not None and acc.mean > 0
    assert acc == paired_difference(labels, base, kd, accuracy_metric, 30, 3)
    # The last class's ratio is the two-class key's (class_comparison and paired_ratio share replicas).
    from kd_trigger.stats import r50

    assert by_class["t"] == paired_ratio(labels, base, kd, r50, 30, 3)
    # Two classes: the accuracy difference only.
    two = class_comparison(
        labels % 2, [b[:, :2] for b in base], [k[:, :2] for k in kd], ["qcd", "top"], 30, 3
    )
    assert two["rejection_at_50_by_class"] == {}
    assert isinstance(two["accuracy_difference_points"], Interval)


def _interval(mean: float, lo: float, hi: float) -> Interval:
    return Interval(mean=mean, lo68=lo, hi68=hi, per_seed=[mean])


def _student(kob: KdOverBaseline) -> StudentStudy:
    fig = SeedFigures(seed=1, auc=0.9, rejection_at_30=10.0, rejection_at_50=5.0, accuracy=0.8)
    setting = StudySetting(
        teacher="ln", temperature=2.0, kd_weight=0.5, chosen=True, kd=[fig], kd_over_baseline=kob
    )
    return StudentStudy(
        baseline=[fig], settings=[setting], best={"teacher": "ln", "temperature": 2.0, "kd_weight": 0.5}
    )


def test_the_study_table_shows_the_difference_and_the_class_ratios() -> None:
    one = _interval(1.0, 0.9, 1.1)
    kob = KdOverBaseline(
        rejection_at_30=one,
        rejection_at_50=one,
        auc=one,
        accuracy_difference_points=_interval(1.234, 0.5, 2.0),
        rejection_at_50_by_class={"q": _interval(1.1, 1.0, 1.2), "w": one, "t": _interval(0.95, 0.9, 1.01)},
    )
    assert study_class_lines(_student(kob)) == [
        "",
        "Accuracy difference (KD - baseline, percentage points) and per-class R50 ratios (one vs rest), "
        "mean [68% interval]:",
        "",
        "| teacher | T | w | accuracy KD - baseline (points) | R50 ratio `q` | R50 ratio `w` | R50 ratio `t` |",
        "|---|---|---|---|---|---|---|",
        "| ln | 2 | 0.5 | 1.23 [0.50, 2.00] | 1.10 [1.00, 1.20] | 1.00 [0.90, 1.10] | 0.95 [0.90, 1.01] |",
    ]
    two = kob.model_copy(update={"rejection_at_50_by_class": {}})
    assert study_class_lines(_student(two))[1] == (
        "Accuracy difference (KD - baseline, percentage points), mean [68% interval]:"
    )
    assert study_class_lines(_student(two))[-1] == "| ln | 2 | 0.5 | 1.23 [0.50, 2.00] |"
    # A study.json written before issue 24 has neither key: it still validates, and no table is drawn.
    old = KdOverBaseline.model_validate({"rejection_at_30": one, "rejection_at_50": one, "auc": one})
    assert old.accuracy_difference_points is None and old.rejection_at_50_by_class == {}
    assert study_class_lines(_student(old)) == []


def test_one_pairs_accuracy_difference_as_metrics_json_gives_it() -> None:
    """metrics.json's ``accuracy_difference_points``: one seed, the interval over test-jet resamples."""
    labels = np.array([0, 1, 2, 2])
    right = np.eye(3)[labels]  # every jet right
    ref = np.eye(3)[[0, 0, 0, 0]]  # only the first jet right
    d = accuracy_difference(labels, right, ref, n_boot=50, seed=1)
    assert d["points"] == 75.0
    # Each replica is 100 x the mean over 4 drawn jets of a gain of 0 or 1: a multiple of 25 in [0, 100].
    assert d["low"] is not None and d["high"] is not None
    assert 0.0 <= d["low"] <= 75.0 <= d["high"] <= 100.0 and d["low"] % 25 == 0
    # The same replicas read the other way round: the interval mirrors.
    assert accuracy_difference(labels, ref, right, n_boot=50, seed=1) == {
        "points": -75.0,
        "low": -d["high"],
        "high": -d["low"],
    }
    assert accuracy_difference(labels, ref, ref, n_boot=20, seed=0) == {
        "points": 0.0,
        "low": 0.0,
        "high": 0.0,
    }
