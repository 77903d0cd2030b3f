"""Readers: our own file and the Top Quark Tagging pandas layout; every bad input is one clear line."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import yaml

from kd_trigger.cli import main
from kd_trigger.config import parse_config
from kd_trigger.data.dataset import FORMAT_NAME, SPLIT_CODES, JetDataset, assign_split
from kd_trigger.data.generate import write_jets_file
from kd_trigger.data.readers import load_jets
from kd_trigger.errors import DataError


def _cfg(tmp_path: Path, **data):
    return parse_config({"run": {"artifacts_dir": str(tmp_path / "artifacts"), "seed": 11}, "data": data})


def _fake_constituents(n: int, m: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """pT-ordered, zero-padded (E, px, py, pz) with 1..m real particles per jet."""
    rng = np.random.default_rng(seed)
    c = np.zeros((n, m, 4), dtype=np.float32)
    counts = rng.integers(1, m + 1, size=n).astype(np.int32)
    for i, k in enumerate(counts):
        pt = np.sort(rng.uniform(1.0, 100.0, k))[::-1]
        phi, eta = rng.uniform(-np.pi, np.pi, k), rng.normal(0.0, 1.0, k)
        px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
        c[i, :k] = np.stack([np.sqrt(px**2 + py**2 + pz**2), px, py, pz], axis=1)
    return c, counts


def _public_frame(n: int = 8, m: int = 200, seed: int = 3) -> tuple[pd.DataFrame, np.ndarray]:
    c, _ = _fake_constituents(n, m, seed)
    columns: dict[str, np.ndarray] = {}
    for i in range(m):
        for k, comp in enumerate(("E", "PX", "PY", "PZ")):
            columns[f"{comp}_{i}"] = c[:, i, k]
    labels = np.arange(n) % 2
    for k, name in enumerate(("truthE", "truthPX", "truthPY", "truthPZ")):
        columns[name] = np.where(labels == 1, 100.0 * (k + 1), 0.0)
    columns["ttv"] = np.zeros(n, dtype=np.int64)
    columns["is_signal_new"] = labels
    return pd.DataFrame(columns), c


def _write_own(path: Path, cfg, n: int = 10, m: int = 12, **override: np.ndarray) -> dict[str, np.ndarray]:
    c, counts = _fake_constituents(n, m)
    is_signal = (np.arange(n) % 2).astype(np.int8)
    arrays = {
        "constituents": c,
        "n_constituents": counts,
        "is_signal": is_signal,
        "jet_p4": np.ones((n, 4)),
        "truth_top_p4": np.zeros((n, 4)),
        "split": assign_split(is_signal, cfg.data.split, cfg.run.seed),
    }
    arrays.update(override)
    write_jets_file(path, arrays, cfg)
    return arrays


# -- round trips ------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["fixed", "table"])
def test_public_layout_round_trip(tmp_path, layout):
    frame, c = _public_frame(n=8, m=200)
    path = tmp_path / f"public_{layout}.h5"
    frame.to_hdf(path, key="table", format=layout)
    cfg = _cfg(tmp_path, max_constituents=200)
    ds = load_jets(path, cfg)
    assert isinstance(ds, JetDataset) and len(ds) == 8
    assert ds.constituents.dtype == np.float32 and ds.constituents.shape == (8, 200, 4)
    np.testing.assert_array_equal(ds.constituents, c)
    np.testing.assert_array_equal(ds.n_constituents, np.count_nonzero(c[:, :, 0] > 0, axis=1))
    np.testing.assert_array_equal(ds.is_signal, np.arange(8) % 2)
    assert ds.is_signal.dtype == np.int8 and ds.split.dtype == np.uint8
    np.testing.assert_array_equal(ds.split, assign_split(ds.is_signal, cfg.data.split, 11))
    np.testing.assert_array_equal(ds.truth_top_p4[1], [100.0, 200.0, 300.0, 400.0])
    assert ds.jet_p4.shape == (8, 4)
    assert "Top Quark Tagging" in ds.source


def test_public_layout_truncates_and_pads_to_max_constituents(tmp_path):
    frame, c = _public_frame(n=4, m=200)
    path = tmp_path / "public.h5"
    frame.to_hdf(path, key="table", format="fixed")
    short = load_jets(path, _cfg(tmp_path, max_constituents=30))
    np.testing.assert_array_equal(short.constituents, c[:, :30])
    np.testing.assert_array_equal(short.n_constituents, np.count_nonzero(c[:, :30, 0] > 0, axis=1))

    small, c10 = _public_frame(n=4, m=10)
    path10 = tmp_path / "public10.h5"
    small.to_hdf(path10, key="table", format="fixed")
    padded = load_jets(path10, _cfg(tmp_path, max_constituents=16))
    assert padded.constituents.shape == (4, 16, 4)
    np.testing.assert_array_equal(padded.constituents[:, :10], c10)
    assert np.all(padded.constituents[:, 10:] == 0.0)


def test_own_layout_round_trip_and_select(tmp_path):
    cfg = _cfg(tmp_path, max_constituents=12)
    path = tmp_path / "own.h5"
    arrays = _write_own(path, cfg, n=10, m=12)
    with h5py.File(path) as f:
        assert f.attrs["format"] == FORMAT_NAME
    ds = load_jets(path, cfg)
    np.testing.assert_array_equal(ds.constituents, arrays["constituents"])
    np.testing.assert_array_equal(ds.n_constituents, arrays["n_constituents"])
    np.testing.assert_array_equal(ds.split, arrays["split"])
    for name, code in SPLIT_CODES.items():
        part = ds.select(name)
        assert len(part) == int(np.sum(arrays["split"] == code)) and np.all(part.split == code)
    with pytest.raises(ValueError, match="unknown split"):
        ds.select("training")
    shorter = load_jets(path, _cfg(tmp_path, max_constituents=5))
    np.testing.assert_array_equal(shorter.constituents, arrays["constituents"][:, :5])
    np.testing.assert_array_equal(shorter.n_constituents, np.minimum(arrays["n_constituents"], 5))


def test_assign_split_is_deterministic_stratified_and_exact():
    labels = np.repeat([0, 1], 500).astype(np.int8)
    fractions = parse_config({}).data.split
    a = assign_split(labels, fractions, 5)
    np.testing.assert_array_equal(a, assign_split(labels, fractions, 5))
    assert not np.array_equal(a, assign_split(labels, fractions, 6))
    for label in (0, 1):
        counts = np.bincount(a[labels == label], minlength=3)
        np.testing.assert_array_equal(counts, [300, 50, 150])


# -- bad input: one line, exact fragments ----------------------------------------------------------


def _error(path: Path, cfg) -> str:
    with pytest.raises(DataError) as err:
        load_jets(path, cfg)
    msg = str(err.value)
    assert "\n" not in msg
    return msg


def test_missing_file_names_the_command(tmp_path):
    msg = _error(tmp_path / "nope.h5", _cfg(tmp_path))
    assert "nope.h5 does not exist" in msg
    assert "make data CONFIG=..." in msg and "kd-trigger data" in msg


def test_not_hdf5_and_empty_file(tmp_path):
    text = tmp_path / "jets.csv"
    text.write_text("E_0,PX_0\n1,2\n")
    assert "is not an HDF5 file; accepted layouts:" in _error(text, _cfg(tmp_path))
    empty = tmp_path / "empty.h5"
    empty.write_bytes(b"")
    assert "is empty (0 bytes)" in _error(empty, _cfg(tmp_path))


def test_unknown_layout_lists_accepted_layouts(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("jetConstituentList", data=np.zeros((2, 3, 4)))
    msg = _error(path, _cfg(tmp_path))
    assert "is in neither accepted layout (it holds jetConstituentList)" in msg
    assert "Top Quark Tagging" in msg and "kd_trigger's own file" in msg


def test_missing_datasets_and_columns_are_named(tmp_path):
    cfg = _cfg(tmp_path, max_constituents=12)
    path = tmp_path / "own.h5"
    _write_own(path, cfg)
    with h5py.File(path, "a") as f:
        del f["split"]
        del f["is_signal"]
    assert "lacks dataset(s) is_signal, split" in _error(path, cfg)

    frame, _ = _public_frame(n=4, m=200)
    public = tmp_path / "public.h5"
    frame.drop(columns=["PX_3", "is_signal_new"]).to_hdf(public, key="table", format="fixed")
    assert "lacks column(s) PX_3, is_signal_new" in _error(public, _cfg(tmp_path))


def test_nan_and_inf_are_counted_and_located(tmp_path):
    cfg = _cfg(tmp_path, max_constituents=12)
    c, _ = _fake_constituents(10, 12)
    c[2, 0, 1] = np.nan
    c[7, 1, 0] = np.inf
    path = tmp_path / "own.h5"
    _write_own(path, cfg, constituents=c)
    assert "2 NaN/inf value(s) in dataset constituents (first in jet 2)" in _error(path, cfg)

    frame, _ = _public_frame(n=4, m=200)
    frame.loc[1, "PZ_5"] = np.nan
    public = tmp_path / "public.h5"
    frame.to_hdf(public, key="table", format="fixed")
    assert "1 NaN/inf value(s) in column(s) PZ_5 (first in jet 1)" in _error(public, _cfg(tmp_path))


def test_zero_jets(tmp_path):
    cfg = _cfg(tmp_path, max_constituents=12)
    path = tmp_path / "own.h5"
    empty = {
        "constituents": np.zeros((0, 12, 4), np.float32),
        "n_constituents": np.zeros(0, np.int32),
        "is_signal": np.zeros(0, np.int8),
        "jet_p4": np.zeros((0, 4)),
        "truth_top_p4": np.zeros((0, 4)),
        "split": np.zeros(0, np.uint8),
    }
    write_jets_file(path, empty, cfg)
    assert "holds zero jets" in _error(path, cfg)

    frame, _ = _public_frame(n=4, m=200)
    public = tmp_path / "public.h5"
    frame.iloc[:0].to_hdf(public, key="table", format="fixed")
    assert "holds zero jets" in _error(public, _cfg(tmp_path))


def test_cli_data_with_bad_data_path_exits_2_and_writes_nothing(tmp_path, capsys):
    artifacts = tmp_path / "artifacts"
    config = tmp_path / "bad.yaml"
    missing = tmp_path / "no_such_jets.h5"
    config.write_text(
        yaml.safe_dump(
            {"run": {"name": "bad", "artifacts_dir": str(artifacts)}, "data": {"path": str(missing)}}
        )
    )
    assert main(["data", "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"kd-trigger data: error: data.path {missing} does not exist; point it at an HDF5 jet file or remove it"
    ]
    assert not artifacts.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml"]


def test_data_stage_on_good_data_path_only_validates(tmp_path):
    from kd_trigger.stages import run_targets

    cfg = _cfg(tmp_path, max_constituents=12, split={"train": 0.5, "val": 0.25, "test": 0.25})
    path = tmp_path / "given.h5"
    _write_own(path, cfg, n=40)
    before = path.read_bytes()
    cfg = _cfg(tmp_path, max_constituents=12, path=str(path), split={"train": 0.5, "val": 0.25, "test": 0.25})
    assert run_targets(cfg, ["data"]) == 0
    assert path.read_bytes() == before
    summary = json.loads((cfg.artifacts / "data" / "summary.json").read_text())
    assert summary["source"] == str(path) and summary["n_jets"] == 40
    assert summary["counts"] == {
        "train": {"top": 10, "qcd": 10},
        "val": {"top": 5, "qcd": 5},
        "test": {"top": 5, "qcd": 5},
    }
    assert sorted(p.name for p in (cfg.artifacts / "data").iterdir()) == ["summary.json"]


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ("one class", "val has 0 qcd; test has 0 qcd"),
        ("too few", "val has 1 top; val has 1 qcd"),
    ],
)
def test_data_a_stage_cannot_train_on_is_refused_at_the_data_stage(tmp_path, labels, message):
    from kd_trigger.stages import run_targets

    split = {"train": 0.5, "val": 0.25, "test": 0.25}
    cfg = _cfg(tmp_path, max_constituents=12, split=split)
    path = tmp_path / "given.h5"
    if labels == "one class":
        is_signal = np.ones(40, dtype=np.int8)
        _write_own(path, cfg, n=40, is_signal=is_signal, split=assign_split(is_signal, cfg.data.split, 11))
    else:
        _write_own(path, cfg, n=8)
    cfg = _cfg(tmp_path, max_constituents=12, path=str(path), split=split)
    with pytest.raises(DataError, match="too few jets to train and test") as err:
        run_targets(cfg, ["data"])
    assert message in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "artifacts").exists()


def test_table_key_that_pandas_cannot_read(tmp_path):
    path = tmp_path / "fake.h5"
    with h5py.File(path, "w") as f:
        f.create_group("table").create_dataset("x", data=np.zeros(3))
    msg = _error(path, _cfg(tmp_path))
    assert "key 'table' is not a pandas table" in msg and "accepted:" in msg


@pytest.mark.parametrize("layout", ["fixed", "table"])
def test_public_file_is_read_in_chunks_with_bounded_memory(tmp_path, layout):
    """A multi-chunk Top Quark Tagging file: chunked reading gives exactly the whole-file result, and the
    memory it holds at its peak is the output arrays plus about one chunk, not the whole frame."""
    import tracemalloc

    from kd_trigger.data.readers import read_public_chunks

    n = 6000
    frame, c = _public_frame(n=n, m=200, seed=9)
    path = tmp_path / "multi.h5"
    frame.to_hdf(path, key="table", format=layout)
    frame_bytes = frame.memory_usage(index=False).sum()
    del frame
    cfg = _cfg(tmp_path, max_constituents=200)
    chunk_rows = 300  # 20 chunks
    tracemalloc.start()
    try:
        ds = read_public_chunks(path, cfg, chunk_rows=chunk_rows)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    whole = load_jets(path, cfg)  # one chunk: the whole file
    np.testing.assert_array_equal(ds.constituents, c)
    np.testing.assert_array_equal(ds.constituents, whole.constituents)
    np.testing.assert_array_equal(ds.is_signal, whole.is_signal)
    np.testing.assert_array_equal(ds.truth_top_p4, whole.truth_top_p4)
    output = ds.constituents.nbytes + ds.jet_p4.nbytes + ds.truth_top_p4.nbytes
    chunk = frame_bytes * chunk_rows / n
    assert peak < output + 6 * chunk, (peak, output, chunk)
    assert peak < output + frame_bytes / 2  # a whole-frame read would hold all of it at once


def test_a_directory_of_train_val_test_files_keeps_their_split(tmp_path):
    for i, name in enumerate(("train", "val", "test")):
        frame, _ = _public_frame(n=6 + i, m=20, seed=i)
        frame.to_hdf(tmp_path / f"{name}.h5", key="table", format="fixed")
    ds = load_jets(tmp_path, _cfg(tmp_path, max_constituents=20))
    assert len(ds) == 6 + 7 + 8
    np.testing.assert_array_equal(ds.split, [0] * 6 + [1] * 7 + [2] * 8)
    assert "train/val/test files" in ds.source
    (tmp_path / "val.h5").unlink()
    with pytest.raises(DataError, match="lacks val.h5"):
        load_jets(tmp_path, _cfg(tmp_path))
