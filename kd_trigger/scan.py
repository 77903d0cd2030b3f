"""The scan stage: which student, at which precision and reuse factor, has the best physics in budget?

Each point of ``scan.axes`` (a grid, or a random / Latin-hypercube sample of it) is a task on Dask: a
KD-trained student (from its teacher's cached logits), converted to hls4ml firmware, gated by the bit-exact
C simulation on the test jets, measured (resources and latency from the best source available) and
scored (AUC, 1/eps_B at 30% and 50% with bootstrap errors). A point that fails the gate, or that cannot be
built, is kept and marked, never dropped.

Every point's result is cached in ``artifacts/<run>/scan-cache/<key>/`` under a digest of everything it
depends on: a killed scan (or a killed worker) resumes where it stopped, and an unchanged point is never
recomputed. Workers share nothing but the run directory (and ``data.path`` when the config sets one).

The points are planned and built by :mod:`kd_trigger.scan_points` (the code their cache key covers) and
run on Dask by :mod:`kd_trigger.scan_cluster`. Outputs: ``artifacts/<run>/scan/`` (``scan.json``, ``scan.md``, the Pareto plots) and the best design
within the budget, promoted to ``firmware/<run>/best/`` with its full ``hls_report.json``. When no point
fits, the stage exits 3 and names the nearest miss.
"""

from __future__ import annotations

import logging
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from kd_trigger.config import Config
from kd_trigger.contracts import BudgetBlock, HlsReport, Scan, ScanCopy, ScanPoint, finite_or_none
from kd_trigger.errors import EXIT_BUDGET, EXIT_OK, KdTriggerError
from kd_trigger.fpga import RESOURCE_KEYS, SOURCE_DA4ML, SOURCE_YOSYS
from kd_trigger.fpga.budget import check_budget, load_budget
from kd_trigger.fpga.figures import DesignFigures
from kd_trigger.hls.flows import budget_file, check_hls
from kd_trigger.layout import ProjectLayout, RunLayout, ScanFiles, point_baseline
from kd_trigger.report.markdown import scan_markdown
from kd_trigger.runs import write_text_atomic
from kd_trigger.scan_cluster import run_points
from kd_trigger.scan_fronts import front_rows, gains_over_seeds, kd_gains
from kd_trigger.scan_points import PointSpec, measure_yosys, plan_front_seeds, plan_points
from kd_trigger.stage_types import StageContext, StageDecl, StageResult, teacher_stage_name
from kd_trigger.stats import choose_best, mark_fronts, promote_by_kind, promoted_best

log = logging.getLogger(__name__)


