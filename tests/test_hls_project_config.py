"""Issue 22 item 1 (start): ``hls --model M.h5 --hls-config hls4ml_config.yml``: the engineer's hls4ml
configuration, read as hls4ml writes it, checked, and built where it is exactly judged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from cli_helpers import Case, assert_refused_cleanly
from layer_base import qbits, qdense_mlp, save_and_load

from kd_trigger.errors import ConfigError, ModelError
from kd_trigger.fixed import FixedType
from kd_trigger.hls.project_config import configure, parse_precision, read_project_config


@pytest.fixture(scope="module")
def model_h5(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("models") / "tiny.h5"
    save_and_load(qdense_mlp(), path)
    return path


def hls4ml_dict(model: Any) -> dict[str, Any]:
    """What hls4ml 1.3's ``config_from_keras_model(model, granularity="name")`` returns."""
    import hls4ml

    return hls4ml.utils.config_from_keras_model(model, granularity="name")


def project_yaml(d: Path, hls_config: dict[str, Any], **top: Any) -> Path:
    """An hls4ml project configuration as hls4ml writes it (hls4ml_config.yml)."""
    doc = {
        "Backend": "Vitis",
        "Part": "xcvu9p-flga2104-2L-e",
        "ClockPeriod": 4,
        "IOType": "io_parallel",
        "ProjectName": "myproject",
        "HLSConfig": hls_config,
        **top,
    }
    path = d / "hls4ml_config.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


# -- reading ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("fixed<12,5,RND_CONV,SAT,0>", "ap_fixed<12,5,AP_RND_CONV,AP_SAT>"),
        ("ufixed<8,3,RND_CONV,SAT,0>", "ap_ufixed<8,3,AP_RND_CONV,AP_SAT>"),
        ("fixed<16,6>", "ap_fixed<16,6>"),
        ("ap_fixed<16,6,AP_RND,AP_SAT>", "ap_fixed<16,6,AP_RND,AP_SAT>"),
        ("ap_int<8>", "ap_fixed<8,8>"),
        ("uint<4>", "ap_ufixed<4,4>"),
    ],
)
def test_hls4ml_precision_strings(text: str, want: str) -> None:
    t = parse_precision(text, "x")
    assert t is not None and t.hls() == want


def test_auto_and_an_unknown_precision_string() -> None:
    assert parse_precision("auto", "x") is None
    with pytest.raises(
        ConfigError, match=r"^L Precision weight: unknown precision 'float32'; write ap_fixed"
    ):
        parse_precision("float32", "L Precision weight")


def test_hls4ml_default_config_of_a_model_is_read_and_holds_the_exact_types(
    model_h5: Path, tmp_path: Path
) -> None:
    from kd_trigger.config import HlsConfig
    from kd_trigger.hls.convert import model_precision
    from kd_trigger.hls.precision import Intake
    from kd_trigger.hls.saved_model import load_qkeras_model

    model = load_qkeras_model(model_h5)
    path = tmp_path / "cfg.yml"
    path.write_text(yaml.safe_dump(hls4ml_dict(model)))
    project = read_project_config(path)
    assert project.overrides == {"hls.reuse_factor": 1}
    assert project.layer_types == {
        "input_quant": {"result": "ap_fixed<12,5,AP_RND_CONV,AP_SAT>"},
        "dense_0": {"weight": "ap_fixed<8,2>", "bias": "ap_fixed<8,4>"},
        "relu_0": {"result": "ap_ufixed<8,3,AP_RND_CONV,AP_SAT>"},
        "output": {"weight": "ap_fixed<8,2>", "bias": "ap_fixed<8,4>"},
    }
    hls = configure(HlsConfig(), model, project)
    assert hls.configured_types == project.layer_types
    assert "configured_types" not in hls.model_dump()  # the pipeline's fingerprints do not see it
    # hls4ml's own types for a QKeras model are the derived ones: nothing changes
    assert model_precision(model, Intake.from_hls(hls)) == model_precision(
        model, Intake.from_hls(HlsConfig())
    )


