"""The augmentation control and the training levers of issue 23: per-jet random boosts (mass kept, beta
bounded, reproducible, the robustness test's boost), weight averaging (EMA) and the schedule for w."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from kd_trigger.config import DistillConfig, StudentConfig, parse_config
from kd_trigger.data.augment import BoostAugmenter, random_boosts
from kd_trigger.data.boost import boost
from kd_trigger.data.features import jet_kinematics, particle_features
from kd_trigger.distill.distiller import Distiller
from kd_trigger.distill.training import boost_augmenter, train_student
from kd_trigger.models.students import build_student, student_inputs

SPEC = StudentConfig(name="s", kind="mlp", n_particles=4, hidden=(8,))


def _jets(n: int = 50, m: int = 6, seed: int = 0) -> np.ndarray:
    """Massive-ish constituents (E > |p|), the last row of every jet zero padding."""
    rng = np.random.default_rng(seed)
    p = rng.normal(0, 20, (n, m, 3)) + np.array([60.0, 10.0, 30.0])
    e = np.sqrt(np.sum(p**2, axis=-1) + rng.uniform(0, 1, (n, m)))
    c = np.concatenate([e[..., None], p], axis=-1)
    c[:, -1] = 0.0
    return c.astype(np.float32)


def test_random_boosts_respect_the_bound_are_transverse_and_reproducible() -> None:
    beta, axes = random_boosts(5000, 0.7, seed=3, epoch=2)
    assert beta.shape == (5000,) and axes.shape == (5000, 3)
    assert beta.min() >= 0.0 and beta.max() < 0.7 and beta.max() > 0.69  # uniform up to the bound
    assert np.allclose(np.linalg.norm(axes, axis=1), 1.0) and np.all(axes[:, 2] == 0.0)
    again = random_boosts(5000, 0.7, seed=3, epoch=2)
    assert np.array_equal(beta, again[0]) and np.array_equal(axes, again[1])
    other = random_boosts(5000, 0.7, seed=3, epoch=3)
    assert not np.array_equal(beta, other[0])  # a fresh draw every epoch
    with pytest.raises(ValueError, match=r"beta_max must be in \[0, 1\), got 1.0"):
        random_boosts(3, 1.0, 0, 1)


def test_the_per_jet_boost_is_the_robustness_boost_jet_by_jet_and_keeps_the_mass() -> None:
    c = _jets().astype(np.float64)
    beta, axes = random_boosts(len(c), 0.9, seed=1, epoch=1)
    boosted = boost(c, beta, axes)
    for i in (0, 7, 49):
        assert np.allclose(boosted[i], boost(c[i], float(beta[i]), axes[i]), rtol=1e-12, atol=1e-9)
    mass = jet_kinematics(c)[:, 3]
    assert np.allclose(jet_kinematics(boosted)[:, 3], mass, rtol=1e-5, atol=0)
    assert np.all(boosted[:, -1] == 0.0)  # padding stays padding
    assert not np.allclose(boosted, c)
    with pytest.raises(ValueError, match=r"per-jet boost axes must be \(N, 3\) unit vectors"):
        boost(c, beta, axes * 2)
    with pytest.raises(ValueError, match=r"boost velocity beta must be in \[0, 1\)"):
        boost(c, np.full(len(c), 1.0), axes)


def test_the_augmenter_recomputes_the_features_from_the_boosted_jets() -> None:
    c = _jets()
    aug = BoostAugmenter(c, 0.6, seed=9, features=lambda x: student_inputs(SPEC, x))
    x1 = aug.inputs(1)
    beta, axes = random_boosts(len(c), 0.6, seed=9, epoch=1)
    expected = particle_features(boost(c, beta, axes), SPEC.n_particles, SPEC.features)
    assert np.array_equal(x1, expected)
    assert np.array_equal(x1, aug.inputs(1)) and not np.array_equal(x1, aug.inputs(2))
    assert mass_of(aug.boosted(3)) == pytest.approx(mass_of(c), rel=1e-5)
    dcfg = DistillConfig(augment={"beta_max": 0.6})
    made = boost_augmenter(dcfg, SPEC, c, 9)
    # the student's augmenter keeps the 4 leading particles and the rest summed: the same features
    assert made is not None and made.constituents.shape == (50, 5, 4)
    assert np.allclose(made.inputs(1), x1, rtol=1e-5, atol=1e-5)
    compact = BoostAugmenter(
        _jets(30, 40, 2), 0.9, 1, lambda x: student_inputs(SPEC, x), n_particles=SPEC.n_particles
    )
    full = BoostAugmenter(_jets(30, 40, 2), 0.9, 1, lambda x: student_inputs(SPEC, x))
    assert compact.constituents.shape == (30, 5, 4) and full.constituents.shape == (30, 40, 4)
    assert np.allclose(compact.inputs(4), full.inputs(4), rtol=1e-5, atol=1e-5)
    assert boost_augmenter(DistillConfig(), SPEC, c, 9) is None  # 0 = off


def mass_of(c: np.ndarray) -> list[float]:
    return list(jet_kinematics(np.asarray(c, dtype=np.float64))[:, 3])


def test_the_config_keys_and_their_bounds() -> None:
    cfg = parse_config(
        {
            "distill": {"augment": {"beta_max": 0.5}, "ema_decay": 0.99, "kd_weight_schedule": "linear"},
            "study": {"augment_beta_max": 0.0, "workers": 3},
        }
    )
    assert (cfg.distill.augment.beta_max, cfg.distill.ema_decay) == (0.5, 0.99)
    assert cfg.distill.kd_weight_schedule == "linear" and cfg.distill.kd_weight_ramp_epochs == 50
    assert cfg.study.augment_beta_max == 0.0 and cfg.study.workers == 3
    defaults = parse_config({})
    assert defaults.distill.augment.beta_max == 0.0 and defaults.distill.ema_decay == 0.0
    assert defaults.distill.kd_weight_schedule == "constant"
    assert defaults.study.seeds == 5 and defaults.study.augment_beta_max == 0.9
    assert defaults.study.robustness_betas == (0.5, 0.9)
    # where the trainings run is not part of the study's digest
    assert "workers" not in cfg.study_view()["study"] and "scheduler" not in cfg.study_view()["study"]
    for bad in ({"distill": {"augment": {"beta_max": 1.0}}}, {"distill": {"augment": {"beta": 0.5}}}):
        with pytest.raises(Exception, match="augment"):
            parse_config(bad)


def _data(n: int = 64, seed: int = 0):
    c = _jets(n, 6, seed)
    y = (np.arange(n) % 2).astype(np.int32)
    return c, student_inputs(SPEC, c), y


def _train(dcfg: DistillConfig, c, x, y, augment: bool = False):
    tf.keras.utils.set_random_seed(4)
    student = build_student(SPEC, 2)
    teacher = np.random.default_rng(1).normal(0, 1, (len(y), 2)).astype(np.float32)
    record = train_student(
        student,
        dcfg,
        "kd",
        (x, y, teacher),
        (x, y, teacher),
        seed=4,
        augment=boost_augmenter(dcfg, SPEC, c, 4) if augment else None,
    )
    return student, record


def test_training_with_augmentation_is_reproducible_and_differs_from_without() -> None:
    c, x, y = _data()
    dcfg = DistillConfig(epochs=2, batch_size=16, patience=5, augment={"beta_max": 0.8})
    a, _ = _train(dcfg, c, x, y, augment=True)
    b, _ = _train(dcfg, c, x, y, augment=True)
    plain, _ = _train(dcfg, c, x, y, augment=False)
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        assert np.array_equal(wa, wb)
    assert any(
        not np.array_equal(wa, wp) for wa, wp in zip(a.get_weights(), plain.get_weights(), strict=True)
    )
    with pytest.raises(ValueError, match="the augmentation holds 64 jets, the training split 10"):
        train_student(
            build_student(SPEC, 2),
            dcfg,
            "baseline",
            (x[:10], y[:10], None),
            (x, y, None),
            seed=1,
            augment=boost_augmenter(dcfg, SPEC, c, 1),
        )


def test_ema_averages_the_float_shadow_weights_after_every_step() -> None:
    c, x, y = _data(32)
    tf.keras.utils.set_random_seed(2)
    student = build_student(SPEC, 2)
    distiller = Distiller(student, kd_weight=0.0, ema_decay=0.5)
    distiller.compile(optimizer=tf.keras.optimizers.SGD(learning_rate=0.1))
    shadow = [v.numpy().copy() for v in student.trainable_variables]
    for step in range(3):
        distiller.train_on_batch({"student": x[step * 8 : step * 8 + 8]}, y[step * 8 : step * 8 + 8])
        shadow = [0.5 * s + 0.5 * v.numpy() for s, v in zip(shadow, student.trainable_variables, strict=True)]
    for average, expected in zip(distiller.ema, shadow, strict=True):
        assert np.allclose(average.numpy(), expected, rtol=1e-6, atol=1e-7)
    raw = [v.numpy().copy() for v in student.trainable_variables]
    distiller.swap_ema()
    for v, expected in zip(student.trainable_variables, shadow, strict=True):
        assert np.allclose(v.numpy(), expected, rtol=1e-6, atol=1e-7)
    distiller.swap_ema()
    for v, r in zip(student.trainable_variables, raw, strict=True):
        assert np.array_equal(v.numpy(), r)


def test_training_with_ema_keeps_averaged_float_weights_that_the_quantizers_map_onto_the_grid() -> None:
    c, x, y = _data()
    dcfg = DistillConfig(epochs=3, batch_size=16, patience=5, ema_decay=0.9)
    student, record = _train(dcfg, c, x, y)
    assert record.epochs_run == 3 and {"val_loss", "val_accuracy"} <= set(record.history)
    # The deployed model is the quantized average: every forward pass quantizes the kept float weights,
    # so outputs are those of the kernels' quantized values (the firmware's numbers).
    layer = next(lyr for lyr in student.layers if hasattr(lyr, "kernel_quantizer_internal"))
    kernel = layer.kernel.numpy()
    quantized = layer.kernel_quantizer_internal(kernel).numpy()
    assert np.array_equal(layer.kernel_quantizer_internal(quantized).numpy(), quantized)  # on the grid
    # the kept weights are the average's, not the last step's: the same training without EMA differs
    plain, _ = _train(dcfg.model_copy(update={"ema_decay": 0.0}), c, x, y)
    assert not np.allclose(plain.get_weights()[0], student.get_weights()[0])
    with pytest.raises(ValueError, match="the w ramp of 50 epochs is longer than the cap of 3 epochs"):
        _train(dcfg.model_copy(update={"kd_weight_schedule": "linear"}), c, x, y)


def test_the_linear_w_schedule_ramps_and_holds_back_early_stopping() -> None:
    c, x, y = _data()
    dcfg = DistillConfig(
        epochs=4, batch_size=16, patience=1, kd_weight_schedule="linear", kd_weight_ramp_epochs=3
    )
    student, record = _train(dcfg, c, x, y)
    assert record.best_epoch >= 3  # the ramp's epochs are not eligible
    distiller = Distiller(build_student(SPEC, 2), kd_weight=0.6, kd_ramp=True)
    distiller.kd_scale.assign(0.5)
    teacher = np.random.default_rng(1).normal(0, 1, (8, 2)).astype(np.float32)
    parts = distiller.compute_losses({"student": x[:8], "teacher_logits": teacher}, y[:8], training=False)
    expected = 0.7 * float(parts["ce"]) + 0.3 * float(parts["kd"])  # w = 0.6 * 0.5
    assert float(parts["loss"]) == pytest.approx(expected, rel=1e-6)


def test_the_learning_rate_decays_on_a_plateau_down_to_its_floor() -> None:
    # At a rate of 1e-12 the float32 weights cannot move, so the validation loss never improves after the
    # first epoch: every second stalled epoch halves the rate, until the floor.
    c, x, y = _data()
    plateau = {"factor": 0.5, "patience": 2, "min_learning_rate": 2.5e-13}
    dcfg = DistillConfig(epochs=7, batch_size=16, patience=10, learning_rate=1e-12, lr_plateau=plateau)
    _, record = _train(dcfg, c, x, y)
    assert record.epochs_run == 7 and record.best_epoch == 1
    assert record.history["learning_rate"] == pytest.approx(
        [1e-12, 1e-12, 5e-13, 5e-13, 2.5e-13, 2.5e-13, 2.5e-13]
    )
    _, constant = _train(dcfg.model_copy(update={"lr_plateau": None}), c, x, y)
    assert "learning_rate" not in constant.history
    for bad in ({"factor": 1.0}, {"patience": 0}, {"factr": 0.5}):
        with pytest.raises(Exception, match="lr_plateau"):
            parse_config({"distill": {"lr_plateau": bad}})


def test_a_students_own_patience_stops_its_training_and_only_its_own() -> None:
    # As above, weights that cannot move: the best epoch is the first, so training stops after
    # 1 + patience epochs, the student's patience where it sets one and distill.patience elsewhere.
    c, x, y = _data()
    cfg = parse_config(
        {
            "distill": {"epochs": 9, "batch_size": 16, "patience": 5, "learning_rate": 1e-12},
            "students": {"deepsets": {"patience": 2}},
        }
    )
    own, shared = cfg.distill_for(cfg.student("deepsets")), cfg.distill_for(cfg.student("mlp"))
    assert (own.patience, shared.patience) == (2, 5)
    assert (own.temperature, own.kd_weight) == cfg.kd_setting(cfg.student("deepsets"))
    assert [_train(d, c, x, y)[1].epochs_run for d in (own, shared)] == [3, 6]
    with pytest.raises(Exception, match="patience"):
        parse_config({"students": {"mlp": {"patience": 0}}})
