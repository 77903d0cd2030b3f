"""Layers without arithmetic: the input, Flatten, Reshape, Dropout (identity at inference)."""

from __future__ import annotations

from typing import Any

import numpy as np

from kd_trigger.errors import ModelError
from kd_trigger.layers.base import LayerHandler, PrecisionWalk, ProgramWalk, out_shape
from kd_trigger.layers.spec import LayerPrecision, LayerSpec
from kd_trigger.layers.step import Step


class InputHandler(LayerHandler):
    """The model input. Its type is the input quantizer's grid, or the one given at intake."""

    kind = "input"
    keras_classes = ("InputLayer",)
    hls4ml_classes = ("Input", "InputLayer")
    estimate_kind = "input"
    rtl_classes = ("InputLayer",)
    pass_through = True

    def precision(self, spec: LayerSpec, walk: PrecisionWalk) -> None:
        """The firmware input carries exactly the input grid: inputs are put on it by the caller."""
        body = [layer for layer in walk.layers if walk.lookup(layer.class_name) is not self]
        first = body[0] if body else None
        handler = walk.lookup(first.class_name) if first is not None else None
        if (
            first is not None
            and first.activation is not None
            and handler is not None
            and handler.kind == "quantizer"
        ):
            # kind "linear": a configured input type narrower than the grid is a cast hls4ml makes, emulated
            # by the reference (kd_trigger.layers.reference.float64_twin) before the first quantizer's.
            walk.out[spec.name] = LayerPrecision(
                {"result": first.activation}, "input quantizer grid", kind="linear"
            )
            walk.current = first.activation
        elif walk.intake.input_type is not None:
            walk.current = walk.intake.input_type.exact()
            walk.out[spec.name] = LayerPrecision(
                {"result": walk.current}, "input type given at intake", assumed=True
            )
        else:
            raise ModelError(
                "the model has no input quantizer, so its firmware input type is unknown; give it with "
                "--input-precision 'ap_fixed<W,I>' (config: hls.input_precision), or make the first layer "
                "QActivation(quantized_bits(bits, integer, alpha=1))"
            )

    def twin(self, layer: Any, x: Any, exact_weights: dict[str, dict[str, np.ndarray]]) -> Any:
        """The twin has its own float64 input."""
        return x

    def rtl_step(self, layer: Any, walk: ProgramWalk) -> Step | None:
        return None


class DropoutHandler(LayerHandler):
    """Dropout: the identity at inference, no hardware."""

    kind = "dropout"
    keras_classes = ("Dropout",)
    rtl_classes = ("Dropout",)
    rtl_note = "Dropout"
    pass_through = True

    def rtl_step(self, layer: Any, walk: ProgramWalk) -> Step | None:
        return None


class FlattenHandler(LayerHandler):
    """Flatten: the same values in another shape (a reshape step, no hardware)."""

    kind = "flatten"
    keras_classes = ("Flatten",)
    hls4ml_classes = ("Flatten",)
    rtl_classes = ("Flatten",)
    rtl_note = "Flatten"
    pass_through = True

    def rtl_step(self, layer: Any, walk: ProgramWalk) -> Step | None:
        return Step(layer.name, type(layer).__name__, "reshape", walk.current, out_shape(layer))


class ReshapeHandler(LayerHandler):
    """Reshape (and hls4ml's Transpose): passes values through in the hls4ml flow; no RTL form."""

    kind = "reshape"
    keras_classes = ("Reshape",)
    hls4ml_classes = ("Reshape", "Transpose")
    pass_through = True
