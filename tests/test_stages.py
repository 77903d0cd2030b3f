"""The stage runner on a small graph of real stage functions: digests, skips, reruns, commits, the lock.

The pipeline's own stages are exercised end to end in test_pipeline_e2e.py; here each rule of
kd_trigger.runner is checked in milliseconds, on stages that count how often they ran.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

from kd_trigger.config import BudgetConfig, parse_config
from kd_trigger.errors import RunLockedError, StaleOutputError
from kd_trigger.fingerprint import code_digest, code_fingerprint, sha_of
from kd_trigger.runner import journal_path, record_path, recover
from kd_trigger.runs import RunLock
from kd_trigger.stage_types import Stage, StageContext, StageResult
from kd_trigger.stages import build_graph, read_record, run_targets, stage_status

CALLS: list[str] = []


def source_stage(ctx: StageContext) -> StageResult:
    """Copies the external input file into its output (so content changes flow downstream)."""
    CALLS.append(ctx.stage)
    src = Path(ctx.cfg.data.path or "")
    ctx.out(ctx.cfg.artifacts / "a.txt").write_text(src.read_text() + f"|seed {ctx.cfg.run.seed}")
    return StageResult(extra={"n": 1})


def middle_stage(ctx: StageContext) -> StageResult:
    CALLS.append(ctx.stage)
    text = (ctx.cfg.artifacts / "a.txt").read_text()
    out = ctx.out(ctx.cfg.artifacts / "b")
    out.mkdir()
    (out / "b.txt").write_text(text + f"|epochs {ctx.cfg.distill.epochs}")
    return StageResult()


def verdict_stage(ctx: StageContext) -> StageResult:
    CALLS.append(ctx.stage)
    (ctx.out(ctx.cfg.firmware / "c.txt")).write_text((ctx.cfg.artifacts / "b" / "b.txt").read_text())
    return StageResult(exit_status=3 if ctx.cfg.hls.reuse_factor == 1 else 0)


def failing_stage(ctx: StageContext) -> StageResult:
    CALLS.append(ctx.stage)
    (ctx.out(ctx.cfg.firmware / "c.txt")).write_text("half")
    raise RuntimeError("killed half way")


def _graph(third: str = "verdict_stage") -> dict[str, Stage]:
    return {
        "a": Stage(
            "a",
            (),
            lambda c: {"seed": c.run.seed},
            lambda c: [c.artifacts / "a.txt"],
            f"{__name__}:source_stage",
            inputs=lambda c: [Path(c.data.path or "")],
        ),
        "b": Stage(
            "b", ("a",), lambda c: c.distill.epochs, lambda c: [c.artifacts / "b"], f"{__name__}:middle_stage"
        ),
        "c": Stage(
            "c",
            ("b",),
            lambda c: c.hls.reuse_factor,
            lambda c: [c.firmware / "c.txt"],
            f"{__name__}:{third}",
            inputs=lambda c: [Path(c.budget.profiles)],
        ),
    }


@pytest.fixture
def setup(tmp_path):
    CALLS.clear()
    data = tmp_path / "input.txt"
    data.write_text("jets v1")
    profiles = tmp_path / "budget.yaml"
    profiles.write_text("profiles: {}\n")
    config = tmp_path / "a.yaml"
    config.write_text("")

    def cfg(path: Path = config, **sections):
        raw = {
            "run": {
                "artifacts_dir": str(tmp_path / "art"),
                "firmware_dir": str(tmp_path / "fw"),
                "name": "r",
            },
            "data": {"path": str(data)},
            "budget": {"profiles": str(profiles)},
        }
        for key, value in sections.items():
            if isinstance(value, dict):
                raw.setdefault(key, {}).update(value)
            else:
                raw[key] = value
        c = parse_config(raw)
        c._source = str(path)
        return c

    return cfg, data, profiles, tmp_path


def test_first_run_runs_all_then_everything_is_up_to_date(setup):
    cfg, *_ = setup
    assert run_targets(cfg(), ["c"], graph=_graph()) == 0
    assert CALLS == ["a", "b", "c"]
    assert run_targets(cfg(), ["c"], graph=_graph()) == 0
    assert CALLS == ["a", "b", "c"]  # nothing reran
    record = read_record(cfg(), "b")
    assert record is not None and record.outputs[0].files == 1
    assert [r[1] for r in stage_status(cfg(), ["c"], graph=_graph())] == ["up to date"] * 3


@pytest.mark.parametrize(
    ("change", "reruns"),
    [
        ("input file", ["a", "b", "c"]),
        ("own section", ["b", "c"]),
        ("budget file", ["c"]),
        ("unrelated section", []),
    ],
)
def test_any_change_reruns_exactly_the_stages_downstream_of_it(setup, change, reruns):
    cfg, data, profiles, _ = setup
    run_targets(cfg(), ["c"], graph=_graph())
    CALLS.clear()
    sections = {}
    if change == "input file":
        data.write_text("jets v2")  # same size as "jets v1": only the mtime tells the shortcut
        stat = data.stat()
        os.utime(data, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # a coarse clock cannot hide it
    elif change == "own section":
        sections = {"distill": {"epochs": 7}}
    elif change == "budget file":
        profiles.write_text("profiles: {changed: 1}\n")
    else:
        sections = {
            "teachers": [{"name": "other"}],
            "students": [{"name": "s", "kind": "mlp", "teacher": "other"}],
        }
    assert run_targets(cfg(**sections), ["c"], graph=_graph()) == 0
    assert reruns == CALLS
    if change == "input file":
        assert (cfg().firmware / "c.txt").read_text().startswith("jets v2")


def test_a_same_size_edit_with_the_old_mtime_is_trusted_unchanged(setup):
    """The documented rule of the shortcut: an input file with the size and mtime of the last run is not
    hashed again. An edit that keeps both (``touch -d``, a restored mtime) is not seen; a same-size
    edit that moves the mtime is (the "input file" case above)."""
    cfg, data, _, _ = setup
    run_targets(cfg(), ["c"], graph=_graph())
    stat = data.stat()
    CALLS.clear()
    data.write_text("jets v2")
    os.utime(data, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert data.stat().st_size == stat.st_size
    assert run_targets(cfg(), ["c"], graph=_graph()) == 0
    assert CALLS == []
    assert read_record(cfg(), "a").inputs[0].sha256 == hashlib.sha256(b"jets v1").hexdigest()


def test_status_names_what_changed(setup):
    cfg, data, _, _ = setup
    run_targets(cfg(), ["c"], graph=_graph())
    data.write_text("jets v2")
    rows = stage_status(cfg(), ["c"], graph=_graph())
    assert rows[0][1:] == ("would run", f"input file {data} changed")
    assert rows[1][1:] == ("would run", "upstream stage a runs first")


def test_outputs_of_another_config_file_are_refused_unless_forced(setup, tmp_path):
    cfg, *_ = setup
    run_targets(cfg(), ["c"], graph=_graph())
    other = cfg(tmp_path / "b.yaml", distill={"epochs": 9})
    with pytest.raises(StaleOutputError, match="another config .*a.yaml.*--force"):
        run_targets(other, ["c"], graph=_graph())
    CALLS.clear()
    run_targets(other, ["c"], force=True, graph=_graph())
    assert CALLS == ["b", "c"]


def test_unrecorded_outputs_are_refused_unless_forced(setup):
    cfg, *_ = setup
    c = cfg()
    c.artifacts.mkdir(parents=True)
    (c.artifacts / "a.txt").write_text("made by hand")
    with pytest.raises(StaleOutputError, match="no stage record says what made it"):
        run_targets(c, ["a"], graph=_graph())
    assert (c.artifacts / "a.txt").read_text() == "made by hand"


def test_a_failed_stage_commits_nothing_and_keeps_the_previous_outputs(setup):
    cfg, *_ = setup
    run_targets(cfg(), ["c"], graph=_graph())
    before = (cfg().firmware / "c.txt").read_text()
    with pytest.raises(RuntimeError, match="killed half way"):
        run_targets(cfg(hls={"reuse_factor": 2}), ["c"], graph=_graph("failing_stage"))
    assert (cfg().firmware / "c.txt").read_text() == before
    assert sorted(p.name for p in cfg().firmware.iterdir()) == ["c.txt"]  # no staging leftovers
    CALLS.clear()
    assert run_targets(cfg(), ["c"], graph=_graph()) == 0
    assert CALLS == []  # the old outputs are still this config's, and still up to date


def test_an_interrupted_commit_is_rolled_forward_by_the_next_run(setup):
    cfg, *_ = setup
    c = cfg()
    run_targets(c, ["c"], graph=_graph())
    # Fake a process that wrote its journal (the commit point) and died before moving anything.
    staging = c.firmware / ".c.txt.kdt-staging999999999"
    staging.write_text("new outputs")
    record = json.loads(record_path(c, "c").read_text())
    record["digest"] = "fromthejournal"
    journal_path(c, "c").write_text(
        json.dumps(
            {
                "pid": 999999999,
                "moves": [[str(staging), str(c.firmware / "c.txt")]],
                "record": record,
                "config": {},
            }
        )
    )
    recover(c)
    assert (c.firmware / "c.txt").read_text() == "new outputs"
    assert read_record(c, "c").digest == "fromthejournal"
    assert not journal_path(c, "c").exists() and not staging.exists()


@pytest.mark.parametrize("damage", ["truncated", "no moves"])
def test_a_corrupt_journal_is_dropped_and_the_run_recovers(setup, damage, caplog):
    """A journal cut short (it is written atomically, but a disk can still hand back garbage) or missing
    its moves: the next run drops it with a warning and the last complete commit stands (its record kept:
    withdrawing it first left outputs that the next run refused as of unknown origin)."""
    cfg, *_ = setup
    c = cfg()
    run_targets(c, ["c"], graph=_graph())
    before = (c.firmware / "c.txt").read_text()
    record = json.loads(record_path(c, "c").read_text())
    text = json.dumps({"pid": 999999999, "moves": [], "record": record, "config": {}})
    if damage == "truncated":
        text = text[: len(text) // 2]
    else:
        text = json.dumps({"pid": 999999999, "record": record, "config": {}})
    journal_path(c, "c").write_text(text)
    CALLS.clear()
    caplog.set_level("WARNING", logger="kd_trigger.runner")
    assert run_targets(c, ["c"], graph=_graph()) == 0
    assert not journal_path(c, "c").exists()
    assert any("the last complete commit of its stage stands" in r.getMessage() for r in caplog.records)
    assert CALLS == []
    assert (c.firmware / "c.txt").read_text() == before
    assert read_record(c, "c") is not None
    assert [r[1] for r in stage_status(c, ["c"], graph=_graph())] == ["up to date"] * 3


def test_leftovers_of_dead_runs_are_removed_and_live_ones_kept(setup):
    cfg, *_ = setup
    c = cfg()
    run_targets(c, ["c"], graph=_graph())
    dead = [
        c.artifacts / ".a.txt.kdt-tmp999999999",
        c.firmware / ".c.txt.kdt-staging999999999",
        c.artifacts / "b" / ".x.kdt-tmp999999999.h5",
    ]
    for path in dead:
        path.write_text("junk")
    live = c.artifacts / f".a.txt.kdt-tmp{os.getpid()}"
    live.write_text("mine")
    assert run_targets(c, ["c"], graph=_graph()) == 0
    assert not any(p.exists() for p in dead)
    assert live.exists()


def test_budget_status_survives_a_skip(setup):
    cfg, *_ = setup
    assert run_targets(cfg(hls={"reuse_factor": 1}), ["c"], graph=_graph()) == 3
    assert run_targets(cfg(hls={"reuse_factor": 1}), ["c"], graph=_graph()) == 3


def test_a_second_run_on_the_same_run_directory_is_refused_naming_the_holder(setup):
    cfg, *_ = setup
    c = cfg()
    with RunLock(c.artifacts), pytest.raises(RunLockedError, match=rf"in use by pid {os.getpid()} \("):
        run_targets(c, ["a"], graph=_graph())


def test_the_lock_of_a_dead_process_is_taken_over(setup, tmp_path):
    cfg, *_ = setup
    c = cfg()
    code = f"from pathlib import Path; from kd_trigger.runs import RunLock; lock = RunLock(Path({str(c.artifacts)!r})).acquire(); print('held', flush=True); import time; time.sleep(60)"
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunLockedError, match=f"pid {holder.pid}"):
            run_targets(c, ["a"], graph=_graph())
    finally:
        holder.kill()
        holder.wait()
    assert json.loads((c.artifacts / ".lock").read_text())["pid"] == holder.pid  # a stale lock file
    assert run_targets(c, ["a"], graph=_graph()) == 0


def test_a_refused_run_leaves_no_run_directory(setup, tmp_path):
    cfg, *_ = setup
    c = cfg()
    with pytest.raises(KeyError):
        run_targets(
            c, ["a"], graph={"a": Stage("a", (), lambda c: 1, lambda c: [], f"{__name__}:source_stage")}
        )
    assert not (tmp_path / "art").exists()


def test_a_students_pairing_reruns_distill_and_the_default_study_but_not_a_search() -> None:
    """A study with ``study.grid`` tries every teacher and (T, w) itself: re-pairing a student (what
    distill deploys) must not invalidate it, while any change to what it trains must. The default study
    trains the deployed pairing, so re-pairing reruns it."""
    grid = {"grid": [{"temperature": 1.0, "kd_weight": 0.7}]}

    def sections(raw: dict, study: dict | None = None) -> dict[str, object]:
        cfg = parse_config({**raw, "study": study or {}})
        graph = build_graph(cfg)
        return {name: sha_of(graph[name].config(cfg)) for name in ("distill", "study")}

    students = [
        {"name": "mlp", "kind": "mlp", "teacher": "lorentznet64", "temperature": 2.0, "kd_weight": 0.9}
    ]
    base = sections({"students": students}, grid)
    repairing = {"students": [{**students[0], "teacher": "lorentznet16", "temperature": 1.0}]}
    repaired = sections(repairing, grid)
    assert repaired["distill"] != base["distill"] and repaired["study"] == base["study"]
    assert sections({"distill": {"temperature": 4.0}}, grid)["study"] == sections({}, grid)["study"]
    wider = sections({"students": [{**students[0], "hidden": [32, 32]}]}, grid)
    assert wider["study"] != base["study"]
    assert sections(repairing)["study"] != sections({"students": students})["study"]
    unpaired = [{"name": "mlp", "kind": "mlp"}]  # learns at distill's (T, w)
    assert (
        sections({"students": unpaired, "distill": {"temperature": 4.0}})["study"]
        != sections({"students": unpaired})["study"]
    )


MIDDLE_SOURCE = """def middle(ctx):
    from test_stages import middle_stage

    return middle_stage(ctx)
