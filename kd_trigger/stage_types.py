"""The types a stage module needs to declare itself: :class:`StageDecl`, :class:`StageContext`,
:class:`StageResult`.

A stage module declares ``STAGE`` (a :class:`StageDecl`) next to its function, as hls4ml's flows declare
``requires`` next to their passes: the stages it needs, the config sections its outputs depend on, the
files it writes and reads, a cheap check. :mod:`kd_trigger.stages` assembles the graph from those
declarations and :mod:`kd_trigger.runner` walks it. This module imports nothing of the stage modules,
the runner or the graph: stage modules import it, never the other way round.

Not result code: editing this module reruns no stage (see :data:`kd_trigger.fingerprint.NOT_RESULT_CODE`).
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kd_trigger.config import Config
from kd_trigger.contracts import StageRecord


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
    graph: tuple[str, ...] = ()
    """Every stage of the graph being run, in order (the report lists their records)."""

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
ConfigPart = Callable[[Config], Any]
Paths = Callable[[Config], list[Path]]


def no_paths(cfg: Config) -> list[Path]:
    """No external input files."""
    return []


def no_check(cfg: Config) -> None:
    """Nothing to check before the run."""


def always(cfg: Config) -> bool:
    """The stage is part of every config's graph."""
    return True


@dataclass(frozen=True)
class Stage:
    """One node of a graph, resolved for one config.

    ``config(cfg)`` returns the JSON-able parts of the config the outputs depend on; ``inputs(cfg)`` the
    external files read; ``outputs(cfg)`` every path the stage writes; ``check(cfg)`` fails fast (before
    any work of any stage) on input the stage would refuse later; ``run`` is the stage function, or its
    name as ``module:function`` (imported only when the stage runs).
    """

    name: str
    needs: tuple[str, ...]
    config: ConfigPart
    outputs: Paths
    run: str | StageFn
    inputs: Paths = no_paths
    check: Callable[[Config], None] = no_check
    description: str = ""

    @property
    def module(self) -> str:
        """The module of the stage function: its code fingerprint starts there."""
        if isinstance(self.run, str):
            return self.run.partition(":")[0]
        return self.run.__module__

    def function(self) -> StageFn:
        """The stage function (imported now when ``run`` names it)."""
        if not isinstance(self.run, str):
            return self.run
        module, _, name = self.run.partition(":")
        fn: StageFn = getattr(importlib.import_module(module), name)
        return fn


@dataclass(frozen=True)
class StageDecl:
    """What a stage module declares as ``STAGE`` beside its function.

    ``needs`` are stage names, or a function of the config for stages whose upstream depends on it (the
    teachers a student distils from); ``when`` leaves the stage out of a config's graph (``hls.flows``).
    The other fields are those of :class:`Stage`.
    """

    name: str
    run: StageFn
    config: ConfigPart
    outputs: Paths
    needs: tuple[str, ...] | Callable[[Config], tuple[str, ...]] = ()
    inputs: Paths = no_paths
    check: Callable[[Config], None] = no_check
    description: str = ""
    when: Callable[[Config], bool] = always

    def resolve(self, cfg: Config) -> Stage:
        """The graph node of this stage for ``cfg``."""
        needs = self.needs if isinstance(self.needs, tuple) else self.needs(cfg)
        return Stage(
            self.name,
            needs,
            self.config,
            self.outputs,
            self.run,
            inputs=self.inputs,
            check=self.check,
            description=self.description,
        )


def teacher_stage_name(teacher: str) -> str:
    """The stage that trains (or checks) the teacher named ``teacher``."""
    return f"teacher:{teacher}"


def dump(value: Any) -> Any:
    """A config section as JSON-able data (for a stage's config part)."""
    return value.model_dump(mode="json") if hasattr(value, "model_dump") else value
