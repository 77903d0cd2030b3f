"""Every bad input and fault: exit status 2 (or the documented other), one line on stderr, no traceback,
and nothing new in the output locations. Plus property-based fuzzing of configs.

Each case builds its inputs in ``tmp_path`` and names the command to run; the harness
(tests/cli_helpers.py) snapshots every file under ``tmp_path`` before and after, so a half-written,
changed or deleted file anywhere fails the case.
"""

from __future__ import annotations

import inspect
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml
from cli_helpers import (
    CI,
    CSYNTH,
    REPORTS,
    Case,
    assert_refused_cleanly,
    config_file,
    data_cmd,
    fifo,
    file_names,
    hls_cmd,
    jets_file,
    jets_with,
    model_file,
    npy_file,
    npz_file,
    status_cmd,
    student_model_file,
    tiny_student,
)
from conftest import REPO, write_config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kd_trigger.cli import main
from kd_trigger.config import (
    MAX_N_JETS,
    PARTICLE_FEATURES,
    RESERVED_ARTIFACT_NAMES,
    RESERVED_FIRMWARE_NAMES,
    StudentConfig,
    load_config,
    parse_config,
)
from kd_trigger.data.generate import check_n_jets, iter_chunks, n_chunks, plan_chunks
from kd_trigger.runs import use_own_numba_cache


def _raw_h5(d: Path, fill: Callable[[h5py.File], None]) -> str:
    path = d / "jets.h5"
    with h5py.File(path, "w") as f:
        fill(f)
    return str(path)


PROFILE = """profiles:
  l1_jet_tagger_vu13p:
    part: xcvu13p-flga2577-2-e
    clock_period_ns: 5
    max_latency_ns: 200
    max_ii_cycles: 5
    max_fraction: {lut: 0.15, ff: 0.15, dsp: 0.15, bram_18k: 0.1, uram: 0.1}
"""


def _budget(d: Path, text: str) -> list[str]:
    (d / "budget.yaml").write_text(text)
    return status_cmd(d, budget={"profiles": str(d / "budget.yaml")})


def _split_minus_one(d: Path) -> list[str]:
    """A split dataset of int8 with -1 for a quarter of the jets (they would fall out of every split)."""
    jets = jets_file(d)
    with h5py.File(jets, "r+") as f:
        del f["split"]
        f.create_dataset("split", data=np.where(np.arange(40) < 10, -1, 0).astype(np.int8))
    return data_cmd(d, jets)


def _fifo(d: Path) -> list[str]:
    return ["fpga-report", str(fifo(d, "myproject_csynth.xml"))]


CONFIG_CASES = [
    Case(
        "unknown key",
        lambda d: status_cmd(d, "run:\n  nmae: x\n"),
        "unknown key 'run.nmae'",
    ),
    Case(
        "wrong type",
        lambda d: status_cmd(d, data={"n_jets": "many"}),
        "'data.n_jets' ('many')",
    ),
    Case(
        "out of range",
        lambda d: status_cmd(d, distill={"kd_weight": 1.5}),
        "less than or equal to 1",
    ),
    Case("missing config", lambda d: ["status", "--config", str(d / "none.yaml")], "does not exist"),
    Case("config is a directory", lambda d: ["status", "--config", str(d)], "is a directory, not a file"),
    Case("invalid YAML", lambda d: status_cmd(d, "run: [unclosed\n"), "not valid YAML"),
    Case(
        "duplicate section",
        lambda d: status_cmd(d, "data:\n  n_jest: 4\ndata:\n  n_jets: 4\n"),
        "key 'data' appears twice (lines 1 and 3)",
    ),
    Case(
        "not UTF-8",
        lambda d: [
            "status",
            "--config",
            str((d / "c.yaml", (d / "c.yaml").write_bytes(b"run:\n  name: \xff\n"))[0]),
        ],
        "not UTF-8 text (byte 0xff at line 2)",
    ),
    Case(
        "top level is a list, with an override",
        lambda d: ["data", "--seed", "3", "--config", config_file(d, "- run\n- data\n")],
        "the top level must be a mapping of sections, got list",
    ),
    Case(
        "section is a scalar, with an override",
        lambda d: ["data", "--n-jets", "100", "--config", config_file(d, "data: 5\n")],
        "'data' (5)",
    ),
    Case(
        "override out of range",
        lambda d: ["data", "--n-jets", "-4", "--config", config_file(d)],
        "with command-line overrides): invalid value for 'data.n_jets' (-4)",
    ),
    Case(
        "infinite clock",
        lambda d: status_cmd(d, "hls:\n  clock_period_ns: .inf\n"),
        "'hls.clock_period_ns' (inf): Input should be a finite number",
    ),
    Case(
        "NaN learning rate",
        lambda d: status_cmd(d, "distill:\n  learning_rate: .nan\n"),
        "Input should be a finite number",
    ),
    Case(
        "split does not sum to one",
        lambda d: status_cmd(d, data={"split": {"train": 0.9, "val": 0.1, "test": 0.3}}),
        "train + val + test must be 1",
    ),
    Case(
        "extends a missing file",
        lambda d: status_cmd(d, "extends: nowhere.yaml\n"),
        "'extends: nowhere.yaml' names",
    ),
    Case(
        "extends itself",
        lambda d: status_cmd(d, "extends: c.yaml\n"),
        "'extends' forms a cycle",
    ),
    Case(
        "changes a student by a name no inherited student has",
        lambda d: status_cmd(d, students={"deepset": {"teacher": "lorentznet64"}}),
        "'students.deepset' changes no inherited entry (inherited students: ",
    ),
    Case(
        "student names an unknown teacher",
        lambda d: [
            "status",
            "--config",
            config_file(d, students=[{"name": "s", "kind": "mlp", "teacher": "nope"}]),
        ],
        "students[0].teacher 'nope' is not a configured teacher",
    ),
    Case(
        "odd n_jets",
        lambda d: status_cmd(d, data={"n_jets": 401}),
        "data.n_jets must be even",
    ),
    Case(
        "too wide for the exact reference",
        lambda d: [
            "status",
            "--config",
            config_file(
                d,
                students=[
                    {
                        "name": "w",
                        "kind": "mlp",
                        "n_particles": 16,
                        "quant": {"input_bits": 32, "input_int": 12, "weight_bits": 16, "weight_int": 4},
                    }
                ],
            ),
        ],
        "needs 55 bits, more than the 53",
    ),
    Case(
        "too wide a feature list",
        lambda d: [
            "status",
            "--config",
            config_file(d, students=[{"name": "s", "kind": "mlp", "features": ["mass"]}]),
        ],
        f"allowed: {list(PARTICLE_FEATURES)}",
    ),
    Case(
        "unknown stage",
        lambda d: ["run", "nosuch", "--config", config_file(d)],
        "no stage named 'nosuch'; stages of this config: data, teacher, teacher:lorentznet16, teacher:lorentznet64, distill, hls4ml, rtl, hls, report, study, scan",
    ),
    Case(
        "ii_cycles below 1",
        lambda d: status_cmd(d, hls={"ii_cycles": 0}),
        "'hls.ii_cycles' (0)",
    ),
    Case(
        "ii_cycles above n_particles",
        lambda d: status_cmd(d, hls={"ii_cycles": 9}),
        "hls.ii_cycles 9 is above students[1].n_particles (8)",
    ),
    Case(
        "student ii_cycles above n_particles",
        lambda d: [
            "status",
            "--config",
            config_file(d, students=[{"name": "s", "kind": "deepsets", "n_particles": 8, "ii_cycles": 9}]),
        ],
        "'students[0].ii_cycles' (9): ii_cycles 9 is above n_particles (8)",
    ),
    Case(
        "folding an MLP student",
        lambda d: [
            "status",
            "--config",
            config_file(d, students=[{"name": "s", "kind": "mlp", "ii_cycles": 2}]),
        ],
        "'students[0].ii_cycles' (2): only a Deep Sets student",
    ),
    Case(
        "hls.ii_cycles without a Deep Sets student",
        lambda d: [
            "status",
            "--config",
            config_file(d, hls={"ii_cycles": 2}, students=[{"name": "s", "kind": "mlp"}]),
        ],
        "hls.ii_cycles 2: folding applies to Deep Sets students only",
    ),
]

