"""Issue 22 item 4: hls4ml's own example models (fastmachinelearning/example-models @ ce390f9a, ``keras/``
and ``config-files/``; the real files, tests/fixtures/example_models/README.md) with their own configs,
or the one ``config_from_keras_model(model, granularity="name")`` returns, saved as YAML: the design built
is the one hls4ml resolves from the config, its types reported, the C simulation exact against the
reference that emulates them, the precision loss reported. One C simulation per model (slow tests)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from kd_trigger.cli import main
from kd_trigger.config import HlsConfig

tf = pytest.importorskip("tensorflow")

F16 = "ap_fixed<16,6>"
FIXTURES = Path(__file__).parent / "fixtures" / "example_models"


def example(name: str, weights: str | None = None) -> Any:
    """The example model ``name`` as published: its JSON architecture with its (or ``weights``) HDF5 weights."""
    from kd_trigger.layers.keras import qkeras_objects

    model = tf.keras.models.model_from_json(
        (FIXTURES / f"{name}.json").read_text(), custom_objects=qkeras_objects()
    )
    model.load_weights(FIXTURES / f"{weights or name + '_weights'}.h5")
    return model


def saved(model: Any, path: Path) -> Path:
    """``model`` saved as the HDF5 file ``hls --model`` reads."""
    model.save(path, save_format="h5")
    return path


def _config_yaml(model: Any, path: Path, edit: Any = None) -> Path:
    """What ``config_from_keras_model(model, granularity="name")`` returns, saved as YAML (edited)."""
    import hls4ml

    config = hls4ml.utils.config_from_keras_model(model, granularity="name")
    if edit is not None:
        edit(config)
    path.write_text(yaml.safe_dump(config))
    return path


def _precision(model: Any, config: Path | None) -> Any:
    """The types ``hls --model [--hls-config]`` builds (no conversion)."""
    from kd_trigger.hls.default_design import default_design, needs_default_design
    from kd_trigger.hls.project_config import configure, read_project_config
    from kd_trigger.hls.saved_model import as_functional
    from kd_trigger.layers.model import model_precision
    from kd_trigger.layers.spec import Intake

    model = as_functional(model)
    project = read_project_config(config) if config is not None else None
    hls = configure(HlsConfig(), model, project)
    assert needs_default_design(model, hls)
    hls, model = default_design(model, hls, project.hls_config if project is not None else None)
    return model_precision(model, Intake.from_hls(hls))


def _run(args: list[str], out: Path) -> dict[str, Any]:
    """``kd-trigger`` with ``args`` (exit 0 asserted) and the hls_report.json it wrote."""
    assert main([*args, "--out", str(out)]) == 0
    return json.loads((out / "hls_report.json").read_text())


def _exact_with_loss(report: dict[str, Any]) -> dict[str, Any]:
    """The checks every example model passes: exact C simulation, precision loss reported per layer."""
    assert report["csim"]["exact_fraction"] == 1.0 and report["csim"]["max_abs_diff"] == 0.0
    loss = report["precision_loss"]
    assert loss["n_samples"] == report["csim"]["n_samples"] and set(loss["layers"])
    assert "first_overflow_layer" in loss and 0.0 <= loss["decision_changed_fraction"] <= 1.0
    return loss


def test_keras_3layer_with_its_config_gets_the_types_hls4ml_resolves(tmp_path: Path) -> None:
    """The jet tagger with config_from_keras_model's YAML, and with no options: the same design."""
    model = example("KERAS_3layer")
    precision = _precision(model, _config_yaml(model, tmp_path / "c.yml"))
    types = {name: chosen.to_dict() for name, chosen in precision.items()}
    assert types["input_1"]["result"] == F16
    assert {k: types["fc2_relu"][k] for k in ("weight", "bias", "accum", "result")} == {
        "weight": F16,
        "bias": F16,
        "accum": F16,  # the config is silent on accum: hls4ml's model default, not an exact accumulator
        "result": "ap_fixed<39,19>",
    }
    assert types["fc2_relu_relu"]["result"] == F16
    assert precision["fc2_relu"].emulated and precision["fc2_relu"].weights_cast
    assert {name: chosen.to_dict() for name, chosen in _precision(model, None).items()} == types


def test_a_layer_name_precision_of_the_config_is_built(tmp_path: Path) -> None:
    def edit(config: dict[str, Any]) -> None:
        config["LayerName"]["fc1_relu"]["Precision"] = {"weight": "ap_fixed<10,2>", "accum": "ap_fixed<20,8>"}
        config["LayerName"]["fc1_relu_relu"]["Precision"]["result"] = "ap_ufixed<8,4,AP_RND_CONV,AP_SAT>"

    model = example("KERAS_3layer")
    precision = _precision(model, _config_yaml(model, tmp_path / "c.yml", edit))
    fc1 = precision["fc1_relu"].to_dict()
    assert (fc1["weight"], fc1["accum"], fc1["bias"]) == ("ap_fixed<10,2>", "ap_fixed<20,8>", F16)
    assert precision["fc1_relu_relu"].to_dict()["result"] == "ap_ufixed<8,4,AP_RND_CONV,AP_SAT>"
    assert precision["fc2_relu"].types["accum"].hls() == F16


