"""From a YAML file to a :class:`~kd_trigger.config.schema.Config`: safe YAML reading, the ``extends:``
chain, command-line overrides, and one-line error messages naming the dotted key."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from kd_trigger.config.schema import Config
from kd_trigger.errors import ConfigError
from kd_trigger.runs import file_problem

DEFAULT_CONFIG = Path("configs/default.yaml")


def _loc(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts) or "<top level>"


def _models_in(annotation: Any) -> list[Any]:
    """The pydantic models an annotation can hold: itself, or inside Optional/tuple/list/dict."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    out: list[Any] = []
    for arg in getattr(annotation, "__args__", ()) or ():
        out.extend(_models_in(arg))
    return out


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The valid keys of the section that holds ``loc``'s last key, for 'did you mean' messages."""
    current: Any = model
    pending_key = False  # inside a dict[str, Model]: the next loc item is a free-form key
    for item in loc[:-1]:
        if isinstance(item, int) or pending_key:
            pending_key = False
            continue
        field = current.model_fields.get(item) if hasattr(current, "model_fields") else None
        if field is None:
            return []
        ann = field.annotation
        pending_key = getattr(ann, "__origin__", None) is dict
        models = _models_in(ann)
        if not models:
            return []
        current = models[0]
    return sorted(current.model_fields) if hasattr(current, "model_fields") else []


def format_validation_error(err: ValidationError, source: str, model: type[BaseModel] | None = None) -> str:
    """One line naming the first offending dotted key, its value and what is allowed."""
    first = err.errors()[0]
    loc = tuple(first["loc"])
    key = _loc(loc)
    value = first.get("input")
    if first["type"] == "extra_forbidden":
        allowed = _allowed_keys(model or Config, loc)
        return f"{source}: unknown key '{key}'; allowed keys here: {', '.join(allowed)}"
    if first["type"] == "missing":
        return f"{source}: required key '{key}' is missing"
    msg = re.sub(r"^Value error, ", "", first["msg"])
    shown = value if not isinstance(value, dict) or not value else "{...}"
    return f"{source}: invalid value for '{key}' ({shown!r}): {msg}"


def _non_string_key(node: Any, loc: tuple[Any, ...] = ()) -> tuple[Any, ...] | None:
    """The location of the first mapping key that is not text (YAML reads ``1:`` or ``yes:`` as others)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if not isinstance(key, str):
                return (*loc, key)
            found = _non_string_key(value, (*loc, key))
            if found is not None:
                return found
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found = _non_string_key(value, (*loc, i))
            if found is not None:
                return found
    return None


def parse_config(raw: Any, source: str = "config") -> Config:
    """Validate a mapping (as read from YAML) into a :class:`Config`."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of sections, got {type(raw).__name__}")
    odd = _non_string_key(raw)
    if odd is not None:
        allowed = _allowed_keys(Config, odd)
        listed = f"; allowed keys here: {', '.join(allowed)}" if allowed else "; keys are names (text)"
        prefix = _loc(odd[:-1]) if odd[:-1] else ""
        key = f"{prefix}.{odd[-1]}" if prefix else str(odd[-1])
        raise ConfigError(f"{source}: unknown key '{key}' (a {type(odd[-1]).__name__}){listed}")
    raw = _resolve_named_lists(raw, source)
    try:
        return Config.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, source)) from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses a key given twice in one mapping.

    PyYAML keeps the last of two equal keys, so a second ``data:`` section silently hides the first
    one (and any typo in it); a config must say everything once.
    """

    def compose_node(self, parent: Any, index: Any) -> Any:
        # An alias repeats a value without copying it: ten levels of ten aliases are 10^10 values to
        # every reader that walks them (a "billion laughs"). A config is short enough to write out.
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None,
                None,
                f"YAML aliases (*{event.anchor}) are not accepted in config files; write the value out",
                event.start_mark,
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, list | dict):
                continue  # unhashable keys are reported by the base class
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"key {key!r} appears twice (lines {seen[key] + 1} and {key_node.start_mark.line + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def read_text_utf8(path: Path, what: str = "file") -> str:
    """The text of ``path``; a missing, unreadable or non-UTF-8 file is a one-line ConfigError."""
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise ConfigError(f"{what} {path} is a directory, not a file") from None
    except OSError as err:
        raise ConfigError(f"{what} {path} cannot be read: {err.strerror or err}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise ConfigError(
            f"{path}: not UTF-8 text (byte 0x{data[err.start]:02x} at line {line}); save the file as UTF-8"
        ) from None


def read_yaml(path: Path, what: str = "config file") -> Any:
    """Parse a YAML file (UTF-8, no duplicate keys); any problem is a one-line ConfigError naming the file."""
    text = read_text_utf8(Path(path), what)
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: not valid YAML{where}: {getattr(err, 'problem', err)}") from None


EXTENDS_KEY = "extends"
"""Top-level key of a config that names the config it overrides (a path relative to the file)."""


NAMED_LISTS = ("teachers", "students")
"""Top-level lists whose entries have a ``name``. A config gives one either as a list (it replaces the
inherited list) or as a mapping of names to the fields to change in the inherited entries of those names
(``students: {deepsets: {teacher: lorentznet64}}``), so a config that ``extends`` another changes one
student's pairing without restating every student."""


