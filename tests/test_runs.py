from __future__ import annotations

import json

import pytest

from kd_trigger.config import parse_config
from kd_trigger.errors import StaleOutputError
from kd_trigger.runs import atomic_dir, atomic_file, check_stage, package_versions, write_stage


def test_atomic_file_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.h5"
    with pytest.raises(RuntimeError), atomic_file(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_atomic_file_renames_on_success(tmp_path):
    target = tmp_path / "out.txt"
    with atomic_file(target) as tmp:
        tmp.write_text("done")
    assert target.read_text() == "done"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_dir_keeps_previous_on_failure(tmp_path):
    target = tmp_path / "proj"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "new.txt").write_text("new")
        raise RuntimeError("crash")
    assert sorted(p.name for p in target.iterdir()) == ["old.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["proj"]


def test_stage_skip_refuse_and_force(tmp_path):
    cfg = parse_config({"run": {"artifacts_dir": str(tmp_path)}})
    other = parse_config({"run": {"artifacts_dir": str(tmp_path)}, "data": {"n_jets": 100}})
    stage_dir = tmp_path / "stage"
    digest = cfg.section_hash("run", "data")
    assert check_stage(stage_dir, "data", digest, force=False) is False
    stage_dir.mkdir()
    write_stage(stage_dir, "data", digest, cfg)
    assert check_stage(stage_dir, "data", digest, force=False) is True
    other_digest = other.section_hash("run", "data")
    assert other_digest != digest
    with pytest.raises(StaleOutputError, match="different configuration.*--force"):
        check_stage(stage_dir, "data", other_digest, force=False)
    assert check_stage(stage_dir, "data", other_digest, force=True) is False
    state = json.loads((stage_dir / "stage.json").read_text())
    assert state["versions"]["tensorflow-cpu"] == "2.15.1"
    assert (stage_dir / "config.resolved.yaml").read_text().startswith("run:")


def test_versions_recorded_for_key_packages():
    versions = package_versions()
    assert versions["qkeras"] == "0.9.0"
    assert versions["hls4ml"] == "1.3.0"


def test_worker_count_does_not_change_data_digest():
    one = parse_config({"data": {"workers": 1}})
    two = parse_config({"data": {"workers": 2}})
    assert one.section_hash("run", "data") == two.section_hash("run", "data")
    assert one.section_hash("run", "data") != parse_config({"data": {"n_jets": 10}}).section_hash(
        "run", "data"
    )
