"""Weight statistics of the estimator: canonical-signed-digit (CSD) digits and constant widths.

HLS turns a product with a constant weight into shifts and adds by the weight's non-zero CSD digits;
these functions count them for real weights (:func:`weight_profile`) or for uniformly random codes
(:func:`random_code_profile`, used when the weights are unknown).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np


def csd_digits(value: int) -> int:
    """Number of non-zero digits of ``value`` in canonical signed-digit form (0 for 0)."""
    n = abs(int(value))
    count = 0
    while n:
        if n & 1:
            # A run of ones ending here: take +1 or -1 so that the next digit becomes 0.
            digit = 2 - (n & 3)
            n -= digit
            count += 1
        n >>= 1
    return count


def constant_bits(value: int) -> int:
    """Width HLS gives a constant multiplier operand: bits of the odd part of |value|, plus a sign bit."""
    n = abs(int(value))
    if n == 0:
        return 0
    while n % 2 == 0:
        n //= 2
    return n.bit_length() + (1 if value < 0 else 0)


def weight_statistics(weights: np.ndarray, frac_bits: int) -> tuple[int, int, int]:
    """(non-zero, power-of-two, shift-add adders) of quantized weights with ``frac_bits`` fraction bits."""
    ints = np.rint(np.asarray(weights, dtype=np.float64) * (2.0**frac_bits)).astype(np.int64).ravel()
    nonzero = ints[ints != 0]
    digits = np.fromiter((csd_digits(int(v)) for v in nonzero), dtype=np.int64, count=nonzero.size)
    pow2 = int(np.count_nonzero(digits == 1))
    adders = int(np.sum(np.maximum(digits - 1, 0)))
    return int(nonzero.size), pow2, adders


def weight_profile(weights: np.ndarray, frac_bits: int, n_out: int) -> dict[str, Any]:
    """All the weight statistics of :class:`~kd_trigger.layers.spec.LayerSpec` for a kernel laid out
    ``(..., n_out)`` (hls4ml's order: one row of ``n_out`` weights per input, or per kernel tap and
    channel)."""
    ints = np.rint(np.asarray(weights, dtype=np.float64) * (2.0**frac_bits)).astype(np.int64).ravel()
    rows = ints.reshape(-1, max(int(n_out), 1))
    nonzero = ints[ints != 0]
    digits = np.fromiter((csd_digits(int(v)) for v in nonzero), dtype=np.int64, count=nonzero.size)
    hard: dict[int, int] = {}
    for row in rows:
        for value in {int(v) for v in row if v != 0 and csd_digits(int(v)) >= 3}:
            width = constant_bits(value)
            hard[width] = hard.get(width, 0) + 1
    return {
        "n_nonzero_mult": int(nonzero.size),
        "n_pow2_mult": int(np.count_nonzero(digits == 1)),
        "n_two_digit_mult": int(np.count_nonzero(digits == 2)),
        "csd_adders": int(np.sum(np.maximum(digits - 1, 0))),
        "hard_mult_widths": tuple(sorted(hard.items())),
        "weight_range_bits": int(np.max(np.abs(ints))).bit_length() + 1 if nonzero.size else 1,
    }


@functools.lru_cache(maxsize=64)
def random_code_profile(bits: int) -> tuple[float, float, float, tuple[tuple[int, float], ...]]:
    """Per non-zero weight: fractions with 1 and 2 CSD digits, mean (digits - 1), and the constant-width
    distribution of the hard ones, for uniformly random ``bits``-bit signed codes."""
    bits = max(int(bits), 2)
    codes = [v for v in range(-(2 ** (bits - 1)), 2 ** (bits - 1)) if v != 0]
    digits = [csd_digits(v) for v in codes]
    n = len(codes)
    widths: dict[int, int] = {}
    for v, d in zip(codes, digits, strict=True):
        if d >= 3:
            w = constant_bits(v)
            widths[w] = widths.get(w, 0) + 1
    return (
        sum(d == 1 for d in digits) / n,
        sum(d == 2 for d in digits) / n,
        sum(max(d - 1, 0) for d in digits) / n,
        tuple(sorted((w, c / n) for w, c in widths.items())),
    )
