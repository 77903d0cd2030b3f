"""Generation with the real Pythia 8 + FastJet: layout, cuts, physics sanity, byte-identical output.

One small generated file (session fixture) serves every slow check here to keep the suite fast.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from kd_trigger.cli import main
from kd_trigger.config import parse_config
from kd_trigger.data.dataset import FORMAT_NAME
from kd_trigger.data.features import jet_kinematics
from kd_trigger.data.generate import chunk_seed, generate_to_file, plan_chunks
from kd_trigger.data.pythia_worker import LABEL_QCD, LABEL_TOP, PYTHIA_SEED_MAX
from kd_trigger.data.readers import load_jets
from kd_trigger.errors import ConfigError
from kd_trigger.stages import read_record, run_targets

N_JETS = 300
MAX_CONSTITUENTS = 120


def _raw(artifacts: Path, n_jets: int, chunk_jets: int, workers: int, seed: int = 21) -> dict:
    return {
        "run": {"name": "gen", "seed": seed, "artifacts_dir": str(artifacts)},
        "data": {
            "n_jets": n_jets,
            "max_constituents": MAX_CONSTITUENTS,
            "workers": workers,
            "split": {"train": 0.6, "val": 0.1, "test": 0.3},
            "generator": {"chunk_jets": chunk_jets},
        },
    }


@pytest.fixture(scope="session")
def generated(tmp_path_factory) -> tuple[Path, object]:
    """300 jets (150 top + 150 QCD) through the stage entry point, two workers."""
    artifacts = tmp_path_factory.mktemp("gen") / "artifacts"
    cfg = parse_config(_raw(artifacts, N_JETS, chunk_jets=25, workers=2))
    assert run_targets(cfg, ["data"]) == 0
    return cfg.data_path, cfg


# -- fast: planning ---------------------------------------------------------------------------------


def test_chunk_plan_and_seeds_are_deterministic_and_in_range(tmp_path):
    cfg = parse_config(_raw(tmp_path, 110, chunk_jets=20, workers=3))
    tasks = plan_chunks(cfg)
    assert [(t.label, t.chunk_index, t.n_jets) for t in tasks] == [
        *[(LABEL_TOP, i, 20) for i in range(2)],
        (LABEL_TOP, 2, 15),
        *[(LABEL_QCD, i, 20) for i in range(2)],
        (LABEL_QCD, 2, 15),
    ]
    seeds = [t.seed for t in tasks]
    assert len(set(seeds)) == len(seeds) and all(1 <= s <= PYTHIA_SEED_MAX for s in seeds)
    assert seeds == [chunk_seed(21, t.label, t.chunk_index) for t in tasks]
    assert chunk_seed(21, LABEL_TOP, 0) != chunk_seed(22, LABEL_TOP, 0)


def test_odd_n_jets_is_a_config_error(tmp_path):
    cfg = parse_config(_raw(tmp_path / "a", 301, chunk_jets=20, workers=1))
    with pytest.raises(ConfigError, match=r"data\.n_jets must be even .* got 301"):
        generate_to_file(cfg, tmp_path / "x.h5")
    assert not (tmp_path / "x.h5").exists()


# -- slow: the generated file -----------------------------------------------------------------------


@pytest.mark.slow
def test_generated_file_layout_balance_and_split(generated):
    path, cfg = generated
    assert path == cfg.data_path and path.is_file()
    record = read_record(cfg, "data")
    assert record is not None and record.stage == "data"
    assert [o.path for o in record.outputs] == [str(path.parent)]
    summary = json.loads((path.parent / "summary.json").read_text())
    assert summary["counts"]["train"] == {"top": 90, "qcd": 90} and summary["n_jets"] == N_JETS
    with h5py.File(path) as f:
        assert f.attrs["format"] == FORMAT_NAME and int(f.attrs["format_version"]) == 1
        assert int(f.attrs["seed"]) == 21
        assert json.loads(f.attrs["generator"])["pthat_min_gev"] == 500.0
        assert "pythia8mc" in json.loads(f.attrs["versions"])
        assert f["constituents"].shape == (N_JETS, MAX_CONSTITUENTS, 4)
        assert f["constituents"].dtype == np.float32
        assert f["jet_p4"].shape == (N_JETS, 4) and f["truth_top_p4"].shape == (N_JETS, 4)
        assert f["split"].dtype == np.uint8
        is_signal = f["is_signal"][...]
        split = f["split"][...]
    assert int(np.sum(is_signal == 1)) == N_JETS // 2 and int(np.sum(is_signal == 0)) == N_JETS // 2
    # Interleaved, not 150 tops then 150 QCD.
    assert 0 < int(np.sum(is_signal[: N_JETS // 2])) < N_JETS // 2
    for label in (0, 1):
        np.testing.assert_array_equal(np.bincount(split[is_signal == label], minlength=3), [90, 15, 45])


@pytest.mark.slow
def test_generated_jets_pass_cuts_are_ordered_and_zero_padded(generated):
    path, cfg = generated
    ds = load_jets(path, cfg)
    gen = cfg.data.generator
    pt, eta = ds.jet_p4[:, 0], ds.jet_p4[:, 1]
    assert np.all((pt >= gen.jet_pt_min_gev) & (pt <= gen.jet_pt_max_gev))
    assert np.all(np.abs(eta) < gen.jet_abs_eta_max)
    # The stored constituents add up to the clustered jet (E-scheme), up to float32 rounding.
    summed = jet_kinematics(ds.constituents)
    truncated = ds.n_constituents == MAX_CONSTITUENTS
    np.testing.assert_allclose(summed[~truncated, 0], pt[~truncated], rtol=1e-4)
    c = ds.constituents.astype(np.float64)
    particle_pt = np.hypot(c[:, :, 1], c[:, :, 2])
    assert np.all(np.diff(particle_pt, axis=1) <= 0.0)
    rows = np.arange(MAX_CONSTITUENTS)[None, :]
    real = rows < ds.n_constituents[:, None]
    assert np.all(ds.constituents[real][:, 0] > 0.0)
    assert np.all(ds.constituents[~real] == 0.0)
    assert np.all(ds.n_constituents >= 2)


@pytest.mark.slow
def test_generated_physics_sanity(generated):
    path, cfg = generated
    ds = load_jets(path, cfg)
    top, qcd = ds.is_signal == 1, ds.is_signal == 0
    mass = ds.jet_p4[:, 3]
    assert 160.0 <= float(np.median(mass[top])) <= 190.0
    assert float(np.median(mass[qcd])) < 120.0
    assert float(np.median(ds.n_constituents[top])) > float(np.median(ds.n_constituents[qcd]))
    assert np.all(ds.truth_top_p4[qcd] == 0.0)
    truth = ds.truth_top_p4[top]
    truth_pt = np.hypot(truth[:, 1], truth[:, 2])
    truth_eta, truth_phi = np.arcsinh(truth[:, 3] / truth_pt), np.arctan2(truth[:, 2], truth[:, 1])
    dphi = (truth_phi - ds.jet_p4[top, 2] + np.pi) % (2 * np.pi) - np.pi
    assert np.all(np.hypot(truth_eta - ds.jet_p4[top, 1], dphi) < cfg.data.generator.top_match_dr)
    assert np.all(np.abs(truth[:, 0] ** 2 - np.sum(truth[:, 1:] ** 2, axis=1)) > 140.0**2)


@pytest.mark.slow
def test_second_call_is_skipped_as_up_to_date(generated):
    path, cfg = generated
    before = path.stat().st_mtime_ns
    assert run_targets(cfg, ["data"]) == 0
    assert path.stat().st_mtime_ns == before


@pytest.mark.slow
def test_same_seed_gives_byte_identical_files_with_one_and_two_workers(tmp_path, capfd):
    out1, out2 = tmp_path / "w1.h5", tmp_path / "w2.h5"
    config = tmp_path / "gen.yaml"
    config.write_text(yaml.safe_dump(_raw(tmp_path / "artifacts", 120, chunk_jets=20, workers=2)))
    capfd.readouterr()
    # One worker through the CLI: its stdout must stay clean (no FastJet banner).
    assert main(["data", "--config", str(config), "--out", str(out1), "--workers", "1"]) == 0
    assert capfd.readouterr().out == ""
    cfg2 = parse_config(_raw(tmp_path / "artifacts", 120, chunk_jets=20, workers=2))
    generate_to_file(cfg2, out2)
    assert out1.read_bytes() == out2.read_bytes()
    assert not (tmp_path / "artifacts").exists()  # --out writes only that file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gen.yaml", "w1.h5", "w2.h5"]


def test_existing_out_file_is_not_overwritten_without_force(tmp_path, capsys):
    out = tmp_path / "jets.h5"
    out.write_bytes(b"an earlier run")
    config = tmp_path / "gen.yaml"
    config.write_text(yaml.safe_dump(_raw(tmp_path / "artifacts", 120, chunk_jets=20, workers=1)))
    assert main(["data", "--config", str(config), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "already exists" in err and "--force" in err
    assert out.read_bytes() == b"an earlier run"