"""


def test_a_code_change_reruns_the_stage_that_runs_it_and_downstream(setup, monkeypatch):
    """Editing the source of a stage's module reruns it and what follows, without any version bump
    (kd_trigger modules it imports count the same way: see the next test)."""
    cfg, _, _, tmp_path = setup
    code_dir = tmp_path / "code"
    code_dir.mkdir()
    module = code_dir / "kdt_middle_stage.py"
    module.write_text(MIDDLE_SOURCE)
    monkeypatch.syspath_prepend(str(code_dir))
    graph = _graph()
    graph["b"] = Stage(
        "b", ("a",), lambda c: c.distill.epochs, lambda c: [c.artifacts / "b"], "kdt_middle_stage:middle"
    )
    run_targets(cfg(), ["c"], graph=graph)
    assert CALLS == ["a", "b", "c"]
    CALLS.clear()
    module.write_text(MIDDLE_SOURCE + "# a fix\n")  # the size changes too: no mtime granularity hides it
    rows = stage_status(cfg(), ["c"], graph=graph)
    assert rows[0][1] == "up to date"
    assert rows[1][1:] == ("would run", f"its code changed ({module})")
    run_targets(cfg(), ["c"], graph=graph)
    assert CALLS == ["b", "c"]


def test_each_pipeline_stage_is_fingerprinted_by_the_code_it_runs() -> None:
    """The real graph: a stage's code is what its function imports, not the runner's or the CLI's."""
    cfg = parse_config({})
    graph = build_graph(cfg)
    code = {name: set(code_fingerprint(stage.module)) for name, stage in graph.items()}
    assert "kd_trigger/data/generate.py" in code["data"]
    assert "kd_trigger/distill/teacher_train.py" in code["teacher:lorentznet64"]
    assert "kd_trigger/rtl/flow.py" in code["rtl"] and "kd_trigger/hls/csim.py" in code["hls4ml"]
    assert "kd_trigger/report/sections.py" in code["report"]
    # An edit to firmware or report code never retrains a teacher or regenerates jets.
    for upstream in ("data", "teacher:lorentznet64"):
        assert not any(
            f.startswith(("kd_trigger/rtl/", "kd_trigger/hls/", "kd_trigger/report/")) for f in code[upstream]
        )
    for files in code.values():
        assert not files & {
            "kd_trigger/stages.py",
            "kd_trigger/runner.py",
            "kd_trigger/stage_types.py",
            "kd_trigger/cli.py",
            "kd_trigger/errors.py",
        }


