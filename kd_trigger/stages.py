"""The stage graph and the one runner that walks it.

    data -> teacher:<name> (one per configured teacher) -> distill -> hls -> report
                                     \\-> study            scan (beside distill, from data + teachers)

Each stage is a function of its inputs: it reads upstream outputs from disk and writes its own; it
never calls another stage. :func:`run_targets` resolves what a target needs, and for each stage in
order decides, by one rule, whether its committed outputs are still valid.

**The digest rule.** A stage's digest is the SHA-256 of: the kd_trigger version; the source of every
kd_trigger module the stage's function imports, transitively (a code change reruns the stages that run
that code, also without a version bump); the installed versions of the third-party packages that decide
results (TensorFlow, QKeras, hls4ml, ...); the config sections the stage depends on; the content
fingerprints of every external file it reads (``data.path``, a bring-your-own teacher, the budget
profiles file); and, for every upstream stage, its digest and the fingerprints of its outputs. Any
change anywhere therefore reruns exactly the stages downstream of it.

**Atomic commits.** A stage writes every output into a staging path beside its final place. When it
returns, a journal naming all moves is written (the commit point); the moves and the stage record
follow. A run killed before the journal leaves only staging leftovers, which the next run deletes; a
run killed after it is rolled forward by the next run. Outputs and record are never seen half-new.

**The run lock.** One process at a time works on a run directory (:class:`kd_trigger.runs.RunLock`).
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import importlib
import importlib.util
import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import yaml

import kd_trigger
from kd_trigger import __version__
from kd_trigger.config import Config
from kd_trigger.contracts import DigestParts, Fingerprint, StageRecord
from kd_trigger.errors import ConfigError, StaleOutputError
from kd_trigger.runs import (
    RunLock,
    clean_dead_temporaries,
    file_problem,
    package_versions,
    path_fingerprint,
    raise_if_terminated,
    remove_path,
    termination_deferred,
    tmp_name,
    write_json_atomic,
    write_text_atomic,
)

log = logging.getLogger(__name__)

RECORDS_DIR = "stages"


@dataclass
class StageResult:
    """What a stage function returns besides its files: an exit status (3: a budget is broken)."""

    exit_status: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class StageContext:
    """What a running stage gets: the config, its upstream records, and where to write."""

    cfg: Config
    stage: str
    upstream: dict[str, StageRecord]
    staged: dict[Path, Path] = field(default_factory=dict)
    created: list[Path] = field(default_factory=list)
    """Folders :meth:`out` created (deepest first per call): removed again, if empty, when the stage fails."""

    def out(self, final: Path) -> Path:
        """The staging path to write instead of ``final`` (a declared output); parents exist."""
        final = Path(final)
        if final not in self.staged:
            raise KeyError(f"stage {self.stage} did not declare the output {final}")
        path = self.staged[final]
        for parent in (path.parent, *path.parent.parents):
            if parent.exists():
                break
            self.created.append(parent)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def remove_created(self) -> None:
        """Remove the folders :meth:`out` created that are still empty (a failed stage leaves none)."""
        for folder in sorted(set(self.created), key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                folder.rmdir()


StageFn = Callable[[StageContext], StageResult | None]


@dataclass(frozen=True)
class Stage:
    """One node of the graph.

    ``config(cfg)`` returns the JSON-able parts of the config the outputs depend on; ``inputs(cfg)`` the
    external files read; ``outputs(cfg)`` every path the stage writes; ``check(cfg)`` fails fast (before
    any work of any stage) on input the stage would refuse later; ``run`` names the stage function as
    ``module:function`` so that importing the graph never imports TensorFlow.
    """

    name: str
    needs: tuple[str, ...]
    config: Callable[[Config], Any]
    outputs: Callable[[Config], list[Path]]
    run: str
    inputs: Callable[[Config], list[Path]] = lambda cfg: []
    check: Callable[[Config], None] = lambda cfg: None
    description: str = ""

    def function(self) -> StageFn:
        module, _, name = self.run.partition(":")
        fn: StageFn = getattr(importlib.import_module(module), name)
        return fn


# -- the graph ------------------------------------------------------------------------------------
def _dump(value: Any) -> Any:
    return value.model_dump(mode="json") if hasattr(value, "model_dump") else value


def teacher_stage_name(teacher: str) -> str:
    return f"teacher:{teacher}"


def build_graph(cfg: Config) -> dict[str, Stage]:
    """The stages of ``cfg``'s pipeline, keyed by name, in a valid execution order."""
    graph: dict[str, Stage] = {}

    def add(stage: Stage) -> None:
        graph[stage.name] = stage

    def data_config(c: Config) -> Any:
        data = c.data.model_dump(mode="json")
        data.pop("workers")  # the number of processes never changes the bytes produced
        data.pop("path")  # a given file is fingerprinted by content instead
        return {"seed": c.run.seed, "data": data}

    add(
        Stage(
            "data",
            (),
            data_config,
            lambda c: [c.artifacts / "data"],
            "kd_trigger.data.generate:data_stage",
            inputs=lambda c: [c.data_path] if c.data.path else [],
            check=_check_data,
            description="generate jets with Pythia 8 + FastJet, or validate data.path",
        )
    )
    teachers = [teacher_stage_name(t.name) for t in cfg.teacher_specs]
    for spec in cfg.teachers:
        add(
            Stage(
                teacher_stage_name(spec.name),
                ("data",),
                partial(_teacher_config, name=spec.name),
                partial(_teacher_outputs, name=spec.name),
                "kd_trigger.distill.teacher_stage:teacher_stage",
                inputs=partial(_teacher_files, name=spec.name),
                check=partial(_check_teacher, name=spec.name),
                description=f"train teacher '{spec.name}' (or check the file it names) and cache its logits",
            )
        )
    add(
        Stage(
            "distill",
            ("data", *teachers),
            lambda c: {"seed": c.run.seed, **{k: c.to_dict()[k] for k in ("students", "distill")}},
            lambda c: [
                c.artifacts / n for n in ("students", "metrics.json", "summary.md", "roc.png", "boost.png")
            ],
            "kd_trigger.distill.pipeline:distill_stage",
            check=_check_students,
            description="baseline and distilled students from the same start, physics metrics",
        )
    )
    add(
        Stage(
            "hls",
            ("data", "distill"),
            lambda c: {"hls": _dump(c.hls), "budget": _dump(c.budget)},
            lambda c: [c.firmware / s.name for s in c.students],
            "kd_trigger.hls.pipeline:hls_stage",
            inputs=lambda c: [Path(c.budget.profiles)],
            check=_check_hls,
            description="hls4ml firmware, bit-exact C simulation, resources, budget verdict",
        )
    )
    add(
        Stage(
            "report",
            ("distill", "hls"),
            lambda c: {"run": c.run.name},
            lambda c: [c.firmware / n for n in ("report.md", "report.html", "report_plots")],
            "kd_trigger.report.assemble:report_stage",
            # A scan run later (make scan) changes this file: the report then shows it on its next run.
            inputs=lambda c: [c.artifacts / "scan" / "scan.json"],
            description="the firmware review report (Markdown and self-contained HTML)",
        )
    )
    studied = cfg.study.teachers or tuple(t.name for t in cfg.teachers)
    add(
        Stage(
            "study",
            ("data", *(teacher_stage_name(name) for name in studied)),
            lambda c: {"seed": c.run.seed, **c.study_view()},
            _study_outputs,
            "kd_trigger.study:study_stage",
            check=_check_students,
            description="multi-seed study: baseline and KD per student, teacher and setting, with intervals",
        )
    )
    scanned = sorted(
        {teacher_stage_name(cfg.teacher_of(s).name) for s in cfg.students if s.kind in cfg.scan.axes}
    )
    add(
        Stage(
            "scan",
            ("data", *scanned),
            lambda c: {
                "seed": c.run.seed,
                **{k: c.to_dict()[k] for k in ("students", "distill", "hls", "scan", "budget")},
            },
            lambda c: [c.artifacts / "scan", c.firmware / "best"],
            "kd_trigger.scan:scan_stage",
            inputs=lambda c: [Path(c.budget.profiles)],
            check=_check_scan,
            description="design scan on Dask: KD-trained, exact, measured points, Pareto fronts, best in budget",
        )
    )
    return graph


