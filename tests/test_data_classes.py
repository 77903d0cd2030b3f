"""Multi-class data: ``data.classes``, the five hls4ml classes' processes and matching, N-class files.

Fast tests use fake process records and hand-written files; the generation tests (real Pythia) are slow.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from kd_trigger.cli import main
from kd_trigger.config import parse_config
from kd_trigger.config.data import DEFAULT_CLASSES, KNOWN_CLASSES
from kd_trigger.data.dataset import SPLIT_CODES, assign_split
from kd_trigger.data.generate import check_n_jets, chunk_seed, generate_to_file, plan_chunks, write_jets_file
from kd_trigger.data.pythia_worker import PROCESSES, PYTHIA_SEED_MAX, pythia_settings, truth_match
from kd_trigger.data.readers import check_trainable, load_jets
from kd_trigger.errors import ConfigError, DataError

FIVE = ["g", "q", "w", "z", "t"]


def _cfg(tmp_path: Path, **data):
    return parse_config({"run": {"artifacts_dir": str(tmp_path / "artifacts"), "seed": 21}, "data": data})


# -- config -----------------------------------------------------------------------------------------


def test_default_classes_are_qcd_then_top_and_every_known_class_has_a_process(tmp_path):
    assert _cfg(tmp_path).data.classes == ("qcd", "top") == DEFAULT_CLASSES
    assert set(KNOWN_CLASSES) == set(PROCESSES)
    assert _cfg(tmp_path, classes=FIVE).data.classes == tuple(FIVE)


@pytest.mark.parametrize(
    ("classes", "message"),
    [
        (["g", "higgs"], "unknown class 'higgs'; known classes: g, q, w, z, t, qcd, top"),
        (["t", "top"], "t and top name the same process"),
        (["q", "q"], "each class may appear once"),
        (["t"], "at least 2 items"),
    ],
)
def test_bad_classes_are_config_errors_naming_the_key(tmp_path, classes, message):
    with pytest.raises(ConfigError) as err:
        _cfg(tmp_path, classes=classes)
    msg = str(err.value)
    assert "'data.classes'" in msg and message in msg and "\n" not in msg


def test_cli_unknown_class_exits_2_with_one_line(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text(
        yaml.safe_dump({"run": {"artifacts_dir": str(tmp_path / "a")}, "data": {"classes": ["x", "t"]}})
    )
    assert main(["data", "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown class 'x'" in err and "known classes: g, q, w, z, t" in err
    assert not (tmp_path / "a").exists()


# -- planning and seeds ------------------------------------------------------------------------------


def test_two_class_seeds_are_those_before_data_classes():
    """The seed formula of the two-class generator, pinned: the default file keeps its jets."""

    def before(run_seed: int, name: str, index: int) -> int:
        digest = hashlib.sha256(f"kd_trigger:{run_seed}:{name}:{index}".encode()).digest()
        return int.from_bytes(digest[:8], "little") % PYTHIA_SEED_MAX + 1

    for index in range(5):
        assert chunk_seed(21, 1, index) == before(21, "top", index)
        assert chunk_seed(21, 0, index) == before(21, "qcd", index)
        # t is the top process: same seeds, so the same jets as the two-class file's tops.
        assert chunk_seed(21, 4, index, tuple(FIVE)) == before(21, "top", index)


def test_five_class_plan_is_balanced_ordered_and_seeded_per_class(tmp_path):
    cfg = _cfg(tmp_path, classes=FIVE, n_jets=50, generator={"chunk_jets": 4})
    tasks = plan_chunks(cfg)
    assert [(t.label, t.name) for t in tasks[::3]] == [(4, "t"), (3, "z"), (2, "w"), (1, "q"), (0, "g")]
    per_class = {label: sum(t.n_jets for t in tasks if t.label == label) for label in range(5)}
    assert per_class == dict.fromkeys(range(5), 10)
    seeds = [t.seed for t in tasks]
    assert len(set(seeds)) == len(seeds)
    # A class's seeds do not depend on its label or on the other classes.
    three = plan_chunks(_cfg(tmp_path, classes=["w", "t", "g"], n_jets=30, generator={"chunk_jets": 4}))
    assert {(t.name, t.chunk_index): t.seed for t in three}.items() <= {
        (t.name, t.chunk_index): t.seed for t in tasks
    }.items()


def test_n_jets_must_be_a_multiple_of_the_classes(tmp_path):
    with pytest.raises(ConfigError, match=r"data\.n_jets must be a multiple of 5 .* g, q, w, z, t\), got 52"):
        check_n_jets(_cfg(tmp_path, classes=FIVE, n_jets=52))
    with pytest.raises(ConfigError, match=r"data\.n_jets must be even \(the file holds n_jets/2 top"):
        check_n_jets(_cfg(tmp_path, n_jets=51))
    with pytest.raises(ConfigError, match="must be a multiple of 5"):
        generate_to_file(_cfg(tmp_path, classes=FIVE, n_jets=52), tmp_path / "x.h5")
    assert not (tmp_path / "x.h5").exists()


def test_pythia_settings_of_each_class():
    gen = _cfg(Path("/tmp")).data.generator.model_dump(mode="json")
    top = pythia_settings("top", gen, 7)
    assert top[-4:] == [
        "Top:gg2ttbar = on",
        "Top:qqbar2ttbar = on",
        "24:onMode = off",
        "24:onIfAny = 1 2 3 4 5",
    ]
    assert pythia_settings("t", gen, 7) == top
    assert pythia_settings("qcd", gen, 7)[-1] == "HardQCD:all = on"
    assert "WeakDoubleBoson:ffbar2WW = on" in pythia_settings("w", gen, 7)
    z = pythia_settings("z", gen, 7)
    assert "WeakDoubleBoson:ffbar2gmZgmZ = on" in z and "23:onIfAny = 1 2 3 4 5" in z
    assert "HardQCD:gg2gg = on" in pythia_settings("g", gen, 7)
    assert "HardQCD:qq2qq = on" in pythia_settings("q", gen, 7)
    assert not any("HardQCD:all" in line for line in pythia_settings("g", gen, 7))


# -- truth matching on fake hard-process records -----------------------------------------------------


@dataclass
class _P:
    pid: int
    pt: float
    eta: float
    phi: float
    status_: int = 23
    daughters: list[int] = field(default_factory=list)

    def idAbs(self) -> int:  # noqa: N802 (Pythia's names)
        return abs(self.pid)

    def id(self) -> int:
        return self.pid

    def status(self) -> int:
        return self.status_

    def daughterList(self) -> list[int]:  # noqa: N802
        return self.daughters

    def px(self) -> float:
        return self.pt * math.cos(self.phi)

    def py(self) -> float:
        return self.pt * math.sin(self.phi)

    def pz(self) -> float:
        return self.pt * math.sinh(self.eta)

    def e(self) -> float:
        return self.pt * math.cosh(self.eta)


class _Record(list):
    def size(self) -> int:
        return len(self)


def test_parton_match_takes_the_nearest_outgoing_parton():
    record = _Record([_P(2212, 0, 0, 0, -12), _P(21, 600, 0.1, 0.0), _P(1, 600, -0.1, math.pi)])
    gluon, quark = PROCESSES["g"], PROCESSES["q"]
    matched = truth_match(gluon, record, 0.2, 0.1, 0.8)
    assert matched is not None and matched[1] == 21 and matched[0][1] == pytest.approx(600.0)
    assert truth_match(quark, record, 0.2, 0.1, 0.8) is None
    assert truth_match(quark, record, -0.1, math.pi - 0.2, 0.8)[1] == 1  # type: ignore[index]
    assert truth_match(gluon, record, 1.5, 1.5, 0.8) is None  # nothing within R
    # A gluon nearer than the quark: the nearest-parton rule refuses the quark, the pre-filter keeps it.
    close = _Record([_P(21, 600, 0.0, 0.0), _P(-2, 600, 0.3, 0.0)])
    assert truth_match(quark, close, 0.1, 0.0, 0.8) is None
    assert truth_match(quark, close, 0.1, 0.0, 0.8, prefilter=True)[1] == -2  # type: ignore[index]
    heavy = _Record([_P(5, 600, 0.0, 0.0), _P(21, 600, 2.0, 3.0)])
    assert truth_match(quark, heavy, 0.0, 0.0, 0.8) is None  # b quarks are no light quarks


def test_boson_match_needs_the_boson_and_both_quarks_in_the_jet():
    def record(spread: float) -> _Record:
        return _Record(
            [_P(24, 600, 0.0, 0.0, 22, [1, 2]), _P(2, 300, spread, 0.0, 23), _P(-1, 300, -spread, 0.0, 23)]
        )

    w, z = PROCESSES["w"], PROCESSES["z"]
    matched = truth_match(w, record(0.3), 0.0, 0.0, 0.8)
    assert matched is not None and matched[1] == 24
    w_minus = record(0.3)
    w_minus[0].pid = -24
    assert truth_match(w, w_minus, 0.0, 0.0, 0.8)[1] == -24  # type: ignore[index]  # signed ids
    assert truth_match(w, record(0.9), 0.0, 0.0, 0.8) is None  # a quark outside the jet
    assert truth_match(z, record(0.3), 0.0, 0.0, 0.8) is None  # a W is no Z
    leptonic = _Record([_P(24, 600, 0.0, 0.0, 22, [1, 2]), _P(11, 300, 0.1, 0.0), _P(-12, 300, -0.1, 0.0)])
    assert truth_match(w, leptonic, 0.0, 0.0, 0.8) is None
    assert truth_match(PROCESSES["qcd"], _Record(), 0.0, 0.0, 0.8) == ((0.0, 0.0, 0.0, 0.0), 0)


# -- N-class files ---------------------------------------------------------------------------------


def _five_class_arrays(cfg, n: int = 50, m: int = 8) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(4)
    pt = np.sort(rng.uniform(1.0, 50.0, (n, m)), axis=1)[:, ::-1]
    phi = rng.uniform(-np.pi, np.pi, (n, m))
    c = np.stack([pt, pt * np.cos(phi), pt * np.sin(phi), np.zeros((n, m))], axis=2).astype(np.float32)
    labels = (np.arange(n) % 5).astype(np.int8)
    return {
        "constituents": c,
        "n_constituents": np.full(n, m, np.int32),
        "label": labels,
        "jet_p4": np.ones((n, 4)),
        "truth_top_p4": np.zeros((n, 4)),
        "split": assign_split(labels, cfg.data.split, cfg.run.seed),
    }


def test_five_class_file_round_trip(tmp_path):
    cfg = _cfg(tmp_path, classes=FIVE, max_constituents=8)
    path = tmp_path / "five.h5"
    arrays = _five_class_arrays(cfg)
    write_jets_file(path, arrays, cfg)
    with h5py.File(path) as f:
        assert json.loads(f.attrs["classes"]) == FIVE
        assert "is_signal" not in f and f["label"].dtype == np.int8
    ds = load_jets(path, cfg)
    np.testing.assert_array_equal(ds.labels, arrays["label"])
    assert ds.class_names == tuple(FIVE) and ds.n_classes == 5
    assert ds.counts()["train"] == {"t": 6, "z": 6, "w": 6, "q": 6, "g": 6}
    assert "50 jets (10 g, 10 q, 10 w, 10 z, 10 t; train 30" in ds.summary()
    test = ds.select("test")
    assert test.class_names == tuple(FIVE) and len(test) == 15
    with pytest.raises(
        DataError, match=r"holds 5 classes \(g, q, w, z, t\); this step handles two classes only"
    ):
        _ = ds.is_signal
    with pytest.raises(DataError, match=r"val has 1 t; val has 1 z; .*use a file with every class's jets"):
        check_trainable(ds, path)  # 10% of 10 jets per class: one per class in val


def test_two_class_dataset_keeps_is_signal(tmp_path):
    cfg = _cfg(tmp_path, max_constituents=8)
    arrays = _five_class_arrays(cfg)
    arrays["label"] = (arrays["label"] % 2).astype(np.int8)
    arrays["is_signal"] = arrays["label"]
    write_jets_file(tmp_path / "two.h5", arrays, cfg)
    ds = load_jets(tmp_path / "two.h5", cfg)
    np.testing.assert_array_equal(ds.is_signal, arrays["label"])
    assert ds.is_signal.dtype == np.int8 and ds.class_names == ("qcd", "top")
    assert list(ds.counts()["train"]) == ["top", "qcd"]


def test_file_classes_must_match_the_config(tmp_path):
    five = _cfg(tmp_path, classes=FIVE, max_constituents=8)
    path = tmp_path / "five.h5"
    write_jets_file(path, _five_class_arrays(five), five)
    with pytest.raises(DataError) as err:
        load_jets(path, _cfg(tmp_path, max_constituents=8))
    assert str(err.value) == (
        f"data file {path} holds the classes g, q, w, z, t but data.classes is qcd, top; set data.classes to "
        "the file's classes (in this order) or use another file"
    )
    reordered = _cfg(tmp_path, classes=["q", "g", "w", "z", "t"], max_constituents=8)
    with pytest.raises(DataError, match="holds the classes g, q, w, z, t but data.classes is q, g, w, z, t"):
        load_jets(path, reordered)
    # A file written before data.classes holds qcd and top.
    two = tmp_path / "two.h5"
    arrays = _five_class_arrays(five)
    arrays["is_signal"] = (arrays.pop("label") % 2).astype(np.int8)
    write_jets_file(two, arrays, _cfg(tmp_path, max_constituents=8))
    with h5py.File(two, "a") as f:
        del f.attrs["classes"], f["label"]
    assert load_jets(two, _cfg(tmp_path, max_constituents=8)).class_names == DEFAULT_CLASSES
    with pytest.raises(DataError, match="holds the classes qcd, top but data.classes is g, q, w, z, t"):
        load_jets(two, five)


def test_bad_n_class_labels_are_one_line_errors(tmp_path):
    cfg = _cfg(tmp_path, classes=FIVE, max_constituents=8)
    path = tmp_path / "five.h5"
    arrays = _five_class_arrays(cfg)
    arrays["label"] = arrays["label"].copy()
    arrays["label"][7] = 5
    write_jets_file(path, arrays, cfg)
    with pytest.raises(
        DataError, match=r"dataset label must hold 0\.\.4 \(the classes g, q, w, z, t\), found 1"
    ):
        load_jets(path, cfg)
    with h5py.File(path, "a") as f:
        del f["label"]
    with pytest.raises(DataError, match=r"lacks dataset\(s\) label"):
        load_jets(path, cfg)
    with h5py.File(path, "a") as f:
        f.attrs["classes"] = "g, q"
    with pytest.raises(DataError, match="attribute classes must be a JSON list"):
        load_jets(path, cfg)


def test_two_class_label_must_agree_with_is_signal(tmp_path):
    cfg = _cfg(tmp_path, max_constituents=8)
    arrays = _five_class_arrays(cfg)
    arrays["is_signal"] = (arrays["label"] % 2).astype(np.int8)
    arrays["label"] = 1 - arrays["is_signal"]
    write_jets_file(tmp_path / "two.h5", arrays, cfg)
    with pytest.raises(DataError, match="datasets label and is_signal disagree"):
        load_jets(tmp_path / "two.h5", cfg)


def test_assign_split_is_stratified_over_n_classes_and_unchanged_for_two():
    labels = np.repeat(np.arange(5), 200)[np.random.default_rng(1).permutation(1000)]
    frac = _cfg(Path("/tmp")).data.split
    split = assign_split(labels, frac, 3)
    for label in range(5):
        np.testing.assert_array_equal(np.bincount(split[labels == label], minlength=3), [120, 20, 60])

    def before(is_signal: np.ndarray, seed: int) -> np.ndarray:
        """assign_split as it was for two classes."""
        out = np.empty(is_signal.shape[0], dtype=np.uint8)
        rng = np.random.default_rng([seed, 0x5B117])
        for label in (0, 1):
            rows = np.flatnonzero(is_signal == label)
            n = rows.size
            n_train, n_val = (
                int(round(n * frac.train)),
                min(int(round(n * frac.val)), n - int(round(n * frac.train))),
            )
            codes = np.full(n, SPLIT_CODES["test"], dtype=np.uint8)
            codes[:n_train], codes[n_train : n_train + n_val] = SPLIT_CODES["train"], SPLIT_CODES["val"]
            out[rows] = codes[rng.permutation(n)]
        return out

    two = labels % 2
    np.testing.assert_array_equal(assign_split(two, frac, 3), before(two, 3))
    ones = np.ones(10, dtype=np.int8)
    np.testing.assert_array_equal(assign_split(ones, frac, 3), before(ones, 3))


# -- slow: real generation of the five classes ---------------------------------------------------


def _raw(artifacts: Path, classes: list[str], n_jets: int, workers: int) -> dict:
    return {
        "run": {"name": "five", "seed": 21, "artifacts_dir": str(artifacts)},
        "data": {
            "n_jets": n_jets,
            "max_constituents": 60,
            "workers": workers,
            "classes": classes,
            "generator": {"chunk_jets": 3},
        },
    }


@pytest.mark.slow
def test_five_classes_generate_balanced_matched_and_byte_identical(tmp_path):
    one, two = tmp_path / "w1.h5", tmp_path / "w2.h5"
    cfg = parse_config(_raw(tmp_path / "a", FIVE, 30, workers=1))
    generate_to_file(cfg, one)
    generate_to_file(parse_config(_raw(tmp_path / "a", FIVE, 30, workers=2)), two)
    assert one.read_bytes() == two.read_bytes()
    ds = load_jets(one, cfg)
    assert np.bincount(ds.labels, minlength=5).tolist() == [6] * 5
    with h5py.File(one) as f:
        truth, pdg = f["truth_p4"][...].astype(np.float64), f["truth_pdg_id"][...]
        label = f["label"][...]
    wanted = {0: {21}, 1: {1, 2, 3}, 2: {24}, 3: {23}, 4: {6}}
    for k, ids in wanted.items():
        assert set(np.abs(pdg[label == k]).tolist()) <= ids, FIVE[k]
    # The matched object lies inside the jet (the boson/top decay products are checked in the worker).
    pt = np.hypot(truth[:, 1], truth[:, 2])
    eta, phi = np.arcsinh(truth[:, 3] / pt), np.arctan2(truth[:, 2], truth[:, 1])
    dphi = (phi - ds.jet_p4[:, 2] + np.pi) % (2 * np.pi) - np.pi
    assert np.all(np.hypot(eta - ds.jet_p4[:, 1], dphi) < cfg.data.generator.jet_radius)
    mass = {FIVE[k]: float(np.median(ds.jet_p4[ds.labels == k, 3])) for k in range(5)}
    assert 60.0 < mass["w"] < 100.0 and 70.0 < mass["z"] < 110.0 and mass["t"] > 130.0, mass
    assert mass["g"] < 130.0 and mass["q"] < 130.0, mass


def test_t_jets_are_the_top_jets_of_the_two_class_file(tmp_path):
    five, two = tmp_path / "five.h5", tmp_path / "two.h5"
    generate_to_file(parse_config(_raw(tmp_path / "a", ["w", "t"], 6, workers=1)), five)
    generate_to_file(parse_config(_raw(tmp_path / "a", ["qcd", "top"], 6, workers=1)), two)
    with h5py.File(five) as f5, h5py.File(two) as f2:
        t = f5["jet_p4"][...][f5["label"][...] == 1]
        top = f2["jet_p4"][...][f2["is_signal"][...] == 1]
        # Two classes: is_signal as before, and the label and class names every file now carries.
        assert json.loads(f2.attrs["classes"]) == ["qcd", "top"] and json.loads(f5.attrs["classes"]) == [
            "w",
            "t",
        ]
        np.testing.assert_array_equal(f2["label"][...], f2["is_signal"][...])
        np.testing.assert_array_equal(f5["label"][...], f5["is_signal"][...])
        assert np.all(np.abs(f5["truth_pdg_id"][...][f5["label"][...] == 0]) == 24)
    np.testing.assert_array_equal(t[np.lexsort(t.T)], top[np.lexsort(top.T)])
