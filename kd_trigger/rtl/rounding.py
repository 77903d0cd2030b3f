"""QKeras rounding (half to even) and saturation, as integer arithmetic and as a da4ml traced program.

QKeras quantizers round with ``tf.round``: half to even (convergent rounding). da4ml's ``quantize`` only
offers truncation (``TRN``) or round half up (``RND``), which disagree with QKeras on every exact tie,
and ties are common: an 8-bit activation grid is much coarser than the accumulator grid feeding it.

Convergent rounding is a pure function of the bits. To drop ``s >= 1`` fractional bits of an integer
code ``c`` (value ``c * 2**-F``, keep ``F - s`` bits):

    a = c + 2**(s-1) - 1          # round half DOWN: ties stay below the carry
    b = bit s of a                # the LSB that survives truncation
    result = floor((a + b) / 2**s)

Below a tie ``a``'s dropped bits are at most ``2**s - 2`` so adding ``b`` never carries; above a tie ``a``
has already carried; on a tie the dropped bits of ``a`` are all ones and ``b`` is the LSB of the
truncated value, so ``+ b`` carries exactly when that LSB is odd: the result is even. In hardware this
is one constant add (which da4ml folds into the layer's bias add), a one-bit slice and one add of a
single bit at the LSB, then a plain truncation. :func:`round_half_even_codes` is the integer form (the
reference), :func:`trace_quantize` the traced one; both are tested against numpy's ``rint`` exhaustively.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kd_trigger.fixed import FixedType


def round_half_even_codes(codes: np.ndarray, shift: int) -> np.ndarray:
    """``rint(codes / 2**shift)`` (half to even) for integer ``codes``, in exact integer arithmetic."""
    c = np.asarray(codes, dtype=np.int64)
    if shift <= 0:
        return c << -shift
    a = c + ((1 << (shift - 1)) - 1)
    b = (a >> shift) & 1  # >> on int64 is an arithmetic shift: floor division, also for negatives
    return (a + b) >> shift


def wrap_codes(codes: np.ndarray, t: FixedType) -> np.ndarray:
    """Two's-complement wrap of integer codes (already on ``t``'s grid) into ``t``'s width (``AP_WRAP``)."""
    c = np.asarray(codes, dtype=np.int64)
    span = np.int64(1) << t.width
    low = -(np.int64(1) << (t.width - 1)) if t.signed else np.int64(0)
    return (c - low) % span + low


def align_codes(codes: np.ndarray, frac_in: int, frac_out: int) -> np.ndarray:
    """Codes at ``frac_in`` fractional bits moved to ``frac_out``: exact up, truncated (floor) down."""
    c = np.asarray(codes, dtype=np.int64)
    if frac_out >= frac_in:
        return c << (frac_out - frac_in)
    return c >> (frac_in - frac_out)


def quantize_codes(codes: np.ndarray, frac_in: int, t: FixedType) -> np.ndarray:
    """What a QKeras quantizer of type ``t`` does to exact codes at ``frac_in`` fractional bits.

    Round half to even onto ``t``'s grid, then saturate to its code range (``SAT`` or ``SAT_SYM``).
    Returns codes at ``t.fractional`` fractional bits.
    """
    rounded = round_half_even_codes(codes, frac_in - t.fractional)
    return np.clip(rounded, t.min_code, t.max_code)


def fixed_kif(t: FixedType) -> tuple[int, int, int]:
    """da4ml's (keep_negative, integer bits without sign, fractional bits) of a fixed-point type."""
    return int(t.signed), t.integer - int(t.signed), t.fractional


def trace_round_half_even(v: Any, frac: int) -> Any:
    """A traced da4ml variable ``w`` whose truncation to ``frac`` fractional bits is ``v`` rounded half to even.

    ``v`` is a ``da4ml.trace.FixedVariable``; if it has no more than ``frac`` fractional bits nothing
    rounds and ``v`` comes back unchanged.
    """
    frac_v = int(v.kif[2])
    if frac_v <= frac:
        return v
    eps = 2.0**-frac_v
    a = v + (2.0 ** -(frac + 1) - eps)  # + (half - 1 LSB): da4ml merges this into a preceding bias add
    lsb = a.quantize(0, 1 - frac, frac)  # one bit: (bit `frac` of a) * 2**-frac, a plain wire slice
    return a + lsb * 2.0 ** (frac - frac_v)  # + that bit at a's LSB: carries only on odd ties


def trace_quantize(v: Any, t: FixedType) -> Any:
    """Traced QKeras quantizer: round half to even onto ``t``'s grid, then saturate (``t.saturation``)."""
    k, i, f = fixed_kif(t)
    overflow = "SAT_SYM" if t.saturation == "SAT_SYM" else "SAT"
    return trace_round_half_even(v, f).quantize(k, i, f, overflow_mode=overflow, round_mode="TRN")


def trace_wrap(v: Any, t: FixedType) -> Any:
    """Traced cast into ``t`` with truncation and wrap-around (an exact type: a no-op when ``v`` fits)."""
    k, i, f = fixed_kif(t)
    return v.quantize(k, i, f, overflow_mode="WRAP", round_mode="TRN")