BUDGET_CASES = [
    Case(
        "unknown budget profile",
        lambda d: status_cmd(d, budget={"profile": "nosuch"}),
        "no profile 'nosuch'",
    ),
    Case(
        "missing profiles file",
        lambda d: status_cmd(d, budget={"profiles": str(d / "none.yaml")}),
        "does not exist",
    ),
    Case(
        "max_fraction as a list",
        lambda d: _budget(
            d, PROFILE.replace("{lut: 0.15, ff: 0.15, dsp: 0.15, bram_18k: 0.1, uram: 0.1}", "[0.15, 0.1]")
        ),
        "invalid value for 'profiles.l1_jet_tagger_vu13p.max_fraction' ([0.15, 0.1])",
    ),
    Case(
        "max_fraction entry as a list",
        lambda d: _budget(d, PROFILE.replace("lut: 0.15", "lut: [0.15]")),
        "'profiles.l1_jet_tagger_vu13p.max_fraction.lut' ([0.15])",
    ),
    Case(
        "available as a list",
        lambda d: _budget(d, PROFILE + "    available: [1, 2]\n"),
        "'profiles.l1_jet_tagger_vu13p.available' ([1, 2])",
    ),
    Case(
        "budget file not UTF-8",
        lambda d: _bad_budget_bytes(d),
        "not UTF-8 text",
    ),
]


def _bad_budget_bytes(d: Path) -> list[str]:
    cmd = _budget(d, PROFILE)
    (d / "budget.yaml").write_bytes(PROFILE.encode().replace(b"part: ", b"part: \xfe"))
    return cmd


