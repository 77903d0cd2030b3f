"""RunLayout names the paths the stages declare and the runner records (no TensorFlow)."""

from __future__ import annotations

from pathlib import Path

from kd_trigger.config import load_config
from kd_trigger.layout import ProjectLayout, RunLayout
from kd_trigger.stages import build_graph, record_path


def test_layout_matches_the_declared_outputs(make_config) -> None:
    cfg = load_config(make_config())
    layout = RunLayout.of(cfg)
    graph = build_graph(cfg)
    assert layout.run == cfg.run.name
    assert layout.data_file == cfg.data_path == layout.generated_jets
    assert graph["data"].outputs(cfg) == [layout.data_dir]
    assert graph["distill"].outputs(cfg) == layout.distill_outputs()
    assert graph["study"].outputs(cfg) == layout.study_outputs()
    assert graph["scan"].outputs(cfg) == layout.scan_outputs()
    assert graph["report"].outputs(cfg) == layout.report_outputs()
    assert graph["hls"].outputs(cfg) == [layout.firmware_dir(s.name) for s in cfg.students]
    for t in cfg.teachers:
        assert graph[f"teacher:{t.name}"].outputs(cfg) == [layout.teacher_dir(t.name)]
        assert record_path(cfg, f"teacher:{t.name}") == layout.record(f"teacher:{t.name}")
    assert record_path(cfg, "distill") == layout.record("distill")


def test_layout_spells_the_documented_names(tmp_path: Path) -> None:
    layout = RunLayout("r", tmp_path / "a", tmp_path / "f", tmp_path / "a" / "data" / "jets.h5")
    assert layout.student_model("mlp") == tmp_path / "a" / "students" / "mlp" / "kd.h5"
    assert layout.student_model("mlp", "baseline").name == "baseline.h5"
    assert layout.teacher_logits("t", "val") == tmp_path / "a" / "teachers" / "t" / "val_logits.npy"
    assert layout.scan == tmp_path / "a" / "scan" / "scan.json"
    assert layout.hls_report("mlp") == tmp_path / "f" / "mlp" / "hls_report.json"
    assert layout.best == tmp_path / "f" / "best"
    project = ProjectLayout(tmp_path / "out")
    assert project.rtl == tmp_path / "out" / "rtl"
    assert project.csim_outputs.name == "csim_outputs.npz"
