"""Issue 20's pruning and per-layer precision through the whole pipeline on the CI config (slow).

The CI students, pruned to 50%, the MLP's first layer at 10-bit weights: distill -> hls4ml firmware and
the RTL -> report. Reuses the shared CI run's jets and its 16-particle teacher.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from kd_trigger.cli import main
from kd_trigger.config import load_config

pytestmark = pytest.mark.slow


def test_pruned_per_layer_students_through_the_pipeline(ci_run, make_config, tmp_path) -> None:
    from kd_trigger.models.students import load_student_file

    teacher = tmp_path / "teacher.h5"
    shutil.copyfile(ci_run.cfg.artifacts / "teachers" / "lorentznet16" / "teacher.h5", teacher)
    students = [{**s.model_dump(mode="json"), "teacher": None, "sparsity": 0.5} for s in ci_run.cfg.students]
    mlp = next(s for s in students if s["kind"] == "mlp")
    mlp["quant"]["layers"] = {"dense_0": {"weight_bits": 10, "weight_int": 2}}
    path = make_config(
        data={"path": str(ci_run.cfg.data_path)},
        teachers=[{"name": "byo", "kind": "path", "path": str(teacher), "n_particles": 16}],
        students=students,
    )
    cfg = load_config(path)
    assert main(["report", "--config", str(path)]) == 0
    metrics = json.loads((cfg.artifacts / "metrics.json").read_text())
    for spec in cfg.students:
        summary = metrics["students"][spec.name]
        assert summary["sparsity_target"] == 0.5
        for variant in ("baseline", "kd"):
            model = load_student_file(cfg.artifacts / "students" / spec.name / f"{variant}.h5", spec)
            kernels = {
                layer.name: layer.get_weights()[0] for layer in model.layers if hasattr(layer, "kernel")
            }
            assert set(kernels) == set(summary["sparsity"][variant])
            for name, kernel in kernels.items():
                zeros = int(np.count_nonzero(kernel == 0))
                assert zeros >= kernel.size // 2, (spec.name, variant, name, zeros, kernel.size)
                assert summary["sparsity"][variant][name]["zeros"] == zeros
        report = json.loads((cfg.firmware / spec.name / "hls_report.json").read_text())
        assert report["csim"]["exact_fraction"] == 1.0
        assert report["rtl_sim"]["exact_fraction"] == 1.0
        assert all(v["sparsity"] >= 0.5 - 0.5 / v["n_weights"] for v in report["sparsity"].values())
        if spec.kind == "mlp":
            assert report["precision"]["dense_0"]["weight"] == "ap_fixed<10,3>"
            assert report["precision"]["dense_1"]["weight"] == "ap_fixed<8,2>"
    text = (cfg.firmware / "report.md").read_text()
    assert "Zero weights per layer" in text and "Pruning target 50%" in text