def test_an_edit_to_the_config_loader_or_another_section_never_regenerates_jets() -> None:
    """A stage follows the config class it reads, not the whole config package: importing ``Config`` for
    annotations (under TYPE_CHECKING) runs nothing, and ``from kd_trigger.config import DataConfig``
    runs config/data.py, not every module the package's __init__ re-exports."""
    graph = build_graph(parse_config({}))
    data = set(code_fingerprint(graph["data"].module))
    teacher = set(code_fingerprint(graph["teacher:lorentznet64"].module))
    assert {"kd_trigger/config/data.py", "kd_trigger/config/__init__.py"} <= data
    assert "kd_trigger/config/teachers.py" in teacher
    for module in ("loading", "schema", "training", "firmware", "budget"):
        assert f"kd_trigger/config/{module}.py" not in data | teacher, module
    assert "kd_trigger/config/teachers.py" not in data
    # The stages that do load configs or read other sections still follow them.
    assert "kd_trigger/config/training.py" in code_fingerprint(graph["distill"].module)


def test_a_package_upgrade_and_a_record_without_code_are_named_as_the_reason(setup):
    cfg, *_ = setup
    c = cfg()
    run_targets(c, ["a"], graph=_graph())
    path = record_path(c, "a")
    record = json.loads(path.read_text())
    installed = record["parts"]["packages"]["hls4ml"]
    # As written by an environment with another hls4ml: other parts, hence another digest.
    record["parts"]["packages"]["hls4ml"] = "0.0.1"
    record["digest"] = "0" * 16
    path.write_text(json.dumps(record))
    assert stage_status(c, ["a"], graph=_graph())[0][1:] == ("would run", f"hls4ml 0.0.1 -> {installed}")
    record["parts"]["packages"]["hls4ml"] = installed
    del record["parts"]["code"]  # a record written before code fingerprints existed
    path.write_text(json.dumps(record))
    assert stage_status(c, ["a"], graph=_graph())[0][1:] == (
        "would run",
        "its record predates code fingerprints",
    )


