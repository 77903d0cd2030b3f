"""Run bookkeeping shared by every stage: atomic outputs, up-to-date checks, provenance.

Each stage writes into a temporary sibling and renames it when complete, so a crash never leaves a
half-written result. Each stage also records a ``stage.json`` with a digest of the config sections
it depends on: an unchanged digest means the stage can be skipped, a changed one means the outputs
belong to another configuration and are not overwritten unless the user asks (``--force``).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from kd_trigger.config import Config
from kd_trigger.errors import StaleOutputError

log = logging.getLogger(__name__)

KEY_PACKAGES = (
    "kd_trigger",
    "tensorflow-cpu",
    "qkeras",
    "hls4ml",
    "numpy",
    "h5py",
    "pythia8mc",
    "fastjet",
    "pandas",
    "pydantic",
)


def package_versions() -> dict[str, str]:
    """Installed versions of the packages whose behaviour decides the results."""
    versions = {}
    for name in KEY_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def write_json_atomic(path: Path, payload: Any) -> Path:
    """Write JSON to ``path`` via a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)
    return path


def write_text_atomic(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


@contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """Yield a temporary directory; it replaces ``path`` only if the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old{os.getpid()}")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def stage_digest(cfg: Config, sections: tuple[str, ...], inputs: dict[str, str] | None = None) -> str:
    """Digest of the config sections a stage depends on plus the digests of its input stages."""
    base = cfg.section_hash(*sections)
    if inputs:
        base += json.dumps(inputs, sort_keys=True)
    import hashlib

    return hashlib.sha256(base.encode()).hexdigest()[:16]


def read_stage(directory: Path) -> dict[str, Any] | None:
    marker = directory / "stage.json"
    if not marker.is_file():
        return None
    try:
        return json.loads(marker.read_text())
    except json.JSONDecodeError:
        return None


def check_stage(directory: Path, stage: str, digest: str, force: bool) -> bool:
    """Return True when ``directory`` already holds this stage's outputs for this digest (skip it).

    Raises :class:`StaleOutputError` when it holds outputs of another configuration and ``force`` is
    not set, so a previous run's results are never silently overwritten.
    """
    state = read_stage(directory)
    if state is None:
        if directory.exists() and any(directory.iterdir()) and not force:
            raise StaleOutputError(
                f"{directory} exists but holds no complete '{stage}' outputs; "
                "remove it, pick another run.name, or pass --force (make ... FORCE=1) to overwrite"
            )
        return False
    if state.get("digest") == digest:
        return True
    if not force:
        raise StaleOutputError(
            f"{directory} holds '{stage}' outputs of a different configuration (digest {state.get('digest')} "
            f"!= {digest}); pick another run.name, or pass --force (make ... FORCE=1) to overwrite them"
        )
    return False


def write_stage(
    directory: Path, stage: str, digest: str, cfg: Config, extra: dict[str, Any] | None = None
) -> None:
    """Record provenance: the resolved config, key package versions and the stage digest."""
    write_text_atomic(directory / "config.resolved.yaml", yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    payload = {
        "stage": stage,
        "digest": digest,
        "config_path": cfg.source,
        "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "versions": package_versions(),
        **(extra or {}),
    }
    write_json_atomic(directory / "stage.json", payload)


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    # TensorFlow's C++ start-up chatter is not useful to a trigger engineer.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
