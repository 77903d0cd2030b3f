"""``artifacts/<run>/study.json``: the multi-seed study."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from kd_trigger.contracts.base import Contract


class Bounds(Contract):
    """A 68% interval."""

    lo68: float | None
    hi68: float | None


class RatioNoise(Contract):
    """Where the uncertainty of a KD/baseline ratio over seeds comes from (:func:`kd_trigger.stats.ratio_noise`):
    stds of the mean per-seed log ratio from the seed-to-seed spread and from the test jets."""

    seeds_std: float | None
    jets_std: float | None
    jets_share: float | None
    """The test jets' share of the variance (0-1)."""
    test_scale_for_quarter: float | None
    """How many times larger the test split would have to be for the jets to make a quarter of it."""


class Interval(Contract):
    """A KD/baseline ratio over seeds: the mean of the per-seed ratios and its 68% interval, the wider of
    a hierarchical bootstrap (seeds, then the test jets within each seed, the same jets for both models)
    and a Student-t interval of the per-seed log ratios; ``method`` names the one ``lo68``/``hi68`` are."""

    mean: float | None
    lo68: float | None
    hi68: float | None
    per_seed: list[float | None]
    method: Literal["hierarchical_bootstrap", "t_log_ratio"] | None = None
    geometric_mean: float | None = None
    """exp(mean of the per-seed log ratios): the centre of the t interval."""
    hierarchical_bootstrap: Bounds | None = None
    t_log_ratio: Bounds | None = None
    noise: RatioNoise | None = None
    """R30 of two-class data: the seeds' and the test jets' parts of the uncertainty (None elsewhere)."""


class KdOverBaseline(Contract):
    rejection_at_30: Interval
    rejection_at_50: Interval
    auc: Interval
    accuracy_at_beta: dict[str, Interval] = Field(default_factory=dict)
    """Keyed by the boost velocity beta as text ("0.9")."""
    accuracy_difference_points: Interval | None = None
    """Accuracy of KD minus the baseline's, in percentage points (a difference, not a ratio; same
    replicas as the ratios: :mod:`kd_trigger.class_stats`). None in a study written before issue 24."""
    rejection_at_50_by_class: dict[str, Interval] = Field(default_factory=dict)
    """More than two classes: per class name, the KD/baseline ratio of that class's rejection of all the
    others at 50% of its efficiency (one vs rest). Two classes: empty (``rejection_at_50`` is the signal's)."""


class SeedFigures(Contract):
    """One trained model on the test split (and the validation figure the selection used)."""

    seed: int
    auc: float
    rejection_at_30: float | None
    rejection_at_50: float | None
    accuracy: float
    accuracy_at_beta: dict[str, float] = Field(default_factory=dict)
    rejection_at_30_jet_noise: float | None = None
    """Half the 68% width of this model's R30 over test-jet resamples, relative to R30
    (:func:`kd_trigger.stats.jet_noise`): the test split's share of the seed-to-seed spread."""
    val_selection: float | None = None
    best_epoch: int = 0
    train_seconds: float = 0.0


class StudySetting(Contract):
    teacher: str
    temperature: float
    kd_weight: float
    chosen: bool = False
    """The setting the validation split picked for this student and teacher."""
    val_selection_ratio: float | None = None
    kd: list[SeedFigures]
    kd_over_baseline: KdOverBaseline


class LowDataPoint(Contract):
    train_fraction: float
    n_train: int
    teacher: str
    temperature: float
    kd_weight: float
    baseline: list[SeedFigures]
    kd: list[SeedFigures]
    kd_over_baseline: KdOverBaseline


ARMS = ("baseline", "kd", "baseline_augmented", "kd_augmented")
"""The four arms of the augmentation control, in the order the tables show them."""

COMPARISONS = {
    "kd_over_baseline": ("kd", "baseline"),
    "augmented_over_baseline": ("baseline_augmented", "baseline"),
    "kd_over_augmented": ("kd", "baseline_augmented"),
    "kd_augmented_over_augmented": ("kd_augmented", "baseline_augmented"),
}
"""The accuracy ratios of the control (numerator arm, denominator arm): does KD beat augmentation
(kd_over_augmented), does it add to it (kd_augmented_over_augmented)?"""


class AugmentationArms(Contract):
    """The augmentation control of one student: baseline and KD (the chosen teacher and setting) trained
    again on boosted jets (random transverse boosts up to ``beta_max``), the same seeds."""

    beta_max: float
    teacher: str
    temperature: float
    kd_weight: float
    baseline_augmented: list[SeedFigures]
    kd_augmented: list[SeedFigures]
    accuracy: dict[str, dict[str, float | None]]
    """beta (text) -> arm (:data:`ARMS`) -> accuracy at that boost, mean over seeds (per seed: the arms'
    SeedFigures)."""
    ratios: dict[str, dict[str, Interval]]
    """beta (text) -> comparison (:data:`COMPARISONS`) -> the accuracy ratio over seeds and jets."""
    kd_over_baseline_augmented: KdOverBaseline | None = None
    """KD + augmentation over baseline + augmentation: R30, R50, AUC (unboosted test jets) and accuracy
    at the boosts: does the distillation gain survive augmentation?"""


class StudentStudy(Contract):
    baseline: list[SeedFigures]
    settings: list[StudySetting]
    best: dict[str, Any]
    """The (teacher, temperature, kd_weight) the validation split picked for this student."""
    low_data: list[LowDataPoint] = Field(default_factory=list)
    augmentation: AugmentationArms | None = None
    """The augmentation control (``study.augment_beta_max`` > 0)."""

    def chosen_setting(self) -> StudySetting:
        """The setting named by ``best`` (each teacher also marks its own best one ``chosen``)."""
        for st in self.settings:
            if (st.teacher, st.temperature, st.kd_weight) == (
                self.best.get("teacher"),
                self.best.get("temperature"),
                self.best.get("kd_weight"),
            ):
                return st
        return self.settings[0]


class TeacherSummary(Contract):
    kind: str
    n_particles: int
    auc: float
    rejection_at_30: float | None
    rejection_at_50: float | None
    n_parameters: int
    training_seconds: float


class Study(Contract):
    """``artifacts/<run>/study.json``."""

    run: str
    seeds: list[int]
    select_on: str
    n_test: int
    n_test_background: int
    teachers: dict[str, TeacherSummary]
    students: dict[str, StudentStudy]
    seconds: float
    paper: dict[str, Any]
    interval_method: str | None = None
    """How every KD/baseline interval is made and which of its two intervals the headline uses."""
