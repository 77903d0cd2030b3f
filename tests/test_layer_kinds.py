"""Every layer kind through every flow (the shared :class:`layer_base.LayerTestBase`).

Each class supplies one tiny model covering a few layer kinds; bit-exactness, save/load and the resource
estimate are inherited. One compilation per class and flow (slow tests).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pytest
from layer_base import LayerTestBase, edge_inputs, l1_deep_sets, pooled_model, student

from kd_trigger.config import HlsConfig
from kd_trigger.config.firmware import LayerHlsConfig
from kd_trigger.errors import ModelError

tf = pytest.importorskip("tensorflow")


class StudentKinds(LayerTestBase):
    """A student: its inputs exercise the quantized ReLUs (alive, saturating, ties both ways)."""

    kind: ClassVar[str] = ""

    def build(self) -> Any:
        return student(self.kind, seed=5)

    def test_inputs_exercise_relus_saturation_and_ties(self, model: Any) -> None:
        """The exactness tests are not vacuous: ReLUs are alive, saturate, and their rounding meets exact
        ties both ways."""
        from kd_trigger.hls.csim import float64_twin, quantize_inputs
        from kd_trigger.rtl.program import build_program, evaluate

        x = edge_inputs(model, self.input_seed, self.n_edge, self.n_random)
        program = build_program(model)
        ref = evaluate(program, quantize_inputs(float64_twin(model), x))
        relus = [s for s in program.steps if s.kind == "quantize"]
        alive = np.mean([np.mean(ref[s.name] > 0) for s in relus])
        assert 0.2 < alive < 0.95
        assert any(np.any(ref[s.name] == s.out_type.max_value) for s in relus)
        dense = next(s for s in program.steps if s.kind == "dense")
        relu = program.steps[program.steps.index(dense) + 1]
        acc = ref[dense.name] / relu.out_type.lsb  # in units of the ReLU's grid
        ties = (acc - np.floor(acc)) == 0.5
        assert np.any(ties & (np.floor(acc) % 2 == 0)) and np.any(ties & (np.floor(acc) % 2 == 1))


class TestQDenseQuantizerFlatten(StudentKinds):
    """InputLayer, QActivation (input and ReLU quantizers), Flatten, QDense: the MLP student."""

    kind = "mlp"


class TestPointwiseQConv1DAveragePooling(StudentKinds):
    """Pointwise QConv1D and GlobalAveragePooling1D over 8 particles: the Deep Sets student."""

    kind = "deepsets"

    def test_program_segments(self, model: Any) -> None:
        from kd_trigger.rtl.program import build_program

        assert [s.name for s in build_program(model).segments] == ["phi_0", "phi_1", "rho_0", "output"]


class TestMeanOverTwelveThenQuantizer(LayerTestBase):
    """A mean over 12 particles (no power of two) rounded onto the next quantizer's grid, in RTL."""

    flows = ("rtl",)
    input_seed = 9
    n_edge, n_random = 3_000, 1_000

    def build(self) -> Any:
        return pooled_model(12, quantizer_after_pool=True, seed=4)

    @pytest.mark.slow
    def test_the_phi_segment_is_one_circuit_per_particle(self, firmware: Any) -> None:
        assert firmware.result.da4ml_estimate.segments[0]["rows"] == 12


