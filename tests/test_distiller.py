"""Wiring of the distillation loss and of the Distiller's training step.

The loss is recomputed by hand in numpy with T != 1 and w not in {0, 1}: a missing T^2, a KL with teacher
and student swapped, or w and 1 - w swapped, each give a different number and fail these tests.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from kd_trigger.config import DistillConfig, StudentConfig
from kd_trigger.distill.distiller import Distiller
from kd_trigger.models.students import build_student

T = 2.5
W = 0.3
SPEC = StudentConfig(name="s", kind="mlp", n_particles=4, hidden=(8,))


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _ce(labels: np.ndarray, logits: np.ndarray) -> float:
    p = _softmax(logits.astype(np.float64))
    return float(np.mean(-np.log(p[np.arange(len(labels)), labels])))


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    return float(np.mean(np.sum(p * (np.log(p) - np.log(q)), axis=1)))


def _hand_loss(labels, s_logits, t_logits, temperature=T, w=W) -> tuple[float, float, float]:
    s, t = s_logits.astype(np.float64), t_logits.astype(np.float64)
    ce = _ce(labels, s)
    kd = temperature**2 * _kl(_softmax(t / temperature), _softmax(s / temperature))
    return (1 - w) * ce + w * kd, ce, kd


def _teacher() -> tf.keras.Model:
    inp = tf.keras.Input((5, 4))
    x = tf.keras.layers.Flatten()(inp)
    x = tf.keras.layers.Dense(6, activation="relu")(x)
    return tf.keras.Model(inp, tf.keras.layers.Dense(2)(x))


def _batch(n: int = 16, seed: int = 0):
    rng = np.random.default_rng(seed)
    x_s = rng.normal(0, 1.5, (n, 4, 7)).astype(np.float32)
    x_t = rng.normal(0, 1.0, (n, 5, 4)).astype(np.float32)
    y = rng.integers(0, 2, n).astype(np.int32)
    return x_s, x_t, y


@pytest.fixture(scope="module")
def models():
    tf.keras.utils.set_random_seed(5)
    return build_student(SPEC), _teacher()


def test_loss_matches_hand_computation(models) -> None:
    student, teacher = models
    x_s, x_t, y = _batch()
    # teacher logits with a clear spread so the KL is not tiny
    t_logits = 3.0 * teacher.predict(x_t, verbose=0)
    d = Distiller(student, temperature=T, kd_weight=W)
    parts = d.compute_losses({"student": x_s, "teacher_logits": t_logits}, y, training=False)
    s_logits = student.predict(x_s, verbose=0)
    loss, ce, kd = _hand_loss(y, s_logits, t_logits)
    np.testing.assert_allclose(float(parts["ce"]), ce, rtol=1e-5)
    np.testing.assert_allclose(float(parts["kd"]), kd, rtol=1e-5)
    np.testing.assert_allclose(float(parts["loss"]), loss, rtol=1e-5)

    # the wrong wirings give numbers far outside the tolerance
    kl = _kl(_softmax(t_logits / T), _softmax(s_logits / T))
    wrong = {
        "no T^2": (1 - W) * ce + W * kl,
        "swapped KL": (1 - W) * ce + W * T**2 * _kl(_softmax(s_logits / T), _softmax(t_logits / T)),
        "swapped w": W * ce + (1 - W) * kd,
    }
    for name, value in wrong.items():
        assert abs(value - loss) > 1e-3 * abs(loss), name

    # Keras' own evaluation through test_step reports the same numbers
    d.compile(optimizer=tf.keras.optimizers.Adam(1e-3))
    ev = d.evaluate(
        {"student": x_s, "teacher_logits": t_logits}, y, batch_size=len(y), verbose=0, return_dict=True
    )
    np.testing.assert_allclose([ev["loss"], ev["ce"], ev["kd"]], [loss, ce, kd], rtol=1e-5)
    np.testing.assert_allclose(ev["accuracy"], np.mean(np.argmax(s_logits, 1) == y))


def test_live_teacher_equals_precomputed_logits(models) -> None:
    student, teacher = models
    x_s, x_t, y = _batch(seed=1)
    d_live = Distiller(student, teacher=teacher, temperature=T, kd_weight=W)
    d_pre = Distiller(student, temperature=T, kd_weight=W)
    live = d_live.compute_losses({"student": x_s, "teacher": x_t}, y, training=False)
    pre = d_pre.compute_losses(
        {"student": x_s, "teacher_logits": teacher.predict(x_t, verbose=0)}, y, training=False
    )
    np.testing.assert_allclose(float(live["loss"]), float(pre["loss"]), rtol=1e-6)
    loss, _, _ = _hand_loss(y, student.predict(x_s, verbose=0), teacher.predict(x_t, verbose=0))
    np.testing.assert_allclose(float(live["loss"]), loss, rtol=1e-5)


def test_temperature_squared_factor(models) -> None:
    """kd is exactly T^2 times the KL of the softened distributions, at several temperatures."""
    student, _ = models
    x_s, _, y = _batch(seed=2)
    rng = np.random.default_rng(9)
    t_logits = rng.normal(0, 3, (len(y), 2)).astype(np.float32)
    s_logits = student.predict(x_s, verbose=0)
    for temperature in (1.0, 2.0, 4.0):
        d = Distiller(student, temperature=temperature, kd_weight=1.0)
        kd = float(d.compute_losses({"student": x_s, "teacher_logits": t_logits}, y, training=False)["kd"])
        kl = _kl(_softmax(t_logits / temperature), _softmax(s_logits.astype(np.float64) / temperature))
        np.testing.assert_allclose(kd / kl, temperature**2, rtol=1e-4)
        # with w = 1 the loss is the KD term alone
        loss = float(
            d.compute_losses({"student": x_s, "teacher_logits": t_logits}, y, training=False)["loss"]
        )
        np.testing.assert_allclose(loss, kd, rtol=1e-6)


def test_baseline_is_cross_entropy(models) -> None:
    student, _ = models
    x_s, _, y = _batch(seed=3)
    t_logits = np.random.default_rng(0).normal(0, 3, (len(y), 2)).astype(np.float32)
    d = Distiller(student, temperature=T, kd_weight=0.0)
    parts = d.compute_losses({"student": x_s, "teacher_logits": t_logits}, y, training=False)
    np.testing.assert_allclose(float(parts["loss"]), _ce(y, student.predict(x_s, verbose=0)), rtol=1e-5)
    assert float(parts["kd"]) > 0  # still logged for comparison
    with pytest.raises(ValueError, match="kd_weight > 0 needs"):
        Distiller(student, temperature=T, kd_weight=0.5).compute_losses({"student": x_s}, y, training=False)


def test_only_student_trains_and_gradients_reach_every_variable() -> None:
    tf.keras.utils.set_random_seed(11)
    student, teacher = build_student(SPEC), _teacher()
    x_s, x_t, y = _batch(n=64, seed=4)
    d = Distiller(student, teacher=teacher, temperature=T, kd_weight=W)

    with tf.GradientTape() as tape:
        loss = d.compute_losses({"student": x_s, "teacher": x_t}, y, training=True)["loss"]
    grads = tape.gradient(loss, student.trainable_variables + teacher.variables)
    n_student = len(student.trainable_variables)
    assert n_student == 4  # kernels and biases of dense_0 and output
    for var, g in zip(student.trainable_variables, grads[:n_student], strict=True):
        assert (
            g is not None and float(tf.reduce_max(tf.abs(g))) > 0
        ), var.name  # straight through the quantizers
    assert all(g is None for g in grads[n_student:])  # the teacher is outside the graph of gradients

    teacher_before = [w.copy() for w in teacher.get_weights()]
    student_before = [w.copy() for w in student.get_weights()]
    d.compile(optimizer=tf.keras.optimizers.Adam(1e-2))
    hist = d.fit({"student": x_s, "teacher": x_t}, y, batch_size=16, epochs=2, verbose=0).history
    assert set(hist) == {"loss", "ce", "kd", "accuracy"}
    for before, after in zip(teacher_before, teacher.get_weights(), strict=True):
        assert np.array_equal(before, after)
    assert any(not np.array_equal(b, a) for b, a in zip(student_before, student.get_weights(), strict=True))


def test_train_student_same_start_and_early_stopping() -> None:
    """train_student: restores the best epoch; two runs with the same seed and weights are identical."""
    from kd_trigger.distill.training import train_student

    rng = np.random.default_rng(0)
    n = 256
    x = rng.normal(0, 1, (n, 4, 7)).astype(np.float32)
    y = (x[:, 0, 0] > 0).astype(np.int32)
    t = np.stack([-x[:, 0, 0], x[:, 0, 0]], axis=1).astype(np.float32) * 3
    dcfg = DistillConfig(epochs=4, batch_size=32, patience=2, monitor="ce", temperature=T, kd_weight=W)
    tf.keras.utils.set_random_seed(1)
    init = build_student(SPEC).get_weights()
    runs = []
    for _ in range(2):
        s = build_student(SPEC)
        s.set_weights(init)
        rec = train_student(s, dcfg, "kd", (x[:192], y[:192], t[:192]), (x[192:], y[192:], t[192:]), seed=3)
        runs.append((s.get_weights(), rec))
    (w1, r1), (w2, r2) = runs
    assert all(np.array_equal(a, b) for a, b in zip(w1, w2, strict=True))
    assert r1.history == r2.history
    val_ce = r1.history["val_ce"]
    assert r1.best_epoch == int(np.argmin(val_ce)) + 1
    assert set(r1.history) == {"loss", "ce", "kd", "accuracy", "val_loss", "val_ce", "val_kd", "val_accuracy"}
    s = build_student(SPEC)
    s.set_weights(w1)
    d = Distiller(s, temperature=T, kd_weight=W)
    d.compile(optimizer="adam")
    ev = d.evaluate(
        {"student": x[192:], "teacher_logits": t[192:]}, y[192:], batch_size=4096, verbose=0, return_dict=True
    )
    np.testing.assert_allclose(ev["ce"], min(val_ce), rtol=1e-5)  # the best epoch's weights were restored
