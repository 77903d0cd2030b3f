"""The firmware-review report of a run: firmware/<run>/report.md and a self-contained report.html.

It is what a trigger engineer reads before a firmware review, so every resource or latency figure
carries its source: an estimate (ours, from the hls4ml model), the vendor HLS report, or vendor
post-synthesis. Estimates are always printed as estimates.

Inputs (contracts): artifacts/<run>/metrics.json of the distill stage, and for each student
firmware/<run>/<student>/hls_report.json (+ csim_outputs.npz, optional) of the hls stage; provenance
from every stage.json the stages wrote. Optional keys that are missing are shown as "n/a".
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kd_trigger.config import Config
from kd_trigger.errors import DataError
from kd_trigger.fpga import SOURCE_ESTIMATE, SOURCE_HLS, SOURCE_POST_SYNTH, SOURCE_RANK
from kd_trigger.report import fpga_plots
from kd_trigger.report.html import (
    Block,
    Bullets,
    Heading,
    Image,
    Paragraph,
    Table,
    Tone,
    render_html,
    render_markdown,
)
from kd_trigger.runs import atomic_dir, package_versions, write_text_atomic

log = logging.getLogger(__name__)

RESOURCE_KEYS = ("lut", "ff", "dsp", "bram_18k", "uram")
RESOURCE_LABELS = {"lut": "LUT", "ff": "FF", "dsp": "DSP", "bram_18k": "BRAM_18K", "uram": "URAM"}
ALL_SECTIONS = ("run", "data", "teacher", "students", "distill", "hls", "budget")
PLOTS_DIR = "report_plots"
NA = "n/a"
PRECISION_ORDER = ("weight", "bias", "accum", "result")


# -- inputs ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StudentInputs:
    name: str
    report_path: Path
    report: dict[str, Any]
    csim_npz: Path | None


@dataclass(frozen=True)
class RunInputs:
    metrics_path: Path
    metrics: dict[str, Any]
    students: tuple[StudentInputs, ...]
    stages: tuple[tuple[Path, dict[str, Any]], ...]


def _config_hint(config_path: Path | str | None) -> str:
    return str(config_path) if config_path else "<config.yaml>"


def _read_json(path: Path, make: str) -> dict[str, Any]:
    if not path.is_file():
        raise DataError(f"{path} not found; it is made by `{make}`")
    try:
        payload = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{path} is not valid JSON ({err}); remake it with `{make}`") from None
    if not isinstance(payload, dict):
        raise DataError(
            f"{path} must hold a JSON object, got {type(payload).__name__}; remake it with `{make}`"
        )
    return payload


def _stage_files(cfg: Config) -> tuple[tuple[Path, dict[str, Any]], ...]:
    """Every stage.json of this run, at most two directory levels down (HLS projects are deep)."""
    found: list[tuple[Path, dict[str, Any]]] = []
    for root in (cfg.artifacts, cfg.firmware):
        for pattern in ("stage.json", "*/stage.json", "*/*/stage.json"):
            for path in sorted(root.glob(pattern)):
                try:
                    payload = json.loads(path.read_text())
                except (OSError, json.JSONDecodeError, UnicodeDecodeError):
                    log.warning("ignoring unreadable %s", path)
                    continue
                if isinstance(payload, dict):
                    found.append((path, payload))
    return tuple(found)


def load_run_inputs(cfg: Config, config_path: Path | str | None = None) -> RunInputs:
    """Read what the report needs; a missing input is a DataError naming the command that makes it."""
    hint = _config_hint(config_path)
    metrics_path = cfg.artifacts / "metrics.json"
    metrics = _read_json(metrics_path, f"make distill CONFIG={hint}")
    if not isinstance(metrics.get("models"), dict):
        raise DataError(
            f"{metrics_path} has no 'models' mapping; remake it with `make distill CONFIG={hint}`"
        )
    students = []
    for spec in cfg.students:
        path = cfg.firmware / spec.name / "hls_report.json"
        report = _read_json(path, f"make hls CONFIG={hint}")
        npz = path.with_name("csim_outputs.npz")
        students.append(StudentInputs(spec.name, path, report, npz if npz.is_file() else None))
    return RunInputs(metrics_path, metrics, tuple(students), _stage_files(cfg))


# -- formatting -----------------------------------------------------------------------------------
def _is_num(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def fmt_int(value: Any) -> str:
    """Counts (LUT, cycles) with thousands separators; non-integral values keep one decimal."""
    if not _is_num(value) or not math.isfinite(value):
        return NA if not _is_num(value) else str(value)
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.1f}"


def fmt_fixed(value: Any, digits: int = 4) -> str:
    return f"{value:.{digits}f}" if _is_num(value) and math.isfinite(value) else NA


def _rej_digits(value: float) -> int:
    if value >= 100:
        return 0
    return 1 if value >= 10 else 2


def fmt_rejection(value: Any, err: Any = None) -> str:
    """1/eps_B with a precision that follows its size; the error gets the same number of decimals."""
    if not _is_num(value):
        return NA
    if math.isinf(value):
        return "inf (no background passes)"
    digits = _rej_digits(value)
    text = f"{value:.{digits}f}"
    if _is_num(err) and math.isfinite(err):
        text += f" ± {err:.{digits}f}"
    return text


def fmt_with_err(value: Any, err: Any, digits: int = 4) -> str:
    text = fmt_fixed(value, digits)
    if text != NA and _is_num(err) and math.isfinite(err):
        text += f" ± {err:.{digits}f}"
    return text


def fmt_pct(used: Any, available: Any) -> str:
    """Utilization in % of the part: 17,280 of 1,728,000 LUT is '1.0%'."""
    if not (_is_num(used) and _is_num(available)) or available <= 0:
        return NA
    pct = 100.0 * used / available
    if pct == 0:
        return "0.0%"
    if pct >= 1:
        return f"{pct:.1f}%"
    return f"{pct:.2f}%" if pct >= 0.01 else "<0.01%"


def fmt_value(value: Any) -> str:
    """A budget figure or limit: integers with separators, floats with 4 significant digits."""
    if value is None:
        return NA
    if isinstance(value, bool):
        return "yes" if value else "no"
    if _is_num(value):
        if float(value).is_integer() and abs(value) < 1e15:
            return f"{int(value):,}"
        return f"{value:.4g}"
    return str(value)


def _status(value: Any) -> str:
    if isinstance(value, bool):
        return "PASS" if value else "FAIL"
    return str(value).upper() if value is not None else NA


def _tone(status: str) -> Tone:
    return {"PASS": "pass", "FAIL": "fail"}.get(status, "warn" if status not in (NA, "") else "plain")


def source_label(source: Any, method: Any = None) -> str:
    """How a figure's origin is printed. Our own estimate says 'estimate (method)'; vendor labels
    ("vendor HLS estimate", "vendor post-synthesis") are printed as the fpga stage wrote them."""
    src = str(source) if source else NA
    if src.strip().lower() == SOURCE_ESTIMATE:
        return f"{SOURCE_ESTIMATE} ({method})" if method else SOURCE_ESTIMATE
    return src


def _source_rank(label: str) -> int:
    low = label.lower()
    if "post-synthesis" in low:
        return SOURCE_RANK[SOURCE_POST_SYNTH]
    if "vendor" in low and "hls" in low:
        return SOURCE_RANK[SOURCE_HLS]
    return SOURCE_RANK[SOURCE_ESTIMATE]


# -- resource figures -----------------------------------------------------------------------------
LATENCY_KEYS = ("latency_cycles", "latency_ns", "ii_cycles")


def _vendor_figures(block: Any, sub: str) -> dict[str, Any] | None:
    """Flatten vendor figures: a flat {"lut": ...} block, or read_report_path's dict with the
    resources under ``sub`` ("hls" or "synth") and the HLS latency at its top level."""
    if not isinstance(block, Mapping):
        return None
    inner = block.get(sub)
    if isinstance(inner, Mapping):
        flat = {k: inner[k] for k in RESOURCE_KEYS if k in inner}
        # Latency is a C-synthesis figure: it belongs to the vendor HLS row, not to post-synthesis.
        if sub == "hls":
            flat.update({k: block[k] for k in LATENCY_KEYS if k in block})
        return flat or None
    flat = {k: block[k] for k in (*RESOURCE_KEYS, *LATENCY_KEYS) if k in block}
    return flat or None


@dataclass(frozen=True)
class FigureRow:
    """One set of total figures of a student, from one source."""

    source: str
    figures: Mapping[str, Any]


def total_rows(resources: Mapping[str, Any]) -> list[FigureRow]:
    """The totals of every source present: the main figures, then vendor HLS, then post-synthesis."""
    rows: list[FigureRow] = []
    main_source = str(resources.get("source") or SOURCE_ESTIMATE)
    total = resources.get("total")
    if isinstance(total, Mapping):
        figures = dict(total)
        # An estimator may keep latency and II beside the totals rather than inside them.
        for key in (*LATENCY_KEYS, "n_mult", "n_mult_dsp", "n_mult_lut"):
            if key not in figures and key in resources:
                figures[key] = resources[key]
        rows.append(FigureRow(source_label(main_source, resources.get("method")), figures))
    for key, sub, label in (("vendor_hls", "hls", SOURCE_HLS), ("vendor_synth", "synth", SOURCE_POST_SYNTH)):
        figures = _vendor_figures(resources.get(key), sub)
        if figures and not any(_source_rank(r.source) == _source_rank(label) for r in rows):
            rows.append(FigureRow(label, figures))
    return rows


def best_figures(rows: list[FigureRow], keys: tuple[str, ...]) -> tuple[dict[str, Any], str]:
    """The given figures from the most trustworthy source that has them, and that source's label."""
    for row in sorted(rows, key=lambda r: -_source_rank(r.source)):
        if any(_is_num(row.figures.get(k)) for k in keys):
            return {k: row.figures.get(k) for k in keys}, row.source
    return {}, NA


