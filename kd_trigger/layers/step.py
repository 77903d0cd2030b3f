"""One layer as an instruction of the RTL fixed-point program (built by the layer handlers).

Lives beside the handlers that build it, not in :mod:`kd_trigger.rtl`, so the handlers need nothing of
the RTL flow (which asks them for its steps).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from kd_trigger.errors import ModelError
from kd_trigger.fixed import FixedType
from kd_trigger.layers.spec import LayerPrecision

StepKind = Literal["input", "dense", "quantize", "pool", "reshape"]


@dataclass(frozen=True)
class Step:
    """One Keras layer as fixed-point arithmetic. ``out_type`` is the exact type of its output."""

    name: str
    class_name: str
    kind: StepKind
    out_type: FixedType
    out_shape: tuple[int, ...]
    weight: np.ndarray | None = None  # (fan_in, units), float64, on weight_type's grid
    bias: np.ndarray | None = None  # (units,), float64, on bias_type's grid
    weight_type: FixedType | None = None
    bias_type: FixedType | None = None
    pool_n: int = 0  # GlobalAveragePooling1D: number of steps averaged (a power of two)
    pool_accum: FixedType | None = None
    row_wise: bool = False  # computes each particle (row of a 2-D value) on its own

    @property
    def has_hardware(self) -> bool:
        return self.kind in ("dense", "quantize", "pool")

    @property
    def matches_keras(self) -> bool:
        """Whether this step's output equals the Keras layer's output (the values, not only downstream).

        Not for a mean over a non-power-of-two count: Keras outputs the unrounded mean, the firmware
        rounds it straight onto the next quantizer's grid; the two agree from that quantizer on.
        """
        return not (self.kind == "pool" and self.pool_n & (self.pool_n - 1))


def grid_codes(values: np.ndarray, t: FixedType, what: str) -> np.ndarray:
    """Integer codes of ``values`` on ``t``'s grid; refuse values off the grid or out of range."""
    scaled = np.asarray(values, dtype=np.float64) / t.lsb
    codes = np.rint(scaled)
    if not np.array_equal(codes, scaled):
        raise ModelError(f"{what}: values are not on the grid of {t.hls()} (not produced by its quantizer)")
    if codes.size and (codes.min() < t.min_code or codes.max() > t.max_code):
        raise ModelError(f"{what}: values outside the range of {t.hls()}")
    return codes.astype(np.int64)


def derived_type(prec: LayerPrecision, key: str, where: str) -> FixedType:
    """The derived ``key`` type of a layer; ModelError when the derivation made none."""
    t = prec.types.get(key)
    if t is None:
        raise ModelError(f"layer {where}: no derived '{key}' type")
    return t
