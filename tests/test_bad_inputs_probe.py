"""Issue 18's own probe: bad inputs of classes no other test covered, each written down with its expected
outcome (exit status 2 and a fragment of the one error line) BEFORE it was first run.

Same harness as tests/test_bad_inputs.py (tests/cli_helpers.py): one stderr line ``kd-trigger <cmd>: error:
...``, no traceback, and no file created, changed or deleted under ``tmp_path``. The fragments name what the
user must fix.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml
from cli_helpers import (
    CI,
    CSYNTH,
    Case,
    assert_refused_cleanly,
    config_file,
    data_cmd,
    fifo,
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


def _variable_length_model() -> object:
    import tensorflow as tf
    from qkeras import QActivation, QConv1D

    x = tf.keras.Input(shape=(None, 7), name="particles")
    y = QActivation("quantized_bits(8,3,alpha=1)", name="q")(x)
    y = QConv1D(
        4,
        1,
        kernel_quantizer="quantized_bits(8,1,alpha=1)",
        bias_quantizer="quantized_bits(8,3,alpha=1)",
        name="phi",
    )(y)
    y = tf.keras.layers.GlobalAveragePooling1D(name="pool")(y)
    return tf.keras.Model(x, y)


def _weights_only(d: Path) -> list[str]:
    path = d / "w.h5"
    tiny_student().save_weights(path)
    return ["hls", "--model", str(path), "--out", str(d / "fw")]


def _model_inside_out(d: Path, command: str) -> list[str]:
    """--model (the user's only copy) inside the --out directory that --force would replace."""
    out = d / "fw"
    out.mkdir()
    model = Path(student_model_file(d))
    inside = out / "model.h5"
    model.rename(inside)
    return [command, "--model", str(inside), "--out", str(out), "--force"]


def _data_inside_out(d: Path) -> list[str]:
    out = d / "fw"
    out.mkdir()
    data = npy_file(out, np.zeros((3, 8, 7)))
    return ["hls", "--model", student_model_file(d), "--out", str(out), "--data", data, "--force"]


def _data_path_inside_data_output(d: Path) -> list[str]:
    """data.path inside artifacts/<run>/data/, the folder the data stage replaces: --force would delete it."""
    folder = d / "artifacts" / "ci" / "data"
    folder.mkdir(parents=True)
    jets = Path(jets_file(d))
    inside = folder / "jets.h5"
    jets.rename(inside)
    return [
        "data",
        "--force",
        "--config",
        config_file(d, data={"path": str(inside), "split": {"train": 0.5, "val": 0.25, "test": 0.25}}),
    ]


def _teacher_inside_its_output(d: Path) -> list[str]:
    folder = d / "artifacts" / "ci" / "teachers" / "t"
    folder.mkdir(parents=True)
    (folder / "model.h5").write_text("a model")
    return status_cmd(
        d,
        teachers=[{"name": "t", "kind": "path", "path": str(folder / "model.h5")}],
        students=[{"name": "s", "kind": "mlp"}],
    )


def _alias_bomb(d: Path) -> list[str]:
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for i in range(1, 8):
        refs = ", ".join([f"*a{i - 1}"] * 10)
        lines.append(f"a{i}: &a{i} [{refs}]")
    lines.append("run:\n  name: *a7")
    return status_cmd(d, "\n".join(lines) + "\n")


def _entity_bomb(d: Path) -> list[str]:
    entities = ['<!ENTITY e0 "lol">'] + [f'<!ENTITY e{i} "{f"&e{i - 1};" * 10}">' for i in range(1, 10)]
    text = f"<?xml version='1.0'?><!DOCTYPE p [{''.join(entities)}]><profile>&e9;</profile>"
    path = d / "myproject_csynth.xml"
    path.write_text(text)
    return ["fpga-report", str(path)]


def _csynth_text(d: Path, old: str, new: str) -> list[str]:
    path = d / "myproject_csynth.xml"
    path.write_text(CSYNTH.read_text().replace(old, new, 1))
    return ["fpga-report", str(path)]


def _two_projects(d: Path) -> list[str]:
    for top in ("a", "b"):
        (d / top).mkdir()
        (d / top / f"{top}_csynth.xml").write_text(CSYNTH.read_text())
    return ["fpga-report", str(d)]


def _split_dir(d: Path, missing: str | None = None, garbage: str | None = None) -> list[str]:
    folder = d / "tq"
    folder.mkdir()
    for name in ("train.h5", "val.h5", "test.h5"):
        if name == missing:
            continue
        if name == garbage:
            (folder / name).write_text("not hdf5")
        else:
            (folder / name).write_bytes(Path(jets_file(d)).read_bytes())
    (d / "jets.h5").unlink()
    return data_cmd(d, str(folder))


def _dangling_link(d: Path) -> list[str]:
    jets = jets_file(d)
    with h5py.File(jets, "r+") as f:
        del f["is_signal"]
        f["is_signal"] = h5py.SoftLink("/nowhere")
    return data_cmd(d, jets)


def _public_string_labels(d: Path) -> list[str]:
    import pandas as pd

    columns = {f"{c}_{i}": np.full(8, 1.0 + i) for i in range(2) for c in ("E", "PX", "PY", "PZ")}
    frame = pd.DataFrame(columns)
    frame["E_0"] = 10.0
    frame["E_1"] = 10.0
    frame["is_signal_new"] = ["top", "qcd"] * 4
    path = d / "public.h5"
    frame.to_hdf(path, key="table", mode="w")
    return data_cmd(d, str(path))


def _extends_bad_yaml(d: Path) -> list[str]:
    (d / "base.yaml").write_text("run: [unclosed\n")
    return status_cmd(d, "extends: base.yaml\n")


PROBE_CASES = [
    # -- configs: names and folders ---------------------------------------------------------------
    Case("run.name with a slash", lambda d: status_cmd(d, run={"name": "a/b"}), "'run.name' ('a/b')"),
    Case("run.name '..'", lambda d: status_cmd(d, run={"name": ".."}), "'run.name' ('..')"),
    Case(
        "student named like an artifacts folder (stages)",
        lambda d: status_cmd(d, students=[{"name": "stages", "kind": "mlp"}]),
        "students[0].name 'stages' is reserved",
    ),
    Case(
        "student named data with artifacts_dir == firmware_dir",
        lambda d: status_cmd(
            d,
            run={"artifacts_dir": str(d / "out"), "firmware_dir": str(d / "out")},
            students=[{"name": "data", "kind": "mlp"}],
        ),
        "students[0].name 'data' is reserved",
    ),
    Case(
        "empty artifacts_dir",
        lambda d: status_cmd(d, run={"artifacts_dir": ""}),
        "'run.artifacts_dir' (''): ",
    ),
    Case(
        "data.path inside the data stage's own output, with --force",
        _data_path_inside_data_output,
        "lies inside",
    ),
    Case("teacher file inside the teacher stage's own output", _teacher_inside_its_output, "lies inside"),
    Case(
        "hls --model inside --out, with --force", lambda d: _model_inside_out(d, "hls"), "lies inside --out"
    ),
    Case(
        "rtl --model inside --out, with --force", lambda d: _model_inside_out(d, "rtl"), "lies inside --out"
    ),
    Case("hls --data inside --out, with --force", _data_inside_out, "lies inside --out"),
    # -- configs: structure -----------------------------------------------------------------------
    Case("YAML alias bomb", _alias_bomb, "aliases"),
    Case("non-string top-level key", lambda d: status_cmd(d, "1: x\n"), "unknown key '1'"),
    Case(
        "extends is a list",
        lambda d: status_cmd(d, "extends: [a.yaml, b.yaml]\n"),
        "'extends' must be the path of another config",
    ),
    Case(
        "extends is empty",
        lambda d: status_cmd(d, "extends: ''\n"),
        "'extends' must be the path of another config",
    ),
    Case(
        "extends names a directory",
        lambda d: status_cmd(d, f"extends: {d}\n"),
        "which is a directory, not a file",
    ),
    Case("extends a file of invalid YAML", _extends_bad_yaml, "base.yaml: not valid YAML"),
    Case(
        "config is a FIFO",
        lambda d: ["status", "--config", str(fifo(d, "c.yaml"))],
        "c.yaml is not a regular file",
    ),
    Case(
        "extends a FIFO",
        lambda d: (fifo(d, "base.yaml"), status_cmd(d, "extends: base.yaml\n"))[1],
        "base.yaml, which is not a regular file",
    ),
    Case(
        "budget profiles file is a FIFO",
        lambda d: status_cmd(d, budget={"profiles": str(fifo(d, "budget.yaml"))}),
        "budget.yaml is not a regular file",
    ),
    # -- configs: values across sections ----------------------------------------------------------
    Case(
        "a test split of 0",
        lambda d: status_cmd(d, data={"split": {"train": 0.5, "val": 0.5, "test": 0.0}}),
        "'data.split.test' (0.0): Input should be greater than 0",
    ),
    Case("no student", lambda d: status_cmd(d, students=[]), "at least one student is required"),
    Case(
        "students as a mapping",
        lambda d: status_cmd(d, students={"name": "s", "kind": "mlp"}),
        "'students' is one entry's fields (name, kind) without the list dash",
    ),
    Case(
        "a repeated feature",
        lambda d: status_cmd(d, students=[{"name": "s", "kind": "mlp", "features": ["dr", "dr"]}]),
        "features must not repeat",
    ),
    Case(
        "a boost beta of 1",
        lambda d: status_cmd(d, distill={"boost_betas": [0.5, 1.0]}),
        "'distill.boost_betas[1]' (1.0)",
    ),
    Case(
        "study names an unknown student",
        lambda d: status_cmd(d, study={"students": ["nosuch"]}),
        "study.students names 'nosuch', not a configured student",
    ),
    Case(
        "study names an unknown teacher",
        lambda d: status_cmd(d, study={"teachers": ["nosuch"]}),
        "study.teachers names 'nosuch', not a configured teacher",
    ),
    Case(
        "scan.scheduler not an address",
        lambda d: status_cmd(d, scan={"scheduler": "localhost"}),
        "tcp://HOST:PORT",
    ),
    Case(
        "budget.overrides.part unknown",
        lambda d: status_cmd(d, budget={"overrides": {"part": "xcnope"}}),
        "part 'xcnope' is not in kd_trigger/fpga/parts.py",
    ),
    Case(
        "hls.input_precision not a type",
        lambda d: status_cmd(d, hls={"input_precision": "ap_fixed<0,0>"}),
        "'hls.input_precision'",
    ),
    Case(
        "hls.default_precision 'float'",
        lambda d: status_cmd(d, hls={"default_precision": "float"}),
        "'hls.default_precision' ('float')",
    ),
    Case(
        "status --target teacher:nosuch",
        lambda d: ["status", "--target", "teacher:nosuch", "--config", config_file(d)],
        "no stage named 'teacher:nosuch'",
    ),
    # -- command-line options -------------------------------------------------------------------
    Case("--reuse 0", lambda d: hls_cmd(d, "--reuse", "0"), "'hls.reuse_factor' (0)"),
    Case(
        "--reuse =3",
        lambda d: hls_cmd(d, "--reuse", "=3"),
        "--reuse '=3': give a positive integer R, or LAYER=R",
    ),
    Case(
        "--precision LAYER=notatype",
        lambda d: hls_cmd(d, "--precision", "dense_0=notatype"),
        "'hls.layers.dense_0.precision' ('notatype')",
    ),
    Case(
        "data --out a directory, with --force",
        lambda d: ["data", "--out", str(d), "--force", "--config", config_file(d)],
        "is not a regular file",
    ),
    # -- models and inputs ------------------------------------------------------------------------
    Case(
        "--model with a variable particle count",
        lambda d: ["hls", "--model", model_file(d, _variable_length_model), "--out", str(d / "fw")],
        "fixed input shape",
    ),
    Case(
        "--model an empty file",
        lambda d: [
            "hls",
            "--model",
            str((d / "m.h5", (d / "m.h5").write_bytes(b""))[0]),
            "--out",
            str(d / "fw"),
        ],
        "cannot be loaded as a QKeras model",
    ),
    Case("--model a weights-only file", _weights_only, "cannot be loaded as a QKeras model"),
    Case(
        "--model a FIFO",
        lambda d: ["hls", "--model", str(fifo(d, "m.h5")), "--out", str(d / "fw")],
        "m.h5 is not a regular file",
    ),
    Case(
        "--data a directory",
        lambda d: hls_cmd(d, "--data", str((d / "x.npy", (d / "x.npy").mkdir())[0])),
        "x.npy is a directory, not a file",
    ),
    Case(
        "--data a FIFO",
        lambda d: hls_cmd(d, "--data", str(fifo(d, "x.npy"))),
        "x.npy is not a regular file",
    ),
    Case(
        "--data a boolean array",
        lambda d: hls_cmd(d, "--data", npy_file(d, np.zeros((3, 8, 7), bool))),
        "expected a real numeric array",
    ),
    Case(
        "--data an object array (pickle)",
        lambda d: hls_cmd(d, "--data", npz_file(d, a=np.array([object()] * 3, dtype=object))),
        "is not a readable .npz file",
    ),
    # -- data files -------------------------------------------------------------------------------
    Case(
        "data.path a FIFO",
        lambda d: data_cmd(d, str(fifo(d, "jets.h5"))),
        "jets.h5 is not a regular file",
    ),
    Case(
        "teacher path a FIFO",
        lambda d: status_cmd(
            d,
            teachers=[{"name": "t", "kind": "path", "path": str(fifo(d, "t.h5"))}],
            students=[{"name": "s", "kind": "mlp"}],
        ),
        "t.h5 is not a regular file or a directory",
    ),
    Case(
        "compound constituents",
        lambda d: data_cmd(
            d, jets_with(d, "constituents", np.zeros((40, 12, 4), dtype=[("a", "f4"), ("b", "f4")]))
        ),
        "dataset constituents has dtype",
    ),
    Case(
        "fractional n_constituents",
        lambda d: data_cmd(d, jets_with(d, "n_constituents", np.full(40, 2.5))),
        "n_constituents must hold whole numbers",
    ),
    Case(
        "zero constituents per jet",
        lambda d: data_cmd(
            d,
            jets_with(d, "constituents", np.zeros((40, 0, 4), np.float32)),
        ),
        "n_constituents must hold whole numbers 0..0",
    ),
    Case("a split directory without val.h5", lambda d: _split_dir(d, missing="val.h5"), "lacks val.h5"),
    Case(
        "a split directory with a garbage test.h5",
        lambda d: _split_dir(d, garbage="test.h5"),
        "test.h5 is not an HDF5 file",
    ),
    Case("a dangling soft link as is_signal", _dangling_link, "lacks dataset(s) is_signal"),
    Case("Top Quark Tagging file with string labels", _public_string_labels, "is_signal_new"),
    # -- vendor reports ---------------------------------------------------------------------------
    Case("fpga-report XML entity bomb", _entity_bomb, "myproject_csynth.xml"),
    Case("fpga-report LUT as text", lambda d: _csynth_text(d, "<LUT>", "<LUT>lots"), "not a number"),
    Case(
        "fpga-report two projects in one folder",
        _two_projects,
        "2 csynth reports and none named after the project (a_csynth.xml, b_csynth.xml",
    ),
    Case(
        "fpga-report binary file",
        lambda d: ["fpga-report", str((d / "x.rpt", (d / "x.rpt").write_bytes(bytes(range(256)) * 4))[0])],
        "unknown report format",
    ),
    Case(
        "fpga-report --part unknown",
        lambda d: ["fpga-report", str(CSYNTH), "--part", "xcnope"],
        "unknown FPGA part 'xcnope'",
    ),
]


@pytest.mark.parametrize("case", PROBE_CASES, ids=[c.name for c in PROBE_CASES])
def test_probe_case_is_refused_cleanly(case: Case, tmp_path: Path, capsys) -> None:
    assert_refused_cleanly(case, tmp_path, capsys)


def test_the_probe_has_forty_new_cases() -> None:
    assert len(PROBE_CASES) >= 40
    assert len({c.name for c in PROBE_CASES}) == len(PROBE_CASES)


def test_the_probe_config_base_is_valid() -> None:
    """The probe's configs extend configs/ci.yaml: it must stay valid, or every case would pass vacuously."""
    assert isinstance(yaml.safe_load(CI.read_text()), dict)
