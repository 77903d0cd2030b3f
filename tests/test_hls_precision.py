"""Precision derivation: pure bit-growth rules and the per-layer walk (no TensorFlow needed)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from kd_trigger.errors import ModelError
from kd_trigger.hls.precision import (
    FixedType,
    LayerSpec,
    accumulator_type,
    average_pool_types,
    derive_precision,
    edge_case_inputs,
    product_type,
    quantizer_fixed_type,
)

IN = quantizer_fixed_type(12, 5, True)  # quantized_bits(12, 4, alpha=1)
W = FixedType(8, 2)  # quantized_bits(8, 1, alpha=1) weights
B = FixedType(8, 4)  # quantized_bits(8, 3, alpha=1) biases
ACT = quantizer_fixed_type(8, 3, False)  # quantized_relu(8, 3)


def test_fixed_type_ranges_and_spelling():
    assert IN.hls() == "ap_fixed<12,5,AP_RND_CONV,AP_SAT>"
    assert ACT.hls() == "ap_ufixed<8,3,AP_RND_CONV,AP_SAT>"
    assert W.hls() == "ap_fixed<8,2>"
    assert (IN.min_value, IN.max_value, IN.lsb) == (-16.0, 16.0 - 2**-7, 2**-7)
    assert (ACT.min_value, ACT.max_value, ACT.lsb) == (0.0, 8.0 - 2**-5, 2**-5)
    sym = quantizer_fixed_type(8, 2, True, symmetric=True)
    assert sym.min_value == -sym.max_value


def test_quantize_rounds_half_to_even_and_saturates():
    lsb = IN.lsb
    got = IN.quantize(np.array([0.5 * lsb, 1.5 * lsb, 2.5 * lsb, -0.5 * lsb, 100.0, -100.0]))
    np.testing.assert_array_equal(got, [0.0, 2 * lsb, 2 * lsb, -0.0, IN.max_value, IN.min_value])


def _all_values(t: FixedType) -> np.ndarray:
    return np.arange(t.min_code, t.max_code + 1, dtype=np.float64) * t.lsb


def test_product_type_holds_every_product_exactly():
    a, b = FixedType(5, 2), FixedType(4, 3, signed=False)
    p = product_type(a, b)
    assert (p.width, p.integer, p.signed) == (9, 5, True)
    products = np.multiply.outer(_all_values(a), _all_values(b)).ravel()
    np.testing.assert_array_equal(p.quantize(products), products)  # on the grid and in range


@pytest.mark.parametrize("n_terms", [1, 2, 3, 7, 8, 16, 112])
def test_accumulator_never_overflows_at_the_extremes(n_terms):
    p = product_type(IN, W)
    acc = accumulator_type(p, n_terms, B)
    assert acc.fractional == max(p.fractional, B.fractional)
    # The extreme sums: every product at its extreme and the bias at its extreme.
    extremes = [IN.min_value * W.min_value, IN.min_value * W.max_value, IN.max_value * W.min_value]
    for prod, bias in itertools.product(extremes, (B.min_value, B.max_value)):
        total = n_terms * prod + bias
        assert acc.min_value <= total <= acc.max_value, (n_terms, prod, bias, acc)


def test_accumulator_growth_is_ceil_log2_of_terms_plus_bias():
    p = product_type(IN, W)  # ap_fixed<20,7>
    assert accumulator_type(p, 7, B) == FixedType(23, 10)  # 8 terms: +3 integer bits
    assert accumulator_type(p, 8, B) == FixedType(24, 11)  # 9 terms: +4
    assert accumulator_type(p, 1, None) == p


def test_average_pool_types_hold_the_sum_and_the_exact_mean():
    accum, result, exact = average_pool_types(ACT, 16)
    assert exact
    assert (accum.width, accum.integer, accum.signed) == (16, 7, False)
    assert (result.width, result.integer) == (12, 3)
    assert accum.max_value >= 16 * ACT.max_value
    # every mean of 16 values on the grid is on the result grid
    sums = np.arange(0, 16 * ACT.max_code + 1) * ACT.lsb
    np.testing.assert_array_equal(result.quantize(sums / 16), sums / 16)
    assert not average_pool_types(ACT, 12)[2]
    # hls4ml's 'auto' fallback for this accumulator is ap_fixed<16,6>: 16 x 7.97 = 127.5 overflows it
    assert 16 * ACT.max_value > FixedType(16, 6).max_value


def test_edge_case_inputs_are_on_the_grid_and_hit_the_extremes():
    x = edge_case_inputs(IN, (16, 7), 1000, seed=1)
    assert x.shape == (1000, 16, 7)
    np.testing.assert_array_equal(IN.quantize(x), x)
    for v in (IN.min_value, IN.max_value, 0.0, IN.lsb, -IN.lsb):
        assert np.any(x == v)
    np.testing.assert_array_equal(x[0], IN.min_value)
    np.testing.assert_array_equal(x[1], IN.max_value)


def _mlp_specs() -> list[LayerSpec]:
    return [
        LayerSpec("particles", "InputLayer"),
        LayerSpec("input_quant", "QActivation", activation=IN, activation_class="quantized_bits"),
        LayerSpec("flatten", "Flatten"),
        LayerSpec("dense_0", "QDense", fan_in=112, kernel=W, bias=B),
        LayerSpec("relu_0", "QActivation", activation=ACT, activation_class="quantized_relu"),
        LayerSpec("output", "QDense", fan_in=64, kernel=W, bias=B),
    ]


def test_derive_precision_mlp():
    p = derive_precision(_mlp_specs())
    assert p["particles"].types["result"] == IN
    assert p["dense_0"].types["weight"] == W and p["dense_0"].types["bias"] == B
    # 112 products of ap_fixed<12,5> x ap_fixed<8,2> + bias: 20 bits, 7 integer, + ceil(log2 113) = 7
    assert p["dense_0"].types["accum"] == FixedType(27, 14)
    assert p["relu_0"].types["result"] == ACT
    # the logits: no quantizer follows, so the result is the exact accumulator
    out = p["output"].types
    # ufixed<8,3> x fixed<8,2> = fixed<16,5>; 64 terms + bias: +7 integer bits
    assert out["result"] == out["accum"] == FixedType(23, 12)
    assert "flatten" not in p


def test_derive_precision_deepsets_pool():
    specs = [
        LayerSpec("particles", "InputLayer"),
        LayerSpec("input_quant", "QActivation", activation=IN, activation_class="quantized_bits"),
        LayerSpec("phi_0", "QConv1D", fan_in=7, kernel=W, bias=B),
        LayerSpec("phi_relu_0", "QActivation", activation=ACT, activation_class="quantized_relu"),
        LayerSpec("pool", "GlobalAveragePooling1D", fan_in=16),
        LayerSpec("output", "QDense", fan_in=32, kernel=W, bias=B),
    ]
    p = derive_precision(specs)
    assert p["phi_0"].types["accum"] == FixedType(23, 10)
    assert p["pool"].types["accum"].hls() == "ap_ufixed<16,7>"
    assert p["pool"].types["result"].hls() == "ap_ufixed<12,3>"
    # the head sees the 9 fractional bits of the mean: 9 + 6 = 15 fractional bits in its accumulator
    assert p["output"].types["accum"].fractional == 15


def test_derive_precision_refuses_models_it_cannot_prove():
    no_input_q = [LayerSpec("x", "InputLayer"), LayerSpec("d", "QDense", fan_in=4, kernel=W, bias=B)]
    with pytest.raises(ModelError, match="no input quantizer"):
        derive_precision(no_input_q)
    float_dense = _mlp_specs()[:3] + [LayerSpec("dense", "Dense", fan_in=112)]
    with pytest.raises(ModelError, match="'dense' \\(Dense\\) has no kernel quantizer"):
        derive_precision(float_dense)
    odd = _mlp_specs()[:3] + [LayerSpec("bn", "BatchNormalization")]
    with pytest.raises(ModelError, match="'bn' \\(BatchNormalization\\)"):
        derive_precision(odd)


def test_compare_outputs_counts_exact_agreement_and_argmax():
    from kd_trigger.hls.csim import compare_outputs

    y_q = np.array([[1.0, 2.0], [3.0, -1.0], [0.5, 0.25], [0.0, 1.0]])
    y_h = y_q.copy()
    y_h[1, 1] += 2**-11  # one LSB off, same argmax
    y_h[2] = [0.25, 3.0]  # argmax flips, and this background jet now looks most like a top
    labels = np.array([1, 0, 0, 1])
    got = compare_outputs(y_q, y_h, labels)
    assert got["n_samples"] == 4 and got["n_outputs"] == 8
    assert got["exact_fraction"] == 5 / 8
    assert got["max_abs_diff"] == 2.75
    assert got["argmax_agreement"] == 3 / 4
    assert got["auc_qkeras"] == 1.0
    assert got["auc_hls"] == 0.5
    assert compare_outputs(y_q, y_q)["auc_qkeras"] is None  # no labels, no AUC


def test_load_inputs_checks_shape_and_finiteness(tmp_path):
    from kd_trigger.errors import DataError
    from kd_trigger.hls.saved_model import load_inputs

    one = tmp_path / "one.npy"
    np.save(one, np.ones((16, 7)))
    assert load_inputs(one, (16, 7)).shape == (1, 16, 7)
    bad = tmp_path / "bad.npy"
    np.save(bad, np.ones((3, 7, 16)))
    with pytest.raises(DataError, match=r"shape \(3, 7, 16\) does not match the model input \(N, 16, 7\)"):
        load_inputs(bad, (16, 7))
    inf = tmp_path / "inf.npy"
    np.save(inf, np.full((2, 16, 7), np.inf))
    with pytest.raises(DataError, match="224 NaN/inf"):
        load_inputs(inf, (16, 7))
    with pytest.raises(DataError, match="does not exist"):
        load_inputs(tmp_path / "missing.npy", (16, 7))