def _check_scan(cfg: Config) -> None:
    from kd_trigger.scan import plan_points

    _check_hls(cfg)
    plan_points(cfg)


def _study_outputs(cfg: Config) -> list[Path]:
    return [cfg.artifacts / "study.json", cfg.artifacts / "study.md", cfg.artifacts / "study"]


def _teacher_config(cfg: Config, name: str) -> Any:
    return {"seed": cfg.run.seed, "teacher": _dump(cfg.teacher_spec(name))}


def _teacher_outputs(cfg: Config, name: str) -> list[Path]:
    return [cfg.artifacts / "teachers" / name]


def _teacher_files(cfg: Config, name: str) -> list[Path]:
    path = cfg.teacher_spec(name).path
    return [Path(path)] if path else []


def _check_data(cfg: Config) -> None:
    if cfg.data.path:
        problem = file_problem(Path(cfg.data.path), want="any")
        if problem is not None:
            from kd_trigger.errors import DataError

            raise DataError(f"data.path {cfg.data.path} {problem}; point it at an HDF5 jet file or remove it")
    if not cfg.data.path:
        from kd_trigger.data.generate import check_n_jets

        check_n_jets(cfg)


def _check_teacher(cfg: Config, name: str) -> None:
    path = cfg.teacher_spec(name).path
    problem = file_problem(Path(path), want="any") if path else None
    if problem is not None:
        from kd_trigger.errors import ModelError

        raise ModelError(
            f"teacher '{name}': file {path} {problem}; set its path to a saved Keras model "
            "(.h5, .keras or a SavedModel directory)"
        )


