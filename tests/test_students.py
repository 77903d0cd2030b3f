"""Students: architecture, bit budget, save/load round trip, and the quantizer <-> fixed-point mapping."""

from __future__ import annotations

import numpy as np
import pytest

from kd_trigger.config import QuantConfig, StudentConfig
from kd_trigger.errors import ModelError
from kd_trigger.models import quantizers as qz


def _mlp(**kw) -> StudentConfig:
    return StudentConfig(**{"name": "mlp", "kind": "mlp", "n_particles": 4, "hidden": (8, 4), **kw})


def _ds(**kw) -> StudentConfig:
    base = {"name": "ds", "kind": "deepsets", "n_particles": 8, "hidden": (8, 4), "head": (4,)}
    base.update(kw)
    return StudentConfig(**base)


# -- quantizer mapping (needs qkeras, but no training) ----------------------------------------------------


def test_type_strings() -> None:
    q = QuantConfig(
        input_bits=12, input_int=4, weight_bits=8, weight_int=1, activation_bits=8, activation_int=3
    )
    assert qz.input_type(q).hls() == "ap_fixed<12,5>"
    assert qz.weight_type(q).hls() == "ap_fixed<8,2>"
    assert qz.activation_type(q).hls() == "ap_ufixed<8,3>"
    assert qz.type_of_quantizer(qz.weight_quantizer(q)) == qz.weight_type(q)
    assert qz.type_of_quantizer(qz.activation_quantizer(q)) == qz.activation_type(q)
    assert qz.input_type(q).lsb == 2.0**-7


def test_quantizer_grid_matches_type() -> None:
    """Every value QKeras produces lies on the mapped ap_fixed grid and covers exactly its range."""
    q = QuantConfig(weight_bits=6, weight_int=2, activation_bits=5, activation_int=2)
    x = np.linspace(-20, 20, 40001, dtype=np.float32)
    for quantizer, t in (
        (qz.weight_quantizer(q), qz.weight_type(q)),
        (qz.activation_quantizer(q), qz.activation_type(q)),
    ):
        y = np.asarray(quantizer(x))
        k = y / t.lsb
        assert np.array_equal(k, np.round(k))
        assert y.min() == t.min_value and y.max() == t.max_value
        assert len(np.unique(y)) == 2**t.width


def test_hls4ml_agrees_on_types() -> None:
    """hls4ml's own reading of our quantizers gives the same ap_fixed types."""
    from hls4ml.utils.config import _get_precision_from_quantizer

    q = QuantConfig(
        input_bits=10, input_int=3, weight_bits=7, weight_int=2, activation_bits=6, activation_int=1
    )
    for quantizer, t in (
        (qz.input_quantizer(q), qz.input_type(q)),
        (qz.weight_quantizer(q), qz.weight_type(q)),
        (qz.activation_quantizer(q), qz.activation_type(q)),
    ):
        p = _get_precision_from_quantizer(
            {"class_name": type(quantizer).__name__, "config": quantizer.get_config()}
        )
        assert (p.width, p.integer, p.signed) == (t.width, t.integer, t.signed)


def test_quantize_inputs_bit_exact_with_qactivation() -> None:
    import tensorflow as tf
    from qkeras import QActivation

    q = QuantConfig(input_bits=12, input_int=4)
    step = qz.input_type(q).lsb
    rng = np.random.default_rng(1)
    edges = np.array(
        [
            0.0,
            -0.0,
            step / 2,
            -step / 2,
            1.5 * step,
            2.5 * step,
            -2.5 * step,
            15.99,
            16.0,
            -16.0,
            -16.1,
            1000.3,
            -1000.3,
            3.7e5,
            1e30,
            -1e30,
            1e-30,
            15.992187,
            15.996094,
        ],
        dtype=np.float32,
    )
    x = np.concatenate(
        [edges, rng.normal(0, 6, 20000).astype(np.float32), rng.uniform(-17, 17, 20000).astype(np.float32)]
    )
    inp = tf.keras.Input((x.size,))
    layer = tf.keras.Model(inp, QActivation(qz.input_quantizer(q))(inp))
    ref = layer.predict(x[None], verbose=0)[0]
    ours = qz.quantize_inputs(x, q)
    assert ours.dtype == np.float32
    assert np.array_equal(ours.view(np.int32), ref.view(np.int32) if ref.dtype == np.float32 else ref)
    # half to even at the ties: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2 steps
    assert list(ours[2:7] / step) == [0.0, 0.0, 2.0, 2.0, -2.0]
    inside = np.abs(x) < 16
    assert np.array_equal(ours[inside] / step, np.round(ours[inside] / step))


