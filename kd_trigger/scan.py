"""The scan stage: which student, at which precision and reuse factor, has the best physics in budget?

Each point of ``scan.axes`` (a grid, or a random / Latin-hypercube sample of it) is a task on Dask: a
KD-trained student (from its teacher's cached logits), converted to hls4ml firmware, gated by the bit-exact
C simulation on the test jets, measured (resources and latency from the best source available) and
scored (AUC, 1/eps_B at 30% and 50% with bootstrap errors). A point that fails the gate, or that cannot be
built, is kept and marked, never dropped.

Every point's result is cached in ``artifacts/<run>/scan-cache/<key>/`` under a digest of everything it
depends on: a killed scan (or a killed worker) resumes where it stopped, and an unchanged point is never
recomputed. Workers share nothing but the run directory (and ``data.path`` when the config sets one).

Outputs: ``artifacts/<run>/scan/`` (``scan.json``, ``scan.md``, the Pareto plots) and the best design
within the budget, promoted to ``firmware/<run>/best/`` with its full ``hls_report.json``. When no point
fits, the stage exits 3 and names the nearest miss.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kd_trigger.config import Config, ScanAxes, StudentConfig, fold_ii_cycles
from kd_trigger.contracts import BudgetBlock, Scan, ScanPoint, finite_or_none
from kd_trigger.errors import EXIT_BUDGET, EXIT_OK, ConfigError, KdTriggerError
from kd_trigger.fingerprint import code_digest
from kd_trigger.hls.flows import budget_file, check_hls
from kd_trigger.layout import RunLayout
from kd_trigger.runs import remove_path, tmp_name, write_json_atomic, write_text_atomic
from kd_trigger.stage_types import StageContext, StageDecl, StageResult, teacher_stage_name

log = logging.getLogger(__name__)

CACHE_DIR = "scan-cache"
OUT_DIR = "scan"
BEST_DIR = "best"
QUANT_AXES = ("weight_bits", "activation_bits", "input_bits")
STUDENT_AXES = ("hidden", "head", "n_particles")


# -- planning (pure) ------------------------------------------------------------------------------
@dataclass(frozen=True)
class PointSpec:
    """One design to build: the student it derives from, the axis values, the resulting student."""

    key: str
    student: str
    kind: str
    axes: dict[str, Any]
    spec: dict[str, Any]
    reuse_factor: int
    flow: str


def _apply(base: StudentConfig, values: dict[str, Any]) -> dict[str, Any]:
    """The student ``base`` with the axis ``values`` applied, as a plain dict (validated on the worker)."""
    spec = base.model_dump(mode="json")
    for name in QUANT_AXES:
        if name in values:
            spec["quant"][name] = values[name]
    for name in STUDENT_AXES:
        if name in values:
            spec[name] = list(values[name])
    parts = [f"{_SHORT[k]}{_text(v)}" for k, v in values.items() if k in _SHORT]
    name = "-".join([base.name, *parts])
    # Student names are at most 48 characters: a long list of axes falls back to a digest.
    spec["name"] = name if len(name) <= 48 else f"{base.name}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"
    return spec


_SHORT = {
    "weight_bits": "w",
    "activation_bits": "a",
    "input_bits": "i",
    "hidden": "h",
    "head": "r",
    "n_particles": "n",
}


def _text(value: Any) -> str:
    return "x".join(map(str, value)) if isinstance(value, tuple | list) else str(value)


def _levels(axes: ScanAxes) -> dict[str, list[Any]]:
    return {name: list(values) for name, values in axes if values is not None}


def _lhs(levels: dict[str, list[Any]], n: int, rng: np.random.Generator) -> list[dict[str, Any]]:
    """A Latin-hypercube sample of discrete axes: each axis's levels used as evenly as n allows."""
    columns = {}
    for name, values in levels.items():
        strata = (rng.permutation(n) + rng.random(n)) / n
        columns[name] = [values[min(int(u * len(values)), len(values) - 1)] for u in strata]
    return [{name: columns[name][i] for name in levels} for i in range(n)]