# -- sections -------------------------------------------------------------------------------------
def _model_row(label: str, m: Mapping[str, Any] | None) -> tuple[str, ...]:
    if not isinstance(m, Mapping):
        return (label, NA, NA, NA, NA, NA)
    boost = m.get("boost")
    boost_acc = NA
    if isinstance(boost, list):
        points = [p for p in boost if isinstance(p, Mapping) and _is_num(p.get("beta"))]
        if points:
            last = max(points, key=lambda p: p["beta"])
            boost_acc = f"{fmt_fixed(last.get('accuracy'))} (β={last['beta']:g})"
    return (
        label,
        fmt_fixed(m.get("accuracy")),
        fmt_with_err(m.get("auc"), m.get("auc_err")),
        fmt_rejection(m.get("rejection_at_30"), m.get("rejection_at_30_err")),
        fmt_rejection(m.get("rejection_at_50"), m.get("rejection_at_50_err")),
        boost_acc,
    )


def rejection_ratio(kd: Mapping[str, Any] | None, base: Mapping[str, Any] | None, wp: int) -> str:
    """KD / baseline rejection at a working point, errors propagated as if independent."""
    if not isinstance(kd, Mapping) or not isinstance(base, Mapping):
        return NA
    r_kd, r_base = kd.get(f"rejection_at_{wp}"), base.get(f"rejection_at_{wp}")
    if not (_is_num(r_kd) and _is_num(r_base)) or r_base <= 0 or not math.isfinite(r_kd * r_base):
        return NA
    ratio = r_kd / r_base
    e_kd, e_base = kd.get(f"rejection_at_{wp}_err"), base.get(f"rejection_at_{wp}_err")
    if _is_num(e_kd) and _is_num(e_base) and r_kd > 0:
        err = ratio * math.hypot(e_kd / r_kd, e_base / r_base)
        return f"{ratio:.2f} ± {err:.2f}"
    return f"{ratio:.2f}"