def test_another_tensorflow_kernel_setting_reruns_records_and_rekeys(setup, monkeypatch):
    """TF_ENABLE_ONEDNN_OPTS=0 trains another student from the same seed (issue 23): a stage run both
    ways must not hand back the other setting's outputs, nor the study/scan caches their trainings."""
    cfg, *_ = setup
    c = cfg()
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    run_targets(c, ["a"], graph=_graph())
    plain = code_digest("kd_trigger.distill.pipeline")
    assert "TF_ENABLE_ONEDNN_OPTS" not in json.loads(record_path(c, "a").read_text())["versions"]
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
    assert stage_status(c, ["a"], graph=_graph())[0][1:] == ("would run", "TF_ENABLE_ONEDNN_OPTS unset -> 0")
    assert code_digest("kd_trigger.distill.pipeline") != plain
    run_targets(c, ["a"], graph=_graph())
    record = json.loads(record_path(c, "a").read_text())
    assert record["versions"]["TF_ENABLE_ONEDNN_OPTS"] == "0"
    assert record["parts"]["packages"]["TF_ENABLE_ONEDNN_OPTS"] == "0"
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "1")
    assert stage_status(c, ["a"], graph=_graph())[0][1:] == ("would run", "TF_ENABLE_ONEDNN_OPTS 0 -> 1")


