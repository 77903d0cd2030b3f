"""The one plain-data description of a layer, and what precision derivation makes of it.

:class:`LayerSpec` is what every walk over a model reads about one layer (no TensorFlow in it): the
precision derivation works on a list of them, the RTL program and the reference twin are built by the
same handlers (:mod:`kd_trigger.layers.registry`) that make them, and the resource estimator
(:mod:`kd_trigger.fpga.estimate`) costs a list of them read from the converted hls4ml graph.
:class:`LayerPrecision` is the result of the derivation for one layer; :class:`Intake` what a user
states about a model saved without some of its quantizers.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from kd_trigger.fixed import FixedType

_FIRMWARE = {"firmware": True}
"""Field metadata: the field describes the layer as the firmware builds it (the estimator's figures)."""


@dataclass(frozen=True)
class LayerSpec:
    """One layer as plain data: what the walks over a Keras model and the resource estimator read.

    Every walk fills the fields it knows and reads the ones it needs; the rest keep their defaults.
    ``activation_kind`` is shared: the function of an activation layer (relu, linear, softmax, sigmoid,
    ...), from the Keras layer or from the firmware graph.

    From the Keras layer (:meth:`kd_trigger.layers.base.LayerHandler.describe`; precision derivation):
    ``class_name`` the Keras/QKeras class; ``fan_in`` the terms summed per output (Dense: input width;
    Conv1D: kernel_size x channels; average pooling: number of steps); ``kernel``/``bias``/``activation``
    the types of the layer's quantizers (``activation_class`` the quantizer's QKeras class name);
    ``use_bias`` the Keras setting; ``inner_activation`` the function a Dense or Conv1D applies itself.

    From the firmware graph (hls4ml IR, :func:`kd_trigger.fpga.estimate.layers_from_hls_model`) or a
    calibration design (:meth:`from_dict`); the resource estimator's figures (:mod:`kd_trigger.fpga.
    estimate.model` says how each is costed). ``kind`` is the estimator's kind (the handler's
    ``estimate_kind``: ``dense``, ``conv1d``, ``activation``, ``pooling``, ``input``, ``other``, ...;
    ``""`` on a spec described from a Keras layer only, which the estimator reports as not modelled).
    For ``dense``: ``n_in`` inputs, ``n_out`` outputs, ``n_nonzero_mult`` non-zero weights.
    For ``conv1d`` (kernel over positions): ``n_in`` = fan-in per output (channels x kernel width),
    ``n_out`` = filters, ``n_nonzero_mult`` non-zero weights of the kernel, ``n_positions`` output
    positions, of which ``n_positions / n_partitions`` are computed in parallel.
    For ``activation``: ``n_out`` elements (``activation_kind`` names the function; None counts as relu).
    For ``pooling``: ``n_out`` channels reduced over ``n_positions`` (``pool_op`` average or max).
    ``input``/``other`` layers cost nothing. ``*_bits``: widths of the firmware types; ``has_bias``: the
    firmware adds a non-zero bias; ``input_int_bits``/``output_int_bits``/``output_rounding``/
    ``output_saturation``: an activation's types (rounding and saturation cost LUTs).

    Weight statistics (known when the weights are: :func:`kd_trigger.fpga.estimate.weight_statistics`
    computes them): ``n_pow2_mult`` non-zero weights with one CSD digit, ``n_two_digit_mult`` with two,
    ``csd_adders`` the total (digits - 1), ``hard_mult_widths`` ``((constant_bits, count), ...)`` of the
    weights with three or more digits (after sharing identical weights on one input),
    ``weight_range_bits`` the bits of the largest |weight| code plus a sign bit. ``None`` = unknown: the
    statistics of uniformly random ``weight_bits``-bit codes are used.
    ``reuse_factor``: this layer's reuse factor (None: the model-wide value).
    """

    name: str
    class_name: str = ""
    # the Keras layer: precision derivation, reference twin, RTL program
    fan_in: int = 0
    kernel: FixedType | None = None
    bias: FixedType | None = None
    activation: FixedType | None = None
    activation_class: str | None = None
    use_bias: bool = True
    inner_activation: str = "linear"
    # shared
    activation_kind: str | None = None
    # the firmware layer: the resource estimator
    kind: str = field(default="", metadata=_FIRMWARE)
    n_in: int = field(default=0, metadata=_FIRMWARE)
    n_out: int = field(default=0, metadata=_FIRMWARE)
    n_nonzero_mult: int = field(default=0, metadata=_FIRMWARE)
    weight_bits: int = field(default=0, metadata=_FIRMWARE)
    input_bits: int = field(default=16, metadata=_FIRMWARE)
    accum_bits: int = field(default=16, metadata=_FIRMWARE)
    output_bits: int = field(default=16, metadata=_FIRMWARE)
    n_positions: int = field(default=1, metadata=_FIRMWARE)
    n_partitions: int = field(default=1, metadata=_FIRMWARE)
    n_pow2_mult: int = field(default=0, metadata=_FIRMWARE)
    csd_adders: int | None = field(default=None, metadata=_FIRMWARE)
    has_bias: bool = field(default=True, metadata=_FIRMWARE)
    reuse_factor: int | None = field(default=None, metadata=_FIRMWARE)
    input_int_bits: int | None = field(default=None, metadata=_FIRMWARE)
    output_int_bits: int | None = field(default=None, metadata=_FIRMWARE)
    output_rounding: bool = field(default=False, metadata=_FIRMWARE)
    output_saturation: bool = field(default=False, metadata=_FIRMWARE)
    n_two_digit_mult: int | None = field(default=None, metadata=_FIRMWARE)
    hard_mult_widths: tuple[tuple[int, int], ...] | None = field(default=None, metadata=_FIRMWARE)
    weight_range_bits: int | None = field(default=None, metadata=_FIRMWARE)
    pool_op: str = field(default="average", metadata=_FIRMWARE)

    def __post_init__(self) -> None:
        if isinstance(self.activation, str):  # the estimator's old spelling of the function
            raise TypeError(
                f"layer {self.name!r}: activation is the type of the activation quantizer (FixedType); "
                f"the function ({self.activation!r}) is activation_kind"
            )

    @property
    def where(self) -> str:
        """``'name' (Class)``: how error messages name the layer."""
        return f"'{self.name}' ({self.class_name})"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LayerSpec:
        """A firmware layer from plain data (``tests/fixtures/calibration/designs.json``): ``name``, the
        firmware fields, and ``activation`` (the function: ``activation_kind`` here); unknown fields are
        an error."""
        kwargs = dict(data)
        if "activation" in kwargs:
            kwargs["activation_kind"] = kwargs.pop("activation")
        if kwargs.get("hard_mult_widths") is not None:
            kwargs["hard_mult_widths"] = tuple((int(w), int(c)) for w, c in kwargs["hard_mult_widths"])
        unknown = set(kwargs) - FIRMWARE_KEYS
        if unknown:
            raise ValueError(f"layer {kwargs.get('name')!r}: unknown LayerSpec fields {sorted(unknown)}")
        return cls(**kwargs)


FIRMWARE_KEYS = frozenset(
    {"name", "activation_kind", *(f.name for f in fields(LayerSpec) if f.metadata.get("firmware"))}
)
"""The fields a firmware layer (designs.json) may set."""


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
    table_sizes: dict[str, int] = field(default_factory=dict)
    """TableSize per layer name (``hls.layers.<name>.table_size``): a lookup-table activation's entries."""

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
            table_sizes={name: spec.table_size for name, spec in hls.layers.items() if spec.table_size},
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
    narrowed: dict[str, FixedType | None] = field(default_factory=dict)
    """The configured types of an emulated layer that are narrower than exact: key -> the exact type
    they replaced (None: no fixed-point type is exact, a mean over a non-power-of-two count)."""
    function: str | None = None
    """A lookup-table activation (``kind`` ``lookup``): its function (tanh, sigmoid, softplus, softsign)."""
    table_size: int | None = None
    """A lookup-table activation's table entries (hls4ml's TableSize)."""
    input_type: FixedType | None = None
    """A lookup-table activation's input type: its table index is computed from it."""

    def to_dict(self) -> dict[str, str]:
        """The types as hls4ml spells them, and the note."""
        out: dict[str, str] = {k: v.hls() for k, v in self.types.items()}
        if self.note:
            out["note"] = self.note
        return out