def _paired_ratio(ratios: Mapping[str, Any] | None, wp: int) -> str | None:
    """The distill stage's paired-bootstrap KD/baseline ratio with its 68% interval, when recorded."""
    entry = (ratios or {}).get(f"rejection_ratio_{wp}")
    if not isinstance(entry, Mapping) or not all(_is_num(entry.get(k)) for k in ("ratio", "low", "high")):
        return None
    return f"{entry['ratio']:.2f} [{entry['low']:.2f}, {entry['high']:.2f}]"


def physics_blocks(
    name: str, models: Mapping[str, Any], ratios: Mapping[str, Any] | None = None
) -> list[Block]:
    kd, base = models.get(f"{name}/kd"), models.get(f"{name}/baseline")
    header = ("model", "accuracy", "AUC", "1/ε_B @ ε_S=30%", "1/ε_B @ ε_S=50%", "accuracy at largest boost")
    rows = (
        _model_row("teacher", models.get("teacher")),
        _model_row(f"{name} baseline", base),
        _model_row(f"{name} distilled (KD)", kd),
    )
    blocks: list[Block] = [Heading(3, "Physics: teacher vs baseline vs distilled"), Table(header, rows)]
    paired30, paired50 = _paired_ratio(ratios, 30), _paired_ratio(ratios, 50)
    if paired30 and paired50:
        text = (
            f"KD / baseline background rejection: **{paired30}** at ε_S = 30%, **{paired50}** at ε_S = 50% "
            "(68% interval of a paired bootstrap over the test jets)."
        )
    else:
        text = (
            f"KD / baseline background rejection: **{rejection_ratio(kd, base, 30)}** at ε_S = 30%, "
            f"**{rejection_ratio(kd, base, 50)}** at ε_S = 50% (errors combined as if independent; "
            "the two students are evaluated on the same test jets, so this overstates the error)."
        )
    blocks.append(Paragraph(text))
    return blocks


