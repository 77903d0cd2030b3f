"""Fixed-point value types: ``ap_[u]fixed`` as a value, and the exact product and accumulator rules.

The bottom of the package: it imports nothing of kd_trigger, so the config, the quantizer mapping, the
hls4ml and RTL flows and the estimator all share one description of a fixed-point number.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

# QKeras rounds half to even (tf.round) and clips to the representable range: in Vitis/Vivado HLS
# terms that is convergent rounding with saturation. Symmetric quantized_bits also drops the most
# negative code.
QUANTIZER_ROUNDING = "RND_CONV"
QUANTIZER_SATURATION = "SAT"
EXACT_ROUNDING = "TRN"
EXACT_SATURATION = "WRAP"


_TYPE_PATTERN = re.compile(
    r"(ap_fixed|ap_ufixed)<(\d+),(-?\d+)(?:,AP_(RND|RND_ZERO|RND_MIN_INF|RND_INF|RND_CONV|TRN|TRN_ZERO))?"
    r"(?:,AP_(SAT|SAT_ZERO|SAT_SYM|WRAP))?(?:,\d+)?>"
)


@dataclass(frozen=True)
class FixedType:
    """An ``ap_[u]fixed<width, integer, rounding, saturation>``; ``integer`` counts the sign bit."""

    width: int
    integer: int
    signed: bool = True
    rounding: str = EXACT_ROUNDING
    saturation: str = EXACT_SATURATION

    def __post_init__(self) -> None:
        if self.width < 1:
            raise ValueError(f"fixed-point width must be positive, got {self.width}")

    @property
    def fractional(self) -> int:
        return self.width - self.integer

    @property
    def lsb(self) -> float:
        return 2.0 ** (-self.fractional)

    @property
    def min_code(self) -> int:
        """Smallest representable value in units of the LSB."""
        if not self.signed:
            return 0
        low = -(2 ** (self.width - 1))
        return low + 1 if self.saturation == "SAT_SYM" else low

    @property
    def max_code(self) -> int:
        return 2 ** (self.width - 1) - 1 if self.signed else 2**self.width - 1

    @property
    def min_value(self) -> float:
        return self.min_code * self.lsb

    @property
    def max_value(self) -> float:
        return self.max_code * self.lsb

    def hls(self) -> str:
        """The type as hls4ml's config and the generated C++ spell it."""
        base = "ap_fixed" if self.signed else "ap_ufixed"
        if self.rounding == EXACT_ROUNDING and self.saturation == EXACT_SATURATION:
            return f"{base}<{self.width},{self.integer}>"
        return f"{base}<{self.width},{self.integer},AP_{self.rounding},AP_{self.saturation}>"

    @classmethod
    def parse(cls, text: str) -> FixedType:
        """``ap_fixed<W,I>`` / ``ap_ufixed<W,I>`` (optionally ``,AP_RND_CONV,AP_SAT``...) as a FixedType.

        Raises ValueError with the accepted spelling for anything else.
        """
        match = _TYPE_PATTERN.fullmatch(text.replace(" ", ""))
        if match is None:
            raise ValueError(
                f"{text!r} is not a fixed-point type; write ap_fixed<W,I> or ap_ufixed<W,I> (W total bits, "
                "I integer bits including the sign), optionally with rounding and saturation modes"
            )
        base, width, integer, rounding, saturation = match.groups()
        if int(width) < 1 or int(width) > 64:
            raise ValueError(f"{text!r}: the width must be 1..64 bits")
        return cls(
            int(width),
            int(integer),
            base == "ap_fixed",
            rounding or EXACT_ROUNDING,
            saturation or EXACT_SATURATION,
        )

    def with_modes(self, rounding: str, saturation: str) -> FixedType:
        return FixedType(self.width, self.integer, self.signed, rounding, saturation)

    def exact(self) -> FixedType:
        """The same bits with truncation/wrap: cheaper, and never triggered when the type is wide enough."""
        return self.with_modes(EXACT_ROUNDING, EXACT_SATURATION)

    def holds(self, other: FixedType) -> bool:
        """True when every value of ``other`` is exactly representable in this type."""
        if other.signed and not self.signed:
            return False
        int_self = self.integer - (1 if self.signed else 0)
        int_other = other.integer - (1 if other.signed else 0)
        return int_self >= int_other and self.fractional >= other.fractional

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.hls(),
            "width": self.width,
            "integer": self.integer,
            "signed": self.signed,
            "rounding": self.rounding,
            "saturation": self.saturation,
        }

    def quantize(self, values: np.ndarray) -> np.ndarray:
        """Round half to even onto the grid and saturate (what a QKeras quantizer does), as float64."""
        codes = np.rint(np.asarray(values, dtype=np.float64) / self.lsb)
        return np.clip(codes, self.min_code, self.max_code) * self.lsb

    def edge_values(self) -> np.ndarray:
        """The values where overflow and rounding bugs hide: extremes, zero and one LSB around them."""
        codes = {self.min_code, self.min_code + 1, self.max_code, self.max_code - 1, 0, 1}
        if self.signed:
            codes |= {-1}
        return (
            np.array(sorted(c for c in codes if self.min_code <= c <= self.max_code), dtype=np.float64)
            * self.lsb
        )