def test_qkeras_3layer_sequential_with_its_own_config_keeps_its_quantizers() -> None:
    """The published Sequential QKeras model with config-files/qkeras_3layer_config.yml: the quantized
    constants are the quantizers', the relus get the config's ap_fixed<7,1,AP_RND_CONV,AP_SAT>."""
    precision = _precision(example("qkeras_3layer"), FIXTURES / "qkeras_3layer_config.yml")
    fc1 = precision["fc1"].to_dict()
    assert (fc1["weight"], fc1["bias"], fc1["accum"]) == ("ap_fixed<6,1>", "ap_fixed<6,1>", F16)
    assert not precision["fc1"].weights_cast  # quantized constants: the quantizer's, not the default's
    assert precision["relu1"].to_dict()["result"] == "ap_fixed<7,1,AP_RND_CONV,AP_SAT>"
    assert precision["fc1_input"].to_dict()["result"] == F16  # no input quantizer: the config's type


def test_keras_3layer_batch_norm_fuses_every_batch_norm_as_hls4ml_does(tmp_path: Path) -> None:
    model = example("KERAS_3layer_batch_norm")
    precision = _precision(model, _config_yaml(model, tmp_path / "c.yml"))
    assert not {"bn1", "bn2", "bn3", "bn4"} & set(precision)  # fused into the Dense before each
    assert precision["fc1_relu"].to_dict()["weight"] == F16 and precision["fc1_relu"].weights_cast


# -- one C simulation per model ------------------------------------------------------------------------------
@pytest.mark.slow
def test_keras_3layer_with_its_config_reuse_and_table_size_converts_exactly(tmp_path: Path) -> None:
    """config_from_keras_model's YAML with a LayerType reuse factor and the softmax's TableSize, a
    --reuse LAYER=R over one layer: exit 0, the settings in the project, exact, precision loss reported."""

    def edit(config: dict[str, Any]) -> None:
        config["LayerType"] = {"Dense": {"ReuseFactor": 2}}
        config["LayerName"]["output_softmax_softmax"]["TableSize"] = 2048

    model = example("KERAS_3layer")
    config = _config_yaml(model, tmp_path / "c.yml", edit)
    path = saved(model, tmp_path / "KERAS_3layer.h5")
    args = ["hls", "--model", str(path), "--hls-config", str(config), "--reuse", "output_softmax=1"]
    report = _run(args, tmp_path / "fw")
    parameters = (tmp_path / "fw" / "firmware" / "parameters.h").read_text()
    assert "static const unsigned exp_table_size = 2048;" in parameters  # the softmax's tables
    assert parameters.count("static const unsigned reuse_factor = 2;") == 3  # fc1, fc2, fc3
    assert report["reuse_by_layer"] == {"fc1_relu": 2, "fc2_relu": 2, "fc3_relu": 2, "output_softmax": 1}
    assert report["precision"]["fc2_relu"]["accum"] == F16
    loss = _exact_with_loss(report)
    assert loss["design"] == f"--hls-config {config}, as hls4ml 1.3 resolves it"
    assert loss["compared_layer"] == "output_softmax"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "weights", "compared"),
    [
        ("KERAS_3layer", "KERAS_3layer_70pruned_retrained_weights", "output_softmax"),
        ("KERAS_1layer", None, "output_sigmoid"),
        ("KERAS_3layer_batch_norm", None, "output_softmax"),
    ],
)
def test_a_float_example_model_converts_exactly_with_no_options(
    tmp_path: Path, name: str, weights: str | None, compared: str
) -> None:
    """No options: hls4ml's default design (ap_fixed<16,6>), exact against the reference that emulates
    it, judged before the final softmax/sigmoid, its precision loss against the float model reported."""
    path = saved(example(name, weights), tmp_path / f"{name}.h5")
    report = _run(["hls", "--model", str(path)], tmp_path / "fw")
    loss = _exact_with_loss(report)
    assert report["csim"]["compared_layer"] == compared and loss["compared_layer"] == compared
    assert report["precision"]["input_1"]["result"] == F16


@pytest.mark.slow
def test_qkeras_3layer_sequential_converts_exactly_with_its_own_config(tmp_path: Path) -> None:
    """The published Sequential QKeras model with config-files/qkeras_3layer_config.yml: exact against
    the configured types; its ap_fixed<16,6> accumulators (the config is silent on accum) overflow first
    in fc1 on the edge inputs that span the input type."""
    path = saved(example("qkeras_3layer"), tmp_path / "qkeras_3layer.h5")
    config = FIXTURES / "qkeras_3layer_config.yml"
    report = _run(["hls", "--model", str(path), "--hls-config", str(config)], tmp_path / "fw")
    loss = _exact_with_loss(report)
    assert report["csim"]["compared_layer"] == "output"
    assert loss["design"] == f"--hls-config {config}, as hls4ml 1.3 resolves it"
    assert loss["first_overflow_layer"] == "fc1" and report["precision"]["relu1"]["result"] == (
        "ap_fixed<7,1,AP_RND_CONV,AP_SAT>"
    )
