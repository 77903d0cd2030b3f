"""The review report's "Distillation over seeds" section: what ``make study`` measured for this run.

One training of a Deep Sets is noise (the same config and seed gave KD/baseline R30 1.63 on one CPU and
0.90 on another), so a firmware review that reads the distill stage's single seed should see the study's
ratios beside it when the study ran. The section is absent otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from kd_trigger.contracts import Interval, Study, read_contract
from kd_trigger.layout import RunLayout
from kd_trigger.report.html import Block, Bullets, Heading, Paragraph, Table
from kd_trigger.report.markdown import fmt_interval, fmt_per_seed, robustness_sentence

if TYPE_CHECKING:
    from kd_trigger.config import Config  # annotations only


def _deployed(cfg: Config, student: str) -> tuple[str, float, float] | None:
    """(teacher, T, w) this run deploys ``student`` with; None for a student the config lacks."""
    spec = next((s for s in cfg.students if s.name == student), None)
    if spec is None:
        return None
    return (cfg.teacher_of(spec).name, *cfg.kd_setting(spec))


STUDIED_SECTIONS = ("data", "teachers", "students", "distill")
"""The config sections a study's students follow: when the study's recorded config differs from the run's
in one of them, the study is of other students than the firmware."""


def _stale_sections(cfg: Config) -> list[str]:
    """The sections of :data:`STUDIED_SECTIONS` in which the resolved config the study stage recorded differs
    from ``cfg`` ([] when they agree or no record exists)."""
    recorded_path = RunLayout.of(cfg).record_config("study")
    if not recorded_path.is_file():
        return []
    recorded = yaml.safe_load(recorded_path.read_text(encoding="utf-8")) or {}
    current = cfg.to_dict()
    return [k for k in STUDIED_SECTIONS if recorded.get(k) != current.get(k)]


def study_blocks(cfg: Config, study_path: Path) -> list[Block]:
    """The study's KD/baseline ratios at each student's chosen setting (R30 per seed, R50, AUC, accuracy
    difference) and its robustness sentences; [] when no study ran for this run."""
    if not study_path.is_file():
        return []
    study = read_contract(study_path, Study, "make study CONFIG=...")
    rows: list[tuple[str, ...]] = []
    notes: list[str] = []
    robustness: list[str] = []
    for name, st in study.students.items():
        chosen = st.chosen_setting()
        r = chosen.kd_over_baseline
        per_seed = [v for v in r.rejection_at_30.per_seed if v is not None]
        diff = r.accuracy_difference_points
        rows.append(
            (
                name,
                f"{chosen.teacher}, T = {chosen.temperature:g}, w = {chosen.kd_weight:g}",
                fmt_interval(r.rejection_at_30),
                fmt_per_seed(r.rejection_at_30),
                f"{sum(v > 1 for v in per_seed)} of {len(per_seed)}",
                fmt_interval(r.rejection_at_50),
                fmt_interval(r.auc, 4),
                fmt_interval(diff, signed=True) if diff is not None else "n/a",
                _jets_share(r.rejection_at_30),
            )
        )
        deployed = _deployed(cfg, name)
        if deployed is not None and deployed != (chosen.teacher, chosen.temperature, chosen.kd_weight):
            teacher, t, w = deployed
            notes.append(
                f"`{name}`: the study chose {chosen.teacher}, T = {chosen.temperature:g}, w = {chosen.kd_weight:g}; "
                f"this run deploys {teacher}, T = {t:g}, w = {w:g}, so its firmware is not the studied setting."
            )
        if st.augmentation is not None:
            robustness += [
                robustness_sentence(name, st.augmentation, beta) for beta in st.augmentation.ratios
            ]
    seeds = ", ".join(str(s) for s in study.seeds)
    blocks: list[Block] = [
        Heading(2, "Distillation over seeds (make study)"),
        Paragraph(
            f"The physics above is one seed. `make study` trained baseline and distilled copies over "
            f"{len(study.seeds)} seeds ({seeds}), each pair from the same initial weights; KD / baseline is the "
            "mean of the per-seed ratios with its 68% interval (the wider of a hierarchical bootstrap over "
            "seeds and test jets and a Student-t interval of the per-seed log ratios). Details: "
            f"`{RunLayout.of(cfg).study_md}`."
        ),
        Table(
            (
                "student",
                "teacher and setting",
                "KD / baseline R30",
                "per seed",
                "seeds above 1",
                "R50",
                "AUC",
                "accuracy KD - baseline (points)",
                "test jets' share of the R30 ratio's variance",
            ),
            tuple(rows),
        ),
    ]
    blocks += [Paragraph(note) for note in notes]
    stale = _stale_sections(cfg)
    if stale:
        blocks.append(
            Paragraph(
                f"**This study is out of date**: it was made with other `{'`, `'.join(stale)}` settings than this "
                "run's, so it describes other students than the firmware above; rerun `make study`.",
                "warn",
            )
        )
    if robustness:
        blocks.append(Bullets(tuple(robustness)))
    return blocks


def _jets_share(r30: Interval) -> str:
    """How much of the R30 ratio's uncertainty the test split makes (the rest is the seeds), and how many
    times larger it would have to be to make a quarter: the reader sees whether more seeds or more test
    jets would narrow the interval."""
    noise = r30.noise
    if noise is None or noise.jets_share is None:
        return "n/a"
    scale = noise.test_scale_for_quarter
    more = f" (x{scale:.1f} jets for 25%)" if scale is not None and scale > 1 else ""
    return f"{noise.jets_share:.0%}{more}"
