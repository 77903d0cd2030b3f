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
    assert main(["hls", "--model", str(path), "--out", str(tmp_path / "fw")]) == 2
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
    from kd_trigger.hls.pipeline import FAILED_MARKER, convert_saved_model

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