def _check_students(cfg: Config) -> None:
    from kd_trigger.models.students import check_student

    for spec in cfg.students:
        check_student(spec)


def _check_hls(cfg: Config) -> None:
    """The budget profile, the FPGA part, and ``hls.layers`` naming layers some student has."""
    from kd_trigger.fpga.budget import check_hls_part, load_budget
    from kd_trigger.models.students import student_layer_names

    load_budget(cfg.budget)
    check_hls_part(cfg.hls.part, cfg.budget)
    # The scan's designs may be deeper than the configured students: their layers count too.
    designs = list(cfg.students)
    for s in cfg.students:
        axes = cfg.scan.axes.get(s.kind)
        for hidden in (axes.hidden if axes else None) or ():
            designs.append(s.model_copy(update={"hidden": hidden}))
        for head in (axes.head if axes else None) or ():
            designs.append(s.model_copy(update={"head": head}))
    names = list(dict.fromkeys(n for s in designs for n in student_layer_names(s)))
    cfg.hls.check_layer_names(names, "any student")


def plan(graph: dict[str, Stage], targets: Iterable[str]) -> list[str]:
    """The stages the targets need, each once, upstream first (the graph's own order)."""
    wanted: set[str] = set()

    def visit(name: str) -> None:
        if name not in graph:
            known = ", ".join(_public_names(graph))
            raise ConfigError(f"no stage named {name!r}; stages of this config: {known}")
        if name in wanted:
            return
        wanted.add(name)
        for need in graph[name].needs:
            visit(need)

    for target in targets:
        if target == "teacher":  # every teacher of the config
            for name in graph:
                if name.startswith("teacher:"):
                    visit(name)
        else:
            visit(target)
    return [name for name in graph if name in wanted]


def _public_names(graph: dict[str, Stage]) -> list[str]:
    names = list(graph)
    if any(n.startswith("teacher:") for n in names):
        names.insert(1, "teacher")
    return names


# -- records --------------------------------------------------------------------------------------
def records_dir(cfg: Config) -> Path:
    return cfg.artifacts / RECORDS_DIR


def record_path(cfg: Config, stage: str) -> Path:
    return records_dir(cfg) / f"{stage.replace(':', '-')}.json"


def read_record(cfg: Config, stage: str) -> StageRecord | None:
    """The committed record of ``stage``, or None (none yet, or unreadable: the stage then reruns)."""
    path = record_path(cfg, stage)
    if not path.is_file():
        return None
    try:
        return StageRecord.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        log.warning("ignoring unreadable stage record %s (%s)", path, str(err).splitlines()[0])
        return None


