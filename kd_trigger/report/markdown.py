"""Markdown (and text) for people: the study's ``study.md``, the scan's ``scan.md`` and the hls stage's
verdict table. Pure functions of the result documents: a wording edit reruns no training."""

from __future__ import annotations

from typing import Any

import numpy as np

from kd_trigger.contracts import (
    ARMS,
    COMPARISONS,
    AugmentationArms,
    HlsReport,
    Interval,
    RatioNoise,
    Scan,
    ScanCopy,
    ScanPoint,
    SeedFigures,
    StudentStudy,
    Study,
    StudySetting,
)
from kd_trigger.fpga.figures import design_figures
from kd_trigger.layout import PARETO_LATENCY_PLOT, PARETO_LUT_PLOT, STUDY_PLOTS_DIR


# -- study.md -------------------------------------------------------------------------------------
def _picked(s: StudentStudy, st: StudySetting) -> str:
    """'chosen' for the student's setting, 'best for teacher' for each other teacher's best."""
    if st is s.chosen_setting():
        return "**chosen**"
    return "best for this teacher" if st.chosen else ""


def fmt_interval(interval: Interval, digits: int = 2, signed: bool = False) -> str:
    """``mean [lo68, hi68]`` of an interval (``n/a`` without a mean); ``signed``: every number with its sign
    (a difference, ``+0.40 [+0.30, +0.49]``)."""
    if interval.mean is None:
        return "n/a"
    spec = f"{'+' if signed else ''}.{digits}f"
    text = format(interval.mean, spec)
    if interval.lo68 is not None and interval.hi68 is not None:
        text += f" [{format(interval.lo68, spec)}, {format(interval.hi68, spec)}]"
    return text


def fmt_per_seed(interval: Interval, digits: int = 2) -> str:
    """The per-seed values of an interval, ``a / b / c``."""
    return " / ".join("n/a" if v is None else f"{v:.{digits}f}" for v in interval.per_seed)