def test_scan_points_and_study_trainings_are_keyed_by_their_code(tmp_path, monkeypatch) -> None:
    """The two caches inside stages must not hand back results of older code either."""
    from kd_trigger import scan_points as scan

    cfg = parse_config({"run": {"artifacts_dir": str(tmp_path)}})
    keys = [p.key for p in scan.plan_points(cfg)]
    monkeypatch.setattr(scan, "code_digest", lambda *modules: "other code")
    assert all(a != b for a, b in zip(keys, (p.key for p in scan.plan_points(cfg)), strict=True))
    code_dir = tmp_path / "code"
    code_dir.mkdir()
    (code_dir / "kdt_training_code.py").write_text("from kd_trigger import evaluate\n")
    monkeypatch.syspath_prepend(str(code_dir))
    before = code_digest("kdt_training_code")
    (code_dir / "kdt_training_code.py").write_text("from kd_trigger import evaluate  # edited\n")
    assert code_digest("kdt_training_code") != before
    from kd_trigger.study import Trainer
    from kd_trigger.study_training import TrainJob

    trainer = object.__new__(Trainer)  # only the key's inputs; no jets are needed to form a key
    trainer.cfg, trainer.upstream, trainer.betas = cfg, {"data": "d"}, [0.5]
    job = TrainJob("mlp", 0)
    trainer.code = code_digest("kd_trigger.distill.pipeline", "kd_trigger.models.students")
    key = trainer.key(job)
    trainer.code = before
    assert trainer.key(job) != key
    # the augmentation control's arms are other trainings: their own keys
    assert trainer.key(TrainJob("mlp", 0, augment=0.9)) != trainer.key(job)