def csim_verdict(csim: Mapping[str, Any]) -> tuple[str, Tone]:
    exact, diff = csim.get("exact_fraction"), csim.get("max_abs_diff")
    if _is_num(exact) and exact == 1.0 and (not _is_num(diff) or diff == 0):
        return "BIT-EXACT", "pass"
    return "MISMATCH", "fail"


def csim_blocks(student: StudentInputs, min_exact_fraction: float) -> list[Block]:
    csim = student.report.get("csim")
    csim = csim if isinstance(csim, Mapping) else {}
    n = csim.get("n_samples")
    exact = csim.get("exact_fraction")
    exact_text = fmt_fixed(exact, 6)
    identical = NA
    if _is_num(exact) and _is_num(n):
        # exact_fraction is per jet: a jet counts as exact when all its outputs are identical.
        identical = f"{round(exact * n):,} of {int(n):,} jets"
        exact_text += f" ({identical} identical)"
    diff = csim.get("max_abs_diff")
    diff_text = f"{diff:.6g}" if _is_num(diff) else NA
    rows = (
        ("samples simulated", fmt_int(n)),
        ("exact fraction", exact_text),
        ("max |HLS − QKeras|", diff_text),
        ("argmax agreement", fmt_fixed(csim.get("argmax_agreement"), 6)),
        ("AUC QKeras", fmt_fixed(csim.get("auc_qkeras"), 6)),
        ("AUC HLS C simulation", fmt_fixed(csim.get("auc_hls"), 6)),
    )
    verdict, tone = csim_verdict(csim)
    if verdict == "BIT-EXACT":
        line = f"**BIT-EXACT**: the C simulation reproduces QKeras on all {fmt_int(n)} test jets."
    else:
        within = _is_num(exact) and exact >= min_exact_fraction
        line = (
            f"**MISMATCH**: {identical} identical (exact fraction {fmt_fixed(exact, 6)}), max |diff| {diff_text}; "
            + (
                f"within the configured tolerance (hls.min_exact_fraction = {min_exact_fraction:g})."
                if within
                else f"below the required hls.min_exact_fraction = {min_exact_fraction:g}."
            )
        )
    return [
        Heading(3, "C simulation vs QKeras"),
        Table(("figure", "value"), rows),
        Paragraph(line, tone),
    ]


def _layer_source(layer: Mapping[str, Any], resources: Mapping[str, Any]) -> str:
    # Per-layer figures come from the estimator unless a layer says otherwise: vendor reports of an
    # io_parallel Latency design are flattened into one top-level function.
    src = layer.get("source") or resources.get("layers_source") or SOURCE_ESTIMATE
    return source_label(src, resources.get("method"))


def _mults(fig: Mapping[str, Any]) -> str:
    total = fig.get("n_mult")
    if not _is_num(total):
        return NA
    dsp, lut = fig.get("n_mult_dsp"), fig.get("n_mult_lut")
    if _is_num(dsp) and _is_num(lut):
        return f"{fmt_int(total)} ({fmt_int(dsp)} DSP / {fmt_int(lut)} LUT)"
    return fmt_int(total)


def _sentence(text: Any) -> str:
    """``text`` with its first letter raised and a full stop (empty for no text)."""
    text = str(text or "").strip()
    return f"{text[:1].upper()}{text[1:]}." if text else ""


