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
from kd_trigger.errors import ConfigError
from kd_trigger.fixed import FixedType
from kd_trigger.layers.keras import activation_name
from kd_trigger.layers.registry import find_handler

log = logging.getLogger(__name__)

BACKENDS = ("Vitis", "Vivado")
"""hls4ml backends this project builds."""

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
    model_default: str | None = None
    """Model Precision (hls4ml's default type): what hls4ml gives the constants of float layers and an
    input without a quantizer where the config says ``auto``; here too (``hls --model`` options win)."""

    def check_layers(self, names: list[str]) -> None:
        """ConfigError naming the configured layer names that ``names`` (the model's layers) lacks."""
        unknown = [n for n in self.layer_names if n not in names]
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
        if self.layer_reuse:
            layers = {k: dict(v) for k, v in layers_base.items()}
            for name, reuse in self.layer_reuse.items():
                layers.setdefault(name, {})["reuse_factor"] = reuse
            out["hls.layers"] = layers
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


def _strategy(value: Any, where: str) -> None:
    if str(value).lower() != "latency":
        raise ConfigError(f"{where}: Strategy {value!r} is not built here (only Latency)")


def _reuse(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{where}: ReuseFactor {value!r} is not a positive integer")
    return value


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
    cfg = ProjectConfig(where)
    backend = raw.get("Backend")
    if backend is not None:
        if str(backend) not in BACKENDS:
            raise ConfigError(f"{where}: Backend {backend!r} is not built here (only {', '.join(BACKENDS)})")
        cfg.overrides["hls.backend"] = str(backend)
    io_type = raw.get("IOType")
    if io_type is not None and io_type != "io_parallel":
        raise ConfigError(f"{where}: IOType {io_type!r} is not built here (only io_parallel)")
    if raw.get("Part") is not None:
        cfg.overrides["hls.part"] = str(raw["Part"])
    if raw.get("ClockPeriod") is not None:
        try:
            cfg.overrides["hls.clock_period_ns"] = float(raw["ClockPeriod"])
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: ClockPeriod {raw['ClockPeriod']!r} is not a number (ns)") from None
    model = hls["Model"]
    if "ReuseFactor" in model:
        cfg.overrides["hls.reuse_factor"] = _reuse(model["ReuseFactor"], f"{where} Model")
    if "Strategy" in model:
        _strategy(model["Strategy"], f"{where} Model")
    if "Precision" in model:
        # Checked, not applied: a layer the config is silent about gets the derived exact types.
        default = _precision_map(model["Precision"], f"{where} Model")
        # hls4ml spells it {default: fixed<16,6>} (config_from_keras_model) or a bare string.
        cfg.model_default = default.get("default") or default.get("*")
        if default:
            log.info(
                "%s: Model Precision %s: the type of float constants and of an unquantized input; other "
                "silent layers get the exact types",
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
            if "Precision" in settings:
                types = _precision_map(settings["Precision"], at)
                if types:
                    target[str(name)] = types
            if "Strategy" in settings:
                _strategy(settings["Strategy"], at)
            if "ReuseFactor" in settings:
                reuse = _reuse(settings["ReuseFactor"], at)
                if section == "LayerName":
                    cfg.layer_reuse[str(name)] = reuse
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


def configure(hls: HlsConfig, model: Any, project: ProjectConfig | None) -> HlsConfig:
    """``hls`` with the configured types of ``project`` for ``model``'s layers (``hls`` itself if None).

    ConfigError when the configuration names layers the model does not have. hls4ml's own layer names
    count: a Dense's activation split off as ``<name>_<activation>`` (``_linear`` included).
    """
    if project is None:
        return hls
    names: list[str] = []
    layers: list[tuple[str, tuple[str, ...]]] = []
    for layer in model.layers:
        cls = type(layer).__name__
        handler = find_handler(cls)
        classes = (cls, *(handler.hls4ml_classes if handler is not None else ()))
        names.append(layer.name)
        layers.append((layer.name, classes))
        if hasattr(layer, "activation") and cls not in ("Activation", "QActivation"):
            split = f"{layer.name}_{activation_name(layer.activation)}"
            names.append(split)
            layers.append((split, ("Activation",)))
    project.check_layers(names)
    configured = project.configured_types(layers)
    update: dict[str, Any] = {"configured_types": configured}
    default = project.model_default
    given = hls.input_precision or hls.default_precision or any(s.precision for s in hls.layers.values())
    if default is not None and not given:
        for name in float_layers(model):
            # auto constants of a float layer: hls4ml's default type, cast as hls4ml casts them
            types = configured.setdefault(name, {})
            for key in ("weight", "bias", "scale"):
                types.setdefault(key, default)
        update["default_precision"] = default
        if not input_quantized(model):
            update["input_precision"] = configured.get(model.layers[0].name, {}).get("result", default)
    return hls.model_copy(update=update)


__all__ = [
    "BACKENDS",
    "ProjectConfig",
    "configure",
    "float_layers",
    "input_quantized",
    "parse_precision",
    "read_project_config",
]
