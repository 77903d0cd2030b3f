"""The multi-seed study: the paired bootstrap against a hand computation, and `kd-trigger study` on the
CI config with its bookkeeping (seeds paired, selection on validation, resumable cache)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from kd_trigger.cli import main
from kd_trigger.config import KdSetting, parse_config
from kd_trigger.contracts import (
    AugmentationArms,
    Interval,
    KdOverBaseline,
    RatioNoise,
    SeedFigures,
    StudentStudy,
    Study,
    StudySetting,
)
from kd_trigger.evaluate import resampled_roc_points, roc_points
from kd_trigger.layout import RunLayout
from kd_trigger.report.markdown import (
    arm_figures_table,
    augmentation_table,
    per_seed_table,
    robustness_sentence,
)
from kd_trigger.stats import (
    ResampledMetric,
    accuracy_metric,
    auc,
    class_rejection,
    hierarchical_bootstrap,
    hierarchical_plan,
    jet_noise,
    paired_ratio,
    r30,
    r50,
    ratio_noise,
    t_log_ratio,
)
from kd_trigger.study import _study_config, _study_needs, follow_up_jobs
from kd_trigger.study_training import TrainJob


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


@pytest.mark.parametrize("decimals", [None, 1])  # 1: scores rounded, so many jets tie
def test_resampled_roc_points_equal_roc_points_of_the_resampled_jets_bit_for_bit(
    decimals: int | None,
) -> None:
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 500)
    scores = rng.normal(labels, 1.0)
    scores = np.round(scores, decimals) if decimals is not None else scores
    roc = resampled_roc_points(labels, scores)
    for _ in range(20):
        jets = rng.integers(0, 500, 500)
        fpr, tpr = roc(np.bincount(jets, minlength=500))
        want_fpr, want_tpr = roc_points(labels[jets], scores[jets])
        assert np.array_equal(fpr, want_fpr) and np.array_equal(tpr, want_tpr)


@pytest.mark.parametrize(
    "metric",
    [r30, r50, auc, accuracy_metric, class_rejection(0, 0.5), class_rejection(2, 0.3)],
    ids=["r30", "r50", "auc", "accuracy", "class0_r50", "class2_r30"],
)
def test_resampled_metrics_equal_the_metric_on_the_resampled_jets(metric: ResampledMetric) -> None:
    """The study's bootstrap reads every model on hundreds of resamples through ``prepare``: each value
    must be exactly what the metric gives on the resampled arrays (so intervals did not move with it)."""
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 3, 900)
    logits = np.round(rng.normal(np.eye(3)[labels], 1.5), 2).astype(np.float32)  # rounded: ties
    if metric in (r30, r50, auc):  # two-class figures: the last class against the rest
        labels, logits = (labels == 2).astype(np.int64), logits[:, 1:]
    on_weights = metric.prepare(labels, logits)
    for _ in range(15):
        jets = rng.integers(0, 900, 900)
        assert on_weights(np.bincount(jets, minlength=900)) == metric(labels[jets], logits[jets])


def test_the_bootstrap_of_a_resampled_metric_equals_the_bootstrap_over_resampled_arrays() -> None:
    """The same replicas through the plain-function path (a lambda is not a ResampledMetric)."""
    rng = np.random.default_rng(8)
    labels = rng.integers(0, 2, 400)
    base = [rng.normal(np.eye(2)[labels], 1.2) for _ in range(3)]
    kd = [rng.normal(np.eye(2)[labels], 1.0) for _ in range(3)]
    assert hierarchical_bootstrap(labels, base, kd, r30, 40, 2) == hierarchical_bootstrap(
        labels, base, kd, lambda y, x: r30(y, x), 40, 2
    )
    assert jet_noise(labels, kd[0], r50, 40, 2) == jet_noise(labels, kd[0], lambda y, x: r50(y, x), 40, 2)
    assert ratio_noise(labels, base, kd, auc, 40, 2) == ratio_noise(
        labels, base, kd, lambda y, x: auc(y, x), 40, 2
    )


def test_jet_noise_is_half_the_68_percent_width_over_jet_resamples_relative_to_the_value() -> None:
    rng = np.random.default_rng(1)
    labels = np.array([0, 1] * 20)
    values = rng.uniform(1, 2, (40, 2))
    noise = jet_noise(labels, values, _mean_metric, n_boot=60, seed=4)
    draws = np.random.default_rng([4, 0xB007, 3])
    replicas = []
    for _ in range(60):
        jets = draws.integers(0, 40, size=40)
        if labels[jets].min() != labels[jets].max():
            replicas.append(values[jets, 0].mean())
    lo, hi = np.percentile(replicas, [16, 84])
    assert noise == pytest.approx((hi - lo) / 2 / values[:, 0].mean(), rel=1e-12)
    assert 0 < noise < 0.1
    assert jet_noise(labels, np.zeros((40, 2)), _mean_metric, 10, 0) is None  # a zero figure has no ratio


def test_the_per_seed_table_sets_the_seed_spread_beside_the_test_jets_noise() -> None:
    def fig(seed: int, r30: float, noise: float) -> SeedFigures:
        return SeedFigures(
            seed=seed, auc=0.97, rejection_at_30=r30, rejection_at_50=50.0, accuracy=0.9,
            rejection_at_30_jet_noise=noise,
        )  # fmt: skip

    kd = [fig(1, 300.0, 0.08), fig(2, 200.0, 0.06)]
    setting = StudySetting(
        teacher="t", temperature=2.0, kd_weight=0.9, chosen=True, kd=kd,
        kd_over_baseline=KdOverBaseline(rejection_at_30=_iv(1, 1, 1), rejection_at_50=_iv(1, 1, 1), auc=_iv(1, 1, 1)),
    )  # fmt: skip
    student = StudentStudy(baseline=[fig(1, 100.0, 0.1), fig(2, 100.0, 0.12)], settings=[setting], best={})
    lines = per_seed_table(student)
    assert lines[4] == "| 1 | 100.0 | 300.0 | 50.0 | 50.0 | 0.9700 | 0.9700 |"
    # KD: std([300, 200], ddof=1) / 250 = 28%; baseline 0%; median of 0.08, 0.06, 0.1, 0.12 = 9%
    assert lines[-1] == (
        "R30 from seed to seed (std / mean): baseline 0%, KD 28%; the test jets' own noise on one model's R30 "
        "(half the 68% width over jet resamples, median of the models): 9%."
    )


def test_ratio_noise_splits_the_mean_log_ratio_into_seeds_and_shared_test_jet_resamples() -> None:
    rng = np.random.default_rng(2)
    labels = np.array([0, 1] * 15)
    base = [rng.uniform(1, 2, (30, 2)) for _ in range(3)]
    kd = [rng.uniform(1, 3, (30, 2)) for _ in range(3)]
    noise = ratio_noise(labels, base, kd, _mean_metric, n_boot=40, seed=9)
    assert noise is not None
    logs = [np.log(k[:, 0].mean() / b[:, 0].mean()) for b, k in zip(base, kd, strict=True)]
    assert noise.seeds_std == pytest.approx(np.std(logs, ddof=1) / np.sqrt(3), rel=1e-12)
    draws = np.random.default_rng([9, 0xB007, 4])
    replicas = []
    for _ in range(40):
        jets = draws.integers(0, 30, size=30)  # ONE resample for every seed and both models
        if labels[jets].min() != labels[jets].max():
            replicas.append(
                np.mean(
                    [np.log(k[jets, 0].mean() / b[jets, 0].mean()) for b, k in zip(base, kd, strict=True)]
                )
            )
    jets_std = np.std(replicas, ddof=1)
    assert noise.jets_std == pytest.approx(jets_std, rel=1e-12)
    seeds_var = noise.seeds_std**2
    assert noise.jets_share == pytest.approx(jets_std**2 / (jets_std**2 + seeds_var), rel=1e-12)
    # k times the jets divides their variance by k: a quarter of the total at k = 3 * jets / seeds
    assert noise.test_scale_for_quarter == pytest.approx(3 * jets_std**2 / seeds_var, rel=1e-12)
    assert ratio_noise(labels, base[:1], kd[:1], _mean_metric, 40, 9) is None  # one seed has no spread


def test_the_per_seed_table_says_how_much_of_the_r30_ratio_the_test_split_makes() -> None:
    def fig(seed: int, r30: float) -> SeedFigures:
        return SeedFigures(
            seed=seed, auc=0.97, rejection_at_30=r30, rejection_at_50=50.0, accuracy=0.9,
            rejection_at_30_jet_noise=0.2,
        )  # fmt: skip

    noise = RatioNoise(seeds_std=0.122, jets_std=0.124, jets_share=0.508, test_scale_for_quarter=3.1)
    r30_ratio = _iv(1.4, 1.2, 1.7).model_copy(update={"noise": noise})
    setting = StudySetting(
        teacher="t", temperature=2.0, kd_weight=0.9, chosen=True, kd=[fig(1, 300.0), fig(2, 200.0)],
        kd_over_baseline=KdOverBaseline(rejection_at_30=r30_ratio, rejection_at_50=_iv(1, 1, 1), auc=_iv(1, 1, 1)),
    )  # fmt: skip
    student = StudentStudy(baseline=[fig(1, 100.0), fig(2, 150.0)], settings=[setting], best={})
    assert per_seed_table(student)[-1] == (
        "The KD/baseline R30 ratio's uncertainty (std of the mean per-seed log ratio): seeds 0.122, test jets "
        "0.124; the test jets make 51% of its variance (the hierarchical bootstrap draws both). A test split "
        "3.1 times larger would bring the jets down to a quarter of it."
    )
    small = noise.model_copy(update={"test_scale_for_quarter": 0.8})
    setting.kd_over_baseline.rejection_at_30.noise = small
    assert per_seed_table(student)[-1].endswith(
        "The test split is large enough for the jets to stay under a quarter of it."
    )


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


def _iv(mean: float, lo: float, hi: float, per_seed: tuple[float, ...] = ()) -> Interval:
    return Interval(mean=mean, lo68=lo, hi68=hi, per_seed=list(per_seed or (mean,)))


def _arms(kd: Interval, beats: Interval, adds: Interval) -> AugmentationArms:
    return AugmentationArms(
        beta_max=0.9,
        teacher="lorentznet16",
        temperature=2.0,
        kd_weight=0.9,
        baseline_augmented=[],
        kd_augmented=[],
        accuracy={"0.5": {"baseline": 0.61, "kd": 0.64, "baseline_augmented": 0.7, "kd_augmented": 0.72}},
        ratios={
            "0.5": {
                "kd_over_baseline": kd,
                "augmented_over_baseline": _iv(1.15, 1.1, 1.2),
                "kd_over_augmented": beats,
                "kd_augmented_over_augmented": adds,
            }
        },
    )


def test_the_robustness_sentence_claims_a_kd_gain_only_where_kd_beats_or_adds_to_augmentation() -> None:
    gain, none, below = _iv(1.05, 1.02, 1.08), _iv(1.0, 0.97, 1.03), _iv(0.9, 0.88, 0.93)
    adds = robustness_sentence("deepsets", _arms(gain, below, _iv(1.03, 1.01, 1.05)), "0.5")
    assert adds.startswith(
        "`deepsets` at beta = 0.5: augmentation buys the robustness and distillation adds 3.0% accuracy on top "
        "of it (KD alone does not beat augmentation alone); "
    )
    assert "more robust" not in adds
    assert "KD + augmentation / baseline + augmentation 1.030 [1.010, 1.050] (68%)." in adds
    beats = robustness_sentence("mlp", _arms(gain, _iv(1.04, 1.01, 1.06), none), "0.5")
    assert "more robust to boosts than augmentation does: KD beats augmentation;" in beats
    both = robustness_sentence("mlp", _arms(gain, _iv(1.04, 1.01, 1.06), _iv(1.04, 1.01, 1.06)), "0.5")
    assert "KD beats augmentation and adds to it;" in both
    # KD above the baseline, but augmentation does as well and KD adds nothing: no claim
    only = robustness_sentence("mlp", _arms(gain, below, none), "0.5")
    assert "no robustness gain is claimed for distillation" in only and "more robust" not in only
    assert "KD / baseline 1.050 [1.020, 1.080]" in only
    # no KD gain at all (lo68 at or below 1), even if the KD + augmentation arm looks good: no claim
    for kd in (none, _iv(1.05, 1.0, 1.1)):
        text = robustness_sentence("mlp", _arms(kd, _iv(1.04, 1.01, 1.06), _iv(1.04, 1.01, 1.06)), "0.5")
        assert text.startswith("`mlp` at beta = 0.5: no robustness gain from distillation;")
    # a lower bound that prints as 1.000 (a 0.04% effect) claims nothing either
    tiny = robustness_sentence("mlp", _arms(gain, below, _iv(1.002, 1.0004, 1.004)), "0.5")
    assert "no robustness gain is claimed for distillation" in tiny and "[1.000, 1.004]" in tiny
    # a missing bound claims nothing
    missing = Interval(mean=1.1, lo68=None, hi68=None, per_seed=[1.1])
    assert "no robustness gain from distillation" in robustness_sentence(
        "mlp", _arms(missing, gain, gain), "0.5"
    )


def test_the_augmentation_table_shows_every_arm_and_ratio_with_per_seed_values() -> None:
    lines = augmentation_table(
        _arms(_iv(1.05, 1.02, 1.08, (1.01, 1.09)), _iv(0.9, 0.88, 0.93), _iv(1.0, 0.97, 1.03))
    )
    assert lines[2] == "| arm | accuracy at beta=0.5 |"
    assert lines[4:8] == [
        "| baseline | 0.610 |",
        "| KD | 0.640 |",
        "| baseline + augmentation | 0.700 |",
        "| KD + augmentation | 0.720 |",
    ]
    assert "| KD / baseline | 1.050 [1.020, 1.080] | 1.010 / 1.090 |" in lines
    assert "| KD + augmentation / baseline + augmentation | 1.000 [0.970, 1.030] | 1.000 |" in lines


def _fig(seed: int, r30: float, auc: float) -> SeedFigures:
    return SeedFigures(seed=seed, auc=auc, rejection_at_30=r30, rejection_at_50=r30 / 2, accuracy=auc - 0.1)


def test_the_four_arms_table_gives_r30_r50_auc_of_every_arm_and_both_kd_ratios() -> None:
    ratios = KdOverBaseline(
        rejection_at_30=_iv(1.3, 1.1, 1.5), rejection_at_50=_iv(1.2, 1.0, 1.4), auc=_iv(1, 1, 1)
    )
    setting = StudySetting(
        teacher="t",
        temperature=2.0,
        kd_weight=0.9,
        chosen=True,
        kd=[_fig(1, 30, 0.9), _fig(2, 50, 0.92)],
        kd_over_baseline=ratios,
    )
    aug = _arms(_iv(1, 1, 1), _iv(1, 1, 1), _iv(1, 1, 1)).model_copy(
        update={
            "baseline_augmented": [_fig(1, 10, 0.8), _fig(2, 12, 0.82)],
            "kd_augmented": [_fig(1, 14, 0.84), _fig(2, 16, 0.86)],
            "kd_over_baseline_augmented": ratios.model_copy(update={"rejection_at_30": _iv(1.25, 1.0, 1.5)}),
        }
    )
    student = StudentStudy(
        baseline=[_fig(1, 20, 0.88), _fig(2, 40, 0.9)],
        settings=[setting],
        best={"teacher": "t", "temperature": 2.0, "kd_weight": 0.9},
        augmentation=aug,
    )
    lines = arm_figures_table(student)
    assert lines[4:8] == [
        "| baseline | 30.000 | 15.000 | 0.890 | 0.790 |",
        "| KD | 40.000 | 20.000 | 0.910 | 0.810 |",
        "| baseline + augmentation | 11.000 | 5.500 | 0.810 | 0.710 |",
        "| KD + augmentation | 15.000 | 7.500 | 0.850 | 0.750 |",
    ]
    assert lines[-2:] == [
        "| without augmentation | 1.30 [1.10, 1.50] | 1.20 [1.00, 1.40] | 1.0000 [1.0000, 1.0000] |",
        "| with augmentation | 1.25 [1.00, 1.50] | 1.20 [1.00, 1.40] | 1.0000 [1.0000, 1.0000] |",
    ]
    assert arm_figures_table(student.model_copy(update={"augmentation": None})) == []


def test_the_arms_at_the_chosen_setting() -> None:
    cfg = parse_config({"study": {"seeds": 2, "train_fractions": [0.5], "augment_beta_max": 0.8}})
    best = KdSetting(temperature=2.0, kd_weight=0.9)
    spec = cfg.students[0]
    jobs = follow_up_jobs(cfg, spec, [7, 8], "t1", best)
    n = spec.name
    assert jobs == [
        TrainJob(n, 7, None, None, None, 0.5),
        TrainJob(n, 8, None, None, None, 0.5),
        TrainJob(n, 7, "t1", 2.0, 0.9, 0.5),
        TrainJob(n, 8, "t1", 2.0, 0.9, 0.5),
        TrainJob(n, 7, augment=0.8),
        TrainJob(n, 8, augment=0.8),
        TrainJob(n, 7, "t1", 2.0, 0.9, augment=0.8),
        TrainJob(n, 8, "t1", 2.0, 0.9, augment=0.8),
    ]
    assert jobs[6].setting == KdSetting(temperature=2.0, kd_weight=0.9) and jobs[4].setting is None
    off = cfg.model_copy(update={"study": cfg.study.model_copy(update={"augment_beta_max": 0.0})})
    assert follow_up_jobs(off, spec, [7, 8], "t1", best) == jobs[:4]


def test_a_study_with_nothing_to_choose_trains_in_one_round_the_longest_first() -> None:
    """The default study (one pairing per student) knows its augmentation arms before any training: they
    join the first round (no second cluster, no idle worker between rounds); a grid waits for the
    validation split's choice. Augmented trainings are ordered as the longer ones."""
    from kd_trigger.study import _cost, first_round

    cfg = parse_config({"study": {"seeds": 2}})
    students = list(cfg.students)
    seeds = [42, 43]
    jobs = first_round(cfg, students, seeds)
    for spec in students:
        ((teacher, setting),) = cfg.study_pairs(spec.name)
        plain = [TrainJob.of(spec.name, s) for s in seeds] + [
            TrainJob.of(spec.name, s, teacher, setting) for s in seeds
        ]
        mine = [j for j in jobs if j.student == spec.name]
        assert mine == plain + follow_up_jobs(cfg, spec, seeds, teacher, setting)
        assert sum(j.augment == 0.9 for j in mine) == 4  # baseline + KD, augmented, per seed
        assert _cost(cfg, mine[-1]) == 2.0 * _cost(cfg, mine[2])  # the augmented KD copy counts double
    grid = parse_config(
        {
            "study": {
                "seeds": 2,
                "grid": [{"temperature": 2, "kd_weight": 0.9}, {"temperature": 4, "kd_weight": 0.5}],
            }
        }
    )
    first = first_round(grid, list(grid.students), seeds)
    assert not [j for j in first if j.augment] and len(first) == sum(
        2 + 2 * len(grid.study_pairs(s.name)) for s in grid.students
    )


