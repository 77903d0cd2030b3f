"""The scan's points: planning them (pure) and building, gating, measuring and scoring one (on a Dask
worker). This module and what it imports is the code a point's cache key covers
(see :func:`plan_points`): the training, the firmware build, the physics metrics; not the plots,
the Markdown or the Dask plumbing of :mod:`kd_trigger.scan`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from kd_trigger.config import Config, ScanAxes, StudentConfig, fold_ii_cycles, parse_config
from kd_trigger.contracts import finite_or_none
from kd_trigger.data.readers import load_jets
from kd_trigger.distill.teachers import cached_logits
from kd_trigger.distill.training import VARIANTS, predict, student_seed_for, train_from_seed
from kd_trigger.errors import ConfigError, KdTriggerError
from kd_trigger.evaluate import score_metrics, with_class_objectives
from kd_trigger.fingerprint import code_digest
from kd_trigger.fpga.budget import load_budget
from kd_trigger.fpga.figures import DesignFigures, hls4ml_figures, rtl_block_figures
from kd_trigger.fpga.parts import yosys_family
from kd_trigger.hls.build import convert_and_simulate
from kd_trigger.layout import ProjectLayout, point_baseline, point_file, point_project, point_yosys
from kd_trigger.models.students import check_student, student_inputs
from kd_trigger.rtl.design import Design
from kd_trigger.rtl.student import rtl_design, rtl_inputs
from kd_trigger.rtl.synth import synthesize
from kd_trigger.runs import remove_path, tmp_name, write_json_atomic

POINT_CODE = (__name__,)
"""The modules whose code (with their imports: training, firmware build, metrics) a point's key covers."""

QUANT_AXES = ("weight_bits", "activation_bits", "input_bits")
STUDENT_AXES = ("hidden", "head", "n_particles", "sparsity", "ii_cycles")
LEVER_KINDS = {"ii_cycles": ("deepsets",), "head": ("deepsets",)}
"""Axes only some student kinds have: folding (one phi network shared by the particles) and the pooled
head (rho) are Deep Sets parts; an MLP has neither."""


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
    seed_offset: int = 0
    """0: the run's seed; k > 0: a retraining of a front design with seed run.seed + k (as the study)."""


def apply_axes(base: StudentConfig, values: dict[str, Any]) -> dict[str, Any]:
    """The student ``base`` with the axis ``values`` applied, as a plain dict (validated on the worker)."""
    spec = base.model_dump(mode="json")
    for name in QUANT_AXES:
        if name in values:
            spec["quant"][name] = values[name]
    for name in STUDENT_AXES:
        if name in values:
            value = values[name]
            spec[name] = list(value) if isinstance(value, tuple | list) else value
    if "late_weight_bits" in values:
        # every weight layer after the first: the first one keeps the student's weight_bits
        layers = spec["quant"].setdefault("layers", {})
        for weight_layer, _ in base.model_copy(update=_shape(spec)).layer_pairs()[1:]:
            layers[weight_layer] = {**layers.get(weight_layer, {}), "weight_bits": values["late_weight_bits"]}
    parts = [f"{_SHORT[k]}{axis_text(v)}" for k, v in values.items() if k in _SHORT]
    name = "-".join([base.name, *parts])
    # Student names are at most 48 characters: a long list of axes falls back to a digest.
    spec["name"] = name if len(name) <= 48 else f"{base.name}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"
    return spec


def _shape(spec: dict[str, Any]) -> dict[str, Any]:
    """The fields of ``spec`` that decide a student's layer names."""
    return {k: tuple(spec[k]) for k in ("hidden", "head")}


_SHORT = {
    "weight_bits": "w",
    "late_weight_bits": "l",
    "activation_bits": "a",
    "input_bits": "i",
    "hidden": "h",
    "head": "r",
    "n_particles": "n",
    "sparsity": "s",
    "ii_cycles": "k",
}


