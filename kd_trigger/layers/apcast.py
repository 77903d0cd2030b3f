"""``(T) v`` for an ``ap_[u]fixed`` T: its quantization mode, then its overflow mode, in numpy and in
TensorFlow (float64, exact below 2**53). Shared by every reference layer that emulates a configured type."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from kd_trigger.fixed import FixedType

_ROUNDING_NP: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "TRN": np.floor,
    "TRN_ZERO": np.trunc,
    "RND": lambda v: np.floor(v + 0.5),
    "RND_ZERO": lambda v: np.sign(v) * np.ceil(np.abs(v) - 0.5),
    "RND_MIN_INF": lambda v: np.ceil(v - 0.5),
    "RND_INF": lambda v: np.sign(v) * np.floor(np.abs(v) + 0.5),
    "RND_CONV": np.rint,
}
"""ap_fixed's quantization modes on values in units of the target LSB (numpy twin of :data:`_ROUNDING`)."""


def ap_cast_np(values: Any, t: FixedType) -> np.ndarray:
    """``(T) v`` in numpy float64: T's rounding mode, then its overflow mode (as :func:`ap_cast`)."""
    codes = _ROUNDING_NP[t.rounding](np.asarray(values, dtype=np.float64) * 2.0**t.fractional)
    lo, hi = float(t.min_code), float(t.max_code)
    if t.saturation == "WRAP":
        base = -(2.0 ** (t.width - 1)) if t.signed else 0.0
        codes = np.mod(codes - base, 2.0**t.width) + base
    elif t.saturation == "SAT_ZERO":
        codes = np.where((codes < lo) | (codes > hi), 0.0, codes)
    else:
        codes = np.clip(codes, lo, hi)
    return codes / 2.0**t.fractional


_ROUNDING = {
    "TRN": lambda tf, v: tf.floor(v),
    "TRN_ZERO": lambda tf, v: tf.sign(v) * tf.floor(tf.abs(v)),
    "RND": lambda tf, v: tf.floor(v + 0.5),
    "RND_ZERO": lambda tf, v: tf.sign(v) * tf.math.ceil(tf.abs(v) - 0.5),
    "RND_MIN_INF": lambda tf, v: tf.math.ceil(v - 0.5),
    "RND_INF": lambda tf, v: tf.sign(v) * tf.floor(tf.abs(v) + 0.5),
    "RND_CONV": lambda tf, v: tf.round(v),
}
"""ap_fixed's quantization modes on values in units of the target LSB (float64, exact below 2**53)."""


def ap_cast(v: Any, t: FixedType, rounding: bool = True) -> Any:
    """``(T) v`` for an ``ap_[u]fixed`` T, on a float64 tensor: its rounding mode (unless ``rounding`` is
    False: ``v`` already on T's grid), then its overflow mode (wrap modulo 2**W, or saturate)."""
    import tensorflow as tf

    scale = 2.0**t.fractional
    codes = v * scale
    if rounding:
        codes = _ROUNDING[t.rounding](tf, codes)
    lo, hi = float(t.min_code), float(t.max_code)
    if t.saturation == "WRAP":
        base = -(2.0 ** (t.width - 1)) if t.signed else 0.0
        codes = tf.math.floormod(codes - base, 2.0**t.width) + base
    elif t.saturation == "SAT_ZERO":
        codes = tf.where((codes < lo) | (codes > hi), tf.zeros_like(codes), codes)
    else:  # SAT, SAT_SYM (min_code holds the symmetric bound)
        codes = tf.clip_by_value(codes, lo, hi)
    return codes / scale


__all__ = ["ap_cast", "ap_cast_np"]