DATA_CASES = [
    Case("data.path missing", lambda d: data_cmd(d, str(d / "none.h5")), "does not exist"),
    Case(
        "data.path not HDF5",
        lambda d: data_cmd(d, str((d / "x.h5", (d / "x.h5").write_text("text"))[0])),
        "is not an HDF5 file",
    ),
    Case(
        "data.path empty",
        lambda d: data_cmd(d, str((d / "x.h5", (d / "x.h5").write_bytes(b""))[0])),
        "is empty (0 bytes)",
    ),
    Case(
        "missing datasets",
        lambda d: data_cmd(
            d, _raw_h5(d, lambda f: f.create_dataset("constituents", data=np.zeros((4, 3, 4))))
        ),
        "lacks dataset(s) n_constituents, is_signal, split",
    ),
    Case(
        "constituents is a group",
        lambda d: data_cmd(
            d,
            _raw_h5(
                d,
                lambda f: (
                    f.create_group("constituents"),
                    [f.create_dataset(k, data=np.zeros(4)) for k in ("n_constituents", "is_signal", "split")],
                ),
            ),
        ),
        "constituents must be HDF5 dataset(s), found a group",
    ),
    Case(
        "split of -1",
        _split_minus_one,
        "dataset split must hold 0 (train), 1 (val) or 2 (test) for every jet; found 10 other value(s) (first -1",
    ),
    Case(
        "NaN constituent",
        lambda d: data_cmd(d, jets_file(d, constituents=np.full((40, 12, 4), np.nan, np.float32))),
        "NaN/inf value(s) in dataset constituents",
    ),
    Case(
        "label 2",
        lambda d: data_cmd(d, jets_file(d, is_signal=np.full(40, 2, np.int8))),
        "is_signal must be 0 or 1",
    ),
    Case(
        "one class",
        lambda d: data_cmd(d, jets_file(d, is_signal=np.ones(40, np.int8))),
        "too few jets to train and test (train has 0 qcd",
    ),
    Case("too few jets", lambda d: data_cmd(d, jets_file(d, n=8)), "val has 1 top; val has 1 qcd"),
    Case(
        "--out while data.path is set",
        lambda d: [
            "data",
            "--out",
            str(d / "x.h5"),
            "--config",
            config_file(d, data={"path": str(d / "y.h5")}),
        ],
        "data --out generates new jets, but data.path is set",
    ),
    Case(
        "--out under a regular file",
        lambda d: [
            "data",
            "--out",
            str((d / "f", (d / "f").write_text(""))[0] / "x.h5"),
            "--config",
            config_file(d),
        ],
        "is a file, not a directory",
    ),
    Case(
        "--out where nothing can be created",
        lambda d: ["data", "--out", "/proc/kd_trigger_test/x.h5", "--config", config_file(d)],
        "--out directory /proc/kd_trigger_test cannot be created",
    ),
    Case(
        "--out exists",
        lambda d: [
            "data",
            "--out",
            str((d / "x.h5", (d / "x.h5").write_text("earlier"))[0]),
            "--config",
            config_file(d),
        ],
        "already exists; choose another --out or pass --force",
    ),
    Case(
        "run directory under a regular file",
        lambda d: [
            "data",
            "--config",
            config_file(d, run={"artifacts_dir": str((d / "f", (d / "f").write_text(""))[0] / "a")}),
        ],
        "is a file, not a directory",
    ),
]

MODEL_CASES = [
    Case(
        "teacher file missing",
        lambda d: [
            "status",
            "--config",
            config_file(
                d,
                teachers=[{"name": "t", "kind": "path", "path": str(d / "t.h5")}],
                students=[{"name": "s", "kind": "mlp"}],
            ),
        ],
        "teacher 't': file",
    ),
    Case(
        "model file missing",
        lambda d: ["hls", "--model", str(d / "m.h5"), "--out", str(d / "fw")],
        "does not exist",
    ),
    Case(
        "model file is not a model",
        lambda d: [
            "hls",
            "--model",
            str((d / "m.h5", (d / "m.h5").write_text("x"))[0]),
            "--out",
            str(d / "fw"),
        ],
        "cannot be loaded as a QKeras model",
    ),
    Case(
        "--out without --model",
        lambda d: ["hls", "--out", str(d / "fw"), "--config", config_file(d)],
        "only goes with --model",
    ),
    Case("--model without --out", lambda d: ["hls", "--model", str(d / "m.h5")], "needs --out DIR"),
    Case(
        "--out is a file",
        lambda d: ["hls", "--model", str(d / "m.h5"), "--out", str((d / "fw", (d / "fw").write_text(""))[0])],
        "is a file",
    ),
    Case("--data missing", lambda d: hls_cmd(d, "--data", str(d / "none.npy")), "does not exist"),
    Case(
        "--data .txt",
        lambda d: hls_cmd(d, "--data", str((d / "x.txt", (d / "x.txt").write_text("1"))[0])),
        "expected a .npy file or a .npz file",
    ),
    Case(
        "--data .npz with two arrays",
        lambda d: hls_cmd(d, "--data", npz_file(d, a=np.zeros((2, 8, 7)), b=np.zeros(2))),
        "holds 2 arrays (a, b); name one",
    ),
    Case(
        "--data .npz unknown array",
        lambda d: hls_cmd(d, "--data", npz_file(d, a=np.zeros((2, 8, 7))) + ":b"),
        "has no array 'b'",
    ),
    Case(
        "--data empty", lambda d: hls_cmd(d, "--data", npy_file(d, np.zeros((0, 8, 7)))), "the array is empty"
    ),
    Case(
        "--data wrong shape",
        lambda d: hls_cmd(d, "--data", npy_file(d, np.zeros((5, 8, 6)))),
        "does not match the model input (N, 8, 7)",
    ),
    Case(
        "--data NaN",
        lambda d: hls_cmd(d, "--data", npy_file(d, np.full((5, 8, 7), np.nan))),
        "NaN/inf value(s)",
    ),
    Case(
        "--data text array",
        lambda d: hls_cmd(d, "--data", npy_file(d, np.array(["a", "b"]))),
        "expected a real numeric array",
    ),
    Case(
        "folding a saved MLP (hls)",
        lambda d: hls_cmd(d, "--config", config_file(d, hls={"ii_cycles": 2})),
        "hls.ii_cycles 2: only a Deep Sets student",
    ),
    Case(
        "folding a saved MLP (rtl)",
        lambda d: [
            "rtl",
            "--model",
            student_model_file(d),
            "--out",
            str(d / "fw"),
            "--config",
            config_file(d, hls={"ii_cycles": 2}),
        ],
        "ii_cycles 2: only a Deep Sets student",
    ),
]

REPORT_CASES = [
    Case("fpga-report missing", lambda d: ["fpga-report", str(d / "none")], "no such file or directory"),
    Case("fpga-report FIFO", _fifo, "not a regular file or a directory"),
    Case(
        "fpga-report empty file",
        lambda d: ["fpga-report", str((d / "r.rpt", (d / "r.rpt").write_text(""))[0])],
        "the file is empty",
    ),
    Case(
        "fpga-report unknown format",
        lambda d: ["fpga-report", str((d / "r.rpt", (d / "r.rpt").write_text("hello"))[0])],
        "unknown report format",
    ),
    Case(
        "fpga-report truncated XML",
        lambda d: ["fpga-report", str(REPO / "tests/fixtures/reports/broken/truncated_csynth.xml")],
        "truncated_csynth.xml",
    ),
    Case("fpga-report empty directory", lambda d: ["fpga-report", str(d)], "no report found"),
]


