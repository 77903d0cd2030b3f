"""Walks over a whole single-chain Keras model, each layer asked of its handler: the plain-data
description, the derived fixed-point types and the constants the firmware holds.

Shared by both firmware flows (hls4ml and RTL); no TensorFlow import (the layer objects are read
duck-typed).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kd_trigger.errors import ModelError
from kd_trigger.fixed import FixedType
from kd_trigger.layers.base import PrecisionWalk
from kd_trigger.layers.lookup import DEFAULT_TABLE_SIZE, check_index
from kd_trigger.layers.registry import find_handler, handler_for
from kd_trigger.layers.spec import Intake, LayerPrecision, LayerSpec


def derive_precision(layers: list[LayerSpec], intake: Intake | None = None) -> dict[str, LayerPrecision]:
    """Types of every layer of a single-chain model, derived from its quantizers (and ``intake``).

    ``layers`` in model order, the ``InputLayer`` first. Raises :class:`ModelError` naming the first
    layer whose types cannot be derived and what would make it derivable. The types an hls4ml
    configuration gave (``intake.configured``) are put in as each layer is walked
    (:func:`apply_configured_types`), so the exact types of the layers after it start from them.
    """
    walk = PrecisionWalk(list(layers), intake or Intake(), find_handler)
    configured = walk.intake.configured
    for index, layer in enumerate(walk.layers):
        walk.index = index
        before = set(walk.out)
        handler_for(layer.class_name, layer.where).precision(layer, walk)
        added = {name: chosen for name, chosen in walk.out.items() if name not in before}
        if configured and any(name in configured for name in added):
            # The configured types are the design: what flows on is the configured result, so the next
            # layer's exact types (and the check that its configured ones hold them) start from it.
            apply_configured_types(added, configured)
            _lookup_inputs(added)
            last = list(added.values())[-1]
            if "result" in last.types:
                walk.current = last.types["result"]
    check_exact_reference(walk.out)
    return walk.out


def _lookup_inputs(added: dict[str, LayerPrecision]) -> None:
    """A lookup-table activation split off a weight layer indexes its table by that layer's configured
    result: its input type follows the configuration (checked again for the index arithmetic)."""
    before: FixedType | None = None
    for name, chosen in added.items():
        if chosen.kind == "lookup" and before is not None and chosen.function is not None:
            check_index(f"'{name}'", chosen.function, before, chosen.table_size or DEFAULT_TABLE_SIZE)
            chosen.input_type = before
        before = chosen.types.get("result", before)


EXACT_REFERENCE_BITS = 53
"""The significand of float64: the exact reference (QKeras run in float64) holds any fixed-point value
of at most this many bits, and no wider."""


def check_exact_reference(precision: dict[str, LayerPrecision]) -> None:
    """ModelError when a derived type is wider than the exact reference can hold.

    The firmware would still compute, but nothing could prove it right: such a model is refused before
    anything is converted or simulated.
    """
    for name, chosen in precision.items():
        for key, t in chosen.types.items():
            if t.width > EXACT_REFERENCE_BITS:
                raise ModelError(
                    f"layer '{name}': its exact {key} type {t.hls()} needs {t.width} bits, more than the "
                    f"{EXACT_REFERENCE_BITS} that the exact reference (QKeras in float64) can hold; narrow the "
                    "quantizers (input, weight or activation bits) of this model"
                )


def describe_layers(model: Any) -> list[LayerSpec]:
    """Plain-data description of a single-chain Keras model, in order, for precision derivation.

    Each layer's handler (:mod:`kd_trigger.layers.registry`) describes it; a class no handler claims is
    described by its name only, and the precision derivation refuses it naming the supported kinds.
    """
    specs: list[LayerSpec] = []
    for layer in model.layers:
        cls = type(layer).__name__
        where = f"'{layer.name}' ({cls})"
        inbound = [n for node in layer.inbound_nodes for n in _inbound_names(node)]
        if len(set(inbound)) > 1:
            raise ModelError(f"layer {where} has several inputs; only single-chain models can be converted")
        handler = find_handler(cls)
        specs.append(handler.describe(layer, where) if handler is not None else LayerSpec(layer.name, cls))
    return specs


def _inbound_names(node: Any) -> list[str]:
    layers = node.inbound_layers
    if not isinstance(layers, list | tuple):
        layers = [layers]
    return [layer.name for layer in layers]


def model_precision(model: Any, intake: Intake | None = None) -> dict[str, LayerPrecision]:
    """Derived precision of every layer of ``model`` (see :mod:`kd_trigger.hls.precision`), with the types
    an hls4ml configuration gave where they hold the derived ones (:func:`apply_configured_types`)."""
    return derive_precision(describe_layers(model), intake)


def emulable(chosen: LayerPrecision, key: str, t: FixedType) -> bool:
    """Whether the reference emulates a configured ``key`` type narrower than exact: the accum (any rounding
    and overflow mode) or result of a Dense or a pointwise Conv1D (:func:`kd_trigger.layers.dense.emulated_dense`:
    hls4ml's latency dense and its pointwise convolution kernels compute the same way, every product
    assigned to accum_t, the bias cast onto it, the products added in input order, each sum cast onto
    accum_t, then cast to the result), the input (cast onto it before the first quantizer), and the result
    of a relu (:func:`kd_trigger.layers.dense.emulated_relu`, any rounding and overflow mode), of a quantizer
    (hls4ml builds it as a relu or linear activation of that result type) and of a batch norm
    (:meth:`kd_trigger.layers.batchnorm.BatchNormHandler.emulated_twin`)."""
    if chosen.kind in ("relu", "linear", "batchnorm"):
        return key == "result"
    if chosen.kind == "lookup":
        return key in ("result", "table")
    return chosen.kind in ("dense", "conv1d") and key in ("accum", "result")


EMULATED = (
    "the accum and result of a Dense or pointwise Conv1D, the input, the result of a relu, a quantizer or a "
    "batch norm, and the table and result of a lookup-table activation"
)
"""What :func:`emulable` accepts, as the refusal of anything else says it."""


def apply_configured_types(
    precision: dict[str, LayerPrecision], configured: dict[str, dict[str, FixedType]]
) -> None:
    """Put an hls4ml configuration's types into ``precision`` (in place).

    A configured type that holds every value of the derived exact one builds the same arithmetic, so the
    float64 reference stays exact for it, and it replaces the derived type: the design built is the
    configured one. A narrower one would round or overflow, and the reference does not emulate the
    configured types' rounding and overflow in general: then ModelError (exit 2), naming the layer, the
    key and both types, rather than a gate verdict on a design other than the one built. The exceptions,
    emulated by the reference, are :data:`EMULATED` (:func:`emulable`); a weight layer whose split-off
    relu is emulated is computed by the emulating reference too. Keys the layer does not have
    (``table``, or ``accum`` of a quantizer) are left to hls4ml's defaults for them. Float weights whose
    type the configuration gives are held as hls4ml's C++ casts them (``weights_cast``).
    """
    for name, types in configured.items():
        chosen = precision.get(name)
        if chosen is None:
            continue
        for key, t in types.items():
            keys = list(chosen.types) if key == "*" else [key] if key in chosen.types else []
            for k in keys:
                derived = chosen.types[k]
                if k in ("weight", "bias", "scale") and chosen.assumed:
                    # float constants: the configured type is the one they are cast onto, whatever its width
                    chosen.weights_cast = True
                    chosen.types[k] = t
                    continue
                # A later quantizer is built as a relu/linear activation of the configured type: any other
                # type than its grid is other arithmetic, wider or not.
                requantized = chosen.note == "quantizer" and bool(chosen.kind) and t != derived
                if (requantized or not t.holds(derived)) and emulable(chosen, k, t):
                    if derived.width > EXACT_REFERENCE_BITS:
                        raise ModelError(
                            f"layer '{name}': its configured {k} {t.hls()} rounds a {derived.hls()} value, wider "
                            f"than the {EXACT_REFERENCE_BITS} bits the reference computes exactly; this design "
                            "cannot be judged"
                        )
                    chosen.emulated = True
                    chosen.narrowed[k] = derived
                    chosen.note += f"; configured {k} {t.hls()} narrower than exact, emulated"
                elif not t.holds(derived):
                    raise ModelError(
                        f"--hls-config: layer '{name}' {k} {t.hls()} is narrower than the exact {derived.hls()}; "
                        f"the reference emulates narrower types only for {EMULATED}, so this design cannot be "
                        f"judged: write auto there, or a type that holds {derived.hls()}"
                    )
                chosen.types[k] = t
    for name, chosen in precision.items():
        # The relu hls4ml splits off a Dense/Conv1D is built by the layer's twin: it emulates the cast.
        split = precision.get(f"{name}_relu")
        if chosen.kind in ("dense", "conv1d") and split is not None and split.emulated:
            chosen.emulated = True


def quantized_weights(
    model: Any, precision: dict[str, LayerPrecision] | None = None
) -> dict[str, dict[str, np.ndarray]]:
    """What the firmware must hold, per layer: QKeras' quantized kernel and bias; for a layer without
    quantizers its float weights rounded onto the assumed types of ``precision``; for a batch norm its
    scale and bias (gamma / sqrt(var + eps), beta - mean x scale) rounded the same way."""
    precision = precision or {}
    out: dict[str, dict[str, np.ndarray]] = {}
    for layer in model.layers:
        handler = find_handler(type(layer).__name__)
        types = precision[layer.name].types if layer.name in precision else {}
        cast = layer.name in precision and precision[layer.name].weights_cast
        arrays = handler.firmware_weights(layer, types, cast) if handler is not None else None
        if arrays is not None:
            out[layer.name] = arrays
    return out
