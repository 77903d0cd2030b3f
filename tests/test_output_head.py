"""The optional firmware head of a student (issue 24, ``students[].output_head``): the config rules, the
Keras model of each head, and hls4ml firmware of the softmax and argmax heads on three classes, C-simulated
(slow: two hls4ml compilations)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import randomize_weights

from kd_trigger.config import HlsConfig, StudentConfig, parse_config
from kd_trigger.errors import ConfigError

SPEC = {"name": "s", "kind": "mlp", "n_particles": 4, "hidden": [8]}


def test_the_head_defaults_to_logits_and_needs_the_hls4ml_flow_alone() -> None:
    assert StudentConfig(**SPEC).output_head == "logits"  # type: ignore[arg-type]
    cfg = parse_config({"students": [{**SPEC, "output_head": "argmax"}], "hls": {"flows": ["hls4ml"]}})
    assert cfg.students[0].output_head == "argmax"
    with pytest.raises(ConfigError) as err:
        parse_config({"students": [{**SPEC, "output_head": "softmax"}]})
    assert (
        "students[0].output_head 'softmax': the RTL flow builds no softmax/argmax head (its layers stop at the "
        "logits); set hls.flows: [hls4ml] for this head, or output_head: logits"
    ) in str(err.value)
    with pytest.raises(ConfigError, match="output_head"):
        parse_config({"students": [{**SPEC, "output_head": "sigmoid"}], "hls": {"flows": ["hls4ml"]}})


def test_the_head_model_shares_the_logits() -> None:
    import tensorflow as tf

    from kd_trigger.models.students import HEAD_LAYER, build_student, head_class_index, with_output_head

    spec = StudentConfig(**SPEC)  # type: ignore[arg-type]
    tf.keras.utils.set_random_seed(0)
    model = build_student(spec, 3)
    assert with_output_head(model, spec) is model
    head = with_output_head(model, spec.model_copy(update={"output_head": "softmax"}))
    assert [layer.name for layer in head.layers][-2:] == ["output", HEAD_LAYER]
    x = np.random.default_rng(1).normal(0, 2, (50, 4, 7)).astype(np.float32)
    logits = model.predict(x, verbose=0)
    probabilities = head.predict(x, verbose=0)
    np.testing.assert_allclose(probabilities, tf.nn.softmax(logits).numpy(), rtol=1e-6)
    assert np.array_equal(head_class_index(probabilities), np.argmax(logits, axis=1))
    assert head_class_index(np.array([[0.5, 0.5, 0.0], [0.0, 1.0, 1.0]])).tolist() == [0, 1]  # first maximum


@pytest.mark.slow
@pytest.mark.parametrize("head", ["softmax", "argmax"])
def test_hls4ml_firmware_of_a_head_on_three_classes(head: str, tmp_path) -> None:
    import tensorflow as tf

    from kd_trigger.hls.build import convert_and_simulate
    from kd_trigger.hls.csim import hls_predict
    from kd_trigger.hls.hls4ml_stage import argmax_head, check_head
    from kd_trigger.layout import ProjectLayout
    from kd_trigger.models.quantizers import quantize_inputs
    from kd_trigger.models.students import build_student, head_class_index, with_output_head

    spec = StudentConfig(**{**SPEC, "output_head": head})  # type: ignore[arg-type]
    tf.keras.utils.set_random_seed(0)
    logits_model = build_student(spec, 3)
    randomize_weights(logits_model, 5)
    x = np.random.default_rng(2).normal(0, 3, (400, 4, 7)).astype(np.float32)
    labels = np.arange(400) % 3
    work = tmp_path / "fw"
    report, converted = convert_and_simulate(
        with_output_head(logits_model, spec),
        work,
        HlsConfig(),
        x,
        labels,
        "s",
        on_converted=argmax_head(spec),
    )
    check_head(spec, report, ProjectLayout(work).report, ProjectLayout(work).report)
    csim = report.csim
    # The gate: the logits before the head are bit-exact; the head's deviation is measured.
    assert csim.compared_layer == "output" and csim.exact_fraction == 1.0 and csim.max_abs_diff == 0.0
    assert csim.n_samples == len(x) and csim.n_outputs == 3 * len(x)
    final = csim.final_activation
    assert final is not None and final["kind"] == "softmax" and final["head"] == head
    saved = np.load(ProjectLayout(work).csim_outputs)
    exact_logits = saved["logits_qkeras"]
    assert np.array_equal(saved["logits_hls"], exact_logits)
    x_grid = quantize_inputs(x, spec.quant).astype(np.float64)  # the grid run_csim simulated
    outputs = hls_predict(converted.hls_model, x_grid)
    if head == "softmax":
        # Lookup-table probabilities, not the float softmax of the exact logits: the report's deviation is
        # the one measured here (hls4ml's default tables, 18-bit, are coarse: ~0.2 on these random weights).
        z = np.exp(exact_logits - exact_logits.max(axis=1, keepdims=True))
        deviation = np.abs(outputs - z / z.sum(axis=1, keepdims=True))
        assert deviation.max() > 0 and final["max_abs_diff"] == pytest.approx(deviation.max(), abs=1e-9)
        assert final["mean_abs_diff"] == pytest.approx(deviation.mean(), abs=1e-9)
        assert "index_agreement" not in final
    else:
        # One-hot of the class index; the index is the argmax of the exact logits, every jet.
        assert set(np.unique(outputs)) <= {0.0, 1.0} and np.all(outputs.sum(axis=1) == 1.0)
        assert np.array_equal(head_class_index(outputs), np.argmax(exact_logits, axis=1))
        assert final["index_agreement"] == 1.0
    assert ProjectLayout(work).report.is_file()


@pytest.mark.slow
def test_the_pipeline_builds_both_heads_on_three_classes(tmp_path) -> None:
    """configs/ci_three_class.yaml with the MLP's head softmax and the Deep Sets' argmax, hls4ml flow only:
    `kd-trigger hls` from generation to firmware; the metrics stay those of the logits."""
    import json

    from conftest import REPO, write_config

    from kd_trigger.cli import main
    from kd_trigger.config import load_config
    from kd_trigger.layout import ProjectLayout

    base = load_config(REPO / "configs" / "ci_three_class.yaml")
    heads = {"mlp": "softmax", "deepsets": "argmax"}
    students = [{**s.model_dump(mode="json"), "output_head": heads[s.kind]} for s in base.students]
    path = write_config(
        tmp_path, "heads.yaml", base="ci_three_class.yaml", students=students, hls={"flows": ["hls4ml"]}
    )
    assert main(["hls", "--config", str(path)]) == 0
    cfg = load_config(path)
    metrics = json.loads((cfg.artifacts / "metrics.json").read_text())
    for spec in cfg.students:
        project = ProjectLayout(cfg.firmware / spec.name)
        report = json.loads(project.report.read_text())
        csim = report["csim"]
        assert csim["compared_layer"] == "output" and csim["exact_fraction"] == 1.0, spec.name
        final = csim["final_activation"]
        assert final["head"] == spec.output_head and final["layer"] == "output_head"
        if spec.output_head == "argmax":
            assert final["index_agreement"] == 1.0
        # The metrics of the distilled student are computed from its logits, as without a head.
        logits = np.load(project.csim_outputs)["logits_qkeras"]
        assert logits.shape[1] == 3
        assert set(metrics["models"][f"{spec.name}/kd"]["classes"]) == {"q", "w", "t"}
