"""How students are trained: the ``distill`` section, and the experiments that train many of them
(``study``: the KD grid, ``scan``: the design scan)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator

from kd_trigger.config.base import Section


class AugmentConfig(Section):
    """The augmentation control (:mod:`kd_trigger.data.augment`): random Lorentz boosts of the training jets."""

    beta_max: Annotated[float, Field(ge=0, lt=1)] = 0.0
    """Every epoch every training jet is boosted by a velocity uniform in [0, beta_max) along a random
    transverse axis, and its student inputs recomputed (0: off). Baseline and distilled students alike;
    the teacher's logits for KD stay those of the unboosted jet."""


class LrPlateauConfig(Section):
    """Multiply the learning rate by ``factor`` after every ``patience`` eligible epochs without a better
    validation value (the quantity early stopping watches), down to ``min_learning_rate``. With a constant
    rate the weights still jump from epoch to epoch when training stops; a smaller rate near the end is a
    lever on the seed-to-seed spread (issue 23)."""

    factor: Annotated[float, Field(gt=0, lt=1)] = 0.5
    patience: Annotated[int, Field(ge=1)] = 5
    """Epochs without improvement per decay; below ``distill.patience`` or early stopping comes first."""
    min_learning_rate: Annotated[float, Field(ge=0)] = 1e-5


class DistillConfig(Section):
    temperature: Annotated[float, Field(gt=0, le=100)] = 2.0
    kd_weight: Annotated[float, Field(ge=0, le=1)] = 0.9
    """w in (1 - w) * CE + w * T^2 * KL."""
    epochs: Annotated[int, Field(ge=1)] = 400
    """A cap; early stopping (``patience``) ends training. Students are cheap (~0.6 s per epoch on 36k
    jets). Deep Sets converges slowly: at a cap of 150 its best epochs were 141-150 and distillation
    looked useless (R30 ratio 0.85 [0.69, 1.00] from lorentznet16, T=2, w=0.9); trained until the
    validation loss stops improving (best epochs ~150-400) the same setting gave 1.50 [1.20, 1.85]
    (the default study, 3 seeds)."""
    batch_size: Annotated[int, Field(ge=1)] = 256
    learning_rate: Annotated[float, Field(gt=0, le=1)] = 2e-3
    patience: Annotated[int, Field(ge=1)] = 20
    monitor: Literal["loss", "ce", "accuracy"] = "loss"
    """Early stopping quantity on the validation split: the model's own objective ("loss"),
    the cross-entropy with the labels ("ce") or accuracy."""
    train_fraction: Annotated[float, Field(gt=0, le=1)] = 1.0
    """Train on this fraction of the training split (low-data studies)."""
    boost_betas: tuple[Annotated[float, Field(ge=0, lt=1)], ...] = tuple(round(0.1 * i, 1) for i in range(10))
    rejection_bootstrap: Annotated[int, Field(ge=0, le=10_000)] = 200
    augment: AugmentConfig = AugmentConfig()
    ema_decay: Annotated[float, Field(ge=0, lt=1)] = 0.0
    """Weight averaging (0: off): an exponential moving average, updated after every batch, of the float
    shadow weights QKeras quantizes; validation, early stopping, evaluation and deployment use the averaged
    weights (quantized by the same quantizers, so the deployed model is still what the firmware computes)."""
    kd_weight_schedule: Literal["constant", "linear"] = "constant"
    """w over the epochs: ``constant``, or ``linear`` from 0 to kd_weight over ``kd_weight_ramp_epochs``
    (epochs of the ramp cannot be kept nor count towards the patience: their losses are not comparable)."""
    kd_weight_ramp_epochs: Annotated[int, Field(ge=1)] = 50
    lr_plateau: LrPlateauConfig | None = None
    """Learning-rate decay on a plateau (None: a constant ``learning_rate``): see :class:`LrPlateauConfig`."""


class KdSetting(Section):
    """One point of the study's KD grid: (1 - w) * CE + w * T^2 * KL."""

    temperature: Annotated[float, Field(gt=0, le=100)]
    kd_weight: Annotated[float, Field(gt=0, le=1)]


