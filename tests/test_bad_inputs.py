"""Every bad input and fault: exit status 2 (or the documented other), one line on stderr, no traceback,
and nothing new in the output locations. Plus property-based fuzzing of configs.

Each case builds its inputs in ``tmp_path`` and names the command to run; the harness snapshots every
file under ``tmp_path`` before and after, so a half-written output anywhere fails the case.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml
from conftest import REPO, write_config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kd_trigger.cli import main
from kd_trigger.config import PARTICLE_FEATURES, parse_config
from kd_trigger.data.dataset import assign_split
from kd_trigger.data.generate import write_jets_file

CI = REPO / "configs" / "ci.yaml"


@dataclass(frozen=True)
class Case:
    name: str
    setup: Callable[[Path], list[str]]
    """Writes the inputs into the directory and returns the command line."""
    message: str
    """A fragment the one error line must contain."""
    exit_code: int = 2


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _config(d: Path, text: str | None = None, **sections) -> str:
    if text is not None:
        path = d / "c.yaml"
        path.write_text(text)
        return str(path)
    return str(write_config(d, "c.yaml", **sections))


def _jets(d: Path, n: int = 40, **override) -> str:
    """A small jet file in our layout (``override`` replaces datasets; ``None`` leaves one out)."""
    cfg = parse_config({"data": {"split": {"train": 0.5, "val": 0.25, "test": 0.25}}})
    rng = np.random.default_rng(0)
    c = np.zeros((n, 12, 4), dtype=np.float32)
    c[:, :3, 1:] = rng.normal(0, 50, (n, 3, 3))
    c[:, :3, 0] = np.linalg.norm(c[:, :3, 1:], axis=2) + 1
    is_signal = (np.arange(n) % 2).astype(np.int8)
    arrays = {
        "constituents": c,
        "n_constituents": np.full(n, 3, np.int32),
        "is_signal": is_signal,
        "jet_p4": np.ones((n, 4)),
        "truth_top_p4": np.zeros((n, 4)),
        "split": assign_split(is_signal, cfg.data.split, 0),
    }
    arrays.update({k: v for k, v in override.items() if v is not None})
    path = d / "jets.h5"
    write_jets_file(path, arrays, cfg)
    return str(path)


def _data_cmd(d: Path, jets: str) -> list[str]:
    return [
        "data",
        "--config",
        _config(d, data={"path": jets, "split": {"train": 0.5, "val": 0.25, "test": 0.25}}),
    ]


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
    return ["status", "--config", _config(d, budget={"profiles": str(d / "budget.yaml")})]


def _split_minus_one(d: Path) -> list[str]:
    """A split dataset of int8 with -1 for a quarter of the jets (they would fall out of every split)."""
    jets = _jets(d)
    with h5py.File(jets, "r+") as f:
        del f["split"]
        f.create_dataset("split", data=np.where(np.arange(40) < 10, -1, 0).astype(np.int8))
    return _data_cmd(d, jets)


def _npy(d: Path, array: np.ndarray, name: str = "x.npy") -> str:
    path = d / name
    np.save(path, array)
    return str(path)


def _npz(d: Path, **arrays: np.ndarray) -> str:
    np.savez(d / "x.npz", **arrays)
    return str(d / "x.npz")


def _model(d: Path) -> str:
    """A small saved QKeras student (8 particles x 7 features)."""
    from kd_trigger.config import StudentConfig
    from kd_trigger.models.students import build_student, save_student

    path = d / "model.h5"
    save_student(build_student(StudentConfig(name="m", kind="mlp", n_particles=8, hidden=(8,))), path)
    return str(path)


def _hls(d: Path, *extra: str) -> list[str]:
    return ["hls", "--model", _model(d), "--out", str(d / "fw"), *extra]


def _fifo(d: Path) -> list[str]:
    path = d / "myproject_csynth.xml"
    os.mkfifo(path)
    return ["fpga-report", str(path)]


CONFIG_CASES = [
    Case(
        "unknown key",
        lambda d: ["status", "--config", _config(d, "run:\n  nmae: x\n")],
        "unknown key 'run.nmae'",
    ),
    Case(
        "wrong type",
        lambda d: ["status", "--config", _config(d, data={"n_jets": "many"})],
        "'data.n_jets' ('many')",
    ),
    Case(
        "out of range",
        lambda d: ["status", "--config", _config(d, distill={"kd_weight": 1.5})],
        "less than or equal to 1",
    ),
    Case("missing config", lambda d: ["status", "--config", str(d / "none.yaml")], "does not exist"),
    Case("config is a directory", lambda d: ["status", "--config", str(d)], "is not a regular file"),
    Case("invalid YAML", lambda d: ["status", "--config", _config(d, "run: [unclosed\n")], "not valid YAML"),
    Case(
        "duplicate section",
        lambda d: ["status", "--config", _config(d, "data:\n  n_jest: 4\ndata:\n  n_jets: 4\n")],
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
        lambda d: ["data", "--seed", "3", "--config", _config(d, "- run\n- data\n")],
        "the top level must be a mapping of sections, got list",
    ),
    Case(
        "section is a scalar, with an override",
        lambda d: ["data", "--n-jets", "100", "--config", _config(d, "data: 5\n")],
        "'data' (5)",
    ),
    Case(
        "override out of range",
        lambda d: ["data", "--n-jets", "-4", "--config", _config(d)],
        "with command-line overrides): invalid value for 'data.n_jets' (-4)",
    ),
    Case(
        "infinite clock",
        lambda d: ["status", "--config", _config(d, "hls:\n  clock_period_ns: .inf\n")],
        "'hls.clock_period_ns' (inf): Input should be a finite number",
    ),
    Case(
        "NaN learning rate",
        lambda d: ["status", "--config", _config(d, "distill:\n  learning_rate: .nan\n")],
        "Input should be a finite number",
    ),
    Case(
        "split does not sum to one",
        lambda d: ["status", "--config", _config(d, data={"split": {"train": 0.9, "val": 0.1, "test": 0.3}})],
        "train + val + test must be 1",
    ),
    Case(
        "extends a missing file",
        lambda d: ["status", "--config", _config(d, "extends: nowhere.yaml\n")],
        "'extends: nowhere.yaml' names",
    ),
    Case(
        "extends itself",
        lambda d: ["status", "--config", _config(d, "extends: c.yaml\n")],
        "'extends' forms a cycle",
    ),
    Case(
        "student names an unknown teacher",
        lambda d: [
            "status",
            "--config",
            _config(d, students=[{"name": "s", "kind": "mlp", "teacher": "nope"}]),
        ],
        "students[0].teacher 'nope' is not a configured teacher",
    ),
    Case(
        "odd n_jets",
        lambda d: ["status", "--config", _config(d, data={"n_jets": 401})],
        "data.n_jets must be even",
    ),
    Case(
        "too wide for the exact reference",
        lambda d: [
            "status",
            "--config",
            _config(
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
            _config(d, students=[{"name": "s", "kind": "mlp", "features": ["mass"]}]),
        ],
        f"allowed: {list(PARTICLE_FEATURES)}",
    ),
    Case(
        "unknown stage",
        lambda d: ["run", "nosuch", "--config", _config(d)],
        "no stage named 'nosuch'; stages of this config: data, teacher, teacher:lorentznet16, teacher:lorentznet64, distill, hls, report, study, scan",
    ),
    Case(
        "ii_cycles below 1",
        lambda d: ["status", "--config", _config(d, hls={"ii_cycles": 0})],
        "'hls.ii_cycles' (0)",
    ),
    Case(
        "ii_cycles above n_particles",
        lambda d: ["status", "--config", _config(d, hls={"ii_cycles": 9})],
        "hls.ii_cycles 9 is above students[1].n_particles (8)",
    ),
    Case(
        "student ii_cycles above n_particles",
        lambda d: [
            "status",
            "--config",
            _config(d, students=[{"name": "s", "kind": "deepsets", "n_particles": 8, "ii_cycles": 9}]),
        ],
        "'students[0].ii_cycles' (9): ii_cycles 9 is above n_particles (8)",
    ),
    Case(
        "folding an MLP student",
        lambda d: [
            "status",
            "--config",
            _config(d, students=[{"name": "s", "kind": "mlp", "ii_cycles": 2}]),
        ],
        "'students[0].ii_cycles' (2): only a Deep Sets student",
    ),
    Case(
        "hls.ii_cycles without a Deep Sets student",
        lambda d: [
            "status",
            "--config",
            _config(d, hls={"ii_cycles": 2}, students=[{"name": "s", "kind": "mlp"}]),
        ],
        "hls.ii_cycles 2: folding applies to Deep Sets students only",
    ),
]

BUDGET_CASES = [
    Case(
        "unknown budget profile",
        lambda d: ["status", "--config", _config(d, budget={"profile": "nosuch"})],
        "no profile 'nosuch'",
    ),
    Case(
        "missing profiles file",
        lambda d: ["status", "--config", _config(d, budget={"profiles": str(d / "none.yaml")})],
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
    Case("data.path missing", lambda d: _data_cmd(d, str(d / "none.h5")), "does not exist"),
    Case(
        "data.path not HDF5",
        lambda d: _data_cmd(d, str((d / "x.h5", (d / "x.h5").write_text("text"))[0])),
        "is not an HDF5 file",
    ),
    Case(
        "data.path empty",
        lambda d: _data_cmd(d, str((d / "x.h5", (d / "x.h5").write_bytes(b""))[0])),
        "is empty (0 bytes)",
    ),
    Case(
        "missing datasets",
        lambda d: _data_cmd(
            d, _raw_h5(d, lambda f: f.create_dataset("constituents", data=np.zeros((4, 3, 4))))
        ),
        "lacks dataset(s) n_constituents, is_signal, split",
    ),
    Case(
        "constituents is a group",
        lambda d: _data_cmd(
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
        lambda d: _data_cmd(d, _jets(d, constituents=np.full((40, 12, 4), np.nan, np.float32))),
        "NaN/inf value(s) in dataset constituents",
    ),
    Case(
        "label 2",
        lambda d: _data_cmd(d, _jets(d, is_signal=np.full(40, 2, np.int8))),
        "is_signal must be 0 or 1",
    ),
    Case(
        "one class",
        lambda d: _data_cmd(d, _jets(d, is_signal=np.ones(40, np.int8))),
        "too few jets to train and test (train has 0 qcd",
    ),
    Case("too few jets", lambda d: _data_cmd(d, _jets(d, n=8)), "val has 1 top; val has 1 qcd"),
    Case(
        "--out while data.path is set",
        lambda d: ["data", "--out", str(d / "x.h5"), "--config", _config(d, data={"path": str(d / "y.h5")})],
        "data --out generates new jets, but data.path is set",
    ),
    Case(
        "--out under a regular file",
        lambda d: [
            "data",
            "--out",
            str((d / "f", (d / "f").write_text(""))[0] / "x.h5"),
            "--config",
            _config(d),
        ],
        "is a file, not a directory",
    ),
    Case(
        "--out where nothing can be created",
        lambda d: ["data", "--out", "/proc/kd_trigger_test/x.h5", "--config", _config(d)],
        "--out directory /proc/kd_trigger_test cannot be created",
    ),
    Case(
        "--out exists",
        lambda d: [
            "data",
            "--out",
            str((d / "x.h5", (d / "x.h5").write_text("earlier"))[0]),
            "--config",
            _config(d),
        ],
        "already exists; choose another --out or pass --force",
    ),
    Case(
        "run directory under a regular file",
        lambda d: [
            "data",
            "--config",
            _config(d, run={"artifacts_dir": str((d / "f", (d / "f").write_text(""))[0] / "a")}),
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
            _config(
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
        lambda d: ["hls", "--out", str(d / "fw"), "--config", _config(d)],
        "only goes with --model",
    ),
    Case("--model without --out", lambda d: ["hls", "--model", str(d / "m.h5")], "needs --out DIR"),
    Case(
        "--out is a file",
        lambda d: ["hls", "--model", str(d / "m.h5"), "--out", str((d / "fw", (d / "fw").write_text(""))[0])],
        "is a file",
    ),
    Case("--data missing", lambda d: _hls(d, "--data", str(d / "none.npy")), "does not exist"),
    Case(
        "--data .txt",
        lambda d: _hls(d, "--data", str((d / "x.txt", (d / "x.txt").write_text("1"))[0])),
        "expected a .npy file or a .npz file",
    ),
    Case(
        "--data .npz with two arrays",
        lambda d: _hls(d, "--data", _npz(d, a=np.zeros((2, 8, 7)), b=np.zeros(2))),
        "holds 2 arrays (a, b); name one",
    ),
    Case(
        "--data .npz unknown array",
        lambda d: _hls(d, "--data", _npz(d, a=np.zeros((2, 8, 7))) + ":b"),
        "has no array 'b'",
    ),
    Case("--data empty", lambda d: _hls(d, "--data", _npy(d, np.zeros((0, 8, 7)))), "the array is empty"),
    Case(
        "--data wrong shape",
        lambda d: _hls(d, "--data", _npy(d, np.zeros((5, 8, 6)))),
        "does not match the model input (N, 8, 7)",
    ),
    Case(
        "--data NaN",
        lambda d: _hls(d, "--data", _npy(d, np.full((5, 8, 7), np.nan))),
        "NaN/inf value(s)",
    ),
    Case(
        "--data text array",
        lambda d: _hls(d, "--data", _npy(d, np.array(["a", "b"]))),
        "expected a real numeric array",
    ),
    Case(
        "folding a saved MLP (hls)",
        lambda d: _hls(d, "--config", _config(d, hls={"ii_cycles": 2})),
        "hls.ii_cycles 2: only a Deep Sets student",
    ),
    Case(
        "folding a saved MLP (rtl)",
        lambda d: [
            "rtl",
            "--model",
            _model(d),
            "--out",
            str(d / "fw"),
            "--config",
            _config(d, hls={"ii_cycles": 2}),
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

ALL_CASES = CONFIG_CASES + BUDGET_CASES + DATA_CASES + MODEL_CASES + REPORT_CASES


@pytest.mark.parametrize("case", ALL_CASES, ids=[c.name for c in ALL_CASES])
def test_bad_input_is_refused_cleanly(case: Case, tmp_path: Path, capsys) -> None:
    argv = case.setup(tmp_path)
    before = _files(tmp_path)
    capsys.readouterr()
    assert main(argv) == case.exit_code
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err
    assert lines[0].startswith(f"kd-trigger {argv[0]}: error: ")
    assert case.message in lines[0]
    assert _files(tmp_path) == before, "the refused command left files behind"


def test_the_cases_cover_every_exit_2_path_listed_in_the_issue() -> None:
    assert len(ALL_CASES) >= 60
    assert len({c.name for c in ALL_CASES}) == len(ALL_CASES)


# -- fuzzing -------------------------------------------------------------------------------------
def _valid_config() -> dict:
    return yaml.safe_load(CI.read_text())


def _leaves(node, path=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _leaves(value, (*path, i))
    else:
        yield path


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


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    mutations=st.lists(
        st.tuples(st.sampled_from(LEAVES), st.sampled_from(["set", "drop", "rename"]), JUNK),
        min_size=1,
        max_size=4,
    )
)
def test_fuzzed_configs_exit_0_or_2(mutations, tmp_path_factory) -> None:
    """Random mutations of a valid config: the config check exits 0 or 2, never crashes."""
    raw = _valid_config()
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
    d = tmp_path_factory.mktemp("fuzz")
    raw.setdefault("run", {}) if isinstance(raw.get("run"), dict) else None
    raw["extends"] = str(CI)
    path = d / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert main(["status", "--config", str(path)]) in (0, 2)


# -- faults --------------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_full_disk_during_data_is_one_line_and_leaves_nothing(tmp_path: Path) -> None:
    """Generation with a file-size limit below the jet file's size (``ulimit -f``, as a full disk acts):
    exit 2, one line, no traceback, no segmentation fault, and no file left in the run directory.

    The file is assembled in memory and written in one piece: h5py writing into a file that fails half
    way used to print tracebacks from its C callbacks and then crash (exit 139)."""
    import resource
    import subprocess
    import sys

    config = write_config(tmp_path, "c.yaml", data={"n_jets": 100, "workers": 1})
    limit = 64 * 1024  # bytes; 100 jets x 200 constituents x 7 features of float32 are ~560 kB

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    before = _files(tmp_path)
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
    assert _files(tmp_path) == before, "the failed run left files behind"