def _sha(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _input_fingerprint(path: Path, previous: StageRecord | None) -> Fingerprint:
    """Content fingerprint of an external input; an unchanged size and mtime reuses the last hash."""
    if not path.exists():
        return Fingerprint(path=str(path), sha256="missing")
    stat = path.stat()
    if path.is_file() and previous is not None:
        for fp in previous.inputs:
            if fp.path == str(path) and fp.size == stat.st_size and fp.mtime_ns == stat.st_mtime_ns:
                return fp
    sha, files, size = path_fingerprint(path)
    return Fingerprint(
        path=str(path),
        sha256=sha,
        files=files,
        bytes=size,
        size=stat.st_size if path.is_file() else None,
        mtime_ns=stat.st_mtime_ns if path.is_file() else None,
    )


# -- code fingerprints ----------------------------------------------------------------------------
_PROJECT_ROOT = Path(kd_trigger.__file__).resolve().parent.parent

# Modules that orchestrate runs or word messages but compute no output: editing them reruns nothing.
_NOT_RESULT_CODE = frozenset(
    f"kd_trigger/{name}.py" for name in ("stages", "cli", "__main__", "errors", "runs")
)

_source_cache: dict[Path, tuple[tuple[int, int], str, tuple[str, ...]]] = {}


def _module_file(module: str) -> Path | None:
    """The source file of a kd_trigger module or package, found on disk (nothing is imported)."""
    base = _PROJECT_ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _read_source(path: Path) -> tuple[str, tuple[str, ...]]:
    """(SHA-256 prefix of the file, the kd_trigger modules it imports anywhere, also inside functions)."""
    stat = path.stat()
    key = (stat.st_mtime_ns, stat.st_size)
    cached = _source_cache.get(path)
    if cached is not None and cached[0] == key:
        return cached[1], cached[2]
    data = path.read_bytes()
    imported: set[str] = set()
    for node in ast.walk(ast.parse(data, filename=str(path))):
        if isinstance(node, ast.Import):
            imported.update(a.name for a in node.names if a.name.split(".")[0] == "kd_trigger")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] != "kd_trigger":
                continue
            imported.add(node.module)
            # "from kd_trigger.hls import csim" imports the module kd_trigger.hls.csim
            imported.update(
                f"{node.module}.{a.name}" for a in node.names if _module_file(f"{node.module}.{a.name}")
            )
    result = (hashlib.sha256(data).hexdigest()[:16], tuple(sorted(imported)))
    _source_cache[path] = (key, *result)
    return result


def code_fingerprint(module: str) -> dict[str, str]:
    """Source file -> SHA-256 prefix for ``module`` and every kd_trigger module it imports, transitively.

    Imports are read from the source (``ast``), not executed, so the graph still never imports
    TensorFlow; importing ``kd_trigger.a.b`` also runs the ``__init__`` of its packages, which count.
    Paths are relative to the project root (absolute for a module outside it, as in the tests).
    """
    spec_file = _module_file(module) if module.split(".")[0] == "kd_trigger" else None
    if spec_file is None:
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            raise ConfigError(f"stage code {module} cannot be found")
        spec_file = Path(spec.origin)
    todo, seen = [spec_file.resolve()], {}
    while todo:
        path = todo.pop()
        if path in seen or _relative(path) in _NOT_RESULT_CODE:
            continue  # the runner imports every stage: following it would tie every stage to all code
        sha, imported = _read_source(path)
        seen[path] = sha
        for name in imported:
            parts = name.split(".")
            for depth in range(1, len(parts) + 1):  # the module and each package above it
                found = _module_file(".".join(parts[:depth]))
                if found is not None:
                    todo.append(found.resolve())
    return dict(sorted((_relative(path), sha) for path, sha in seen.items()))


def code_digest(*modules: str) -> str:
    """One SHA-256 prefix over the code fingerprints of ``modules``: for cache keys inside a stage."""
    merged: dict[str, str] = {}
    for module in modules:
        merged.update(code_fingerprint(module))
    return _sha({"code": merged, "packages": _result_packages()})[:16]


