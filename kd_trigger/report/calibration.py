"""The report's estimator-calibration section: the estimate's measured error on held-out designs."""

from __future__ import annotations

from kd_trigger.contracts import HlsReport
from kd_trigger.report.format import is_num
from kd_trigger.report.html import Block, Heading, Paragraph, Table

_CALIBRATION_SETS = (
    ("held_out", "leave-one-repository-out"),
    ("l1_jet_id", "l1-jet-id (not blind)"),
    ("blind", "blind holdout"),
)


def _real_and_estimate(pair: object) -> tuple[float, float] | None:
    """A calibration record's ``[real, estimate]`` pair, or None where the design has no such figure."""
    if isinstance(pair, list) and len(pair) == 2 and all(is_num(v) for v in pair):
        return pair[0], pair[1]
    return None


def _ratio_cell(pair: object) -> str:
    figures = _real_and_estimate(pair)
    if figures is None:
        return "-"
    real, estimate = figures
    if real == 0:
        return "0 = 0" if estimate == 0 else f"{estimate:,} vs 0"
    return f"{estimate / real:.2f}"


def _cycles_cell(pair: object) -> str:
    figures = _real_and_estimate(pair)
    return "-" if figures is None else f"{figures[1]} vs {figures[0]}"


def calibration_blocks(report: HlsReport) -> list[Block]:
    """The estimator's measured error on designs it was not fitted to, per design (once per report).

    Read from the ``calibration`` record the estimate was written with, so the table always belongs to
    the estimator that produced this run's figures."""
    extra = report.resources.model_extra if report.resources is not None else None
    calibration = (extra or {}).get("calibration")
    if not isinstance(calibration, dict) or not calibration.get("held_out"):
        return []
    rows = []
    for key, label in _CALIBRATION_SETS:
        for design, figures in sorted((calibration.get(key) or {}).items()):
            rows.append(
                (
                    label,
                    f"`{design}`",
                    *(_ratio_cell(figures.get(m)) for m in ("synth_lut", "synth_ff", "synth_dsp", "hls_dsp")),
                    _cycles_cell(figures.get("latency_cycles")),
                    _cycles_cell(figures.get("ii_cycles")),
                )
            )
    return [
        Heading(2, "Estimator calibration", anchor="estimator-calibration"),
        Paragraph(
            "Estimate / real on public hls4ml designs the estimate was not fitted to "
            "(`tests/fixtures/calibration/`, `benchmarks/estimator_calibration.py`). Targets: LUT and FF "
            "within +-25% of Vivado synthesis, DSP within +-30%, latency within +-2 cycles of the HLS report, "
            "II exact. '-' = the design has no such report. " + str(calibration.get("holdout_hygiene", ""))
        ),
        Table(
            (
                "set",
                "design",
                "LUT (synth)",
                "FF (synth)",
                "DSP (synth)",
                "DSP (HLS)",
                "latency est. vs HLS (cycles)",
                "II est. vs HLS",
            ),
            tuple(rows),
            caption="Held-out error of the resource estimator (ratios estimate / real)",
        ),
    ]
