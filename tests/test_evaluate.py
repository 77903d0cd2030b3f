"""Physics metrics on hand-made scores (numpy and scikit-learn only, no TensorFlow)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from kd_trigger import evaluate as ev


def _logits(scores: np.ndarray) -> np.ndarray:
    return np.stack([np.zeros_like(scores), scores], axis=1)


# 10 signal jets with scores 10..1 and 10 background jets
SIG = np.arange(10, 0, -1, dtype=np.float64)
BKG = np.array([8.5, 5.5, 4.5, 3.5, 2.5, 1.5, 0.5, 0.2, 0.1, 0.05])
LABELS = np.r_[np.ones(10, int), np.zeros(10, int)]
SCORES = np.r_[SIG, BKG]


def test_no_tensorflow_import() -> None:
    code = "import sys, kd_trigger.evaluate; assert 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_rejection_by_hand() -> None:
    # eps_S = 30%: cut at score 8 keeps 3 signal and 1 background (8.5) -> eps_B = 1/10
    p30 = ev.rejection_at(LABELS, SCORES, 0.3)
    assert (p30.rejection, p30.background_pass, p30.capped) == (10.0, 1.0, False)
    # eps_S = 50%: cut at 6 keeps 5 signal and still only 8.5 (5.5 is below 6): eps_B = 1/10
    assert ev.rejection_at(LABELS, SCORES, 0.5).rejection == 10.0
    # eps_S = 65%: between the cuts 4.5 (tpr 0.6, fpr 0.3) and 4 (tpr 0.7, fpr 0.3): eps_B = 0.3
    assert ev.rejection_at(LABELS, SCORES, 0.65).rejection == pytest.approx(1 / 0.3)
    # eps_S = 55%: between the cuts 5.5 (0.5, 0.2) and 5 (0.6, 0.2) -> 0.2; 5.5 itself is not the first 0.5 point
    assert ev.rejection_at(LABELS, SCORES, 0.55).rejection == pytest.approx(5.0)
    # eps_S = 75%: between the cuts 4 (0.7, 0.3) and 3.5 -> (0.7, 0.4), 3 -> (0.8, 0.4): eps_B = 0.4
    assert ev.rejection_at(LABELS, SCORES, 0.75).rejection == pytest.approx(2.5)
    # eps_S = 10%: no background passes -> capped at n_bkg
    p10 = ev.rejection_at(LABELS, SCORES, 0.1)
    assert (p10.rejection, p10.capped, p10.background_pass) == (10.0, True, 0.0)


def test_ties_are_a_randomised_cut() -> None:
    # all jets share one score: any efficiency costs the same background fraction
    labels = np.r_[np.ones(50, int), np.zeros(50, int)]
    p = ev.rejection_at(labels, np.zeros(100), 0.3)
    assert p.rejection == pytest.approx(1 / 0.3)


def test_auc_accuracy_and_errors() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 4000)
    scores = rng.normal(labels * 1.5, 1.0)
    logits = _logits(scores)
    m = ev.score_metrics(labels, logits, n_bootstrap=50, seed=1)
    assert m["auc"] == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert m["accuracy"] == pytest.approx(np.mean((scores > 0) == labels))
    for key in ("auc_err", "rejection_at_30_err", "rejection_at_50_err"):
        assert 0 < m[key] < 0.5 * m[key.removesuffix("_err")]
    assert m["rejection_at_30"] > m["rejection_at_50"] > 1
    assert m["rejection_at_30_background_pass"] == pytest.approx(m["n_background"] / m["rejection_at_30"])
    again = ev.score_metrics(labels, logits, n_bootstrap=50, seed=1)
    assert again == m  # deterministic bootstrap
    # binomial check: the bootstrap error of eps_B at 50% is near sqrt(eps(1-eps)/n_bkg), propagated
    eps = 1 / m["rejection_at_50"]
    n_bkg = m["n_background"]
    expected = np.sqrt(eps * (1 - eps) / n_bkg) / eps**2
    assert 0.5 * expected < m["rejection_at_50_err"] < 2.5 * expected


def test_paired_ratio() -> None:
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 2, 3000)
    s = rng.normal(labels * 1.5, 1.0)
    same = ev.paired_rejection_ratio(labels, _logits(s), _logits(s), 0.3, n_bootstrap=30)
    assert same == {"ratio": 1.0, "low": 1.0, "high": 1.0}
    better = ev.paired_rejection_ratio(labels, _logits(s * 1 + labels * 1.0), _logits(s), 0.3, n_bootstrap=30)
    assert better["low"] > 1.0 and better["low"] <= better["ratio"] <= better["high"]


def test_boost_entry_and_summary() -> None:
    entry = ev.boost_entry(0.5, LABELS, _logits(SCORES - 3.0))
    assert entry == {
        "beta": 0.5,
        "accuracy": np.mean((SCORES - 3.0 > 0) == LABELS),
        "auc": roc_auc_score(LABELS, SCORES),
    }
    m = ev.score_metrics(LABELS, _logits(SCORES), n_bootstrap=10)
    m["boost"] = [{"beta": 0.0, "accuracy": 0.9, "auc": 0.95}, entry]
    text = ev.summary_markdown({"models": {"teacher": m, "mlp/kd": m}})
    lines = text.strip().splitlines()
    assert len(lines) == 4 and lines[2].startswith("| teacher | 0.500 | 0.7700 ± ")
    assert "(beta=0.5)" in lines[3]


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="both signal and background"):
        ev.roc_auc(np.ones(5), np.arange(5.0))
    with pytest.raises(ValueError, match=r"shape \(N, C\) with C >= 2"):
        ev.scores_from_logits(np.zeros((3, 1)))


def test_physics_plots(tmp_path) -> None:
    from kd_trigger.report.physics_plots import plot_boost, plot_rejection

    rng = np.random.default_rng(4)
    labels = rng.integers(0, 2, 2000)
    curves = {
        name: ev.roc_points(labels, rng.normal(labels * shift, 1.0))
        for name, shift in (("teacher", 2.5), ("mlp/baseline", 1.0), ("mlp/kd", 1.3))
    }
    roc = plot_rejection(curves, tmp_path / "roc.png")
    models = {
        "teacher": {
            "boost": [{"beta": 0.0, "accuracy": 0.9, "auc": 0.95}, {"beta": 0.5, "accuracy": 0.8, "auc": 0.9}]
        },
        "mlp/kd": {
            "boost": [{"beta": 0.0, "accuracy": 0.85, "auc": 0.9}, {"beta": 0.5, "accuracy": 0.7, "auc": 0.8}]
        },
    }
    boost = plot_boost(models, tmp_path / "boost.png")
    for path in (roc, boost):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["boost.png", "roc.png"]  # no temporary left behind


def test_train_subset_deterministic() -> None:
    from kd_trigger.distill.training import train_subset

    a = train_subset(1000, 0.1, seed=3)
    assert len(a) == 100 and np.array_equal(a, np.sort(a)) and len(np.unique(a)) == 100
    assert np.array_equal(a, train_subset(1000, 0.1, seed=3))
    assert not np.array_equal(a, train_subset(1000, 0.1, seed=4))
    assert np.array_equal(train_subset(7, 1.0, seed=0), np.arange(7))


@pytest.mark.parametrize("decimals", [None, 2, 0])
def test_roc_points_are_sklearns_roc_curve_bit_for_bit(decimals: int | None) -> None:
    """Our ROC (numpy, half the cost) against sklearn's, with and without tied scores."""
    from sklearn.metrics import roc_curve

    rng = np.random.default_rng(5)
    labels = rng.integers(0, 2, 5000)
    scores = rng.normal(size=5000) + labels
    if decimals is not None:
        scores = np.round(scores, decimals)
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    ours = ev.roc_points(labels, scores)
    np.testing.assert_array_equal(ours[0], fpr)
    np.testing.assert_array_equal(ours[1], tpr)
    with pytest.raises(ValueError, match="scores contain NaN or infinity"):
        ev.roc_points(labels, np.where(labels == 1, np.nan, scores))
