"""The bad inputs of issue 24 (N classes), through the command line: a class the generator does not know,
a label column missing in a file, a file whose classes differ from the config's, a saved model whose
number of outputs differs from the classes. Each one: exit 2, one line, nothing written (the harness of
tests/cli_helpers.py)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from cli_helpers import Case, assert_refused_cleanly, config_file, student_model_file
from conftest import REPO

from kd_trigger.config import parse_config
from kd_trigger.data.dataset import assign_split
from kd_trigger.data.generate import write_jets_file

FIVE = ["g", "q", "w", "z", "t"]
SPLIT = {"train": 0.5, "val": 0.25, "test": 0.25}
THREE_CLASS = REPO / "configs" / "ci_three_class.yaml"


def _data_cmd(d: Path, path: str, classes: list[str]) -> list[str]:
    """``data`` reading ``path`` with ``data.classes`` = ``classes``."""
    n_jets = 60 * len(classes)  # a multiple of the classes (only checked, nothing is generated)
    data = {"path": path, "classes": classes, "n_jets": n_jets, "split": SPLIT}
    return ["data", "--config", config_file(d, data=data)]


def _our_file(d: Path, classes: list[str], drop: str | None = None, per_class: int = 8) -> str:
    """A valid file of our layout holding ``classes`` (``per_class`` jets each), less the dataset ``drop``."""
    cfg = parse_config({"data": {"classes": classes, "max_constituents": 8, "split": SPLIT}})
    n, m = per_class * len(classes), 8
    rng = np.random.default_rng(2)
    pt = np.sort(rng.uniform(1.0, 50.0, (n, m)), axis=1)[:, ::-1]
    phi = rng.uniform(-np.pi, np.pi, (n, m))
    c = np.stack([pt, pt * np.cos(phi), pt * np.sin(phi), np.zeros((n, m))], axis=2).astype(np.float32)
    labels = (np.arange(n) % len(classes)).astype(np.int8)
    arrays = {
        "constituents": c,
        "n_constituents": np.full(n, m, np.int32),
        "label": labels,
        "jet_p4": np.ones((n, 4)),
        "truth_top_p4": np.zeros((n, 4)),
        "split": assign_split(labels, cfg.data.split, 0),
    }
    path = d / "jets.h5"
    write_jets_file(path, arrays, cfg)
    if drop is not None:
        with h5py.File(path, "a") as f:
            del f[drop]
    return str(path)


def _hls4ml_file(d: Path, class_columns: list[str], n: int = 10) -> str:
    """A file of the public hls4ml jet layout (``n`` jets of 2 particles) with the one-hot columns
    ``class_columns`` (j_g, j_q ...) in ``jets``."""
    features = ["j1_px", "j1_py", "j1_pz", "j1_e"]
    rng = np.random.default_rng(3)
    p = rng.uniform(1.0, 50.0, (n, 2, 3))
    e = np.linalg.norm(p, axis=2, keepdims=True) + 0.1
    jets = np.zeros((n, len(class_columns)), np.float32)
    jets[np.arange(n), np.arange(n) % len(class_columns)] = 1.0
    path = d / "jets.h5"
    with h5py.File(path, "w") as f:
        f["jetConstituentList"] = np.concatenate([p, e], axis=2).astype(np.float32)
        f["jets"] = jets
        f["particleFeatureNames"] = np.array([s.encode() for s in features])
        f["jetFeatureNames"] = np.array([s.encode() for s in class_columns])
    return str(path)


def _model_cmd(d: Path, command: str) -> list[str]:
    """``hls|rtl --model`` of a two-logit student with the three-class CI config."""
    return [command, "--model", student_model_file(d), "--out", str(d / "fw"), "--config", str(THREE_CLASS)]


CASES = [
    Case(
        "a class unknown to the generator",
        lambda d: ["data", "--config", config_file(d, data={"classes": ["g", "higgs"]})],
        "invalid value for 'data.classes' (['g', 'higgs']): unknown class 'higgs'; known classes: g, q, w, z, t, qcd, top",
    ),
    Case(
        "an N-class file without its label dataset",
        lambda d: _data_cmd(d, _our_file(d, ["q", "w", "t"], drop="label"), ["q", "w", "t"]),
        "jets.h5 lacks dataset(s) label",
    ),
    Case(
        "an hls4ml file without a class column",
        lambda d: _data_cmd(d, _hls4ml_file(d, ["j_g", "j_q", "j_z", "j_t"]), FIVE),
        "jets.h5: jets lacks the label column(s) j_w of data.classes (g, q, w, z, t)",
    ),
    Case(
        "a three-class file with a two-class config",
        lambda d: _data_cmd(d, _our_file(d, ["q", "w", "t"]), ["qcd", "top"]),
        "jets.h5 holds the classes q, w, t but data.classes is qcd, top; set data.classes to the file's classes",
    ),
    Case(
        "a three-class file with its classes in another order",
        lambda d: _data_cmd(d, _our_file(d, ["q", "w", "t"]), ["t", "w", "q"]),
        "jets.h5 holds the classes q, w, t but data.classes is t, w, q",
    ),
    Case(
        "an hls4ml file with a three-class config",
        lambda d: _data_cmd(d, _hls4ml_file(d, ["j_g", "j_q", "j_w", "j_z", "j_t"]), ["q", "w", "t"]),
        "jets.h5 holds the classes g, q, w, z, t but data.classes is q, w, t",
    ),
    Case(
        "hls --model of two logits with a three-class config",
        lambda d: _model_cmd(d, "hls"),
        "model.h5 puts out (2,) per jet but data.classes of "
        f"{THREE_CLASS} names 3 classes (q, w, t): the model must put out one value per class; give a "
        "model with 3 outputs or a config with its classes",
    ),
    Case(
        "rtl --model of two logits with a three-class config",
        lambda d: _model_cmd(d, "rtl"),
        "model.h5 puts out (2,) per jet but data.classes of",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_nclass_bad_input_is_refused_cleanly(case: Case, tmp_path: Path, capsys) -> None:
    assert_refused_cleanly(case, tmp_path, capsys)


@pytest.mark.parametrize(
    ("classes", "make"),
    [
        (["q", "w", "t"], lambda d: _our_file(d, ["q", "w", "t"], per_class=40)),
        (FIVE, lambda d: _hls4ml_file(d, ["j_g", "j_q", "j_w", "j_z", "j_t"], n=200)),
    ],
    ids=["our layout", "hls4ml layout"],
)
def test_the_files_of_the_cases_are_read_with_their_own_classes(classes, make, tmp_path: Path) -> None:
    """The files the cases spoil are valid as built: each case fails for the one reason it names."""
    from kd_trigger.cli import main

    assert main(_data_cmd(tmp_path, make(tmp_path), classes)) == 0


def test_a_model_of_one_output_per_class_passes_the_check(tmp_path: Path) -> None:
    import tensorflow as tf

    from kd_trigger.config import StudentConfig
    from kd_trigger.errors import ModelError
    from kd_trigger.models.students import build_student, check_output_classes

    spec = StudentConfig(name="m", kind="mlp", n_particles=8, hidden=(8,))
    tf.keras.utils.set_random_seed(0)
    check_output_classes(build_student(spec, 3), ["q", "w", "t"], tmp_path / "m.h5", "c.yaml")
    with pytest.raises(ModelError) as err:
        check_output_classes(build_student(spec, 5), ["q", "w", "t"], tmp_path / "m.h5", "c.yaml")
    assert str(err.value) == (
        f"{tmp_path / 'm.h5'} puts out (5,) per jet but data.classes of c.yaml names 3 classes (q, w, t): the "
        "model must put out one value per class; give a model with 3 outputs or a config with its classes"
    )