def bits_type(bits: int, integer: int) -> FixedType:
    """The type of ``quantized_bits(bits, integer, alpha=1)``: ``ap_fixed<bits, integer + 1>``."""
    return FixedType(bits, integer + 1, signed=True)


def relu_type(bits: int, integer: int) -> FixedType:
    """The type of ``quantized_relu(bits, integer)``: ``ap_ufixed<bits, integer>``."""
    return FixedType(bits, integer, signed=False)


def grid_type(values: np.ndarray, max_fractional: int = 48) -> FixedType:
    """The narrowest signed ``ap_fixed`` that holds every one of ``values`` exactly.

    For weights already quantized by a quantizer whose grid is not fixed in advance (QKeras' per-channel
    power-of-two scales, ``alpha="auto_po2"``): the constants themselves decide the type. Raises
    ValueError when a value needs more than ``max_fractional`` fractional bits (not a fixed-point grid).
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if not np.all(np.isfinite(v)):
        raise ValueError("weights hold NaN or inf")
    fractional = 0
    while fractional <= max_fractional and not np.all(np.rint(v * 2.0**fractional) == v * 2.0**fractional):
        fractional += 1
    if fractional > max_fractional:
        raise ValueError(f"weights are not on any grid of up to {max_fractional} fractional bits")
    codes = np.rint(v * 2.0**fractional).astype(np.int64) if v.size else np.zeros(1, dtype=np.int64)
    hi, lo = int(codes.max(initial=0)), int(codes.min(initial=0))
    width = max(hi.bit_length(), (-lo - 1).bit_length() if lo < 0 else 0) + 1
    return FixedType(width, width - fractional, signed=True)


def product_type(a: FixedType, b: FixedType) -> FixedType:
    """Exact type of ``a * b``: widths and integer parts add (a signed factor makes it signed)."""
    return FixedType(a.width + b.width, a.integer + b.integer, a.signed or b.signed)


def accumulator_type(product: FixedType, n_terms: int, bias: FixedType | None) -> FixedType:
    """Exact type of a sum of ``n_terms`` products plus an optional bias (never overflows, never rounds).

    Every term (and the bias) fits in ``max(I_product, I_bias)`` signed integer bits, so K + 1 of them
    fit in ``ceil(log2(K + 1))`` more; the fractional part is the finer of the two.
    """
    if n_terms < 1:
        raise ValueError(f"an accumulator needs at least one term, got {n_terms}")
    terms = n_terms + (1 if bias is not None else 0)
    growth = math.ceil(math.log2(terms)) if terms > 1 else 0
    signed = product.signed or (bias is not None and bias.signed)

    def int_bits(t: FixedType) -> int:  # integer bits as if signed, so signed and unsigned compare
        return t.integer + (0 if t.signed else 1)

    integer = int_bits(product) if bias is None else max(int_bits(product), int_bits(bias))
    fractional = product.fractional if bias is None else max(product.fractional, bias.fractional)
    integer += growth
    if not signed:
        integer -= 1
    return FixedType(integer + fractional, integer, signed)


def dense_accumulator_type(
    in_type: FixedType, w_type: FixedType, b_type: FixedType, n_inputs: int
) -> FixedType:
    """Type that holds ``sum_i x_i * w_i + b`` exactly for ``n_inputs`` terms: the firmware's accumulator.

    The output of a student (its last QDense) lives on this grid.
    """
    return accumulator_type(product_type(in_type, w_type), n_inputs, b_type)