def _num(value: float | None, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def per_seed_table(s: StudentStudy) -> list[str]:
    """Every seed of the chosen setting: R30, R50 and AUC of the baseline and the distilled student, and
    how the R30 spread between seeds compares with the test split's own noise on one model's R30."""
    st = s.chosen_setting()
    lines = [
        f"Per seed (chosen setting, teacher `{st.teacher}`, T = {st.temperature:g}, w = {st.kd_weight:g}):",
        "",
        "| seed | baseline R30 | KD R30 | baseline R50 | KD R50 | baseline AUC | KD AUC |",
        "|---|---|---|---|---|---|---|",
    ]
    for b, k in zip(s.baseline, st.kd, strict=True):
        lines.append(
            f"| {b.seed} | {_num(b.rejection_at_30, 1)} | {_num(k.rejection_at_30, 1)} | "
            f"{_num(b.rejection_at_50, 1)} | {_num(k.rejection_at_50, 1)} | {b.auc:.4f} | {k.auc:.4f} |"
        )
    return lines + _noise_line(s.baseline, st.kd, st.kd_over_baseline.rejection_at_30.noise)


def _noise_line(baseline: list[SeedFigures], kd: list[SeedFigures], ratio: RatioNoise | None) -> list[str]:
    """R30's seed-to-seed spread (std over mean) against the test jets' noise on one model, then the test
    jets' share of the KD/baseline R30 ratio's uncertainty and the test split that would make it small."""
    noise = [f.rejection_at_30_jet_noise for f in (*baseline, *kd) if f.rejection_at_30_jet_noise is not None]
    spreads = []
    for arm in (baseline, kd):
        values = [f.rejection_at_30 for f in arm if f.rejection_at_30 is not None]
        spreads.append(np.std(values, ddof=1) / np.mean(values) if len(values) > 1 else None)
    if not noise or None in spreads:
        return []
    return [
        "",
        f"R30 from seed to seed (std / mean): baseline {spreads[0]:.0%}, KD {spreads[1]:.0%}; the test jets' "
        f"own noise on one model's R30 (half the 68% width over jet resamples, median of the models): "
        f"{np.median(noise):.0%}.",
        *_ratio_noise_line(ratio),
    ]


def _ratio_noise_line(noise: RatioNoise | None) -> list[str]:
    if noise is None or None in (noise.jets_share, noise.seeds_std, noise.jets_std):
        return []
    scale = noise.test_scale_for_quarter
    if scale is None:
        size = ""
    elif scale <= 1:
        size = " The test split is large enough for the jets to stay under a quarter of it."
    else:
        size = f" A test split {scale:.1f} times larger would bring the jets down to a quarter of it."
    return [
        "",
        f"The KD/baseline R30 ratio's uncertainty (std of the mean per-seed log ratio): seeds "
        f"{noise.seeds_std:.3f}, test jets {noise.jets_std:.3f}; the test jets make {noise.jets_share:.0%} "
        f"of its variance (the hierarchical bootstrap draws both).{size}",
    ]


def _mean(values: list[float | None]) -> str:
    present = [v for v in values if v is not None]
    return f"{np.mean(present):.3f}" if present else "n/a"


_ARM_NAMES = {
    "baseline": "baseline",
    "kd": "KD",
    "baseline_augmented": "baseline + augmentation",
    "kd_augmented": "KD + augmentation",
}


def augmentation_table(aug: AugmentationArms) -> list[str]:
    """The four arms' accuracies at each robustness beta and the control's ratios with their intervals."""
    betas = list(aug.accuracy)
    lines = [
        f"Augmentation control (training jets boosted up to beta = {aug.beta_max:g}, teacher `{aug.teacher}`, "
        f"T = {aug.temperature:g}, w = {aug.kd_weight:g}; accuracy, mean over seeds):",
        "",
        "| arm | " + " | ".join(f"accuracy at beta={b}" for b in betas) + " |",
        "|---|" + "---|" * len(betas),
    ]
    for arm in ARMS:
        lines.append(
            f"| {_ARM_NAMES[arm]} | " + " | ".join(_num(aug.accuracy[b][arm], 3) for b in betas) + " |"
        )
    lines += ["", "| accuracy ratio | " + " | ".join(f"beta={b} | per seed" for b in betas) + " |"]
    lines.append("|---|" + "---|---|" * len(betas))
    for name, (num, den) in COMPARISONS.items():
        cells = " | ".join(
            f"{fmt_interval(aug.ratios[b][name], 3)} | {fmt_per_seed(aug.ratios[b][name], 3)}" for b in betas
        )
        lines.append(f"| {_ARM_NAMES[num]} / {_ARM_NAMES[den]} | {cells} |")
    return lines


def arm_figures_table(s: StudentStudy) -> list[str]:
    """R30, R50, AUC and accuracy (unboosted test jets, mean over seeds) of the four arms, and the KD/baseline
    ratios without and with augmentation."""
    aug = s.augmentation
    if aug is None:
        return []
    st = s.chosen_setting()
    runs = {
        "baseline": s.baseline,
        "kd": st.kd,
        "baseline_augmented": aug.baseline_augmented,
        "kd_augmented": aug.kd_augmented,
    }
    lines = [
        "Four arms on the unboosted test jets (mean over seeds):",
        "",
        "| arm | R30 | R50 | AUC | accuracy |",
        "|---|---|---|---|---|",
    ]
    for arm in ARMS:
        figs = runs[arm]
        lines.append(
            f"| {_ARM_NAMES[arm]} | {_mean([f.rejection_at_30 for f in figs])} | "
            f"{_mean([f.rejection_at_50 for f in figs])} | {_mean([f.auc for f in figs])} | "
            f"{_mean([f.accuracy for f in figs])} |"
        )
    lines += ["", "| KD / baseline | R30 | R50 | AUC |", "|---|---|---|---|"]
    for label, ratios in (
        ("without augmentation", st.kd_over_baseline),
        ("with augmentation", aug.kd_over_baseline_augmented),
    ):
        if ratios is not None:
            lines.append(
                f"| {label} | {fmt_interval(ratios.rejection_at_30)} | {fmt_interval(ratios.rejection_at_50)} | "
                f"{fmt_interval(ratios.auc, 4)} |"
            )
    return lines


def _above_one(interval: Interval) -> bool:
    # Judged at the precision the sentence prints (3 decimals): a lower bound shown as 1.000 claims nothing.
    return interval.lo68 is not None and round(interval.lo68, 3) > 1.0


def robustness_sentence(student: str, aug: AugmentationArms, beta: str) -> str:
    """What the study may say about KD and robustness at boost ``beta``: a gain from KD is claimed only
    where its interval is above 1 against the baseline AND KD either beats augmentation (KD / baseline +
    augmentation above 1: "more robust than augmentation") or adds to it (KD + augmentation / baseline +
    augmentation above 1: the sentence gives the size of what it adds, the robustness being
    augmentation's)."""
    r = aug.ratios[beta]
    kd, beats, adds = r["kd_over_baseline"], r["kd_over_augmented"], r["kd_augmented_over_augmented"]
    head = f"`{student}` at beta = {beta}:"
    numbers = (
        f"accuracy ratio KD / baseline {fmt_interval(kd, 3)}, KD / baseline + augmentation "
        f"{fmt_interval(beats, 3)}, KD + augmentation / baseline + augmentation {fmt_interval(adds, 3)} (68%)."
    )
    if _above_one(kd) and _above_one(beats):
        also = " and adds to it" if _above_one(adds) else ""
        return (
            f"{head} distillation makes the student more robust to boosts than augmentation does: KD beats "
            f"augmentation{also}; {numbers}"
        )
    if _above_one(kd) and _above_one(adds):
        # KD alone loses to augmentation alone: the robustness is augmentation's, and KD's share is the
        # size of what it adds on top, which the sentence states instead of a bare "more robust".
        size = f"{100 * (adds.mean - 1):.1f}% " if adds.mean is not None else ""
        return (
            f"{head} augmentation buys the robustness and distillation adds {size}accuracy on top of it "
            f"(KD alone does not beat augmentation alone); {numbers}"
        )
    if _above_one(kd):
        return (
            f"{head} KD is more accurate than the baseline under boosts, but augmentation alone does as well "
            f"and KD adds nothing to it: no robustness gain is claimed for distillation; {numbers}"
        )
    return f"{head} no robustness gain from distillation; {numbers}"


def study_markdown(study: Study, images: list[str]) -> str:
    """The study as Markdown: teachers, per-student settings with intervals, low-data curve, the paper."""
    top_beta = max(
        (float(b) for s in study.students.values() for b in s.baseline[0].accuracy_at_beta), default=None
    )
    beta_key = f"{top_beta:g}" if top_beta is not None else None
    lines = [
        f"# Study of run {study.run}",
        "",
        f"{len(study.seeds)} seeds ({', '.join(map(str, study.seeds))}), initial weights shared per seed; "
        f"test split {study.n_test:,} jets ({study.n_test_background:,} background). Settings chosen on the "
        f"validation split by the KD/baseline ratio of `{study.select_on}`; the test split only measures. "
        "Ratios: mean of the per-seed ratios [68% interval: the wider of a hierarchical bootstrap over seeds "
        "and the test jets within each seed, and a t interval of the per-seed log ratios].",
        "",
        "## Teachers",
        "",
        "| teacher | kind | particles | parameters | test AUC | 1/eps_B @ 30% | training (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, t in study.teachers.items():
        r = "n/a" if t.rejection_at_30 is None else f"{t.rejection_at_30:.0f}"
        lines.append(
            f"| {name} | {t.kind} | {t.n_particles} | {t.n_parameters:,} | {t.auc:.4f} | {r} | {t.training_seconds:.0f} |"
        )
    for name, s in study.students.items():
        lines += [
            "",
            f"## Student `{name}`",
            "",
            f"Baseline: AUC {_mean([f.auc for f in s.baseline])}, 1/eps_B @ 30% "
            f"{_mean([f.rejection_at_30 for f in s.baseline])} (mean over seeds). Chosen on validation: "
            f"teacher `{s.best['teacher']}`, T = {s.best['temperature']:g}, w = {s.best['kd_weight']:g}.",
            "",
            "| teacher | T | w | picked on validation | val ratio | R30 ratio | per seed | R50 ratio | per seed | "
            f"AUC ratio | per seed | accuracy at beta={beta_key}: baseline -> KD |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for st in s.settings:
            acc_b = _mean([f.accuracy_at_beta.get(beta_key or "", None) for f in s.baseline])
            acc_k = _mean([f.accuracy_at_beta.get(beta_key or "", None) for f in st.kd])
            val = "n/a" if st.val_selection_ratio is None else f"{st.val_selection_ratio:.2f}"
            lines.append(
                f"| {st.teacher} | {st.temperature:g} | {st.kd_weight:g} | {_picked(s, st)} | {val} | "
                f"{fmt_interval(st.kd_over_baseline.rejection_at_30)} | {fmt_per_seed(st.kd_over_baseline.rejection_at_30)} | "
                f"{fmt_interval(st.kd_over_baseline.rejection_at_50)} | {fmt_per_seed(st.kd_over_baseline.rejection_at_50)} | "
                f"{fmt_interval(st.kd_over_baseline.auc, 4)} | {fmt_per_seed(st.kd_over_baseline.auc, 4)} | "
                f"{acc_b} -> {acc_k} |"
            )
        lines += study_class_lines(s)
        lines += ["", *per_seed_table(s)]
        if s.low_data:
            lines += [
                "",
                "Low-data curve (chosen teacher and setting):",
                "",
                "| train fraction | jets | baseline R30 | KD R30 | R30 ratio |",
                "|---|---|---|---|---|",
            ]
            for p in s.low_data:
                lines.append(
                    f"| {p.train_fraction:g} | {p.n_train:,} | {_mean([f.rejection_at_30 for f in p.baseline])} | "
                    f"{_mean([f.rejection_at_30 for f in p.kd])} | {fmt_interval(p.kd_over_baseline.rejection_at_30)} |"
                )
        if s.augmentation is not None:
            lines += ["", *arm_figures_table(s), "", *augmentation_table(s.augmentation), ""]
            lines += [robustness_sentence(name, s.augmentation, beta) for beta in s.augmentation.ratios]
    lines += [
        "",
        "## The paper, on another data set",
        "",
        f"{study.paper['data_set']}. Source: {study.paper['source']}.",
        "",
        "| model | accuracy | 1/eps_B @ 30% | 1/eps_B @ 50% | accuracy at beta = 0.5 |",
        "|---|---|---|---|---|",
    ]
    for row in study.paper["rows"]:
        lines.append(
            f"| {row['model']} | {row['accuracy']:.3f} | {row['rejection_at_30']} | {row['rejection_at_50']} | "
            f"{row.get('acc_beta_0.5', '-')} |"
        )
    lines += ["", "## Plots", ""] + [f"![{image}]({STUDY_PLOTS_DIR}/{image})" for image in images]
    return "\n".join(lines) + "\n"


def study_class_lines(s: StudentStudy) -> list[str]:
    """The accuracy difference and, with more than two classes, each class's R50 ratio of every setting
    of one student (issue 24), as Markdown lines after its settings table; none for a study without them."""
    settings = [st for st in s.settings if st.kd_over_baseline.accuracy_difference_points is not None]
    if not settings:
        return []
    classes = list(settings[0].kd_over_baseline.rejection_at_50_by_class)
    header = ["teacher", "T", "w", "accuracy KD - baseline (points)", *(f"R50 ratio `{c}`" for c in classes)]
    lines = [
        "",
        "Accuracy difference (KD - baseline, percentage points)"
        + (" and per-class R50 ratios (one vs rest)" if classes else "")
        + ", mean [68% interval]:",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for st in settings:
        kob = st.kd_over_baseline
        assert kob.accuracy_difference_points is not None  # filtered above
        cells = [
            st.teacher,
            f"{st.temperature:g}",
            f"{st.kd_weight:g}",
            fmt_interval(kob.accuracy_difference_points),
            *(fmt_interval(kob.rejection_at_50_by_class[c]) for c in classes),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


# -- scan.md --------------------------------------------------------------------------------------
def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _axis_text(value: Any) -> str:
    # as kd_trigger.scan_points.axis_text spells it in point names (not imported: that would tie this
    # module, and the stages that use it, to the scan's training code)
    return "x".join(map(str, value)) if isinstance(value, tuple | list) else str(value)


def _unjudged(p: ScanPoint) -> bool:
    """A design whose only budget failures are figures nobody measured (an RTL point ranked by da4ml's
    estimate, which has no DSP/BRAM/URAM figure: Yosys runs on the front designs only)."""
    rows = p.budget.rows if p.budget is not None else []
    failed = [r for r in rows if r.status != "PASS"]  # as BudgetVerdict.passed counts a failure
    return not p.budget_pass and bool(failed) and all(r.value is None for r in failed)


def _budget_cell(p: ScanPoint) -> str:
    return "PASS" if p.budget_pass else ("not judged" if _unjudged(p) else "FAIL")


def scan_markdown(scan: Scan) -> str:
    """The scan as a Markdown table, the Pareto designs marked, the promoted ones in bold."""
    unjudged = sum(_unjudged(p) for p in scan.points)
    promoted = {entry["key"] for entry in scan.promoted.values()}
    lines = [
        f"# Design scan of run {scan.run}",
        "",
        f"{len(scan.points)} points ({scan.mode}), objective `{scan.objective}` on the test split; "
        f"{sum(p.exact for p in scan.points)} bit-exact, {sum(p.budget_pass for p in scan.points)} within the budget"
        + (
            f", {unjudged} not judged (ranked by an estimate without DSP/BRAM/URAM figures; Yosys measured the "
            "front designs only)"
            if unjudged
            else ""
        )
        + ". Pareto: not beaten by another exact design in physics, LUT and latency together.",
        "",
        "| design | axes | AUC | 1/eps_B @ 30% | LUT | latency (ns) | II | source | exact | budget | Pareto "
        "| baseline AUC | baseline 1/eps_B @ 30% | baseline LUT | baseline exact |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in sorted(scan.points, key=lambda p: -(p.physics.get(scan.objective) or -1e9)):
        axes = ", ".join(f"{k}={_axis_text(v)}" for k, v in p.axes.items())
        name = f"**{p.key}**" if p.key == scan.best or p.key in promoted else p.key
        r30 = p.physics.get("rejection_at_30")
        r30_err = p.physics.get("rejection_at_30_err")
        lines.append(
            f"| {name} | {p.student}: {axes} | {_fmt(p.physics.get('auc'))} | "
            f"{_fmt(r30, 3)}{'' if r30_err is None else f' ± {r30_err:.2g}'} | {_fmt(p.figures.get('lut'))} | "
            f"{_fmt(p.figures.get('latency_ns'))} | {_fmt(p.figures.get('ii_cycles'))} | {p.sources.get('lut') or '-'} | "
            f"{'yes' if p.exact else ('ERROR' if p.error else 'NO')} | {_budget_cell(p)} | "
            f"{'yes' if p.pareto else ''} | {_baseline_cells(p.baseline)} |"
        )
    lines += promoted_markdown(scan)
    lines += fronts_markdown(scan)
    if scan.best is None and scan.nearest_miss:
        lines += [
            "",
            f"No design fits the budget. Nearest miss: {scan.nearest_miss['axes']} ({'; '.join(scan.nearest_miss['violations'])}).",
        ]
    lines += [
        "",
        f"![physics vs LUT]({PARETO_LUT_PLOT})",
        "",
        f"![physics vs latency]({PARETO_LATENCY_PLOT})",
    ]
    return "\n".join(lines) + "\n"


def promoted_markdown(scan: Scan) -> list[str]:
    """Per student kind, the design to deploy and what it was ranked on (median over seeds or one
    training), with each seed's objective."""
    if not scan.promoted:
        return []
    by_key = {p.key: p for p in scan.points}
    lines = [
        "",
        "## Promoted designs (one per student kind)",
        "",
        f"Of each kind's exact designs within the budget, the retrained front designs compete on the median "
        f"`{scan.objective}` over seeds (one training is noise for a Deep Sets); `firmware/{scan.run}/best/` "
        f"holds {scan.best} (the run's own seed).",
        "",
        f"| kind | design | axes | {scan.objective} per seed | ranked on | LUT | source | latency (ns) | II |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for kind, entry in scan.promoted.items():
        p = by_key[entry["key"]]
        axes = ", ".join(f"{k}={_axis_text(v)}" for k, v in p.axes.items())
        seeds = " / ".join(_fmt(v, 3) for v in entry["per_seed"])
        lines.append(
            f"| {kind} | {p.key} | {axes} | {seeds} | {_fmt(entry['objective'], 3)} ({entry['rule']}) | "
            f"{_fmt(p.figures.get('lut'))} | {p.sources.get('lut') or '-'} | {_fmt(p.figures.get('latency_ns'))} | "
            f"{_fmt(p.figures.get('ii_cycles'))} |"
        )
    return lines


def _baseline_cells(copy: ScanCopy | None) -> str:
    if copy is None:
        return "- | - | - | -"
    exact = "yes" if copy.exact else ("ERROR" if copy.error else "NO")
    return (
        f"{_fmt(copy.physics.get('auc'))} | {_fmt(copy.physics.get('rejection_at_30'), 3)} | "
        f"{_fmt(copy.figures.get('lut'))} | {exact}"
    )


def fast_vs_yosys_text(f: dict[str, Any]) -> str:
    """One sentence: the fast figure against Yosys on the measured copies."""
    return (
        f"Ranked by the fast figures ({f['source']} for RTL designs); Yosys measured {len(f['points'])} RTL "
        f"copies (every front point and the promoted design): {f['source']} / Yosys LUT median "
        f"{f['median_ratio']:.3f}, min {f['min_ratio']:.3f}, max {f['max_ratio']:.3f}."
    )


def front_texts(scan: Scan) -> list[tuple[str, str]]:
    """(kind, what KD buys on its fronts: one run's readings, then over seeds where retrained)."""
    seeds = scan.front_seeds or {}
    return [
        (
            kind,
            kd_gain_text(scan.objective, f["gains"])
            + (f" {seed_gain_text(scan.objective, seeds[kind])}" if kind in seeds else ""),
        )
        for kind, f in scan.fronts.items()
    ]


def seed_gain_text(objective: str, seeds: dict[str, Any]) -> str:
    """The KD saving over seeds on the retrained front designs: median [min, max]."""

    def spread(block: dict[str, Any] | None, scale: float, unit: str) -> str:
        if block is None:
            return "n/a"
        return f"{scale * block['median']:.2f}{unit} [{scale * block['lo']:.2f}, {scale * block['hi']:.2f}]"

    return (
        f"Over {seeds['seeds']} seeds ({len(seeds['designs'])} front designs retrained, fast LUT figures): "
        f"LUT saving at equal {objective} {spread(seeds.get('lut_saving'), 100, '%')}, "
        f"{objective} ratio at equal LUT {spread(seeds.get('objective_ratio'), 1, 'x')} (median [min, max])."
    )


def kd_gain_text(objective: str, gains: dict[str, Any]) -> str:
    """The two numbers read off a kind's fronts, as one sentence (stepwise readings, median over levels)."""
    saving, ratio = gains.get("lut_saving"), gains.get("objective_ratio")
    if saving is None:
        lut = "KD saves n/a of the LUT"
    elif saving >= 0:
        lut = f"KD saves {100 * saving:.0f}% of the LUT"
    else:  # a negative saving read as one would be easy to misread as a gain
        lut = f"KD needs {-100 * saving:.0f}% more LUT"
    return (
        f"{lut} at equal {objective} "
        f"({gains.get('n_lut_readings', 0)} levels) and reaches "
        f"{'n/a' if ratio is None else f'{ratio:.2f}x'} the baseline's {objective} at equal LUT "
        f"({gains.get('n_objective_readings', 0)} levels); {gains.get('interpolation', 'stepwise')} readings at "
        "each baseline front point, median."
    )


def fronts_markdown(scan: Scan) -> list[str]:
    """Per student kind, the KD and baseline fronts (objective against LUT) and the KD saving; how far
    the fast LUT figure was from Yosys on the measured RTL copies."""
    lines: list[str] = []
    if scan.fast_vs_yosys:
        f = scan.fast_vs_yosys
        lines += [
            "",
            fast_vs_yosys_text(f),
            "",
            "| design | copy | fast LUT | Yosys LUT | fast / Yosys |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {r['key']} | {r['copy']} | {r['fast_lut']:,} | {r['yosys_lut']:,} | {r['ratio']:.3f} |"
            for r in f["points"]
        ]
    for kind, fronts in scan.fronts.items():
        lines += ["", f"## {kind}: KD and baseline fronts ({scan.objective} against LUT)", ""]
        lines += [kd_gain_text(scan.objective, fronts["gains"]), ""]
        if scan.front_seeds and kind in scan.front_seeds:
            lines += [seed_gain_text(scan.objective, scan.front_seeds[kind]), ""]
        lines += [f"| copy | design | {scan.objective} | LUT |", "|---|---|---|---|"]
        for copy in ("kd", "baseline"):
            for row in fronts[copy]:
                lines.append(f"| {copy} | {row['key']} | {_fmt(row['objective'], 4)} | {row['lut']:,.0f} |")
    return lines


# -- the hls stage's verdict ----------------------------------------------------------------------
def verdict_table(reports: list[HlsReport]) -> str:
    """The hls stage's verdict as a fixed-width text table: one row per student and flow."""
    lines = [
        f"{'student':<14} {'flow':<7} {'C sim exact':>11} {'latency ns':>10} {'LUT':>9} {'DSP':>6}  budget (source)"
    ]
    for r in reports:
        csim = "n/a" if r.csim is None else f"{r.csim.exact_fraction:.6f}"  # n/a: hls4ml not built
        for design in design_figures(r):
            verdict = r.budget_by_flow.get(design.flow)
            text = (
                "n/a"
                if verdict is None
                else ("PASS" if verdict.passed else "FAIL: " + "; ".join(verdict.violations))
            )
            latency, _ = design.best("latency_ns")
            lut, source = design.best("lut")
            dsp, _ = design.best("dsp")
            lines.append(
                f"{r.student:<14} {design.flow:<7} {csim:>11} {latency!s:>10} "
                f"{lut!s:>9} {dsp!s:>6}  {text} ({source})"
            )
    return "\n".join(lines)