def test_the_default_study_trains_each_students_own_pairing_and_a_grid_searches() -> None:
    """No ``study.grid``: one distilled copy per seed at the pairing the student ships with (the default
    students: the MLP and the Deep Sets with their own teacher and (T, w)); a grid: every studied teacher
    at every setting. What the study trains enters its digest, so a re-pairing reruns the default study."""
    cfg = parse_config(
        {
            "students": {"deepsets": {"teacher": "lorentznet16", "temperature": 4.0, "kd_weight": 0.3}},
            "study": {"students": ["deepsets"]},
        }
    )
    assert cfg.study_pairs("deepsets") == [("lorentznet16", KdSetting(temperature=4.0, kd_weight=0.3))]
    assert cfg.studied_teachers() == ["lorentznet16"]
    assert _study_needs(cfg) == ("data", "teacher:lorentznet16")  # no other teacher is trained for it
    mlp = parse_config({})
    t, w = mlp.kd_setting(mlp.student("mlp"))
    assert mlp.study_pairs("mlp") == [
        (mlp.teacher_of(mlp.student("mlp")).name, KdSetting(temperature=t, kd_weight=w))
    ]
    teachers = parse_config(
        {"study": {"students": ["deepsets"], "teachers": ["lorentznet16", "lorentznet64"]}}
    )
    assert [p[0] for p in teachers.study_pairs("deepsets")] == ["lorentznet16", "lorentznet64"]
    grid = [{"temperature": 1.0, "kd_weight": 0.7}, {"temperature": 2.0, "kd_weight": 0.9}]
    search = parse_config({"study": {"grid": grid}})
    assert search.study_pairs("mlp") == [
        (t, KdSetting(**g)) for t in ("lorentznet16", "lorentznet64", "ensemble") for g in grid
    ]
    assert search.studied_teachers() == ["lorentznet16", "lorentznet64", "ensemble"]
    repaired = parse_config(
        {
            "students": {"deepsets": {"teacher": "lorentznet16", "temperature": 2.0, "kd_weight": 0.3}},
            "study": {"students": ["deepsets"]},
        }
    )
    assert _study_config(repaired) != _study_config(cfg)  # the deployed pairing is what the study trains
    assert "pairings" not in _study_config(search)  # a grid study does not follow the pipeline's pairing