def scan_stage(ctx: StageContext) -> StageResult:
    """Run every point of the scan, rank them, draw the fronts, promote the best design in budget."""
    from kd_trigger.report.scan_plots import plot_front  # matplotlib

    cfg = ctx.cfg
    layout = RunLayout.of(cfg)
    t0 = time.perf_counter()
    upstream = {name: record.digest for name, record in ctx.upstream.items()}
    points = plan_points(cfg, upstream)
    cache = layout.scan_cache
    cache.mkdir(parents=True, exist_ok=True)
    results = run_points(cfg, points, cache)
    profile = load_budget(cfg.budget)
    objective = cfg.scan.objective
    scan_points: list[ScanPoint] = []
    for result in results:
        flow = result.get("flow", "hls4ml")
        budget = _budget(result, flow, profile)
        baseline = None
        if result.get("baseline") is not None:
            copy = result["baseline"]
            block = _budget(copy, flow, profile)
            baseline = ScanCopy.model_validate(
                {
                    **copy,
                    "exact": bool(copy.get("exact")),
                    "budget_pass": bool(block and block.passed),
                    "budget": block,
                }
            )
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
                    "baseline": baseline,
                }
            )
        )
    best, nearest, fronts = rank_and_measure(cfg, scan_points, profile, cache)
    one_training = [entry["key"] for entry in promote_by_kind(scan_points, objective, {}).values()]
    seed_plan = plan_front_seeds(
        cfg, points, {k: [r["key"] for r in f["kd"]] for k, f in fronts.items()}, upstream, one_training
    )
    reruns = [p for runs in seed_plan.values() for p in runs]
    rerun_results = {r["key"]: r for r in run_points(cfg, reruns, cache)} if reruns else {}
    front_seeds = seed_gains(cfg, scan_points, seed_plan, rerun_results)
    promoted = promote_by_kind(scan_points, objective, seed_objectives(front_seeds))
    best = promoted_best(scan_points, promoted) if promoted else best
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
        fronts=fronts,
        fast_vs_yosys=fast_vs_yosys(scan_points),
        front_seeds=front_seeds or None,
        promoted=promoted,
    )
    out = ScanFiles(ctx.out(layout.scan_dir))
    out.root.mkdir(parents=True, exist_ok=True)
    scan.write(out.scan)
    plot_front(scan, "lut", profile.resource_limit("lut"), out.pareto_lut)
    plot_front(scan, "latency_ns", profile.max_latency_ns, out.pareto_latency)
    write_text_atomic(out.scan_md, scan_markdown(scan))
    best_dir = ProjectLayout(ctx.out(layout.best))
    if best is not None and best.project:
        shutil.copytree(best.project, best_dir.root)
        if best_dir.report.is_file():  # an rtl point builds no hls4ml project: its verdict is in scan.json
            report = HlsReport.model_validate_json(best_dir.report.read_text())
            report.budget = best.budget
            report.budget_by_flow = {best.budget.flow or "hls4ml": best.budget} if best.budget else {}
            report.project_dir = str(layout.best)
            report.write(best_dir.report)
        log.info("scan: best design in budget %s (%s), promoted to %s", best.key, best.axes, layout.best)
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


def _budget(result: dict[str, Any], flow: str, profile: Any) -> BudgetBlock | None:
    """The budget verdict of one built copy's figures (None when it has none)."""
    if not result.get("figures"):
        return None
    design = DesignFigures(flow)
    for name, value in result["figures"].items():
        if value is not None:
            design.add(result["sources"][name], **{name: value})
    return check_budget(design, profile).to_block()


def rank_and_measure(
    cfg: Config, points: list[ScanPoint], profile: Any, cache: Path
) -> tuple[ScanPoint | None, dict[str, Any] | None, dict[str, dict[str, Any]]]:
    """Rank by the fast figures, then run Yosys on every RTL copy that counts (on a KD or baseline front,
    or promoted) and rank again with its counts, until every copy that counts is measured.

    Returns (the promoted point, the nearest miss, the fronts). Each round measures at least one new copy,
    so this ends; a Yosys failure is recorded on the copy (``yosys.error``) and leaves its fast figures.
    """
    objective = cfg.scan.objective
    while True:
        mark_fronts(points, objective)
        fronts = kd_fronts(points, objective)
        best, nearest = choose_best(points, objective)
        todo = _to_measure(points, fronts, best, cache)
        if not todo:
            return best, nearest, fronts
        log.info("scan: Yosys on %d front or promoted RTL designs", len(todo))
        with ThreadPoolExecutor(max_workers=cfg.scan.workers) as pool:
            counts = list(pool.map(lambda item: _yosys_or_error(cfg, item[1]), todo))
        for (copy, _), measured in zip(todo, counts, strict=True):
            apply_yosys(copy, measured, profile)


