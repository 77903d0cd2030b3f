"""The pipeline end to end through the CLI on configs/ci.yaml, and every way a run could go stale.

The read-only checks share one session-scoped run (``ci_run`` in conftest.py), so one failure never
hides the others. Each staleness and interrupt case makes its own small run.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from kd_trigger.cli import main
from kd_trigger.config import load_config
from kd_trigger.layout import RunLayout
from kd_trigger.stages import read_record

pytestmark = pytest.mark.slow

CONTRACT_KEYS = {
    "accuracy",
    "auc",
    "rejection_at_30",
    "rejection_at_50",
    "rejection_at_30_err",
    "rejection_at_50_err",
    "auc_err",
    "boost",
}


def _metrics(cfg) -> dict:
    return json.loads((cfg.artifacts / "metrics.json").read_text())


# -- the shared run -------------------------------------------------------------------------------
def test_the_whole_pipeline_exits_0(ci_run) -> None:
    assert ci_run.status == 0
    stages = (
        "data",
        "teacher:lorentznet16",
        "teacher:lorentznet64",
        "distill",
        "hls4ml",
        "rtl",
        "hls",
        "report",
    )
    for stage in stages:
        record = read_record(ci_run.cfg, stage)
        assert record is not None and record.config_path == str(ci_run.path.resolve()), stage


def test_metrics_contract(ci_run) -> None:
    cfg = ci_run.cfg
    metrics = _metrics(cfg)
    names = {"teacher", "teacher/lorentznet16", "teacher/lorentznet64"}
    names |= {f"{s.name}/{v}" for s in cfg.students for v in ("baseline", "kd")}
    assert set(metrics["models"]) == names
    for name, m in metrics["models"].items():
        assert set(m) >= CONTRACT_KEYS, name
        for key in ("accuracy", "auc", "rejection_at_50", "auc_err"):
            assert isinstance(m[key], float) and math.isfinite(m[key]), (name, key)
        assert 0 <= m["accuracy"] <= 1 and 0 <= m["auc"] <= 1
        assert [b["beta"] for b in m["boost"]] == list(cfg.distill.boost_betas)
        assert m["boost"][0]["accuracy"] == m["accuracy"] and m["boost"][0]["auc"] == pytest.approx(m["auc"])
    for s in cfg.students:
        info = metrics["students"][s.name]
        assert (info["teacher"], info["temperature"], info["kd_weight"]) == (
            {"mlp": "lorentznet64", "deepsets": "lorentznet16"}[s.name],
            cfg.distill.temperature,
            cfg.distill.kd_weight,
        )
        assert 1 <= info["best_epoch"]["kd"] <= cfg.distill.epochs
        assert info["rejection_ratio_30"]["ratio"] > 0
        hist = json.loads((cfg.artifacts / "students" / s.name / "history.json").read_text())
        assert hist["kd"]["best_epoch"] == info["best_epoch"]["kd"] and hist["teacher"] == info["teacher"]
    for f in ("roc.png", "boost.png", "summary.md"):
        assert (cfg.artifacts / f).stat().st_size > 0


def test_teacher_outputs(ci_run) -> None:
    out = ci_run.cfg.artifacts / "teachers" / "lorentznet16"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["kind"] == "lorentznet" and metrics["n_particles"] == 16
    assert 0.5 <= metrics["auc"] <= 1.0
    for split, n in metrics["n_jets"].items():
        assert np.load(out / f"{split}_logits.npy").shape == (n, 2)


def test_student_logits_lie_on_their_output_grid(ci_run) -> None:
    from kd_trigger.data.readers import load_jets
    from kd_trigger.distill.training import load_student
    from kd_trigger.fixed import dense_accumulator_type
    from kd_trigger.models import quantizers as qz
    from kd_trigger.models.students import output_type, student_inputs

    cfg = ci_run.cfg
    test = load_jets(cfg.data_path, cfg).select("test")
    for spec in cfg.students:
        model = load_student(cfg, spec.name, "kd")
        out = model.get_layer("output")
        relus = [layer for layer in model.layers if type(layer).__name__ == "QActivation"]
        acc = dense_accumulator_type(
            qz.type_of_quantizer(relus[-1].quantizer),
            qz.type_of_quantizer(out.kernel_quantizer_internal),
            qz.type_of_quantizer(out.bias_quantizer_internal),
            int(out.kernel.shape[0]),
        )
        assert acc == output_type(spec)
        y = model.predict(student_inputs(spec, test.constituents), verbose=0).astype(np.float64)
        k = y * 2.0**acc.fractional
        assert np.array_equal(k, np.round(k)), spec.name


def test_firmware_is_bit_exact_with_resources_and_budget(ci_run) -> None:
    cfg = ci_run.cfg
    n_test = json.loads((cfg.artifacts / "data" / "summary.json").read_text())["counts"]["test"]
    for spec in cfg.students:
        report = json.loads((cfg.firmware / spec.name / "hls_report.json").read_text())
        csim = report["csim"]
        assert csim["n_samples"] == n_test["top"] + n_test["qcd"]
        assert csim["exact_fraction"] == 1.0 and csim["max_abs_diff"] == 0.0
        assert csim["argmax_agreement"] == 1.0 and csim["auc_hls"] == csim["auc_qkeras"]
        assert report["project_dir"] == str(cfg.firmware / spec.name)
        assert report["resources"]["source"] == "estimate"
        assert {"lut", "ff", "dsp"} <= set(report["resources"]["total"])
        assert report["budget"]["profile"] == cfg.budget.profile and report["budget"]["pass"] is True
        # the RTL flow: exact on every test jet plus 10,000 edge inputs, resources counted by Yosys
        rtl_sim = report["rtl_sim"]
        assert rtl_sim["n_samples"] == csim["n_samples"] + 10_000 and rtl_sim["exact_fraction"] == 1.0
        # the default folding rule: the Deep Sets RTL at II 4 (2 phi copies of 8 particles), the MLP at 1
        assert (
            report["rtl"]["ii_cycles"]
            == cfg.ii_cycles_of(spec, "rtl", 5)
            == (4 if spec.kind == "deepsets" else 1)
        )
        assert report["rtl"]["yosys"]["lut"] > 0
        assert (
            report["budget"]["flow"] == "rtl"
            and report["budget"]["decided_by"] == "yosys synth (open-source)"
        )
        assert set(report["budget_by_flow"]) == {"hls4ml", "rtl"}
        assert (cfg.firmware / spec.name / "rtl" / "rtl_report.json").is_file()
        assert report["vendor_hls"] is None and report["vendor_synth"] is None and "vendor" not in report
        assert (cfg.firmware / spec.name / "firmware" / "kd_trigger_student.cpp").is_file()


def test_committed_firmware_still_simulates_where_it_was_moved(ci_run, tmp_path) -> None:
    """The project was compiled in its staging place and renamed: its C simulation must not depend on the
    path it was built in (weights are in the headers, not loaded from an absolute path). The committed
    project is copied elsewhere once more, its library loaded from there and called on test jets: the
    outputs must be the QKeras outputs, bit for bit."""
    import ctypes

    from kd_trigger.data.readers import load_jets
    from kd_trigger.distill.training import load_student
    from kd_trigger.hls.csim import float64_twin, quantize_inputs, run_twin
    from kd_trigger.models.students import student_inputs

    cfg = ci_run.cfg
    moved = tmp_path / "elsewhere" / "mlp"
    shutil.copytree(cfg.firmware / "mlp", moved)
    header = (moved / "firmware" / "kd_trigger_student.cpp").read_text()
    assert "load_weights_from_txt" not in header
    [so] = list((moved / "firmware").glob("*.so"))
    lib = ctypes.CDLL(str(so))  # loads: no missing symbol, no baked path needed to start
    top = lib.kd_trigger_student_double
    top.restype = None
    top.argtypes = [np.ctypeslib.ndpointer(np.float64, flags="C_CONTIGUOUS")] * 2

    spec = cfg.student("mlp")
    model = load_student(cfg, "mlp", "kd")
    twin = float64_twin(model)
    x = quantize_inputs(
        twin, student_inputs(spec, load_jets(cfg.data_path, cfg).select("test").constituents[:64])
    )
    want = run_twin(twin, x).reshape(len(x), -1)
    got = np.zeros_like(want)
    # the built-in place is gone while the copy simulates (put back afterwards for the other tests)
    away = cfg.firmware / ".mlp-moved-away"
    (cfg.firmware / "mlp").rename(away)
    try:
        for i in range(len(x)):
            out = np.zeros(want.shape[1], dtype=np.float64)
            top(np.ascontiguousarray(x[i].ravel(), dtype=np.float64), out)
            got[i] = out
    finally:
        away.rename(cfg.firmware / "mlp")
    assert np.array_equal(got, want), np.max(np.abs(got - want))
    assert len(np.unique(got.round(9), axis=0)) > 1  # real outputs, not a constant


def test_hls_flows_without_rtl_builds_no_rtl_and_reports_it_not_run(ci_run, make_config) -> None:
    """``hls.flows: [hls4ml]``: the hls stage builds, simulates and judges the hls4ml firmware only, and the
    review report says the RTL flow was not run (one student, the CI jets, a fresh tiny teacher)."""
    teacher = {"name": "lorentznet64", "kind": "lorentznet", "n_particles": 64, "neighbours": 8, "n_layers": 1,
               "hidden": 8, "epochs": 2, "warmup_epochs": 0.5, "batch_size": 64}  # fmt: skip
    student = {"name": "mlp", "kind": "mlp", "n_particles": 8, "hidden": [16, 8], "teacher": "lorentznet64"}
    path = make_config("hlsonly.yaml", run={"name": "hlsonly"}, data={"path": str(ci_run.cfg.data_path)},
                       teachers=[teacher], students=[student], hls={"flows": ["hls4ml"]})  # fmt: skip
    cfg = load_config(path)
    assert main(["hls", "--config", str(path)]) == 0
    report = json.loads((cfg.firmware / "mlp" / "hls_report.json").read_text())
    assert report["csim"]["exact_fraction"] == 1.0
    assert report["rtl"] is None and report["rtl_sim"] is None and not (cfg.firmware / "mlp" / "rtl").exists()
    assert report["budget"]["flow"] == "hls4ml" and set(report["budget_by_flow"]) == {"hls4ml"}
    md = (cfg.firmware / "report.md").read_text()
    [row] = [line for line in md.splitlines() if line.startswith("| mlp |")]
    assert [c.strip() for c in row.strip("|").split("|")][1:3] == ["BIT-EXACT", "not run"]


def test_rerun_is_up_to_date_and_touches_nothing(ci_run, capsys) -> None:
    stamp = (ci_run.cfg.artifacts / "metrics.json").stat().st_mtime_ns
    capsys.readouterr()
    assert main(["hls", "--config", str(ci_run.path)]) == 0
    assert (ci_run.cfg.artifacts / "metrics.json").stat().st_mtime_ns == stamp
    assert main(["status", "--config", str(ci_run.path)]) == 0
    out = capsys.readouterr().out
    # data, two teachers, distill, hls4ml, rtl, hls, report
    assert out.count("up to date") == 8 and "would run" not in out


def test_bad_inputs_on_a_real_run_are_one_line(ci_run, make_config, tmp_path, capsys) -> None:
    nodata = make_config("nodata.yaml", run={"name": "nodata"}, data={"path": str(tmp_path / "no.h5")})
    assert main(["distill", "--config", str(nodata)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no.h5" in err
    teacher = {
        "name": "mine",
        "kind": "path",
        "path": str(tmp_path / "missing_teacher.h5"),
        "n_particles": 16,
    }
    noteacher = make_config(
        "noteacher.yaml",
        run={"name": "noteacher"},
        data={"path": str(ci_run.cfg.data_path)},
        teachers=[teacher],
        students=_students_of(ci_run, None),
    )
    assert main(["distill", "--config", str(noteacher)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "missing_teacher.h5" in err
    assert not (tmp_path / "artifacts").exists()


# -- staleness: every "why" case of the stage-graph issue -----------------------------------------
def _students_of(ci_run, teacher: str | None) -> list[dict]:
    """The CI students, all learning from ``teacher`` (None: the first configured teacher)."""
    return [{**s.model_dump(mode="json"), "teacher": teacher} for s in ci_run.cfg.students]


def _byo_teacher(ci_run, directory: Path, name: str) -> dict:
    path = directory / name
    shutil.copyfile(ci_run.cfg.artifacts / "teachers" / "lorentznet16" / "teacher.h5", path)
    return {"name": "byo", "kind": "path", "path": str(path), "n_particles": 16}


def test_replacing_an_input_file_reruns_exactly_what_depends_on_it(ci_run, make_config, tmp_path, caplog):
    """data.path, a bring-your-own teacher and the budget profiles: each replaced in place, same name.

    One student (the MLP): which stages rerun does not depend on how many students a stage builds, and
    each of the three rebuilds then trains and builds firmware for one student instead of two."""
    caplog.set_level("INFO")
    data = tmp_path / "jets.h5"
    shutil.copyfile(ci_run.cfg.data_path, data)
    budget = tmp_path / "budget.yaml"
    shutil.copyfile(Path(ci_run.cfg.budget.profiles), budget)
    teacher = _byo_teacher(ci_run, tmp_path, "teacher.h5")
    path = make_config(
        data={"path": str(data)},
        teachers=[teacher],
        students=[s for s in _students_of(ci_run, None) if s["name"] == "mlp"],
        budget={"profiles": str(budget)},
    )
    cfg = load_config(path)
    assert main(["hls", "--config", str(path)]) == 0

    def ran() -> list[str]:
        lines = [r.getMessage() for r in caplog.records if ": running (" in r.getMessage()]
        caplog.clear()
        return [line.split("stage ", 1)[1].split(": running")[0] for line in lines]

    ran()
    # The budget file: max latency 200 -> 20 ns. Only the verdict's stages rerun, and it fails (exit 3).
    budget.write_text(budget.read_text().replace("max_latency_ns: 200", "max_latency_ns: 20"))
    assert main(["hls", "--config", str(path)]) == 3
    assert ran() == ["hls", "report"]
    report = json.loads((cfg.firmware / "mlp" / "hls_report.json").read_text())
    assert report["budget"]["pass"] is False and "latency_ns" in report["budget"]["violations"][0]

    # The teacher file, replaced by another model under the same name: teacher, students, firmware.
    other = tmp_path / "other.h5"
    from tensorflow import keras

    from kd_trigger.distill.teachers import load_teacher_file

    model = load_teacher_file(data.parent / "teacher.h5", cfg.teacher_spec("byo"))
    model.set_weights([w * 0.5 for w in model.get_weights()])
    keras.models.save_model(model, other, include_optimizer=False)
    shutil.copyfile(other, tmp_path / "teacher.h5")
    assert main(["hls", "--config", str(path)]) == 3
    assert ran() == ["teacher:byo", "distill", "hls4ml", "rtl", "hls", "report"]

    # The data file: 400 jets -> 200 of them, same name. Everything reruns and describes the new file.
    import h5py

    with h5py.File(data, "r") as src, h5py.File(tmp_path / "half.h5", "w") as dst:
        for key, value in src.attrs.items():
            dst.attrs[key] = value
        for key in src:
            dst.create_dataset(key, data=src[key][::2])
        n_test = int(np.sum(src["split"][::2] == 2))
    shutil.move(tmp_path / "half.h5", data)
    assert main(["hls", "--config", str(path)]) == 3
    assert ran() == ["data", "teacher:byo", "distill", "hls4ml", "rtl", "hls", "report"]
    assert _metrics(cfg)["test"]["n_jets"] == n_test


def test_killed_forced_run_of_another_config_leaves_the_first_intact(ci_run, make_config, tmp_path, capsys):
    """config A runs; config B (reuse 2) is forced over it and killed inside its hls stage; A is still
    complete, consistent and up to date, and nothing of B is left."""
    a = make_config("a.yaml", data={"path": str(ci_run.cfg.data_path)})
    cfg = load_config(a)
    assert main(["hls", "--config", str(a)]) == 0
    b = make_config("b.yaml", data={"path": str(ci_run.cfg.data_path)}, hls={"reuse_factor": 2})
    proc = subprocess.Popen(
        [sys.executable, "-m", "kd_trigger", "hls", "--force", "--config", str(b)],
        stderr=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    # The firmware is built by the hls4ml and rtl flow stages (staged beside artifacts/<run>/stages/<flow>/
    # <student>) and assembled by the hls stage (staged in firmware/<run>): kill B inside any of them.
    flow_parents = [RunLayout.of(cfg).flow_dir(flow, "x").parent for flow in ("hls4ml", "rtl")]

    def staging() -> list[Path]:
        return [p for parent in (cfg.firmware, *flow_parents) for p in parent.glob(".*.kdt-staging*")]

    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not staging():
            assert proc.poll() is None, "the forced run finished before it could be killed"
            time.sleep(0.05)
        assert staging(), "no firmware stage ever started"
    finally:
        proc.kill()
        proc.wait()
    capsys.readouterr()
    assert main(["hls", "--config", str(a)]) == 0
    err = capsys.readouterr().err
    assert "would run" not in err
    for name in ("mlp", "deepsets"):
        assert json.loads((cfg.firmware / name / "hls_report.json").read_text())["reuse_factor"] == 4
    assert not [p for p in cfg.firmware.rglob(".*") if ".kdt-" in p.name]
    assert not [p for p in cfg.artifacts.rglob(".*") if ".kdt-" in p.name]


def test_concurrent_runs_on_one_run_name_are_refused(make_config, capsys):
    path = make_config(data={"n_jets": 1000, "workers": 1})
    cfg = load_config(path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "kd_trigger", "data", "--config", str(path)],
        stderr=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (cfg.artifacts / ".lock").is_file():
            time.sleep(0.05)
        time.sleep(0.5)
        assert proc.poll() is None
        capsys.readouterr()
        assert main(["data", "--config", str(path), "--n-jets", "1200"]) == 2
        err = capsys.readouterr().err.strip()
        assert (
            len(err.splitlines()) == 1
            and f"in use by pid {proc.pid}" in err
            and f"data --config {path}" in err
        )
        assert proc.wait(timeout=300) == 0
    finally:
        proc.kill()
        proc.wait()
    assert read_record(cfg, "data").extra["n_jets"] == 1000


def test_same_config_and_seed_give_the_same_student(make_config) -> None:
    """Two runs of the same config and seed (different run names) train bit-identical students (on one
    machine: TensorFlow's kernels differ between CPUs)."""
    from kd_trigger.distill.training import load_student

    cfgs = []
    for name in ("a", "b"):
        path = make_config(f"{name}.yaml", run={"name": name})
        assert main(["distill", "--config", str(path)]) == 0
        cfgs.append(load_config(path))
    cfg_a, cfg_b = cfgs
    assert cfg_a.data_path.read_bytes() == cfg_b.data_path.read_bytes()
    for spec in cfg_a.students:
        for variant in ("baseline", "kd"):
            wa = load_student(cfg_a, spec.name, variant).get_weights()
            wb = load_student(cfg_b, spec.name, variant).get_weights()
            assert all(np.array_equal(x, y) for x, y in zip(wa, wb, strict=True)), (spec.name, variant)