def _relative(path: Path) -> str:
    return str(path.relative_to(_PROJECT_ROOT)) if path.is_relative_to(_PROJECT_ROOT) else str(path)


def _result_packages() -> dict[str, str]:
    """Versions of the third-party packages behind the results (kd_trigger's own is ``version``)."""
    return {name: v for name, v in package_versions().items() if name != "kd_trigger"}


def digest_of(
    cfg: Config, stage: Stage, upstream: dict[str, StageRecord], previous: StageRecord | None
) -> tuple[str, DigestParts, list[Fingerprint]]:
    """The stage's digest (see the module docstring), its parts and the input fingerprints."""
    inputs = [_input_fingerprint(p, previous) for p in stage.inputs(cfg)]
    parts = DigestParts(
        version=__version__,
        code=code_fingerprint(stage.run.partition(":")[0]),
        packages=_result_packages(),
        config=_sha(stage.config(cfg)),
        inputs={fp.path: fp.sha256 for fp in inputs},
        upstream={
            name: _sha({"digest": rec.digest, "outputs": [o.sha256 for o in rec.outputs]})
            for name, rec in upstream.items()
        },
    )
    return _sha({"stage": stage.name, **parts.model_dump()})[:16], parts, inputs


def _why_rerun(previous: StageRecord | None, parts: DigestParts) -> str:
    if previous is None:
        return "no committed outputs"
    old = previous.parts
    reasons = []
    if old.version != parts.version:
        reasons.append(f"kd_trigger {old.version} -> {parts.version}")
    if not old.code:
        reasons.append("its record predates code fingerprints")
    else:
        changed = sorted(
            f for f in old.code.keys() | parts.code.keys() if old.code.get(f) != parts.code.get(f)
        )
        if changed:
            more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
            reasons.append(f"its code changed ({', '.join(changed[:3])}{more})")
    for name in sorted(old.packages.keys() | parts.packages.keys()):
        before, now = old.packages.get(name, "not installed"), parts.packages.get(name, "not installed")
        if old.packages and before != now:
            reasons.append(f"{name} {before} -> {now}")
    if old.config != parts.config:
        reasons.append("its config sections changed")
    for path, sha in parts.inputs.items():
        if old.inputs.get(path) != sha:
            reasons.append(f"input file {path} changed")
    for name, sha in parts.upstream.items():
        if old.upstream.get(name) != sha:
            reasons.append(f"upstream stage {name} changed")
    return "; ".join(reasons) or "its outputs were modified or removed"


def _outputs_intact(record: StageRecord) -> bool:
    return all(path_fingerprint(Path(fp.path))[0] == fp.sha256 for fp in record.outputs)


def _config_identity(cfg: Config) -> str | None:
    return str(Path(cfg.source).resolve()) if cfg.source else None


# -- commits --------------------------------------------------------------------------------------
def _journal_path(cfg: Config, stage: str) -> Path:
    return records_dir(cfg) / f".commit-{stage.replace(':', '-')}.json"


def _commit(cfg: Config, ctx: StageContext, record: StageRecord) -> None:
    journal = _journal_path(cfg, ctx.stage)
    raise_if_terminated()  # a SIGTERM swallowed inside a C callback must still stop the commit
    moves = [[str(staging), str(final)] for final, staging in ctx.staged.items()]
    # The commit point: from here on the new outputs win, even if this process dies.
    write_json_atomic(
        journal,
        {
            "pid": os.getpid(),
            "moves": moves,
            "record": record.model_dump(mode="json"),
            "config": cfg.to_dict(),
        },
    )
    with termination_deferred():
        roll_forward(cfg, journal)