def _without_seconds(value: object) -> object:
    if isinstance(value, dict):
        return {k: _without_seconds(v) for k, v in value.items() if k != "train_seconds"}
    if isinstance(value, list):
        return [_without_seconds(v) for v in value]
    return value


@pytest.mark.slow
def test_study_on_the_ci_config(ci_run, caplog) -> None:
    cfg = ci_run.cfg
    caplog.set_level("INFO")
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
            assert all(0 < f.rejection_at_30_jet_noise < 1 for f in setting.kd)  # R30's test-jet noise
            # and the two parts of the ratio's uncertainty, seeds and test jets
            assert r30.noise is not None and r30.noise.seeds_std is not None and r30.noise.jets_std > 0
            assert 0 < r30.noise.jets_share < 1
            expected = [
                k.rejection_at_30 / b.rejection_at_30
                for k, b in zip(setting.kd, student.baseline, strict=True)
            ]
            assert r30.per_seed == pytest.approx(expected)
            assert r30.lo68 <= r30.hi68
            assert set(setting.kd_over_baseline.accuracy_at_beta) == {
                "0.5",
                "0.9",
            }  # boost_betas + robustness_betas
        assert [p.train_fraction for p in student.low_data] == list(scfg.train_fractions)
        for interval in (setting.kd_over_baseline.rejection_at_50, setting.kd_over_baseline.auc):
            assert (
                interval.method in ("hierarchical_bootstrap", "t_log_ratio") and len(interval.per_seed) == 2
            )
        # the augmentation control: two more arms at the chosen setting, the same seeds
        aug = student.augmentation
        assert aug is not None and aug.beta_max == scfg.augment_beta_max == 0.9
        assert (aug.teacher, aug.temperature, aug.kd_weight) == tuple(
            student.best[k] for k in ("teacher", "temperature", "kd_weight")
        )
        assert [f.seed for f in aug.baseline_augmented] == [f.seed for f in aug.kd_augmented] == study.seeds
        assert set(aug.accuracy) == set(aug.ratios) == {"0.5", "0.9"}
        assert set(aug.ratios["0.9"]) == {
            "kd_over_baseline",
            "augmented_over_baseline",
            "kd_over_augmented",
            "kd_augmented_over_augmented",
        }
        chosen_kd = student.chosen_setting().kd
        assert aug.accuracy["0.9"]["kd"] == pytest.approx(
            np.mean([f.accuracy_at_beta["0.9"] for f in chosen_kd])
        )
        assert aug.ratios["0.5"]["kd_over_augmented"].per_seed == pytest.approx(
            [
                k.accuracy_at_beta["0.5"] / b.accuracy_at_beta["0.5"]
                for k, b in zip(chosen_kd, aug.baseline_augmented, strict=False)
            ]
        )
        # the augmented students are other students than the plain ones
        assert [f.auc for f in aug.baseline_augmented] != [f.auc for f in student.baseline]
    assert study.interval_method.startswith("68% intervals: the wider of a hierarchical bootstrap")
    md = (cfg.artifacts / "study.md").read_text()
    assert "Augmentation control (training jets boosted up to beta = 0.9" in md
    assert "`mlp` at beta = 0.9:" in md and "| seed | baseline R30 | KD R30 |" in md
    assert "## The paper, on another data set" in md and "ANOTHER data set" in md
    for png in ("ratio_per_seed.png", "low_data.png", "boost_mlp.png", "boost_deepsets.png"):
        assert (cfg.artifacts / "study" / png).read_bytes()[:4] == b"\x89PNG"

    # The trainings ran on the Dask cluster (2 local workers) and each left its cache file: 2 students x
    # 2 seeds x (baseline + 2 teachers x 2 settings; low data 2; augmented 2) = 36.
    messages = [r.getMessage() for r in caplog.records]
    assert "study: 20 trainings, 0 cached, 20 to run" in messages
    assert "study: 16 trainings, 0 cached, 16 to run" in messages
    assert any(m.startswith("study trainings: 20 tasks on tcp://") for m in messages)
    cached = sorted(RunLayout.of(cfg).study_cache.glob("*.npz"))
    assert len(cached) == 36

    # A study killed before its end resumes from its cache: only the trainings without a cache file run
    # again (3 cache files removed, as a kill leaves them missing), and the results are the same.
    before = json.loads((cfg.artifacts / "study.json").read_text())
    (cfg.artifacts / "study.json").unlink()
    lost = {cached[0].name, cached[1].name, cached[2].name}
    for path in cached[:3]:
        path.unlink()
    caplog.clear()
    caplog.set_level("INFO")
    assert main(["study", "--config", str(ci_run.path)]) == 0
    messages = [r.getMessage() for r in caplog.records]
    assert any("stage study: running" in m for m in messages)
    runs = [m for m in messages if m.startswith("study: ") and "trainings," in m]
    assert sum(int(m.split(", ")[2].split()[0]) for m in runs) == 3
    assert {p.name for p in RunLayout.of(cfg).study_cache.glob("*.npz")} >= lost
    after = json.loads((cfg.artifacts / "study.json").read_text())
    # the same students (only the retrained ones' wall-clock seconds differ)
    assert _without_seconds(after["students"]) == _without_seconds(before["students"])

    # The review report shows the study once it is remade (study.json is one of its inputs), one row per
    # student at its chosen setting.
    assert main(["report", "--config", str(ci_run.path)]) == 0
    report = (cfg.firmware / "report.md").read_text()
    assert "## Distillation over seeds (make study)" in report and "over 2 seeds" in report
    for name, student in study.students.items():
        st = student.chosen_setting()
        assert f"| {name} | {st.teacher}, T = {st.temperature:g}, w = {st.kd_weight:g} | " in report