def _student_cmd(d: Path, **student) -> list[str]:
    return [
        "status",
        "--config",
        config_file(d, students=[{"name": "w", "kind": "mlp", "hidden": [16, 8], **student}]),
    ]


# Issue 20: pruning and per-layer precision, refused at the config/check stage before any work.
PRUNING_PRECISION_CASES = [
    Case("sparsity of 1", lambda d: _student_cmd(d, sparsity=1.0), "'students[0].sparsity' (1.0)"),
    Case("negative sparsity", lambda d: _student_cmd(d, sparsity=-0.25), "'students[0].sparsity' (-0.25)"),
    Case(
        "sparsity schedule ends before it begins",
        lambda d: _student_cmd(d, sparsity=0.5, sparsity_begin=0.6, sparsity_end=0.4),
        "sparsity_begin (0.6) must be below sparsity_end (0.4)",
    ),
    Case(
        "per-layer override of a missing layer",
        lambda d: _student_cmd(d, quant={"layers": {"dense_5": {"weight_bits": 4}}}),
        "quant.layers.dense_5 names no layer of this student; valid names: dense_0, relu_0, dense_1, relu_1, output",
    ),
    Case(
        "per-layer override too wide for the exact reference",
        lambda d: _student_cmd(
            d,
            n_particles=16,
            quant={
                "input_bits": 32,
                "input_int": 12,
                "weight_bits": 8,
                "weight_int": 4,
                "layers": {"dense_0": {"weight_bits": 16, "weight_int": 4}},
            },
        ),
        "needs 55 bits, more than the 53 that the exact reference (QKeras in float64) can hold; lower "
        "students[name=w].quant.layers.dense_0",
    ),
]


# -- issue 18: the second hardening round ----------------------------------------------------------
def _four_vectors(d: Path, fill: Callable[[np.ndarray], None]) -> list[str]:
    """A jet file whose constituents ``fill`` rewrites in place (only the first 3 rows of a jet are real)."""
    jets = jets_file(d)
    with h5py.File(jets, "r+") as f:
        c = f["constituents"][...]
        fill(c)
        f["constituents"][...] = c
    return data_cmd(d, jets)


def _negative_energies(c: np.ndarray) -> None:
    c[:, :3, 0] *= -1


def _swapped_columns(c: np.ndarray) -> None:
    c[:, :3] = c[:, :3, ::-1].copy()  # (pz, py, px, E): "E" is pz, mostly below |p|


def _huge(c: np.ndarray) -> None:
    c[5, 0, 1] = 1e35


def _nan_weight_model() -> object:
    model = tiny_student()
    layer = model.get_layer("dense_0")
    kernel, bias = layer.get_weights()
    kernel[0, 0] = np.nan
    layer.set_weights([kernel, bias])
    return model


def _input_only_model() -> object:
    import tensorflow as tf

    x = tf.keras.Input(shape=(8, 7), name="particles")
    return tf.keras.Model(x, x)


def _two_input_model() -> object:
    import tensorflow as tf
    from qkeras import QActivation, QDense

    a = tf.keras.Input(shape=(4,), name="a")
    b = tf.keras.Input(shape=(4,), name="b")
    x = tf.keras.layers.Concatenate()([a, b])
    x = QActivation("quantized_bits(8,3,alpha=1)")(x)
    y = QDense(
        2, kernel_quantizer="quantized_bits(8,1,alpha=1)", bias_quantizer="quantized_bits(8,3,alpha=1)"
    )(x)
    return tf.keras.Model([a, b], y)


def _odd_model_cmd(d: Path, command: str, build: Callable[[], object]) -> list[str]:
    return [command, "--model", model_file(d, build), "--out", str(d / "fw")]


def _csynth_with(d: Path, lut: str) -> list[str]:
    text = CSYNTH.read_text()
    start = text.index("<LUT>") + len("<LUT>")
    path = d / "myproject_csynth.xml"
    path.write_text(text[:start] + lut + text[text.index("</LUT>", start) :])
    return ["fpga-report", str(path)]


def _utilization_cut(d: Path) -> list[str]:
    text = (REPORTS / "vitis_hls_2025_jet" / "vivado_synth.rpt").read_text()
    cut = text.index("| CLB LUTs*") + len("| CLB LUTs*               |")
    path = d / "vivado_synth.rpt"
    path.write_text(text[:cut])
    return ["fpga-report", str(path)]


def _extends_chain(d: Path, depth: int) -> list[str]:
    (d / "c0.yaml").write_text("run:\n  name: deep\n")
    for i in range(1, depth):
        (d / f"c{i}.yaml").write_text(f"extends: c{i - 1}.yaml\n")
    return ["status", "--config", str(d / f"c{depth - 1}.yaml")]


def _firmware_kept(d: Path, *argv: str) -> list[str]:
    """A student's firmware already on disk (with its report): a refused run must leave it as it is."""
    folder = d / "firmware" / "ci" / "report_plots"
    folder.mkdir(parents=True)
    (folder / "hls_report.json").write_text("{}")
    return [*argv, "--config", config_file(d, students=[{"name": "report_plots", "kind": "mlp"}])]


def _loop(d: Path, name: str) -> Path:
    path = d / name
    path.symlink_to(path)
    return path