def roll_forward(cfg: Config, journal: Path) -> None:
    """Finish the commit a journal describes (idempotent: safe to repeat after a crash)."""
    data = json.loads(journal.read_text(encoding="utf-8"))
    # Everything is read and checked before anything is touched: a corrupt journal must not withdraw the
    # record of the last complete commit (its outputs would then be refused as of unknown origin).
    record = StageRecord.model_validate(data["record"])
    pid = int(data["pid"])
    moves = [(Path(staging_s), Path(final_s)) for staging_s, final_s in data["moves"]]
    config = data["config"]
    record_path(cfg, record.stage).unlink(missing_ok=True)
    trash: list[Path] = []
    for staging, final in moves:
        old = final.with_name(f".{final.name}.kdt-trash{pid}")
        trash.append(old)
        if staging.exists() or staging.is_symlink():
            if final.exists() or final.is_symlink():
                remove_path(old)
                os.replace(final, old)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging, final)
        elif (final.exists() or final.is_symlink()) and not old.exists():
            # The stage did not produce this declared output: the old one must not survive beside
            # the new record.
            os.replace(final, old)
    write_text_atomic(
        records_dir(cfg) / f"{record.stage.replace(':', '-')}.config.yaml",
        yaml.safe_dump(config, sort_keys=False),
    )
    record.write(record_path(cfg, record.stage))
    for old in trash:
        remove_path(old)
    journal.unlink()


def recover(cfg: Config) -> None:
    """Finish interrupted commits and delete what killed runs left behind (under the run lock)."""
    directory = records_dir(cfg)
    if directory.is_dir():
        for journal in sorted(directory.glob(".commit-*.json")):
            log.warning("finishing the interrupted commit %s", journal.name)
            try:
                roll_forward(cfg, journal)
            except OSError as err:
                log.warning("cannot finish %s (%s); its stage will rerun", journal, err)
                journal.unlink(missing_ok=True)
            except (ValueError, KeyError, TypeError) as err:
                log.warning(
                    "dropped the unreadable commit journal %s (%s); the last complete commit of its stage "
                    "stands",
                    journal,
                    err,
                )
                journal.unlink(missing_ok=True)
    for root in (cfg.artifacts, cfg.firmware):
        clean_dead_temporaries(root, depth=3)


# -- running --------------------------------------------------------------------------------------
def preflight(cfg: Config, graph: dict[str, Stage], order: list[str]) -> None:
    """Every stage's cheap checks, before any work: a bad input fails in seconds, not after training."""
    _check_inputs_outside_outputs(cfg, graph)
    for name in order:
        graph[name].check(cfg)


def _user_files(cfg: Config) -> list[tuple[str, Path]]:
    files = [("data.path", Path(cfg.data.path))] if cfg.data.path else []
    files += [(f"teachers[{i}].path", Path(t.path)) for i, t in enumerate(cfg.teachers) if t.path]
    return [*files, ("budget.profiles", Path(cfg.budget.profiles))]


def _check_inputs_outside_outputs(cfg: Config, graph: dict[str, Stage]) -> None:
    """ConfigError when a file the user gives lies inside a folder a stage replaces: the stage's commit
    (or --force) would delete the user's file."""
    # realpath, not Path.resolve(): it does not raise on a symbolic-link loop (reported later as such).
    outputs = [
        (f"stage {name}", Path(os.path.realpath(out)))
        for name, stage in graph.items()
        for out in stage.outputs(cfg)
    ]
    outputs.append(("the stage runner", Path(os.path.realpath(records_dir(cfg)))))
    for key, path in _user_files(cfg):
        resolved = Path(os.path.realpath(path))
        for who, out in outputs:
            if resolved.is_relative_to(out):
                raise ConfigError(
                    f"{key} {path} lies inside {out}, which {who} replaces when it runs; move the file out of "
                    "the run's folders"
                )


def _run_stage(
    cfg: Config,
    stage: Stage,
    upstream: dict[str, StageRecord],
    digest: str,
    parts: DigestParts,
    inputs: list[Fingerprint],
) -> StageRecord:
    outputs = stage.outputs(cfg)
    ctx = StageContext(cfg, stage.name, upstream, {p: tmp_name(p, "staging") for p in outputs})
    for staging in ctx.staged.values():
        remove_path(staging)
    start = time.perf_counter()
    try:
        result = stage.function()(ctx) or StageResult()
        fingerprints = []
        for final, staging in ctx.staged.items():
            sha, files, size = path_fingerprint(staging)
            fingerprints.append(Fingerprint(path=str(final), sha256=sha, files=files, bytes=size))
        record = StageRecord(
            stage=stage.name,
            digest=digest,
            parts=parts,
            config_path=_config_identity(cfg),
            inputs=inputs,
            outputs=fingerprints,
            finished_utc=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            seconds=round(time.perf_counter() - start, 2),
            versions=package_versions(),
            exit_status=result.exit_status,
            extra=result.extra,
        )
        _commit(cfg, ctx, record)
    except BaseException:
        for staging in ctx.staged.values():
            remove_path(staging)
        ctx.remove_created()
        raise
    finally:
        for staging in ctx.staged.values():
            remove_path(staging)
    return record