# -- the firmware flows: hls.flows gates the hls4ml and rtl stages ---------------------------------
FLOW_GATES = {
    ("hls4ml", "rtl"): ["hls4ml", "rtl"],
    ("hls4ml",): ["hls4ml"],
    ("rtl",): ["rtl"],
}


@pytest.mark.parametrize("flows", list(FLOW_GATES))
def test_hls_flows_put_exactly_their_stages_in_the_graph(flows) -> None:
    """A flow not in ``hls.flows`` is not built: its stage is not in the graph and ``hls`` does not need it."""
    from kd_trigger.runner import plan

    cfg = parse_config({"hls": {"flows": list(flows)}})
    graph = build_graph(cfg)
    built = FLOW_GATES[flows]
    assert [n for n in graph if n in ("hls4ml", "rtl")] == built
    assert graph["hls"].needs == tuple(built)
    assert plan(graph, ["hls"]) == [
        "data",
        "teacher:lorentznet16",
        "teacher:lorentznet64",
        "teacher:ensemble",
        "distill",
        *built,
        "hls",
    ]
    # A new latency or resource limit in the budget file reruns the verdict (hls), never a flow: the
    # flows depend on the profile's II only, through their config part.
    assert graph["hls"].inputs(cfg) == [Path(cfg.budget.profiles)]
    for flow in built:
        assert graph[flow].needs == ("data", "distill")
        assert graph[flow].inputs(cfg) == []
        assert graph[flow].outputs(cfg) == [cfg.artifacts / "stages" / flow / s.name for s in cfg.students]
    # Switching one flow on or off reruns neither the other flow nor anything upstream of hls.
    both = parse_config({})
    for flow in built:
        assert sha_of(graph[flow].config(cfg)) == sha_of(build_graph(both)[flow].config(both))


def _downstream(graph: dict[str, Stage], names: set[str]) -> set[str]:
    out = set(names)
    for name, stage in graph.items():  # the graph's order is upstream first
        if out & set(stage.needs):
            out.add(name)
    return out


def _reruns(graph: dict[str, Stage], source: str) -> set[str]:
    """The stages an edit to ``source`` reruns: those whose code contains it, and everything downstream."""
    return _downstream(
        graph, {name for name, stage in graph.items() if source in code_fingerprint(stage.module)}
    )


def test_an_rtl_edit_reruns_rtl_and_the_verdict_but_never_the_hls4ml_conversion() -> None:
    graph = build_graph(parse_config({}))
    reruns = _reruns(graph, "kd_trigger/rtl/emit.py")
    assert {"rtl", "hls", "report"} <= reruns
    assert not reruns & {"hls4ml", "distill", "data", "study"}


def test_an_hls4ml_edit_reruns_the_conversion_but_never_the_rtl_flow() -> None:
    graph = build_graph(parse_config({}))
    # The precision derivation both flows take their types from lives in layers/: an edit there reruns both.
    shared = _reruns(graph, "kd_trigger/layers/model.py")
    assert {"hls4ml", "rtl", "hls", "report"} <= shared
    # Code only the hls4ml flow runs: the conversion, the C simulation, estimates, vendor synthesis.
    for source in (
        "kd_trigger/hls/convert.py",
        "kd_trigger/hls/csim.py",
        "kd_trigger/fpga/estimate/model.py",
        "kd_trigger/fpga/synth.py",
        "kd_trigger/hls/build.py",
        # Package data, not code: a refit of the estimator rewrites this file and must rerun the flow.
        "kd_trigger/fpga/estimate/coefficients.json",
    ):
        reruns = _reruns(graph, source)
        assert {"hls4ml", "hls"} <= reruns and "rtl" not in reruns, source