def _teacher_fails(d: Path) -> list[str]:
    bad = d / "t.h5"
    bad.write_text("not a model")
    config = config_file(
        d,
        data={"path": jets_file(d), "split": {"train": 0.5, "val": 0.25, "test": 0.25}},
        teachers=[{"name": "t", "kind": "path", "path": str(bad), "n_particles": 12}],
        students=[{"name": "s", "kind": "mlp", "n_particles": 12}],
    )
    return ["run", "teacher:t", "--config", config]


ISSUE18_CASES = [
    # 1. student names that are the run's own folders
    Case(
        "student named report_plots",
        lambda d: status_cmd(d, students=[{"name": "report_plots", "kind": "mlp"}]),
        "students[0].name 'report_plots' is reserved",
    ),
    Case(
        "student named best, with --force",
        lambda d: [
            "distill",
            "--force",
            "--config",
            config_file(d, students=[{"name": "best", "kind": "mlp"}]),
        ],
        "students[0].name 'best' is reserved",
    ),
    Case(
        "student named Best (case-insensitive file systems)",
        lambda d: status_cmd(d, students=[{"name": "Best", "kind": "mlp"}]),
        "firmware/<run>/best is written by another stage",
    ),
    Case(
        "students differing only in case",
        lambda d: [
            "status",
            "--config",
            config_file(d, students=[{"name": "mlp", "kind": "mlp"}, {"name": "MLP", "kind": "mlp"}]),
        ],
        "student names must differ in more than letter case",
    ),
    Case(
        "report --force over a student named report_plots keeps its firmware",
        lambda d: _firmware_kept(d, "report", "--force"),
        "'report_plots' is reserved",
    ),
    Case(
        "hls --force over a student named report_plots keeps its firmware",
        lambda d: _firmware_kept(d, "hls", "--force"),
        "'report_plots' is reserved",
    ),
    # 2. unknown FPGA part
    Case(
        "unknown hls.part",
        lambda d: status_cmd(d, hls={"part": "xcfoo-bar-1-e"}),
        "hls.part 'xcfoo-bar-1-e' is not a known FPGA part; known parts: xcvu13p-flga2577-2-e",
    ),
    Case(
        "unknown hls.part with hls --model",
        lambda d: [*hls_cmd(d), "--config", config_file(d, hls={"part": "xcfoo-bar-1-e"})],
        "is not a known FPGA part",
    ),
    Case(
        "unknown hls.part with rtl",
        lambda d: [
            "rtl",
            "--model",
            student_model_file(d),
            "--out",
            str(d / "fw"),
            "--config",
            config_file(d, hls={"part": "xcfoo"}),
        ],
        "is not a known FPGA part",
    ),
    # 3. dtype and rank of every dataset
    Case(
        "string constituents",
        lambda d: data_cmd(d, jets_with(d, "constituents", np.full((40, 12, 4), b"x"))),
        "dataset constituents has dtype |S1, expected numbers of shape (N, M, 4)",
    ),
    Case(
        "scalar n_constituents",
        lambda d: data_cmd(d, jets_with(d, "n_constituents", np.int32(3))),
        "dataset n_constituents has shape (), expected (N,)",
    ),
    Case(
        "(N, 1) is_signal",
        lambda d: data_cmd(d, jets_with(d, "is_signal", (np.arange(40) % 2).astype(np.int8)[:, None])),
        "dataset is_signal has shape (40, 1), expected (N,)",
    ),
    Case(
        "(N, 1) split",
        lambda d: data_cmd(d, jets_with(d, "split", np.zeros((40, 1), np.uint8))),
        "dataset split has shape (40, 1), expected (N,)",
    ),
    Case(
        "jet_p4 of 3 columns",
        lambda d: data_cmd(d, jets_with(d, "jet_p4", np.ones((40, 3)))),
        "dataset jet_p4 has shape (40, 3), expected (N, 4)",
    ),
    Case(
        "negative n_constituents",
        lambda d: data_cmd(d, jets_with(d, "n_constituents", np.full(40, -1, np.int32))),
        "n_constituents must hold whole numbers 0..12",
    ),
    Case(
        "string labels",
        lambda d: data_cmd(d, jets_with(d, "is_signal", np.array([b"top", b"qcd"] * 20))),
        "dataset is_signal has dtype |S3",
    ),
    # 4. unusable four-vectors
    Case(
        "all energies negative",
        lambda d: _four_vectors(d, _negative_energies),
        "no jet has a particle with positive energy (120 non-zero constituent row(s) have E <= 0",
    ),
    Case(
        "E < |p| everywhere (columns in another order)",
        lambda d: _four_vectors(d, _swapped_columns),
        "particles have E < |p| (not a four-momentum)",
    ),
    Case(
        "a value of 1e35",
        lambda d: _four_vectors(d, _huge),
        "1 four-vector value(s) above 1e+08 GeV in magnitude (first in jet 5)",
    ),
    # 5. hls --model and rtl share the model checks
    Case(
        "hls --model with a NaN weight",
        lambda d: _odd_model_cmd(d, "hls", _nan_weight_model),
        "1 NaN/inf value(s)",
    ),
    Case(
        "rtl with a NaN weight", lambda d: _odd_model_cmd(d, "rtl", _nan_weight_model), "1 NaN/inf value(s)"
    ),
    Case(
        "hls --model of an Input only",
        lambda d: _odd_model_cmd(d, "hls", _input_only_model),
        "the model has no Dense/Conv1D layer (its layers: InputLayer)",
    ),
    Case(
        "rtl of an Input only",
        lambda d: _odd_model_cmd(d, "rtl", _input_only_model),
        "the model has no Dense/Conv1D layer",
    ),
    Case(
        "hls --model with two inputs",
        lambda d: _odd_model_cmd(d, "hls", _two_input_model),
        "the model has 2 input(s) and 1 output(s)",
    ),
    Case(
        "rtl with two inputs",
        lambda d: _odd_model_cmd(d, "rtl", _two_input_model),
        "the model has 2 input(s) and 1 output(s)",
    ),
    # 6. fpga-report numbers
    Case("fpga-report <LUT>inf</LUT>", lambda d: _csynth_with(d, "inf"), "is 'inf', not a finite count"),
    Case(
        "fpga-report <LUT>1e400</LUT>", lambda d: _csynth_with(d, "1e400"), "is '1e400', not a finite count"
    ),
    Case("fpga-report <LUT>-5</LUT>", lambda d: _csynth_with(d, "-5"), "is '-5', not a finite count"),
    Case(
        "fpga-report utilization cut mid-row",
        _utilization_cut,
        "the 'CLB LUTs' row ends before its Used column",
    ),
    # 7. n_jets
    Case(
        "n_jets of 10^12",
        lambda d: status_cmd(d, data={"n_jets": 10**12}),
        "'data.n_jets' (1000000000000): Input should be less than or equal to 10000000",
    ),
    # 8. extends
    Case(
        "extends chain of 1500 files", lambda d: _extends_chain(d, 1500), "chain is more than 32 files deep"
    ),
    # 9. per-layer options naming no layer
    Case(
        "hls --model --reuse nolayer=2",
        lambda d: hls_cmd(d, "--reuse", "nolayer=2"),
        "names 'nolayer', not a layer of the model; its layers: particles, input_quant",
    ),
    Case(
        "hls --model --precision nolayer=...",
        lambda d: hls_cmd(d, "--precision", "nolayer=ap_fixed<16,6>"),
        "names 'nolayer', not a layer of the model",
    ),
    Case(
        "rtl --reuse nolayer=2",
        lambda d: ["rtl", "--model", student_model_file(d), "--out", str(d / "fw"), "--reuse", "nolayer=2"],
        "names 'nolayer', not a layer of the model",
    ),
    Case(
        "hls.layers.nolayer in a config",
        lambda d: status_cmd(d, hls={"layers": {"nolayer": {"reuse_factor": 2}}}),
        "names 'nolayer', not a layer of any student; its layers: particles, input_quant, flatten, dense_0",
    ),
    Case(
        "hls --reuse nolayer=2 on the run",
        lambda d: ["hls", "--reuse", "nolayer=2", "--config", config_file(d)],
        "not a layer of any student",
    ),
    # minor
    Case(
        "refused hls --model leaves no new parent folder",
        lambda d: ["hls", "--model", str(d / "none.h5"), "--out", str(d / "a" / "b")],
        "does not exist",
    ),
    Case(
        "refused rtl leaves no new parent folder",
        lambda d: ["rtl", "--model", str(d / "none.h5"), "--out", str(d / "a" / "b")],
        "does not exist",
    ),
    Case(
        "rtl takes --input-precision",
        lambda d: [
            "rtl",
            "--model",
            student_model_file(d),
            "--out",
            str(d / "fw"),
            "--input-precision",
            "ap_fixed<12,4>",
            "--reuse",
            "nolayer=1",
        ],
        "names 'nolayer'",
    ),
    Case(
        "config is a symlink loop",
        lambda d: ["status", "--config", str(_loop(d, "c.yaml"))],
        "c.yaml is a symbolic link loop; pass CONFIG=path/to.yaml",
    ),
    Case(
        "--model is a directory",
        lambda d: ["hls", "--model", str((d / "m.h5", (d / "m.h5").mkdir())[0]), "--out", str(d / "fw")],
        "m.h5 is a directory, not a file",
    ),
    Case(
        "--model is a symlink loop",
        lambda d: ["rtl", "--model", str(_loop(d, "m.h5")), "--out", str(d / "fw")],
        "m.h5 is a symbolic link loop",
    ),
    Case(
        "data.path is a symlink loop",
        lambda d: data_cmd(d, str(_loop(d, "jets.h5"))),
        "jets.h5 is a symbolic link loop",
    ),
    Case(
        "fpga-report of a symlink loop",
        lambda d: ["fpga-report", str(_loop(d, "r.rpt"))],
        "r.rpt is a symbolic link loop",
    ),
]

