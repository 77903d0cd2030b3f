"""Weight layers: Dense/QDense and pointwise Conv1D/QConv1D (a dense layer applied per particle)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from kd_trigger.errors import ModelError
from kd_trigger.fixed import FixedType, accumulator_type, product_type
from kd_trigger.layers.activation import activation_precision
from kd_trigger.layers.apcast import ap_cast, ap_cast_np
from kd_trigger.layers.base import LayerHandler, PrecisionWalk, ProgramWalk, UnsupportedInRtl, out_shape
from kd_trigger.layers.keras import activation_name, kernel_type, qkeras_objects, quantizer_type
from kd_trigger.layers.spec import LayerPrecision, LayerSpec
from kd_trigger.layers.step import Step, derived_type, grid_codes


def rounded(values: Any, t: FixedType, as_hls4ml: bool = False) -> np.ndarray:
    """Float weights rounded onto an assumed type, half to even and saturated (the firmware holds these).

    ``as_hls4ml``: as hls4ml's writer and the C++ make them of a type a configuration gave: hls4ml prints
    each float with as many decimals as the type has fractional bits (Python's correctly rounded
    ``format``), and the compiler casts that literal to the type with the type's own rounding and
    overflow modes (``ap_fixed<16,6>``: truncation towards minus infinity, wrap-around).
    """
    values = np.asarray(values, dtype=np.float64)
    if not as_hls4ml:
        return t.quantize(values)
    digits = max(0, t.fractional)
    printed = np.array([float(f"{float(v):.{digits}f}") for v in values.ravel()], dtype=np.float64)
    return ap_cast_np(printed, t).reshape(values.shape)


class DenseHandler(LayerHandler):
    """Dense/QDense: a sum of ``fan_in`` products plus a bias, exact in the derived accumulator."""

    kind = "dense"
    keras_classes = ("QDense", "Dense")
    hls4ml_classes: ClassVar[tuple[str, ...]] = ("Dense",)
    estimate_kind = "dense"
    rtl_classes: ClassVar[tuple[str, ...]] = ("QDense",)
    rtl_note = "QDense"
    weighted = True

    def fan_in(self, layer: Any, where: str) -> int:
        """Terms summed per output."""
        return int(layer.input_shape[-1])

    def describe(self, layer: Any, where: str) -> LayerSpec:
        kq = getattr(layer, "kernel_quantizer_internal", None)
        bq = getattr(layer, "bias_quantizer_internal", None)
        kernel = kernel_type(layer, kq, where) if kq is not None else None
        bias = quantizer_type(bq, where)[0] if bq is not None else None
        return LayerSpec(
            layer.name,
            type(layer).__name__,
            fan_in=self.fan_in(layer, where),
            kernel=kernel,
            bias=bias,
            use_bias=bool(layer.use_bias),
            inner_activation=activation_name(layer.activation),
        )

    def precision(self, spec: LayerSpec, walk: PrecisionWalk) -> None:
        """Types of the layer (and of the activation hls4ml splits off it)."""
        where, out = spec.where, walk.out
        assumed = walk.intake.assumed_type(spec.name)
        hint = (
            "quantize it (kernel_quantizer=quantized_bits(bits, integer, alpha=1)), or give the type of its weights "
            "with --default-precision 'ap_fixed<W,I>' (config: hls.default_precision or hls.layers.<name>.precision)"
        )
        if spec.kernel is None and assumed is None:
            raise ModelError(
                f"layer {where} has no kernel quantizer, so its firmware weights have no derivable type; {hint}"
            )
        weight = spec.kernel.exact() if spec.kernel is not None else assumed.exact()  # type: ignore[union-attr]
        was_assumed = spec.kernel is None
        bias: FixedType | None = None
        if spec.use_bias:
            if spec.bias is None and assumed is None:
                raise ModelError(f"layer {where} has a bias without bias_quantizer; {hint}")
            bias = spec.bias.exact() if spec.bias is not None else assumed.exact()  # type: ignore[union-attr]
            was_assumed = was_assumed or spec.bias is None
        accum = accumulator_type(product_type(walk.type_in, weight), spec.fan_in, bias)
        types = {"weight": weight, "accum": accum, "result": accum}
        if bias is not None:
            types["bias"] = bias
        note = f"sum of {spec.fan_in} products + bias, exact" + ("; weights assumed" if was_assumed else "")
        out[spec.name] = LayerPrecision(types, note, assumed=was_assumed, kind=self.kind)
        walk.current = accum
        inner = spec.inner_activation or "linear"
        if inner == "linear":
            return
        name = f"{spec.name}_{inner}"
        chosen = activation_precision(
            name,
            f"'{name}' (the activation hls4ml splits off {where})",
            inner,
            walk,
            "use a separate QActivation(quantized_relu(bits, integer)) so its type is defined",
        )
        if chosen is not None:
            out[name] = chosen
            if "result" in chosen.types:
                walk.current = chosen.types["result"]

    def twin(self, layer: Any, x: Any, exact_weights: dict[str, dict[str, np.ndarray]]) -> Any:
        """The layer in float64; its own activation split into ``<name>_<activation>``, as hls4ml does."""
        return self.split_twin(layer, x, exact_weights)

    def split_twin(
        self,
        layer: Any,
        x: Any,
        exact_weights: dict[str, dict[str, np.ndarray]],
        activation: Callable[[Any], Any] | None = None,
    ) -> Any:
        """:meth:`twin`, with ``activation`` (a symbolic tensor -> the split-off activation's output)
        instead of the float Keras activation (a lookup-table function emulated as hls4ml builds it)."""
        import tensorflow as tf

        conf = layer.get_config()
        conf["dtype"] = "float64"
        inner = conf.get("activation")
        split = isinstance(inner, str) and inner != "linear"
        if split:
            conf["activation"] = "linear"
        weights = [np.asarray(w, dtype=np.float64) for w in layer.get_weights()]
        if layer.name in exact_weights:
            # The constants the firmware holds (quantized once, by QKeras' own quantizer), with the
            # twin's weight quantizers off: re-quantizing on-grid values would change nothing, and
            # QKeras' power-of-two scales cannot run in float64 at all.
            arrays = exact_weights[layer.name]
            weights = [arrays["weight"], *([arrays["bias"]] if "bias" in arrays else [])]
            for key in ("kernel_quantizer", "bias_quantizer", "kernel_constraint", "bias_constraint"):
                conf.pop(key, None)
        with tf.keras.utils.custom_object_scope(qkeras_objects()):
            twin = type(layer).from_config(conf)
        x = twin(x)
        if weights:
            twin.set_weights(weights)
        if split and activation is not None:
            return activation(x)
        if split:
            x = tf.keras.layers.Activation(inner, name=f"{layer.name}_{inner}", dtype="float64")(x)
        return x

    def firmware_weights(
        self, layer: Any, types: dict[str, FixedType], as_hls4ml: bool = False
    ) -> dict[str, np.ndarray] | None:
        """QKeras' quantized kernel and bias; without quantizers the float ones rounded onto the assumed
        types (``as_hls4ml``: cast as hls4ml's C++ casts them, see :func:`rounded`)."""
        kq = getattr(layer, "kernel_quantizer_internal", None)
        if kq is not None:
            arrays = {"weight": np.asarray(kq(layer.kernel).numpy(), dtype=np.float64)}
        elif "weight" in types:
            arrays = {"weight": rounded(layer.kernel.numpy(), types["weight"], as_hls4ml)}
        else:
            return None
        bq = getattr(layer, "bias_quantizer_internal", None)
        if getattr(layer, "use_bias", False) and layer.bias is not None:
            if bq is not None:
                arrays["bias"] = np.asarray(bq(layer.bias).numpy(), dtype=np.float64)
            elif "bias" in types:
                arrays["bias"] = rounded(layer.bias.numpy(), types["bias"], as_hls4ml)
            else:
                arrays["bias"] = np.asarray(layer.bias.numpy(), dtype=np.float64)
        return arrays

    def check_rtl(self, layer: Any, where: str) -> None:
        """Refuse what the RTL's dense step cannot compute (a layer option beyond a plain matrix)."""

    def rtl_step(self, layer: Any, walk: ProgramWalk) -> Step | None:
        cls = type(layer).__name__
        if cls not in self.rtl_classes:
            raise UnsupportedInRtl(layer)
        where = f"'{layer.name}' ({cls})"
        self.check_rtl(layer, where)
        act = getattr(layer.activation, "__name__", str(layer.activation))
        if act not in ("linear", "None"):
            raise ModelError(
                f"layer {where} has a built-in activation {act!r}; use a separate QActivation(quantized_relu(...))"
            )
        prec = walk.precision[layer.name]
        arrays = walk.weights.get(layer.name)
        if arrays is None:
            raise ModelError(
                f"layer {where} has no kernel quantizer, so its weights have no fixed-point form"
            )
        kernel = np.asarray(arrays["weight"], dtype=np.float64)
        kernel = kernel.reshape(-1, kernel.shape[-1])  # Conv1D (1, C, U) -> (C, U)
        w_type = derived_type(prec, "weight", where)
        accum = derived_type(prec, "accum", where)
        grid_codes(kernel, w_type, f"layer {where} kernel")
        bias = None
        b_type = None
        if "bias" in arrays:
            b_type = derived_type(prec, "bias", where)
            bias = np.asarray(arrays["bias"], dtype=np.float64).ravel()
            grid_codes(bias, b_type, f"layer {where} bias")
        in_type = walk.current
        if accum.fractional < in_type.fractional + w_type.fractional or (
            b_type is not None and accum.fractional < b_type.fractional
        ):
            # hls4ml would truncate the products here; the derived types never do, so refuse a hand-made one.
            raise ModelError(
                f"layer {where}: accumulator {accum.hls()} has fewer fractional bits than its products"
            )
        row_wise = len(layer.input_shape) == 3  # (batch, particles, features): the same matrix per particle
        walk.current = accum
        return Step(
            layer.name, cls, "dense", accum, out_shape(layer), kernel, bias, w_type, b_type, row_wise=row_wise
        )


class PointwiseConv1DHandler(DenseHandler):
    """Conv1D/QConv1D with kernel_size=1: the same dense layer applied to every particle."""

    kind = "conv1d"
    keras_classes = ("QConv1D", "Conv1D")
    hls4ml_classes = ("Conv1D", "PointwiseConv1D")
    estimate_kind = "conv1d"
    rtl_classes = ("QConv1D",)
    rtl_note = "QConv1D(kernel_size=1)"

    def fan_in(self, layer: Any, where: str) -> int:
        if int(layer.kernel_size[0]) != 1:
            raise ModelError(f"layer {where}: only kernel_size=1 (per-particle) Conv1D is supported")
        return int(layer.input_shape[-1]) * int(layer.kernel_size[0])

    def check_rtl(self, layer: Any, where: str) -> None:
        if int(layer.kernel_size[0]) != 1 or int(layer.strides[0]) != 1 or int(layer.dilation_rate[0]) != 1:
            raise ModelError(f"layer {where}: only pointwise QConv1D (kernel_size=1, stride 1) is supported")
        if getattr(layer, "data_format", "channels_last") != "channels_last":
            raise ModelError(f"layer {where}: only channels_last is supported")


def emulated_relu(
    name: str, x: Any, result: FixedType, relu: bool = True, input_type: FixedType | None = None
) -> Any:
    """A relu whose configured result type is narrower than exact, as hls4ml's relu computes it
    (nnet_activation.h: ``res = data > 0 ? data : 0``, the assignment cast by ``res_T``'s modes);
    ``relu=False``: hls4ml's linear activation (``res = data``, cast the same way). ``input_type``: its
    input is first cast onto that type (the firmware's configured input type, before the input quantizer)."""
    import tensorflow as tf

    def cast(v: Any) -> Any:
        v = tf.cast(v, tf.float64)
        if input_type is not None:
            v = ap_cast(v, input_type)
        return ap_cast(tf.nn.relu(v) if relu else v, result)

    return tf.keras.layers.Lambda(cast, name=name, dtype="float64")(x)


def emulated_dense(
    layer: Any,
    x: Any,
    arrays: dict[str, np.ndarray],
    types: dict[str, FixedType],
    activation_result: FixedType | None = None,
    activation: Callable[[Any], Any] | None = None,
) -> Any:
    """The reference of a Dense built with configured accum/result types narrower than exact, as
    hls4ml's latency dense computes it (nnet_dense_latency.h): every product is assigned to ``accum_t``
    (by its rounding and overflow modes), the bias cast to ``accum_t``, then each input's product added in
    input order and the sum assigned to ``accum_t`` (wrapping: the order does not matter; saturating: it
    does, so the sum is built in that order), then cast to the result type. Float64 holds every step
    exactly while the products need at most 53 bits (the derived exact types guarantee it).
    ``activation_result``: the configured result type of the relu hls4ml splits off the layer;
    ``activation``: the emulated lookup-table activation it splits off (see :meth:`DenseHandler.split_twin`)."""
    import tensorflow as tf

    kernel = np.asarray(arrays["weight"], dtype=np.float64)
    kernel = tf.constant(kernel.reshape(-1, kernel.shape[-1]))
    bias = tf.constant(np.asarray(arrays["bias"], dtype=np.float64).ravel()) if "bias" in arrays else None
    accum, result = types["accum"], types["result"]

    def compute(v: Any) -> Any:
        products = ap_cast(tf.cast(v, tf.float64)[..., :, None] * kernel, accum)
        if accum.saturation == "WRAP":  # wrapping is modular: the order of the additions does not matter
            acc = tf.reduce_sum(products, axis=-2)
            if bias is not None:
                acc = acc + ap_cast(bias, accum)
            acc = ap_cast(acc, accum, rounding=False)
        else:  # saturation is not associative: the bias first, then the inputs in order, as the kernels add
            acc = tf.zeros_like(products[..., 0, :])
            if bias is not None:
                acc = acc + ap_cast(bias, accum)
            for i in range(products.shape[-2]):
                acc = ap_cast(acc + products[..., i, :], accum, rounding=False)
        return ap_cast(acc, result)

    out = tf.keras.layers.Lambda(compute, name=layer.name, dtype="float64")(x)
    inner = activation_name(layer.activation)
    if inner == "relu" and activation_result is not None:
        return emulated_relu(f"{layer.name}_{inner}", out, activation_result)
    if inner != "linear" and activation is not None:
        return activation(out)
    if inner != "linear":
        out = tf.keras.layers.Activation(inner, name=f"{layer.name}_{inner}", dtype="float64")(out)
    return out
