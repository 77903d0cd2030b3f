"""Issue 22 corpus: public hls4ml designs (tests/fixtures/corpus), each converted as published with
``kd-trigger hls --model M --hls-config hls4ml_config.yml --out DIR``.

The fast tests check the fixtures themselves (every design cited with its repository and commit, every
file present, every vendor report parsed, every configuration read as this project reads it); the slow
ones convert each design with hls4ml and g++ and check the verdict its ``expect`` entry states: exit 0 or
3 with the C simulation exact against the configured types and the precision loss reported, or the one
exit-2 line that says why it cannot be built.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import snapshot
from conftest import REPO

from kd_trigger.cli import main
from kd_trigger.fpga.reports import CsynthReport, UtilizationReport, parse_report_file
from kd_trigger.hls.project_config import read_project_config

CORPUS = REPO / "tests" / "fixtures" / "corpus"
INDEX = json.loads((CORPUS / "corpus.json").read_text())
DESIGNS: dict[str, dict[str, Any]] = {d["name"]: d for d in INDEX["designs"]}
EXCLUDED = {
    # kept for an independent check (issue 22), and one with the same history as an excluded one
    "camillaMiao/Hls-and-bambu",
    "uw-acme/HLS4ML_VS_MANUAL",
    "fastmachinelearning/ml4quantum-release",
    "ArgyKokk/hls4ml_MLP_estimator",
    "Brainz22/L1JetTagger",
    "ucsd-hep-ex/L1JetTagger",
}


def _converting() -> list[str]:
    return [name for name, d in DESIGNS.items() if d["expect"]["exit"] != 2]


def test_every_design_is_cited_and_none_comes_from_an_excluded_or_calibration_repository() -> None:
    calibration = json.loads((REPO / "tests" / "fixtures" / "calibration" / "designs.json").read_text())
    # the calibration set's own repositories (a corpus design added to it for the estimator does not count)
    used = {d["repo"] for d in calibration["designs"] if d["id"] not in DESIGNS}
    assert len(used) == 10
    readme = (CORPUS / "README.md").read_text()
    assert sorted(p.name for p in CORPUS.iterdir() if p.is_dir()) == sorted(DESIGNS)
    for name, design in DESIGNS.items():
        assert re.fullmatch(r"[0-9a-f]{40}", design["commit"]), name
        assert design["repository"] not in EXCLUDED | used, name
        assert f"`{name}`" in readme and f"{design['repository']}@{design['commit']}" in readme, name
        listed = set(design["files"])
        assert sorted(p.name for p in (CORPUS / name).iterdir()) == sorted(listed), name
        assert design["model"] in listed and "hls4ml_config.yml" in listed, name
        assert set(design["reports"].values()) <= listed, name


def test_the_corpus_is_small_and_has_ten_designs() -> None:
    size = sum(p.stat().st_size for p in CORPUS.rglob("*") if p.is_file())
    assert size < 1_000_000, size
    assert len(DESIGNS) >= 10


def test_every_vendor_report_parses_with_the_project_reader() -> None:
    read = {}
    for name, design in DESIGNS.items():
        for kind, file in design["reports"].items():
            report = parse_report_file(CORPUS / name / file)
            assert isinstance(report, CsynthReport if kind == "hls" else UtilizationReport), (name, file)
            read[name, kind] = report
    figures = {
        name: (
            r.tool,
            r.tool_version,
            r.part,
            r.clock_period_ns,
            r.latency_worst_cycles,
            r.interval_max_cycles,
        )
        for (name, kind), r in read.items()
        if isinstance(r, CsynthReport)
    }
    assert figures == {
        "jet_qdense_vitis_accel": ("Vitis HLS", "2022.2", "xcu55c-fsvh2892-2L-e", 3.33, 28, 3),
        "jet_qdense_rf64_pynq": ("Vivado HLS", "2019.2", "xc7z020-clg400-1", 5.0, 258, 64),
        "u55c_qdense_64_32_1": ("Vitis HLS", "2022.1", "xcu55c-fsvh2892-2L-e", 5.0, 9, 1),
        "hgq_jet_3layer_z7020": ("Vitis HLS", "2024.2", "xc7z020-clg400-1", 5.0, 41, 1),
    }
    synth = read["u55c_qdense_64_32_1", "synth"]
    assert isinstance(synth, UtilizationReport)
    assert (synth.resources["lut"], synth.resources["ff"], synth.resources["dsp"]) == (42776, 19981, 19)


def test_old_format_and_accelerator_configs_map_to_the_core_design() -> None:
    """What an engineer expects from a config hls4ml wrote for a board or kernel shell, or before 1.0:
    the core design its HLSConfig describes, on the part it names (XilinxPart is Part's old name)."""
    read = {name: read_project_config(CORPUS / name / "hls4ml_config.yml") for name in DESIGNS}
    overrides = {name: cfg.overrides for name, cfg in read.items()}
    assert overrides["jet_qdense_vitis_accel"] == {
        "hls.backend": "Vitis",  # VitisAccelerator
        "hls.part": "xcvu13p-flga2577-2-e",
        "hls.clock_period_ns": 5.0,
        "hls.reuse_factor": 1,
    }
    assert overrides["jet_qdense_rf64_pynq"] == {
        "hls.backend": "Vivado",  # Pynq
        "hls.part": "xc7z020clg400-1",  # XilinxPart
        "hls.clock_period_ns": 5.0,
        "hls.reuse_factor": 64,
        "hls.strategy": "Resource",
    }
    assert overrides["jet_dense_float_luisspader"]["hls.part"] == "xcu250-figd2104-2L-e"  # XilinxPart
    assert read["jet_qdense_rf64_pynq"].layer_reuse == {
        "fc1": 64,
        "fc2": 64,
        "fc3": 64,
        "output": 64,
        "relu1": 1,
        "relu2": 1,
        "relu3": 1,
        "softmax": 1,
    }
    # hls4ml 0.x's ConvImplementation Pointwise is dropped (hls4ml 1.x refuses the word, picks it itself)
    assert "ConvImplementation" not in read["pointwise_conv1d_8_3"].hls_config["LayerName"]["conv1d"]
    assert read["capstone_qdense_rf32"].layer_types["qdense1"]["accum"] == "ap_fixed<16,10>"


def _refused_designs() -> list[str]:
    return [name for name, d in DESIGNS.items() if d["expect"]["exit"] == 2]


@pytest.mark.parametrize("name", _refused_designs())
def test_a_design_that_cannot_be_built_is_refused_in_one_line_saying_why(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """HGQ, types narrower than the reference emulates: exit 2 before
    anything is converted, the line of corpus.json's ``expect`` (README says why), nothing written."""
    design = DESIGNS[name]
    d = CORPUS / name
    before = snapshot(tmp_path)
    capsys.readouterr()
    argv = ["hls", "--model", str(d / design["model"]), "--hls-config", str(d / "hls4ml_config.yml")]
    assert main([*argv, "--out", str(tmp_path / "fw")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == ["kd-trigger hls: error: " + design["expect"]["message"].replace("{dir}", str(d))]
    assert snapshot(tmp_path) == before


@pytest.mark.slow
@pytest.mark.parametrize("name", _converting())
def test_the_design_converts_as_published_exact_with_its_precision_loss(name: str, tmp_path: Path) -> None:
    design = DESIGNS[name]
    d = CORPUS / name
    config = d / "hls4ml_config.yml"
    out = tmp_path / "fw"
    code = main(["hls", "--model", str(d / design["model"]), "--hls-config", str(config), "--out", str(out)])
    assert code in design["expect"]["exit"]
    report = json.loads((out / "hls_report.json").read_text())
    assert report["csim"]["exact_fraction"] == 1.0
    expect = design["expect"]
    assert report["strategy"] == expect["strategy"] and report["backend"] == expect["backend"]
    assert report["reuse_by_layer"] == expect["reuse_by_layer"]
    loss = report["precision_loss"]
    assert loss["design"].startswith(f"--hls-config {config}")
    assert loss["first_overflow_layer"] == expect["first_overflow_layer"]
    assert loss["n_samples"] == 10_000 and list(loss["layers"]) == expect["loss_layers"]


def test_a_keras_file_saved_on_windows_is_read_from_a_copy_with_posix_group_names(tmp_path: Path) -> None:
    """Keras on Windows named the weight groups ``layers\\dense``; the copy holds the same arrays under
    ``layers/dense`` and every other file of the zip unchanged (h5py only: no model is built here)."""
    import io
    import zipfile

    import h5py
    import numpy as np

    from kd_trigger.hls.saved_model import posix_weight_paths, windows_weight_path

    original = CORPUS / "fatigue_dense_16_8_3" / "keras_model.keras"
    assert windows_weight_path(original) == "layers\\dense"
    copy = posix_weight_paths(original, tmp_path)
    assert copy.parent == tmp_path and windows_weight_path(copy) is None
    with zipfile.ZipFile(original) as a, zipfile.ZipFile(copy) as b:
        assert sorted(a.namelist()) == sorted(b.namelist())
        assert all(a.read(n) == b.read(n) for n in a.namelist() if n != "model.weights.h5")
        before: dict[str, np.ndarray] = {}
        with h5py.File(io.BytesIO(a.read("model.weights.h5")), "r") as f:
            f.visititems(lambda n, o: before.update({n: o[()]}) if isinstance(o, h5py.Dataset) else None)
        after: dict[str, np.ndarray] = {}
        with h5py.File(io.BytesIO(b.read("model.weights.h5")), "r") as f:
            f.visititems(lambda n, o: after.update({n: o[()]}) if isinstance(o, h5py.Dataset) else None)
    assert "layers/dense/vars/0" in after and len(before) == len(after) >= 4
    assert sorted(after) == sorted(n.replace("\\", "/") for n in before)
    for name, value in before.items():
        assert np.array_equal(after[name.replace("\\", "/")], value), name
