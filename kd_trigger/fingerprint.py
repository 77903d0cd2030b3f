"""Code fingerprints: which source files a stage's results follow, and one digest over them.

A stage's code is the source of every kd_trigger module its function imports, transitively, read with
``ast`` (nothing is imported, so TensorFlow never is), plus the installed versions of the third-party
packages that decide results. The same fingerprints key the caches inside the study and scan stages
(:func:`code_digest`).

Not result code: editing this module reruns no stage.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
from pathlib import Path
from typing import Any

import kd_trigger
from kd_trigger.errors import ConfigError
from kd_trigger.runs import numeric_settings, package_versions

PROJECT_ROOT = Path(kd_trigger.__file__).resolve().parent.parent

NOT_RESULT_CODE = frozenset(
    f"kd_trigger/{name}.py"
    for name in ("stage_types", "stages", "runner", "fingerprint", "cli", "__main__", "errors", "runs")
)
"""Modules that declare, assemble, walk or record stages, or word messages, but compute no output:
editing them reruns nothing, and the walk does not follow their imports (the graph imports every stage)."""


def sha_of(payload: Any) -> str:
    """SHA-256 (hex) of ``payload`` as canonical JSON."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


_source_cache: dict[Path, tuple[tuple[int, int], str, tuple[str, ...], tuple[str, ...]]] = {}


def _module_file(module: str) -> Path | None:
    """The source file of a kd_trigger module or package, found on disk (nothing is imported)."""
    base = PROJECT_ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _is_type_checking(node: ast.AST) -> bool:
    """``if TYPE_CHECKING:`` (or ``typing.TYPE_CHECKING``): imports there never run."""
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node of ``tree`` except the bodies of ``if TYPE_CHECKING:`` blocks."""
    found, todo = [], [tree]
    while todo:
        node = todo.pop()
        found.append(node)
        if _is_type_checking(node):
            todo.extend(node.orelse)  # type: ignore[attr-defined]
            continue
        todo.extend(ast.iter_child_nodes(node))
    return found


def _package_exports(init: Path) -> dict[str, str]:
    """Name -> the kd_trigger module that defines it, for what a package's ``__init__`` re-exports."""
    exports: dict[str, str] = {}
    for node in ast.parse(init.read_bytes(), filename=str(init)).body:
        if (
            isinstance(node, ast.ImportFrom)
            and node.level == 0
            and node.module
            and node.module.split(".")[0] == "kd_trigger"
        ):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                exports[alias.asname or alias.name] = sub if _module_file(sub) else node.module
    return exports


def _read_source(path: Path) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """(SHA-256 prefix of the file, the kd_trigger modules it runs, the packages it only passes through).

    A module "runs" what it imports anywhere, also inside functions, except under ``if TYPE_CHECKING:``.
    ``from kd_trigger.pkg import name`` runs the module that defines ``name`` (a submodule, or where the
    package's ``__init__`` re-exports it from), not every module the ``__init__`` re-exports: the
    package's ``__init__`` itself counts as passed through (its own source, not its imports). Without
    this, every stage that reads one config class would follow the whole config package, and an edit to
    the YAML loader would regenerate the jets.
    """
    stat = path.stat()
    key = (stat.st_mtime_ns, stat.st_size)
    cached = _source_cache.get(path)
    if cached is not None and cached[0] == key:
        return cached[1], cached[2], cached[3]
    data = path.read_bytes()
    runs: set[str] = set()
    passes: set[str] = set()
    for node in _runtime_nodes(ast.parse(data, filename=str(path))):
        if isinstance(node, ast.Import):
            runs.update(a.name for a in node.names if a.name.split(".")[0] == "kd_trigger")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] != "kd_trigger":
                continue
            found = _module_file(node.module)
            if found is None or found.name != "__init__.py":
                runs.add(node.module)
                continue
            exports = _package_exports(found)
            passes.add(node.module)
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                if _module_file(sub):
                    runs.add(sub)  # "from kd_trigger.hls import csim": the module kd_trigger.hls.csim
                elif alias.name in exports:
                    runs.add(exports[alias.name])
                else:
                    runs.add(node.module)  # defined in the __init__ itself: it runs, imports and all
    result = (hashlib.sha256(data).hexdigest()[:16], tuple(sorted(runs)), tuple(sorted(passes)))
    _source_cache[path] = (key, *result)
    return result


DATA_SUFFIXES = (".json", ".yaml", ".csv")


def data_files(path: Path) -> list[Path]:
    """Package data a module reads: files next to it that its source names in a string constant.

    Results can come from data as much as from code (the estimator's fitted coefficients live in
    ``fpga/estimate/coefficients.json``): a refit must rerun what uses it, like a code edit.
    """
    tree = ast.parse(path.read_bytes(), filename=str(path))
    names = {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and node.value.endswith(DATA_SUFFIXES)
    }
    return sorted(p for name in names if "/" not in name and (p := path.parent / name).is_file())


def code_fingerprint(module: str) -> dict[str, str]:
    """Source file -> SHA-256 prefix for ``module`` and every kd_trigger module it imports, transitively,
    and the package data files those modules read (:func:`data_files`).

    Imports are read from the source (``ast``), not executed, so the graph still never imports
    TensorFlow; importing ``kd_trigger.a.b`` also runs the ``__init__`` of its packages, whose source
    counts (not every module they re-export: :func:`_read_source`). Paths are relative to the project root (absolute for a module outside it, as in the tests).
    """
    spec_file = _module_file(module) if module.split(".")[0] == "kd_trigger" else None
    if spec_file is None:
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            raise ConfigError(f"stage code {module} cannot be found")
        spec_file = Path(spec.origin)
    todo, seen, walked = [spec_file.resolve()], {}, set()
    while todo:
        path = todo.pop()
        if path in walked or relative(path) in NOT_RESULT_CODE:
            continue  # the graph imports every stage: following it would tie every stage to all code
        walked.add(path)
        sha, runs, passes = _read_source(path)
        seen[path] = sha
        for data in data_files(path):
            seen[data.resolve()] = hashlib.sha256(data.read_bytes()).hexdigest()[:16]
        for name in runs:
            parts = name.split(".")
            found = _module_file(name)
            if found is not None:
                todo.append(found.resolve())
            passes += tuple(".".join(parts[:depth]) for depth in range(1, len(parts)))
        for name in passes:  # a package's __init__ on the way: its source counts, its imports do not
            found = _module_file(name)
            if found is not None and found.resolve() not in seen:
                seen[found.resolve()] = _read_source(found.resolve())[0]
    return dict(sorted((relative(path), sha) for path, sha in seen.items()))


def code_digest(*modules: str) -> str:
    """One SHA-256 prefix over the code fingerprints of ``modules``: for cache keys inside a stage."""
    merged: dict[str, str] = {}
    for module in modules:
        merged.update(code_fingerprint(module))
    return sha_of({"code": merged, "packages": result_packages()})[:16]


def relative(path: Path) -> str:
    return str(path.relative_to(PROJECT_ROOT)) if path.is_relative_to(PROJECT_ROOT) else str(path)


def result_packages() -> dict[str, str]:
    """Versions of the third-party packages behind the results (kd_trigger's own is ``version``), and
    the numeric settings set in the environment (:func:`kd_trigger.runs.numeric_settings`): a student
    trained with other TensorFlow kernels is another student, so it gets another digest and cache key."""
    packages = {name: v for name, v in package_versions().items() if name != "kd_trigger"}
    return {**packages, **numeric_settings()}
