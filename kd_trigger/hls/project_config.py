"""An engineer's hls4ml project configuration (``hls --model M.h5 --hls-config hls4ml_config.yml``).

Two spellings are read: the project configuration hls4ml writes into every project (top-level
``Backend``, ``Part``, ``ClockPeriod``, ``IOType``, ``HLSConfig``...) and the dict
``hls4ml.utils.config_from_keras_model`` returns (``Model``, ``LayerType``, ``LayerName``) saved as
YAML. What it says becomes dotted-key overrides of the ``hls`` config section (so the command-line
options, applied after, override single fields) and the configured types per layer
(``hls.configured_types``, see :func:`kd_trigger.layers.model.apply_configured_types`).

Bad input is one line (:class:`kd_trigger.errors.ConfigError`, exit 2) before anything is written.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kd_trigger.config import HlsConfig
from kd_trigger.config.firmware import LayerHlsConfig
from kd_trigger.errors import ConfigError
from kd_trigger.fixed import FixedType
from kd_trigger.layers.keras import activation_name
from kd_trigger.layers.lookup import LOOKUP_SPAN
from kd_trigger.layers.registry import find_handler

log = logging.getLogger(__name__)

BACKENDS = ("Vitis", "Vivado")
"""hls4ml backends this project builds."""

ACCELERATOR_BACKENDS = {"VitisAccelerator": "Vitis", "VivadoAccelerator": "Vivado", "Pynq": "Vivado"}
"""Backends that wrap the core design of another one in a board or kernel shell (``Pynq``: the pre-1.0
name of VivadoAccelerator in hls4ml forks). Their HLSConfig is the core's, which is what is built and
judged here; the shell (AXI interfaces, DMA, host code) is not."""

STRATEGIES = ("Latency", "Resource")
"""hls4ml strategies built (io_parallel), as hls4ml spells them; the config may use any case."""

_INT = re.compile(r"(ap_)?(u?)int<(\d+)>")
_FIXED = re.compile(r"(ap_)?(u?)fixed<(.*)>")


class _Loader(yaml.SafeLoader):
    """Safe YAML that reads hls4ml's own tags (``KerasModel: !keras_model 'path'`` in the project
    configuration hls4ml writes) as the plain values they tag, constructing nothing."""


def _untagged(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_mapping(node)


_Loader.add_multi_constructor("!", lambda loader, suffix, node: _untagged(loader, node))


def parse_precision(text: Any, where: str) -> FixedType | None:
    """An hls4ml precision string as a FixedType; None for ``auto``.

    hls4ml spells types ``ap_fixed<16,6>``, ``fixed<16,6>``, ``fixed<16,6,RND_CONV,SAT>``,
    ``ap_int<8>``, ``uint<8>``; anything else raises ConfigError naming ``where``.
    """
    s = str(text).replace(" ", "")
    if s == "auto":
        return None
    m = _INT.fullmatch(s)
    if m is not None:
        s = f"ap_{m.group(2)}fixed<{m.group(3)},{m.group(3)}>"
    m = _FIXED.fullmatch(s)
    if m is not None:
        params = [
            p if i < 2 or p.startswith("AP_") or p.isdigit() else f"AP_{p}"
            for i, p in enumerate(m.group(3).split(","))
        ]
        s = f"ap_{m.group(2)}fixed<{','.join(params)}>"
    try:
        return FixedType.parse(s)
    except ValueError:
        raise ConfigError(
            f"{where}: unknown precision {text!r}; write ap_fixed<W,I>, ap_ufixed<W,I>, ap_int<W> (optionally "
            "with rounding and saturation modes) or auto"
        ) from None


@dataclass
class ProjectConfig:
    """What an hls4ml configuration says, in this project's terms.

    ``overrides``: dotted keys of the ``hls`` section (backend, part, clock, reuse); ``layer_types``: per
    layer name, the configured types by hls4ml Precision key (``auto`` left out); ``type_types``: the
    same per layer class (hls4ml's ``LayerType``); ``layer_reuse``: per layer name.
    """

    source: str
    overrides: dict[str, object] = field(default_factory=dict)
    layer_types: dict[str, dict[str, str]] = field(default_factory=dict)
    type_types: dict[str, dict[str, str]] = field(default_factory=dict)
    layer_reuse: dict[str, int] = field(default_factory=dict)
    layer_names: list[str] = field(default_factory=list)
    """Every name under LayerName (an ``auto``-only entry names a layer too)."""
    layer_settings: dict[str, dict[str, int]] = field(default_factory=dict)
    """Per layer name, the other integer settings (:data:`SETTINGS`: ParallelizationFactor, TableSize)."""
    type_settings: dict[str, dict[str, int]] = field(default_factory=dict)
    """Per layer class (LayerType), reuse_factor and the :data:`SETTINGS`: they apply to every layer of
    the class that its LayerName entry (or a ``--reuse LAYER=R``) leaves silent."""
    model_default: str | None = None
    """Model Precision (hls4ml's default type)."""
    hls_config: dict[str, Any] = field(default_factory=dict)
    """The HLSConfig section as written: the design hls4ml resolves from it is built for a model with
    float layers (:func:`kd_trigger.hls.default_design.default_design`)."""

    def check_layers(self, names: list[str], aliases: tuple[str, ...] | list[str] = ()) -> None:
        """ConfigError naming the configured layer names that ``names`` (the model's layers) lacks;
        ``aliases``: other names hls4ml gives layers it adds (accepted, not listed)."""
        # A TensorFlow op name ('y/BiasAdd', written by some exporters) is no hls4ml layer: hls4ml ignores
        # it, and so does this check when the layer it belongs to exists.
        known = {*names, *aliases}
        unknown = [n for n in self.layer_names if n not in known and n.split("/")[0] not in known]
        if unknown:
            raise ConfigError(
                f"{self.source}: LayerName names {', '.join(repr(n) for n in unknown)}, not a layer "
                f"of this model (a config for another model?); its layers: {', '.join(names)}"
            )

    def configured_types(self, layers: list[tuple[str, tuple[str, ...]]]) -> dict[str, dict[str, str]]:
        """Per layer name the configured types: its own LayerName entry over its class's LayerType entry.

        ``layers``: (name, class names it answers to: the Keras class and the hls4ml classes)."""
        out: dict[str, dict[str, str]] = {}
        for name, classes in layers:
            types: dict[str, str] = {}
            for cls in classes:
                types.update(self.type_types.get(cls, {}))
            types.update(self.layer_types.get(name, {}))
            if types:
                out[name] = types
        return out

    def hls_overrides(self, layers_base: dict[str, dict[str, object]]) -> dict[str, object]:
        """The dotted-key overrides, with the per-layer reuse factors merged into ``layers_base``."""
        out = dict(self.overrides)
        if self.layer_reuse or self.layer_settings:
            layers = {k: dict(v) for k, v in layers_base.items()}
            for name, reuse in self.layer_reuse.items():
                layers.setdefault(name, {})["reuse_factor"] = reuse
            for name, settings in self.layer_settings.items():
                layers.setdefault(name, {}).update(settings)
            out["hls.layers"] = layers
        return out

    def layer_type_settings(self, classes: tuple[str, ...]) -> dict[str, int]:
        """The LayerType settings of a layer answering to ``classes`` (later classes win)."""
        out: dict[str, int] = {}
        for cls in classes:
            out.update(self.type_settings.get(cls, {}))
        return out


def _precision_map(value: Any, where: str) -> dict[str, str]:
    """A layer's ``Precision``: a string (every type of the layer) or a dict by hls4ml key."""
    items = value.items() if isinstance(value, dict) else [("*", value)]
    out: dict[str, str] = {}
    for key, text in items:
        t = parse_precision(text, f"{where} Precision {key}")
        if t is not None:
            out[str(key)] = t.hls()
    return out


def _strategy(value: Any, where: str) -> str:
    for name in STRATEGIES:
        if str(value).lower() == name.lower():
            return name
    raise ConfigError(f"{where}: Strategy {value!r} is not built here (only {', '.join(STRATEGIES)})")


def _reuse(value: Any, where: str, key: str = "ReuseFactor") -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{where}: {key} {value!r} is not a positive integer")
    return value


SETTINGS = {"ParallelizationFactor": "parallelization_factor", "TableSize": "table_size"}
"""hls4ml's per-layer integer settings besides ReuseFactor, by the ``hls.layers`` field they set."""


def read_project_config(path: Path) -> ProjectConfig:
    """Read and check an hls4ml configuration file (ConfigError, one line, on anything we cannot build)."""
    path = Path(path)
    where = str(path)
    try:
        raw = yaml.load(path.read_text(), Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)
    except OSError as err:
        raise ConfigError(f"--hls-config {where}: cannot read it ({err.strerror})") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"--hls-config {where}: not YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise ConfigError(
            f"--hls-config {where}: not an hls4ml configuration (expected HLSConfig or Model keys)"
        )
    hls = raw.get("HLSConfig", raw)
    if not isinstance(hls, dict) or not isinstance(hls.get("Model"), dict):
        raise ConfigError(
            f"--hls-config {where}: not an hls4ml configuration (no HLSConfig: Model section, as hls4ml writes "
            "it, or Model section, as config_from_keras_model returns it)"
        )
    cfg = ProjectConfig(where, hls_config=hls)
    backend = raw.get("Backend")
    if str(backend) in ACCELERATOR_BACKENDS:
        core = ACCELERATOR_BACKENDS[str(backend)]
        log.info(
            "%s: Backend %s: its core design is built with the %s backend (not the shell)",
            where,
            backend,
            core,
        )
        backend = core
    if backend is not None:
        if str(backend) not in BACKENDS:
            raise ConfigError(f"{where}: Backend {backend!r} is not built here (only {', '.join(BACKENDS)})")
        cfg.overrides["hls.backend"] = str(backend)
    io_type = raw.get("IOType")
    if io_type is not None and io_type != "io_parallel":
        raise ConfigError(f"{where}: IOType {io_type!r} is not built here (only io_parallel)")
    # XilinxPart: the key's name in hls4ml before 0.8 (the project configs of that time).
    part = raw.get("Part", raw.get("XilinxPart"))
    if part is not None:
        cfg.overrides["hls.part"] = str(part)
    if raw.get("ClockPeriod") is not None:
        try:
            cfg.overrides["hls.clock_period_ns"] = float(raw["ClockPeriod"])
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: ClockPeriod {raw['ClockPeriod']!r} is not a number (ns)") from None
    model = hls["Model"]
    if "ReuseFactor" in model:
        cfg.overrides["hls.reuse_factor"] = _reuse(model["ReuseFactor"], f"{where} Model")
    strategy = "Latency"
    if "Strategy" in model:
        strategy = _strategy(model["Strategy"], f"{where} Model")
        if strategy != "Latency":  # the default of the hls section
            cfg.overrides["hls.strategy"] = strategy
    if "Precision" in model:
        # Checked, not applied: a layer the config is silent about gets the derived exact types.
        default = _precision_map(model["Precision"], f"{where} Model")
        # hls4ml spells it {default: fixed<16,6>} (config_from_keras_model) or a bare string.
        cfg.model_default = default.get("default") or default.get("*")
        if default:
            log.info(
                "%s: Model Precision %s: hls4ml's default, taken where a model with float layers says auto "
                "or is silent; other models' silent layers get the exact types",
                where,
                default,
            )
    for section, target in (("LayerType", cfg.type_types), ("LayerName", cfg.layer_types)):
        entries = hls.get(section) or {}
        if not isinstance(entries, dict):
            raise ConfigError(f"{where}: {section} is not a mapping of names to settings")
        for name, settings in entries.items():
            at = f"{where} {section} {name}"
            if section == "LayerName":
                cfg.layer_names.append(str(name))
            if not isinstance(settings, dict):
                raise ConfigError(f"{at}: not a mapping of settings")
            if str(settings.get("ConvImplementation", "")).lower() == "pointwise":
                # hls4ml before 1.0 asked for its pointwise kernel so; since 1.0 it picks it by itself for
                # every kernel-size-1 convolution and refuses the word: the same arithmetic either way.
                log.info("%s: ConvImplementation Pointwise: hls4ml 1.x picks it by itself (removed)", at)
                del settings["ConvImplementation"]
            types = _precision_map(settings["Precision"], at) if "Precision" in settings else {}
            if "table_t" in settings:
                # hls4ml 1.3 takes an activation's table type from this layer-level key only (a Precision
                # table entry is parsed and ignored there): where both are given, this one is built.
                table = parse_precision(settings["table_t"], f"{at} table_t")
                if table is not None:
                    types["table"] = table.hls()
            if types:
                target[str(name)] = types
            if "Strategy" in settings and _strategy(settings["Strategy"], at) != strategy:
                raise ConfigError(
                    f"{at}: Strategy {settings['Strategy']!r} differs from the Model's {strategy} (one strategy "
                    "for the whole model is built here)"
                )
            if "ReuseFactor" in settings:
                reuse = _reuse(settings["ReuseFactor"], at)
                if section == "LayerName":
                    cfg.layer_reuse[str(name)] = reuse
                else:
                    cfg.type_settings.setdefault(str(name), {})["reuse_factor"] = reuse
            for key, attr in SETTINGS.items():
                if key in settings:
                    value = _reuse(settings[key], at, key)
                    by = cfg.layer_settings if section == "LayerName" else cfg.type_settings
                    by.setdefault(str(name), {})[attr] = value
    return cfg


def _first_body_kind(model: Any) -> str | None:
    for layer in model.layers:
        handler = find_handler(type(layer).__name__)
        kind = handler.kind if handler is not None else None
        if kind != "input":
            return kind
    return None


def input_quantized(model: Any) -> bool:
    """Whether the model's first layer after its input is a quantizer (it defines the input grid)."""
    return _first_body_kind(model) == "quantizer"


def float_layers(model: Any) -> list[str]:
    """Layers whose constants have no quantizer: Dense/Conv1D without a kernel quantizer, batch norms."""
    out = []
    for layer in model.layers:
        handler = find_handler(type(layer).__name__)
        if handler is None:
            continue
        unquantized = handler.weighted and getattr(layer, "kernel_quantizer_internal", None) is None
        if unquantized or handler.kind == "batchnorm":
            out.append(layer.name)
    return out


def _table_free(layer: Any) -> bool:
    """``layer`` is an activation hls4ml builds without a lookup table (ReLU, linear, quantized_relu or
    quantized_bits): its TableSize changes nothing (hls4ml's own configs write one on every activation)."""
    handler = find_handler(type(layer).__name__)
    if handler is None:
        return False
    if handler.kind not in ("quantizer", "activation"):
        return False  # a TableSize on a weight or structural layer is a config mistake: refused later
    fn = getattr(layer, "activation", None)
    name = activation_name(fn) if fn is not None else ""
    quantizer = type(fn).__name__ if fn is not None else ""
    return name in ("relu", "linear") or quantizer in ("quantized_relu", "quantized_bits")


def _drop_no_op_settings(model: Any, per_layer: dict[str, dict[str, Any]], project: ProjectConfig) -> None:
    """Remove the configured settings hls4ml itself ignores, so a config as hls4ml writes it converts:
    any setting of the linear activation it splits off a Dense/Conv1D (``<name>_linear``: removed from
    the graph, no arithmetic), and a TableSize on a layer without a lookup table, the relu it splits off a
    Dense/Conv1D (``<name>_relu``) included."""
    own = {layer.name for layer in model.layers}
    for layer in model.layers:
        fn = getattr(layer, "activation", None)
        split = f"{layer.name}_linear"
        linear = fn is not None and activation_name(fn) == "linear" and split not in own
        if linear and split in per_layer and split in project.layer_names:
            log.debug(
                "%s: LayerName %s: hls4ml removes this linear activation (no effect)", project.source, split
            )
            del per_layer[split]
        relu = f"{layer.name}_relu"
        split_relu = fn is not None and activation_name(fn) == "relu" and relu not in own
        for name, table_free in ((layer.name, _table_free(layer)), (relu, split_relu)):
            entry = per_layer.get(name)
            if table_free and entry is not None and "table_size" in project.layer_settings.get(name, {}):
                entry["table_size"] = None


def configure(hls: HlsConfig, model: Any, project: ProjectConfig | None) -> HlsConfig:
    """``hls`` with the configured types of ``project`` for ``model``'s layers (``hls`` itself if None).

    ConfigError when the configuration names layers the model does not have. hls4ml's own layer names
    count: a Dense's activation split off as ``<name>_<activation>`` (``_linear`` included).
    """
    if project is None:
        return hls
    names: list[str] = []
    aliases: list[str] = []
    layers: list[tuple[str, tuple[str, ...]]] = []
    for layer in model.layers:
        cls = type(layer).__name__
        handler = find_handler(cls)
        classes = (cls, *(handler.hls4ml_classes if handler is not None else ()))
        names.append(layer.name)
        layers.append((layer.name, classes))
        if handler is not None and handler.weighted:
            # the scale layer hls4ml inserts after a quantizer with alpha (config_from_keras_model names it)
            aliases.append(f"{layer.name}_alpha")
        if hasattr(layer, "activation") and cls not in ("Activation", "QActivation"):
            split = f"{layer.name}_{activation_name(layer.activation)}"
            names.append(split)
            layers.append((split, ("Activation",)))
    project.check_layers(names, aliases)
    configured = project.configured_types(layers)
    update: dict[str, Any] = {"configured_types": configured}
    # LayerType settings: every layer of the class, where its LayerName entry (or --reuse LAYER=R) is silent.
    per_layer = {k: v.model_dump() for k, v in hls.layers.items()}
    _drop_no_op_settings(model, per_layer, project)
    for layer in model.layers:
        cls = type(layer).__name__
        handler = find_handler(cls)
        classes = (*(handler.hls4ml_classes if handler is not None else ()), cls)
        for attr, value in project.layer_type_settings(classes).items():
            lookup = cls in ("Activation", "Softmax") and activation_name(
                getattr(layer, "activation", None)
            ) in (LOOKUP_SPAN)
            if attr == "table_size" and layer is not model.layers[-1] and not lookup:
                continue  # a final softmax/sigmoid and the lookup-table activations are built from tables
            per_particle = handler is not None and (
                handler.kind == "conv1d" or (handler.kind == "dense" and len(layer.input_shape) == 3)
            )
            if attr == "parallelization_factor" and not per_particle:
                continue
            entry = per_layer.setdefault(layer.name, {})
            if entry.get(attr) is None:
                entry[attr] = value
    if per_layer != {k: v.model_dump() for k, v in hls.layers.items()}:
        update["layers"] = {k: LayerHlsConfig.model_validate(v) for k, v in per_layer.items()}
    return hls.model_copy(update=update)


__all__ = [
    "ACCELERATOR_BACKENDS",
    "BACKENDS",
    "ProjectConfig",
    "SETTINGS",
    "STRATEGIES",
    "configure",
    "float_layers",
    "input_quantized",
    "parse_precision",
    "read_project_config",
]
