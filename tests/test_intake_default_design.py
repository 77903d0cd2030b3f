"""Issue 22: a model with float layers and no types given gets the design hls4ml builds by default
(``config_from_keras_model(model, granularity="name")``: ap_fixed<16,6> for the input, the weights, the
accumulators and the activations), judged exactly against the reference that emulates it, with its
precision loss against the float model reported; what the reference cannot emulate is refused in one
line. The models are built in the shape of hls4ml's example models (KERAS_3layer: 16-64-32-32-5, softmax).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from layer_base import keras_3layer, qdense_mlp

from kd_trigger.config import HlsConfig
from kd_trigger.hls.default_design import (
    DESIGN,
    default_design,
    hls4ml_default_types,
    needs_default_design,
    precision_loss,
)

tf = pytest.importorskip("tensorflow")


def test_which_models_get_the_default_design() -> None:
    model = keras_3layer()
    assert needs_default_design(model, HlsConfig())
    assert not needs_default_design(model, HlsConfig(default_precision="ap_fixed<16,6>"))
    assert not needs_default_design(model, HlsConfig(input_precision="ap_fixed<12,4>"))
    assert not needs_default_design(qdense_mlp(), HlsConfig())  # fully quantized: the derived exact types


def test_the_types_are_hls4mls_own_defaults() -> None:
    default, types, fused = hls4ml_default_types(keras_3layer(), HlsConfig())
    assert fused == {}
    assert default == "ap_fixed<16,6>"
    fixed = "ap_fixed<16,6>"
    assert types["input_1"] == {"result": fixed}
    # accum: hls4ml's default (config_from_keras_model without a backend lists no accum); result inferred
    assert types["fc1"] == {"weight": fixed, "bias": fixed, "accum": fixed, "result": "ap_fixed<37,17>"}
    assert types["fc2"] == {"weight": fixed, "bias": fixed, "accum": fixed, "result": "ap_fixed<39,19>"}
    assert types["fc1_relu"] == {"result": fixed} and types["fc3_relu"] == {"result": fixed}


def test_the_reference_emulates_the_default_design_by_hand() -> None:
    """fc1 of the default design, by hand: weights truncated onto 2**-10 (hls4ml prints 10 decimals, the
    C++ cast truncates), every product truncated onto 2**-10, the sum wrapped into [-32, 32), relu."""
    from kd_trigger.layers.model import model_precision, quantized_weights
    from kd_trigger.layers.reference import float64_twin, keras_layer_outputs, quantize_inputs
    from kd_trigger.layers.spec import Intake

    model = keras_3layer()
    hls, design_model = default_design(model, HlsConfig())
    assert design_model is model  # nothing fused
    assert hls.input_precision == "ap_fixed<16,6>" and hls.default_precision == "ap_fixed<16,6>"
    precision = model_precision(model, Intake.from_hls(hls))
    assert precision["fc1"].emulated and precision["fc1_relu"].emulated
    assert precision["fc1"].weights_cast and precision["fc1"].types["accum"].hls() == "ap_fixed<16,6>"
    weights = quantized_weights(model, precision)
    kernel = model.get_layer("fc1").kernel.numpy().astype(np.float64)
    want_w = (
        np.floor(np.array([float(f"{v:.10f}") for v in kernel.ravel()]) * 1024).reshape(kernel.shape) / 1024
    )
    np.testing.assert_array_equal(weights["fc1"]["weight"], want_w)
    twin = float64_twin(model, weights, precision)
    rng = np.random.default_rng(0)
    x = quantize_inputs(twin, rng.normal(0.0, 24.0, (2000, 16)), precision["input_1"].types["result"])
    got = keras_layer_outputs(twin, x, ["fc1", "fc1_relu"])
    products = np.floor(x[:, :, None] * want_w[None] * 1024) / 1024
    acc = products.sum(axis=1) + weights["fc1"]["bias"]
    wrapped = (acc + 32.0) % 64.0 - 32.0
    np.testing.assert_array_equal(got["fc1"], wrapped)
    np.testing.assert_array_equal(got["fc1_relu"], np.maximum(wrapped, 0.0))
    assert np.any(wrapped != acc)  # these inputs do overflow the default accumulator


def test_precision_loss_figures() -> None:
    y_float = np.array([[1.0, 2.0, 0.5], [3.0, 0.0, 0.0], [0.0, 0.0, 1.0], [2.0, 1.0, 0.0]])
    y_design = np.array([[1.0, 1.5, 0.5], [3.0, 0.0, 4.0], [0.0, 0.0, 1.0], [2.0, 1.0, 0.0]])
    loss = precision_loss(y_float, y_design, "output", DESIGN)
    assert loss["max_abs_diff"] == 4.0
    assert loss["mean_abs_diff"] == pytest.approx(4.5 / 12)
    assert loss["decision_changed_fraction"] == 0.25  # sample 1: argmax 0 -> 2
    assert loss["n_samples"] == 4 and loss["compared_layer"] == "output" and loss["design"] == DESIGN
    one = precision_loss(np.array([[0.5], [-0.25]]), np.array([[-0.5], [-0.25]]), None, DESIGN)
    assert one["decision_changed_fraction"] == 0.5  # one output: its sign decides


def test_a_batch_norm_is_fused_into_the_dense_as_hls4ml_fuses_it() -> None:
    """KERAS_3layer_batch_norm: hls4ml folds bn1 into fc1 (its result type is auto); the design built
    is that fused Dense, with the fused float constants hls4ml computed, cast as it casts them."""
    from kd_trigger.layers.model import model_precision, quantized_weights
    from kd_trigger.layers.spec import Intake

    model = keras_3layer(batch_norm=True)
    hls, design_model = default_design(model, HlsConfig())
    assert [layer.name for layer in design_model.layers] == [
        "input_1",
        "fc1",
        "relu1",
        "fc2",
        "fc3",
        "output",
        "softmax",
    ]
    bn = model.get_layer("bn1")
    gamma, beta, mean, var = (np.asarray(w, dtype=np.float64) for w in bn.get_weights())
    scale = gamma / np.sqrt(var + bn.epsilon)
    kernel, bias = (np.asarray(w, dtype=np.float64) for w in model.get_layer("fc1").get_weights())
    fused_kernel, fused_bias = design_model.get_layer("fc1").get_weights()
    np.testing.assert_allclose(fused_kernel, kernel * scale, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fused_bias, bias * scale + beta - mean * scale, rtol=1e-5, atol=1e-5)
    precision = model_precision(design_model, Intake.from_hls(hls))
    assert precision["fc1"].types["weight"].hls() == "ap_fixed<16,6>" and precision["fc1"].weights_cast
    assert precision["relu1"].types["result"].hls() == "ap_fixed<16,6>" and precision["relu1"].emulated
    fw = quantized_weights(design_model, precision)["fc1"]["weight"]
    want = np.floor(np.array([float(f"{v:.10f}") for v in fused_kernel.ravel()]) * 1024) / 1024
    np.testing.assert_array_equal(fw.ravel(), want)
    # per-layer precision loss: the fused fc1 is compared with the saved model's bn1 output
    from kd_trigger.hls.layer_loss import reference_names

    assert reference_names(design_model, model) == {"fc1": "bn1"}


@pytest.mark.slow
def test_keras_3layer_converts_as_hls4ml_builds_it_exact_with_its_precision_loss(tmp_path: Path) -> None:
    from kd_trigger.cli import main

    path = tmp_path / "KERAS_3layer.h5"
    keras_3layer().save(path, save_format="h5")
    out = tmp_path / "fw"
    assert main(["hls", "--model", str(path), "--out", str(out)]) == 0
    defines = (out / "firmware" / "defines.h").read_text()
    for line in ("ap_fixed<16,6> input_t;", "ap_fixed<16,6> fc1_accum_t;", "ap_fixed<16,6> fc2_weight_t;"):
        assert f"typedef {line}" in defines
    report = json.loads((out / "hls_report.json").read_text())
    assert report["csim"]["exact_fraction"] == 1.0 and report["csim"]["compared_layer"] == "output"
    assert report["precision"]["fc1"]["accum"] == "ap_fixed<16,6>"
    loss = report["precision_loss"]
    assert loss["design"] == DESIGN and loss["compared_layer"] == "output" and loss["n_samples"] == 10_000
    # the random edge inputs span ap_fixed<16,6>'s whole range: the default accumulators overflow
    assert loss["max_abs_diff"] > 1.0 and 0.0 < loss["decision_changed_fraction"] < 1.0
    # the inputs lie on the input grid (no saturation there); fc1's ap_fixed<16,6> accumulator wraps first
    assert list(loss["layers"])[:3] == ["input_1", "fc1", "fc1_relu"] and list(loss["layers"])[-1] == "output"
    assert (
        loss["layers"]["input_1"]["overflow_count"] == 0 and loss["layers"]["input_1"]["max_abs_diff"] == 0.0
    )
    assert loss["first_overflow_layer"] == "fc1" and loss["layers"]["fc1"]["overflow_count"] > 0


def test_precision_loss_is_zero_for_exact_types_and_runs_on_power_of_two_scaled_kernels() -> None:
    """Derived exact types compute the model's own arithmetic: no loss. A model with alpha=None kernels
    (QKeras' power-of-two scales cannot run in float64; its reference holds the quantized constants) and
    a float head with assumed ap_fixed<16,6> weights: a loss, measured (it crashed the conversion)."""
    from types import SimpleNamespace

    from layer_base import l1_deep_sets

    from kd_trigger.fixed import FixedType
    from kd_trigger.hls.default_design import measure_precision_loss
    from kd_trigger.layers.model import model_precision
    from kd_trigger.layers.spec import Intake

    rng = np.random.default_rng(0)
    model = qdense_mlp()
    exact = SimpleNamespace(precision=model_precision(model), input_type=None)
    loss = measure_precision_loss(model, exact, rng.normal(0.0, 3.0, (500, 16)), None, "exact")
    assert (loss["max_abs_diff"], loss["decision_changed_fraction"]) == (0.0, 0.0)
    model = l1_deep_sets()
    intake = Intake(input_type=FixedType(12, 4), default_type=FixedType(16, 6))
    design = SimpleNamespace(precision=model_precision(model, intake), input_type=FixedType(12, 4))
    x = rng.normal(0.0, 2.0, (500, *model.input_shape[1:]))
    loss = measure_precision_loss(model, design, x, "head", "assumed")
    assert loss["compared_layer"] == "head" and 0.0 < loss["max_abs_diff"] < 0.1


def _narrow_identity_model() -> Any:
    """x(2) -> fc1 = identity Dense -> relu1 -> out = Dense(1) summing both: every number by hand."""
    inp = tf.keras.Input((2,), name="x")
    h = tf.keras.layers.Dense(2, name="fc1")(inp)
    h = tf.keras.layers.Activation("relu", name="relu1")(h)
    out = tf.keras.layers.Dense(1, name="out")(h)
    model = tf.keras.Model(inp, out)
    model.get_layer("fc1").set_weights([np.eye(2), np.zeros(2)])
    model.get_layer("out").set_weights([np.ones((2, 1)), np.zeros(1)])
    return model


def test_per_layer_precision_loss_counts_overflows_where_they_happen() -> None:
    """Input ap_fixed<8,4> (range [-8, 7.9375]), fc1's result configured ap_fixed<5,3> (range [-4, 3.75],
    LSB 0.25, truncation, wrap-around). Inputs [1, 2.5], [5, -1], [9, 0.5]: 9 saturates to 7.9375 at the
    input (one overflow); in fc1 5 wraps to -3 and 7.9375 truncates to 7.75 and wraps to -0.25 (two
    overflows); relu1 and out only inherit the error (no overflow of their own)."""
    from types import SimpleNamespace

    from kd_trigger.hls.default_design import measure_precision_loss
    from kd_trigger.layers.model import model_precision
    from kd_trigger.layers.spec import Intake

    model = _narrow_identity_model()
    hls = HlsConfig(
        input_precision="ap_fixed<8,4>",
        default_precision="ap_fixed<16,6>",
        configured_types={"fc1": {"result": "ap_fixed<5,3>"}},
    )
    precision = model_precision(model, Intake.from_hls(hls))
    assert precision["fc1"].emulated and not precision["relu1"].emulated
    design = SimpleNamespace(precision=precision, input_type=precision["x"].types["result"])
    x_raw = np.array([[1.0, 2.5], [5.0, -1.0], [9.0, 0.5]])
    loss = measure_precision_loss(model, design, x_raw, None, "narrow")
    layers = loss["layers"]
    assert list(layers) == ["x", "fc1", "relu1", "out"]
    assert layers["x"] == {
        "compared_with": "x",
        "result_type": "ap_fixed<8,4>",
        "n_values": 6,
        "max_abs_diff": 1.0625,
        "mean_abs_diff": pytest.approx(1.0625 / 6),
        "overflow_count": 1,
    }
    # design fc1: [1, 2.5], [-3, -1], [-0.25, 0.5] against the float [1, 2.5], [5, -1], [9, 0.5]
    assert (layers["fc1"]["max_abs_diff"], layers["fc1"]["overflow_count"]) == (9.25, 2)
    assert layers["fc1"]["mean_abs_diff"] == pytest.approx(17.25 / 6)
    assert layers["fc1"]["result_type"] == "ap_fixed<5,3>"
    # relu1: [1, 2.5], [0, 0], [0, 0.5] against [1, 2.5], [5, 0], [9, 0.5]
    assert (layers["relu1"]["max_abs_diff"], layers["relu1"]["overflow_count"]) == (9.0, 0)
    assert layers["relu1"]["mean_abs_diff"] == pytest.approx(14.0 / 6)
    # out: 3.5, 0, 0.5 against 3.5, 5, 9.5
    assert (layers["out"]["max_abs_diff"], layers["out"]["overflow_count"]) == (9.0, 0)
    assert loss["max_abs_diff"] == 9.0 and loss["mean_abs_diff"] == pytest.approx(14.0 / 3)
    assert loss["decision_changed_fraction"] == pytest.approx(1 / 3)  # 5 > 0 became 0
    assert loss["first_overflow_layer"] == "x"
    # Without the saturating input, fc1 overflows first; without any overflow: None
    assert measure_precision_loss(model, design, x_raw[:2], None, "narrow")["first_overflow_layer"] == "fc1"
    quiet = measure_precision_loss(model, design, x_raw[:1], None, "narrow")
    assert quiet["first_overflow_layer"] is None
    assert [v["overflow_count"] for v in quiet["layers"].values()] == [0, 0, 0, 0]


def test_the_summary_line_names_the_overflows() -> None:
    from kd_trigger.hls.layer_loss import overflow_summary

    loss = {
        "first_overflow_layer": "x",
        "layers": {
            "x": {"overflow_count": 1, "n_values": 6},
            "fc1": {"overflow_count": 2, "n_values": 6},
            "out": {"overflow_count": 0, "n_values": 3},
        },
    }
    assert overflow_summary(loss) == "overflows (wrapped/saturated values) first at x: x 1/6, fc1 2/6"
    assert (
        overflow_summary({"first_overflow_layer": None, "layers": {}})
        == "no value overflowed a configured type"
    )


def test_a_mean_over_three_is_divided_as_hls4mls_avg_divides_it() -> None:
    """nnet::avg by hand: accum ap_fixed<8,4> (LSB 1/16, wraps at [-8, 8)), y /= 3 truncates the code
    towards zero, result ap_fixed<10,4> (LSB 1/64). Column 0: 1+2+2 = 5 = 80/16, 80/3 -> 26: 1.625.
    Column 1: -2.125 = -34/16, -34/3 -> -11 (not -12): -0.6875. Column 2: 7+7 wraps to -2, -2+1 = -1 =
    -16/16, -16/3 -> -5: -0.3125."""
    from kd_trigger.fixed import FixedType
    from kd_trigger.layers.pooling import emulated_pool

    tf.keras.backend.set_floatx("float64")
    try:
        inp = tf.keras.Input((3, 3), dtype="float64")
        model = tf.keras.Model(inp, emulated_pool("pool", inp, 3, FixedType(8, 4), FixedType(10, 4)))
        x = np.array([[[1.0, -1.0, 7.0], [2.0, -1.0, 7.0], [2.0, -0.125, 1.0]]])
        got = np.asarray(model(x))
    finally:
        tf.keras.backend.set_floatx("float32")
    np.testing.assert_array_equal(got, [[1.625, -0.6875, -0.3125]])


def test_a_mean_over_20_particles_without_a_quantizer_gets_hls4mls_types_emulated() -> None:
    """The 20-particle Deep Sets without a quantizer after its pooling (refused before): hls4ml's default
    design gives the pooling its ap_fixed<16,6> accum and result, and the reference emulates them."""
    from layer_base import l1_deep_sets

    from kd_trigger.layers.model import model_precision
    from kd_trigger.layers.spec import Intake

    model = l1_deep_sets(20)
    hls, design_model = default_design(model, HlsConfig())
    pool = model_precision(design_model, Intake.from_hls(hls))["pool"]
    assert pool.emulated and pool.kind == "pooling"
    assert {k: t.hls() for k, t in pool.types.items()} == {
        "accum": "ap_fixed<16,6>",
        "result": "ap_fixed<16,6>",
    }
    # the RTL flow builds exact types only: it names the fields it cannot honour, here the pooling's
    from kd_trigger.errors import ModelError
    from kd_trigger.hls.saved_model import refuse_narrowed_types

    with pytest.raises(ModelError) as err:
        refuse_narrowed_types({"pool": pool})
    assert str(err.value) == (
        "--hls-config: the RTL flow cannot honour layer 'pool' accum ap_fixed<16,6> (no exact type: a mean over a "
        "non-power-of-two count), layer 'pool' result ap_fixed<16,6> (no exact type: a mean over a non-power-of-two "
        "count): it builds exact types only and rounds only at quantizers (hls --model builds and judges this design)"
    )


@pytest.mark.slow
def test_a_mean_over_20_particles_without_a_quantizer_converts_exactly(tmp_path: Path) -> None:
    """hls --model on it with no options: exit 0, the C simulation equal to the emulated division on
    every output, and the pooling's wrapped sums (20 relu values up to 7.97 in ap_fixed<16,6>) counted."""
    from layer_base import l1_deep_sets

    from kd_trigger.cli import main

    path = tmp_path / "deep_sets20.h5"
    l1_deep_sets(20).save(path, save_format="h5")
    out = tmp_path / "fw"
    assert main(["hls", "--model", str(path), "--out", str(out)]) == 0
    report = json.loads((out / "hls_report.json").read_text())
    assert report["csim"]["exact_fraction"] == 1.0 and report["csim"]["compared_layer"] == "head"
    assert report["precision"]["pool"]["accum"] == "ap_fixed<16,6>"
    assert report["precision_loss"]["layers"]["pool"]["overflow_count"] > 0


