"""The one plain-data description of a layer, and what precision derivation makes of it.

:class:`LayerSpec` is what every walk over a model reads about one Keras layer (no TensorFlow in it):
the precision derivation works on a list of them, the RTL program and the reference twin are built by
the same handlers (:mod:`kd_trigger.layers.registry`) that make them. :class:`LayerPrecision` is the
result of the derivation for one layer; :class:`Intake` what a user states about a model saved without
some of its quantizers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kd_trigger.fixed import FixedType


@dataclass(frozen=True)
class LayerSpec:
    """What precision derivation needs to know about one Keras layer (plain data).

    ``fan_in``: terms summed per output (Dense: input width; Conv1D: kernel_size x channels; average
    pooling: number of steps). ``kernel``/``bias``/``activation`` hold the types of the layer's quantizers
    (``activation_class`` the quantizer's QKeras class name). ``activation_kind`` is the function of a
    plain Keras activation layer (relu, linear, softmax, sigmoid); ``inner_activation`` the one a Dense
    or Conv1D applies itself.
    """

    name: str
    class_name: str
    fan_in: int = 0
    kernel: FixedType | None = None
    bias: FixedType | None = None
    activation: FixedType | None = None
    activation_class: str | None = None
    use_bias: bool = True
    inner_activation: str = "linear"
    activation_kind: str | None = None

    @property
    def where(self) -> str:
        """``'name' (Class)``: how error messages name the layer."""
        return f"'{self.name}' ({self.class_name})"


@dataclass(frozen=True)
class Intake:
    """What a user states about a model saved without some of its firmware types.

    ``input_type``: the firmware input of a model without an input quantizer (``--input-precision``);
    ``default_type``: weights and biases of layers without quantizers (``--default-precision``);
    ``layer_types``: the same, per layer name (``hls.layers.<name>.precision``). Every type taken from
    here is reported as assumed.
    """

    input_type: FixedType | None = None
    default_type: FixedType | None = None
    layer_types: dict[str, FixedType] = field(default_factory=dict)
    configured: dict[str, dict[str, FixedType]] = field(default_factory=dict)
    """Types an hls4ml configuration gave, per layer name and Precision key (``hls --hls-config``)."""

    @classmethod
    def from_hls(cls, hls: Any) -> Intake:
        """The intake settings of an :class:`kd_trigger.config.HlsConfig`."""
        return cls(
            input_type=FixedType.parse(hls.input_precision) if hls.input_precision else None,
            default_type=FixedType.parse(hls.default_precision) if hls.default_precision else None,
            layer_types={
                name: FixedType.parse(spec.precision) for name, spec in hls.layers.items() if spec.precision
            },
            configured={
                name: {key: FixedType.parse(text) for key, text in types.items()}
                for name, types in getattr(hls, "configured_types", {}).items()
            },
        )

    def assumed_type(self, layer: str) -> FixedType | None:
        """The stated type of ``layer``'s weights and biases: its own, else the model-wide default."""
        return self.layer_types.get(layer) or self.default_type


@dataclass
class LayerPrecision:
    """The chosen types of one firmware layer, keyed as hls4ml's ``Precision`` config keys them.

    ``assumed``: some type came from the intake settings, not from a quantizer. ``final_activation``:
    the model's last layer is a softmax/sigmoid built from hls4ml's lookup tables (not bit-exact by
    design; exactness is judged on the layer before it).
    """

    types: dict[str, FixedType] = field(default_factory=dict)
    note: str = ""
    assumed: bool = False
    final_activation: str | None = None
    kind: str = ""
    """The registry's name of the layer kind (set by the weight layers: ``dense``, ``conv1d``)."""
    emulated: bool = False
    """A weight layer whose configured accum/result types are narrower than exact (``--hls-config``):
    the reference computes them as hls4ml does (:func:`kd_trigger.layers.dense.emulated_dense`)."""
    weights_cast: bool = False
    """Float weights whose type an hls4ml configuration gave: the firmware holds them as hls4ml writes
    them (a decimal literal cast by the C++ type's own rounding, truncation by default), not rounded
    half to even onto an assumed type (:func:`kd_trigger.layers.dense.rounded`)."""

    def to_dict(self) -> dict[str, str]:
        """The types as hls4ml spells them, and the note."""
        out: dict[str, str] = {k: v.hls() for k, v in self.types.items()}
        if self.note:
            out["note"] = self.note
        return out