FIXTURE = Path(__file__).parent / "fixtures" / "hls_report" / "ci_mlp.json"


def _fixture() -> dict:
    return json.loads(FIXTURE.read_text())


def fixture_hls4ml_stage(ctx: StageContext) -> StageResult:
    """The hls4ml stage's outputs, as the CI run's MLP left them (no TensorFlow, no compiler)."""
    from kd_trigger.hls.flows import flow_dir

    CALLS.append(ctx.stage)
    out = ctx.out(flow_dir(ctx.cfg, "hls4ml", "mlp"))
    out.mkdir()
    report = _fixture()
    report.update(rtl=None, rtl_sim=None, budget=None, budget_by_flow={})
    (out / "hls_report.json").write_text(json.dumps(report))
    (out / "firmware").mkdir()
    (out / "firmware" / "myproject.cpp").write_text("// the HLS C++\n")
    return StageResult()


def fixture_rtl_stage(ctx: StageContext) -> StageResult:
    """The rtl stage's outputs (rtl_report.json), from the same CI report."""
    from kd_trigger.hls.flows import flow_dir

    CALLS.append(ctx.stage)
    out = ctx.out(flow_dir(ctx.cfg, "rtl", "mlp"))
    out.mkdir()
    fixture = _fixture()
    rtl = {k: v for k, v in fixture["rtl"].items() if k != "directory"}
    (out / "rtl_report.json").write_text(json.dumps({**rtl, "rtl_sim": fixture["rtl_sim"]}))
    (out / "model_top.v").write_text("module model_top; endmodule\n")
    return StageResult()


def _assert_the_review_report_shows_csim_not_run(report, folder: Path, tmp_path: Path) -> None:
    """An RTL-only report renders: exactness, resources, budget and the summary row say the C simulation
    was not run and let the RTL decide."""
    from kd_trigger.fpga.budget import load_budget
    from kd_trigger.report.assemble import summary_row
    from kd_trigger.report.html import render_markdown
    from kd_trigger.report.inputs import StudentInputs
    from kd_trigger.report.sections import budget_blocks, exactness_blocks, resource_blocks

    student = StudentInputs("mlp", folder / "hls_report.json", report, None)
    blocks, verdict = budget_blocks(student)
    profile = load_budget(BudgetConfig(profiles=str(REPO / "configs" / "budget.yaml")))
    md = render_markdown(
        [*exactness_blocks(student), *resource_blocks(student, profile, tmp_path, "p"), *blocks]
    )
    assert "hls4ml C simulation" not in md and "RTL simulation (verilator" in md
    row, tone = summary_row(student, verdict)
    assert row[1:5] == ("not run", "BIT-EXACT", verdict, "rtl")
    assert tone == ("pass" if verdict == "PASS" else "fail")


@pytest.mark.parametrize("flows", list(FLOW_GATES))
def test_the_hls_stage_assembles_the_firmware_folder_from_the_flows_it_builds(setup, flows, tmp_path) -> None:
    """The real hls stage on each flow's outputs: firmware/<run>/mlp holds what the flows built (hard
    links, no copies), hls_report.json the figures of exactly those flows and their budget verdicts."""
    from kd_trigger.contracts import HlsReport

    cfg, *_ = setup
    c = cfg(
        hls={"flows": list(flows)},
        students=[{"name": "mlp", "kind": "mlp"}],
        budget={"profiles": str(REPO / "configs" / "budget.yaml"), "profile": "l1_jet_tagger_vu13p"},
    )
    real = build_graph(c)
    stubs = {"hls4ml": f"{__name__}:fixture_hls4ml_stage", "rtl": f"{__name__}:fixture_rtl_stage"}
    graph = {
        name: dataclasses.replace(real[name], needs=(), run=stubs[name]) if name in stubs else real[name]
        for name in (*FLOW_GATES[flows], "hls")
    }
    status = run_targets(c, ["hls"], graph=graph)
    assert FLOW_GATES[flows] == CALLS
    folder = c.firmware / "mlp"
    report = HlsReport.model_validate_json((folder / "hls_report.json").read_text())
    assert set(report.budget_by_flow) == set(FLOW_GATES[flows])
    assert status == (0 if report.budget is not None and report.budget.passed else 3)
    assert (folder / "firmware" / "myproject.cpp").is_file() == ("hls4ml" in flows)
    assert (folder / "rtl" / "rtl_report.json").is_file() == ("rtl" in flows)
    if "hls4ml" in flows:
        built = c.artifacts / "stages" / "hls4ml" / "mlp" / "firmware" / "myproject.cpp"
        assert (folder / "firmware" / "myproject.cpp").stat().st_ino == built.stat().st_ino
        assert report.csim is not None and report.resources is not None
    else:
        assert report.csim is None and report.project_dir == str(folder)
        _assert_the_review_report_shows_csim_not_run(report, folder, tmp_path)
    if "rtl" in flows:
        assert report.rtl is not None and report.rtl.directory == "rtl" and report.rtl_sim is not None
        assert report.rtl.yosys is not None and report.rtl.yosys.lut == _fixture()["rtl"]["yosys"]["lut"]
    else:
        assert report.rtl is None and report.rtl_sim is None
    # The flows' own hls_report.json is not touched by the verdict written beside its link.
    if "hls4ml" in flows:
        flow_report = json.loads((c.artifacts / "stages" / "hls4ml" / "mlp" / "hls_report.json").read_text())
        assert flow_report["budget"] is None
    CALLS.clear()
    assert run_targets(c, ["hls"], graph=graph) == status
    assert CALLS == []


