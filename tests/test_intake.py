"""Real-world QKeras models in: every form a public trigger tagger was saved in converts with one command
and is bit-exact where exactness applies (the layer before a final softmax), or is refused in one line.

The models are built the way people build them: quantizers with ``alpha=None``, no input quantizer,
``QDense`` applied to (particles, features), an unquantized ``Dense`` head, a final ``Softmax``, a
``BatchNormalization``, average pooling over a count that is not a power of two.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from layer_base import l1_deep_sets as deep_sets

from kd_trigger.cli import main

pytestmark = pytest.mark.slow

tf = pytest.importorskip("tensorflow")

INTAKE = ["--input-precision", "ap_fixed<12,4>", "--default-precision", "ap_fixed<16,6>"]


def _save(model, path: Path) -> str:
    model.save(path, save_format="h5")
    return str(path)


def _report(out: Path) -> dict:
    return json.loads((out / "hls_report.json").read_text())


@pytest.fixture(scope="module")
def l1_like(tmp_path_factory):
    """The four refused forms at once, converted with one command (and per-layer reuse factors)."""
    d = tmp_path_factory.mktemp("intake")
    model = _save(deep_sets(), d / "l1.h5")
    out = d / "fw"
    status = main(["hls", "--model", model, "--out", str(out), *INTAKE, "--reuse", "2", "--reuse", "head=1"])
    return status, out, model, d


def test_the_saved_tagger_converts_with_one_command_and_is_exact(l1_like) -> None:
    status, out, _, _ = l1_like
    assert status == 0
    csim = _report(out)["csim"]
    assert csim["n_samples"] == 10_000
    # Exactness is judged on the layer before the final softmax...
    assert csim["compared_layer"] == "head"
    assert csim["exact_fraction"] == 1.0 and csim["max_abs_diff"] == 0.0
    # ...and the softmax's deviation (hls4ml lookup tables) is measured and recorded.
    final = csim["final_activation"]
    assert final["kind"] == "softmax" and 0 < final["max_abs_diff"] < 0.5 and final["argmax_agreement"] > 0.95


def test_assumed_types_are_reported(l1_like) -> None:
    _, out, _, _ = l1_like
    report = _report(out)
    assert report["precision"]["inputs"]["result"] == "ap_fixed<12,4>"
    assert report["precision"]["head"]["weight"] == "ap_fixed<16,6>"
    assert [line.split(":")[0] for line in report["intake"]] == ["inputs", "head"]
    assert "weights assumed" in report["intake"][1]
    # alpha=None kernels (QKeras made them power-of-two scaled): types read off the quantized constants.
    assert report["precision"]["phi_0"]["weight"].startswith("ap_fixed<")
    assert "phi_0_alpha" not in report["precision_hls4ml"]


def test_assumed_weights_in_the_firmware_header_are_the_exact_rounding_of_the_saved_floats(l1_like) -> None:
    """The plain Dense head has no quantizer: its weights in the generated C++ header must be the saved
    float32 kernel rounded onto the assumed ap_fixed<16,6> half to even, as computed independently with
    exact rational arithmetic (test_assumed_rounding.round_onto) from the .h5 file read with h5py."""
    import re
    from fractions import Fraction

    import h5py
    from test_assumed_rounding import round_onto

    from kd_trigger.hls.precision import FixedType

    _, out, model, _ = l1_like
    with h5py.File(model, "r") as f:
        group = f["model_weights"]["head"]
        names: list[str] = []
        group.visit(names.append)
        kernel = np.asarray(group[next(n for n in names if n.endswith("kernel:0"))], dtype=np.float64)
    headers = [
        h
        for h in (out / "firmware" / "weights").glob("w*.h")
        if f"//Numpy array shape {list(kernel.shape)}" in h.read_text()
    ]
    assert len(headers) == 1, headers
    literals = re.search(r"=\s*\{([^}]*)\}", headers[0].read_text()).group(1).split(",")
    written = [Fraction(v.strip()) for v in literals]
    t = FixedType.parse(_report(out)["precision"]["head"]["weight"])
    lsb = Fraction(1, 2 ** (t.width - t.integer))
    # on the grid, so the C++ conversion into ap_fixed (truncating by default) keeps each literal as is
    assert all((w / lsb).denominator == 1 for w in written)
    assert written == [round_onto(v, t) for v in kernel.ravel()]
    assert sum(w != Fraction(float(v)) for w, v in zip(written, kernel.ravel(), strict=True)) > 0


def test_per_layer_reuse_and_per_particle_ii(l1_like) -> None:
    _, out, _, _ = l1_like
    report = _report(out)
    assert report["reuse_by_layer"] == {"phi_0": 2, "phi_1": 2, "rho_0": 2, "head": 1}
    # QDense over (particles, features) is computed for all particles at once: II = the reuse factor,
    # not particles x reuse as hls4ml's default would make it.
    assert report["resources"]["ii_cycles"] == 2
    params = (out / "firmware" / "parameters.h").read_text()
    assert "static const unsigned n_partitions = 1;" in params


def test_without_any_type_it_tries_hls4mls_default_design(l1_like, capsys) -> None:
    """No option: hls4ml's default design (issue 22), whose ap_fixed<16,6> pooling sum the reference
    does not emulate: refused in one line naming the layer and the type."""
    _, _, model, d = l1_like
    assert main(["hls", "--model", model, "--out", str(d / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "hls4ml's default design: layer 'pool' accum ap_fixed<16,6> is narrower than the exact" in err
    assert not (d / "x").exists()


def test_without_the_input_precision_it_names_the_option(l1_like, capsys) -> None:
    _, _, model, d = l1_like
    assert (
        main(["hls", "--model", model, "--out", str(d / "x"), "--default-precision", "ap_fixed<16,6>"]) == 2
    )
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--input-precision 'ap_fixed<W,I>'" in err
    assert not (d / "x").exists()


def test_without_the_default_precision_it_names_the_option(l1_like, capsys) -> None:
    _, _, model, d = l1_like
    assert main(["hls", "--model", model, "--out", str(d / "y"), "--input-precision", "ap_fixed<12,4>"]) == 2
    err = capsys.readouterr().err.strip()
    assert "layer 'head' (Dense) has no kernel quantizer" in err and "--default-precision" in err


def test_mean_over_20_particles_is_exact_when_a_quantizer_follows(tmp_path) -> None:
    model = _save(deep_sets(20, pool_quantizer=True), tmp_path / "m.h5")
    assert main(["hls", "--model", model, "--out", str(tmp_path / "fw"), *INTAKE]) == 0
    report = _report(tmp_path / "fw")
    assert report["csim"]["exact_fraction"] == 1.0
    assert "exact division rounded half to even" in report["precision"]["pool"]["note"]


def test_mean_over_20_particles_without_a_quantizer_is_refused_before_simulating(tmp_path, capsys) -> None:
    model = _save(deep_sets(20), tmp_path / "m.h5")
    assert main(["hls", "--model", model, "--out", str(tmp_path / "fw"), *INTAKE]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "a mean over 20 values is not a power-of-two shift, and no quantizer follows it" in err
    assert not (tmp_path / "fw").exists()


def test_batch_norm_after_a_dense_is_converted_exactly(tmp_path) -> None:
    model = _save(deep_sets(batch_norm=True, plain_head=False, softmax=False), tmp_path / "m.h5")
    assert main(["hls", "--model", model, "--out", str(tmp_path / "fw"), *INTAKE]) == 0
    report = _report(tmp_path / "fw")
    assert report["csim"]["exact_fraction"] == 1.0 and report["csim"]["compared_layer"] is None
    assert report["precision"]["bn"]["scale"] == "ap_fixed<16,6>"
    assert report["intake"][-1].startswith("bn: scale and bias assumed")
