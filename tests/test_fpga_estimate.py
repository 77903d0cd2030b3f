"""Estimator: hand-computed counts on plain layer descriptions, and the hls4ml adapter on a real conversion."""

from __future__ import annotations

import numpy as np
import pytest

from kd_trigger.fpga.estimate import (
    DSP_MIN_OPERAND_BITS,
    LayerSpec,
    csd_digits,
    estimate_layers,
    weight_statistics,
)

DENSE_8BIT = LayerSpec(
    name="d",
    kind="dense",
    n_in=4,
    n_out=3,
    n_nonzero_mult=10,
    weight_bits=8,
    input_bits=8,
    accum_bits=12,
    output_bits=12,
    n_pow2_mult=2,
)
RELU = LayerSpec(name="r", kind="activation", n_in=3, n_out=3, input_bits=12, output_bits=6)


def test_lut_multipliers_below_dsp_threshold() -> None:
    est = estimate_layers([DENSE_8BIT, RELU], reuse_factor=1, clock_period_ns=5.0)
    d, r = est.layers
    assert d.multiplications == 10  # non-zero weights only
    assert d.multipliers == 8  # the two power-of-two weights are shifts
    assert (d.dsp_multipliers, d.lut_multipliers, d.dsp) == (0, 8, 0)
    # 8 products x (ceil(8/3) - 1 = 2 adders) x (8 + 1) LUT + 10 tree adds x 12-bit accumulator
    assert d.lut == 16 * 9 + 10 * 12
    assert d.latency_cycles == 2  # 1 multiply + ceil(3 adder levels x 0.5 ns / 4.375 ns)
    assert d.ff == 2 * (4 * 8 + 3 * 12)
    assert (r.lut, r.latency_cycles, r.ff) == (18, 0, 0)
    assert est.total == {"lut": 282, "ff": 136, "dsp": 0, "bram_18k": 0, "uram": 0}
    assert (est.latency_cycles, est.ii_cycles, est.latency_ns) == (2, 1, 10.0)


def test_wide_operands_go_to_dsps() -> None:
    wide = LayerSpec(**{**DENSE_8BIT.__dict__, "weight_bits": 16, "input_bits": 16})
    d = estimate_layers([wide], 1, 5.0).layers[0]
    assert (d.dsp_multipliers, d.lut_multipliers, d.dsp) == (8, 0, 8)
    assert d.lut == 10 * 12  # only the adder tree
    assert d.ff == 2 * (4 * 16 + 3 * 12)


def test_threshold_is_on_both_operands() -> None:
    one_narrow = LayerSpec(
        **{**DENSE_8BIT.__dict__, "weight_bits": 16, "input_bits": DSP_MIN_OPERAND_BITS - 1}
    )
    both = LayerSpec(
        **{**DENSE_8BIT.__dict__, "weight_bits": DSP_MIN_OPERAND_BITS, "input_bits": DSP_MIN_OPERAND_BITS}
    )
    assert estimate_layers([one_narrow], 1, 5.0).total["dsp"] == 0
    assert estimate_layers([both], 1, 5.0).total["dsp"] == 8


def test_reuse_factor_shares_multipliers_and_sets_ii() -> None:
    wide = LayerSpec(**{**DENSE_8BIT.__dict__, "weight_bits": 16, "input_bits": 16})
    est = estimate_layers([wide], reuse_factor=2, clock_period_ns=5.0)
    d = est.layers[0]
    assert (d.multipliers, d.dsp) == (4, 4)
    assert d.lut == 5 * 12
    assert d.latency_cycles == 3
    assert (est.ii_cycles, d.ii_cycles) == (2, 2)
    assert est.latency_ns == 15.0


def test_conv_partitions_multiply_the_interval() -> None:
    conv = LayerSpec(
        name="phi",
        kind="conv1d",
        n_in=3,
        n_out=8,
        n_nonzero_mult=24,
        weight_bits=8,
        input_bits=12,
        accum_bits=23,
        output_bits=23,
        n_positions=4,
        n_partitions=4,
        csd_adders=41,
        has_bias=False,
    )
    est = estimate_layers([conv], 1, 5.0)
    c = est.layers[0]
    assert c.multiplications == 96  # 24 weights x 4 positions
    assert c.multipliers == 24  # one position at a time
    assert c.lut == 41 * 13 + (24 - 8) * 23
    assert est.ii_cycles == 4
    parallel = estimate_layers([LayerSpec(**{**conv.__dict__, "n_partitions": 1})], 1, 5.0)
    assert parallel.layers[0].multipliers == 96 and parallel.ii_cycles == 1


def test_slow_clock_packs_adder_tree_into_one_cycle_and_fast_clock_needs_more() -> None:
    big = LayerSpec(
        name="d", kind="dense", n_in=64, n_out=32, n_nonzero_mult=2048, weight_bits=16, input_bits=16
    )
    assert estimate_layers([big], 1, 5.0).latency_cycles == 2  # 7 levels x 0.5 ns = 3.5 ns < 4.375 ns
    assert estimate_layers([big], 1, 2.5).latency_cycles == 3  # 3.5 ns over 2.19 ns periods


