"""Lookup-table activations (tanh, sigmoid, softplus, softsign) as hls4ml 1.3 builds them in io_parallel.

hls4ml's Vivado/Vitis templates (``nnet_utils/nnet_activation.h``) compute these functions from a table
of ``table_size`` entries of ``table_t``, filled once in C++ and indexed by the input:

* entry ``i`` holds ``f(x_i)`` with ``x_i = span * (i - N / 2) / N`` computed in double and stored in a
  ``float``; ``f`` is evaluated in single precision where the template calls the float overload
  (``std::exp(float)``, ``tanh(float)``), the float is then cast onto ``table_t`` by its own rounding and
  overflow modes (truncation and wrap-around for hls4ml's default ``ap_fixed<18,8>``);
* the index of an input ``x`` (of the input type) is ``int(x * N / span) + (span / 2) * N / span``,
  where the fixed-point product and quotient are exact up to a truncation towards zero, and the
  conversion to ``int`` truncates towards zero too; it is clamped to ``[0, N - 1]``;
* the result is ``(res_T) table[index]``, cast by the result type's modes.

The reference reproduces each step. The float functions are the C library's own (``expf``, ``tanhf``,
``log`` through ctypes: the same libm the compiled C simulation calls), so the table is the firmware's
bit for bit. ``span`` is 8 for tanh and 16 for the others.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from typing import Any

import numpy as np

from kd_trigger.errors import ModelError
from kd_trigger.fixed import FixedType
from kd_trigger.layers.spec import LayerPrecision

LOOKUP_SPAN = {"tanh": 8, "sigmoid": 16, "softplus": 16, "softsign": 16}
"""The activations hls4ml builds from a lookup table in io_parallel, and the input range each table
covers (-span/2 to span/2), as nnet_activation.h fills it."""

DEFAULT_TABLE = FixedType(18, 8)
"""hls4ml's default ``table_t`` of an activation (its backends' ``TypeAttribute('table', ...)``)."""

DEFAULT_TABLE_SIZE = 1024
"""hls4ml's default ``table_size`` of an activation."""

INDEX_BITS = 64
"""The index's integer arithmetic (input code x table size) stays inside int64 while the input width plus
the table size's bits stays within this."""


@functools.cache
def _libm() -> Any:
    name = ctypes.util.find_library("m") or "libm.so.6"
    lib = ctypes.CDLL(name)
    for fn, kind in (("expf", ctypes.c_float), ("tanhf", ctypes.c_float), ("log", ctypes.c_double)):
        getattr(lib, fn).restype = kind
        getattr(lib, fn).argtypes = [kind]
    return lib


def _f32(v: float) -> float:
    return float(np.float32(v))


def _entry(kind: str, x: float) -> float:
    """``f(x)`` as the template's float code computes it (``x`` a float), returned as that float."""
    m = _libm()
    if kind == "tanh":
        return _f32(m.tanhf(x))
    if kind == "sigmoid":  # 1.0 / (1 + std::exp(-x)): float sum, double quotient, returned as float
        return _f32(1.0 / _f32(1.0 + _f32(m.expf(-x))))
    if kind == "softplus":  # std::log(std::exp(x) + 1.): float exp, double sum and log
        return _f32(m.log(_f32(m.expf(x)) + 1.0))
    if kind == "softsign":  # x / (std::abs(x) + 1.): in double
        return _f32(x / (abs(x) + 1.0))
    raise ValueError(f"no lookup table for activation {kind!r}")


@functools.cache
def _table(kind: str, size: int, table: FixedType) -> tuple[float, ...]:
    from kd_trigger.layers.apcast import ap_cast_np

    span = LOOKUP_SPAN[kind]
    values = [_entry(kind, _f32(span * (i - size / 2.0) / size)) for i in range(size)]
    return tuple(float(v) for v in ap_cast_np(np.array(values, dtype=np.float64), table))


def lookup_table(kind: str, size: int, table: FixedType) -> np.ndarray:
    """The ``size`` entries of hls4ml's table of ``kind`` in ``table_t`` = ``table`` (float64 values)."""
    return np.array(_table(kind, size, table), dtype=np.float64)


