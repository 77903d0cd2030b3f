"""The layer handler base class and the state of the walks that ask the handlers.

A handler knows one layer kind (a few Keras/QKeras classes, and the hls4ml IR classes they become) in
every walk over a model: ``describe`` (a Keras layer -> :class:`LayerSpec`), ``precision`` (its derived
fixed-point types), ``twin`` (its float64 reference layer), ``firmware_weights`` (the constants the
firmware holds) and ``rtl_step`` (its instruction in the RTL program). A walk keeps its state in a
small object (:class:`PrecisionWalk`, :class:`ProgramWalk`) that it hands to each layer's handler.
The defaults here are those of a layer with no arithmetic; :mod:`kd_trigger.layers.registry` lists the
handlers and finds the one for a class.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from kd_trigger.errors import ModelError
from kd_trigger.fixed import FixedType
from kd_trigger.layers.keras import qkeras_objects
from kd_trigger.layers.spec import Intake, LayerPrecision, LayerSpec
from kd_trigger.layers.step import Step


@dataclass
class PrecisionWalk:
    """State of the precision derivation over a model's :class:`LayerSpec` s (model order).

    ``current``: the exact type of the value flowing out of the layers walked so far (None before the
    input); ``out``: the chosen types so far; ``lookup``: the handler of a class name (or None).
    """

    layers: list[LayerSpec]
    intake: Intake
    lookup: Callable[[str], LayerHandler | None]
    out: dict[str, LayerPrecision] = field(default_factory=dict)
    current: FixedType | None = None
    index: int = 0

    @property
    def last(self) -> bool:
        """Whether the layer being walked is the model's last."""
        return self.index == len(self.layers) - 1

    @property
    def type_in(self) -> FixedType:
        """The type flowing into the layer being walked (the input layer comes first)."""
        assert self.current is not None
        return self.current

    def next_quantizer(self) -> LayerSpec | None:
        """The first quantizer after the layer being walked with only pass-through layers in between."""
        for layer in self.layers[self.index + 1 :]:
            handler = self.lookup(layer.class_name)
            if handler is not None and handler.pass_through:
                continue
            quantizer = handler is not None and handler.kind == "quantizer"
            return layer if quantizer and layer.activation is not None else None
        return None


@dataclass
class ProgramWalk:
    """State of building the RTL program: the derived types and firmware weights of every layer, the
    type flowing out of the steps so far, and whether the input quantizer was met."""

    precision: dict[str, LayerPrecision]
    weights: dict[str, dict[str, np.ndarray]]
    current: FixedType
    first_quantizer_seen: bool = False


def out_shape(layer: Any) -> tuple[int, ...]:
    """A Keras layer's output shape without the batch axis."""
    return tuple(int(d) for d in layer.output_shape[1:])


class LayerHandler:
    """One layer kind in every walk. Subclasses set the class attributes and override what they compute.

    ``kind``: the registry's name of the kind; ``keras_classes``: the Keras/QKeras classes it handles;
    ``hls4ml_classes``: the hls4ml IR classes (without the Vivado/Vitis prefix) of the same kind and
    ``estimate_kind`` the resource estimator's name for them; ``rtl_classes``: the classes with an RTL
    form (``rtl_note`` says how the error message lists them); ``weighted``: computes with weights (a
    model needs at least one); ``pass_through``: the value passes unchanged in the precision derivation.
    """

    kind: ClassVar[str] = "other"
    keras_classes: ClassVar[tuple[str, ...]] = ()
    hls4ml_classes: ClassVar[tuple[str, ...]] = ()
    estimate_kind: ClassVar[str] = "other"
    rtl_classes: ClassVar[tuple[str, ...]] = ()
    rtl_note: ClassVar[str] = ""
    weighted: ClassVar[bool] = False
    pass_through: ClassVar[bool] = False

    def describe(self, layer: Any, where: str) -> LayerSpec:
        """The plain-data description of a Keras layer of this kind."""
        return LayerSpec(layer.name, type(layer).__name__)

    def precision(self, spec: LayerSpec, walk: PrecisionWalk) -> None:
        """Record the layer's derived types in ``walk.out`` and move ``walk.current`` on (default: none)."""

    def twin(self, layer: Any, x: Any, exact_weights: dict[str, dict[str, np.ndarray]]) -> Any:
        """Apply the layer's float64 reference twin to the symbolic tensor ``x`` (default: the same layer
        rebuilt from its config in float64, with the same weights)."""
        import tensorflow as tf

        conf = layer.get_config()
        conf["dtype"] = "float64"
        weights = [np.asarray(w, dtype=np.float64) for w in layer.get_weights()]
        with tf.keras.utils.custom_object_scope(qkeras_objects()):
            twin = type(layer).from_config(conf)
        x = twin(x)
        if weights:
            twin.set_weights(weights)
        return x

    def firmware_weights(
        self, layer: Any, types: dict[str, FixedType], as_hls4ml: bool = False
    ) -> dict[str, np.ndarray] | None:
        """The constants the firmware holds for this layer (None: it holds none). ``as_hls4ml``: float
        values whose type a configuration gave are cast as hls4ml's C++ casts them."""
        return None

    def rtl_step(self, layer: Any, walk: ProgramWalk) -> Step | None:
        """The layer's instruction in the RTL program (None: it is the identity there).

        Default: no RTL form; :func:`kd_trigger.rtl.program.build_program` names the layer.
        """
        raise UnsupportedInRtl(layer)


class UnsupportedInRtl(ModelError):
    """A layer kind without a bit-exact RTL form (the RTL program names it and the supported kinds)."""

    def __init__(self, layer: Any) -> None:
        super().__init__(f"layer '{layer.name}' ({type(layer).__name__}) has no RTL form")
        self.layer = layer