def float_lookup_mlp(seed: int = 1) -> Any:
    """A float Keras MLP with lookup-table activations between its layers: Dense(16, tanh) -> Dense(8) ->
    Activation(sigmoid) -> Dense(3)."""
    from tensorflow.keras import layers

    tf.keras.utils.set_random_seed(seed)
    inp = tf.keras.Input((10,), name="input_1")
    x = layers.Dense(16, activation="tanh", name="fc1")(inp)
    x = layers.Dense(8, name="fc2")(x)
    x = layers.Activation("sigmoid", name="sig")(x)
    out = layers.Dense(3, name="output")(x)
    return tf.keras.Model(inp, out, name="float_lookup")


def test_lookup_activations_get_hls4mls_default_table_and_result_types() -> None:
    _, types, _ = hls4ml_default_types(float_lookup_mlp(), HlsConfig())
    # hls4ml's defaults: table ap_fixed<18,8> (its backend's table_t), result the model default
    assert types["fc1_tanh"] == {"result": "ap_fixed<16,6>", "table": "ap_fixed<18,8>"}
    assert types["sig"] == {"result": "ap_fixed<16,6>", "table": "ap_fixed<18,8>"}


@pytest.mark.slow
def test_a_float_model_with_tanh_and_sigmoid_between_layers_converts_exactly(tmp_path: Path) -> None:
    """hls4ml's tanh and sigmoid tables in the middle of a model: the C simulation equals the reference
    that emulates them bit for bit, and the tables' loss against the float functions is reported."""
    from kd_trigger.cli import main

    path = tmp_path / "lookup.h5"
    float_lookup_mlp().save(path, save_format="h5")
    out = tmp_path / "fw"
    assert main(["hls", "--model", str(path), "--out", str(out)]) == 0
    report = json.loads((out / "hls_report.json").read_text())
    assert report["csim"]["exact_fraction"] == 1.0 and report["csim"]["compared_layer"] is None
    assert report["precision"]["fc1_tanh"]["table"] == "ap_fixed<18,8>"
    loss = report["precision_loss"]
    layers = loss["layers"]
    # the edge inputs span ap_fixed<16,6>: fc1's default accumulator wraps first; the tables themselves
    # never overflow their result type, and their outputs stay within the functions' ranges
    assert loss["first_overflow_layer"] == "fc1" and layers["fc1"]["overflow_count"] > 0
    for name in ("fc1_tanh", "sig"):
        assert layers[name]["overflow_count"] == 0 and layers[name]["result_type"] == "ap_fixed<16,6>"
    assert 0.0 < layers["fc1_tanh"]["max_abs_diff"] <= 2.0 and 0.0 < layers["sig"]["max_abs_diff"] <= 1.0


