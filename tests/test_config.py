from __future__ import annotations

import pytest

from kd_trigger.cli import main
from kd_trigger.config import load_config, parse_config
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
