"""The layer registry: one handler per layer kind, found by Keras/QKeras class or hls4ml IR class (no TensorFlow)."""

from __future__ import annotations

import pytest

from kd_trigger.errors import ModelError
from kd_trigger.fixed import FixedType
from kd_trigger.hls.precision import LayerSpec, derive_precision, quantizer_fixed_type
from kd_trigger.layers.registry import (
    HANDLERS,
    estimate_kind,
    find_handler,
    hls4ml_handler,
    keras_classes,
    rtl_supported,
    weight_classes,
)

IN = quantizer_fixed_type(12, 5, True)


def test_every_class_has_exactly_one_handler_and_every_kind_its_name():
    assert len(keras_classes()) == len(set(keras_classes())) == sum(len(h.keras_classes) for h in HANDLERS)
    assert len({h.kind for h in HANDLERS}) == len(HANDLERS)
    for handler in HANDLERS:
        for cls in handler.keras_classes:
            assert find_handler(cls) is handler
    assert find_handler("LSTM") is None


def test_the_kinds_the_walks_know():
    kinds = {cls: find_handler(cls).kind for cls in keras_classes()}  # type: ignore[union-attr]
    assert kinds == {
        "InputLayer": "input",
        "QActivation": "quantizer",
        "QDense": "dense",
        "Dense": "dense",
        "QConv1D": "conv1d",
        "Conv1D": "conv1d",
        "BatchNormalization": "batchnorm",
        "GlobalAveragePooling1D": "pooling",
        "Activation": "activation",
        "ReLU": "activation",
        "Softmax": "activation",
        "Flatten": "flatten",
        "Reshape": "reshape",
        "Dropout": "dropout",
    }
    assert weight_classes() == {"QDense", "Dense", "QConv1D", "Conv1D"}
    assert (
        rtl_supported()
        == "QActivation, QDense, QConv1D(kernel_size=1), GlobalAveragePooling1D, Flatten, Dropout"
    )


@pytest.mark.parametrize(
    ("hls4ml_class", "kind"),
    [
        ("Dense", "dense"),
        ("VitisDense", "dense"),
        ("VivadoDense", "dense"),
        ("Conv1D", "conv1d"),
        ("PointwiseConv1D", "conv1d"),
        ("VivadoPointwiseConv1D", "conv1d"),
        ("Activation", "activation"),
        ("ParametrizedActivation", "activation"),
        ("HardActivation", "activation"),
        ("Softmax", "activation"),
        ("ReLU", "activation"),
        ("GlobalPooling1D", "pooling"),
        ("Pooling1D", "pooling"),
        ("Input", "input"),
        ("InputLayer", "input"),
        ("Reshape", "other"),
        ("Flatten", "other"),
        ("Transpose", "other"),
        ("BatchNormalization", "batchnormalization"),
        ("VitisLSTM", "lstm"),
    ],
)
def test_hls4ml_classes_map_to_the_estimators_kinds(hls4ml_class: str, kind: str):
    assert estimate_kind(hls4ml_class) == kind


def test_hls4ml_classes_find_the_keras_kinds_handler():
    assert hls4ml_handler("VivadoPointwiseConv1D") is find_handler("QConv1D")
    assert hls4ml_handler("Dense") is find_handler("QDense")
    assert hls4ml_handler("LSTM") is None


def test_an_unknown_layer_kind_is_refused_naming_it_and_the_supported_kinds():
    specs = [
        LayerSpec("x", "InputLayer"),
        LayerSpec("q", "QActivation", activation=IN, activation_class="quantized_bits"),
        LayerSpec("rnn", "LSTM"),
    ]
    with pytest.raises(ModelError) as err:
        derive_precision(specs)
    text = str(err.value)
    assert "layer 'rnn' (LSTM): no precision rule for this layer type; supported: " in text
    for cls in (
        "QActivation",
        "QDense",
        "QConv1D",
        "BatchNormalization",
        "GlobalAveragePooling1D",
        "Flatten",
    ):
        assert cls in text
    assert "\n" not in text


def test_pass_through_layers_keep_the_type_and_the_next_quantizer_is_found_across_them():
    """A mean over 12 is rounded onto the quantizer after a Dropout: pass-through layers are skipped."""
    act = quantizer_fixed_type(8, 3, False)
    w, b = FixedType(8, 2), FixedType(8, 4)
    specs = [
        LayerSpec("x", "InputLayer"),
        LayerSpec("q", "QActivation", activation=IN, activation_class="quantized_bits"),
        LayerSpec("phi", "QConv1D", fan_in=3, kernel=w, bias=b),
        LayerSpec("relu", "QActivation", activation=act, activation_class="quantized_relu"),
        LayerSpec("pool", "GlobalAveragePooling1D", fan_in=12),
        LayerSpec("drop", "Dropout"),
        LayerSpec("pool_q", "QActivation", activation=act, activation_class="quantized_relu"),
    ]
    p = derive_precision(specs)
    assert "drop" not in p
    assert p["pool"].types["result"] == act
    with pytest.raises(ModelError, match="no quantizer follows it"):
        derive_precision([*specs[:5], LayerSpec("drop", "Dropout")])
