"""GlobalAveragePooling1D: a mean over the particles, a shift for a power-of-two count, else an exact
division rounded onto the next quantizer's grid."""

from __future__ import annotations

import math
from typing import Any

from kd_trigger.errors import ModelError
from kd_trigger.fixed import QUANTIZER_ROUNDING, FixedType
from kd_trigger.layers.base import LayerHandler, PrecisionWalk, ProgramWalk, out_shape
from kd_trigger.layers.spec import LayerPrecision, LayerSpec
from kd_trigger.layers.step import Step, derived_type


def average_pool_types(data: FixedType, n_inputs: int) -> tuple[FixedType, FixedType, bool]:
    """(accumulator, result, exact) of an average over ``n_inputs`` values of type ``data``.

    The firmware sums into the accumulator and divides it by N in place, so the accumulator needs
    ``ceil(log2 N)`` more integer bits for the sum and as many more fractional bits for the quotient;
    the mean is never larger than the largest input, so the result keeps the input's integer bits.
    Division by N is exact only for a power of two: ``exact`` says whether it is.
    """
    if n_inputs < 1:
        raise ValueError(f"average over {n_inputs} inputs")
    k = math.ceil(math.log2(n_inputs)) if n_inputs > 1 else 0
    accum = FixedType(data.width + 2 * k, data.integer + k, data.signed)
    result = FixedType(data.width + k, data.integer, data.signed)
    return accum, result, n_inputs == 2**k


def pool_division_types(data: FixedType, n: int, target: FixedType) -> tuple[FixedType, FixedType]:
    """(accumulator, result) of an average over ``n`` (not a power of two) rounded onto ``target``.

    The firmware sums exactly, divides by n in the accumulator (the quotient is truncated to its
    fractional bits) and casts onto ``target`` rounding half to even. The quotient q = S/n in units of
    the target LSB is a multiple of 1/n, so when q is not a tie it is at least 1/(2n) away from one: with
    ceil(log2(2n)) + 1 fractional bits beyond the target, truncation never reaches a tie, and rounding
    the truncated quotient gives exactly QKeras' round-half-even of the mean.
    """
    growth = math.ceil(math.log2(n))
    extra = math.ceil(math.log2(2 * n)) + 1
    fractional = max(data.fractional, target.fractional) + extra
    integer = data.integer + growth + (0 if data.signed else 1)
    accum = FixedType(integer + fractional, integer, True)
    return accum, target.with_modes(QUANTIZER_ROUNDING, target.saturation)


def emulated_pool(name: str, x: Any, n: int, accum: FixedType, result: FixedType) -> Any:
    """The mean over ``n`` particles as hls4ml 1.3's ``nnet::avg`` computes it (nnet_pooling.h):
    ``accum_t y = 0; y += x[i]`` (each sum cast onto ``accum_t`` by its modes, in particle order),
    ``y /= n`` (ap_fixed's division by an integer: the quotient keeps ``accum_t``'s fractional bits and
    is truncated towards zero, a signed integer division of the codes), then the assignment to
    ``res_T`` (its rounding and overflow modes)."""
    import tensorflow as tf

    from kd_trigger.layers.apcast import ap_cast

    scale = 2.0**accum.fractional

    def compute(v: Any) -> Any:
        v = tf.cast(v, tf.float64)
        y = tf.zeros_like(v[:, 0, :])
        for i in range(n):
            y = ap_cast(y + v[:, i, :], accum)
        codes = y * scale
        quotient = tf.sign(codes) * tf.floor(tf.abs(codes) / float(n))
        return ap_cast(quotient / scale, result)

    return tf.keras.layers.Lambda(compute, name=name, dtype="float64")(x)


