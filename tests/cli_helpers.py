"""The bad-input harness shared by tests/test_bad_inputs.py and tests/test_bad_inputs_probe.py.

A :class:`Case` writes its inputs into a test's folder and names the command line;
:func:`assert_refused_cleanly` runs it and checks what every refusal must give: the documented exit status, exactly one stderr line
``kd-trigger <cmd>: error: ...`` containing the case's message, no traceback, and no file under the folder
created, changed or deleted. The builders make the small inputs the cases start from.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from conftest import REPO, write_config

from kd_trigger.cli import main
from kd_trigger.config import StudentConfig, parse_config
from kd_trigger.data.dataset import assign_split
from kd_trigger.data.generate import write_jets_file

CI = REPO / "configs" / "ci.yaml"
REPORTS = REPO / "tests" / "fixtures" / "reports"
CSYNTH = REPORTS / "vitis_hls_2025_jet" / "myproject_prj" / "solution1" / "syn" / "report" / "csynth.xml"
"""A real Vitis HLS synthesis report (the fpga-report cases edit copies of it)."""


@dataclass(frozen=True)
class Case:
    name: str
    setup: Callable[[Path], list[str]]
    """Writes the inputs into the directory and returns the command line."""
    message: str
    """A fragment the one error line must contain."""
    exit_code: int = 2


# -- the check ----------------------------------------------------------------------------------------
def file_names(root: Path) -> set[str]:
    """Every path under ``root``, relative to it."""
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` with its bytes (None for folders and special files): a changed or
    deleted file fails the case too, not only a new one."""
    out: dict[str, bytes | None] = {}
    for p in root.rglob("*"):
        key = str(p.relative_to(root))
        out[key] = p.read_bytes() if p.is_file() and not p.is_symlink() else None
    return out


def assert_refused_cleanly(case: Case, root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Build ``case`` in ``root``, run it, and assert a clean refusal (see the module docstring)."""
    argv = case.setup(root)
    before = snapshot(root)
    capsys.readouterr()
    assert main(argv) == case.exit_code
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err
    assert lines[0].startswith(f"kd-trigger {argv[0]}: error: ")
    assert case.message in lines[0]
    assert snapshot(root) == before, "the refused command created, changed or deleted files"


# -- inputs -------------------------------------------------------------------------------------------
def config_file(d: Path, text: str | None = None, **sections) -> str:
    """``d/c.yaml``: ``text`` as written, else configs/ci.yaml with ``sections`` on top."""
    if text is not None:
        path = d / "c.yaml"
        path.write_text(text)
        return str(path)
    return str(write_config(d, "c.yaml", **sections))


def status_cmd(d: Path, text: str | None = None, **sections) -> list[str]:
    """``status`` on :func:`config_file`: checks the config alone."""
    return ["status", "--config", config_file(d, text, **sections)]


def jets_file(d: Path, n: int = 40, **override) -> str:
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


def jets_with(d: Path, name: str, array: np.ndarray) -> str:
    """A valid jet file whose dataset ``name`` is replaced by ``array`` (any dtype and shape)."""
    jets = jets_file(d)
    with h5py.File(jets, "r+") as f:
        del f[name]
        f.create_dataset(name, data=array)
    return jets


def data_cmd(d: Path, jets: str) -> list[str]:
    """``data`` reading the jet file (or folder) ``jets``."""
    return [
        "data",
        "--config",
        config_file(d, data={"path": jets, "split": {"train": 0.5, "val": 0.25, "test": 0.25}}),
    ]


def npy_file(d: Path, array: np.ndarray, name: str = "x.npy") -> str:
    """``array`` saved as ``d/name``."""
    path = d / name
    np.save(path, array)
    return str(path)


def npz_file(d: Path, **arrays: np.ndarray) -> str:
    """``arrays`` saved as ``d/x.npz``."""
    np.savez(d / "x.npz", **arrays)
    return str(d / "x.npz")


def tiny_student() -> Any:
    """A small QKeras MLP student (8 particles x 7 features, one hidden layer of 8)."""
    from kd_trigger.models.students import build_student  # TensorFlow: only for the cases that need it

    return build_student(StudentConfig(name="m", kind="mlp", n_particles=8, hidden=(8,)))


def student_model_file(d: Path) -> str:
    """:func:`tiny_student` saved as ``d/model.h5``."""
    from kd_trigger.models.students import save_student  # TensorFlow, as above

    path = d / "model.h5"
    save_student(tiny_student(), path)
    return str(path)


def model_file(d: Path, build: Callable[[], object]) -> str:
    """The Keras model ``build`` returns, saved as ``d/odd.h5``."""
    path = d / "odd.h5"
    build().save(path)  # type: ignore[attr-defined]
    return str(path)


def hls_cmd(d: Path, *extra: str) -> list[str]:
    """``hls --model`` on :func:`student_model_file`, firmware into ``d/fw``."""
    return ["hls", "--model", student_model_file(d), "--out", str(d / "fw"), *extra]


def fifo(d: Path, name: str) -> Path:
    """A named pipe ``d/name``: reading it would block forever."""
    path = d / name
    os.mkfifo(path)
    return path
