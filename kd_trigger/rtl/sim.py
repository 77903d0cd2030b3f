"""Cycle-accurate RTL simulation with Verilator: build the emitted Verilog with our own C++ testbench, run
it on integer codes, decode the output port and every probe register back to exact values.

We drive Verilator ourselves (``verilator --cc --exe --build``) instead of da4ml's Python wrapper: the
testbench reads probes inside the design, and the build needs nothing but the pip wheel, make and g++.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kd_trigger.rtl.emit import BitField, Design, Probe
from kd_trigger.rtl.errors import RtlToolError
from kd_trigger.rtl.tools import find_verilator, run_measured

log = logging.getLogger(__name__)

BUILD_DIR = "sim/obj_dir"
# Verilator's C++ is large (MBs for a student) and runs for only n_samples cycles: compile it without
# optimisation. Measured on the 112-64-32-32-2 MLP: -O0 builds in 47 s and runs 10k samples in 0.4 s,
# -O1 in 65 s and 0.1 s.
# CFG_CXXFLAGS_PCH_I: the PyPI wheel's verilated.mk leaves it empty, so split models fail to find
# their precompiled header; "-include" is what a source build configures for g++.
CXX_OPT = "OPT_FAST=-O0 OPT_SLOW=-O0 OPT_GLOBAL=-O0 CFG_CXXFLAGS_PCH_I=-include"


@dataclass
class SimRun:
    """Raw results of one simulation: output values and every probe's values (float64, exact)."""

    outputs: np.ndarray  # (n, n_out)
    probes: dict[str, np.ndarray]  # Keras layer name -> (n, n_elements)
    simulator: str
    build_s: float
    run_s: float
    build_cpu_s: float = 0.0
    run_cpu_s: float = 0.0