def resource_blocks(
    student: StudentInputs, plot_dir: Path, plot_rel: str
) -> tuple[list[Block], list[FigureRow]]:
    report = student.report
    resources = report.get("resources")
    resources = resources if isinstance(resources, Mapping) else {}
    blocks: list[Block] = [Heading(3, "Resources and latency")]
    clock_ns = report.get("clock_period_ns")

    if resources.get("method_description"):
        blocks.append(Paragraph(f"How the estimate is computed: {resources['method_description']}."))
    calib = resources.get("calibration")
    if isinstance(calib, Mapping) and isinstance(calib.get("ratio_estimate_over_hls"), Mapping):
        hls_r, syn_r = calib["ratio_estimate_over_hls"], calib.get("ratio_estimate_over_synth") or {}
        ratios = ", ".join(
            f"{k.upper()} {hls_r[k]:g} (HLS) / {syn_r.get(k, NA)} (post-synthesis)"
            for k in ("lut", "ff", "dsp")
        )
        blocks.append(
            Paragraph(
                f"Measured error of the estimate (estimate / real) on {calib.get('design', NA)}, "
                f"{calib.get('reports', NA)}: {ratios}; latency {hls_r.get('latency_cycles', NA)}. "
                f"{_sentence(calib.get('caveat'))}"
            )
        )
    layers = [layer for layer in resources.get("layers") or [] if isinstance(layer, Mapping)]
    if layers:
        rows = tuple(
            (
                str(layer.get("name", NA)),
                str(layer.get("kind", NA)),
                *(fmt_int(layer.get(k)) for k in ("lut", "ff", "dsp", "bram_18k")),
                fmt_int(layer.get("latency_cycles")),
                _mults(layer),
                _layer_source(layer, resources),
            )
            for layer in layers
        )
        header = (
            "layer",
            "kind",
            "LUT",
            "FF",
            "DSP",
            "BRAM_18K",
            "latency (cycles)",
            "multipliers",
            "source",
        )
        blocks.append(Table(header, rows, caption="Per layer"))
    else:
        blocks.append(Paragraph("No per-layer figures in hls_report.json."))

    totals = total_rows(resources)
    if totals:
        header = (
            "source",
            *(RESOURCE_LABELS[k] for k in RESOURCE_KEYS),
            "latency (cycles)",
            "latency (ns)",
            "II (cycles)",
            "multipliers",
        )
        rows = tuple(
            (
                row.source,
                *(fmt_int(row.figures.get(k)) for k in RESOURCE_KEYS),
                fmt_int(row.figures.get("latency_cycles")),
                fmt_value(row.figures.get("latency_ns")),
                fmt_int(row.figures.get("ii_cycles")),
                _mults(row.figures),
            )
            for row in totals
        )
        blocks.append(Table(header, rows, caption="Total, one row per source of figures"))

        available = resources.get("available")
        available = available if isinstance(available, Mapping) else {}
        part = report.get("part", NA)
        util_header = (
            "source",
            *(f"{RESOURCE_LABELS[k]} (of {fmt_int(available.get(k))})" for k in RESOURCE_KEYS),
        )
        util_rows = tuple(
            (row.source, *(fmt_pct(row.figures.get(k), available.get(k)) for k in RESOURCE_KEYS))
            for row in totals
        )
        blocks.append(Table(util_header, util_rows, caption=f"Utilization of the part {part}"))
    else:
        blocks.append(Paragraph("No total resource figures in hls_report.json."))

    if layers:
        res_png = plot_dir / f"{student.name}_resources.png"
        lat_png = plot_dir / f"{student.name}_latency.png"
        label = _layer_source(layers[0], resources)
        fpga_plots.plot_layer_resources(layers, f"{student.name}: resources per layer ({label})", res_png)
        fpga_plots.plot_layer_latency(
            layers,
            clock_ns if _is_num(clock_ns) else None,
            f"{student.name}: latency per layer ({label})",
            lat_png,
        )
        blocks.append(
            Image(
                res_png, f"{plot_rel}/{res_png.name}", f"{student.name}: LUT, FF and DSP per layer ({label})"
            )
        )
        blocks.append(
            Image(lat_png, f"{plot_rel}/{lat_png.name}", f"{student.name}: latency per layer ({label})")
        )
    return blocks, totals


