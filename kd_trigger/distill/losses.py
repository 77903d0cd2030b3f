"""The knowledge-distillation loss, as TensorFlow functions (the numpy twin lives in the tests on purpose)."""

from __future__ import annotations

from typing import Any


def cross_entropy(labels: Any, logits: Any) -> Any:
    """Mean cross-entropy of integer ``labels`` (N,) against ``logits`` (N, C)."""
    import tensorflow as tf

    labels = tf.cast(tf.reshape(labels, [-1]), tf.int32)
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))


def kd_term(teacher_logits: Any, student_logits: Any, temperature: float) -> Any:
    """``T**2 * mean_batch KL(softmax(teacher / T) || softmax(student / T))``.

    The ``T**2`` keeps the gradient scale of the soft term comparable across temperatures (Hinton et al.).
    The teacher distribution is the target (first argument of the KL): swapping them trains a different thing.
    """
    import tensorflow as tf

    t = tf.constant(temperature, tf.float32)
    teacher_logits = tf.stop_gradient(tf.cast(teacher_logits, tf.float32))
    log_p_t = tf.nn.log_softmax(teacher_logits / t, axis=-1)
    log_p_s = tf.nn.log_softmax(tf.cast(student_logits, tf.float32) / t, axis=-1)
    kl = tf.reduce_sum(tf.exp(log_p_t) * (log_p_t - log_p_s), axis=-1)
    return t * t * tf.reduce_mean(kl)