def _merge_named(inherited: list[Any], changes: dict[str, Any], key: str, source: str) -> list[Any]:
    """``inherited`` (a list of named entries) with ``changes`` (name -> fields) merged into the entries."""
    if "name" in changes and not isinstance(changes["name"], dict):
        # ``students: {name: s, kind: mlp}``: one entry written without its list dash, not changes by name
        raise ConfigError(
            f"{source}: '{key}' is one entry's fields ({', '.join(map(str, changes))}) without the list dash; "
            f"write the {key} as a list ('- name: ...'), or as a mapping of inherited names to the fields to change"
        )
    names = [e.get("name") if isinstance(e, dict) else None for e in inherited]
    out = list(inherited)
    for name, fields in changes.items():
        if name not in names:
            known = ", ".join(str(n) for n in names if n) or "none"
            raise ConfigError(
                f"{source}: '{key}.{name}' changes no inherited entry (inherited {key}: {known}); give a "
                f"list to replace the {key}, or a mapping of existing names to the fields to change"
            )
        if not isinstance(fields, dict):
            raise ConfigError(
                f"{source}: '{key}.{name}' must be a mapping of the fields to change, got {fields!r}"
            )
        if fields.get("name", name) != name:
            raise ConfigError(
                f"{source}: '{key}.{name}.name' renames an inherited entry; give a list to replace the {key}"
            )
        i = names.index(name)
        out[i] = merge_overrides(out[i], fields)
    return out


def merge_overrides(base: dict[str, Any], override: dict[str, Any], source: str = "config") -> dict[str, Any]:
    """``override`` on top of ``base``: mappings merge key by key, anything else (lists too) replaces,
    except a mapping given for one of :data:`NAMED_LISTS`, which changes the named entries of the list."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_overrides(out[key], value, source)
        elif key in NAMED_LISTS and isinstance(value, dict) and isinstance(out.get(key), list):
            out[key] = _merge_named(out[key], value, key, source)
        else:
            out[key] = value
    return out


def _resolve_named_lists(raw: dict[str, Any], source: str) -> dict[str, Any]:
    """Changes by name to a list no config in the chain gave: applied to the schema's default entries."""
    pending = {k: raw[k] for k in NAMED_LISTS if isinstance(raw.get(k), dict)}
    if not pending:
        return raw
    defaults = Config().to_dict()
    return {**raw, **{k: _merge_named(defaults[k], v, k, source) for k, v in pending.items()}}


MAX_EXTENDS_DEPTH = 32
"""The longest ``extends:`` chain read: a real setup has two or three levels; a longer chain is a mistake
(and each level is one more file a reader must follow)."""


def _resolve_extends(path: Path) -> dict[str, Any]:
    """The raw mapping of ``path`` with its ``extends:`` chain applied (the base first).

    The chain is followed in a loop, not by recursion, and at most :data:`MAX_EXTENDS_DEPTH` files deep.
    """
    layers: list[dict[str, Any]] = []
    sources: list[Path] = []
    chain: list[Path] = []
    current = path
    while True:
        resolved = current.resolve()
        if resolved in chain:
            cycle = " -> ".join(str(p) for p in (*chain, resolved))
            raise ConfigError(f"{path}: '{EXTENDS_KEY}' forms a cycle: {cycle}")
        if len(chain) >= MAX_EXTENDS_DEPTH:
            raise ConfigError(
                f"{path}: the '{EXTENDS_KEY}' chain is more than {MAX_EXTENDS_DEPTH} files deep (stopped at "
                f"{current}); merge some of the files"
            )
        chain.append(resolved)
        raw = read_yaml(current)
        raw = {} if raw is None else raw
        if not isinstance(raw, dict):
            raise ConfigError(
                f"{current}: the top level must be a mapping of sections, got {type(raw).__name__}"
            )
        parent = raw.pop(EXTENDS_KEY, None)
        layers.append(raw)
        sources.append(current)
        if parent is None:
            break
        if not isinstance(parent, str) or not parent:
            raise ConfigError(
                f"{current}: '{EXTENDS_KEY}' must be the path of another config, got {parent!r}"
            )
        base_path = (current.parent / parent) if not Path(parent).is_absolute() else Path(parent)
        problem = file_problem(base_path)
        if problem is not None:
            raise ConfigError(f"{current}: '{EXTENDS_KEY}: {parent}' names {base_path}, which {problem}")
        current = base_path
    merged: dict[str, Any] = {}
    for raw, source in zip(reversed(layers), reversed(sources), strict=True):
        merged = merge_overrides(merged, raw, str(source))
    return merged


def apply_overrides(cfg: Config, overrides: dict[str, Any], source: str) -> Config:
    """``cfg`` with dotted-key overrides (``data.n_jets``) applied, validated again as a whole.

    The file is validated first, so a malformed file is reported as such and never half-patched; the
    overridden config then goes through the same schema, so an override is checked like a file value.
    """
    wanted = {k: v for k, v in overrides.items() if v is not None}
    if not wanted:
        return cfg
    raw = cfg.to_dict()
    for dotted, value in wanted.items():
        node = raw
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node[p]
        node[leaf] = value
    return parse_config(raw, f"{source} (with command-line overrides)")


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> Config:
    """Read and validate a YAML config (its ``extends:`` chain first), then apply ``overrides``.

    ``overrides`` maps dotted keys (``data.n_jets``) to values; None values are ignored.
    """
    path = Path(path)
    problem = file_problem(path)
    if problem is not None:
        raise ConfigError(
            f"config file {path} {problem}; pass CONFIG=path/to.yaml (e.g. configs/default.yaml)"
        )
    cfg = parse_config(_resolve_extends(path), str(path))
    cfg = apply_overrides(cfg, overrides or {}, str(path))
    cfg._source = str(path)
    return cfg
