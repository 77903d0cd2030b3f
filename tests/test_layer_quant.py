"""Per-layer precision (issue 20, lever 3): ``students[].quant.layers.<layer>`` overrides reach the layer's
quantizers, the derived firmware types, the students' own accumulator/output types, and the C simulation
stays exact (slow)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kd_trigger.config import HlsConfig, StudentConfig, parse_config
from kd_trigger.errors import ConfigError, ModelError

OVERRIDES = {
    "phi_0": {"weight_bits": 10, "weight_int": 2, "activation_bits": 6, "activation_int": 2},
    "rho_relu_0": {"activation_bits": 5, "activation_int": 3},
    "output": {"weight_bits": 4, "bias_bits": 6},
}


def _spec(**quant_layers) -> StudentConfig:
    return StudentConfig(
        name="s",
        kind="deepsets",
        n_particles=4,
        hidden=(8, 8),
        head=(8,),
        quant={"layers": quant_layers or OVERRIDES},
    )


def test_layer_quant_merges_the_override_into_the_student_quant() -> None:
    spec = _spec()
    q = spec.layer_quant("phi_0")
    assert (q.weight_bits, q.weight_int, q.bias_bits, q.activation_bits, q.activation_int) == (10, 2, 8, 6, 2)
    assert spec.layer_quant("phi_relu_0") == q  # the ReLU after phi_0 takes phi_0's activation widths
    assert spec.layer_quant("phi_1") == spec.quant.model_copy(update={"layers": {}})
    assert spec.layer_quant("rho_0").activation_bits == 5
    assert spec.override_key("output") == "students[name=s].quant.layers.output"
    assert spec.override_key("phi_1") is None


def test_unknown_layer_names_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(
            {
                "students": [
                    {"name": "m", "kind": "mlp", "hidden": [4, 4], "quant": {"layers": {"dense_7": {}}}}
                ]
            }
        )
    assert "quant.layers.dense_7 names no layer" in str(err.value)
    assert "valid names: dense_0, relu_0, dense_1, relu_1, output" in str(err.value)


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        ({"output": {"activation_bits": 4}}, "no activation after it"),
        ({"relu_0": {"weight_bits": 4}}, "only activation_bits / activation_int apply"),
        ({"dense_0": {"activation_bits": 4}, "relu_0": {"activation_bits": 5}}, "set twice"),
        ({"dense_0": {"weight_bits": 1}}, "students[0].quant.layers.dense_0.weight_bits"),
        (
            {"dense_0": {"weight_bits": 3, "weight_int": 3}},
            "quant.layers.dense_0: weight_int (3) must be below",
        ),
    ],
)
def test_inconsistent_overrides_are_refused(layers, message) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"students": [{"name": "m", "kind": "mlp", "hidden": [4], "quant": {"layers": layers}}]})
    assert message in str(err.value)


def test_accumulator_check_names_the_override_key() -> None:
    from kd_trigger.models.students import check_student

    base = {"input_bits": 32, "input_int": 12, "weight_bits": 8, "weight_int": 4}
    ok = StudentConfig(name="w", kind="mlp", n_particles=16, quant=base)
    check_student(ok)
    wide = StudentConfig(
        name="w",
        kind="mlp",
        n_particles=16,
        quant={**base, "layers": {"dense_0": {"weight_bits": 16, "weight_int": 4}}},
    )
    with pytest.raises(ModelError) as err:
        check_student(wide)
    assert "layer 0 (dense_0) needs 55 bits" in str(err.value)
    assert "lower students[name=w].quant.layers.dense_0" in str(err.value)


def test_override_reaches_the_quantizers_and_the_derived_types() -> None:
    """The built layers carry the overridden quantizers; the derived firmware types (the precision table of
    hls_report.json) show them, and the students' own accumulator widths and output type agree with it."""
    pytest.importorskip("tensorflow")
    from kd_trigger.hls.convert import model_precision
    from kd_trigger.models.students import accumulator_widths, build_student, output_type

    spec = _spec()
    model = build_student(spec)
    assert model.get_layer("phi_0").kernel_quantizer_internal.bits == 10
    assert model.get_layer("phi_1").kernel_quantizer_internal.bits == 8
    assert model.get_layer("phi_relu_0").quantizer.bits == 6
    assert model.get_layer("output").bias_quantizer_internal.bits == 6
    precision = {name: p.to_dict() for name, p in model_precision(model).items()}
    assert precision["phi_0"]["weight"] == "ap_fixed<10,3>"
    assert precision["phi_relu_0"]["result"].startswith("ap_ufixed<6,2,")
    assert precision["phi_1"]["weight"] == "ap_fixed<8,2>"
    assert precision["rho_relu_0"]["result"].startswith("ap_ufixed<5,3,")
    assert precision["output"]["weight"] == "ap_fixed<4,2>"
    assert precision["output"]["bias"] == "ap_fixed<6,4>"
    derived = model_precision(model)
    weight_layers = ["phi_0", "phi_1", "rho_0", "output"]
    assert accumulator_widths(spec) == [
        (i, derived[n].types["accum"].width) for i, n in enumerate(weight_layers)
    ]
    assert output_type(spec) == derived["output"].types["result"].exact()
    # without the override the widths differ: the test is not vacuous
    plain = StudentConfig(name="s", kind="deepsets", n_particles=4, hidden=(8, 8), head=(8,))
    assert accumulator_widths(plain) != accumulator_widths(spec)


@pytest.mark.slow
def test_override_is_exact_in_c_simulation(tmp_path: Path) -> None:
    """The student with per-layer widths converts with those widths in hls4ml's own types and its C
    simulation equals QKeras on every output."""
    pytest.importorskip("tensorflow")
    from conftest import randomize_weights

    from kd_trigger.hls.convert import convert_model, hls_layer_precision
    from kd_trigger.hls.csim import run_csim
    from kd_trigger.hls.precision import edge_case_inputs
    from kd_trigger.models.students import build_student

    model = build_student(_spec())
    randomize_weights(model, 3)
    converted = convert_model(model, tmp_path / "fw", HlsConfig())
    written = hls_layer_precision(converted.hls_model)
    assert written["phi_0"]["weight"].startswith("fixed<10,3,")
    assert written["phi_relu_0"]["result"].startswith("ufixed<6,2,RND_CONV,SAT")
    assert written["output"]["weight"].startswith("fixed<4,2,")
    assert written["output"]["bias"].startswith("fixed<6,4,")
    from kd_trigger.fpga.estimate import layers_from_hls_model

    estimated = {spec.name: spec for spec in layers_from_hls_model(converted.hls_model, 1)}
    assert (
        estimated["phi_0"].weight_bits,
        estimated["phi_1"].weight_bits,
        estimated["output"].weight_bits,
    ) == (10, 8, 4)
    edge = edge_case_inputs(converted.input_type, tuple(model.input_shape[1:]), 1000, seed=2)
    rng = np.random.default_rng(2)
    x = np.concatenate(
        [edge.astype(np.float32), rng.normal(0, 3, (500, *model.input_shape[1:])).astype(np.float32)]
    )
    result, y_q, y_h = run_csim(model, converted, x, min_exact_fraction=1.0)
    assert result.exact_fraction == 1.0, result
    np.testing.assert_array_equal(y_q, y_h)
    assert len(np.unique(y_q[:, 0])) > 50