def test_project_form_settings_become_overrides(tmp_path: Path) -> None:
    hls_config = {
        "Model": {"Precision": "ap_fixed<16,6>", "ReuseFactor": 2, "Strategy": "Latency"},
        "LayerType": {"Dense": {"Precision": {"accum": "ap_fixed<40,20>"}}},
        "LayerName": {"dense_0": {"ReuseFactor": 4, "Precision": {"result": "auto"}}},
    }
    project = read_project_config(project_yaml(tmp_path, hls_config))
    assert project.overrides == {
        "hls.backend": "Vitis",
        "hls.part": "xcvu9p-flga2104-2L-e",
        "hls.clock_period_ns": 4.0,
        "hls.reuse_factor": 2,
    }
    assert project.layer_reuse == {"dense_0": 4}
    assert project.layer_types == {}  # auto: the derived type
    assert project.type_types == {"Dense": {"accum": "ap_fixed<40,20>"}}
    assert project.hls_overrides({})["hls.layers"] == {"dense_0": {"reuse_factor": 4}}


def test_a_layer_level_table_t_is_the_table_type_as_hls4ml_reads_it(tmp_path: Path) -> None:
    """hls4ml 1.3 takes a lookup table's type from the layer-level ``table_t`` key only; where a config also
    gives a Precision table, the table_t one is what hls4ml builds, so it is the one configured here."""
    hls_config = {
        "Model": {"Precision": "ap_fixed<16,6>", "ReuseFactor": 1},
        "LayerName": {
            "act": {"table_t": "ap_fixed<18,8>", "Precision": {"table": "ap_fixed<10,4>", "result": "auto"}},
            "act2": {"table_t": "fixed<12,2,RND,SAT>", "TableSize": 2048},
            "act3": {"table_t": "auto"},
        },
        "LayerType": {"Activation": {"table_t": "ap_ufixed<8,1>"}},
    }
    project = read_project_config(project_yaml(tmp_path, hls_config))
    assert project.layer_types == {
        "act": {"table": "ap_fixed<18,8>"},
        "act2": {"table": "ap_fixed<12,2,AP_RND,AP_SAT>"},
    }
    assert project.type_types == {"Activation": {"table": "ap_ufixed<8,1>"}}
    bad = {"Model": {"Precision": "ap_fixed<16,6>"}, "LayerName": {"act": {"table_t": "float"}}}
    with pytest.raises(
        ConfigError, match=r"LayerName act table_t: unknown precision 'float'; write ap_fixed"
    ):
        read_project_config(project_yaml(tmp_path, bad))


def test_wider_configured_types_are_built_and_narrower_ones_refused(tmp_path: Path) -> None:
    from kd_trigger.config import HlsConfig
    from kd_trigger.hls.convert import model_precision
    from kd_trigger.hls.precision import Intake

    model = qdense_mlp()
    exact = model_precision(model)["dense_0"].types["accum"]
    wide = FixedType(exact.width + 4, exact.integer + 2)
    path = project_yaml(tmp_path, {"Model": {}, "LayerType": {"Dense": {"Precision": {"accum": wide.hls()}}}})
    hls = configure(HlsConfig(), model, read_project_config(path))
    precision = model_precision(model, Intake.from_hls(hls))
    assert precision["dense_0"].types["accum"] == wide and precision["output"].types["accum"] == wide
    assert precision["dense_0"].types["weight"] == model_precision(model)["dense_0"].types["weight"]
    weight = model_precision(model)["dense_0"].types["weight"]
    path = project_yaml(
        tmp_path, {"Model": {}, "LayerName": {"dense_0": {"Precision": {"weight": "fixed<4,1>"}}}}
    )
    hls = configure(HlsConfig(), model, read_project_config(path))
    with pytest.raises(ModelError) as err:
        model_precision(model, Intake.from_hls(hls))
    assert str(err.value) == (
        f"--hls-config: layer 'dense_0' weight ap_fixed<4,1> is narrower than the exact {weight.hls()}; the "
        "reference emulates narrower types only for the accum and result of a Dense or pointwise Conv1D, the "
        "input, the result of a relu, a quantizer or a batch norm, and the table and result of a lookup-table "
        "activation, "
        "so this design cannot be judged: write auto "
        f"there, or a type that holds {weight.hls()}"
    )


# -- bad input: one line, exit 2, nothing written ----------------------------------------------------------------
def _cmd(model_h5: Path, write: Any) -> Any:
    def setup(d: Path) -> list[str]:
        return ["hls", "--model", str(model_h5), "--hls-config", str(write(d)), "--out", str(d / "fw")]

    return setup


def _text(text: str) -> Any:
    def write(d: Path) -> Path:
        (d / "c.yml").write_text(text)
        return d / "c.yml"

    return write


