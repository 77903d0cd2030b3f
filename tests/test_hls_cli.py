"""`kd-trigger hls --model PATH.h5 --out DIR [--data FILE.npy]`: any saved QKeras model, bit-exact or a clear error."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kd_trigger.cli import main
from kd_trigger.config import StudentConfig

pytestmark = pytest.mark.slow

tf = pytest.importorskip("tensorflow")


def _save(model, path):
    model.save(path, save_format="h5")
    return path


@pytest.fixture(scope="module")
def student_h5(tmp_path_factory):
    from kd_trigger.models.students import build_student

    model = build_student(StudentConfig(name="small", kind="mlp", n_particles=8, hidden=(16, 8)))
    rng = np.random.default_rng(4)
    for layer in model.layers:
        if hasattr(layer, "kernel"):
            layer.kernel.assign(rng.normal(0.0, 0.5, layer.kernel.shape).astype(np.float32))
            layer.bias.assign(rng.normal(0.0, 0.5, layer.bias.shape).astype(np.float32))
    return _save(model, tmp_path_factory.mktemp("models") / "small.h5")


@pytest.fixture(scope="module")
def converted_dir(student_h5, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "fw"
    status = main(["hls", "--model", str(student_h5), "--out", str(out)])
    return status, out


def test_cli_converts_and_is_bit_exact_on_random_edge_inputs(converted_dir):
    status, out = converted_dir
    assert status == 0
    report = json.loads((out / "hls_report.json").read_text())
    csim = report["csim"]
    assert csim["n_samples"] == 10_000
    assert csim["exact_fraction"] == 1.0
    assert csim["max_abs_diff"] == 0.0
    assert csim["argmax_agreement"] == 1.0
    assert set(csim) >= {
        "n_samples",
        "exact_fraction",
        "max_abs_diff",
        "argmax_agreement",
        "auc_qkeras",
        "auc_hls",
    }
    for key in ("backend", "part", "clock_period_ns", "reuse_factor", "precision", "resources", "seconds"):
        assert key in report, key
    assert report["backend"] == "Vitis"
    assert report["precision"]["particles"]["result"] == "ap_fixed<12,5,AP_RND_CONV,AP_SAT>"
    assert report["seconds"]["compile"] > 0
    assert (out / "firmware" / "kd_trigger_student.cpp").is_file()


def test_cli_refuses_a_non_empty_out_dir(student_h5, converted_dir, capsys):
    _, out = converted_dir
    assert main(["hls", "--model", str(student_h5), "--out", str(out)]) == 2
    assert "not empty" in capsys.readouterr().err


def test_cli_data_file_checked(student_h5, tmp_path, capsys):
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((5, 8, 6), dtype=np.float32))
    assert main(["hls", "--model", str(student_h5), "--out", str(tmp_path / "a"), "--data", str(wrong)]) == 2
    assert "does not match the model input (N, 8, 7)" in capsys.readouterr().err
    nan = tmp_path / "nan.npy"
    x = np.zeros((5, 8, 7), dtype=np.float32)
    x[2, 3, 1] = np.nan
    np.save(nan, x)
    assert main(["hls", "--model", str(student_h5), "--out", str(tmp_path / "b"), "--data", str(nan)]) == 2
    assert "NaN" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_cli_model_without_input_quantizer(tmp_path, capsys):
    from qkeras import QDense, quantized_bits

    inp = tf.keras.Input((7,))
    y = QDense(
        2, kernel_quantizer=quantized_bits(8, 1, alpha=1), bias_quantizer=quantized_bits(8, 3, alpha=1)
    )(inp)
    path = _save(tf.keras.Model(inp, y), tmp_path / "noq.h5")
    # with a type given for the model's float layers, hls4ml's default design (issue 22) is not taken
    args = ["--default-precision", "ap_fixed<16,6>"]
    assert main(["hls", "--model", str(path), "--out", str(tmp_path / "fw"), *args]) == 2
    err = capsys.readouterr().err
    assert "no input quantizer" in err and "QActivation(quantized_bits" in err
    assert len(err.strip().splitlines()) == 1


def test_cli_unsupported_layer_names_it(tmp_path, capsys):
    from qkeras import QActivation, QDense, quantized_bits

    inp = tf.keras.Input((7,))
    y = QActivation(quantized_bits(8, 3, alpha=1), name="input_quant")(inp)
    y = tf.keras.layers.GaussianNoise(0.1, name="noise")(y)
    y = QDense(
        2, kernel_quantizer=quantized_bits(8, 1, alpha=1), bias_quantizer=quantized_bits(8, 3, alpha=1)
    )(y)
    path = _save(tf.keras.Model(inp, y), tmp_path / "noise.h5")
    assert main(["hls", "--model", str(path), "--out", str(tmp_path / "fw")]) == 2
    err = capsys.readouterr().err
    assert "'noise' (GaussianNoise)" in err and "not supported by hls4ml" in err


def test_cli_missing_model_file(tmp_path, capsys):
    assert main(["hls", "--model", str(tmp_path / "none.h5"), "--out", str(tmp_path / "fw")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_a_wrong_firmware_weight_fails_the_gate_and_leaves_a_marker(student_h5, tmp_path):
    """Negative control: one weight of the written firmware changed before compiling. The C simulation
    must fail (exit status 1), name the layer, and leave the project with a marker saying why."""
    from kd_trigger.config import HlsConfig
    from kd_trigger.errors import CsimMismatchError
    from kd_trigger.hls.saved_model import convert_saved_model
    from kd_trigger.layout import CSIM_FAILED_FILE as FAILED_MARKER

    def corrupt(hls_model) -> None:
        layer = next(layer for layer in hls_model.get_layers() if layer.name == "dense_0")
        layer.weights["weight"].data.flat[0] += 0.25

    out = tmp_path / "fw"
    with pytest.raises(CsimMismatchError) as err:
        convert_saved_model(student_h5, out, None, HlsConfig(), on_converted=corrupt)
    assert err.value.exit_code == 1
    assert "first diverging layer: 'dense_0'" in str(err.value)
    report = json.loads((out / "hls_report.json").read_text())
    assert report["csim"]["exact_fraction"] < 1.0 and report["csim"]["first_divergent_layer"] == "dense_0"
    assert "dense_0" in (out / FAILED_MARKER).read_text()


def test_cli_force_replaces_a_previous_project(student_h5, converted_dir, capsys):
    _, out = converted_dir
    stamp = (out / "hls_report.json").stat().st_mtime_ns
    assert main(["hls", "--model", str(student_h5), "--out", str(out), "--force", "--reuse", "2"]) == 0
    report = json.loads((out / "hls_report.json").read_text())
    assert (out / "hls_report.json").stat().st_mtime_ns != stamp
    assert report["reuse_factor"] == 2 and report["resources"]["ii_cycles"] == 2


def test_a_killed_conversion_leaves_no_project_and_the_next_run_cleans_up(student_h5, tmp_path):
    """``hls --model`` builds in a staging directory beside ``--out`` and moves it there only after the C
    simulation passed: killed half way, ``--out`` does not exist (no complete-looking project without
    ``hls_report.json``); the next run removes the dead run's staging directory and succeeds."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "fw"
    proc = subprocess.Popen(
        [sys.executable, "-m", "kd_trigger", "hls", "--model", str(student_h5), "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    staging: list = []
    while time.monotonic() < deadline and proc.poll() is None:
        staging = [p for p in tmp_path.iterdir() if p.name != "fw" and "kdt" in p.name]
        if any((p / "firmware").exists() for p in staging):  # the project is being written
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the conversion finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert staging and not out.exists()
    assert main(["hls", "--model", str(student_h5), "--out", str(out)]) == 0
    assert (out / "hls_report.json").is_file()
    assert not [p for p in tmp_path.iterdir() if "kdt" in p.name], "the dead run's staging was left"


def test_vendor_synthesis_plumbing_with_a_stand_in_tool(student_h5, tmp_path, monkeypatch):
    """``--synth`` with a stand-in ``vitis-run`` on PATH whose "build" copies a real Vitis HLS report layout
    (tests/fixtures/reports/vitis_hls_2024) into the project: hls4ml's own build() calls it in the project,
    the report is read back into ``vendor_hls`` and outranks our estimate in the design's figures."""
    import os
    import stat

    from conftest import REPO

    from kd_trigger.contracts import HlsReport
    from kd_trigger.fpga.figures import design_figures
    from kd_trigger.fpga.reports import read_report_path

    fixture = REPO / "tests" / "fixtures" / "reports" / "vitis_hls_2024"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool = bin_dir / "vitis-run"
    tool.write_text(
        "#!/bin/sh\n# stand-in for Vitis HLS: records how it was called, then 'builds' a real report layout\n"
        f'echo "$@" > vitis-run.args\ncp build_opt.tcl vitis-run.opts\ncp -R "{fixture}/myproject_prj" .\n'
    )
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    out = tmp_path / "fw"
    status = main(["hls", "--model", str(student_h5), "--out", str(out), "--synth"])
    assert status == 0
    assert (out / "vitis-run.args").read_text().split() == ["--tcl", "build_prj.tcl", "--mode", "hls"]
    opts = (out / "vitis-run.opts").read_text()
    assert "csim       0" in opts and "synth      1" in opts and "vsynth     0" in opts
    report = json.loads((out / "hls_report.json").read_text())
    want = read_report_path(fixture)
    vendor = report["vendor_hls"]
    assert vendor["tool"] == "Vitis HLS 2024.1" and vendor["source"] == want["hls_source"]
    assert {k: vendor[k] for k in ("lut", "ff", "dsp", "bram_18k", "uram")} == want["hls"]
    assert (vendor["latency_cycles"], vendor["ii_cycles"]) == (want["latency_cycles"], want["ii_cycles"])
    assert report["vendor_synth"] is None
    # the vendor report outranks our estimate in the figures a verdict reads
    [design] = design_figures(HlsReport.model_validate(report))
    assert design.flow == "hls4ml" and design.best("lut") == (want["hls"]["lut"], want["hls_source"])
    assert design.best("latency_ns") == (want["latency_ns"], want["hls_source"])


def _sequential_mlp():
    """A QKeras MLP built as hls4ml's tutorials build models: keras.Sequential, no layer names."""
    from qkeras import QActivation, QDense, quantized_bits, quantized_relu

    model = tf.keras.Sequential(
        [
            tf.keras.Input((16,)),
            QActivation(quantized_bits(12, 4, alpha=1)),
            QDense(
                8,
                kernel_quantizer=quantized_bits(8, 1, alpha=1),
                bias_quantizer=quantized_bits(8, 3, alpha=1),
            ),
            QActivation(quantized_relu(8, 3)),
            QDense(
                3,
                kernel_quantizer=quantized_bits(8, 1, alpha=1),
                bias_quantizer=quantized_bits(8, 3, alpha=1),
            ),
        ]
    )
    rng = np.random.default_rng(5)
    for layer in model.layers:
        if hasattr(layer, "kernel"):
            layer.kernel.assign(rng.normal(0.0, 0.5, layer.kernel.shape).astype(np.float32))
            layer.bias.assign(rng.normal(0.0, 0.5, layer.bias.shape).astype(np.float32))
    return model


def test_a_sequential_model_is_the_same_model_as_a_functional_one(tmp_path):
    """A Sequential model lists no InputLayer, which every walk over a model starts from (it crashed with
    an AssertionError, exit 1): it is loaded as the functional equivalent, same layers, same outputs."""
    from kd_trigger.hls.saved_model import load_qkeras_model

    model = _sequential_mlp()
    loaded = load_qkeras_model(_save(model, tmp_path / "seq.h5"))
    assert not isinstance(loaded, tf.keras.Sequential)
    assert type(loaded.layers[0]).__name__ == "InputLayer"
    assert [type(layer).__name__ for layer in loaded.layers[1:]] == [
        type(layer).__name__ for layer in model.layers
    ]
    x = np.random.default_rng(0).normal(0, 2, (64, 16)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_a_sequential_model_converts_and_is_bit_exact(tmp_path):
    path = _save(_sequential_mlp(), tmp_path / "seq.h5")
    out = tmp_path / "fw"
    assert main(["hls", "--model", str(path), "--out", str(out)]) == 0
    csim = json.loads((out / "hls_report.json").read_text())["csim"]
    assert (csim["n_samples"], csim["exact_fraction"], csim["max_abs_diff"]) == (10_000, 1.0, 0.0)
