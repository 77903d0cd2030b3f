"""The hls4ml jet data set reader, on small files written in the public layout; bad inputs are one line."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from kd_trigger.cli import main
from kd_trigger.config import parse_config
from kd_trigger.data.hls4ml_jets import read_hls4ml
from kd_trigger.data.readers import load_jets
from kd_trigger.errors import DataError

FIVE = ["g", "q", "w", "z", "t"]
PARTICLE_FEATURES = [
    "j1_px", "j1_py", "j1_pz", "j1_e", "j1_erel", "j1_pt", "j1_ptrel", "j1_eta",
    "j1_etarel", "j1_etarot", "j1_phi", "j1_phirel", "j1_phirot", "j1_deltaR",
    "j1_costheta", "j1_costhetarel",
]  # fmt: skip
"""The public files' particleFeatureNames, in their order."""
JET_FEATURES = [
    "j_ptfrac",
    "j_pt",
    "j_eta",
    "j_mass",
    "j_tau1_b1",
    "j_g",
    "j_q",
    "j_w",
    "j_z",
    "j_t",
    "j_undef",
]
"""A shortened jetFeatureNames (the public one has 59 columns), class columns last but j_undef as there."""


def _cfg(tmp_path: Path, **data):
    return parse_config(
        {"run": {"artifacts_dir": str(tmp_path / "artifacts"), "seed": 5}, "data": {"classes": FIVE, **data}}
    )


