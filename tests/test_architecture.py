"""The shape of the package, checked from its source with ``ast`` (nothing is imported).

* the import graph of kd_trigger has no cycle (imports inside functions count: a cycle hidden in a
  function is still a cycle, and the stage digests follow those imports too);
* no module imports another module's ``_``-prefixed name;
* artifact file names are spelled only in ``kd_trigger/layout.py``;
* no module is longer than ~600 lines;
* one per-layer description: exactly one class named ``LayerSpec`` (the layer registry's, which the
  resource estimator reads too), and the Yosys counts are the contract class itself.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "kd_trigger"
MAX_LINES = 600
ARTIFACT_SUFFIXES = (".json", ".md", ".html", ".png", ".h5", ".npy", ".npz", ".keras", ".yaml", ".txt")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def resolve(module: str, name: str | None) -> str | None:
    """The kd_trigger module an import refers to (``from a import b``: the submodule ``a.b`` if it exists)."""
    if name is not None and f"{module}.{name}" in MODULES:
        return f"{module}.{name}"
    return module if module in MODULES else None


def imports_of(module: str) -> list[tuple[str, str | None, int]]:
    """(module, imported name or None, line) for every kd_trigger import of ``module``, anywhere in it."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[str, str | None, int]] = []
    # Imports under ``if TYPE_CHECKING:`` never run: they are annotations, not dependencies.
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
        for inner in ast.walk(node)
    }
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found += [(a.name, None, node.lineno) for a in node.names if a.name.startswith("kd_trigger")]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            if base.startswith("kd_trigger"):
                found += [(base, a.name, node.lineno) for a in node.names]
    return found


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for module in MODULES:
        for target, name, _ in imports_of(module):
            resolved = resolve(target, name)
            if resolved is not None and resolved != module:
                graph[module].add(resolved)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path (first module repeated at the end), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None


def test_cycle_finder_finds_a_cycle() -> None:
    # The negative control: the checker below is only as good as this.
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_import_graph_has_no_cycle() -> None:
    graph = import_graph()
    assert sum(len(v) for v in graph.values()) > 100  # the walk really sees the package's imports
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def private_uses(module: str) -> list[str]:
    """``from kd_trigger.x import _name`` and ``alias._name`` where ``alias`` is another kd_trigger module."""
    found = [
        f"{module}:{line} imports {name} from {target}"
        for target, name, line in imports_of(module)
        if name is not None and _private(name)
    ]
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            aliases |= {a.asname: a.name for a in node.names if a.asname and a.name.startswith("kd_trigger")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("kd_trigger"):
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                if sub in MODULES:
                    aliases[a.asname or a.name] = sub
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and _private(node.attr)
        ):
            found.append(f"{module}:{node.lineno} uses {aliases[node.value.id]}.{node.attr}")
    return found


def test_private_name_check_sees_both_spellings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "fake.py"
    fake.write_text(
        "from kd_trigger.fpga import estimate as est\nfrom kd_trigger.stages import _dump\nx = est._kind\n"
    )
    monkeypatch.setitem(MODULES, "kd_trigger.fake", fake)
    uses = private_uses("kd_trigger.fake")
    assert any("_dump" in u for u in uses) and any("_kind" in u for u in uses), uses


def test_no_module_uses_another_modules_private_name() -> None:
    offenders = [use for module in list(MODULES) for use in private_uses(module)]
    assert not offenders, "\n".join(offenders)


def test_no_module_is_longer_than_the_limit() -> None:
    lengths = {m: len(p.read_text(encoding="utf-8").splitlines()) for m, p in MODULES.items()}
    assert max(lengths.values()) > 300  # the count is real
    too_long = {m: n for m, n in lengths.items() if n > MAX_LINES}
    assert not too_long, f"modules over {MAX_LINES} lines: {too_long}"


def _file_name_literals(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and node.value.endswith(ARTIFACT_SUFFIXES)
        and "/" not in node.value
        and " " not in node.value
        and not node.value.startswith(".")
    }


def test_artifact_file_names_live_only_in_layout() -> None:
    layout = PACKAGE / "layout.py"
    if not layout.exists():
        pytest.fail("kd_trigger/layout.py is missing: it names every artifact path")
    names = _file_name_literals(layout)
    assert {"metrics.json", "hls_report.json", "scan.json", "study.json"} <= names
    elsewhere = {
        f"{module}: {sorted(found)}"
        for module, path in MODULES.items()
        if module != "kd_trigger.layout" and (found := _file_name_literals(path) & names)
    }
    assert not elsewhere, "artifact file names spelled outside layout.py:\n" + "\n".join(sorted(elsewhere))


def class_definitions() -> dict[str, list[str]]:
    """Class name -> the kd_trigger modules that define a class of that name (at any depth)."""
    found: dict[str, list[str]] = {}
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                found.setdefault(node.name, []).append(module)
    return found


def test_class_finder_sees_a_second_layer_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The negative control: a second per-layer description anywhere in the package is seen.
    fake = tmp_path / "fake.py"
    fake.write_text("def f():\n    class LayerSpec:\n        pass\n")
    monkeypatch.setitem(MODULES, "kd_trigger.fake", fake)
    assert class_definitions()["LayerSpec"] == ["kd_trigger.layers.spec", "kd_trigger.fake"]


def test_one_layer_spec_and_one_yosys_record() -> None:
    """The registry's LayerSpec is the only per-layer description (the estimator fills and reads it),
    and rtl/synth.py makes the rtl_report.json contract block itself (no second Yosys field list)."""
    defs = class_definitions()
    assert defs["LayerSpec"] == ["kd_trigger.layers.spec"], defs["LayerSpec"]
    assert defs["YosysBlock"] == ["kd_trigger.contracts.hls_report"] and "YosysResult" not in defs