class TestAssumedDenseBatchNormSoftmax(LayerTestBase):
    """Plain Dense and BatchNormalization (types given at intake), QDense on (particles, features) with
    alpha=None, no input quantizer, a final Softmax: the hls4ml flow only."""

    flows = ("hls4ml",)
    hls = HlsConfig(input_precision="ap_fixed<12,4>", default_precision="ap_fixed<16,6>")

    def build(self) -> Any:
        return l1_deep_sets(batch_norm=True)

    def test_the_rtl_flow_refuses_naming_the_first_layer_it_cannot_build(self, model: Any) -> None:
        from kd_trigger.hls.convert import model_precision
        from kd_trigger.rtl.program import build_program

        with pytest.raises(ModelError) as err:
            build_program(model, model_precision(model, self.intake))
        text = str(err.value)
        assert "layer 'bn' (BatchNormalization) has no bit-exact RTL form" in text
        assert "supported layers: QActivation, QDense, QConv1D(kernel_size=1), GlobalAveragePooling1D" in text

    @pytest.mark.slow
    def test_exactness_is_judged_before_the_final_softmax(self, firmware: Any) -> None:
        assert firmware.result.compared_layer == "head"
        assert firmware.result.final_activation["kind"] == "softmax"


def lookup_model(inner: str, outer: str, seed: int = 3) -> Any:
    """input quantizer -> QDense(8, activation=inner) -> QDense(6) -> Activation(outer) -> QDense(3): the
    lookup-table activations in the middle of a model, split off a Dense (hls4ml's ``<name>_<inner>``)
    and as a layer of their own."""
    from conftest import randomize_weights
    from layer_base import qbits
    from qkeras import QActivation, QDense

    def dense(units: int, name: str, activation: str = "linear") -> Any:
        return QDense(
            units, kernel_quantizer=qbits(8, 1), bias_quantizer=qbits(8, 3), activation=activation, name=name
        )

    inp = tf.keras.Input((10,), name="x")
    x = QActivation(qbits(10, 3), name="input_quant")(inp)
    x = dense(8, "d1", inner)(x)
    x = dense(6, "d2")(x)
    x = tf.keras.layers.Activation(outer, name="act")(x)
    out = dense(3, "output")(x)
    model = tf.keras.Model(inp, out, name=f"lut_{inner}_{outer}")
    randomize_weights(model, seed)
    return model


class TestTanhSplitSigmoidLayer(LayerTestBase):
    """tanh split off a QDense and a sigmoid Activation between layers: hls4ml's lookup tables (1024
    entries of ap_fixed<18,8>), emulated bit for bit; the table indices cover the saturated ends too."""

    flows = ("hls4ml",)

    def build(self) -> Any:
        return lookup_model("tanh", "sigmoid")

    def test_types_and_tables(self, model: Any) -> None:
        from kd_trigger.hls.convert import model_precision

        precision = model_precision(model)
        for name, function in (("d1_tanh", "tanh"), ("act", "sigmoid")):
            chosen = precision[name]
            assert (chosen.kind, chosen.function, chosen.table_size) == ("lookup", function, 1024)
            assert {k: t.hls() for k, t in chosen.types.items()} == {
                "result": "ap_fixed<18,8>",
                "table": "ap_fixed<18,8>",
            }
        assert precision["act"].input_type == precision["d2"].types["result"]

    def test_the_tables_are_indexed_over_their_whole_range(self, model: Any) -> None:
        """Not vacuous: the exactness inputs reach both saturated ends of the tanh table and many entries
        of both tables."""
        from kd_trigger.hls.convert import model_precision
        from kd_trigger.hls.csim import float64_twin, keras_layer_outputs, quantize_inputs
        from kd_trigger.layers.model import quantized_weights

        precision = model_precision(model, self.intake)
        twin = float64_twin(model, quantized_weights(model, precision), precision)
        x = edge_inputs(model, self.input_seed, self.n_edge, self.n_random, intake=self.intake)
        out = keras_layer_outputs(twin, quantize_inputs(twin, x), ["d1_tanh", "act"])
        assert out["d1_tanh"].min() == -1.0 and out["d1_tanh"].max() == 1.0 - 2**-10
        assert len(np.unique(out["d1_tanh"])) > 200 and len(np.unique(out["act"])) > 100