class DaskWork(Section):
    """Where a section's independent jobs (the study's trainings, the scan's points) run."""

    workers: Annotated[int, Field(ge=1, le=256)] = 2
    """Process workers of the local Dask cluster (ignored with ``scheduler``)."""
    scheduler: str | None = None
    """Address of a running Dask scheduler (tcp://host:port): the jobs run on its workers."""

    @field_validator("scheduler")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[a-z][a-z0-9+]*://[^/\s]+", value):
            raise ValueError("expected the address of a Dask scheduler, tcp://HOST:PORT")
        return value


class StudyConfig(DaskWork):
    """``make study``: every studied student, a label-only baseline and distilled copies, over ``seeds``
    seeds with the initial weights shared per seed; by default at the pairing each student ships with."""

    seeds: Annotated[int, Field(ge=1, le=20)] = 5
    """Seeds per arm. Three could not see the Deep Sets spread (issue 23: a fourth measurement of one seed
    fell outside the 3-seed interval); the t interval of the per-seed log ratios needs several."""
    grid: tuple[KdSetting, ...] | None = Field(default=None, min_length=1)
    """The (T, w) settings to search per studied teacher (the validation split picks). None (default): each
    student at its own deployed setting (``students[].temperature`` / ``kd_weight``, else ``distill``'s),
    so the default study quotes the pairing the pipeline ships, within 90 minutes on 2 cores (a search
    multiplies the trainings; see configs/study_search.yaml)."""
    teachers: tuple[str, ...] | None = None
    """Teacher names to study. None: each student's own teacher without ``grid``, every configured
    teacher with it."""
    students: tuple[str, ...] | None = None
    """Student names to study (None: every configured student)."""
    train_fractions: tuple[Annotated[float, Field(gt=0, lt=1)], ...] = ()
    """The low-data curve: the chosen setting again on these fractions of the training split (off by
    default: two more trainings per student, fraction and seed)."""
    select_on: Annotated[str, Field(pattern=r"^(rejection_at_50|auc|accuracy|r(30|50):[a-z]+)$")] = (
        "rejection_at_50"
    )
    """``rejection_at_50`` / ``auc`` (two classes, or the last class against the rest), ``accuracy``, or
    ``r50:<class>`` / ``r30:<class>`` (the rejection of the other classes at 50% / 30% efficiency of a
    class of ``data.classes``: the figures of merit of N-class data). What picks a setting (and a teacher) per student, as the mean KD/baseline ratio on the VALIDATION
    split: R30 on its ~3k background jets rests on a handful of jets and would pick noise."""
    bootstrap: Annotated[int, Field(ge=10, le=10_000)] = 200
    augment_beta_max: Annotated[float, Field(ge=0, lt=1)] = 0.9
    """The augmentation control (0: off): two more arms per student, baseline + augmentation and KD +
    augmentation (the chosen teacher and setting), trained with ``distill.augment.beta_max`` set to this.
    0.9 covers the largest boost the robustness is judged at (``robustness_betas``)."""
    robustness_betas: tuple[Annotated[float, Field(gt=0, lt=1)], ...] = (0.5, 0.9)
    """Boost velocities at which the arms' accuracies and their ratios are compared."""