def run_targets(
    cfg: Config, targets: Iterable[str], force: bool = False, graph: dict[str, Stage] | None = None
) -> int:
    """Bring ``targets`` (and everything they need) up to date; returns the exit status.

    0: every stage passed; 3: a stage reported a broken trigger budget (its downstream stages still
    run: the report shows the verdict). Outputs made from another config file are refused unless
    ``force``. Raises the stages' errors (KdTriggerError subclasses) unchanged. ``graph`` defaults to
    :func:`build_graph` of ``cfg``.
    """
    graph = graph if graph is not None else build_graph(cfg)
    order = plan(graph, targets)
    preflight(cfg, graph, order)
    status = 0
    with RunLock(cfg.artifacts):
        recover(cfg)
        records: dict[str, StageRecord] = {}
        for name in order:
            stage = graph[name]
            upstream = {n: records[n] for n in stage.needs}
            previous = read_record(cfg, name)
            digest, parts, inputs = digest_of(cfg, stage, upstream, previous)
            if previous is not None and previous.digest == digest and _outputs_intact(previous):
                log.info("stage %s: up to date (digest %s)", name, digest)
                records[name] = previous
                status = max(status, previous.exit_status)
                continue
            _refuse_foreign(cfg, stage, previous, force)
            log.info("stage %s: running (%s)", name, _why_rerun(previous, parts))
            record = _run_stage(cfg, stage, upstream, digest, parts, inputs)
            log.info("stage %s: committed in %.1f s (digest %s)", name, record.seconds, digest)
            records[name] = record
            status = max(status, record.exit_status)
    return status


def _refuse_foreign(cfg: Config, stage: Stage, previous: StageRecord | None, force: bool) -> None:
    """Never silently overwrite the results of another config file (or files no stage recorded)."""
    if force:
        return
    here = _config_identity(cfg)
    if previous is not None:
        if previous.config_path is not None and here is not None and previous.config_path != here:
            raise StaleOutputError(
                f"stage {stage.name}: {cfg.artifacts} holds outputs made from another config "
                f"({previous.config_path}); pick another run.name, or pass --force (make ... FORCE=1) to "
                "overwrite them"
            )
        return
    existing = [p for p in stage.outputs(cfg) if p.exists() and not (p.is_dir() and not any(p.iterdir()))]
    if existing:
        raise StaleOutputError(
            f"stage {stage.name}: {existing[0]} exists but no stage record says what made it; remove it, "
            "pick another run.name, or pass --force (make ... FORCE=1) to overwrite it"
        )


def stage_status(
    cfg: Config, targets: Iterable[str], graph: dict[str, Stage] | None = None
) -> list[tuple[str, str, str]]:
    """(stage, "up to date" | "would run", why) for every stage the targets need; changes nothing.

    Runs the same preflight checks as :func:`run_targets`, so a config that passes here fails no
    input check later.
    """
    graph = graph if graph is not None else build_graph(cfg)
    order = plan(graph, targets)
    preflight(cfg, graph, order)
    records: dict[str, StageRecord] = {}
    rows: list[tuple[str, str, str]] = []
    for name in order:
        stage = graph[name]
        stale = [n for n in stage.needs if n not in records]
        previous = read_record(cfg, name)
        if stale:
            rows.append((name, "would run", f"upstream stage {stale[0]} runs first"))
            continue
        digest, parts, _ = digest_of(cfg, stage, {n: records[n] for n in stage.needs}, previous)
        if previous is not None and previous.digest == digest and _outputs_intact(previous):
            records[name] = previous
            rows.append((name, "up to date", f"digest {digest}, finished {previous.finished_utc}"))
        else:
            rows.append((name, "would run", _why_rerun(previous, parts)))
    return rows