ALL_CASES = (
    CONFIG_CASES
    + BUDGET_CASES
    + DATA_CASES
    + MODEL_CASES
    + REPORT_CASES
    + ISSUE18_CASES
    + PRUNING_PRECISION_CASES
)


@pytest.mark.parametrize("case", ALL_CASES, ids=[c.name for c in ALL_CASES])
def test_bad_input_is_refused_cleanly(case: Case, tmp_path: Path, capsys) -> None:
    assert_refused_cleanly(case, tmp_path, capsys)


def test_every_case_has_a_unique_name_and_a_message_to_match() -> None:
    """An empty ``message`` would make the harness's ``case.message in line`` check pass on any error."""
    assert len({c.name for c in ALL_CASES}) == len(ALL_CASES)
    assert all(c.message.strip() for c in ALL_CASES), [c.name for c in ALL_CASES if not c.message.strip()]


def test_a_failed_teacher_stage_leaves_no_teachers_folder(tmp_path: Path, capsys) -> None:
    """The data stage commits (it ran before); the failed teacher stage leaves no empty teachers/."""
    argv = _teacher_fails(tmp_path)
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not a readable Keras model" in err[0], err
    assert (tmp_path / "artifacts" / "ci" / "data").is_dir()
    assert not (tmp_path / "artifacts" / "ci" / "teachers").exists()