def test_the_cache_keys_cover_the_result_code_and_no_report_module(monkeypatch) -> None:
    """The study's training key and the scan's point key follow imports (``code_fingerprint``): they
    must reach the training loop and the students (and, for the scan, the firmware build), and no file
    under kd_trigger/report/: a plot or Markdown edit reruns neither cache (nor, for the study, the JSON
    contracts)."""
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
    # nor the study.json contract: a new field of the study's statistics retrains none of its students
    assert not [
        f for m in TRAINING_CODE for f in code_fingerprint(m) if f.startswith("kd_trigger/contracts/")
    ]
    # and the scan's points are keyed on exactly those modules
    seen = []
    monkeypatch.setattr(scan_points, "code_digest", lambda *modules: seen.append(modules) or "code")
    scan_points.plan_points(parse_config({"scan": {"axes": {"mlp": {"weight_bits": [4]}}}}))
    assert seen == [scan_points.POINT_CODE]


def test_the_report_shows_the_study_beside_the_one_seed_physics(tmp_path) -> None:
    """The review report's "Distillation over seeds" section: the chosen setting's ratios, every seed,
    the signed accuracy difference, a note where the run deploys another setting than the study chose,
    the robustness sentences; no section without a study.json."""
    from kd_trigger.contracts import Study
    from kd_trigger.report.html import render_markdown
    from kd_trigger.report.study_section import study_blocks

    def student(teacher: str, r30: Interval) -> StudentStudy:
        setting = StudySetting(
            teacher=teacher,
            temperature=2.0,
            kd_weight=0.9,
            chosen=True,
            kd=[_fig(42, 30, 0.9), _fig(43, 50, 0.92)],
            kd_over_baseline=KdOverBaseline(
                rejection_at_30=r30,
                rejection_at_50=_iv(1.2, 1.0, 1.4),
                auc=_iv(1.002, 1.001, 1.003),
                accuracy_difference_points=_iv(-0.02, -0.17, 0.1),
            ),
        )
        best = {"teacher": teacher, "temperature": 2.0, "kd_weight": 0.9}
        return StudentStudy(baseline=[_fig(42, 20, 0.88), _fig(43, 40, 0.9)], settings=[setting], best=best)

    noise = RatioNoise(seeds_std=0.122, jets_std=0.151, jets_share=0.6, test_scale_for_quarter=4.6)
    deepsets = student("ensemble", _iv(1.28, 1.06, 1.44, (0.77, 1.79)).model_copy(update={"noise": noise}))
    deepsets = deepsets.model_copy(
        update={"augmentation": _arms(_iv(1.05, 1.02, 1.08), _iv(0.9, 0.88, 0.93), _iv(1.03, 1.01, 1.05))}
    )
    study = Study(
        run="default",
        seeds=[42, 43],
        select_on="rejection_at_30",
        n_test=18000,
        n_test_background=9000,
        teachers={},
        students={"mlp": student("lorentznet16", _iv(1.16, 0.96, 1.3, (1.68, 0.64))), "deepsets": deepsets},
        seconds=1.0,
        paper={},
    )
    path = tmp_path / "study.json"
    path.write_text(study.model_dump_json())
    # the default: both students from the ensemble of both teachers, T 2 / w 0.9
    cfg = parse_config({"run": {"artifacts_dir": str(tmp_path / "artifacts")}})
    text = render_markdown(study_blocks(cfg, path))
    assert "out of date" not in text  # no study record: nothing to compare
    assert "## Distillation over seeds (make study)" in text
    assert "over 2 seeds (42, 43)" in text
    assert (
        "| deepsets | ensemble, T = 2, w = 0.9 | 1.28 [1.06, 1.44] | 0.77 / 1.79 | 1 of 2 | 1.20 [1.00, 1.40] "
        "| 1.0020 [1.0010, 1.0030] | -0.02 [-0.17, +0.10] | 60% (x4.6 jets for 25%) |" in text
    )
    assert "| -0.02 [-0.17, +0.10] | n/a |" in text  # the MLP's study predates the split
    assert "| mlp | lorentznet16, T = 2, w = 0.9 | 1.16 [0.96, 1.30] | 1.68 / 0.64 | 1 of 2 |" in text
    # the MLP ships with the ensemble: the reader is told the firmware is not the studied setting
    assert (
        "`mlp`: the study chose lorentznet16, T = 2, w = 0.9; this run deploys ensemble, T = 2, w = 0.9, "
        "so its firmware is not the studied setting." in text
    )
    assert "`deepsets`: the study chose" not in text
    assert "- `deepsets` at beta = 0.5: augmentation buys the robustness and distillation adds 3.0%" in text
    assert study_blocks(cfg, tmp_path / "absent.json") == []
    # The study stage's recorded config against the run's: the same students, no warning; another
    # student design (the run's students changed after the study), a warning naming the section.
    records = RunLayout.of(cfg).records_dir
    records.mkdir(parents=True)
    (records / "study.config.yaml").write_text(yaml.safe_dump(cfg.to_dict()))
    assert "out of date" not in render_markdown(study_blocks(cfg, path))
    changed = cfg.to_dict()
    changed["students"][0]["sparsity"] = 0.5
    (records / "study.config.yaml").write_text(yaml.safe_dump(changed))
    assert (
        "**This study is out of date**: it was made with other `students` settings than this run's, so it "
        "describes other students than the firmware above; rerun `make study`."
    ) in render_markdown(study_blocks(cfg, path))