def _to_measure(
    points: list[ScanPoint], fronts: dict[str, dict[str, Any]], best: ScanPoint | None, cache: Path
) -> list[tuple[ScanCopy, Path]]:
    """The unmeasured RTL copies (ranked by da4ml's estimate) that are on a front or promoted."""
    wanted = {(row["key"], "kd") for f in fronts.values() for row in f["kd"]}
    wanted |= {(row["key"], "baseline") for f in fronts.values() for row in f["baseline"]}
    if best is not None:
        wanted.add((best.key, "kd"))
    todo: list[tuple[ScanCopy, Path]] = []
    for p in points:
        for name, copy, where in (
            ("kd", p, cache / p.key),
            ("baseline", p.baseline, point_baseline(cache / p.key)),
        ):
            if copy is None or (p.key, name) not in wanted or copy.yosys is not None:
                continue
            if copy.sources.get("lut") == SOURCE_DA4ML:
                todo.append((copy, where))
    return todo


def _yosys_or_error(cfg: Config, copy_dir: Path) -> dict[str, Any]:
    try:
        return measure_yosys(cfg, copy_dir)
    except KdTriggerError as err:
        return {"error": str(err)}


def apply_yosys(copy: ScanCopy, measured: dict[str, Any], profile: Any) -> None:
    """Put Yosys's counts in place of the fast figures of ``copy`` (kept in ``copy.yosys`` with the ratio
    fast / Yosys LUT) and redo its budget verdict; a failed run keeps the fast figures and its error."""
    fast_lut = copy.figures.get("lut")
    if "error" in measured:
        copy.yosys = {**measured, "fast_lut": fast_lut}
        return
    copy.yosys = {
        **measured,
        "fast_lut": fast_lut,
        "fast_ff": copy.figures.get("ff"),
        "lut_ratio": None if not fast_lut or not measured["lut"] else fast_lut / measured["lut"],
    }
    for name in RESOURCE_KEYS:
        copy.figures[name] = measured[name]
        copy.sources[name] = SOURCE_YOSYS
    block = _budget(copy.model_dump(), "rtl", profile)
    copy.budget, copy.budget_pass = block, bool(block and block.passed)


def fast_vs_yosys(points: list[ScanPoint]) -> dict[str, Any] | None:
    """How far the fast figure (da4ml's LUT estimate) was from Yosys on the measured copies: per copy the
    ratio estimate / Yosys, their median, min and max (None when no copy was measured)."""
    rows = [
        {
            "key": p.key,
            "copy": name,
            "fast_lut": c.yosys["fast_lut"],
            "yosys_lut": c.yosys["lut"],
            "ratio": c.yosys["lut_ratio"],
        }
        for p in points
        for name, c in (("kd", p), ("baseline", p.baseline))
        if c is not None and c.yosys is not None and c.yosys.get("lut_ratio") is not None
    ]
    if not rows:
        return None
    ratios = [r["ratio"] for r in rows]
    return {
        "source": SOURCE_DA4ML,
        "points": rows,
        "median_ratio": float(np.median(ratios)),
        "min_ratio": min(ratios),
        "max_ratio": max(ratios),
        "max_abs_deviation": max(abs(r - 1.0) for r in ratios),
    }