def test_unknown_kind_is_noted_and_to_dict_labels_estimate() -> None:
    est = estimate_layers([LayerSpec(name="x", kind="lstm", n_in=1, n_out=1)], 1, 5.0)
    d = est.to_dict()
    assert d["source"] == "estimate"
    assert d["method"] == "kd_trigger first-order model"
    assert "Latency strategy" in d["method_description"] and "non-zero" in d["method_description"]
    assert d["notes"] == ["layer x: kind 'lstm' is not modelled (counted as 0)"]
    assert set(d["total"]) == {"lut", "ff", "dsp", "bram_18k", "uram"}


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="reuse_factor"):
        estimate_layers([], 0, 5.0)


@pytest.mark.parametrize(
    ("value", "digits"),
    [(0, 0), (1, 1), (4, 1), (-8, 1), (3, 2), (5, 2), (7, 2), (-6, 2), (11, 3), (15, 2), (0b1010101, 4)],
)
def test_csd_digits(value: int, digits: int) -> None:
    assert csd_digits(value) == digits


def test_weight_statistics() -> None:
    # With 3 fraction bits: integers 0, 4, -2, 3, 6 -> 4 non-zero, 2 powers of two, 2 shift-add adders.
    assert weight_statistics(np.array([0.0, 0.5, -0.25, 0.375, 0.75]), 3) == (4, 2, 2)


def test_adapter_on_converted_qkeras_model(tmp_path) -> None:  # noqa: ANN001 - pytest fixture
    """Real hls4ml conversion (no compile): exact counts from known weights."""
    import hls4ml
    from qkeras import QActivation, QDense, quantized_bits, quantized_relu
    from tensorflow import keras

    from kd_trigger.fpga.estimate import estimate_model, layers_from_hls_model

    inp = keras.Input((4,))
    x = QActivation(quantized_bits(12, 4, alpha=1), name="q_in")(inp)
    x = QDense(
        3,
        kernel_quantizer=quantized_bits(8, 1, alpha=1),
        bias_quantizer=quantized_bits(8, 3, alpha=1),
        name="fc",
    )(x)
    x = QActivation(quantized_relu(8, 3), name="relu")(x)
    model = keras.Model(inp, x)
    kernel = np.array(
        [[0.5, 0.0, 0.375], [0.0, -0.25, 0.75], [0.125, 0.0, 0.0], [0.625, 1.5, -0.875]], dtype=np.float32
    )
    model.get_layer("fc").set_weights([kernel, np.zeros(3, np.float32)])
    cfg = hls4ml.utils.config_from_keras_model(model, granularity="name", backend="Vitis")
    hls_model = hls4ml.converters.convert_from_keras_model(
        model,
        hls_config=cfg,
        output_dir=str(tmp_path / "prj"),
        backend="Vitis",
        io_type="io_parallel",
        part="xcvu13p-flga2577-2-e",
    )
    specs = {s.name: s for s in layers_from_hls_model(hls_model)}
    fc = specs["fc"]
    assert fc.kind == "dense" and (fc.n_in, fc.n_out) == (4, 3)
    assert fc.n_nonzero_mult == 8
    # 0.5, -0.25, 0.125 are powers of two; 0.375 = 3/8, 0.75, 0.625 = 5/8, 1.5, -0.875 = -7/8 are not.
    assert fc.n_pow2_mult == 3
    assert fc.csd_adders == 5
    assert (fc.weight_bits, fc.input_bits) == (8, 12)
    assert specs["relu"].kind == "activation" and specs["relu"].output_bits == 8
    est = estimate_model(hls_model, reuse_factor=1, clock_period_ns=5.0)
    layer = next(lay for lay in est.layers if lay.name == "fc")
    assert (layer.multiplications, layer.multipliers, layer.dsp) == (8, 5, 0)
    assert est.ii_cycles == 1
    assert est.to_dict()["source"] == "estimate"


def test_recorded_calibration_matches_the_real_report_fixture() -> None:
    """CALIBRATION (printed in every report) is what the estimator really gives on the real report."""
    import json
    from pathlib import Path

    from kd_trigger.fpga.estimate import CALIBRATION
    from kd_trigger.fpga.reports import read_report_path

    fixtures = Path(__file__).parent / "fixtures" / "reports"
    case = next(
        c for c in json.loads((fixtures / "calibration.json").read_text())["cases"] if c["comparable"]
    )
    est = estimate_layers(
        [LayerSpec(**layer) for layer in case["layers"]],
        case["reuse_factor"],
        case["clock_period_ns"],
        case["clock_uncertainty"],
    )
    real = read_report_path(fixtures / case["report_dir"])
    for key, ratio in CALIBRATION["ratio_estimate_over_hls"].items():
        value = est.latency_cycles if key == "latency_cycles" else est.total[key]
        truth = real["latency_cycles"] if key == "latency_cycles" else real["hls"][key]
        assert round(value / truth, 2) == ratio, key
    for key, ratio in CALIBRATION["ratio_estimate_over_synth"].items():
        assert round(est.total[key] / real["synth"][key], 2) == ratio, key
