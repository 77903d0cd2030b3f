"""``artifacts/<run>/stages/<stage>.json``: what a committed stage was made from."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from kd_trigger.contracts.base import Contract


class Fingerprint(Contract):
    """Content of a file or directory tree at the time a stage used or made it."""

    path: str
    sha256: str
    files: int = 0
    bytes: int = 0
    size: int | None = None
    """For input files: size and mtime let an unchanged file skip re-hashing (a 1.2M-jet file is GBs)."""
    mtime_ns: int | None = None


class DigestParts(Contract):
    """What a stage digest is made of, kept so a rerun can say exactly what changed."""

    version: str
    config: str
    inputs: dict[str, str] = Field(default_factory=dict)
    upstream: dict[str, str] = Field(default_factory=dict)
    code: dict[str, str] = Field(default_factory=dict)
    """Source file (relative to the project) -> SHA-256 prefix, for every module the stage's code imports."""
    packages: dict[str, str] = Field(default_factory=dict)
    """Installed versions of the third-party packages that decide results (TensorFlow, hls4ml, ...)."""


class StageRecord(Contract):
    """``artifacts/<run>/stages/<stage>.json``: written in the same commit as the stage's outputs."""

    stage: str
    digest: str
    parts: DigestParts
    config_path: str | None
    inputs: list[Fingerprint] = Field(default_factory=list)
    outputs: list[Fingerprint] = Field(default_factory=list)
    finished_utc: str
    seconds: float
    versions: dict[str, str]
    exit_status: int = 0
    extra: dict[str, Any] = Field(default_factory=dict)