def axis_text(value: Any) -> str:
    """An axis value as text: a tuple of widths as ``32x16``, a fraction 0.75 as ``0p75`` (a student name
    takes no dots)."""
    if isinstance(value, tuple | list):
        return "x".join(map(str, value))
    return f"{value:g}".replace(".", "p") if isinstance(value, float) else str(value)


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
    """Every point of ``cfg.scan``, deduplicated, in a stable order (no TensorFlow; the only file read is
    the budget profile, whose II limit sets a Deep Sets' default folding and so enters every key).

    ``upstream`` (stage name -> digest of the data and teacher stages) enters every point's key, so
    new jets or a retrained teacher never reuse a cached result.
    """
    scfg = cfg.scan
    if not scfg.axes:
        raise ConfigError(
            "scan.axes is empty; give the values to try per student kind, e.g. scan.axes.mlp.weight_bits"
        )
    rng = np.random.default_rng([scfg.seed, 0x5CA2])
    code = code_digest(*POINT_CODE)  # read once: it is the same for all points
    max_ii = load_budget(cfg.budget).max_ii_cycles
    points: dict[str, PointSpec] = {}
    for kind, axes in scfg.axes.items():
        base = next((s for s in cfg.students if s.kind == kind), None)
        if base is None:
            raise ConfigError(f"scan.axes.{kind}: no configured student of kind {kind!r}")
        levels = _levels(axes)
        _check_levers(kind, levels)
        grid = [dict(zip(levels, combo, strict=True)) for combo in itertools.product(*levels.values())]
        if scfg.mode != "grid" and scfg.points is not None and scfg.points > len(grid):
            raise ConfigError(
                f"scan.points: {scfg.mode} sampling asks {scfg.points} points, but the grid of scan.axes.{kind} "
                f"holds {len(grid)}; ask at most {len(grid)} or use mode grid"
            )
        if scfg.mode == "grid":
            chosen = grid if scfg.points is None else grid[: scfg.points]
        elif scfg.mode == "random":
            n = scfg.points or len(grid)
            chosen = [grid[i] for i in sorted(rng.choice(len(grid), size=n, replace=False))]
        else:
            chosen = _lhs(levels, scfg.points or len(grid), rng)
        for values in chosen:
            spec = apply_axes(base, values)
            _check_spec(kind, values, spec)
            reuse = int(values.get("reuse_factor", cfg.hls.reuse_factor))
            flow = str(values.get("flow", cfg.hls.flows[0]))
            key = _point_key(cfg, base, spec, reuse, flow, upstream or {}, code, max_ii)
            points.setdefault(key, PointSpec(key, base.name, kind, dict(values), spec, reuse, flow))
    return list(points.values())


def plan_front_seeds(
    cfg: Config,
    points: list[PointSpec],
    fronts: dict[str, list[str]],
    upstream: dict[str, str] | None = None,
    promoted: Sequence[str] = (),
) -> dict[str, list[PointSpec]]:
    """The retrainings of the front designs (pure): per kind, ``scan.front_points`` keys of its KD front
    (``fronts``: kind -> keys by LUT) spread evenly along it, and the ``promoted`` keys (each kind's best
    design in budget on one training: promotion is on the median over seeds, so it must be retrained
    whatever the spread picked), each with seeds run.seed + 1 .. run.seed + front_seeds - 1 (seed 0 is the
    point itself). Returns design key -> its retrainings."""
    n_seeds, n_points = cfg.scan.front_seeds, cfg.scan.front_points
    by_key = {p.key: p for p in points}
    out: dict[str, list[PointSpec]] = {}
    if n_seeds < 2:
        return out
    code = code_digest(*POINT_CODE)
    max_ii = load_budget(cfg.budget).max_ii_cycles
    spread = [
        keys[int(i)]
        for keys in fronts.values()
        for i in np.unique(np.linspace(0, len(keys) - 1, min(n_points, len(keys))).round())
    ]
    for key in dict.fromkeys([*spread, *promoted]):
        point = by_key[key]
        base = cfg.student(point.student)
        out[key] = []
        for offset in range(1, n_seeds):
            seeded = _point_key(
                cfg, base, point.spec, point.reuse_factor, point.flow, upstream or {}, code, max_ii, offset
            )
            out[key].append(dataclasses.replace(point, key=seeded, seed_offset=offset))
    return out


def _check_levers(kind: str, levels: dict[str, list[Any]]) -> None:
    """Refuse an axis the student kind does not have (folding on an MLP), naming its key."""
    for name in levels:
        kinds = LEVER_KINDS.get(name)
        if kinds is not None and kind not in kinds:
            raise ConfigError(
                f"scan.axes.{kind}.{name}: a {kind} student has no {name} lever (only {', '.join(kinds)}); "
                "drop the axis"
            )


def _check_spec(kind: str, values: dict[str, Any], spec: dict[str, Any]) -> None:
    """Every planned student must be valid (e.g. ii_cycles <= n_particles) before any point trains."""
    try:
        StudentConfig.model_validate(spec)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "student"
        msg = str(first["msg"]).removeprefix("Value error, ")
        axes = ", ".join(f"{k}={axis_text(v)}" for k, v in values.items())
        raise ConfigError(
            f"scan.axes.{kind}: the point {axes} makes an invalid student ({where}: {msg})"
        ) from None


