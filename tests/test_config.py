from __future__ import annotations

import pytest

from kd_trigger.cli import main
from kd_trigger.config import (
    Config,
    HlsConfig,
    StudentConfig,
    fold_ii_cycles,
    hls4ml_parallelization,
    load_config,
    parse_config,
)
from kd_trigger.errors import ConfigError


def test_shipped_configs_validate(repo_root):
    pipelines = sorted(p for p in (repo_root / "configs").glob("*.yaml") if p.name != "budget.yaml")
    assert {p.name for p in pipelines} >= {"default.yaml", "ci.yaml", "lowdata.yaml"}
    for path in pipelines:
        cfg = load_config(path)
        assert cfg.students, path


def test_unknown_key_names_dotted_key_and_allowed_keys():
    with pytest.raises(ConfigError) as err:
        parse_config({"data": {"n_jest": 5}}, "x.yaml")
    msg = str(err.value)
    assert "'data.n_jest'" in msg
    assert "n_jets" in msg
    assert "\n" not in msg


def test_wrong_type_and_range_name_key_and_value():
    with pytest.raises(ConfigError, match=r"'data\.n_jets' \('many'\)"):
        parse_config({"data": {"n_jets": "many"}})
    with pytest.raises(ConfigError, match=r"'distill\.kd_weight' \(1\.5\).*less than or equal to 1"):
        parse_config({"distill": {"kd_weight": 1.5}})
    with pytest.raises(ConfigError, match=r"'students\[0\]\.kind' \('cnn'\)"):
        parse_config({"students": [{"name": "a", "kind": "cnn"}]})
    with pytest.raises(ConfigError, match=r"'students\[0\]\.quant\.unknown'"):
        parse_config({"students": [{"name": "a", "kind": "mlp", "quant": {"unknown": 1}}]})


def test_split_must_sum_to_one():
    with pytest.raises(ConfigError, match="train \\+ val \\+ test must be 1"):
        parse_config({"data": {"split": {"train": 0.9, "val": 0.1, "test": 0.3}}})


def test_cli_bad_config_exits_2_with_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("run:\n  nmae: x\n")
    assert main(["data", "--config", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "'run.nmae'" in err and "Traceback" not in err


def test_missing_config_file_exits_2(tmp_path, capsys):
    assert main(["teacher", "--config", str(tmp_path / "nope.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_invalid_yaml_exits_2(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("run: [unclosed\n")
    assert main(["distill", "--config", str(bad)]) == 2
    assert "not valid YAML" in capsys.readouterr().err


def test_default_folding_rule_and_hls4ml_parallelization():
    def k(n, max_ii, flow="rtl", **hls):
        spec = StudentConfig(name="d", kind="deepsets", n_particles=n)
        return fold_ii_cycles(spec, HlsConfig(**hls), flow, max_ii)

    # the fewest phi copies the budget's II allows, at the smallest II with that many copies
    assert [k(16, m) for m in (1, 2, 3, 4, 5, 6, 7, 8, 100)] == [1, 2, 3, 4, 4, 6, 6, 8, 16]
    assert [k(8, m) for m in (3, 5, 7)] == [3, 4, 4]
    # hls4ml: II = k x reuse, so the budget leaves max_ii // reuse to the folding
    assert k(16, 5, "hls4ml", reuse_factor=4) == 1 and k(16, 5, "hls4ml", reuse_factor=1) == 4
    assert k(16, 8, "hls4ml", reuse_factor=2) == 4
    # explicit values win, the student's over the hls section's; an MLP is never folded
    assert k(16, 5, ii_cycles=2) == 2 and k(16, 5, "hls4ml", ii_cycles=8) == 8
    spec = StudentConfig(name="d", kind="deepsets", n_particles=16, ii_cycles=3)
    assert fold_ii_cycles(spec, HlsConfig(ii_cycles=2), "rtl", 5) == 3
    assert fold_ii_cycles(StudentConfig(name="m", kind="mlp"), HlsConfig(ii_cycles=2), "rtl", 5) == 1
    # a divisor of the particles (what hls4ml builds) with at least ceil(n / k) particles at once
    assert [hls4ml_parallelization(8, k) for k in (1, 2, 3, 4, 5, 8)] == [8, 4, 4, 2, 2, 1]
    assert [hls4ml_parallelization(16, k) for k in (4, 5, 6)] == [4, 4, 4]
    assert hls4ml_parallelization(7, 3) == 7  # a prime count cannot be split: no folding in hls4ml


def test_default_config_folds_the_deep_sets_rtl_at_ii_4():
    cfg = Config()
    ds, mlp = cfg.student("deepsets"), cfg.student("mlp")
    assert cfg.ii_cycles_of(ds, "rtl", 5) == 4 and cfg.ii_cycles_of(ds, "hls4ml", 5) == 1
    assert cfg.ii_cycles_of(mlp, "rtl", 5) == 1


def test_students_by_name_change_the_inherited_students(tmp_path):
    """A mapping for ``students`` changes the named inherited students' fields and keeps the rest."""
    base = tmp_path / "base.yaml"
    base.write_text("students:\n  - {name: a, kind: mlp, hidden: [8]}\n  - {name: b, kind: deepsets}\n")
    child = tmp_path / "child.yaml"
    child.write_text("extends: base.yaml\nstudents:\n  b: {kd_weight: 0.5}\n")
    cfg = load_config(child)
    assert [(s.name, s.kind, s.kd_weight) for s in cfg.students] == [
        ("a", "mlp", None),
        ("b", "deepsets", 0.5),
    ]
    assert cfg.students[0].hidden == (8,)
    # Against the schema's defaults when no config in the chain lists students; every other field of the
    # default Deep Sets (its per-layer widths) stays.
    cfg = parse_config({"students": {"deepsets": {"teacher": "lorentznet64"}}})
    default = {s.name: s for s in Config().students}
    assert cfg.students[1] == default["deepsets"].model_copy(update={"teacher": "lorentznet64"})
    assert cfg.students[0] == default["mlp"]
    # Two levels of changes merge before they meet the defaults.
    grandchild = tmp_path / "g.yaml"
    (tmp_path / "p.yaml").write_text("students:\n  mlp: {temperature: 4.0}\n")
    grandchild.write_text("extends: p.yaml\nstudents:\n  deepsets: {kd_weight: 0.5}\n")
    cfg = load_config(grandchild)
    assert (cfg.students[0].temperature, cfg.students[1].kd_weight) == (4.0, 0.5)


@pytest.mark.parametrize(
    ("students", "message"),
    [
        (
            {"nope": {"kd_weight": 0.5}},
            "'students.nope' changes no inherited entry (inherited students: mlp, deepsets)",
        ),
        ({"mlp": 3}, "'students.mlp' must be a mapping of the fields to change, got 3"),
        ({"mlp": {"name": "other"}}, "'students.mlp.name' renames an inherited entry; give a list"),
    ],
)
def test_students_by_name_refuse_what_they_cannot_change(students, message):
    with pytest.raises(ConfigError, match="^x.yaml: " + message.replace("(", r"\(").replace(")", r"\)")):
        parse_config({"students": students}, "x.yaml")


def test_teachers_by_name_change_the_default_teacher():
    cfg = parse_config({"teachers": {"lorentznet16": {"epochs": 3}}})
    assert [(t.name, t.epochs) for t in cfg.teachers][0] == ("lorentznet16", 3)
    assert cfg.teachers[1] == Config().teachers[1]