def test_an_unknown_part_with_available_resources_is_accepted(tmp_path: Path) -> None:
    """The way out the unknown-part error names: the budget profile's part with its resources."""
    profile = PROFILE.replace("xcvu13p-flga2577-2-e", "xcfoo-bar-1-e") + (
        "    available: {lut: 100000, ff: 200000, dsp: 500, bram_18k: 100, uram: 0}\n"
    )
    (tmp_path / "budget.yaml").write_text(profile)
    config = config_file(
        tmp_path, hls={"part": "xcfoo-bar-1-e"}, budget={"profiles": str(tmp_path / "budget.yaml")}
    )
    assert main(["status", "--config", config]) == 0


def test_a_few_odd_four_vectors_are_warned_about_with_counts(tmp_path: Path, caplog) -> None:
    """A minority of odd particles is not refused, but counted in a warning."""

    def some_odd(c: np.ndarray) -> None:
        c[0, :3] = 0  # jet 0 empty
        c[1, 0, 0] = -c[1, 0, 0]  # one non-zero row with E < 0 (read as padding)
        c[2, 1, 0] = 0.5 * np.linalg.norm(c[2, 1, 1:])  # one particle with E < |p|

    argv = _four_vectors(tmp_path, some_odd)
    with caplog.at_level("WARNING", logger="kd_trigger"):
        assert main(argv) == 0
    text = caplog.text
    assert "1 of 40 jets have no particle with E > 0" in text
    assert "1 non-zero constituent row(s) with E <= 0 are read as padding" in text
    assert "1 of 116 particles have E < |p|" in text


def test_a_data_warning_is_logged_once_per_process(tmp_path: Path, caplog) -> None:
    """Every stage of a run reads the data file: its warnings appear once, not once per stage."""
    from kd_trigger.data.readers import check_four_vectors

    c = np.zeros((3, 2, 4))
    c[:2, 0] = (10.0, 1.0, 2.0, 3.0)  # jet 2 empty
    with caplog.at_level("WARNING", logger="kd_trigger"):
        for _ in range(3):
            check_four_vectors(c, tmp_path / "once.h5")
    assert caplog.text.count("1 of 3 jets have no particle with E > 0") == 1


def test_sigterm_swallowed_inside_a_stage_still_commits_nothing(tmp_path: Path, monkeypatch, capsys) -> None:
    """A SIGTERM whose KeyboardInterrupt is lost (as inside llvmlite's ctypes callback during numba's JIT)
    must still stop the run before its commit: exit 130, no record, no output."""
    from kd_trigger import stages

    def graph(cfg):
        return {
            "a": stages.Stage(
                "a", (), lambda c: 1, lambda c: [c.artifacts / "a.txt"], f"{__name__}:_swallowing_stage"
            )
        }

    monkeypatch.setattr(stages, "build_graph", graph)
    config = config_file(tmp_path)
    assert signal.getsignal(signal.SIGTERM) is not None
    capsys.readouterr()
    assert main(["run", "a", "--config", config]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert not (tmp_path / "artifacts" / "ci" / "a.txt").exists()
    assert not list((tmp_path / "artifacts" / "ci" / "stages").glob("a*.json"))
    # The next run is not affected by the earlier termination.
    monkeypatch.setattr(
        stages,
        "build_graph",
        lambda cfg: {
            "a": stages.Stage(
                "a", (), lambda c: 2, lambda c: [c.artifacts / "a.txt"], f"{__name__}:_plain_stage"
            )
        },
    )
    assert main(["run", "a", "--config", config]) == 0
    assert (tmp_path / "artifacts" / "ci" / "a.txt").read_text() == "done"


def _swallowing_stage(ctx):
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(1000):  # the handler runs at the next bytecode boundary
            pass
    except KeyboardInterrupt:
        pass  # what a C library's callback wrapper does: print "Exception ignored" and go on
    ctx.out(ctx.cfg.artifacts / "a.txt").write_text("done")


def _plain_stage(ctx):
    ctx.out(ctx.cfg.artifacts / "a.txt").write_text("done")


def test_chunks_are_planned_lazily_and_counted_without_planning() -> None:
    """status checks n_jets without holding a plan; generation counts chunks arithmetically."""
    big = parse_config({"data": {"n_jets": MAX_N_JETS}})
    assert check_n_jets(big) == MAX_N_JETS // 2
    assert n_chunks(big) == 2 * MAX_N_JETS // 2 // big.data.generator.chunk_jets
    assert inspect.isgenerator(iter_chunks(big))
    small = parse_config({"data": {"n_jets": 1002, "generator": {"chunk_jets": 250}}})
    assert n_chunks(small) == len(plan_chunks(small)) == 6


def test_numba_caches_outside_site_packages(tmp_path: Path, monkeypatch) -> None:
    """kd_trigger.rtl points numba's cache at a folder of ours unless the user chose one."""
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    use_own_numba_cache()
    assert os.environ["NUMBA_CACHE_DIR"] == str(tmp_path / "kd_trigger" / "numba")
    monkeypatch.setenv("NUMBA_CACHE_DIR", "/somewhere/else")
    use_own_numba_cache()
    assert os.environ["NUMBA_CACHE_DIR"] == "/somewhere/else"


def test_importing_the_rtl_package_sets_the_numba_cache() -> None:
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    code = "import os, kd_trigger.rtl; print(os.environ['NUMBA_CACHE_DIR'])"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True, cwd=REPO
    )
    assert "site-packages" not in done.stdout and done.stdout.strip(), done.stdout


