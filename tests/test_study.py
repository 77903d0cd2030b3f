"""The multi-seed study: the paired bootstrap against a hand computation, and `kd-trigger study` on the
CI config with its bookkeeping (seeds paired, selection on validation, resumable cache)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kd_trigger.cli import main
from kd_trigger.contracts import Study
from kd_trigger.stats import hierarchical_bootstrap, hierarchical_plan, paired_ratio, t_log_ratio


def _mean_metric(labels: np.ndarray, values: np.ndarray) -> float:
    """A metric simple enough to recompute by hand: the mean of the first column."""
    return float(np.mean(values[:, 0]))


def test_hierarchical_bootstrap_matches_a_hand_computation() -> None:
    rng = np.random.default_rng(0)
    labels = np.array([0, 1] * 5)
    base = [rng.uniform(1, 2, (10, 2)) for _ in range(3)]
    kd = [rng.uniform(1, 2, (10, 2)) for _ in range(3)]
    lo, hi = hierarchical_bootstrap(labels, base, kd, _mean_metric, n_boot=50, seed=11)

    replicas = []
    for seeds, jets in hierarchical_plan(10, 3, 50, 11):
        assert seeds.shape == (3,) and jets.shape == (3, 10)
        if any(labels[j].min() == labels[j].max() for j in jets):
            continue
        # seed s drawn at position i gets ITS OWN resample jets[i] of the test jets, the same for both models
        replicas.append(
            np.mean([kd[s][j, 0].mean() / base[s][j, 0].mean() for s, j in zip(seeds, jets, strict=False)])
        )
    assert 40 <= len(replicas) <= 50
    assert (lo, hi) == pytest.approx(tuple(np.percentile(replicas, [16, 84])), rel=1e-12)
    # Both models identical: exactly 1 in every replica.
    assert hierarchical_bootstrap(labels, base, base, _mean_metric, 50, 11) == (1.0, 1.0)


def test_hierarchical_plan_is_deterministic_and_resamples_jets_per_seed() -> None:
    first = list(hierarchical_plan(100, 3, 20, seed=5))
    again = list(hierarchical_plan(100, 3, 20, seed=5))
    assert len(first) == 20
    assert all(
        np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(first, again, strict=False)
    )
    seeds = np.concatenate([s for s, _ in first])
    jets = np.stack([j for _, j in first])
    assert seeds.min() == 0 and seeds.max() == 2 and jets.min() >= 0 and jets.max() == 99
    assert not np.array_equal(jets[0, 0], jets[0, 1])  # each drawn seed has its own jets


def test_t_interval_of_per_seed_log_ratios_known_numbers() -> None:
    # logs 0, 0.2, 0.4: mean 0.2, sd 0.2, t(0.84; 2 dof) = 1.3115784746..., half width 0.2 * t / sqrt(3)
    geometric, lo, hi = t_log_ratio([1.0, float(np.exp(0.2)), float(np.exp(0.4))])
    assert geometric == pytest.approx(1.2214027581601699, rel=1e-12)
    assert (lo, hi) == pytest.approx((1.0497499184702532, 1.4211238995047795), rel=1e-12)
    one = t_log_ratio([1.5])
    assert one[0] == pytest.approx(1.5) and np.isnan(one[1]) and np.isnan(one[2])
    assert all(np.isnan(t_log_ratio([0.0, float("nan")])))


def test_the_headline_interval_is_the_wider_of_the_two() -> None:
    labels = np.array([0, 1] * 50)
    rng = np.random.default_rng(3)
    base = [rng.uniform(1, 2, (100, 2)) for _ in range(5)]
    # Seeds far apart, jets nearly noise-free: kd = base * a per-seed factor -> every jet resample gives the
    # same per-seed ratio, the bootstrap sees only the seed draw; the t interval (4 dof) is wider here.
    factors = [0.8, 1.0, 1.2, 1.5, 2.0]
    kd = [b * f for b, f in zip(base, factors, strict=False)]
    interval = paired_ratio(labels, base, kd, _mean_metric, n_boot=200, seed=1)
    assert interval.per_seed == pytest.approx(factors, rel=1e-12)
    assert interval.mean == pytest.approx(np.mean(factors), rel=1e-12)
    geometric, t_lo, t_hi = t_log_ratio(factors)
    assert interval.geometric_mean == pytest.approx(geometric, rel=1e-12)
    assert (interval.t_log_ratio.lo68, interval.t_log_ratio.hi68) == pytest.approx((t_lo, t_hi), rel=1e-12)
    boot = hierarchical_bootstrap(labels, base, kd, _mean_metric, 200, 1)
    assert (interval.hierarchical_bootstrap.lo68, interval.hierarchical_bootstrap.hi68) == pytest.approx(boot)
    assert t_hi - t_lo > boot[1] - boot[0]
    assert interval.method == "t_log_ratio"
    assert (interval.lo68, interval.hi68) == pytest.approx((1.0319594770817468, 1.479429762266074), rel=1e-12)
    # One seed: no t interval, the bootstrap is the headline.
    single = paired_ratio(labels, base[:1], kd[:1], _mean_metric, n_boot=50, seed=1)
    assert single.method == "hierarchical_bootstrap" and single.t_log_ratio.lo68 is None
    assert (single.lo68, single.hi68) == pytest.approx((0.8, 0.8), rel=1e-12)


@pytest.mark.slow
def test_study_on_the_ci_config(ci_run, caplog) -> None:
    cfg = ci_run.cfg
    assert main(["study", "--config", str(ci_run.path)]) == 0
    study = Study.model_validate_json((cfg.artifacts / "study.json").read_text())
    scfg = cfg.study
    assert study.seeds == [cfg.run.seed + k for k in range(scfg.seeds)]
    assert set(study.teachers) == {"lorentznet16", "lorentznet64"}
    assert (
        study.teachers["lorentznet64"].n_particles == 64
        and study.teachers["lorentznet64"].kind == "lorentznet"
    )
    for student in study.students.values():
        assert [f.seed for f in student.baseline] == study.seeds
        assert len(student.settings) == 2 * len(scfg.grid)  # every teacher x every setting
        assert sum(s.chosen for s in student.settings) == 2  # one setting per teacher
        # selection on the validation split only: per teacher the best validation ratio, then the best teacher
        for teacher in study.teachers:
            mine = [s for s in student.settings if s.teacher == teacher]
            assert next(s for s in mine if s.chosen).val_selection_ratio == max(
                s.val_selection_ratio for s in mine
            )
        chosen = max((s for s in student.settings if s.chosen), key=lambda s: s.val_selection_ratio)
        assert student.best == {
            "teacher": chosen.teacher,
            "temperature": chosen.temperature,
            "kd_weight": chosen.kd_weight,
        }
        for setting in student.settings:
            assert [f.seed for f in setting.kd] == study.seeds  # paired with the baseline seed by seed
            r30 = setting.kd_over_baseline.rejection_at_30
            expected = [
                k.rejection_at_30 / b.rejection_at_30
                for k, b in zip(setting.kd, student.baseline, strict=True)
            ]
            assert r30.per_seed == pytest.approx(expected)
            assert r30.lo68 <= r30.hi68
            assert set(setting.kd_over_baseline.accuracy_at_beta) == {"0.5"}
        assert [p.train_fraction for p in student.low_data] == list(scfg.train_fractions)
    md = (cfg.artifacts / "study.md").read_text()
    assert "## The paper, on another data set" in md and "ANOTHER data set" in md
    for png in ("ratio_per_seed.png", "low_data.png", "boost_mlp.png", "boost_deepsets.png"):
        assert (cfg.artifacts / "study" / png).read_bytes()[:4] == b"\x89PNG"

    # A study whose outputs are lost resumes from its cache: no student is trained again.
    before = json.loads((cfg.artifacts / "study.json").read_text())
    (cfg.artifacts / "study.json").unlink()
    caplog.clear()
    caplog.set_level("INFO")
    assert main(["study", "--config", str(ci_run.path)]) == 0
    messages = [r.getMessage() for r in caplog.records]
    assert any("stage study: running" in m for m in messages)
    assert not any(" epoch " in m for m in messages)
    after = json.loads((cfg.artifacts / "study.json").read_text())
    assert after["students"] == before["students"]


def test_the_cache_keys_cover_the_result_code_and_no_report_module(monkeypatch) -> None:
    """The study's training key and the scan's point key follow imports (``code_fingerprint``): they
    must reach the training loop and the students (and, for the scan, the firmware build), and no file
    under kd_trigger/report/: a plot or Markdown edit reruns neither cache."""
    import kd_trigger.scan_points as scan_points
    from kd_trigger.config import parse_config
    from kd_trigger.fingerprint import code_fingerprint
    from kd_trigger.study_training import TRAINING_CODE

    for modules, needed in (
        (TRAINING_CODE, {"kd_trigger/study_training.py"}),
        (
            scan_points.POINT_CODE,
            {"kd_trigger/scan_points.py", "kd_trigger/hls/build.py", "kd_trigger/evaluate.py"},
        ),
    ):
        files = {f for m in modules for f in code_fingerprint(m)}
        assert {"kd_trigger/distill/training.py", "kd_trigger/models/students.py", *needed} <= files
        assert not [f for f in files if f.startswith("kd_trigger/report/")]
        assert not {"kd_trigger/stats.py", "kd_trigger/scan.py", "kd_trigger/study.py"} & files
    # and the scan's points are keyed on exactly those modules
    seen = []
    monkeypatch.setattr(scan_points, "code_digest", lambda *modules: seen.append(modules) or "code")
    scan_points.plan_points(parse_config({"scan": {"axes": {"mlp": {"weight_bits": [4]}}}}))
    assert seen == [scan_points.POINT_CODE]