def budget_blocks(student: StudentInputs) -> tuple[list[Block], str]:
    budget = student.report.get("budget")
    budget = budget if isinstance(budget, Mapping) else {}
    profile = budget.get("profile", NA)
    blocks: list[Block] = [Heading(3, f"Trigger budget: profile `{profile}`")]
    rows_in = [r for r in budget.get("rows") or [] if isinstance(r, Mapping)]
    if rows_in:
        rows, tones = [], []
        for r in rows_in:
            status = _status(r.get("status"))
            src = r.get("source")
            rows.append(
                (
                    str(r.get("figure", NA)),
                    fmt_value(r.get("value")),
                    fmt_value(r.get("limit")),
                    str(r.get("unit") or ""),
                    source_label(src) if src else NA,
                    status,
                )
            )
            tones.append(_tone(status))
        blocks.append(
            Table(
                ("figure", "value", "limit", "unit", "source", "status"), tuple(rows), row_tones=tuple(tones)
            )
        )
    else:
        blocks.append(Paragraph("No budget rows in hls_report.json."))
    passed = budget.get("pass")
    violations = [str(v) for v in budget.get("violations") or []]
    if passed is True:
        verdict = "PASS"
        blocks.append(Paragraph(f"**Budget verdict: PASS** (profile `{profile}`)", "pass"))
    elif passed is False:
        verdict = "FAIL"
        why = "; ".join(violations) if violations else "see the FAIL rows"
        blocks.append(Paragraph(f"**Budget verdict: FAIL** (profile `{profile}`): {why}", "fail"))
    else:
        verdict = NA
        blocks.append(Paragraph("**Budget verdict: n/a** (no budget check in hls_report.json)", "warn"))
    return blocks, verdict