class ScanAxes(Section):
    """The values a design scan tries for one student kind; an axis left out keeps the student's value.

    An axis given must list at least one value (an empty list is refused, naming its key).
    """

    weight_bits: tuple[Annotated[int, Field(ge=2, le=16)], ...] | None = Field(default=None, min_length=1)
    activation_bits: tuple[Annotated[int, Field(ge=2, le=16)], ...] | None = Field(default=None, min_length=1)
    input_bits: tuple[Annotated[int, Field(ge=2, le=32)], ...] | None = Field(default=None, min_length=1)
    late_weight_bits: tuple[Annotated[int, Field(ge=2, le=16)], ...] | None = Field(
        default=None, min_length=1
    )
    """Weight bits of every weight layer after the first (``quant.layers.<layer>.weight_bits``); the
    first layer keeps ``weight_bits``. One number per point, so random/LHS sampling treats it like any
    other axis. The first layer sees the raw inputs, so it keeps its width (issue 20's benchmark, later
    layers at 4 bits: MLP AUC 0.9602 vs 0.9609 at 125,874 vs 147,059 RTL LUT)."""
    hidden: tuple[tuple[Annotated[int, Field(ge=1, le=1024)], ...], ...] | None = Field(
        default=None, min_length=1
    )
    """MLP: the hidden widths; Deep Sets: the phi widths."""
    head: tuple[tuple[Annotated[int, Field(ge=1, le=1024)], ...], ...] | None = Field(
        default=None, min_length=1
    )
    """Deep Sets: the rho widths after pooling."""
    n_particles: tuple[Annotated[int, Field(ge=1, le=200)], ...] | None = Field(default=None, min_length=1)
    sparsity: tuple[Annotated[float, Field(ge=0, lt=1)], ...] | None = Field(default=None, min_length=1)
    """Pruning target (``students[].sparsity``): the fraction of zero kernel weights."""
    ii_cycles: tuple[Annotated[int, Field(ge=1)], ...] | None = Field(default=None, min_length=1)
    """Deep Sets only: folding (``students[].ii_cycles``), the II in clock cycles."""
    reuse_factor: tuple[Annotated[int, Field(ge=1)], ...] | None = Field(default=None, min_length=1)
    flow: tuple[Literal["hls4ml", "rtl"], ...] | None = Field(default=None, min_length=1)


def _default_scan_axes() -> dict[Literal["mlp", "deepsets"], ScanAxes]:
    """The default scan: the cost levers around the deployed students, RTL flow (Yosys decides), 8 points.

    MLP: pruning 75% / 90% x 6- / 8-bit weights; Deep Sets (folded at the budget's II): later layers at
    4 / 6 bits x pruning 0 / 50%. The cost-lever benchmark chose these levers (pruning halves an MLP's
    LUTs at no AUC cost; narrowing the later layers saves most in the folded Deep Sets); the grid is kept to
    8 points so that baseline and KD copies, three seeds on the fronts and Yosys fit the 90-minute target.
    """
    return {
        "mlp": ScanAxes(sparsity=(0.75, 0.9), weight_bits=(6, 8), flow=("rtl",)),
        "deepsets": ScanAxes(late_weight_bits=(4, 6), sparsity=(0.0, 0.5), flow=("rtl",)),
    }


class ScanConfig(DaskWork):
    """``make scan``: KD-trained, converted, exactness-gated and measured designs over ``axes``."""

    axes: dict[Literal["mlp", "deepsets"], ScanAxes] = Field(default_factory=_default_scan_axes)
    """Per student kind; the base design is the configured student of that kind. A config that sets
    ``axes`` replaces the default grid (see :func:`_default_scan_axes`: 4 points per kind)."""
    mode: Literal["grid", "random", "lhs"] = "grid"
    points: Annotated[int, Field(ge=1)] | None = None
    """random/lhs: how many points; grid: the most points allowed (None: the whole grid)."""
    seed: Annotated[int, Field(ge=0)] = 0
    objective: Annotated[
        str, Field(pattern=r"^(auc|rejection_at_30|rejection_at_50|accuracy|r(30|50):[a-z]+)$")
    ] = "rejection_at_30"
    """The physics figure the Pareto fronts and the promotion of the best design use (on the test split):
    R30 by default (a trigger cuts at a fixed signal efficiency, so rejection is what it buys; AUC hides the
    tail that matters), ``auc``, or for N-class data ``accuracy`` / ``r30:<class>`` / ``r50:<class>`` (the
    class's rejection of the others)."""
    epochs: Annotated[int, Field(ge=1)] | None = None
    """Training epochs per point (None: distill.epochs)."""
    front_seeds: Annotated[int, Field(ge=0, le=32)] = 3
    """Seeds per front design (run.seed + 0 .. front_seeds - 1; 0 or 1: no retraining): one training per
    point is noise for Deep Sets, so the KD saving is given over seeds, median and [min, max]."""
    front_points: Annotated[int, Field(ge=1, le=64)] = 3
    """How many designs of each kind's KD front are retrained with ``front_seeds`` seeds (spread along it)."""