BAD = [
    (
        "io_stream",
        lambda d: project_yaml(d, {"Model": {}}, IOType="io_stream"),
        "IOType 'io_stream' is not built here (only io_parallel)",
    ),
    (
        "backend",
        lambda d: project_yaml(d, {"Model": {}}, Backend="Quartus"),
        "Backend 'Quartus' is not built here (only Vitis, Vivado)",
    ),
    (
        "strategy",
        lambda d: project_yaml(d, {"Model": {"Strategy": "Distributed_Arithmetic"}}),
        "Strategy 'Distributed_Arithmetic' is not built here (only Latency, Resource)",
    ),
    (
        "precision",
        lambda d: project_yaml(
            d, {"Model": {}, "LayerName": {"dense_0": {"Precision": {"weight": "float"}}}}
        ),
        "LayerName dense_0 Precision weight: unknown precision 'float'",
    ),
    (
        "other model",
        lambda d: project_yaml(
            d,
            {
                "Model": {},
                "LayerName": {"fc1": {"ReuseFactor": 2}, "fc2": {"Precision": "auto"}, "dense_0": {}},
            },
        ),
        "LayerName names 'fc1', 'fc2', not a layer of this model (a config for another model?); its layers: x, input_quant, dense_0, dense_0_linear, relu_0, output, output_linear",
    ),
    (
        "not a config",
        _text("KerasModel: m.h5\nOutputDir: prj\n"),
        "not an hls4ml configuration (no HLSConfig: Model section",
    ),
    ("a list", _text("- 1\n- 2\n"), "not an hls4ml configuration (expected HLSConfig or Model keys)"),
    (
        "narrower",
        lambda d: project_yaml(
            d, {"Model": {}, "LayerName": {"dense_0": {"Precision": {"weight": "fixed<4,1>"}}}}
        ),
        "layer 'dense_0' weight ap_fixed<4,1> is narrower than the exact",
    ),
]