def _point_key(
    cfg: Config,
    base: StudentConfig,
    spec: dict[str, Any],
    reuse: int,
    flow: str,
    upstream: dict[str, str],
    code: str,
    max_ii_cycles: int,
    seed_offset: int = 0,
) -> str:
    """Digest of everything a point's result depends on, ``code`` (the scan's code digest) included, and
    the budget's II limit (``max_ii_cycles``), from which a Deep Sets without its own ``ii_cycles`` takes
    its folding (:func:`kd_trigger.config.fold_ii_cycles`)."""
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
        "max_ii_cycles": max_ii_cycles,
        **({"seed_offset": seed_offset} if seed_offset else {}),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


# -- one point (runs on a Dask worker) ------------------------------------------------------------
_DATA: dict[str, Any] = {}


def _data(cfg: Config) -> Any:
    """The run's jets, loaded once per worker process."""
    path = str(cfg.data_path.resolve())
    stamp = f"{path}:{cfg.data_path.stat().st_mtime_ns}"
    if stamp not in _DATA:
        _DATA.clear()
        _DATA[stamp] = load_jets(cfg.data_path, cfg)
    return _DATA[stamp]


def evaluate_point(task: dict[str, Any]) -> dict[str, Any]:
    """Build, gate, measure and score one design; the cached result when there is one.

    ``task`` holds the resolved config, the point and the cache directory (plain data: it travels to
    the worker). Returns the point's figures as a dict (a :class:`ScanPoint` without budget and fronts).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    point = PointSpec(**task["point"])
    cache = Path(task["cache"]) / point.key
    result_path = point_file(cache)
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
    result["project"] = str(point_project(cache)) if point_project(staging).is_dir() else None
    write_json_atomic(point_file(staging), finite_or_none(result))
    try:
        os.replace(staging, cache)
    except OSError:
        # Another worker finished the same point first (a retried task): its result stands.
        remove_path(staging)
    return dict(json.loads(result_path.read_text()))


PHYSICS_KEYS = (
    "accuracy",
    "auc",
    "auc_err",
    "rejection_at_30",
    "rejection_at_30_err",
    "rejection_at_50",
    "rejection_at_50_err",
)
FIGURE_KEYS = ("lut", "ff", "dsp", "bram_18k", "uram", "latency_ns", "latency_cycles", "ii_cycles")


def _build_point(cfg: Config, point: PointSpec, out: Path) -> dict[str, Any]:
    """The distilled copy's figures (the point's own keys) and the baseline copy's (``baseline``), each
    built, gated and measured in the point's flow; a baseline that cannot be built keeps its error."""
    spec = StudentConfig.model_validate(point.spec)
    check_student(spec)
    copies, x_test, labels = _train_point(cfg, point, spec)
    model, physics = copies["kd"]
    result = _measure(cfg, point, spec, model, physics, x_test, labels, out)
    base_model, base_physics = copies["baseline"]
    base_dir = point_baseline(out)
    base_dir.mkdir(exist_ok=True)
    try:
        baseline = _measure(cfg, point, spec, base_model, base_physics, x_test, labels, base_dir)
    except KdTriggerError as err:
        baseline = {"physics": {k: base_physics.get(k) for k in PHYSICS_KEYS}, "error": str(err)}
    baseline.pop("flow", None)
    result["baseline"] = baseline
    return result


def _measure(
    cfg: Config,
    point: PointSpec,
    spec: StudentConfig,
    model: Any,
    physics: dict[str, Any],
    x_test: np.ndarray,
    labels: np.ndarray,
    out: Path,
) -> dict[str, Any]:
    """One trained copy's firmware built into ``out``, gated and measured, with its physics."""
    design, exact, exactness = _firmware_point(cfg, point, spec, model, x_test, labels, out)
    figures, sources = {}, {}
    for name in FIGURE_KEYS:
        figures[name], sources[name] = design.best(name)
    return {
        "physics": {k: physics.get(k) for k in PHYSICS_KEYS},
        "figures": figures,
        "sources": sources,
        "exact": exact,
        "exactness": exactness,
        "flow": design.flow,
    }


