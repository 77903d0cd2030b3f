"""hls4ml conversion + g++ C simulation against QKeras: exactness, and each hls4ml trap shown closed.

Every trap test compiles hls4ml's default (underived) choice for ONE place and shows it is not bit-exact
on adversarial inputs, while the fully derived firmware (shared, module-scoped fixtures) is exact.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import randomize_weights
from layer_base import student

from kd_trigger.config import HlsConfig
from kd_trigger.errors import ModelError
from kd_trigger.hls.precision import edge_case_inputs

pytestmark = pytest.mark.slow

tf = pytest.importorskip("tensorflow")

HLS = HlsConfig()
N_EDGE = 2000


def _student(kind: str, seed: int):
    return student(kind, seed, size="small")


def _physics_like(model, n: int, seed: int) -> np.ndarray:
    """Inputs off the grid (the student's own quantizer puts them on it), a few per cent saturating."""
    return np.random.default_rng(seed).normal(0.0, 3.0, (n, *model.input_shape[1:])).astype(np.float32)


def _inputs(model, converted, seed: int) -> np.ndarray:
    edge = edge_case_inputs(converted.input_type, tuple(model.input_shape[1:]), N_EDGE, seed=seed)
    return np.concatenate([edge.astype(np.float32), _physics_like(model, 500, seed)])


def _convert(model, path: Path, **kwargs):
    from kd_trigger.hls.convert import convert_model

    return convert_model(model, path, HLS, **kwargs)


@pytest.fixture(scope="module")
def mlp(tmp_path_factory):
    model = _student("mlp", 1)
    return model, _convert(model, tmp_path_factory.mktemp("fw") / "mlp")


@pytest.fixture(scope="module")
def deepsets(tmp_path_factory):
    model = _student("deepsets", 2)
    return model, _convert(model, tmp_path_factory.mktemp("fw") / "deepsets")


def _csim(model, converted, x):
    from kd_trigger.hls.csim import run_csim

    return run_csim(model, converted, x, min_exact_fraction=1.0)


def _alive_fraction(model, x) -> float:
    """Fraction of nonzero quantized-ReLU outputs (the test would be vacuous if all were zero)."""
    from kd_trigger.hls.csim import float64_twin, keras_layer_outputs, quantize_inputs

    twin = float64_twin(model)
    names = [layer.name for layer in model.layers if "relu" in layer.name]
    outs = keras_layer_outputs(twin, quantize_inputs(twin, x), names)
    return float(np.mean([np.mean(o != 0) for o in outs.values()]))


@pytest.mark.parametrize("which", ["mlp", "deepsets"])
def test_derived_firmware_is_bit_exact(which, request):
    model, converted = request.getfixturevalue(which)
    x = _inputs(model, converted, seed=5)
    result, y_q, y_h = _csim(model, converted, x)
    assert result.n_samples == len(x)
    assert result.exact_fraction == 1.0, result
    assert result.max_abs_diff == 0.0
    assert result.argmax_agreement == 1.0
    np.testing.assert_array_equal(y_q, y_h)
    assert result.nonzero_output_fraction > 0.9
    assert 0.2 < _alive_fraction(model, x) < 0.95
    # the logits are not degenerate: many distinct values in each
    assert min(len(np.unique(y_q[:, 0])), len(np.unique(y_q[:, 1]))) > 200


@pytest.mark.parametrize("which", ["mlp", "deepsets"])
def test_firmware_weights_are_exactly_the_qkeras_quantized_weights(which, request):
    from kd_trigger.hls.convert import quantized_weights, weight_mismatches

    model, converted = request.getfixturevalue(which)
    assert converted.requantized_layers == []
    assert weight_mismatches(model, converted.hls_model) == {}
    # and the comparison is real: the quantized weights differ from the float ones
    layer = model.layers[-1]
    assert not np.array_equal(quantized_weights(model)[layer.name]["weight"], layer.kernel.numpy())


def test_project_is_renamed_then_compiled_in_place(mlp):
    _, converted = mlp
    project = converted.project_dir
    assert (project / "hls4ml_config.yml").is_file()
    assert (project / "build_lib.sh").is_file()
    assert list(project.glob("firmware/*.so")), "the C-simulation library is built in the final directory"
    assert not [p for p in project.parent.iterdir() if p.name.startswith(".")], "no temporary directory left"
    assert converted.hls_model.config.get_output_dir() == str(project.resolve())
    assert converted.precision["particles"].types["result"].hls() == "ap_fixed<12,5,AP_RND_CONV,AP_SAT>"


def test_trap1_dense_on_3d_input_drops_quantizers(tmp_path):
    """hls4ml rewrites a QDense on (particles, features) into a pointwise Conv1D without its quantizers."""
    from qkeras import QActivation, QDense, quantized_bits, quantized_relu

    from kd_trigger.hls.convert import weight_mismatches

    inp = tf.keras.Input((8, 7), name="particles")
    x = QActivation(quantized_bits(12, 4, alpha=1), name="input_quant")(inp)
    x = QDense(16, kernel_quantizer=quantized_bits(8, 1, alpha=1), bias_quantizer=quantized_bits(8, 3, alpha=1),
               name="phi_0")(x)  # fmt: skip
    x = QActivation(quantized_relu(8, 3), name="phi_relu_0")(x)
    x = tf.keras.layers.GlobalAveragePooling1D(name="pool")(x)
    x = QDense(2, kernel_quantizer=quantized_bits(8, 1, alpha=1), bias_quantizer=quantized_bits(8, 3, alpha=1),
               name="output")(x)  # fmt: skip
    model = tf.keras.Model(inp, x)
    randomize_weights(model, 3)

    raw = _convert(model, tmp_path / "raw", fix_weights=False)  # hls4ml's weights, our types otherwise
    bad = weight_mismatches(model, raw.hls_model)
    assert "phi_0/weight" in bad and bad["phi_0/weight"] > 0
    x_in = _inputs(model, raw, seed=7)
    wrong, _, _ = _csim(model, raw, x_in)
    assert wrong.exact_fraction < 0.5
    assert wrong.first_divergent_layer == "phi_0"

    ours = _convert(model, tmp_path / "ours")
    assert ours.requantized_layers == ["phi_0"]
    assert weight_mismatches(model, ours.hls_model) == {}
    right, _, _ = _csim(model, ours, x_in)
    assert right.exact_fraction == 1.0 and right.max_abs_diff == 0.0


def test_trap2_pooling_accumulator_wraps_with_hls4ml_default(deepsets, tmp_path):
    from kd_trigger.hls.convert import build_hls_config, hls_layer_precision

    model, converted = deepsets
    config = build_hls_config(model, HLS, converted.precision)
    config["LayerName"]["pool"]["Precision"] = {"accum": "auto", "result": "auto"}  # hls4ml's default
    default = _convert(model, tmp_path / "default_pool", config=config)
    assert hls_layer_precision(default.hls_model)["pool"]["accum"].startswith("fixed<16,6")
    x = _inputs(model, converted, seed=9)
    wrong, _, _ = _csim(model, default, x)
    assert wrong.exact_fraction < 0.5
    assert wrong.first_divergent_layer == "pool"
    assert hls_layer_precision(converted.hls_model)["pool"]["accum"] == "ufixed<16,7,TRN,WRAP,0>"
    right, _, _ = _csim(model, converted, x)
    assert right.exact_fraction == 1.0


def test_trap3_result_of_unquantized_layer_defaults_to_fixed_16_6(deepsets, tmp_path):
    """The logits (no quantizer follows) get hls4ml's model default fixed<16,6>: truncated and wrapped.

    Shown on the Deep Sets student: its logits layer is the MLP's (a QDense(2) on a 32-wide 8-bit ReLU,
    hence the same derived type), and its firmware compiles in an eighth of the wide MLP's CPU time (the
    fixtures: 19 against 144 CPU s, measured on a loaded machine)."""
    from kd_trigger.hls.convert import build_hls_config

    model, converted = deepsets
    config = build_hls_config(model, HLS, converted.precision)
    default = config["Model"]["Precision"]["default"]
    assert default == "fixed<16,6>"
    config["LayerName"]["output"]["Precision"]["result"] = default
    config["LayerName"]["output_linear"]["Precision"]["result"] = default
    trunc = _convert(model, tmp_path / "default_result", config=config)
    x = _inputs(model, converted, seed=11)
    wrong, _, _ = _csim(model, trunc, x)
    assert wrong.exact_fraction < 0.5
    assert wrong.first_divergent_layer == "output"
    right, _, _ = _csim(model, converted, x)
    assert right.exact_fraction == 1.0
    # the exact logits type is wider than the default in both directions
    out = converted.precision["output"].types["result"]
    assert out.integer > 6 and out.fractional > 10


def test_inserted_linear_layers_get_the_exact_result_type(mlp):
    """hls4ml keeps '<dense>_linear' when the dense result is set; its 'auto' would fall back to fixed<16,6>."""
    from kd_trigger.hls.convert import build_hls_config

    model, converted = mlp
    config = build_hls_config(model, HLS, converted.precision)
    for name in ("dense_0", "dense_1", "dense_2", "output"):
        want = converted.precision[name].types["result"].hls()
        assert config["LayerName"][f"{name}_linear"]["Precision"]["result"] == want
    # after hls4ml's passes no such layer is left in the firmware
    assert not [layer.name for layer in converted.hls_model.get_layers() if layer.name.endswith("_linear")]


def test_unsupported_layer_is_one_clear_line(tmp_path):
    from qkeras import QActivation, QDense, quantized_bits

    class Scale(tf.keras.layers.Layer):
        def call(self, x):
            return 2.0 * x

    inp = tf.keras.Input((4,), name="x")
    y = QActivation(quantized_bits(8, 3, alpha=1), name="input_quant")(inp)
    y = Scale(name="my_scale")(y)
    y = QDense(
        2, kernel_quantizer=quantized_bits(8, 1, alpha=1), bias_quantizer=quantized_bits(8, 3, alpha=1)
    )(y)
    model = tf.keras.Model(inp, y)
    with pytest.raises(ModelError) as err:
        _convert(model, tmp_path / "p")
    text = str(err.value)
    assert "'my_scale' (Scale)" in text and "not supported by hls4ml" in text and "\n" not in text
    assert not (tmp_path / "p").exists()


def test_vivado_backend_is_bit_exact_too(tmp_path):
    """The selectable Vivado backend gets the same derived precision and the same exactness."""
    from kd_trigger.hls.convert import convert_model

    model = _student("deepsets", 7)
    converted = convert_model(model, tmp_path / "vivado", HlsConfig(backend="Vivado"))
    config = (tmp_path / "vivado" / "hls4ml_config.yml").read_text()
    assert "Backend: Vivado" in config
    x = _inputs(model, converted, seed=9)
    result, y_q, y_h = _csim(model, converted, x)
    assert result.exact_fraction == 1.0 and result.max_abs_diff == 0.0
    np.testing.assert_array_equal(y_q, y_h)


def test_folded_deepsets_is_bit_exact_in_c_simulation_and_the_estimate_follows(tmp_path):
    """hls.ii_cycles k: the per-particle Conv1D computes 8/k particles at once (ParallelizationFactor),
    the C simulation stays exact, and the estimate has II = k x reuse and 1/k of the phi multipliers."""
    from kd_trigger.fpga.estimate import estimate_model
    from kd_trigger.hls.convert import convert_model

    model = student("deepsets", 2)
    figures = {}
    for k in (1, 2, 4):
        converted = convert_model(model, tmp_path / f"k{k}", HlsConfig(ii_cycles=k, reuse_factor=1))
        partitions = {
            layer.name: int(layer.get_attr("n_partitions"))
            for layer in converted.hls_model.get_layers()
            if layer.name.startswith("phi_") and layer.get_attr("n_partitions")
        }
        assert partitions == {"phi_0": k, "phi_1": k}
        csim, _, _ = _csim(model, converted, _inputs(model, converted, seed=k))
        assert csim.exact_fraction == 1.0
        est = estimate_model(converted.hls_model, 1, 5.0).to_dict()
        figures[k] = est
        assert est["ii_cycles"] == k
    phi = {
        k: sum(x["multipliers"] for x in e["layers"] if x["name"] in ("phi_0", "phi_1"))
        for k, e in figures.items()
    }
    assert phi[1] == 2 * phi[2] == 4 * phi[4] > 0
    # reuse multiplies: II = k x reuse
    converted = convert_model(
        model, tmp_path / "k2r2", HlsConfig(ii_cycles=2, reuse_factor=2), compile_model=False
    )
    assert estimate_model(converted.hls_model, 2, 5.0).ii_cycles == 4
