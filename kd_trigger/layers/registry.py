"""Which handler computes which layer: lookup by Keras/QKeras class name or by hls4ml IR class name.

Adding a layer kind is one :class:`~kd_trigger.layers.base.LayerHandler` subclass in its own module,
listed in :data:`HANDLERS`, with its own test; every walk over a model (precision intake, the float64
reference twin, the RTL program, the resource estimate) finds it here.
"""

from __future__ import annotations

from kd_trigger.errors import ModelError
from kd_trigger.layers.activation import ActivationHandler, QuantizerHandler
from kd_trigger.layers.base import LayerHandler
from kd_trigger.layers.batchnorm import BatchNormHandler
from kd_trigger.layers.dense import DenseHandler, PointwiseConv1DHandler
from kd_trigger.layers.pooling import AveragePoolingHandler
from kd_trigger.layers.structure import DropoutHandler, FlattenHandler, InputHandler, ReshapeHandler

HANDLERS: tuple[LayerHandler, ...] = (
    InputHandler(),
    QuantizerHandler(),
    DenseHandler(),
    PointwiseConv1DHandler(),
    BatchNormHandler(),
    AveragePoolingHandler(),
    ActivationHandler(),
    FlattenHandler(),
    ReshapeHandler(),
    DropoutHandler(),
)

_BY_KERAS = {cls: handler for handler in HANDLERS for cls in handler.keras_classes}
_BY_HLS4ML = {cls: handler for handler in HANDLERS for cls in handler.hls4ml_classes}
if len(_BY_KERAS) != sum(len(h.keras_classes) for h in HANDLERS):  # pragma: no cover - a programming error
    raise AssertionError("a Keras class is claimed by two layer handlers")

DEFAULT = LayerHandler()
"""What the reference twin does with a class no handler claims: the layer rebuilt in float64."""

HLS4ML_PREFIXES = ("Vitis", "Vivado")
"""hls4ml's backend layer classes are prefixed (VitisDense, VivadoPointwiseConv1D, ...)."""


def find_handler(class_name: str) -> LayerHandler | None:
    """The handler of a Keras/QKeras layer class name, None for a class no handler claims."""
    return _BY_KERAS.get(class_name)


def keras_classes() -> list[str]:
    """Every Keras/QKeras class some handler claims, in handler order."""
    return list(_BY_KERAS)


def supported_keras() -> str:
    """The supported Keras/QKeras classes, for an error message."""
    return ", ".join(keras_classes())


def handler_for(class_name: str, where: str) -> LayerHandler:
    """The handler of a Keras/QKeras class name; ModelError naming the layer ``where`` and the supported kinds."""
    handler = find_handler(class_name)
    if handler is None:
        raise ModelError(
            f"layer {where}: no precision rule for this layer type; supported: {supported_keras()} "
            "(Activation: relu, linear; softmax and sigmoid last)"
        )
    return handler


def weight_classes() -> frozenset[str]:
    """The Keras/QKeras classes with weights that the firmware flows compute (a model needs one)."""
    return frozenset(cls for h in HANDLERS if h.weighted for cls in h.keras_classes)


def rtl_supported() -> str:
    """The layers with an RTL form, for an error message."""
    return ", ".join(h.rtl_note for h in HANDLERS if h.rtl_note)


def hls4ml_handler(class_name: str) -> LayerHandler | None:
    """The handler of an hls4ml IR layer class (backend prefix allowed), None for one no handler claims."""
    for prefix in HLS4ML_PREFIXES:
        if class_name.startswith(prefix):
            class_name = class_name[len(prefix) :]
    return _BY_HLS4ML.get(class_name)


def estimate_kind(class_name: str) -> str:
    """The resource estimator's kind of an hls4ml IR layer class; its lowercased name if no handler claims it."""
    handler = hls4ml_handler(class_name)
    if handler is not None:
        return handler.estimate_kind
    for prefix in HLS4ML_PREFIXES:
        class_name = class_name.removeprefix(prefix)
    return class_name.lower()