@pytest.mark.slow
def test_a_configured_table_t_is_built_and_emulated(tmp_path: Path) -> None:
    """A QKeras model (its types derived, not hls4ml's defaults) with an engineer's config giving the
    sigmoid a narrower table through hls4ml's layer-level ``table_t`` key (the key hls4ml 1.3 reads it
    from): that table is built, and the C simulation equals the reference that emulates it, bit for bit.
    Before the key was read, the derived ap_fixed<18,8> table was built instead."""
    import yaml
    from test_layer_kinds import lookup_model

    from kd_trigger.cli import main

    path = tmp_path / "lookup.h5"
    lookup_model("tanh", "sigmoid").save(path, save_format="h5")
    config = {
        "Model": {"Precision": "auto", "ReuseFactor": 1},
        "LayerName": {"act": {"table_t": "ap_fixed<12,4>"}},
    }
    (tmp_path / "hls4ml_config.yml").write_text(yaml.safe_dump(config))
    out = tmp_path / "fw"
    assert (
        main(
            [
                "hls",
                "--model",
                str(path),
                "--hls-config",
                str(tmp_path / "hls4ml_config.yml"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    report = json.loads((out / "hls_report.json").read_text())
    assert report["csim"]["exact_fraction"] == 1.0
    assert report["precision"]["act"]["table"] == "ap_fixed<12,4>"
    assert report["precision"]["d1_tanh"]["table"] == "ap_fixed<18,8>"  # silent: the derived table