def pack_fields(codes: np.ndarray, fields: list[BitField], width: int) -> np.ndarray:
    """Integer codes (n, n_fields) -> little-endian uint32 words (n, ceil(width/32)), two's complement."""
    n = len(codes)
    n_words = max(1, (width + 31) // 32)
    bits = np.zeros((n, n_words * 32), dtype=np.uint8)
    for e, f in enumerate(fields):
        if f.width == 0:
            continue
        raw = codes[:, e].astype(np.int64) & ((np.int64(1) << f.width) - 1)
        shifts = np.arange(f.width, dtype=np.int64)
        bits[:, f.offset : f.offset + f.width] = ((raw[:, None] >> shifts) & 1).astype(np.uint8)
    packed = np.packbits(bits, axis=1, bitorder="little")
    return np.ascontiguousarray(packed).view("<u4").reshape(n, n_words)


def unpack_fields(words: np.ndarray, fields: list[BitField]) -> np.ndarray:
    """Inverse of :func:`pack_fields`: words (n, n_words) -> values (n, n_fields) as exact float64."""
    n = len(words)
    bits = np.unpackbits(np.ascontiguousarray(words, dtype="<u4").view(np.uint8), axis=1, bitorder="little")
    out = np.zeros((n, len(fields)), dtype=np.float64)
    for e, f in enumerate(fields):
        if f.width == 0:
            continue  # da4ml dropped a constant-zero element: it is 0
        weights = np.int64(1) << np.arange(f.width, dtype=np.int64)
        raw = bits[:, f.offset : f.offset + f.width].astype(np.int64) @ weights
        if f.signed:
            raw = np.where(raw >= (np.int64(1) << (f.width - 1)), raw - (np.int64(1) << f.width), raw)
        out[:, e] = raw.astype(np.float64) * 2.0**-f.frac
    return out


def build_simulator(design: Design, out_dir: Path, jobs: int | None = None) -> tuple[Path, float, float]:
    """Verilate and compile the design with its testbench; returns (executable, wall s, CPU s). Logs to logs/."""
    verilator = find_verilator()
    out_dir = Path(out_dir)
    build = out_dir / BUILD_DIR
    shutil.rmtree(build, ignore_errors=True)
    (out_dir / "logs").mkdir(exist_ok=True)
    exe_name = f"tb_{design.top}"
    jobs = jobs or max(1, min(4, os.cpu_count() or 1))
    cmd = [
        verilator.executable,
        "--cc",
        "--exe",
        "--build",
        "-j",
        str(jobs),
        "--top-module",
        design.top,
        "--Mdir",
        BUILD_DIR,
        "-o",
        exe_name,
        # da4ml's generated code is width-exact by construction but trips Verilator's style lints
        "-Wno-fatal",
        "-Wno-lint",
        "-Wno-style",
        "--x-assign",
        "fast",
        "--x-initial",
        "fast",
        "-MAKEFLAGS",
        CXX_OPT,
        *design.verilog,
        design.testbench,
    ]
    log_path = out_dir / "logs" / "verilator.log"
    with open(log_path, "w") as log_file:
        log_file.write(" ".join(cmd) + "\n\n")
        log_file.flush()
        proc, seconds, cpu = run_measured(
            cmd, cwd=out_dir, env=verilator.env, stdout=log_file, stderr=subprocess.STDOUT
        )
    exe = build / exe_name
    if proc.returncode != 0 or not exe.is_file():
        tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
        raise RtlToolError(
            f"Verilator failed to build the simulation (exit {proc.returncode}); see {log_path}: "
            + " | ".join(tail)
        )
    log.info("%s built the simulation in %.1f s (%.0f CPU s)", verilator.version, seconds, cpu)
    return exe, seconds, cpu


def run_simulation(
    design: Design, out_dir: Path, in_codes: np.ndarray, exe: Path
) -> tuple[np.ndarray, dict[str, np.ndarray], float, float]:
    """Run a built testbench on integer input codes (n, n_in); returns outputs, probes, wall and CPU s."""
    out_dir = Path(out_dir)
    work = out_dir / "sim" / "run"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    n = len(in_codes)
    words = pack_fields(in_codes.reshape(n, -1), design.in_fields, design.in_width)
    (work / "inputs.bin").write_bytes(words.tobytes())
    proc, seconds, cpu = run_measured(
        [str(exe.resolve()), "inputs.bin", ".", str(n)], cwd=work, capture_output=True, text=True
    )
    (out_dir / "logs" / "simulation.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise RtlToolError(f"the RTL simulation exited with {proc.returncode}: {proc.stderr.strip()[-300:]}")

    def read(name: str, width: int) -> np.ndarray:
        n_words = max(1, (width + 31) // 32)
        return np.fromfile(work / name, dtype="<u4").reshape(n, n_words)

    outputs = unpack_fields(read("model_out.bin", design.out_width), design.out_fields)
    probes = {}
    for i, p in enumerate(design.probes):
        n_words = max(1, (p.width + 31) // 32)
        words = np.fromfile(work / f"probe{i}.bin", dtype="<u4").reshape(n * p.groups, n_words)
        values = unpack_fields(words, p.fields)
        if p.groups > 1:
            # A folded phi register holds one group of particles per cycle; the groups of a sample in
            # order are its particles, then the empty slots of the last group (dropped).
            per_particle = len(p.fields) * p.groups // (p.rows + _padding(p))
            values = values.reshape(n, -1)[:, : p.rows * per_particle]
        probes[p.layer] = values
    shutil.rmtree(work, ignore_errors=True)  # inputs/outputs are reproducible; keep out_dir small
    return outputs, probes, seconds, cpu


def _padding(p: Probe) -> int:
    """Empty slots of a folded probe's last group: copies x groups - particles."""
    # ``fields`` cover one group of ``copies`` particles; copies = ceil(rows / groups).
    copies = -(-p.rows // p.groups)
    return copies * p.groups - p.rows


def simulate(
    design: Design, out_dir: Path, in_codes: np.ndarray, keep_build: bool = False, jobs: int | None = None
) -> SimRun:
    """Build and run the RTL simulation of ``design`` on input codes; the build is removed unless kept."""
    exe, build_s, build_cpu = build_simulator(design, out_dir, jobs)
    try:
        outputs, probes, run_s, run_cpu = run_simulation(design, out_dir, in_codes, exe)
    finally:
        if not keep_build:
            shutil.rmtree(Path(out_dir) / BUILD_DIR, ignore_errors=True)
    log.info("RTL simulation: %d samples in %.2f s", len(in_codes), run_s)
    return SimRun(outputs, probes, find_verilator().version, build_s, run_s, build_cpu, run_cpu)