def plan_points(cfg: Config, upstream: dict[str, str] | None = None) -> list[PointSpec]:
    """Every point of ``cfg.scan``, deduplicated, in a stable order (pure: no files, no TensorFlow).

    ``upstream`` (stage name -> digest of the data and teacher stages) enters every point's key, so
    new jets or a retrained teacher never reuse a cached result.
    """
    scfg = cfg.scan
    if not scfg.axes:
        raise ConfigError(
            "scan.axes is empty; give the values to try per student kind, e.g. scan.axes.mlp.weight_bits"
        )
    rng = np.random.default_rng([scfg.seed, 0x5CA2])
    code = code_digest(__name__)  # the code that computes a point (read once: it is the same for all)
    points: dict[str, PointSpec] = {}
    for kind, axes in scfg.axes.items():
        base = next((s for s in cfg.students if s.kind == kind), None)
        if base is None:
            raise ConfigError(f"scan.axes.{kind}: no configured student of kind {kind!r}")
        levels = _levels(axes)
        grid = [dict(zip(levels, combo, strict=True)) for combo in itertools.product(*levels.values())]
        if scfg.mode == "grid":
            chosen = grid if scfg.points is None else grid[: scfg.points]
        elif scfg.mode == "random":
            n = min(scfg.points or len(grid), len(grid))
            chosen = [grid[i] for i in sorted(rng.choice(len(grid), size=n, replace=False))]
        else:
            chosen = _lhs(levels, scfg.points or len(grid), rng)
        for values in chosen:
            spec = _apply(base, values)
            reuse = int(values.get("reuse_factor", cfg.hls.reuse_factor))
            flow = str(values.get("flow", cfg.hls.flows[0]))
            key = _point_key(cfg, base, spec, reuse, flow, upstream or {}, code)
            points.setdefault(key, PointSpec(key, base.name, kind, dict(values), spec, reuse, flow))
    return list(points.values())