@pytest.mark.parametrize(("name", "write", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_hls_configs_are_refused_cleanly(
    name: str, write: Any, message: str, model_h5: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert_refused_cleanly(Case(name, _cmd(model_h5, write), message), tmp_path, capsys)


def test_rtl_takes_the_same_option(
    model_h5: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def setup(d: Path) -> list[str]:
        path = project_yaml(d, {"Model": {}}, IOType="io_stream")
        return ["rtl", "--model", str(model_h5), "--hls-config", str(path), "--out", str(d / "rtl")]

    assert_refused_cleanly(Case("rtl", setup, "IOType 'io_stream' is not built here"), tmp_path, capsys)


@pytest.mark.slow
def test_hls4ml_default_config_converts_bit_exact_with_cli_override(model_h5: Path, tmp_path: Path) -> None:
    """hls4ml's own config for the model, --reuse over its ReuseFactor: exit 0, the project built with
    the configured types and the CLI's reuse."""
    from kd_trigger.cli import main
    from kd_trigger.hls.saved_model import load_qkeras_model

    cfg = hls4ml_dict(load_qkeras_model(model_h5))
    cfg["LayerName"]["dense_0"]["Precision"]["accum"] = "ap_fixed<40,16>"
    path = tmp_path / "cfg.yml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "fw"
    assert (
        main(["hls", "--model", str(model_h5), "--hls-config", str(path), "--out", str(out), "--reuse", "2"])
        == 0
    )
    defines = next(out.rglob("defines.h")).read_text()
    assert "typedef ap_fixed<40,16> dense_0_accum_t;" in defines  # the configured type, wider than exact
    # the project configuration hls4ml wrote (with its !keras_model tag) reads back as the same design
    written = read_project_config(next(out.rglob("hls4ml_config.yml")))
    assert written.overrides["hls.reuse_factor"] == 2  # --reuse over the config's 1
    assert written.overrides["hls.backend"] == "Vitis" and written.overrides["hls.clock_period_ns"] == 5.0
    assert written.layer_types["dense_0"]["accum"] == "ap_fixed<40,16>"


def test_the_tags_hls4ml_writes_are_read_as_plain_values(tmp_path: Path) -> None:
    path = tmp_path / "hls4ml_config.yml"
    path.write_text(
        "Backend: Vivado\nClockPeriod: 5\nIOType: io_parallel\nKerasModel: !keras_model 'model.h5'\n"
        "HLSConfig:\n  Model:\n    Precision: fixed<16,6>\n    ReuseFactor: 1\n"
    )
    project = read_project_config(path)
    assert project.overrides == {"hls.backend": "Vivado", "hls.clock_period_ns": 5.0, "hls.reuse_factor": 1}


# -- configured types narrower than exact: emulated ------------------------------------------------------------
@pytest.mark.parametrize(
    ("rounding", "saturation", "want"),
    [
        ("TRN", "WRAP", [1.25, -1.75, -1.75, 1.5, 0.25, -0.5]),
        ("RND", "SAT", [1.5, -1.5, 1.75, -2.0, 0.5, -0.25]),
        ("RND_CONV", "SAT", [1.5, -1.5, 1.75, -2.0, 0.5, -0.5]),
        ("RND_ZERO", "SAT_SYM", [1.25, -1.5, 1.75, -1.75, 0.25, -0.25]),
        ("TRN_ZERO", "SAT_ZERO", [1.25, -1.5, 0.0, 0.0, 0.25, -0.25]),
    ],
)
def test_ap_cast_modes(rounding: str, saturation: str, want: list[float]) -> None:
    """ap_fixed<4,2> (LSB 0.25, range [-2, 1.75]) of hand-picked values, as Vitis' ap_fixed gives them."""
    import tensorflow as tf

    from kd_trigger.layers.dense import ap_cast

    x = tf.constant([1.375, -1.625, 2.25, -2.5, 0.375, -0.375], dtype=tf.float64)
    got = ap_cast(x, FixedType(4, 2, True, rounding, saturation)).numpy()
    np.testing.assert_array_equal(got, want)


NARROW = {
    "Model": {"ReuseFactor": 1},
    "LayerName": {
        "dense_0": {"Precision": {"accum": "ap_fixed<14,4>"}},
        "output": {"Precision": {"accum": "ap_fixed<16,6>", "result": "ap_fixed<10,4,AP_RND,AP_SAT>"}},
    },
}


def test_narrower_accum_and_result_of_a_dense_are_emulated(tmp_path: Path) -> None:
    from kd_trigger.config import HlsConfig
    from kd_trigger.hls.convert import model_precision, quantized_weights
    from kd_trigger.hls.csim import float64_twin, keras_layer_outputs, quantize_inputs

    model = qdense_mlp()
    hls = configure(HlsConfig(), model, read_project_config(project_yaml(tmp_path, NARROW)))
    from kd_trigger.hls.precision import Intake

    precision = model_precision(model, Intake.from_hls(hls))
    assert precision["dense_0"].emulated and precision["output"].emulated and not precision["relu_0"].emulated
    weights = quantized_weights(model, precision)
    twin = float64_twin(model, weights, precision)
    x = quantize_inputs(twin, np.random.default_rng(0).normal(0.0, 3.0, (3000, 16)))
    got = keras_layer_outputs(twin, x, ["dense_0"])["dense_0"]
    # by hand: each product truncated onto 2**-10, the sum wrapped into [-8, 8)
    w, b = weights["dense_0"]["weight"], weights["dense_0"]["bias"]
    products = np.floor(x[:, :, None] * w[None] * 2**10) / 2**10
    acc = products.sum(axis=1) + b
    want = (acc + 8.0) % 16.0 - 8.0
    np.testing.assert_array_equal(got, want)
    assert np.any(want != acc)  # it does wrap here: the emulation matters


def test_rtl_refuses_narrower_types(
    model_h5: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def setup(d: Path) -> list[str]:
        path = project_yaml(d, NARROW)
        return ["rtl", "--model", str(model_h5), "--hls-config", str(path), "--out", str(d / "rtl")]

    message = (
        "--hls-config: the RTL flow cannot honour layer 'dense_0' accum ap_fixed<14,4> (exact ap_fixed<25,12>), "
        "layer 'output' accum ap_fixed<16,6> (exact ap_fixed<20,9>), layer 'output' result "
        "ap_fixed<10,4,AP_RND,AP_SAT> (exact ap_fixed<20,9>): it builds exact types only and rounds only at "
        "quantizers (hls --model builds and judges this design)"
    )
    assert_refused_cleanly(Case("rtl narrow", setup, message), tmp_path, capsys)


@pytest.mark.slow
def test_narrower_configured_types_are_bit_exact_against_the_emulating_reference(
    model_h5: Path, tmp_path: Path
) -> None:
    from kd_trigger.cli import main

    path = project_yaml(tmp_path, NARROW)
    out = tmp_path / "fw"
    assert main(["hls", "--model", str(model_h5), "--hls-config", str(path), "--out", str(out)]) == 0
    defines = next(out.rglob("defines.h")).read_text()
    assert "typedef ap_fixed<14,4> dense_0_accum_t;" in defines
    assert "typedef ap_fixed<10,4,AP_RND,AP_SAT,0> result_t;" in defines
    report = json.loads(next(out.rglob("hls_report.json")).read_text())
    assert report["csim"]["exact_fraction"] == 1.0 and report["csim"]["n_samples"] == 10_000


def test_a_narrower_conv1d_accum_is_emulated_when_it_wraps_and_when_it_saturates(tmp_path: Path) -> None:
    """hls4ml's pointwise Conv1D computes as its dense (products assigned to accum_t, the sum kept there):
    a wrapping accumulator and a saturating one (added in hls4ml's order, see
    test_a_saturating_accumulator_adds_in_input_order) are both emulated."""
    from layer_base import pooled_model

    from kd_trigger.config import HlsConfig
    from kd_trigger.hls.convert import model_precision
    from kd_trigger.hls.precision import Intake

    model = pooled_model(4, quantizer_after_pool=True)
    exact = model_precision(model)["phi"].types["accum"]

    def precision_with(accum: str) -> Any:
        path = project_yaml(tmp_path, {"Model": {}, "LayerName": {"phi": {"Precision": {"accum": accum}}}})
        return model_precision(
            model, Intake.from_hls(configure(HlsConfig(), model, read_project_config(path)))
        )

    phi = precision_with("ap_fixed<10,4>")["phi"]
    assert phi.emulated and phi.types["accum"].hls() == "ap_fixed<10,4>" and phi.narrowed["accum"] == exact
    saturating = precision_with("ap_fixed<10,4,AP_TRN,AP_SAT>")["phi"]
    assert saturating.emulated and saturating.types["accum"].hls() == "ap_fixed<10,4,AP_TRN,AP_SAT>"


def _sum_model() -> Any:
    """x (4 inputs) -> quantized_bits(8, 4) -> QDense(1) with kernel (1, 1, -1, -1) and no bias."""
    import tensorflow as tf
    from qkeras import QActivation, QDense, quantized_bits

    inp = tf.keras.Input((4,), name="x")
    h = QActivation(quantized_bits(8, 4, alpha=1), name="q_in")(inp)
    q = quantized_bits(4, 1, alpha=1)
    out = QDense(1, kernel_quantizer=q, bias_quantizer=q, name="d")(h)
    model = tf.keras.Model(inp, out)
    model.get_layer("d").set_weights([np.array([[1.0], [1.0], [-1.0], [-1.0]]), np.zeros(1)])
    return model


SATURATING = {"Model": {}, "LayerName": {"d": {"Precision": {"accum": "fixed<8,5,AP_TRN,AP_SAT>"}}}}
"""An accumulator of [-16, 15.875] for four products of up to 15 each."""


def test_a_saturating_accumulator_adds_in_input_order(tmp_path: Path) -> None:
    """The reference of a saturating accumulator adds the bias, then each input's product in input order,
    casting every sum: 15 + 15 saturates at 15.875, then -15 -15 gives -14.125 where the exact sum is 0
    (summing first and saturating once would give 0)."""
    from kd_trigger.config import HlsConfig
    from kd_trigger.hls.convert import model_precision
    from kd_trigger.hls.precision import Intake
    from kd_trigger.layers.model import quantized_weights
    from kd_trigger.layers.reference import float64_twin, run_twin

    model = _sum_model()
    hls = configure(HlsConfig(), model, read_project_config(project_yaml(tmp_path, SATURATING)))
    precision = model_precision(model, Intake.from_hls(hls))
    assert precision["d"].emulated
    twin = float64_twin(model, quantized_weights(model, precision), precision)
    x = np.array([[15.0, 15.0, 15.0, 15.0], [-15.0, -15.0, 15.0, 15.0], [1.0, 2.0, 3.0, 4.0]])
    assert run_twin(twin, x)[:, 0].tolist() == [-14.125, -16.0, -4.0]


@pytest.mark.slow
def test_a_saturating_accumulator_is_bit_exact_in_the_c_simulation(tmp_path: Path) -> None:
    """hls4ml's C simulation saturates after each addition in input order: on inputs whose partial sums
    leave the accumulator's range and come back, the emulating reference equals it on every output
    (summing first and saturating once agreed on 77% of these outputs when tried)."""
    from kd_trigger.cli import main

    model_path = tmp_path / "m.h5"
    _sum_model().save(model_path)
    x = np.concatenate(
        [
            np.array([[15.0, 15.0, 15.0, 15.0], [-15.0, -15.0, 15.0, 15.0]]),
            np.random.default_rng(0).uniform(-16, 16, size=(200, 4)),
        ]
    )
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "fw"
    argv = ["hls", "--model", str(model_path), "--hls-config", str(project_yaml(tmp_path, SATURATING))]
    assert main([*argv, "--data", str(tmp_path / "x.npy"), "--out", str(out)]) == 0
    report = json.loads((out / "hls_report.json").read_text())
    assert report["csim"]["exact_fraction"] == 1.0 and report["csim"]["n_samples"] == 202
    assert report["precision_loss"]["layers"]["d"]["overflow_count"] > 0


# -- the settings beyond Precision: ReuseFactor, Strategy, TableSize, ParallelizationFactor -------------------
def _hls_for(model: Any, path: Path, cli: dict[str, object] | None = None) -> Any:
    """The hls section ``hls --model --hls-config path`` builds with (the command line's overrides last)."""
    from kd_trigger.config import apply_overrides, parse_config

    project = read_project_config(path)
    overrides = {**project.hls_overrides({}), **(cli or {})}
    cfg = apply_overrides(parse_config({}, "defaults"), overrides, "defaults")
    return configure(cfg.hls, model, project)


def _written(model: Any, hls: Any) -> dict[str, Any]:
    """The hls4ml config the project is built from (:func:`kd_trigger.hls.convert.build_hls_config`)."""
    from kd_trigger.hls.convert import build_hls_config, for_hls4ml, model_precision
    from kd_trigger.hls.precision import Intake

    return build_hls_config(for_hls4ml(model), hls, model_precision(model, Intake.from_hls(hls)))


def test_reuse_factor_layer_name_over_layer_type_over_model(tmp_path: Path) -> None:
    model = qdense_mlp()
    hls_config = {
        "Model": {"ReuseFactor": 8},
        "LayerType": {"Dense": {"ReuseFactor": 2}},
        "LayerName": {"output": {"ReuseFactor": 1}},
    }
    path = project_yaml(tmp_path, hls_config)
    project = read_project_config(path)
    assert project.type_settings == {"Dense": {"reuse_factor": 2}}
    written = _written(model, _hls_for(model, path))
    assert written["Model"]["ReuseFactor"] == 8
    assert written["LayerName"]["dense_0"]["ReuseFactor"] == 2  # LayerType Dense: every Dense layer
    assert written["LayerName"]["output"]["ReuseFactor"] == 1  # LayerName wins
    # the command line overrides single fields: --reuse 4 the Model's, --reuse dense_0=4 one layer's
    cli = {
        "hls.reuse_factor": 4,
        "hls.layers": {"dense_0": {"reuse_factor": 4}, "output": {"reuse_factor": 1}},
    }
    written = _written(model, _hls_for(model, path, cli))
    assert written["Model"]["ReuseFactor"] == 4 and written["LayerName"]["dense_0"]["ReuseFactor"] == 4


def test_table_size_of_a_final_softmax_is_written(tmp_path: Path) -> None:
    import tensorflow as tf
    from qkeras import QActivation, QDense

    inp = tf.keras.Input((8,), name="x")
    x = QActivation(qbits(10, 3), name="input_quant")(inp)
    x = QDense(4, kernel_quantizer=qbits(8, 1), bias_quantizer=qbits(8, 3), name="logits")(x)
    model = tf.keras.Model(inp, tf.keras.layers.Activation("softmax", name="softmax")(x))
    path = project_yaml(tmp_path, {"Model": {}, "LayerType": {"Softmax": {"TableSize": 2048}}})
    assert _written(model, _hls_for(model, path))["LayerName"]["softmax"]["TableSize"] == 2048
    path = project_yaml(tmp_path, {"Model": {}, "LayerName": {"softmax": {"TableSize": 4096}}})
    assert _written(model, _hls_for(model, path))["LayerName"]["softmax"]["TableSize"] == 4096
    path = project_yaml(tmp_path, {"Model": {}, "LayerName": {"softmax": {"TableSize": 1000}}})
    with pytest.raises(ConfigError, match=r"^layer softmax: TableSize 1000 is not a power of two"):
        _written(model, _hls_for(model, path))
    path = project_yaml(tmp_path, {"Model": {}, "LayerName": {"logits": {"TableSize": 1024}}})
    with pytest.raises(
        ConfigError,
        match=r"^layer logits: TableSize is built for lookup-table activations \(tanh, sigmoid, softplus, "
        r"softsign\) and the model's final softmax/sigmoid only \(softmax\)$",
    ):
        _written(model, _hls_for(model, path))


def test_parallelization_factor_per_conv1d_layer(tmp_path: Path) -> None:
    from layer_base import pooled_model

    model = pooled_model(8, quantizer_after_pool=True)
    path = project_yaml(tmp_path, {"Model": {}, "LayerType": {"Conv1D": {"ParallelizationFactor": 2}}})
    assert _written(model, _hls_for(model, path))["LayerName"]["phi"]["ParallelizationFactor"] == 2
    path = project_yaml(tmp_path, {"Model": {}, "LayerName": {"phi": {"ParallelizationFactor": 4}}})
    assert _written(model, _hls_for(model, path))["LayerName"]["phi"]["ParallelizationFactor"] == 4
    path = project_yaml(tmp_path, {"Model": {}, "LayerName": {"phi": {"ParallelizationFactor": 3}}})
    with pytest.raises(
        ConfigError, match=r"^layer phi: ParallelizationFactor 3 does not divide its 8 particles"
    ):
        _written(model, _hls_for(model, path))
    path = project_yaml(tmp_path, {"Model": {}, "LayerName": {"output": {"ParallelizationFactor": 2}}})
    with pytest.raises(ConfigError, match=r"^layer output: ParallelizationFactor applies to per-particle"):
        _written(model, _hls_for(model, path))
    path = project_yaml(tmp_path, {"Model": {}, "LayerName": {"phi": {"ParallelizationFactor": 0}}})
    with pytest.raises(
        ConfigError, match=r"LayerName phi: ParallelizationFactor 0 is not a positive integer$"
    ):
        read_project_config(path)


def test_a_layer_strategy_other_than_the_models_is_refused(tmp_path: Path) -> None:
    path = project_yaml(tmp_path, {"Model": {}, "LayerType": {"Dense": {"Strategy": "Resource"}}})
    with pytest.raises(
        ConfigError,
        match=r"LayerType Dense: Strategy 'Resource' differs from the Model's Latency \(one strategy for the "
        r"whole model is built here\)$",
    ):
        read_project_config(path)
    path = project_yaml(
        tmp_path, {"Model": {"Strategy": "resource"}, "LayerType": {"Dense": {"Strategy": "Resource"}}}
    )
    assert read_project_config(path).overrides["hls.strategy"] == "Resource"


# -- issue 22 item 3: other configured types narrower than exact, emulated as hls4ml's C++ computes them ----------
@pytest.mark.parametrize(
    ("rounding", "saturation", "want"),
    [
        ("TRN", "WRAP", [1.25, -1.75, -1.75, 1.5, 0.25, -0.5]),
        ("RND", "SAT", [1.5, -1.5, 1.75, -2.0, 0.5, -0.25]),
        ("RND_CONV", "SAT", [1.5, -1.5, 1.75, -2.0, 0.5, -0.5]),
        ("RND_ZERO", "SAT_SYM", [1.25, -1.5, 1.75, -1.75, 0.25, -0.25]),
        ("TRN_ZERO", "SAT_ZERO", [1.25, -1.5, 0.0, 0.0, 0.25, -0.25]),
    ],
)
def test_numpy_ap_cast_modes(rounding: str, saturation: str, want: list[float]) -> None:
    """The numpy cast (float constants, as hls4ml's C++ casts them) gives the same as the TF one."""
    from kd_trigger.layers.dense import ap_cast_np

    x = np.array([1.375, -1.625, 2.25, -2.5, 0.375, -0.375])
    np.testing.assert_array_equal(ap_cast_np(x, FixedType(4, 2, True, rounding, saturation)), want)


RELU6 = "ap_ufixed<6,2,AP_RND,AP_SAT>"


def test_a_later_quantizers_configured_result_is_emulated(tmp_path: Path) -> None:
    """relu_0 (quantized_relu(8, 3)) configured ap_ufixed<6,2,AP_RND,AP_SAT>: hls4ml builds a relu of that
    result type, so the value is relu(dense_0) rounded and saturated onto it (not the quantizer's grid)."""
    from kd_trigger.config import HlsConfig
    from kd_trigger.hls.convert import model_precision, quantized_weights
    from kd_trigger.hls.csim import float64_twin, keras_layer_outputs, quantize_inputs
    from kd_trigger.hls.precision import Intake
    from kd_trigger.layers.dense import ap_cast_np

    model = qdense_mlp()
    config = {"Model": {}, "LayerName": {"relu_0": {"Precision": {"result": RELU6}}}}
    hls = configure(HlsConfig(), model, read_project_config(project_yaml(tmp_path, config)))
    precision = model_precision(model, Intake.from_hls(hls))
    assert precision["relu_0"].emulated and precision["relu_0"].types["result"].hls() == RELU6
    twin = float64_twin(model, quantized_weights(model, precision), precision)
    x = quantize_inputs(twin, np.random.default_rng(1).normal(0.0, 3.0, (3000, 16)))
    got = keras_layer_outputs(twin, x, ["dense_0", "relu_0"])
    want = ap_cast_np(np.maximum(got["dense_0"], 0.0), FixedType.parse(RELU6))
    np.testing.assert_array_equal(got["relu_0"], want)
    assert np.any(want == 3.9375) and np.all(want * 16 == np.round(want * 16))  # saturates; on its grid
    quantizer = np.clip(np.round(np.maximum(got["dense_0"], 0.0) * 32), 0, 255) / 32  # quantized_relu(8, 3)
    assert np.any(want != quantizer)  # the configured type is other arithmetic than the quantizer's
    # the next layer's exact accumulator starts from the configured 6-bit result
    assert precision["output"].types["accum"].hls() == "ap_fixed<18,8>"
    assert model_precision(model)["output"].types["accum"].hls() == "ap_fixed<20,9>"  # from 8-bit relu_0


def test_a_batch_norms_configured_result_is_emulated() -> None:
    import tensorflow as tf
    from qkeras import QActivation, QDense

    from kd_trigger.hls.convert import model_precision, quantized_weights
    from kd_trigger.hls.csim import float64_twin, keras_layer_outputs, quantize_inputs
    from kd_trigger.hls.precision import Intake
    from kd_trigger.layers.dense import ap_cast_np

    inp = tf.keras.Input((8,), name="x")
    x = QActivation(qbits(10, 3), name="input_quant")(inp)
    x = QDense(6, kernel_quantizer=qbits(8, 1), bias_quantizer=qbits(8, 3), name="dense_0")(x)
    out = tf.keras.layers.BatchNormalization(name="bn")(x)
    model = tf.keras.Model(inp, out)
    rng = np.random.default_rng(3)
    model.get_layer("bn").set_weights(
        [rng.uniform(0.5, 2, 6), rng.normal(0, 1, 6), rng.normal(0, 1, 6), rng.uniform(0.5, 3, 6)]
    )
    result = FixedType.parse("ap_fixed<10,4,AP_RND_CONV,AP_SAT>")
    intake = Intake(default_type=FixedType(12, 4), configured={"bn": {"result": result}})
    precision = model_precision(model, intake)
    assert precision["bn"].emulated
    weights = quantized_weights(model, precision)
    twin = float64_twin(model, weights, precision)
    xq = quantize_inputs(twin, rng.normal(0.0, 3.0, (3000, 8)))
    got = keras_layer_outputs(twin, xq, ["dense_0", "bn"])
    exact = got["dense_0"] * weights["bn"]["scale"] + weights["bn"]["bias"]
    np.testing.assert_array_equal(got["bn"], ap_cast_np(exact, result))
    assert np.any(got["bn"] != exact)


@pytest.mark.slow
def test_a_configured_quantizer_result_is_bit_exact_in_the_c_simulation(
    model_h5: Path, tmp_path: Path
) -> None:
    from kd_trigger.cli import main

    config = {"Model": {}, "LayerName": {"relu_0": {"Precision": {"result": RELU6}}}}
    out = tmp_path / "fw"
    path = project_yaml(tmp_path, config)
    assert main(["hls", "--model", str(model_h5), "--hls-config", str(path), "--out", str(out)]) == 0
    assert "typedef ap_ufixed<6,2,AP_RND,AP_SAT,0> layer" in next(out.rglob("defines.h")).read_text()
    report = json.loads(next(out.rglob("hls_report.json")).read_text())
    assert report["csim"]["exact_fraction"] == 1.0 and report["precision"]["relu_0"]["result"] == RELU6


def test_a_table_size_on_the_relu_split_off_a_layer_is_ignored_as_hls4ml_ignores_it(tmp_path: Path) -> None:
    """hls4ml 1.3's config_from_keras_model writes TableSize 1024 on every activation, the relu it splits
    off a Dense or Conv1D included, which has no table: that setting is dropped (it was refused)."""
    import tensorflow as tf

    inp = tf.keras.Input((8, 4), name="x")
    x = tf.keras.layers.Conv1D(6, 1, activation="relu", name="pw")(inp)
    x = tf.keras.layers.Flatten(name="flat")(x)
    model = tf.keras.Model(inp, tf.keras.layers.Dense(3, name="out")(x))
    path = project_yaml(tmp_path, {"Model": {}, "LayerName": {"pw_relu": {"TableSize": 1024}}})
    layers = _hls_for(model, path).layers
    assert "pw_relu" not in layers or layers["pw_relu"].table_size is None