def seed_gains(
    cfg: Config, points: list[ScanPoint], plan: dict[str, list[PointSpec]], reruns: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Per kind, the KD saving over seeds (:func:`kd_trigger.scan_fronts.gains_over_seeds`) on its retrained
    front designs: for each seed, the KD and baseline copies of those designs with their fast LUT figure
    (the one every seed has: Yosys measured only the run's own seed) and the scan objective."""
    objective = cfg.scan.objective
    out: dict[str, dict[str, Any]] = {}
    for kind in sorted({p.kind for p in points if p.key in plan}):
        designs = [p for p in points if p.kind == kind and p.key in plan]
        n_seeds = 1 + min(len(plan[p.key]) for p in designs)
        rows = []
        for p in designs:
            copies = [{"kd": p.model_dump(), "baseline": p.baseline.model_dump() if p.baseline else None}]
            copies += [{"kd": reruns[r.key], "baseline": reruns[r.key].get("baseline")} for r in plan[p.key]]
            for offset, pair in enumerate(copies[:n_seeds]):
                rows.append({"key": p.key, "seed": cfg.run.seed + offset,
                             **{f"{name}_{k}": v for name in ("kd", "baseline") for k, v in _fast(pair[name], objective).items()}})  # fmt: skip
        per_seed = [
            (_pairs(rows, cfg.run.seed + offset, "kd"), _pairs(rows, cfg.run.seed + offset, "baseline"))
            for offset in range(n_seeds)
        ]
        out[kind] = finite_or_none(
            {
                "designs": [p.key for p in designs],
                "lut_source": "fast",
                "rows": rows,
                **gains_over_seeds(per_seed),
            }
        )
    return out


def seed_objectives(front_seeds: dict[str, dict[str, Any]]) -> dict[str, list[float]]:
    """Design key -> the KD copy's objective of each seed's training (the scan's own seed first), from
    :func:`seed_gains`' rows; a training without the figure is left out."""
    out: dict[str, list[float]] = {}
    for gains in front_seeds.values():
        for row in sorted(gains["rows"], key=lambda r: r["seed"]):
            if row.get("kd_objective") is not None:
                out.setdefault(row["key"], []).append(float(row["kd_objective"]))
    return out


def _pairs(rows: list[dict[str, Any]], seed: int, name: str) -> list[tuple[float, float]]:
    """(LUT, objective) of copy ``name`` of every design retrained with ``seed`` that has both figures."""
    return [
        (float(r[f"{name}_lut"]), float(r[f"{name}_objective"]))
        for r in rows
        if r["seed"] == seed and r[f"{name}_lut"] is not None and r[f"{name}_objective"] is not None
    ]


def _fast(copy: dict[str, Any] | None, objective: str) -> dict[str, float | None]:
    """(fast LUT, objective) of one copy as a result dict; None for a copy without exact figures."""
    if not copy or copy.get("error") or not copy.get("exact"):
        return {"lut": None, "objective": None}
    yosys = copy.get("yosys") or {}
    lut = yosys.get("fast_lut", (copy.get("figures") or {}).get("lut"))
    return {
        "lut": None if lut is None else float(lut),
        "objective": (copy.get("physics") or {}).get(objective),
    }


def kd_fronts(points: list[ScanPoint], objective: str) -> dict[str, dict[str, Any]]:
    """Per student kind, the KD front (the points' own figures) and the baseline front (their baseline
    copies), ``objective`` up and LUT down over exact, error-free copies, and what KD buys on them
    (:func:`kd_trigger.scan_fronts.kd_gains`). Sets ``baseline.pareto_lut`` on the baseline copies."""
    out: dict[str, dict[str, Any]] = {}
    for kind in sorted({p.kind for p in points}):
        mine = [p for p in points if p.kind == kind]
        kd_rows = _rows([(p.key, p) for p in mine if p.error is None and p.exact], objective)
        base_rows = _rows(
            [
                (p.key, p.baseline)
                for p in mine
                if p.baseline is not None and p.baseline.error is None and p.baseline.exact
            ],
            objective,
        )
        kd_front, base_front = front_rows(kd_rows), front_rows(base_rows)
        on_front = {row["key"] for row in base_front}
        for p in mine:
            if p.baseline is not None:
                p.baseline.pareto_lut = p.key in on_front
        gains = kd_gains(
            [(r["lut"], r["objective"]) for r in kd_rows], [(r["lut"], r["objective"]) for r in base_rows]
        )
        out[kind] = {"kd": kd_front, "baseline": base_front, "gains": finite_or_none(gains)}
    return out


def _rows(copies: list[tuple[str, Any]], objective: str) -> list[dict[str, Any]]:
    rows = []
    for key, copy in copies:
        lut, value = copy.figures.get("lut"), copy.physics.get(objective)
        if lut is not None and value is not None:
            rows.append({"key": key, "lut": float(lut), "objective": float(value)})
    return rows


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