class TestSoftplusSplitSoftsignLayer(TestTanhSplitSigmoidLayer):
    """softplus split off a QDense and a softsign Activation (hls4ml's lookup tables), with a configured
    TableSize of 1000 (no power of two) and a narrower table type for the softsign."""

    hls = HlsConfig(
        configured_types={"act": {"table": "ap_fixed<12,2,AP_RND,AP_SAT>", "result": "ap_fixed<10,1>"}},
        layers={"d1_softplus": LayerHlsConfig(table_size=1000)},
    )

    def build(self) -> Any:
        return lookup_model("softplus", "softsign", seed=4)

    def test_types_and_tables(self, model: Any) -> None:
        from kd_trigger.hls.convert import model_precision

        precision = model_precision(model, self.intake)
        assert (precision["d1_softplus"].function, precision["d1_softplus"].table_size) == ("softplus", 1000)
        chosen = precision["act"]
        assert (chosen.function, chosen.emulated) == ("softsign", True)
        assert {k: t.hls() for k, t in chosen.types.items()} == {
            "result": "ap_fixed<10,1>",
            "table": "ap_fixed<12,2,AP_RND,AP_SAT>",
        }

    @pytest.mark.slow
    def test_the_tables_are_indexed_over_their_whole_range(self, firmware: Any) -> None:
        assert firmware.result.exact_fraction == 1.0


def test_lookup_tables_and_indices_as_hls4ml_fills_and_reads_them() -> None:
    """By hand, nnet_activation.h with hls4ml's defaults (1024 entries of ap_fixed<18,8>, truncated):
    sigmoid(0.5) = 0.6225 -> entry trunc(0.5 * 1024 / 16) + 512 = 544, floor(0.6225 * 1024) / 1024;
    an input of -10/1024 indexes entry 512 (the int conversion truncates towards zero, not down); inputs
    beyond the table clamp to its ends."""
    from kd_trigger.fixed import FixedType
    from kd_trigger.layers.lookup import index_terms, lookup_np, lookup_table

    t18 = FixedType(18, 8)
    sig = lookup_table("sigmoid", 1024, t18)
    assert sig[544] == 637 / 1024 and sig[512] == 0.5 and sig[0] == 0.0
    tanh = lookup_table("tanh", 1024, t18)
    assert tanh[0] == -1.0 and tanh[512] == 0.0 and tanh[1023] == 1023 / 1024
    assert index_terms("tanh", 1000, FixedType(16, 6)) == (1000, 8 * 1024, 500)
    x_type, res = FixedType(16, 6), FixedType(16, 6)
    x = np.array([0.5, -10 / 1024, -25.0, 31.0])
    np.testing.assert_array_equal(
        lookup_np(x, "sigmoid", 1024, t18, res, x_type), [637 / 1024, 0.5, sig[0], sig[1023]]
    )


@pytest.mark.parametrize(("activation", "why"), [("elu", "'elu'"), ("selu", "'selu'"), ("swish", "'swish'")])
def test_an_activation_without_an_exact_reference_is_refused_in_one_line(activation: str, why: str) -> None:
    from kd_trigger.hls.convert import model_precision

    model = lookup_model(activation, "tanh")
    with pytest.raises(ModelError) as err:
        model_precision(model)
    text = str(err.value)
    assert "\n" not in text
    assert text.startswith(
        f"layer 'd1_{activation}' (the activation hls4ml splits off 'd1' (QDense)): activation {why}"
    )
    assert (
        "has no bit-exact reference here (supported: relu, linear, tanh, sigmoid, softplus, softsign" in text
    )


def test_a_lookup_input_too_wide_for_hls4mls_int_index_is_refused() -> None:
    from kd_trigger.fixed import FixedType
    from kd_trigger.layers.lookup import check_index

    check_index("'a' (Activation)", "tanh", FixedType(40, 24), 1024)  # 2**23 * 128 = 2**30: fits an int
    with pytest.raises(ModelError, match=r"^layer 'a' \(Activation\): its input ap_fixed<40,26> is too wide"):
        check_index("'a' (Activation)", "tanh", FixedType(40, 26), 1024)