class AveragePoolingHandler(LayerHandler):
    """GlobalAveragePooling1D over the particles (channels last, no keepdims)."""

    kind = "pooling"
    keras_classes = ("GlobalAveragePooling1D",)
    hls4ml_classes = ("GlobalPooling1D", "Pooling1D")
    estimate_kind = "pooling"
    rtl_classes = ("GlobalAveragePooling1D",)
    rtl_note = "GlobalAveragePooling1D"

    def describe(self, layer: Any, where: str) -> LayerSpec:
        return LayerSpec(layer.name, type(layer).__name__, fan_in=int(layer.input_shape[1]))

    def precision(self, spec: LayerSpec, walk: PrecisionWalk) -> None:
        accum, result, exact = average_pool_types(walk.type_in, spec.fan_in)
        if exact:
            walk.out[spec.name] = LayerPrecision(
                {"accum": accum, "result": result}, f"mean of {spec.fan_in}, a shift"
            )
            walk.current = result
            return
        target = walk.next_quantizer()
        configured = walk.intake.configured.get(spec.name, {})
        given_accum = configured.get("accum", configured.get("*"))
        given_result = configured.get("result", configured.get("*"))
        if (target is None or target.activation is None) and given_accum and given_result:
            # The configured design rounds the mean as hls4ml's C++ does; the reference emulates that.
            accum, result = given_accum, given_result
            walk.out[spec.name] = LayerPrecision(
                {"accum": accum, "result": result},
                f"mean of {spec.fan_in} as hls4ml divides it: sum in {accum.hls()}, quotient truncated there, "
                f"cast onto {result.hls()} (emulated)",
                kind="pooling",
                emulated=True,
                narrowed={"accum": None, "result": None},
            )
            walk.current = result
            return
        if target is None or target.activation is None:
            raise ModelError(
                f"layer {spec.where}: a mean over {spec.fan_in} values is not a power-of-two shift, and no quantizer "
                "follows it, so QKeras computes it in floating point and no fixed-point firmware can match; "
                "put a QActivation(quantized_bits(...)) right after it, pool a power-of-two count, or give the "
                "layer's accum and result types (--hls-config), whose rounding the reference then emulates"
            )
        accum, result = pool_division_types(walk.type_in, spec.fan_in, target.activation)
        walk.out[spec.name] = LayerPrecision(
            {"accum": accum, "result": result},
            f"mean of {spec.fan_in}: exact division rounded half to even onto {target.name}'s grid",
        )
        walk.current = result

    def rtl_step(self, layer: Any, walk: ProgramWalk) -> Step | None:
        """The mean with the hls4ml flow's derived types.

        A power-of-two count is a sum and a shift (exact). Any other count is what the derived types
        describe (the derivation only allows it when a quantizer follows): the exact sum, divided by n in
        the accumulator with the quotient truncated to its fractional bits, then cast onto the result type
        rounding half to even, which equals QKeras' rounding of the exact mean.
        """
        cls = type(layer).__name__
        where = f"'{layer.name}' ({cls})"
        if getattr(layer, "data_format", "channels_last") != "channels_last" or getattr(
            layer, "keepdims", False
        ):
            raise ModelError(f"layer {where}: only channels_last pooling without keepdims is supported")
        n = int(layer.input_shape[1])
        prec = walk.precision[layer.name]
        accum = derived_type(prec, "accum", where)
        result = derived_type(prec, "result", where)
        in_type = walk.current
        if accum.fractional < in_type.fractional:
            raise ModelError(f"layer {where}: accumulator {accum.hls()} cannot hold the sum exactly")
        if n & (n - 1) == 0:
            shift = n.bit_length() - 1
            if result.fractional < in_type.fractional + shift:
                raise ModelError(f"layer {where}: result {result.hls()} cannot hold the mean of {n} exactly")
        elif result.rounding != "RND_CONV" or result.saturation not in ("SAT", "SAT_SYM"):
            raise ModelError(
                f"layer {where}: a mean over {n} values is bit-exact only rounded half to even onto the next "
                f"quantizer's grid, not into {result.hls()}"
            )
        walk.current = result
        return Step(layer.name, cls, "pool", result, out_shape(layer), pool_n=n, pool_accum=accum)
