"""The distill stage end to end through the CLI on configs/ci.yaml: data -> teacher -> students -> metrics."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from kd_trigger.cli import main

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


def _write_config(repo: Path, tmp_path: Path, name: str = "ci.yaml", **sections: dict) -> Path:
    raw = yaml.safe_load((repo / "configs" / "ci.yaml").read_text())
    raw["run"]["artifacts_dir"] = str(tmp_path / "artifacts")
    raw["run"]["firmware_dir"] = str(tmp_path / "firmware")
    for section, values in sections.items():
        raw.setdefault(section, {}).update(values)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw))
    return path


def test_too_wide_student_is_one_line_exit_2(repo_root, tmp_path, capsys) -> None:
    raw = yaml.safe_load((repo_root / "configs" / "ci.yaml").read_text())
    raw["run"]["artifacts_dir"] = str(tmp_path / "artifacts")
    raw["students"][0]["max_weight_bits"] = 1000
    path = tmp_path / "wide.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert main(["distill", "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "student 'mlp' needs" in err and "max_weight_bits = 1000" in err
    assert not (tmp_path / "artifacts").exists()  # refused before any work


@pytest.mark.slow
def test_distill_stage_through_cli(repo_root, tmp_path, capsys) -> None:
    from kd_trigger.config import load_config
    from kd_trigger.data.readers import load_jets
    from kd_trigger.distill.pipeline import load_student
    from kd_trigger.models import quantizers as qz
    from kd_trigger.models.students import output_type, student_inputs

    path = _write_config(repo_root, tmp_path)
    assert main(["distill", "--config", str(path)]) == 0
    cfg = load_config(path)
    run_dir = cfg.artifacts

    metrics = json.loads((run_dir / "metrics.json").read_text())
    names = {"teacher"} | {f"{s.name}/{v}" for s in cfg.students for v in ("baseline", "kd")}
    assert set(metrics["models"]) == names
    for name, m in metrics["models"].items():
        assert set(m) >= CONTRACT_KEYS, name
        for key in CONTRACT_KEYS - {"boost"}:
            assert isinstance(m[key], float) and math.isfinite(m[key]), (name, key)
        assert 0 <= m["accuracy"] <= 1 and 0 <= m["auc"] <= 1 and m["rejection_at_30"] >= 1
        assert [b["beta"] for b in m["boost"]] == list(cfg.distill.boost_betas)
        assert all(set(b) == {"beta", "accuracy", "auc"} for b in m["boost"])
        # beta = 0 is the unboosted test split
        assert m["boost"][0]["accuracy"] == m["accuracy"] and m["boost"][0]["auc"] == pytest.approx(m["auc"])
    for s in cfg.students:
        info = metrics["students"][s.name]
        assert set(info["best_epoch"]) == {"baseline", "kd"}
        assert 1 <= info["best_epoch"]["kd"] <= cfg.distill.epochs
        assert info["rejection_ratio_30"]["ratio"] > 0
        for v in ("baseline", "kd"):
            assert (run_dir / "students" / s.name / f"{v}.h5").is_file()
        hist = json.loads((run_dir / "students" / s.name / "history.json").read_text())
        assert hist["kd"]["best_epoch"] == info["best_epoch"]["kd"]
    assert metrics["seconds"]["total"] > 0
    for f in ("roc.png", "boost.png", "summary.md"):
        assert (run_dir / f).stat().st_size > 0
    summary = (run_dir / "summary.md").read_text()
    assert all(f"| {n} |" in summary for n in names)

    # the distilled students' logits lie exactly on the grid of their output accumulator type
    test = load_jets(cfg.data_path, cfg).select("test")
    for spec in cfg.students:
        model = load_student(cfg, spec.name, "kd")
        out = model.get_layer("output")
        relus = [layer for layer in model.layers if type(layer).__name__ == "QActivation"]
        acc = qz.dense_accumulator_type(
            qz.type_of_quantizer(relus[-1].quantizer),
            qz.type_of_quantizer(out.kernel_quantizer_internal),
            qz.type_of_quantizer(out.bias_quantizer_internal),
            int(out.kernel.shape[0]),
        )
        assert acc == output_type(spec)
        y = model.predict(student_inputs(spec, test.constituents), verbose=0).astype(np.float64)
        k = y * 2.0**acc.fractional
        assert np.array_equal(k, np.round(k)), spec.name
        assert np.all(y >= acc.min_value) and np.all(y <= acc.max_value)

    # up to date: a second call skips everything and leaves the outputs alone
    stamp = (run_dir / "metrics.json").stat().st_mtime_ns
    assert main(["distill", "--config", str(path)]) == 0
    assert (run_dir / "metrics.json").stat().st_mtime_ns == stamp

    # bad inputs, one line and exit 2: a missing data file, a missing teacher file
    capsys.readouterr()
    bad = _write_config(
        repo_root, tmp_path, "nodata.yaml", run={"name": "nodata"}, data={"path": str(tmp_path / "no.h5")}
    )
    assert main(["distill", "--config", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no.h5" in err
    bad = _write_config(
        repo_root,
        tmp_path,
        "noteacher.yaml",
        run={"name": "noteacher"},
        data={"path": str(cfg.data_path)},
        teacher={"path": str(tmp_path / "missing_teacher.h5")},
    )
    assert main(["distill", "--config", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "missing_teacher.h5" in err

    # the firmware stage on the same run: conversion, exact C simulation, resources, budget, report
    capsys.readouterr()
    status = main(["hls", "--config", str(path)])
    assert status == 0, capsys.readouterr().err
    for spec in cfg.students:
        report = json.loads((cfg.firmware / spec.name / "hls_report.json").read_text())
        csim = report["csim"]
        assert csim["n_samples"] == len(test.is_signal)
        assert csim["exact_fraction"] == 1.0 and csim["max_abs_diff"] == 0.0
        assert csim["argmax_agreement"] == 1.0 and csim["auc_hls"] == csim["auc_qkeras"]
        assert report["backend"] == "Vitis" and report["part"] == cfg.hls.part
        assert report["resources"]["source"] == "estimate"
        assert report["budget"]["profile"] == cfg.budget.profile and report["budget"]["pass"] is True
        assert (cfg.firmware / spec.name / "firmware" / "kd_trigger_student.cpp").is_file()
    review = (cfg.firmware / "report.md").read_text()
    assert all(f"## {s.name}" in review or s.name in review for s in cfg.students)
    assert "BIT-EXACT" in review
    assert (cfg.firmware / "report.html").stat().st_size > 0

    # a budget the students cannot meet: exit status 3, and the verdict says which figure broke
    tight = _write_config(
        repo_root,
        tmp_path,
        "tight.yaml",
        run={"name": "tight"},
        data={"path": str(cfg.data_path)},
        teacher={"path": str(run_dir / "teacher" / "teacher.h5")},
        budget={"overrides": {"max_latency_ns": 1.0}},
    )
    assert main(["hls", "--config", str(tight)]) == 3
    tight_cfg = load_config(tight)
    verdict = json.loads((tight_cfg.firmware / "mlp" / "hls_report.json").read_text())["budget"]
    assert verdict["pass"] is False
    assert any("latency" in v for v in verdict["violations"])


@pytest.mark.slow
def test_same_config_and_seed_give_the_same_student(repo_root, tmp_path) -> None:
    """Two runs of the same config and seed (different run names) train bit-identical students."""
    from kd_trigger.config import load_config
    from kd_trigger.distill.pipeline import load_student

    first = _write_config(repo_root, tmp_path, "a.yaml", run={"name": "a"})
    assert main(["distill", "--config", str(first)]) == 0
    cfg_a = load_config(first)
    second = _write_config(repo_root, tmp_path, "b.yaml", run={"name": "b"})
    assert main(["distill", "--config", str(second)]) == 0
    cfg_b = load_config(second)
    assert (cfg_a.data_path.read_bytes()) == (cfg_b.data_path.read_bytes())
    for spec in cfg_a.students:
        for variant in ("baseline", "kd"):
            wa = load_student(cfg_a, spec.name, variant).get_weights()
            wb = load_student(cfg_b, spec.name, variant).get_weights()
            assert all(np.array_equal(a, b) for a, b in zip(wa, wb, strict=True)), (spec.name, variant)
