"""Shared exactness test base for layer kinds (as HGQ2's ``LayerTestBase``), and the tiny model builders
of the flow tests.

A layer kind's test subclasses :class:`LayerTestBase` and supplies only :meth:`LayerTestBase.build` (a
tiny model with the kind in it; one model may cover several kinds) and, where it needs them, ``flows``
and ``hls``. It inherits, for every flow in ``flows`` (``hls4ml``: g++ C simulation; ``rtl``: da4ml
Verilog simulated by Verilator):

* fast: every layer has a handler; the model survives a save/load round trip with the same layer
  descriptions, derived types, firmware weights and reference outputs; the exact integer program equals
  the float64 reference layer by layer (rtl);
* slow (one compilation per class and flow, shared by the tests below): the firmware is bit-exact
  against the float64 reference on edge-case and physics-like inputs, and a resource estimate is made.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import numpy as np
import pytest
from conftest import randomize_weights

from kd_trigger.config import HlsConfig, StudentConfig

N_EDGE = 8_000
N_RANDOM = 4_000


# -- builders ------------------------------------------------------------------------------------------------
def qbits(bits: int, integer: int, alpha: Any = 1) -> Any:
    """``quantized_bits(bits, integer, alpha)``."""
    from qkeras import quantized_bits

    return quantized_bits(bits, integer, alpha=alpha)


def qdense_mlp(seed: int = 0, n_in: int = 16, hidden: int = 8) -> Any:
    """input quantizer -> QDense -> quantized ReLU -> QDense(2), on a flat input."""
    import tensorflow as tf
    from qkeras import QActivation, QDense, quantized_relu

    def dense(units: int, name: str) -> Any:
        return QDense(units, kernel_quantizer=qbits(8, 1), bias_quantizer=qbits(8, 3), name=name)

    inp = tf.keras.Input((n_in,), name="x")
    x = QActivation(qbits(12, 4), name="input_quant")(inp)
    x = dense(hidden, "dense_0")(x)
    x = QActivation(quantized_relu(8, 3), name="relu_0")(x)
    out = dense(2, "output")(x)
    model = tf.keras.Model(inp, out, name="tiny")
    randomize_weights(model, seed)
    return model


STUDENT_SIZES = {
    # the RTL flow's tiny students
    ("mlp", "tiny"): {"n_particles": 4, "hidden": (16, 8)},
    ("deepsets", "tiny"): {"n_particles": 8, "hidden": (8, 8), "head": (8,)},
    # the hls4ml flow's small students (wide enough for the traps of hls4ml's defaults)
    ("mlp", "small"): {"n_particles": 16, "hidden": (64, 32, 32)},
    ("deepsets", "small"): {"n_particles": 16, "hidden": (32, 32), "head": (32,)},
}


def student(kind: str, seed: int, size: str = "tiny") -> Any:
    """A QKeras student (:func:`kd_trigger.models.students.build_student`) with random weights."""
    from kd_trigger.models.students import build_student

    model = build_student(StudentConfig(name=kind, kind=kind, **STUDENT_SIZES[(kind, size)]))  # type: ignore[arg-type]
    randomize_weights(model, seed)
    return model


def pooled_model(n_particles: int, quantizer_after_pool: bool, seed: int = 0) -> Any:
    """Per-particle QConv1D -> ReLU -> mean over the particles [-> quantizer] -> QDense(2)."""
    import tensorflow as tf
    from qkeras import QActivation, QConv1D, QDense, quantized_relu

    inp = tf.keras.Input((n_particles, 3), name="particles")
    x = QActivation(qbits(12, 4), name="input_quant")(inp)
    x = QConv1D(6, 1, kernel_quantizer=qbits(8, 1), bias_quantizer=qbits(8, 3), name="phi")(x)
    x = QActivation(quantized_relu(8, 3), name="phi_relu")(x)
    x = tf.keras.layers.GlobalAveragePooling1D(name="pool")(x)
    if quantizer_after_pool:
        x = QActivation(quantized_relu(8, 3), name="pool_quant")(x)
    out = QDense(2, kernel_quantizer=qbits(8, 1), bias_quantizer=qbits(8, 3), name="output")(x)
    model = tf.keras.Model(inp, out, name=f"pool{n_particles}")
    randomize_weights(model, seed)
    return model


def l1_deep_sets(
    n_particles: int = 8,
    *,
    pool_quantizer: bool = False,
    batch_norm: bool = False,
    plain_head: bool = True,
    softmax: bool = True,
    seed: int = 2,
) -> Any:
    """An l1-jet-id-like Deep Sets tagger as people save them: per-particle QDense (alpha=None) on
    (particles, features) without an input quantizer, mean, QDense, [BatchNormalization], an unquantized
    Dense head, a final Softmax."""
    import tensorflow as tf
    from qkeras import QActivation, QDense, quantized_relu

    inp = tf.keras.Input((n_particles, 3), name="inputs")
    x = QDense(16, kernel_quantizer=qbits(8, 0, None), bias_quantizer=qbits(8, 0, None), name="phi_0")(inp)
    x = QActivation(quantized_relu(8, 3), name="phi_relu_0")(x)
    x = QDense(16, kernel_quantizer=qbits(8, 0, None), bias_quantizer=qbits(8, 0, None), name="phi_1")(x)
    x = QActivation(quantized_relu(8, 3), name="phi_relu_1")(x)
    x = tf.keras.layers.GlobalAveragePooling1D(name="pool")(x)
    if pool_quantizer:
        x = QActivation(qbits(10, 3), name="pool_quant")(x)
    x = QDense(16, kernel_quantizer=qbits(8, 0, None), bias_quantizer=qbits(8, 0, None), name="rho_0")(x)
    if batch_norm:
        x = tf.keras.layers.BatchNormalization(name="bn")(x)
    x = QActivation(quantized_relu(8, 3), name="rho_relu_0")(x)
    if plain_head:
        x = tf.keras.layers.Dense(5, name="head")(x)
    else:
        x = QDense(5, kernel_quantizer=qbits(8, 0, None), bias_quantizer=qbits(8, 0, None), name="head")(x)
    if softmax:
        x = tf.keras.layers.Softmax(name="softmax")(x)
    model = tf.keras.Model(inp, x)
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if hasattr(layer, "kernel"):
            layer.kernel.assign(rng.normal(0, 0.4, layer.kernel.shape).astype(np.float32))
            layer.bias.assign(rng.normal(0, 0.3, layer.bias.shape).astype(np.float32))
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            layer.gamma.assign(rng.uniform(0.5, 1.5, layer.gamma.shape).astype(np.float32))
            layer.beta.assign(rng.normal(0, 0.2, layer.beta.shape).astype(np.float32))
            layer.moving_mean.assign(rng.normal(0, 0.5, layer.moving_mean.shape).astype(np.float32))
            layer.moving_variance.assign(rng.uniform(0.5, 2, layer.moving_variance.shape).astype(np.float32))
    return model


def edge_inputs(
    model: Any, seed: int, n_edge: int = N_EDGE, n_random: int = N_RANDOM, intake: Any = None
) -> np.ndarray:
    """On-grid edge cases over the whole input range plus off-grid physics-like values."""
    from kd_trigger.hls.convert import model_precision
    from kd_trigger.hls.precision import edge_case_inputs

    shape = tuple(model.input_shape[1:])
    t = model_precision(model, intake)[model.layers[0].name].types["result"]
    edge = edge_case_inputs(t, shape, n_edge, seed=seed)
    physics = np.random.default_rng(seed).normal(0.0, 3.0, (n_random, *shape))
    return np.concatenate([edge, physics]).astype(np.float32)


def keras_3layer(batch_norm: bool = False, seed: int = 0) -> Any:
    """hls4ml's example jet tagger KERAS_3layer (16-64-32-32-5, relu, softmax; fastmachinelearning/
    example-models keras/) in float, its layer names; ``batch_norm``: KERAS_3layer_batch_norm's
    BatchNormalization after the first Dense. Built here (no download), random weights."""
    import tensorflow as tf
    from tensorflow.keras import layers

    tf.keras.utils.set_random_seed(seed)
    inp = tf.keras.Input((16,), name="input_1")
    x = layers.Dense(64, name="fc1", activation=None if batch_norm else "relu")(inp)
    if batch_norm:
        x = layers.BatchNormalization(name="bn1")(x)
        x = layers.Activation("relu", name="relu1")(x)
    x = layers.Dense(32, activation="relu", name="fc2")(x)
    x = layers.Dense(32, activation="relu", name="fc3")(x)
    x = layers.Dense(5, name="output")(x)
    out = layers.Activation("softmax", name="softmax")(x)
    model = tf.keras.Model(inp, out, name="keras_3layer")
    if batch_norm:  # trained statistics, not the identity of a fresh layer
        rng = np.random.default_rng(seed)
        bn = model.get_layer("bn1")
        bn.set_weights(
            [
                rng.uniform(0.5, 2.0, 64),
                rng.normal(0.0, 0.5, 64),
                rng.normal(0.0, 1.0, 64),
                rng.uniform(0.5, 4.0, 64),
            ]
        )
    return model


def qkeras_3layer(seed: int = 0) -> Any:
    """hls4ml's example qkeras_3layer: a ``Sequential`` QKeras jet tagger (16-64-32-32-5, 6-bit
    quantized_bits kernels and biases, quantized_relu(6), softmax), no input quantizer."""
    import tensorflow as tf
    from qkeras import QActivation, QDense, quantized_bits, quantized_relu

    tf.keras.utils.set_random_seed(seed)
    q = quantized_bits(6, 0, alpha=1)
    model = tf.keras.Sequential(name="qkeras_3layer")
    for i, units in enumerate((64, 32, 32), start=1):
        kwargs = {"input_shape": (16,)} if i == 1 else {}
        model.add(QDense(units, kernel_quantizer=q, bias_quantizer=q, name=f"fc{i}", **kwargs))
        model.add(QActivation(quantized_relu(6), name=f"relu{i}"))
    model.add(QDense(5, kernel_quantizer=q, bias_quantizer=q, name="output"))
    model.add(tf.keras.layers.Activation("softmax", name="softmax"))
    return model


def save_and_load(model: Any, path: Path) -> Any:
    """``model`` saved as HDF5 and loaded back with the QKeras custom objects."""
    import tensorflow as tf

    from kd_trigger.layers.keras import qkeras_objects

    model.save(path, save_format="h5")
    return tf.keras.models.load_model(path, custom_objects=qkeras_objects(), compile=False)


# -- the base ------------------------------------------------------------------------------------------------
class LayerTestBase:
    """Every layer kind through every flow: subclasses supply :meth:`build` (and ``flows``, ``hls``)."""

    flows: ClassVar[tuple[str, ...]] = ("hls4ml", "rtl")
    hls: ClassVar[HlsConfig] = HlsConfig()
    input_seed: ClassVar[int] = 6
    n_edge: ClassVar[int] = 6_000
    n_random: ClassVar[int] = 4_000

    def build(self) -> Any:
        """The tiny model with this test's layer kinds in it."""
        raise NotImplementedError

    def pytest_generate_tests(self, metafunc: Any) -> None:
        if "flow" in metafunc.fixturenames:
            metafunc.parametrize("flow", self.flows, scope="class")

    @pytest.fixture(scope="class")
    def model(self) -> Any:
        return self.build()

    @property
    def intake(self) -> Any:
        from kd_trigger.hls.precision import Intake

        return Intake.from_hls(self.hls)

    @pytest.fixture(scope="class")
    def firmware(self, model: Any, flow: str, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
        """The model built by ``flow`` (compiled once per class and flow) and what it computed."""
        x = edge_inputs(model, self.input_seed, self.n_edge, self.n_random, intake=self.intake)
        out = tmp_path_factory.mktemp(flow) / model.name
        if flow == "hls4ml":
            from kd_trigger.fpga.estimate import estimate_model
            from kd_trigger.hls.convert import convert_model
            from kd_trigger.hls.csim import run_csim

            converted = convert_model(model, out, self.hls)
            result, y_ref, y_fw = run_csim(model, converted, x, min_exact_fraction=1.0)
            estimate = estimate_model(
                converted.hls_model, self.hls.reuse_factor, self.hls.clock_period_ns
            ).to_dict()
            return SimpleNamespace(
                flow=flow, x=x, converted=converted, result=result, y_ref=y_ref, y_fw=y_fw, estimate=estimate
            )
        from kd_trigger.rtl import run_rtl_flow

        result = run_rtl_flow(model, out, x, synth=False)
        return SimpleNamespace(flow=flow, x=x, result=result, estimate=result.da4ml_estimate.to_dict())

    # -- fast ------------------------------------------------------------------------------------------------
    def test_every_layer_has_a_handler(self, model: Any) -> None:
        from kd_trigger.layers.registry import find_handler

        missing = [layer.name for layer in model.layers if find_handler(type(layer).__name__) is None]
        assert missing == []

    def test_save_load_round_trip(self, model: Any, tmp_path: Path) -> None:
        from kd_trigger.hls.convert import describe_layers, model_precision, quantized_weights
        from kd_trigger.hls.csim import float64_twin, quantize_inputs, run_twin

        loaded = save_and_load(model, tmp_path / "model.h5")
        assert describe_layers(loaded) == describe_layers(model)
        precision = model_precision(model, self.intake)
        assert model_precision(loaded, self.intake) == precision
        want, got = quantized_weights(model, precision), quantized_weights(loaded, precision)
        assert want and set(got) == set(want)
        for name, arrays in want.items():
            assert set(got[name]) == set(arrays)
            for key, values in arrays.items():
                np.testing.assert_array_equal(got[name][key], values, err_msg=f"{name}/{key}")
        x = edge_inputs(model, self.input_seed, 200, 100, intake=self.intake)
        twins = [float64_twin(m, quantized_weights(m, precision)) for m in (model, loaded)]
        t = precision[model.layers[0].name].types["result"]
        outs = [run_twin(twin, quantize_inputs(twin, x, t)) for twin in twins]
        np.testing.assert_array_equal(outs[0], outs[1])

    def test_exact_program_equals_the_reference_layer_by_layer(self, model: Any, flow: str) -> None:
        """The RTL's integer reference (used to locate mismatches) equals the float64 twin on every layer;
        the hls4ml flow's firmware weights lie on their derived types' grids."""
        from kd_trigger.hls.convert import model_precision, quantized_weights
        from kd_trigger.hls.csim import float64_twin, keras_layer_outputs, quantize_inputs

        precision = model_precision(model, self.intake)
        if flow == "hls4ml":
            for name, arrays in quantized_weights(model, precision).items():
                for key, values in arrays.items():
                    t = precision[name].types[key]
                    np.testing.assert_array_equal(t.quantize(values), values, err_msg=f"{name}/{key}")
            return
        from kd_trigger.rtl.program import build_program, evaluate

        program = build_program(model)
        twin = float64_twin(model)
        x = quantize_inputs(twin, edge_inputs(model, self.input_seed, 1000, 500))
        ref = evaluate(program, x)
        keras = keras_layer_outputs(twin, x, list(ref))
        for step in program.steps:
            if step.matches_keras:
                np.testing.assert_array_equal(ref[step.name], keras[step.name], err_msg=step.name)

    # -- slow: one compilation per class and flow -------------------------------------------------------------
    @pytest.mark.slow
    def test_firmware_is_bit_exact(self, firmware: SimpleNamespace) -> None:
        n = len(firmware.x)
        if firmware.flow == "hls4ml":
            result = firmware.result
            assert result.n_samples == n
            assert result.exact_fraction == 1.0, result
            assert result.max_abs_diff == 0.0
            np.testing.assert_array_equal(firmware.y_ref, firmware.y_fw)
        else:
            sim = firmware.result.rtl_sim
            assert sim.n_exact_samples == sim.n_samples == n
            assert sim.exact_fraction == 1.0
            assert firmware.result.yosys is None and firmware.result.to_dict()["yosys"] is None

    @pytest.mark.slow
    def test_a_resource_estimate_is_made(self, firmware: SimpleNamespace) -> None:
        est = firmware.estimate
        if firmware.flow == "hls4ml":
            assert est["total"]["lut"] > 0 and est["total"]["ff"] > 0 and est["latency_cycles"] >= 1
            assert {layer["name"] for layer in est["layers"]} >= set(firmware.converted.reuse_by_layer)
        else:
            assert est["source"] == "da4ml estimate" and est["lut"] > 0 and est["ff"] > 0
            assert est["latency_cycles"] == firmware.result.latency_cycles >= 1