def index_terms(kind: str, size: int, input_type: FixedType) -> tuple[int, int, int]:
    """(multiplier, divisor, offset) of the index in input codes: ``index = trunc(code * multiplier /
    divisor) + offset``, all integers, so that numpy and TensorFlow compute it exactly."""
    span = LOOKUP_SPAN[kind]
    frac = input_type.fractional
    return size * 2 ** max(-frac, 0), span * 2 ** max(frac, 0), (span // 2) * size // span


def lookup_np(
    x: np.ndarray, kind: str, size: int, table: FixedType, result: FixedType, input_type: FixedType
) -> np.ndarray:
    """hls4ml's ``kind`` activation of ``x`` (values of ``input_type``), in numpy float64."""
    from kd_trigger.layers.apcast import ap_cast_np

    mul, div, offset = index_terms(kind, size, input_type)
    codes = np.rint(np.asarray(x, dtype=np.float64) * 2.0**input_type.fractional).astype(np.int64)
    num = codes * mul
    index = np.clip(np.sign(num) * (np.abs(num) // div) + offset, 0, size - 1)
    return ap_cast_np(lookup_table(kind, size, table)[index], result)


def emulated_lookup(name: str, x: Any, kind: str, chosen: LayerPrecision, input_type: FixedType) -> Any:
    """The reference layer ``name`` of a lookup-table activation: :func:`lookup_np` in TensorFlow."""
    import tensorflow as tf

    from kd_trigger.layers.apcast import ap_cast

    size = chosen.table_size or DEFAULT_TABLE_SIZE
    values = tf.constant(lookup_table(kind, size, chosen.types["table"]))
    mul, div, offset = index_terms(kind, size, input_type)
    scale = 2.0**input_type.fractional
    result = chosen.types["result"]

    def compute(v: Any) -> Any:
        num = tf.cast(tf.round(tf.cast(v, tf.float64) * scale), tf.int64) * mul
        index = tf.sign(num) * tf.math.floordiv(tf.abs(num), div) + offset
        index = tf.clip_by_value(index, 0, size - 1)
        return ap_cast(tf.gather(values, index), result)

    return tf.keras.layers.Lambda(compute, name=name, dtype="float64")(x)


def check_index(where: str, kind: str, input_type: FixedType, size: int) -> None:
    """ModelError when ``input_type`` is too wide for the table index (hls4ml's ``int`` would overflow,
    or the reference's int64 arithmetic would)."""
    span = LOOKUP_SPAN[kind]
    big = max(abs(input_type.min_value), input_type.max_value)
    if big * size / span >= 2**31 or input_type.width + size.bit_length() > INDEX_BITS:
        raise ModelError(
            f"layer {where}: its input {input_type.hls()} is too wide for hls4ml's {kind} table index (an int "
            f"holding input x {size} / {span} overflows); give this activation's input a narrower type"
        )


def lookup_precision(
    name: str, where: str, kind: str, input_type: FixedType, table_size: int | None
) -> LayerPrecision:
    """The types of a lookup-table activation: hls4ml's default ``table_t`` and, as result, the same type
    (the table's values pass unchanged); an hls4ml configuration may give others (both are emulated).
    ModelError when the input is too wide for the index arithmetic (hls4ml's ``int`` would overflow)."""
    size = table_size or DEFAULT_TABLE_SIZE
    check_index(where, kind, input_type, size)
    return LayerPrecision(
        {"result": DEFAULT_TABLE, "table": DEFAULT_TABLE},
        f"{kind}: hls4ml lookup table ({size} entries), emulated",
        kind="lookup",
        emulated=True,
        table_size=size,
        input_type=input_type,
        function=kind,
    )


__all__ = [
    "DEFAULT_TABLE",
    "DEFAULT_TABLE_SIZE",
    "LOOKUP_SPAN",
    "check_index",
    "emulated_lookup",
    "index_terms",
    "lookup_np",
    "lookup_precision",
    "lookup_table",
]
