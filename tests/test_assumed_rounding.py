"""The assumed types' rounding, checked against an independent computation.

For a layer without quantizers the firmware's weights and the float64 reference both come from
:func:`kd_trigger.hls.convert.quantized_weights`, so comparing the two cannot catch a wrong rounding.
Here the same raw float weights are rounded with exact rational arithmetic (``fractions.Fraction`` of the
float's exact value, Python's round-half-to-even on the quotient by the LSB, then saturation), which
shares no code with ``FixedType.quantize``. The slow test in test_intake.py applies the same reference to
the weights written into a real firmware header.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from kd_trigger.hls.precision import FixedType, LayerPrecision


def round_onto(value: float, t: FixedType) -> Fraction:
    """``value`` on the grid of ``t``: half to even, saturated. Exact: no floating point inside."""
    lsb = Fraction(1, 2 ** (t.width - t.integer))
    code = round(Fraction(float(value)) / lsb)  # Fraction.__round__ rounds half to even
    top = 2 ** (t.width - 1) - 1 if t.signed else 2**t.width - 1
    bottom = -(2 ** (t.width - 1)) if t.signed else 0
    return min(max(code, bottom), top) * lsb


def test_the_reference_itself_rounds_half_to_even_and_saturates() -> None:
    t = FixedType(8, 3)  # lsb 1/32, range [-4, 4 - 1/32]
    lsb = 1 / 32
    assert [round_onto(k * lsb, t) for k in (0.5, 1.5, 2.5, -0.5, -1.5)] == [
        Fraction(0),
        Fraction(2, 32),
        Fraction(2, 32),
        Fraction(0),
        Fraction(-2, 32),
    ]
    assert round_onto(100.0, t) == 4 - Fraction(1, 32) and round_onto(-100.0, t) == -4


def _values(shape: tuple[int, ...], t: FixedType, seed: int) -> np.ndarray:
    """Random float32 values with exact ties (k + 1/2 LSB, both signs), values one ulp off a tie, and
    values beyond the range on both sides."""
    rng = np.random.default_rng(seed)
    lsb = 2.0 ** -(t.width - t.integer)
    v = rng.normal(0.0, 1.5, shape).astype(np.float32).ravel()
    ties = (rng.integers(-40, 40, v.size // 3) + 0.5) * lsb
    v[: ties.size] = ties
    v[ties.size : 2 * ties.size] = np.nextafter(ties.astype(np.float32), np.float32(np.inf))
    v[-2:] = (9.0, -9.0)
    return v.reshape(shape)


def test_assumed_weight_bias_and_batch_norm_rounding_is_independent_of_fixed_type() -> None:
    import tensorflow as tf

    from kd_trigger.hls.convert import quantized_weights

    w_t, b_t = FixedType(8, 3), FixedType(6, 2)
    s_t, o_t = FixedType(10, 4), FixedType(7, 3, signed=False)
    inp = tf.keras.Input((6,))
    x = tf.keras.layers.Dense(9, name="head")(inp)
    x = tf.keras.layers.BatchNormalization(name="bn")(x)
    model = tf.keras.Model(inp, x)
    head, bn = model.get_layer("head"), model.get_layer("bn")
    head.kernel.assign(_values((6, 9), w_t, 1))
    head.bias.assign(_values((9,), b_t, 2))
    rng = np.random.default_rng(3)
    bn.gamma.assign(rng.uniform(0.5, 1.5, 9).astype(np.float32))
    bn.beta.assign(rng.normal(0.0, 1.0, 9).astype(np.float32))
    bn.moving_mean.assign(rng.normal(0.0, 0.5, 9).astype(np.float32))
    bn.moving_variance.assign(rng.uniform(0.5, 2.0, 9).astype(np.float32))
    precision = {
        "head": LayerPrecision(types={"weight": w_t, "bias": b_t}, assumed=True),
        "bn": LayerPrecision(types={"scale": s_t, "bias": o_t}, assumed=True),
    }
    got = quantized_weights(model, precision)

    def reference(values: np.ndarray, t: FixedType) -> list[Fraction]:
        return [round_onto(v, t) for v in np.asarray(values, dtype=np.float64).ravel()]

    def exact(values: np.ndarray) -> list[Fraction]:
        return [Fraction(float(v)) for v in np.asarray(values).ravel()]

    kernel = head.kernel.numpy()
    assert exact(got["head"]["weight"]) == reference(kernel, w_t)
    assert exact(got["head"]["bias"]) == reference(head.bias.numpy(), b_t)
    # the ties really are there: half of them round down (to even), which half-up rounding would not
    k = np.asarray(kernel, dtype=np.float64).ravel() * 32
    assert np.sum(k == np.floor(k) + 0.5) >= 10
    # batch norm: scale = gamma / sqrt(var + eps) and offset = beta - mean x scale, in float64, then rounded
    gamma, beta = bn.gamma.numpy().astype(np.float64), bn.beta.numpy().astype(np.float64)
    mean, var = bn.moving_mean.numpy().astype(np.float64), bn.moving_variance.numpy().astype(np.float64)
    scale = gamma / np.sqrt(var + float(bn.epsilon))
    assert exact(got["bn"]["scale"]) == reference(scale, s_t)
    assert exact(got["bn"]["bias"]) == reference(beta - mean * scale, o_t)


@pytest.mark.parametrize("t", [FixedType(8, 3), FixedType(16, 6), FixedType(6, 2, signed=False)])
def test_fixed_type_quantize_agrees_with_exact_rounding(t: FixedType) -> None:
    values = _values((400,), t, 5).astype(np.float64)
    assert [Fraction(float(v)) for v in t.quantize(values)] == [round_onto(v, t) for v in values]