def _train_point(
    cfg: Config, point: PointSpec, spec: StudentConfig
) -> tuple[dict[str, tuple[Any, dict[str, Any]]], np.ndarray, np.ndarray]:
    """({variant: (trained model, its physics on the test split)} for the label-only baseline and the
    distilled copy, both from the same initial weights and batches; the test inputs; the test labels)."""

    base = cfg.student(point.student)
    teacher = cfg.teacher_of(base)
    data = _data(cfg)
    train, val, test = (data.select(s) for s in ("train", "val", "test"))
    dcfg = cfg.distill_for(base).model_copy(update={"epochs": cfg.scan.epochs or cfg.distill.epochs})
    seed = student_seed_for(cfg.run.seed + point.seed_offset, base)
    n_classes = len(cfg.data.classes)
    fit = (
        student_inputs(spec, train.constituents),
        train.labels.astype(np.int32),
        cached_logits(cfg, teacher.name, "train"),
    )
    check = (
        student_inputs(spec, val.constituents),
        val.labels.astype(np.int32),
        cached_logits(cfg, teacher.name, "val"),
    )
    x_test = student_inputs(spec, test.constituents)
    labels = test.labels.astype(np.int64)
    copies = {}
    for variant in VARIANTS:  # both copies from the seed's initial weights: the fair comparison
        model, _ = train_from_seed(
            spec,
            n_classes,
            dcfg,
            variant,
            fit,
            check,
            seed=seed,
            label=f"scan {spec.name} reuse {point.reuse_factor} {variant}",
            constituents=train.constituents,
        )
        physics = with_class_objectives(
            score_metrics(
                labels,
                predict(model, x_test),
                cfg.distill.rejection_bootstrap,
                cfg.run.seed,
                class_names=cfg.data.classes,
            )
        )
        copies[variant] = (model, physics)
    return copies, x_test, labels


def _firmware_point(
    cfg: Config,
    point: PointSpec,
    spec: StudentConfig,
    model: Any,
    x_test: np.ndarray,
    labels: np.ndarray,
    out: Path,
) -> tuple[DesignFigures, bool, dict[str, Any]]:
    """(the figures of the point's flow, whether it is bit-exact, how exact) of the firmware built into
    ``out``: the hls4ml firmware gated by its C simulation, or, for an ``rtl`` point, only the RTL flow
    gated by its Verilator simulation (no hls4ml conversion)."""
    n = cfg.hls.csim_count(len(labels))
    hls = cfg.hls.model_copy(update={"reuse_factor": point.reuse_factor})
    # the folding of each flow follows the same rule as the hls stage (kd_trigger.config.fold_ii_cycles)
    max_ii = load_budget(cfg.budget).max_ii_cycles
    project = ProjectLayout(point_project(out))
    if point.flow == "rtl":
        k_rtl = fold_ii_cycles(spec, hls, "rtl", max_ii)
        x_rtl = rtl_inputs(model, x_test[:n], seed=cfg.run.seed)
        # Yosys waits for the ranking: only front designs and the promoted one are synthesized
        # (:func:`measure_yosys`); a point ranks by da4ml's estimate.
        rtl, rtl_sim = rtl_design(model, project.rtl, hls, x_rtl, ii_cycles=k_rtl, synth=False)
        design = rtl_block_figures(rtl)
        if design is None:  # the flow always reports its figures; an empty block would be a bug upstream
            raise KdTriggerError(f"scan point {point.key}: the RTL flow reported no figures")
        exactness = {
            "rtl_exact_fraction": rtl_sim.exact_fraction,
            "rtl_samples": rtl_sim.n_samples,
            "max_abs_diff": rtl_sim.max_abs_diff,
        }
        return design, rtl_sim.exact_fraction >= cfg.hls.min_exact_fraction, exactness
    hls = hls.model_copy(update={"ii_cycles": fold_ii_cycles(spec, hls, "hls4ml", max_ii)})
    report, _ = convert_and_simulate(
        model, project.root, hls, x_test[:n], labels[:n].astype(np.int8), spec.name, project.root
    )
    csim = report.require_csim()
    exactness = {
        "csim_exact_fraction": csim.exact_fraction,
        "csim_samples": csim.n_samples,
        "max_abs_diff": csim.max_abs_diff,
    }
    return hls4ml_figures(report), csim.exact_fraction >= cfg.hls.min_exact_fraction, exactness


def measure_yosys(cfg: Config, copy_dir: Path) -> dict[str, Any]:
    """Yosys counts ({lut, ff, dsp, bram_18k, uram, seconds, family}) of the RTL design a scan copy built
    into ``copy_dir`` (the point's cache folder, or its ``baseline``); cached in ``point_yosys``."""
    path = point_yosys(copy_dir)
    if path.is_file():
        return dict(json.loads(path.read_text()))
    rtl_dir = ProjectLayout(point_project(copy_dir)).rtl
    result = synthesize(Design.load(rtl_dir), rtl_dir, yosys_family(cfg.hls.part))
    counts = {
        "lut": result.lut,
        "ff": result.ff,
        "dsp": result.dsp,
        "bram_18k": result.bram_18k,
        "uram": result.uram,
        "seconds": round(result.seconds, 1),
        "family": result.family,
    }
    write_json_atomic(path, counts)
    return counts
