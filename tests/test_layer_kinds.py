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