# -- students ---------------------------------------------------------------------------------------------


def test_mlp_layers_and_output() -> None:
    from kd_trigger.models.students import build_student, output_type

    spec = _mlp()
    model = build_student(spec)
    names = [layer.name for layer in model.layers]
    assert names == [
        "particles",
        "input_quant",
        "flatten",
        "dense_0",
        "relu_0",
        "dense_1",
        "relu_1",
        "output",
    ]
    assert model.input_shape == (None, 4, 7) and model.output_shape == (None, 2)
    assert model.layers[1].quantizer.get_config()["alpha"] == 1
    x = np.random.default_rng(0).normal(0, 2, (64, 4, 7)).astype(np.float32)
    y = model.predict(x, verbose=0)
    t = output_type(spec)
    k = y.astype(np.float64) * 2.0**t.fractional
    assert np.array_equal(k, np.round(k))
    assert np.all(y >= t.min_value) and np.all(y <= t.max_value)


def test_deepsets_layers_permutation_invariant() -> None:
    from kd_trigger.models.students import build_student, output_type

    spec = _ds()
    model = build_student(spec)
    names = [layer.name for layer in model.layers]
    assert names == [
        "particles",
        "input_quant",
        "phi_0",
        "phi_relu_0",
        "phi_1",
        "phi_relu_1",
        "pool",
        "rho_0",
        "rho_relu_0",
        "output",
    ]
    assert type(model.get_layer("phi_0")).__name__ == "QConv1D"
    x = np.random.default_rng(0).normal(0, 2, (32, 8, 7)).astype(np.float32)
    y = model.predict(x, verbose=0)
    y_perm = model.predict(x[:, ::-1], verbose=0)
    assert np.array_equal(y, y_perm)  # exact: the average of quantized values is a shift
    k = y.astype(np.float64) * 2.0 ** output_type(spec).fractional
    assert np.array_equal(k, np.round(k))


def test_deepsets_power_of_two() -> None:
    from kd_trigger.models.students import build_student

    with pytest.raises(ModelError, match=r"student 'ds'.*power of two.*got 12.*use e.g. 8"):
        build_student(_ds(n_particles=12))


def test_bit_budget() -> None:
    from kd_trigger.models.students import build_student, weight_bits_needed

    spec = _mlp()
    n_params, bits = weight_bits_needed(spec)
    # 28*8 + 8*4 + 4*2 kernels at 8 bits, 8 + 4 + 2 biases at 8 bits
    assert n_params == 28 * 8 + 8 + 8 * 4 + 4 + 4 * 2 + 2
    assert bits == 8 * n_params
    assert build_student(spec).count_params() == n_params
    with pytest.raises(ModelError) as err:
        build_student(_mlp(max_weight_bits=bits - 1))
    msg = str(err.value)
    assert "\n" not in msg
    assert "student 'mlp'" in msg and f"needs {bits} weight bits" in msg and "max_weight_bits" in msg
    assert "narrow" in msg


def test_save_load_round_trip(tmp_path) -> None:
    from kd_trigger.models.students import build_student, load_student_file, save_student

    for spec in (_mlp(), _ds()):
        model = build_student(spec)
        path = save_student(model, tmp_path / f"{spec.name}.h5")
        loaded = load_student_file(path, spec)
        x = np.random.default_rng(3).normal(0, 2, (50, spec.n_particles, 7)).astype(np.float32)
        assert np.array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
        assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    with pytest.raises(ModelError, match="do not match student"):
        load_student_file(tmp_path / "mlp.h5", _mlp(n_particles=8))
    with pytest.raises(ModelError, match="does not exist"):
        load_student_file(tmp_path / "missing.h5", _mlp())
