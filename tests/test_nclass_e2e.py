"""The pipeline end to end on configs/ci_three_class.yaml (issue 24): three classes from generation to
firmware and report, through the CLI. Measured: 275 s for the pipeline on the 2 shared cores (the RTL
flow's Verilator and Yosys runs most of it), 283 s the file."""

from __future__ import annotations

import json
import logging
import time
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import write_config

from kd_trigger.cli import main
from kd_trigger.config import load_config
from kd_trigger.layout import RunLayout
from kd_trigger.stages import read_record

pytestmark = pytest.mark.slow
log = logging.getLogger(__name__)
CLASSES = ["q", "w", "t"]


@pytest.fixture(scope="module")
def run3(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    directory = tmp_path_factory.mktemp("ci_three_class")
    path = write_config(directory, "ci3.yaml", base="ci_three_class.yaml")
    start = time.perf_counter()
    status = main(["hls", "--config", str(path)])
    seconds = time.perf_counter() - start
    log.warning("three-class CI pipeline (data -> report): %.0f s", seconds)
    return SimpleNamespace(path=path, cfg=load_config(path), status=status, dir=directory, seconds=seconds)


def test_three_classes_from_generation_to_report(run3) -> None:
    cfg = run3.cfg
    assert run3.status == 0 and list(cfg.data.classes) == CLASSES
    for stage in (
        "data",
        "teacher:lorentznet16",
        "teacher:lorentznet64",
        "distill",
        "hls4ml",
        "rtl",
        "hls",
        "report",
    ):
        assert read_record(cfg, stage) is not None, stage
    counts = json.loads((cfg.artifacts / "data" / "summary.json").read_text())["counts"]["test"]
    n_test = sum(counts.values())
    assert counts == {"t": 36, "w": 36, "q": 36}
    # teachers: three logits on every split
    for teacher in ("lorentznet16", "lorentznet64"):
        out = cfg.artifacts / "teachers" / teacher
        for split, n in json.loads((out / "metrics.json").read_text())["n_jets"].items():
            assert np.load(out / f"{split}_logits.npy").shape == (n, 3)
    # metrics: every two-class key, plus the per-class block and the confusion matrix
    metrics = json.loads((cfg.artifacts / "metrics.json").read_text())
    assert metrics["class_names"] == CLASSES
    assert metrics["test"] == {"n_jets": n_test, "n_background": 72}
    for name, m in metrics["models"].items():
        assert {"accuracy", "auc", "auc_err", "rejection_at_30", "rejection_at_50", "boost"} <= set(m), name
        assert list(m["classes"]) == CLASSES, name
        for c in m["classes"].values():
            assert set(c) == {
                "n_jets",
                "auc",
                "efficiency",
                "rejection_at_30",
                "rejection_at_30_capped",
                "rejection_at_50",
                "rejection_at_50_capped",
            }
            assert c["n_jets"] == 36 and 0 <= c["auc"] <= 1
        matrix = np.array(m["confusion_matrix"])
        assert matrix.shape == (3, 3) and matrix.sum(axis=1).tolist() == [36, 36, 36]
        assert m["accuracy"] == pytest.approx(np.trace(matrix) / n_test)
        assert m["auc"] == m["classes"]["t"]["auc"]  # the two-class keys: the last class against the rest
    # firmware: both flows bit-exact on the three logits of every test jet
    for spec in cfg.students:
        report = json.loads((cfg.firmware / spec.name / "hls_report.json").read_text())
        csim = report["csim"]
        assert csim["n_samples"] == n_test and csim["n_outputs"] == 3 * n_test
        assert csim["exact_fraction"] == 1.0 and csim["max_abs_diff"] == 0.0
        assert (
            report["rtl_sim"]["n_samples"] == n_test + 10_000 and report["rtl_sim"]["exact_fraction"] == 1.0
        )
    text = RunLayout.of(cfg).report_md.read_text()
    assert "Per class, one vs rest" in text and "Confusion matrix of deepsets distilled (KD)" in text
    # The N-class headline is the accuracy difference, equal to the two accuracies' difference.
    for name, summary in metrics["students"].items():
        diff = summary["accuracy_difference_points"]
        models = metrics["models"]
        assert diff["points"] == pytest.approx(
            100 * (models[f"{name}/kd"]["accuracy"] - models[f"{name}/baseline"]["accuracy"])
        )
        shown = f"{diff['points']:+.2f} [{diff['low']:+.2f}, {diff['high']:+.2f}]"
        assert f"KD - baseline accuracy: **{shown} points**" in text


def test_a_teacher_file_with_two_outputs_on_three_classes_is_one_line(run3, tmp_path, capsys) -> None:
    from kd_trigger.config import TeacherSpec
    from kd_trigger.models.teacher import build_teacher

    teacher_file = tmp_path / "two.h5"
    build_teacher(TeacherSpec(name="two", kind="lorentznet", n_particles=16, n_layers=1, hidden=4)).save(
        teacher_file, save_format="h5"
    )
    students = [{**s.model_dump(mode="json"), "teacher": None} for s in run3.cfg.students]
    path = write_config(
        tmp_path,
        "two.yaml",
        base="ci_three_class.yaml",
        run={"name": "two"},
        data={"path": str(run3.cfg.data_path)},
        teachers=[{"name": "two", "kind": "path", "path": str(teacher_file), "n_particles": 16}],
        students=students,
    )
    capsys.readouterr()
    assert main(["distill", "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "output shape (N, 2) does not match the expected (N, 3)" in err and "3 logits" in err
    assert not (tmp_path / "artifacts" / "two" / "metrics.json").exists()


def test_the_study_on_three_classes_reports_the_accuracy_difference_and_class_ratios(run3) -> None:
    from kd_trigger.contracts import Study

    cfg = run3.cfg
    start = time.perf_counter()
    assert main(["study", "--config", str(run3.path)]) == 0
    log.warning("three-class CI study: %.0f s", time.perf_counter() - start)
    study = Study.model_validate_json(RunLayout.of(cfg).study.read_text())
    assert study.select_on == "r50:t"
    for student in study.students.values():
        for setting in student.settings:
            kob = setting.kd_over_baseline
            assert list(kob.rejection_at_50_by_class) == CLASSES
            # Per seed: the points of accuracy and the last class's ratio from the per-seed figures.
            acc = kob.accuracy_difference_points
            assert acc is not None and acc.lo68 is not None and acc.hi68 is not None and acc.lo68 <= acc.hi68
            expected = [
                100 * (k.accuracy - b.accuracy) for k, b in zip(setting.kd, student.baseline, strict=True)
            ]
            assert acc.per_seed == pytest.approx(expected, abs=1e-9)
            r50_t = [
                k.rejection_at_50 / b.rejection_at_50
                for k, b in zip(setting.kd, student.baseline, strict=True)
            ]
            assert kob.rejection_at_50_by_class["t"].per_seed == pytest.approx(r50_t, rel=1e-12)
            assert kob.rejection_at_50_by_class["t"] == kob.rejection_at_50
    text = RunLayout.of(cfg).study_md.read_text()
    assert (
        "| teacher | T | w | accuracy KD - baseline (points) | R50 ratio `q` | R50 ratio `w` | R50 ratio `t` |"
        in text
    )