def _precision_text(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def precision_blocks(report: Mapping[str, Any]) -> list[Block]:
    precision = report.get("precision")
    blocks: list[Block] = [Heading(3, "Precision per layer")]
    if not isinstance(precision, Mapping) or not precision:
        return [*blocks, Paragraph("No precision table in hls_report.json.")]
    # The usual hls4ml precision keys first, in data-flow order; anything else after them.
    columns = [
        k for k in PRECISION_ORDER if any(isinstance(s, Mapping) and k in s for s in precision.values())
    ]
    for spec in precision.values():
        if isinstance(spec, Mapping):
            columns.extend(k for k in spec if k not in columns)
    if not columns:
        rows = tuple((str(layer), _precision_text(spec)) for layer, spec in precision.items())
        return [*blocks, Table(("layer", "precision"), rows)]
    rows = tuple(
        (
            str(layer),
            *(
                _precision_text(spec.get(c, "-")) if isinstance(spec, Mapping) else _precision_text(spec)
                for c in columns
            ),
        )
        for layer, spec in precision.items()
    )
    return [*blocks, Table(("layer", *columns), rows)]


def roc_blocks(student: StudentInputs, plot_dir: Path, plot_rel: str) -> list[Block]:
    if student.csim_npz is None:
        return [
            Paragraph(
                f"No {student.report_path.parent.name}/csim_outputs.npz: the C-simulation ROC is not plotted."
            )
        ]
    try:
        with np.load(student.csim_npz) as data:
            y_true, p_hls, p_q = (np.asarray(data[k]) for k in ("y_true", "p_hls", "p_qkeras"))
    except (OSError, KeyError, ValueError) as err:
        log.warning("cannot read %s: %s", student.csim_npz, err)
        return [
            Paragraph(
                f"{student.csim_npz} is unreadable ({err}): the C-simulation ROC is not plotted.", "warn"
            )
        ]
    # A two-column array holds both class probabilities; class 1 is the top jet.
    p_hls, p_q = (p[:, 1] if p.ndim == 2 else p for p in (p_hls, p_q))
    if not (y_true.shape[0] == p_hls.shape[0] == p_q.shape[0]):
        return [
            Paragraph(f"{student.csim_npz}: arrays of different lengths; the ROC is not plotted.", "warn")
        ]
    png = plot_dir / f"{student.name}_csim_roc.png"
    fpga_plots.plot_csim_roc(y_true, p_hls, p_q, f"{student.name}: C simulation vs QKeras", png)
    caption = f"{student.name}: background rejection vs signal efficiency, HLS C simulation over QKeras"
    return [Image(png, f"{plot_rel}/{png.name}", caption)]


# -- header and provenance ------------------------------------------------------------------------
def _versions_table(stages: tuple[tuple[Path, dict[str, Any]], ...]) -> tuple[Table, bool]:
    """Package versions per stage; several versions of one package across stages are all listed."""
    seen: dict[str, dict[str, list[str]]] = {}
    for path, payload in stages:
        versions = payload.get("versions")
        if not isinstance(versions, Mapping):
            continue
        stage = str(payload.get("stage") or path.parent.name)
        for pkg, ver in versions.items():
            seen.setdefault(str(pkg), {}).setdefault(str(ver), []).append(stage)
    if seen:
        rows = tuple(
            (
                pkg,
                "; ".join(
                    f"{ver} ({', '.join(st)})" if len(by_ver) > 1 else ver for ver, st in by_ver.items()
                ),
            )
            for pkg, by_ver in seen.items()
        )
        return Table(("package", "version (stage)"), rows, caption="Versions recorded by the stages"), True
    rows = tuple(package_versions().items())
    caption = "No stage.json found: versions of the environment that wrote this report"
    return Table(("package", "version"), rows, caption=caption), False


def _config_path_from_stages(stages: tuple[tuple[Path, dict[str, Any]], ...]) -> str | None:
    for _, payload in stages:
        for key in ("config_path", "config"):
            if isinstance(payload.get(key), str):
                return payload[key]
    return None


def header_blocks(
    cfg: Config,
    inputs: RunInputs,
    config_path: Path | str | None,
    summary: list[tuple[str, ...]],
    tones: list[Tone],
) -> list[Block]:
    cfg_path = str(config_path) if config_path else _config_path_from_stages(inputs.stages)
    hls_digests = sorted(
        {str(p.get("digest")) for _, p in inputs.stages if p.get("stage") == "hls" and p.get("digest")}
    )
    items = [
        f"Run: `{cfg.run.name}`",
        f"Written: {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}",
        f"Config: `{cfg_path}`" if cfg_path else "Config: path not recorded",
        f"Config digest (all sections): `{cfg.section_hash(*ALL_SECTIONS)}`",
        f"HLS stage digest: {', '.join(f'`{d}`' for d in hls_digests)}"
        if hls_digests
        else "HLS stage digest: n/a",
        f"Target: {cfg.hls.backend} backend, part `{cfg.hls.part}`, clock {cfg.hls.clock_period_ns:g} ns, "
        f"reuse factor {cfg.hls.reuse_factor}, {cfg.hls.io_type}, {cfg.hls.strategy}",
        f"Budget profile: `{cfg.budget.profile}` from `{cfg.budget.profiles}`",
        f"Inputs: `{inputs.metrics_path}`, " + ", ".join(f"`{s.report_path}`" for s in inputs.students),
    ]
    all_ok = all(row[1] == "BIT-EXACT" and row[2] == "PASS" for row in summary)
    overall = (
        "**Overall: PASS**: every student is bit-exact and within the budget."
        if all_ok
        else "**Overall: FAIL**: "
        + "; ".join(
            f"{row[0]}: "
            + ", ".join(x for x in (row[1], f"budget {row[2]}") if x not in ("BIT-EXACT", "budget PASS"))
            for row in summary
            if row[1] != "BIT-EXACT" or row[2] != "PASS"
        )
    )
    return [
        Heading(1, f"kd_trigger firmware review: run {cfg.run.name}"),
        Bullets(tuple(items)),
        Paragraph(overall, "pass" if all_ok else "fail"),
        Table(
            (
                "student",
                "C simulation",
                "budget",
                "latency (cycles)",
                "latency (ns)",
                "II (cycles)",
                "latency from",
                "LUT",
                "DSP",
                "resources from",
            ),
            tuple(summary),
            caption="Summary",
            row_tones=tuple(tones),
        ),
        Heading(2, "How to read this"),
        Bullets(
            (
                "Every resource and latency figure names its source. **estimate**: computed by kd_trigger from "
                "the hls4ml model (multipliers, adders, pipeline depth); it is an estimate, not a measurement. "
                "**vendor HLS estimate**: the Vivado/Vitis HLS C-synthesis report (the tool's own estimate). **vendor post-synthesis**: Vivado "
                "synthesis of the exported RTL, the only figures that approach what the chip will hold.",
                "Vivado/Vitis HLS resource estimates are known to be far from post-synthesis numbers (LUTs about 2x "
                "too high on real jet-tagger designs); the summary uses the most trustworthy source available.",
                "BIT-EXACT means the C simulation of the firmware gave identical outputs to the QKeras model on every "
                "simulated test jet; anything else is a MISMATCH, whatever the AUCs say.",
                "Rejection 1/ε_B at signal efficiency ε_S with its bootstrap error; at high rejection few background "
                "jets survive the cut, so read the errors before the central values.",
                "Utilization is the % of the part's resources; the budget table lists each figure, its limit and the "
                "source the check used.",
            )
        ),
    ]


# -- the report -----------------------------------------------------------------------------------
def build_blocks(
    cfg: Config, inputs: RunInputs, plot_dir: Path, plot_rel: str, config_path: Path | str | None = None
) -> list[Block]:
    """All blocks of the report; writes the plots into ``plot_dir`` on the way."""
    models = inputs.metrics["models"]
    body: list[Block] = []
    summary: list[tuple[str, ...]] = []
    tones: list[Tone] = []
    for student in inputs.students:
        report = student.report
        body.append(Heading(2, f"Student `{student.name}`", anchor=f"student-{student.name}"))
        body.append(
            Paragraph(
                f"Firmware: `{student.report_path.parent}`; backend {report.get('backend', NA)}, part "
                f"`{report.get('part', NA)}`, clock {fmt_value(report.get('clock_period_ns'))} ns, reuse factor "
                f"{fmt_value(report.get('reuse_factor'))}."
            )
        )
        ratios = (inputs.metrics.get("students") or {}).get(student.name)
        body.extend(physics_blocks(student.name, models, ratios if isinstance(ratios, Mapping) else None))
        csim = report.get("csim") if isinstance(report.get("csim"), Mapping) else {}
        body.extend(csim_blocks(student, cfg.hls.min_exact_fraction))
        body.extend(roc_blocks(student, plot_dir, plot_rel))
        res, totals = resource_blocks(student, plot_dir, plot_rel)
        body.extend(res)
        budget, verdict = budget_blocks(student)
        body.extend(budget)
        body.extend(precision_blocks(report))

        lat, lat_src = best_figures(totals, LATENCY_KEYS)
        res, res_src = best_figures(totals, RESOURCE_KEYS)
        csim_text = csim_verdict(csim)[0]
        summary.append(
            (
                student.name,
                csim_text,
                verdict,
                fmt_int(lat.get("latency_cycles")),
                fmt_value(lat.get("latency_ns")),
                fmt_int(lat.get("ii_cycles")),
                lat_src,
                fmt_int(res.get("lut")),
                fmt_int(res.get("dsp")),
                res_src,
            )
        )
        tones.append("pass" if csim_text == "BIT-EXACT" and verdict == "PASS" else "fail")

    physics = _physics_plot_blocks(cfg, plot_dir, plot_rel)
    table, _ = _versions_table(inputs.stages)
    stage_rows = tuple(
        (
            str(p.get("stage", NA)),
            str(path.parent),
            str(p.get("digest", NA)),
            str(p.get("finished_utc", NA)),
        )
        for path, p in inputs.stages
    )
    provenance: list[Block] = [Heading(2, "Provenance")]
    if stage_rows:
        provenance.append(Table(("stage", "directory", "digest", "finished"), stage_rows, caption="Stages"))
    provenance.append(table)
    return [*header_blocks(cfg, inputs, config_path, summary, tones), *body, *physics, *provenance]


def _physics_plot_blocks(cfg: Config, plot_dir: Path, plot_rel: str) -> list[Block]:
    """The distill stage's ROC and boost plots, copied beside the report so it stands alone."""
    blocks: list[Block] = []
    for name, caption in (
        ("roc.png", "ROC of teacher and students (distill stage)"),
        ("boost.png", "Accuracy under boosts (distill stage)"),
    ):
        src = cfg.artifacts / name
        if src.is_file():
            dst = plot_dir / f"physics_{name}"
            shutil.copyfile(src, dst)
            blocks.append(Image(dst, f"{plot_rel}/{dst.name}", caption))
    return [Heading(2, "Physics plots"), *blocks] if blocks else []


def write_run_report(cfg: Config, config_path: Path | str | None = None) -> Path:
    """Write firmware/<run>/report.md, report.html (self-contained: CSS inline, PNGs embedded) and the
    PNGs in firmware/<run>/report_plots/ that report.md refers to.

    ``config_path`` is only shown in the header and in error hints. Returns the path of report.md.
    Raises DataError (naming the command that makes it) when metrics.json or an hls_report.json is
    missing.
    """
    config_path = config_path or cfg.source
    inputs = load_run_inputs(cfg, config_path)
    out_dir = cfg.firmware
    title = f"kd_trigger firmware review: run {cfg.run.name}"
    # The plots are drawn into a fresh temporary directory that replaces report_plots/ only when the
    # whole report rendered: no stale PNG of an earlier run survives beside the new report. The HTML
    # is rendered inside the block because it reads the PNGs to embed them.
    with atomic_dir(out_dir / PLOTS_DIR) as plot_tmp:
        blocks = build_blocks(cfg, inputs, plot_tmp, PLOTS_DIR, config_path)
        html_text = render_html(blocks, title)
        md_text = render_markdown(blocks)
    md_path = write_text_atomic(out_dir / "report.md", md_text)
    html_path = write_text_atomic(out_dir / "report.html", html_text)
    log.info("report written: %s and %s", md_path, html_path)
    return md_path