def test_help_is_for_users(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert ":func:" not in out and "``" not in out
    assert "Exit status: 0 success, 1" in out


def test_make_help_lists_every_target() -> None:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    makefile = (REPO / "Makefile").read_text()
    targets = re.findall(r"^([a-z][a-z-]*):.*## ", makefile, re.MULTILINE)
    done = subprocess.run(["make", "-s", "help"], cwd=REPO, capture_output=True, text=True, check=True)
    listed = [line.split()[0] for line in done.stdout.splitlines() if line.strip()]
    assert listed == targets and "help" in targets


def test_reserved_names_cover_every_firmware_output() -> None:
    """Every path the stages write into firmware/<run>/ besides the students' folders is a reserved name,
    so no student can share a folder with another stage's output."""
    from kd_trigger.stages import RECORDS_DIR, build_graph

    cfg = parse_config({})
    students = {s.name for s in cfg.students}
    outputs = [p for stage in build_graph(cfg).values() for p in stage.outputs(cfg)]
    firmware = {p.name for p in outputs if p.parent == cfg.firmware and p.name not in students}
    assert firmware == set(RESERVED_FIRMWARE_NAMES)
    # artifacts/<run>/ may be the same folder (run.artifacts_dir == run.firmware_dir): its folders too
    folders = {
        p.relative_to(cfg.artifacts).parts[0]
        for p in outputs
        if p.is_relative_to(cfg.artifacts) and "." not in p.name
    } | {RECORDS_DIR}
    assert folders == set(RESERVED_ARTIFACT_NAMES)


def test_student_layer_names_match_the_built_students() -> None:
    """hls.layers is checked against names computed without TensorFlow: they must be the real ones."""
    from kd_trigger.models.students import build_student, student_layer_names

    for spec in (
        StudentConfig(name="m", kind="mlp", n_particles=4, hidden=(4, 3)),
        StudentConfig(name="d", kind="deepsets", n_particles=4, hidden=(4, 3), head=(5, 2)),
    ):
        assert student_layer_names(spec) == [layer.name for layer in build_student(spec).layers]


# -- fuzzing -------------------------------------------------------------------------------------
def _valid_config() -> dict:
    """configs/ci.yaml resolved onto its base, every key written out: a config that needs no ``extends``,
    so a dropped key falls back to the schema's default instead of coming back from ci.yaml."""
    return load_config(CI).to_dict()


def _leaves(node, path=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _leaves(value, (*path, i))
    else:
        yield path


def _mutate(raw: dict, mutations) -> dict:
    """Apply (path, "set" | "drop" | "rename", value) mutations in place; a path no longer there is skipped."""
    for path, action, value in mutations:
        node = raw
        for key in path[:-1]:
            if (
                isinstance(node, dict)
                and key in node
                or isinstance(node, list)
                and isinstance(key, int)
                and key < len(node)
            ):
                node = node[key]
            else:
                break
        else:
            leaf = path[-1]
            if isinstance(node, dict) and leaf in node:
                if action == "set":
                    node[leaf] = value
                elif action == "drop":
                    del node[leaf]
                else:
                    node[f"{leaf}_x"] = node.pop(leaf)
            elif isinstance(node, list) and isinstance(leaf, int) and leaf < len(node) and action == "set":
                node[leaf] = value
    return raw


LEAVES = list(_leaves(_valid_config()))
JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


def test_a_fuzzed_drop_really_drops_the_key(tmp_path: Path) -> None:
    """The fuzzer's config is self-contained: a dropped key takes the schema default, not ci.yaml's value."""
    assert "extends" not in _valid_config()
    raw = _mutate(_valid_config(), [(("run", "name"), "drop", None), (("data", "n_jets"), "drop", None)])
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    cfg, default = load_config(path), parse_config({})
    assert load_config(CI).run.name == "ci" and cfg.run.name == default.run.name != "ci"
    assert cfg.data.n_jets == default.data.n_jets != load_config(CI).data.n_jets


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    mutations=st.lists(
        st.tuples(st.sampled_from(LEAVES), st.sampled_from(["set", "drop", "rename"]), JUNK),
        min_size=1,
        max_size=4,
    )
)
def test_fuzzed_configs_exit_0_or_2(mutations, tmp_path_factory, capsys) -> None:
    """Random mutations of a valid config: the config check exits 0, or 2 with one line naming the problem
    on stderr (no traceback); it never crashes."""
    raw = _mutate(_valid_config(), mutations)
    d = tmp_path_factory.mktemp("fuzz")
    path = d / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    capsys.readouterr()
    status = main(["status", "--config", str(path)])
    err = capsys.readouterr().err
    assert status in (0, 2), err
    if status == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("kd-trigger status: error: "), err
        assert "Traceback" not in err and len(lines[0]) > len("kd-trigger status: error: ") + 10, err


# -- faults --------------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_full_disk_during_data_is_one_line_and_leaves_nothing(tmp_path: Path) -> None:
    """Generation with a file-size limit below the jet file's size (``ulimit -f``, as a full disk acts):
    exit 2, one line, no traceback, no segmentation fault, and no file left in the run directory.

    The file is assembled in memory and written in one piece: h5py writing into a file that fails half
    way used to print tracebacks from its C callbacks and then crash (exit 139)."""
    config = write_config(tmp_path, "c.yaml", data={"n_jets": 100, "workers": 1})
    limit = 64 * 1024  # bytes; 100 jets x 200 constituents x 7 features of float32 are ~560 kB

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    before = file_names(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "kd_trigger", "data", "--config", str(config)],
        capture_output=True,
        text=True,
        preexec_fn=small_files,
        timeout=600,
        check=False,
    )
    lines = [line for line in done.stderr.splitlines() if line.startswith("kd-trigger")]
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert len(lines) == 1 and lines[0].startswith("kd-trigger data: error: "), done.stderr[-2000:]
    assert "cannot write" in lines[0] and "jets.h5: file too large" in lines[0], lines[0]
    assert file_names(tmp_path) == before, "the failed run left files behind"
