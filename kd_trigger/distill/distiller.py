"""The Distiller: trains a student on (1 - w) * CE(labels) + w * T^2 * KL(teacher || student).

Each batch is ``(inputs, labels)`` with ``inputs`` a dict holding ``"student"`` (the student's input) and
either ``"teacher_logits"`` (precomputed by the teacher stage: much cheaper on CPU) or ``"teacher"`` (the
teacher's input, for a live teacher model given to the constructor). The teacher is frozen and always
called with ``training=False``; only the student's trainable variables get gradients.
With ``kd_weight = 0`` the same class is the label-only baseline (the KD term is still logged when teacher
logits are available, so both runs report the same quantities).
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from kd_trigger.distill.losses import cross_entropy, kd_term


class Distiller(tf.keras.Model):
    """Wraps a student (and optionally a live teacher); logs ``loss``, ``ce``, ``kd`` and ``accuracy``."""

    def __init__(
        self,
        student: tf.keras.Model,
        teacher: tf.keras.Model | None = None,
        temperature: float = 1.0,
        kd_weight: float = 0.0,
        ema_decay: float = 0.0,
        kd_ramp: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        if not 0.0 <= kd_weight <= 1.0:
            raise ValueError(f"kd_weight must be in [0, 1], got {kd_weight}")
        self.student = student
        self.teacher = teacher
        if teacher is not None:
            teacher.trainable = False
        if not 0.0 <= ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {ema_decay}")
        self.temperature = float(temperature)
        self.kd_weight = float(kd_weight)
        # A schedule for w scales it by kd_scale (set per epoch by the training loop); without one w stays
        # a Python constant, so the constant-w loss is computed exactly as it always was.
        self.kd_scale = tf.Variable(1.0, trainable=False, dtype=tf.float32) if kd_ramp else None
        # Weight averaging: the float shadow weights (what QKeras quantizes in every forward pass), averaged
        # after every step; swapped in for validation and kept at the end, so the deployed model is the
        # quantized average, on the quantizer grid like any QKeras model.
        self.ema_decay = float(ema_decay)
        self.ema = (
            [tf.Variable(v.read_value(), trainable=False) for v in student.trainable_variables]
            if ema_decay > 0
            else []
        )
        self.loss_tracker = tf.keras.metrics.Mean(name="loss")
        self.ce_tracker = tf.keras.metrics.Mean(name="ce")
        self.kd_tracker = tf.keras.metrics.Mean(name="kd")
        self.acc_metric = tf.keras.metrics.SparseCategoricalAccuracy(name="accuracy")

    @property
    def metrics(self) -> list[tf.keras.metrics.Metric]:
        # Listed here so Keras resets them at the start of every epoch and of every evaluation.
        return [self.loss_tracker, self.ce_tracker, self.kd_tracker, self.acc_metric]

    def call(self, inputs: Any, training: bool = False) -> tf.Tensor:
        if isinstance(inputs, dict):
            inputs = inputs["student"]
        return self.student(inputs, training=training)

    def _teacher_logits(self, inputs: Any) -> tf.Tensor | None:
        if not isinstance(inputs, dict):
            return None
        if "teacher_logits" in inputs:
            return tf.stop_gradient(tf.cast(inputs["teacher_logits"], tf.float32))
        if "teacher" in inputs:
            if self.teacher is None:
                raise ValueError("batch holds teacher inputs but the Distiller has no teacher model")
            return tf.stop_gradient(self.teacher(inputs["teacher"], training=False))
        return None

    def compute_losses(self, inputs: Any, labels: tf.Tensor, training: bool) -> dict[str, tf.Tensor]:
        """The loss parts on one batch: ``loss``, ``ce``, ``kd`` (T^2 * KL, zero without a teacher), ``logits``."""
        teacher_logits = self._teacher_logits(inputs)
        if self.kd_weight > 0 and teacher_logits is None:
            raise ValueError("kd_weight > 0 needs 'teacher_logits' or 'teacher' inputs in every batch")
        logits = self(inputs, training=training)
        ce = cross_entropy(labels, logits)
        kd = kd_term(teacher_logits, logits, self.temperature) if teacher_logits is not None else tf.zeros(())
        if self.kd_weight > 0 and self.kd_scale is not None:
            w = self.kd_weight * self.kd_scale
            loss = (1.0 - w) * ce + w * kd
        else:
            loss = (1.0 - self.kd_weight) * ce + self.kd_weight * kd if self.kd_weight > 0 else ce
        return {"loss": loss, "ce": ce, "kd": kd, "logits": logits}

    def _update(self, parts: dict[str, tf.Tensor], labels: tf.Tensor) -> dict[str, tf.Tensor]:
        self.loss_tracker.update_state(parts["loss"])
        self.ce_tracker.update_state(parts["ce"])
        self.kd_tracker.update_state(parts["kd"])
        self.acc_metric.update_state(tf.reshape(labels, [-1]), parts["logits"])
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data: Any) -> dict[str, tf.Tensor]:
        inputs, labels = data[0], data[1]
        with tf.GradientTape() as tape:
            parts = self.compute_losses(inputs, labels, training=True)
        variables = self.student.trainable_variables
        grads = tape.gradient(parts["loss"], variables)
        self.optimizer.apply_gradients(zip(grads, variables, strict=True))
        if self.ema:
            for average, v in zip(self.ema, variables, strict=True):
                average.assign(self.ema_decay * average + (1.0 - self.ema_decay) * v)
        return self._update(parts, labels)

    def swap_ema(self) -> None:
        """Exchange the student's trainable weights and their averages (twice: back as they were)."""
        for average, v in zip(self.ema, self.student.trainable_variables, strict=True):
            held = v.read_value()
            v.assign(average)
            average.assign(held)

    def test_step(self, data: Any) -> dict[str, tf.Tensor]:
        inputs, labels = data[0], data[1]
        parts = self.compute_losses(inputs, labels, training=False)
        return self._update(parts, labels)
