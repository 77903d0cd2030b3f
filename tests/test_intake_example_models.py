"""Issue 22 item 4: models in the shapes of hls4ml's example models (fastmachinelearning/example-models,
``keras/``; built here, no download) with the configs ``config_from_keras_model(model,
granularity="name")`` returns, saved as YAML: the design built is the one hls4ml resolves from the
config, its types reported, the C simulation exact against the reference that emulates them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from layer_base import keras_3layer, qkeras_3layer

from kd_trigger.cli import main
from kd_trigger.config import HlsConfig

tf = pytest.importorskip("tensorflow")

F16 = "ap_fixed<16,6>"


def _config_yaml(model: Any, path: Path, edit: Any = None) -> Path:
    """What ``config_from_keras_model(model, granularity="name")`` returns, saved as YAML (edited)."""
    import hls4ml

    config = hls4ml.utils.config_from_keras_model(model, granularity="name")
    if edit is not None:
        edit(config)
    path.write_text(yaml.safe_dump(config))
    return path


def _precision(model: Any, config: Path) -> Any:
    """The types ``hls --model --hls-config`` builds (no conversion)."""
    from kd_trigger.hls.default_design import default_design, needs_default_design
    from kd_trigger.hls.project_config import configure, read_project_config
    from kd_trigger.hls.saved_model import as_functional
    from kd_trigger.layers.model import model_precision
    from kd_trigger.layers.spec import Intake

    model = as_functional(model)
    project = read_project_config(config)
    hls = configure(HlsConfig(), model, project)
    assert needs_default_design(model, hls)
    hls, model = default_design(model, hls, project.hls_config)
    return model_precision(model, Intake.from_hls(hls))


def test_keras_3layer_with_its_config_gets_the_types_hls4ml_resolves(tmp_path: Path) -> None:
    precision = _precision(keras_3layer(), _config_yaml(keras_3layer(), tmp_path / "c.yml"))
    types = {name: chosen.to_dict() for name, chosen in precision.items()}
    assert types["input_1"]["result"] == F16
    assert {k: types["fc2"][k] for k in ("weight", "bias", "accum", "result")} == {
        "weight": F16,
        "bias": F16,
        "accum": F16,  # the config is silent on accum: hls4ml's model default, not an exact accumulator
        "result": "ap_fixed<39,19>",
    }
    assert types["fc2_relu"]["result"] == F16
    assert precision["fc2"].emulated and precision["fc2"].weights_cast and precision["fc2_relu"].emulated


def test_a_layer_name_precision_of_the_config_is_built(tmp_path: Path) -> None:
    def edit(config: dict[str, Any]) -> None:
        config["LayerName"]["fc1"]["Precision"] = {"weight": "ap_fixed<10,2>", "accum": "ap_fixed<20,8>"}
        config["LayerName"]["fc1_relu"]["Precision"]["result"] = "ap_ufixed<8,4,AP_RND_CONV,AP_SAT>"

    precision = _precision(keras_3layer(), _config_yaml(keras_3layer(), tmp_path / "c.yml", edit))
    fc1 = precision["fc1"].to_dict()
    assert (fc1["weight"], fc1["accum"], fc1["bias"]) == ("ap_fixed<10,2>", "ap_fixed<20,8>", F16)
    assert precision["fc1_relu"].to_dict()["result"] == "ap_ufixed<8,4,AP_RND_CONV,AP_SAT>"
    # the next layer's exact types start from the configured relu: 8 bits in, not 16
    assert precision["fc2"].types["accum"].hls() == F16


def test_qkeras_3layer_sequential_keeps_its_quantizers(tmp_path: Path) -> None:
    model = qkeras_3layer()
    precision = _precision(model, _config_yaml(model, tmp_path / "c.yml"))
    fc1 = precision["fc1"].to_dict()
    assert (fc1["weight"], fc1["bias"], fc1["accum"]) == ("ap_fixed<6,1>", "ap_fixed<6,1>", F16)
    assert not precision["fc1"].weights_cast  # quantized constants: the quantizer's, not the default's
    assert precision["relu1"].to_dict()["result"] == "ap_ufixed<6,0,AP_RND_CONV,AP_SAT>"
    assert precision["fc1_input"].to_dict()["result"] == F16  # no input quantizer: the default


def test_keras_3layer_batch_norm_with_its_config_fuses_the_batch_norm(tmp_path: Path) -> None:
    model = keras_3layer(batch_norm=True)
    precision = _precision(model, _config_yaml(model, tmp_path / "c.yml"))
    assert "bn1" not in precision  # fused into fc1, as hls4ml fuses it (fc1's result type is auto)
    assert precision["fc1"].to_dict()["weight"] == F16 and precision["fc1"].weights_cast


@pytest.mark.slow
def test_keras_3layer_with_its_config_reuse_and_table_size_converts_exactly(tmp_path: Path) -> None:
    """config_from_keras_model's YAML with a LayerType reuse factor and the softmax's TableSize, a
    --reuse LAYER=R over one layer: exit 0, the settings in the project, exact, precision loss reported."""

    def edit(config: dict[str, Any]) -> None:
        config["LayerType"] = {"Dense": {"ReuseFactor": 2}}
        config["LayerName"]["softmax"]["TableSize"] = 2048

    model = keras_3layer()
    path = tmp_path / "KERAS_3layer.h5"
    model.save(path, save_format="h5")
    config = _config_yaml(model, tmp_path / "c.yml", edit)
    out = tmp_path / "fw"
    args = [
        "hls",
        "--model",
        str(path),
        "--hls-config",
        str(config),
        "--out",
        str(out),
        "--reuse",
        "output=1",
    ]
    assert main(args) == 0
    parameters = (out / "firmware" / "parameters.h").read_text()
    assert "static const unsigned exp_table_size = 2048;" in parameters  # the softmax's tables
    assert parameters.count("static const unsigned reuse_factor = 2;") == 3  # fc1, fc2, fc3
    assert "typedef ap_fixed<16,6> fc2_accum_t;" in (out / "firmware" / "defines.h").read_text()
    report = json.loads((out / "hls_report.json").read_text())
    assert report["csim"]["exact_fraction"] == 1.0
    assert report["reuse_by_layer"] == {"fc1": 2, "fc2": 2, "fc3": 2, "output": 1}
    assert report["precision"]["fc2"]["accum"] == F16
    assert report["precision_loss"]["design"] == f"--hls-config {config}, as hls4ml 1.3 resolves it"


@pytest.mark.slow
def test_keras_3layer_batch_norm_converts_exactly_with_its_batch_norm_fused(tmp_path: Path) -> None:
    path = tmp_path / "KERAS_3layer_batch_norm.h5"
    keras_3layer(batch_norm=True).save(path, save_format="h5")
    out = tmp_path / "fw"
    assert main(["hls", "--model", str(path), "--out", str(out)]) == 0
    report = json.loads((out / "hls_report.json").read_text())
    assert report["csim"]["exact_fraction"] == 1.0 and "bn1" not in report["precision"]
    # against the saved model, batch norm included, in float
    assert report["precision_loss"]["compared_layer"] == "output"
    assert report["precision_loss"]["max_abs_diff"] > 0.0


@pytest.mark.slow
def test_qkeras_3layer_sequential_converts_exactly_with_no_options(tmp_path: Path) -> None:
    path = tmp_path / "qkeras_3layer.h5"
    qkeras_3layer().save(path, save_format="h5")
    out = tmp_path / "fw"
    assert main(["hls", "--model", str(path), "--out", str(out)]) == 0
    report = json.loads((out / "hls_report.json").read_text())
    assert report["csim"]["exact_fraction"] == 1.0 and report["csim"]["compared_layer"] == "output"
    assert (
        report["precision"]["fc1"]["accum"] == F16 and report["precision"]["fc1"]["weight"] == "ap_fixed<6,1>"
    )
    assert report["precision_loss"]["n_samples"] == 10_000
