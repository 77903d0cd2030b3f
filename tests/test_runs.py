from __future__ import annotations

import pytest

from kd_trigger.config import parse_config
from kd_trigger.errors import OutputError
from kd_trigger.runs import (
    atomic_dir,
    atomic_file,
    ensure_writable_dir,
    package_versions,
    path_fingerprint,
    write_json_atomic,
)


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


def test_versions_recorded_for_key_packages(monkeypatch):
    """The installed version of each key package is read from its metadata, whatever it is; a package
    that is not installed is recorded as such, not as an error."""
    from importlib.metadata import version

    import kd_trigger.runs as runs

    monkeypatch.setattr(runs, "KEY_PACKAGES", (*runs.KEY_PACKAGES, "kd-trigger-no-such-package"))
    versions = package_versions()
    assert versions["kd-trigger-no-such-package"] == "not installed"
    assert {"qkeras", "hls4ml", "tensorflow-cpu"} <= set(versions)
    assert versions["qkeras"] == version("qkeras") and versions["hls4ml"] == version("hls4ml")


def test_worker_count_does_not_change_data_digest():
    from kd_trigger.stages import build_graph

    one, two = parse_config({"data": {"workers": 1}}), parse_config({"data": {"workers": 2}})
    data = build_graph(one)["data"]
    assert data.config(one) == data.config(two)
    assert data.config(one) != data.config(parse_config({"data": {"n_jets": 10}}))


def test_fingerprint_of_a_tree_follows_names_and_contents(tmp_path):
    tree = tmp_path / "t"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "x.txt").write_text("1")
    first = path_fingerprint(tree)
    assert first[1:] == (1, 1)
    # a rename alone (same content, same size) must change the fingerprint: names are hashed
    (tree / "sub" / "x.txt").rename(tree / "sub" / "y.txt")
    renamed = path_fingerprint(tree)
    assert renamed[1:] == first[1:] and renamed[0] != first[0]
    (tree / "sub" / "y.txt").write_text("2")
    assert path_fingerprint(tree)[0] not in (first[0], renamed[0])
    (tree / "sub" / "y.txt").rename(tree / "sub" / "x.txt")
    (tree / "sub" / "x.txt").write_text("1")
    assert path_fingerprint(tree) == first
    assert path_fingerprint(tmp_path / "none") == ("missing", 0, 0)


def test_write_json_refuses_nan(tmp_path):
    with pytest.raises(ValueError):
        write_json_atomic(tmp_path / "x.json", {"a": float("nan")})
    assert list(tmp_path.iterdir()) == []


def test_unwritable_output_location_is_one_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OutputError, match="is a file, not a directory"):
        ensure_writable_dir(blocker / "run", "run directory")