def _point_key(
    cfg: Config,
    base: StudentConfig,
    spec: dict[str, Any],
    reuse: int,
    flow: str,
    upstream: dict[str, str],
    code: str,
) -> str:
    """Digest of everything a point's result depends on, ``code`` (the scan's code digest) included."""
    teacher = f"teacher:{cfg.teacher_of(base).name}"
    payload = {
        "code": code,
        "upstream": {k: v for k, v in upstream.items() if k in ("data", teacher)},
        "spec": spec,
        "reuse": reuse,
        "flow": flow,
        "teacher": cfg.teacher_of(base).model_dump(mode="json"),
        "kd": cfg.kd_setting(base),
        "distill": cfg.distill.model_dump(mode="json"),
        "epochs": cfg.scan.epochs,
        "hls": cfg.hls.model_dump(mode="json", exclude={"reuse_factor", "flows", "synth"}),
        "seed": cfg.run.seed,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def pareto_front(values: list[tuple[float, ...]], maximize: tuple[bool, ...]) -> list[bool]:
    """True for every point no other point dominates (at least as good in all objectives, better in one).

    ``maximize[i]`` says whether objective i is better large; NaN makes a point dominated by any other.
    """
    signs = np.array([1.0 if m else -1.0 for m in maximize])
    v = np.array(values, dtype=np.float64).reshape(len(values), len(maximize)) * signs
    v = np.where(np.isnan(v), -np.inf, v)
    front = []
    for i in range(len(v)):
        dominated = np.any(np.all(v >= v[i], axis=1) & np.any(v > v[i], axis=1))
        front.append(bool(not dominated and np.all(np.isfinite(v[i]))))
    return front


# -- one point (runs on a Dask worker) ------------------------------------------------------------
_DATA: dict[str, Any] = {}


def _data(cfg: Config) -> Any:
    """The run's jets, loaded once per worker process."""
    path = str(cfg.data_path.resolve())
    stamp = f"{path}:{cfg.data_path.stat().st_mtime_ns}"
    if stamp not in _DATA:
        from kd_trigger.data.readers import load_jets

        _DATA.clear()
        _DATA[stamp] = load_jets(cfg.data_path, cfg)
    return _DATA[stamp]


def evaluate_point(task: dict[str, Any]) -> dict[str, Any]:
    """Build, gate, measure and score one design; the cached result when there is one.

    ``task`` holds the resolved config, the point and the cache directory (plain data: it travels to
    the worker). Returns the point's figures as a dict (a :class:`ScanPoint` without budget and fronts).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from kd_trigger.config import parse_config

    point = PointSpec(**task["point"])
    cache = Path(task["cache"]) / point.key
    result_path = cache / "point.json"
    if result_path.is_file():
        return dict(json.loads(result_path.read_text()))
    cfg = parse_config(task["config"], "scan task")
    staging = tmp_name(cache, "staging")
    remove_path(staging)
    staging.mkdir(parents=True)
    t0 = time.perf_counter()
    try:
        result = _build_point(cfg, point, staging)
    except KdTriggerError as err:
        result = {"error": str(err), "exact": False, "exactness": {}}
    result.update(
        key=point.key,
        student=point.student,
        kind=point.kind,
        axes=point.axes,
        seconds=round(time.perf_counter() - t0, 1),
    )
    result.setdefault("physics", {})
    result.setdefault("figures", {})
    result.setdefault("sources", {})
    result["project"] = str(cache / "project") if (staging / "project").is_dir() else None
    write_json_atomic(staging / "point.json", finite_or_none(result))
    try:
        os.replace(staging, cache)
    except OSError:
        # Another worker finished the same point first (a retried task): its result stands.
        remove_path(staging)
    return dict(json.loads(result_path.read_text()))


def _build_point(cfg: Config, point: PointSpec, out: Path) -> dict[str, Any]:
    import tensorflow as tf

    from kd_trigger.distill.pipeline import _predict, student_seed, train_student
    from kd_trigger.distill.pruning import pruning_plan
    from kd_trigger.distill.teacher_stage import cached_logits
    from kd_trigger.evaluate import score_metrics
    from kd_trigger.fpga.budget import load_budget
    from kd_trigger.fpga.figures import design_figures
    from kd_trigger.hls.build import convert_and_simulate
    from kd_trigger.models.students import build_student, check_student, student_inputs
    from kd_trigger.rtl.student import rtl_inputs, run_rtl

    spec = StudentConfig.model_validate(point.spec)
    check_student(spec)
    base = cfg.student(point.student)
    teacher = cfg.teacher_of(base)
    temperature, kd_weight = cfg.kd_setting(base)
    data = _data(cfg)
    train, val, test = (data.select(s) for s in ("train", "val", "test"))
    dcfg = cfg.distill.model_copy(
        update={
            "temperature": temperature,
            "kd_weight": kd_weight,
            "epochs": cfg.scan.epochs or cfg.distill.epochs,
        }
    )
    seed = student_seed(cfg, base)
    tf.keras.utils.set_random_seed(seed)
    model = build_student(spec)
    train_student(
        model,
        dcfg,
        "kd",
        (
            student_inputs(spec, train.constituents),
            train.is_signal.astype(np.int32),
            cached_logits(cfg, teacher.name, "train"),
        ),
        (
            student_inputs(spec, val.constituents),
            val.is_signal.astype(np.int32),
            cached_logits(cfg, teacher.name, "val"),
        ),
        seed=seed,
        label=f"scan {spec.name} reuse {point.reuse_factor}",
        pruning=pruning_plan(spec, dcfg.epochs),
    )
    x_test = student_inputs(spec, test.constituents)
    labels = test.is_signal.astype(np.int64)
    physics = score_metrics(labels, _predict(model, x_test), cfg.distill.rejection_bootstrap, cfg.run.seed)
    n = cfg.hls.csim_count(len(labels))
    hls = cfg.hls.model_copy(update={"reuse_factor": point.reuse_factor})
    # the folding of each flow follows the same rule as the hls stage (kd_trigger.config.fold_ii_cycles)
    max_ii = load_budget(cfg.budget).max_ii_cycles
    k_rtl = fold_ii_cycles(spec, hls, "rtl", max_ii)
    hls = hls.model_copy(update={"ii_cycles": fold_ii_cycles(spec, hls, "hls4ml", max_ii)})
    report, _ = convert_and_simulate(
        model, out / "project", hls, x_test[:n], labels[:n].astype(np.int8), spec.name, out / "project"
    )
    if point.flow == "rtl":
        run_rtl(
            model,
            out / "project" / "rtl",
            hls,
            rtl_inputs(model, x_test[:n], seed=cfg.run.seed),
            report,
            ii_cycles=k_rtl,
        )
    designs = {d.flow: d for d in design_figures(report)}
    design = designs.get(point.flow) or designs["hls4ml"]
    figures, sources = {}, {}
    for name in ("lut", "ff", "dsp", "bram_18k", "uram", "latency_ns", "latency_cycles", "ii_cycles"):
        figures[name], sources[name] = design.best(name)
    csim = report.require_csim()
    exact = csim.exact_fraction >= cfg.hls.min_exact_fraction
    if report.rtl_sim is not None:
        exact = exact and report.rtl_sim.exact_fraction >= cfg.hls.min_exact_fraction
    return {
        "physics": {
            k: physics.get(k)
            for k in (
                "accuracy",
                "auc",
                "auc_err",
                "rejection_at_30",
                "rejection_at_30_err",
                "rejection_at_50",
                "rejection_at_50_err",
            )
        },
        "figures": figures,
        "sources": sources,
        "exact": exact,
        "exactness": {
            "csim_exact_fraction": csim.exact_fraction,
            "csim_samples": csim.n_samples,
            "max_abs_diff": csim.max_abs_diff,
        },
        "flow": design.flow,
    }


# -- the stage ------------------------------------------------------------------------------------
def _client(cfg: Config) -> Any:
    """A Dask client: the configured scheduler, or a LocalCluster of process workers (one thread each)."""
    from distributed import Client, LocalCluster

    logging.getLogger("distributed").setLevel(logging.WARNING)  # its INFO lines drown the scan's own

    if cfg.scan.scheduler:
        return Client(cfg.scan.scheduler)
    # One TensorFlow thread per worker: the workers already use the cores.
    env = {
        "OMP_NUM_THREADS": "1",
        "TF_NUM_INTRAOP_THREADS": "1",
        "TF_NUM_INTEROP_THREADS": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    cluster = LocalCluster(
        n_workers=cfg.scan.workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        silence_logs=logging.ERROR,
        env=env,
    )
    return Client(cluster)


def _run_points(cfg: Config, points: list[PointSpec], cache: Path) -> list[dict[str, Any]]:
    from distributed import as_completed
    from tqdm import tqdm

    tasks = [{"config": cfg.to_dict(), "point": asdict(p), "cache": str(cache)} for p in points]
    client = _client(cfg)
    try:
        log.info(
            "scan: %d points on %s; dashboard %s",
            len(points),
            client.scheduler.address,
            client.dashboard_link,
        )
        futures = client.map(
            evaluate_point, tasks, key=[f"scan-point-{p.key}" for p in points], retries=2, pure=False
        )
        by_key: dict[str, dict[str, Any]] = {}
        with tqdm(total=len(points), desc="scan points", unit="point") as bar:
            for future in as_completed(futures):
                result = future.result()
                by_key[result["key"]] = result
                bar.update(1)
    finally:
        cluster = getattr(client, "cluster", None)
        client.close()
        if cluster is not None:
            cluster.close()
    return [by_key[p.key] for p in points]


def _num(value: Any) -> float:
    return float("nan") if value is None else float(value)


def _miss(block: BudgetBlock) -> float:
    """How far a design is from its budget: the worst value/limit over its rows (inf without a figure)."""
    worst = 0.0
    for row in block.rows:
        if row.value is None:
            return float("inf")
        worst = max(worst, row.value / row.limit if row.limit else float("inf"))
    return worst


def choose_best(points: list[ScanPoint], objective: str) -> tuple[ScanPoint | None, dict[str, Any] | None]:
    """(the exact, error-free point within the budget with the largest ``objective``; None when no point
    fits) and, only when none fits, the nearest miss: the point whose worst value/limit ratio over the
    budget rows is smallest, as {key, axes, violations}."""
    fitting = [p for p in points if p.error is None and p.exact and p.budget_pass]

    def score(p: ScanPoint) -> float:
        value = p.physics.get(objective)
        return -np.inf if value is None or np.isnan(value) else float(value)

    best = max(fitting, key=score) if fitting else None
    if best is not None:
        return best, None
    candidates = [p for p in points if p.budget is not None]
    if not candidates:
        return None, None
    miss = min(candidates, key=lambda p: _miss(p.budget))  # type: ignore[arg-type]
    return None, {
        "key": miss.key,
        "axes": miss.axes,
        "violations": miss.budget.violations if miss.budget else [],
    }


def scan_stage(ctx: StageContext) -> StageResult:
    """Run every point of the scan, rank them, draw the fronts, promote the best design in budget."""
    from kd_trigger.fpga.budget import check_budget, load_budget
    from kd_trigger.fpga.figures import DesignFigures
    from kd_trigger.report.scan_plots import plot_front

    cfg = ctx.cfg
    t0 = time.perf_counter()
    points = plan_points(cfg, {name: record.digest for name, record in ctx.upstream.items()})
    cache = cfg.artifacts / CACHE_DIR
    cache.mkdir(parents=True, exist_ok=True)
    results = _run_points(cfg, points, cache)
    profile = load_budget(cfg.budget)
    objective = cfg.scan.objective
    scan_points: list[ScanPoint] = []
    for result in results:
        budget = None
        if result.get("figures"):
            design = DesignFigures(result.get("flow", "hls4ml"))
            for name, value in result["figures"].items():
                if value is not None:
                    design.add(result["sources"][name], **{name: value})
            budget = check_budget(design, profile).to_block()
        scan_points.append(
            ScanPoint.model_validate(
                {
                    **{
                        k: result.get(k)
                        for k in (
                            "key",
                            "student",
                            "kind",
                            "axes",
                            "physics",
                            "figures",
                            "sources",
                            "error",
                            "seconds",
                            "project",
                        )
                    },
                    "exact": bool(result.get("exact")),
                    "exactness": result.get("exactness") or {},
                    "budget_pass": bool(budget and budget.passed),
                    "budget": budget,
                }
            )
        )
    usable = [p for p in scan_points if p.error is None and p.exact]
    columns = {
        "physics": [_num(p.physics.get(objective)) for p in usable],
        "lut": [_num(p.figures.get("lut")) for p in usable],
        "latency": [_num(p.figures.get("latency_ns")) for p in usable],
    }
    fronts = {
        "pareto": pareto_front(
            list(zip(columns["physics"], columns["lut"], columns["latency"], strict=True)),
            (True, False, False),
        ),
        "pareto_lut": pareto_front(list(zip(columns["physics"], columns["lut"], strict=True)), (True, False)),
        "pareto_latency": pareto_front(
            list(zip(columns["physics"], columns["latency"], strict=True)), (True, False)
        ),
    }
    for name, flags in fronts.items():
        for p, flag in zip(usable, flags, strict=True):
            setattr(p, name, flag)
    best, nearest = choose_best(scan_points, objective)
    scan = Scan(
        run=cfg.run.name,
        objective=objective,
        mode=cfg.scan.mode,
        points=scan_points,
        best=best.key if best else None,
        nearest_miss=nearest,
        workers=cfg.scan.workers,
        scheduler=cfg.scan.scheduler,
        seconds=round(time.perf_counter() - t0, 1),
    )
    out = ctx.out(cfg.artifacts / OUT_DIR)
    out.mkdir(parents=True, exist_ok=True)
    scan.write(out / "scan.json")
    plot_front(scan, "lut", profile.resource_limit("lut"), out / "pareto_lut.png")
    plot_front(scan, "latency_ns", profile.max_latency_ns, out / "pareto_latency.png")
    write_text_atomic(out / "scan.md", scan_markdown(scan))
    best_dir = ctx.out(cfg.firmware / BEST_DIR)
    if best is not None and best.project:
        shutil.copytree(best.project, best_dir)
        from kd_trigger.contracts import HlsReport

        report = HlsReport.model_validate_json((best_dir / "hls_report.json").read_text())
        report.budget = best.budget
        report.budget_by_flow = {best.budget.flow or "hls4ml": best.budget} if best.budget else {}
        report.project_dir = str(cfg.firmware / BEST_DIR)
        report.write(best_dir / "hls_report.json")
        log.info(
            "scan: best design in budget %s (%s), promoted to %s",
            best.key,
            best.axes,
            cfg.firmware / BEST_DIR,
        )
        return StageResult(exit_status=EXIT_OK, extra={"best": best.key, "points": len(scan_points)})
    log.error(
        "scan: no design of %d fits the budget %s; nearest miss: %s",
        len(scan_points),
        profile.name,
        "none" if nearest is None else f"{nearest['axes']} ({'; '.join(nearest['violations'])})",
    )
    return StageResult(
        exit_status=EXIT_BUDGET, extra={"best": None, "points": len(scan_points), "nearest_miss": nearest}
    )


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def scan_markdown(scan: Scan) -> str:
    """The scan as a Markdown table, the Pareto designs marked, the promoted one in bold."""
    lines = [
        f"# Design scan of run {scan.run}",
        "",
        f"{len(scan.points)} points ({scan.mode}), objective `{scan.objective}` on the test split; "
        f"{sum(p.exact for p in scan.points)} bit-exact, {sum(p.budget_pass for p in scan.points)} within the budget. "
        "Pareto: not beaten by another exact design in physics, LUT and latency together.",
        "",
        "| design | axes | AUC | 1/eps_B @ 30% | LUT | latency (ns) | II | source | exact | budget | Pareto |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in sorted(scan.points, key=lambda p: -(p.physics.get(scan.objective) or -1e9)):
        axes = ", ".join(f"{k}={_text(v)}" for k, v in p.axes.items())
        name = f"**{p.key}**" if p.key == scan.best else p.key
        r30 = p.physics.get("rejection_at_30")
        r30_err = p.physics.get("rejection_at_30_err")
        lines.append(
            f"| {name} | {p.student}: {axes} | {_fmt(p.physics.get('auc'))} | "
            f"{_fmt(r30, 3)}{'' if r30_err is None else f' ± {r30_err:.2g}'} | {_fmt(p.figures.get('lut'))} | "
            f"{_fmt(p.figures.get('latency_ns'))} | {_fmt(p.figures.get('ii_cycles'))} | {p.sources.get('lut') or '-'} | "
            f"{'yes' if p.exact else ('ERROR' if p.error else 'NO')} | {'PASS' if p.budget_pass else 'FAIL'} | "
            f"{'yes' if p.pareto else ''} |"
        )
    if scan.best is None and scan.nearest_miss:
        lines += [
            "",
            f"No design fits the budget. Nearest miss: {scan.nearest_miss['axes']} ({'; '.join(scan.nearest_miss['violations'])}).",
        ]
    lines += ["", "![physics vs LUT](pareto_lut.png)", "", "![physics vs latency](pareto_latency.png)"]
    return "\n".join(lines) + "\n"


# -- the stage declaration ------------------------------------------------------------------------
def _scan_needs(cfg: Config) -> tuple[str, ...]:
    scanned = {teacher_stage_name(cfg.teacher_of(s).name) for s in cfg.students if s.kind in cfg.scan.axes}
    return ("data", *sorted(scanned))


def _scan_config(cfg: Config) -> dict[str, Any]:
    raw = cfg.to_dict()
    return {"seed": cfg.run.seed, **{k: raw[k] for k in ("students", "distill", "hls", "scan", "budget")}}


def _scan_outputs(cfg: Config) -> list[Path]:
    return RunLayout.of(cfg).scan_outputs()


def check_scan(cfg: Config) -> None:
    """The firmware checks and the scan's plan (its axes, its points) before any work."""
    check_hls(cfg)
    plan_points(cfg)


STAGE = StageDecl(
    "scan",
    scan_stage,
    _scan_config,
    _scan_outputs,
    needs=_scan_needs,
    inputs=budget_file,
    check=check_scan,
    description="design scan on Dask: KD-trained, exact, measured points, Pareto fronts, best in budget",
)