def test_a_worker_files_its_training_under_the_key_the_study_computed(monkeypatch, make_config) -> None:
    """A long study's later Dask workers start after the study did: they take the study's digest of the
    training code, so an edit of the code meanwhile cannot file their results under keys the study never
    looks up (it would then train them all again in its own process)."""
    import kd_trigger.study_training as st
    from kd_trigger.config.loading import load_config
    from kd_trigger.data.dataset import JetDataset

    n = 12
    jets = JetDataset(
        constituents=np.ones((n, 4, 4), np.float32),
        n_constituents=np.full(n, 4, np.int32),
        labels=np.array([0, 1] * (n // 2), np.int8),
        split=np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2], np.uint8),
    )
    monkeypatch.setattr(st, "load_jets", lambda path, cfg: jets)  # the jets are not what is tested here
    cfg = load_config(make_config())
    study = st.Trainer(cfg, {"data": "d1"})
    job = TrainJob.of(cfg.students[0].name, 42)
    task = study.task(job)
    assert task["code"] == study.code
    ran = []
    monkeypatch.setattr(st, "code_digest", lambda *modules: "the code as edited since")
    monkeypatch.setattr(st.Trainer, "run", lambda self, j: ran.append((self.code, j)))
    st._TRAINERS.clear()
    assert st.train_task(task) == {"key": study.key(job)}
    assert ran == [(study.code, job)]
    assert st.Trainer(cfg, {"data": "d1"}).key(job) != study.key(job)  # what a worker's own digest gave
