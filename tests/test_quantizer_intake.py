"""Issue 22, items 2 and 5: QKeras quantizers hls4ml converts, and the 1-LSB divergence at
``quantized_relu(18, 3)``.

Fast: the derived types of each newly accepted quantizer, and the float64 reference rounding a wide
accumulator once. Slow (via :class:`layer_base.LayerTestBase`): the C simulation is bit-exact.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from conftest import randomize_weights
from layer_base import LayerTestBase, qbits

from kd_trigger.config import HlsConfig


def relu18_model(seed: int = 0) -> Any:
    """A tiny QKeras MLP whose accumulator (23 fractional bits) feeds a ``quantized_relu(18, 3)``."""
    import tensorflow as tf
    from qkeras import QActivation, QDense, quantized_relu

    inp = tf.keras.Input((16,), name="x")
    x = QActivation(qbits(12, 4), name="input_quant")(inp)
    x = QDense(32, kernel_quantizer=qbits(18, 1), bias_quantizer=qbits(18, 3), name="dense_0")(x)
    x = QActivation(quantized_relu(18, 3), name="relu_0")(x)
    out = QDense(2, kernel_quantizer=qbits(8, 1), bias_quantizer=qbits(8, 3), name="output")(x)
    model = tf.keras.Model(inp, out, name="relu18")
    randomize_weights(model, seed, 0.3)
    return model


def quantizers_model(seed: int = 0) -> Any:
    """Stochastic rounding (kernel, bias, activation), ``alpha=2`` and ``quantized_po2`` kernels."""
    import tensorflow as tf
    from qkeras import QActivation, QDense, quantized_bits, quantized_po2, quantized_relu

    def stoch(bits: int, integer: int) -> Any:
        return quantized_bits(bits, integer, alpha=1, use_stochastic_rounding=True)

    inp = tf.keras.Input((8,), name="x")
    x = QActivation(qbits(10, 3), name="input_quant")(inp)
    x = QDense(12, kernel_quantizer=stoch(8, 1), bias_quantizer=stoch(8, 3), name="stochastic")(x)
    x = QActivation(quantized_relu(8, 3, use_stochastic_rounding=True), name="relu_0")(x)
    x = QDense(8, kernel_quantizer=qbits(6, 0, alpha=2), bias_quantizer=qbits(8, 3), name="alpha2")(x)
    x = QActivation(quantized_relu(8, 3), name="relu_1")(x)
    out = QDense(2, kernel_quantizer=quantized_po2(4, 1), bias_quantizer=qbits(8, 3), name="po2")(x)
    model = tf.keras.Model(inp, out, name="quantizers")
    randomize_weights(model, seed, 0.4)
    return model


def _precision(model: Any) -> Any:
    from kd_trigger.hls.convert import model_precision
    from kd_trigger.hls.precision import Intake

    return model_precision(model, Intake.from_hls(HlsConfig()))


# -- item 5: quantized_relu(18, 3) ---------------------------------------------------------------------------
def test_relu18_reference_rounds_the_accumulator_once_where_qkeras_rounds_twice() -> None:
    """The cause: QKeras' quantized_relu casts its input to float32 before rounding onto its grid. An
    accumulator with 23 fractional bits loses bits there and can land on a tie of the 18-bit grid; the
    firmware rounds the exact value once. The float64 twin must do what the firmware does."""
    import tensorflow as tf

    from kd_trigger.hls.convert import quantized_weights
    from kd_trigger.hls.csim import float64_twin, keras_layer_outputs, quantize_inputs

    model = relu18_model()
    precision = _precision(model)
    assert precision["dense_0"].types["accum"].fractional == 23
    relu_type = precision["relu_0"].types["result"]
    assert relu_type.hls() == "ap_ufixed<18,3,AP_RND_CONV,AP_SAT>"
    twin = float64_twin(model, quantized_weights(model, precision))
    x = quantize_inputs(twin, np.random.default_rng(1).normal(0.0, 4.0, (20_000, 16)))
    outs = keras_layer_outputs(twin, x, ["dense_0", "relu_0"])
    accum = outs["dense_0"]
    np.testing.assert_array_equal(precision["dense_0"].types["accum"].quantize(accum), accum)
    once = relu_type.quantize(accum)
    np.testing.assert_array_equal(outs["relu_0"], once)
    # QKeras' own quantizer (float32 inside) is the side that is off, by exactly one LSB where it is.
    qkeras = model.get_layer("relu_0").quantizer(tf.constant(accum.astype(np.float32))).numpy()
    off = np.abs(qkeras.astype(np.float64) - once)
    assert 0 < np.count_nonzero(off) < 0.01 * off.size
    assert off.max() == relu_type.lsb


class TestRelu18(LayerTestBase):
    """The C simulation equals the reference at quantized_relu(18, 3) (0.17% of outputs were 1 LSB off)."""

    flows: ClassVar[tuple[str, ...]] = ("hls4ml",)

    def build(self) -> Any:
        return relu18_model()


# -- item 2: quantizers ----------------------------------------------------------------------------------------
def test_derived_types_of_the_accepted_quantizers() -> None:
    model = quantizers_model()
    precision = _precision(model)
    types = {name: {k: t.hls() for k, t in p.types.items()} for name, p in precision.items()}
    # stochastic rounding: the deterministic quantizer's grid
    assert types["stochastic"]["weight"] == "ap_fixed<8,2>"
    assert types["stochastic"]["bias"] == "ap_fixed<8,4>"
    assert types["relu_0"]["result"] == "ap_ufixed<8,3,AP_RND_CONV,AP_SAT>"
    # alpha=2: quantized_bits(6, 0)'s grid ap_fixed<6,1> shifted left by one bit
    assert types["alpha2"]["weight"] == "ap_fixed<6,2>"
    # quantized_po2(4, 1): read off the constants (powers of two up to 2**1)
    po2 = precision["po2"].types["weight"]
    kernel = model.get_layer("po2").kernel_quantizer_internal(model.get_layer("po2").kernel).numpy()
    np.testing.assert_array_equal(po2.quantize(kernel), kernel)
    assert po2.signed and po2.integer <= 3


def test_alpha2_and_stochastic_constants_lie_on_their_derived_grids() -> None:
    from kd_trigger.hls.convert import quantized_weights

    model = quantizers_model()
    precision = _precision(model)
    weights = quantized_weights(model, precision)
    alpha2 = weights["alpha2"]["weight"]
    assert np.all(np.abs(alpha2) <= 2.0) and np.any(np.abs(alpha2) > 1.0)  # the shift is real
    for name in ("stochastic", "alpha2", "po2"):
        for key, values in weights[name].items():
            t = precision[name].types[key]
            np.testing.assert_array_equal(t.quantize(values), values, err_msg=f"{name}/{key}")


def test_stochastic_rounding_is_deterministic_at_inference() -> None:
    """QKeras rounds stochastically only in training: two inference calls agree with each other and
    with the same quantizer without stochastic rounding."""
    import tensorflow as tf
    from qkeras import quantized_bits

    x = tf.constant(np.random.default_rng(3).normal(0.0, 2.0, (4000,)).astype(np.float32))
    stoch = quantized_bits(8, 3, alpha=1, use_stochastic_rounding=True)
    plain = quantized_bits(8, 3, alpha=1)
    a, b, c = (np.asarray(q(x)) for q in (stoch, stoch, plain))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)


def test_a_scale_that_is_not_a_power_of_two_is_refused() -> None:
    import tensorflow as tf
    from qkeras import QDense

    from kd_trigger.errors import ModelError

    inp = tf.keras.Input((4,), name="x")
    out = QDense(2, kernel_quantizer=qbits(6, 0, alpha=3), bias_quantizer=qbits(8, 3), name="d")(inp)
    model = tf.keras.Model(inp, out)
    try:
        _precision(model)
    except ModelError as err:
        assert "alpha=3 (not a power of two) is not a fixed-point grid" in str(err)
    else:
        raise AssertionError("alpha=3 was accepted")


class TestQuantizers(LayerTestBase):
    """Stochastic rounding, alpha=2 and quantized_po2 kernels through the hls4ml C simulation."""

    flows: ClassVar[tuple[str, ...]] = ("hls4ml",)

    def build(self) -> Any:
        return quantizers_model()


def binary_ternary_model(seed: int = 0) -> Any:
    """Binary and ternary kernels (hls4ml is handed the +-1 / -1, 0, 1 constants)."""
    import tensorflow as tf
    from qkeras import QActivation, QDense, binary, quantized_relu, ternary

    inp = tf.keras.Input((8,), name="x")
    x = QActivation(qbits(10, 3), name="input_quant")(inp)
    x = QDense(12, kernel_quantizer=binary(alpha=1), bias_quantizer=qbits(8, 3), name="binary")(x)
    x = QActivation(quantized_relu(8, 3), name="relu_0")(x)
    out = QDense(2, kernel_quantizer=ternary(alpha=1), bias_quantizer=qbits(8, 3), name="ternary")(x)
    model = tf.keras.Model(inp, out, name="binary_ternary")
    randomize_weights(model, seed, 0.5)
    return model


def test_binary_and_ternary_kernel_types_are_read_off_their_constants() -> None:
    from kd_trigger.hls.convert import quantized_weights

    model = binary_ternary_model()
    precision = _precision(model)
    assert precision["binary"].types["weight"].hls() == "ap_fixed<2,2>"
    assert precision["ternary"].types["weight"].hls() == "ap_fixed<2,2>"
    weights = quantized_weights(model, precision)
    assert set(np.unique(weights["binary"]["weight"])) == {-1.0, 1.0}
    assert set(np.unique(weights["ternary"]["weight"])) == {-1.0, 0.0, 1.0}


class TestBinaryTernary(LayerTestBase):
    """Binary and ternary kernels through the hls4ml C simulation."""

    flows: ClassVar[tuple[str, ...]] = ("hls4ml",)

    def build(self) -> Any:
        return binary_ternary_model()


def auto_model(alpha: str, seed: int = 1) -> Any:
    """A QDense whose kernel quantizer computes per-channel scales (``alpha="auto"``/``"auto_po2"``)."""
    import tensorflow as tf
    from qkeras import QActivation, QDense

    inp = tf.keras.Input((8,), name="x")
    x = QActivation(qbits(10, 3), name="input_quant")(inp)
    out = QDense(2, kernel_quantizer=qbits(6, 0, alpha), bias_quantizer=qbits(8, 3), name="d")(x)
    model = tf.keras.Model(inp, out, name=f"alpha_{alpha}")
    randomize_weights(model, seed, 0.4)
    return model


def test_auto_and_auto_po2_kernel_types_are_read_off_their_constants() -> None:
    """``alpha="auto_po2"``: per-channel powers of two, a narrow grid; ``alpha="auto"``: any per-channel
    scale, float32 constants on a wide but exact grid."""
    from kd_trigger.hls.convert import quantized_weights

    widths = {}
    for alpha in ("auto_po2", "auto"):
        model = auto_model(alpha)
        precision = _precision(model)
        kernel = quantized_weights(model, precision)["d"]["weight"]
        t = precision["d"].types["weight"]
        np.testing.assert_array_equal(t.quantize(kernel), kernel)
        widths[alpha] = t.hls()
    assert widths == {"auto_po2": "ap_fixed<6,0>", "auto": "ap_fixed<28,1>"}


class TestAutoKernel(LayerTestBase):
    """An ``alpha="auto"`` kernel (non-power-of-two scales) through the hls4ml C simulation."""

    flows: ClassVar[tuple[str, ...]] = ("hls4ml",)

    def build(self) -> Any:
        return auto_model("auto")