def _write(
    path: Path,
    n: int = 20,
    particles: int = 6,
    jet_features: list[str] | None = None,
    particle_features: list[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """An hls4ml-layout file: n jets of random particles in random order, zero-padded; returns (p4, labels).

    p4 is (n, particles, 4) = (E, px, py, pz) in the file's particle order; labels index FIVE.
    """
    jet_features = jet_features or JET_FEATURES
    particle_features = particle_features or PARTICLE_FEATURES
    rng = np.random.default_rng(8)
    counts = rng.integers(1, particles + 1, n)
    pt = rng.uniform(1.0, 200.0, (n, particles))
    eta, phi = rng.normal(0, 1, (n, particles)), rng.uniform(-np.pi, np.pi, (n, particles))
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    e = np.sqrt(px**2 + py**2 + pz**2 + 0.14**2)
    p4 = np.stack([e, px, py, pz], axis=2)
    p4[np.arange(particles)[None, :] >= counts[:, None]] = 0.0
    values = {"j1_e": p4[..., 0], "j1_px": p4[..., 1], "j1_py": p4[..., 2], "j1_pz": p4[..., 3]}
    values["j1_pt"] = np.hypot(p4[..., 1], p4[..., 2])
    constituents = np.stack(
        [values.get(name, rng.uniform(-1, 1, (n, particles))) for name in particle_features], axis=2
    )
    labels = (np.arange(n) % 5).astype(np.int8)
    jets = rng.uniform(0, 1, (n, len(jet_features)))
    for k, cls in enumerate(FIVE):
        if f"j_{cls}" in jet_features:
            jets[:, jet_features.index(f"j_{cls}")] = labels == k
    if "j_undef" in jet_features:
        jets[:, jet_features.index("j_undef")] = 0.0
    with h5py.File(path, "w") as f:
        f["jetConstituentList"] = constituents.astype(np.float32)
        f["jets"] = jets.astype(np.float32)
        f["particleFeatureNames"] = np.array([s.encode() for s in particle_features])
        f["jetFeatureNames"] = np.array([s.encode() for s in jet_features])
        f["jetImage"] = np.zeros((n, 4, 4), dtype=np.float32)  # the public files carry images too
    return p4.astype(np.float32), labels


def test_reads_four_vectors_by_name_pt_ordered_with_labels_and_a_split(tmp_path):
    path = tmp_path / "jetImage_7_6p_0_20.h5"
    p4, labels = _write(path)
    cfg = _cfg(tmp_path, max_constituents=4)
    ds = load_jets(path, cfg)
    assert ds.class_names == tuple(FIVE) and "hls4ml jet layout" in ds.source
    np.testing.assert_array_equal(ds.labels, labels)
    assert ds.constituents.shape == (20, 4, 4) and ds.constituents.dtype == np.float32
    for i in range(20):
        real = p4[i][p4[i, :, 0] > 0]
        expected = real[np.argsort(-np.hypot(real[:, 1], real[:, 2]), kind="stable")][:4]
        np.testing.assert_array_equal(ds.constituents[i, : len(expected)], expected)
        assert np.all(ds.constituents[i, len(expected) :] == 0.0)
        assert ds.n_constituents[i] == len(expected)
    assert np.bincount(ds.split, minlength=3).sum() == 20
    # Labels follow data.classes' order, not the file's column order.
    reordered = load_jets(path, _cfg(tmp_path, max_constituents=4, classes=["t", "z", "w", "q", "g"]))
    np.testing.assert_array_equal(reordered.labels, 4 - labels)


def test_chunked_read_equals_one_read(tmp_path):
    path = tmp_path / "jets.h5"
    _write(path, n=23)
    cfg = _cfg(tmp_path, max_constituents=8)
    whole = read_hls4ml(path, cfg)
    chunked = read_hls4ml(path, cfg, chunk_rows=5)
    np.testing.assert_array_equal(chunked.constituents, whole.constituents)
    np.testing.assert_array_equal(chunked.labels, whole.labels)
    assert whole.constituents.shape == (23, 8, 4)  # padded beyond the file's 6 particles


def test_a_directory_of_files_is_read_as_one_data_set(tmp_path):
    directory = tmp_path / "train"
    directory.mkdir()
    parts = [_write(directory / f"jetImage_{i}_6p.h5", n=10 + i) for i in range(3)]
    cfg = _cfg(tmp_path, max_constituents=6)
    ds = load_jets(directory, cfg)
    assert len(ds) == 33 and "3 files of the hls4ml jet layout" in ds.source
    np.testing.assert_array_equal(ds.labels, np.concatenate([labels for _, labels in parts]))
    np.testing.assert_array_equal(
        ds.constituents[:10], read_hls4ml(directory / "jetImage_0_6p.h5", cfg).constituents
    )
    (directory / "notes.h5").write_bytes(b"not hdf5")
    msg = _error(directory, cfg)
    assert msg.startswith(
        f"data directory {directory}: notes.h5 is not an HDF5 file; a directory as data.path"
    )


def _error(path: Path, cfg) -> str:
    with pytest.raises(DataError) as err:
        load_jets(path, cfg)
    msg = str(err.value)
    assert "\n" not in msg
    return msg


def test_a_missing_label_column_is_named(tmp_path):
    path = tmp_path / "jets.h5"
    _write(path, jet_features=[f for f in JET_FEATURES if f != "j_w"])
    assert _error(path, _cfg(tmp_path)) == (
        f"data file {path}: jets lacks the label column(s) j_w of data.classes (g, q, w, z, t)"
    )


def test_classes_that_differ_from_the_config_are_refused(tmp_path):
    path = tmp_path / "jets.h5"
    _write(path)
    msg = _error(path, _cfg(tmp_path, classes=["q", "t"]))
    assert msg == (
        f"data file {path} holds the classes g, q, w, z, t but data.classes is q, t; set data.classes to the "
        "file's classes"
    )
    msg = _error(path, _cfg(tmp_path, classes=["qcd", "top"]))
    assert "the hls4ml jet layout has the classes g, q, w, z, t, but data.classes names qcd, top" in msg


def test_missing_four_vector_feature_and_datasets(tmp_path):
    path = tmp_path / "jets.h5"
    _write(path, particle_features=[f for f in PARTICLE_FEATURES if f != "j1_e"])
    assert "particleFeatureNames lacks j1_e (the four-vectors are read from j1_e, j1_px" in _error(
        path, _cfg(tmp_path)
    )
    _write(path)
    with h5py.File(path, "a") as f:
        del f["jetFeatureNames"]
    assert "lacks dataset(s) jetFeatureNames" in _error(path, _cfg(tmp_path))


def test_a_jet_without_exactly_one_class(tmp_path):
    path = tmp_path / "jets.h5"
    _write(path)
    with h5py.File(path, "a") as f:
        jets = f["jets"][...]
        jets[3, JET_FEATURES.index("j_q")] = 1.0  # jet 3 is a w: now two classes
        f["jets"][...] = jets
    assert "1 jet(s) without exactly one class among the label columns (first jet 3" in _error(
        path, _cfg(tmp_path)
    )


def test_nan_four_vectors_are_located(tmp_path):
    path = tmp_path / "jets.h5"
    _write(path)
    with h5py.File(path, "a") as f:
        c = f["jetConstituentList"][...]
        c[9, 0, PARTICLE_FEATURES.index("j1_py")] = np.nan
        c[2, 1, PARTICLE_FEATURES.index("j1_eta")] = np.nan  # a feature we do not read: ignored
        f["jetConstituentList"][...] = c
    assert "1 NaN/inf value(s) in the particles' j1_e, j1_px, j1_py, j1_pz (first in jet 9)" in _error(
        path, _cfg(tmp_path)
    )


def test_cli_data_on_an_hls4ml_file_validates_and_a_bad_one_exits_2(tmp_path, capsys):
    path = tmp_path / "jets.h5"
    _write(path, n=200)
    config = tmp_path / "c.yaml"
    raw = {
        "run": {"name": "h", "artifacts_dir": str(tmp_path / "art")},
        "data": {"path": str(path), "classes": FIVE},
    }
    config.write_text(yaml.safe_dump(raw))
    assert main(["data", "--config", str(config)]) == 0
    raw["data"]["classes"] = ["g", "q", "w", "z"]
    config.write_text(yaml.safe_dump(raw))
    capsys.readouterr()
    assert main(["data", "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "holds the classes g, q, w, z, t but data.classes is g, q, w, z" in err
