"""The one runner that walks a stage graph (:mod:`kd_trigger.stages` assembles the pipeline's).

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

import json
import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path

import yaml

from kd_trigger import __version__
from kd_trigger.config import Config
from kd_trigger.contracts import DigestParts, Fingerprint, StageRecord
from kd_trigger.errors import ConfigError, StaleOutputError
from kd_trigger.fingerprint import code_fingerprint, result_packages, sha_of
from kd_trigger.layout import RunLayout
from kd_trigger.runs import (
    RunLock,
    clean_dead_temporaries,
    numeric_settings,
    package_versions,
    path_fingerprint,
    raise_if_terminated,
    remove_path,
    termination_deferred,
    tmp_name,
    write_json_atomic,
    write_text_atomic,
)
from kd_trigger.stage_types import Stage, StageContext, StageResult

log = logging.getLogger(__name__)


Graph = dict[str, Stage]
"""A stage graph: stages by name, in a valid execution order (upstream first)."""


def plan(graph: Graph, targets: Iterable[str]) -> list[str]:
    """The stages the targets need, each once, upstream first (the graph's own order).

    A target that names a group (``teacher``) means every stage of the group (``teacher:<name>``).
    """
    wanted: set[str] = set()

    def visit(name: str) -> None:
        if name not in graph:
            known = ", ".join(public_names(graph))
            raise ConfigError(f"no stage named {name!r}; stages of this config: {known}")
        if name in wanted:
            return
        wanted.add(name)
        for need in graph[name].needs:
            visit(need)

    for target in targets:
        members = [name for name in graph if name.startswith(f"{target}:")]
        if target not in graph and members:
            for name in members:
                visit(name)
        else:
            visit(target)
    return [name for name in graph if name in wanted]


def public_names(graph: Graph) -> list[str]:
    """The targets of ``graph``: its stages, each group (``teacher``) named before its first member."""
    names: list[str] = []
    for name in graph:
        group, sep, _ = name.partition(":")
        if sep and group not in names:
            names.append(group)
        names.append(name)
    return names


# -- records --------------------------------------------------------------------------------------
def records_dir(cfg: Config) -> Path:
    """``artifacts/<run>/stages``: the records of committed stages (and commit journals)."""
    return RunLayout.of(cfg).records_dir


def record_path(cfg: Config, stage: str) -> Path:
    """The committed record of ``stage`` (``teacher:x`` is stored as ``teacher-x.json``)."""
    return RunLayout.of(cfg).record(stage)


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


def read_records(cfg: Config, stages: Iterable[str] | None = None) -> list[StageRecord]:
    """The committed records of ``stages`` that exist, in that order; without ``stages`` every record
    of the run, in the order the stages finished."""
    if stages is not None:
        return [r for name in stages if (r := read_record(cfg, name)) is not None]
    directory = records_dir(cfg)
    paths = sorted(directory.glob("*.json")) if directory.is_dir() else []
    found = []
    for path in paths:
        try:
            found.append(StageRecord.model_validate_json(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue  # not a record (or unreadable: that stage reruns and rewrites it)
    return sorted(found, key=lambda r: r.finished_utc)


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


def digest_of(
    cfg: Config, stage: Stage, upstream: dict[str, StageRecord], previous: StageRecord | None
) -> tuple[str, DigestParts, list[Fingerprint]]:
    """The stage's digest (see the module docstring), its parts and the input fingerprints."""
    inputs = [_input_fingerprint(p, previous) for p in stage.inputs(cfg)]
    parts = DigestParts(
        version=__version__,
        code=code_fingerprint(stage.module),
        packages=result_packages(),
        config=sha_of(stage.config(cfg)),
        inputs={fp.path: fp.sha256 for fp in inputs},
        upstream={
            name: sha_of({"digest": rec.digest, "outputs": [o.sha256 for o in rec.outputs]})
            for name, rec in upstream.items()
        },
    )
    return sha_of({"stage": stage.name, **parts.model_dump()})[:16], parts, inputs


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
        absent = "unset" if name.isupper() else "not installed"  # upper case: a NUMERICS_ENV variable
        before, now = old.packages.get(name, absent), parts.packages.get(name, absent)
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
def journal_path(cfg: Config, stage: str) -> Path:
    """The commit journal of ``stage`` (present only between a commit point and its completion)."""
    return records_dir(cfg) / f".commit-{stage.replace(':', '-')}.json"


def _commit(cfg: Config, ctx: StageContext, record: StageRecord) -> None:
    journal = journal_path(cfg, ctx.stage)
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
        RunLayout.of(cfg).record_config(record.stage),
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
def preflight(cfg: Config, graph: Graph, order: list[str]) -> None:
    """Every stage's cheap checks, before any work: a bad input fails in seconds, not after training."""
    _check_inputs_outside_outputs(cfg, graph)
    for name in order:
        graph[name].check(cfg)


def _user_files(cfg: Config) -> list[tuple[str, Path]]:
    files = [("data.path", Path(cfg.data.path))] if cfg.data.path else []
    files += [(f"teachers[{i}].path", Path(t.path)) for i, t in enumerate(cfg.teachers) if t.path]
    return [*files, ("budget.profiles", Path(cfg.budget.profiles))]


def _check_inputs_outside_outputs(cfg: Config, graph: Graph) -> None:
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
    graph: tuple[str, ...] = (),
) -> StageRecord:
    outputs = stage.outputs(cfg)
    ctx = StageContext(cfg, stage.name, upstream, {p: tmp_name(p, "staging") for p in outputs}, graph=graph)
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
            versions={**package_versions(), **numeric_settings()},
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


def run_targets(cfg: Config, targets: Iterable[str], graph: Graph, force: bool = False) -> int:
    """Bring ``targets`` (and everything they need) up to date; returns the exit status.

    0: every stage passed; 3: a stage reported a broken trigger budget (its downstream stages still
    run: the report shows the verdict). Outputs made from another config file are refused unless
    ``force``. Raises the stages' errors (KdTriggerError subclasses) unchanged.
    """
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
            record = _run_stage(cfg, stage, upstream, digest, parts, inputs, tuple(graph))
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


def stage_status(cfg: Config, targets: Iterable[str], graph: Graph) -> list[tuple[str, str, str]]:
    """(stage, "up to date" | "would run", why) for every stage the targets need; changes nothing.

    Runs the same preflight checks as :func:`run_targets`, so a config that passes here fails no
    input check later.
    """
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