@pytest.mark.slow
def test_hls_flows_rtl_only_builds_no_hls4ml_project(ci_run, make_config) -> None:
    """``hls.flows: [rtl]``: the hls4ml conversion does not run (no stage, no project, no C simulation);
    the RTL flow decides the budget and the review report says the C simulation was not run."""
    from kd_trigger.cli import main
    from kd_trigger.config import load_config

    teacher = {"name": "lorentznet64", "kind": "lorentznet", "n_particles": 64, "neighbours": 8, "n_layers": 1,
               "hidden": 8, "epochs": 2, "warmup_epochs": 0.5, "batch_size": 64}  # fmt: skip
    student = {"name": "mlp", "kind": "mlp", "n_particles": 8, "hidden": [16, 8], "teacher": "lorentznet64"}
    path = make_config("rtlonly.yaml", run={"name": "rtlonly"}, data={"path": str(ci_run.cfg.data_path)},
                       teachers=[teacher], students=[student], hls={"flows": ["rtl"]})  # fmt: skip
    cfg = load_config(path)
    assert main(["hls", "--config", str(path)]) == 0
    assert read_record(cfg, "hls4ml") is None and not (cfg.artifacts / "stages" / "hls4ml").exists()
    report = json.loads((cfg.firmware / "mlp" / "hls_report.json").read_text())
    assert report["csim"] is None and report["resources"] is None
    assert report["rtl_sim"]["exact_fraction"] == 1.0 and report["rtl"]["yosys"]["lut"] > 0
    assert report["budget"]["flow"] == "rtl" and set(report["budget_by_flow"]) == {"rtl"}
    assert sorted(p.name for p in (cfg.firmware / "mlp").iterdir()) == ["hls_report.json", "rtl"]
    md = (cfg.firmware / "report.md").read_text()
    [row] = [line for line in md.splitlines() if line.startswith("| mlp |")]
    assert [c.strip() for c in row.strip("|").split("|")][1:3] == ["not run", "BIT-EXACT"]


def test_building_the_graph_imports_no_tensorflow() -> None:
    """Every stage module is imported to read its STAGE: their top-level imports must stay TensorFlow-free."""
    code = (
        "import sys; from kd_trigger.config import parse_config; from kd_trigger.stages import build_graph; "
        "build_graph(parse_config({})); print('tensorflow' in sys.modules, 'qkeras' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.split() == ["False", "False"]


def test_the_machinery_imports_no_stage_module() -> None:
    """Stage modules import the types; only the graph imports stage modules (no runner <-> stage cycle)."""
    import ast

    from kd_trigger.stages import declarations

    stage_modules = {decl.run.__module__ for decl in declarations(parse_config({}))}
    assert len(stage_modules) == 9
    for name in ("stage_types", "runner", "fingerprint"):
        tree = ast.parse((REPO / "kd_trigger" / f"{name}.py").read_text())
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert not imported & (stage_modules | {"kd_trigger.stages"}), name
    for module in stage_modules:
        tree = ast.parse((REPO / (module.replace(".", "/") + ".py")).read_text())
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert not imported & {"kd_trigger.stages", "kd_trigger.runner"}, module
