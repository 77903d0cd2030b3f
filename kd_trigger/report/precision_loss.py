"""The report's precision-loss section: what a design's configured types do to the model's arithmetic.

hls4ml overflows silently; ``precision_loss`` of hls_report.json (:mod:`kd_trigger.hls.layer_loss`)
says per layer how far the design is from the model's own arithmetic and how many values overflowed a
configured type. Here that is said plainly: one sentence with the output effect, and a table of only
the layers where the design differs (a design without any loss gets one line).
"""

from __future__ import annotations

from typing import Any

from kd_trigger.report.format import fmt_int
from kd_trigger.report.html import Block, Heading, Paragraph, Table

HEADING = "Precision loss (the configured types against the model's own arithmetic)"


def _num(value: Any) -> str:
    return f"{float(value):.4g}"


def _pct(fraction: Any) -> str:
    return f"{100.0 * float(fraction):.2f}%"


def lossy_layers(loss: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The layers of ``precision_loss`` whose output differs from the model's or overflowed."""
    layers: dict[str, dict[str, Any]] = loss.get("layers") or {}
    return {
        name: v for name, v in layers.items() if v.get("max_abs_diff", 0.0) > 0 or v.get("overflow_count", 0)
    }


def precision_loss_blocks(loss: dict[str, Any] | None) -> list[Block]:
    """The section for one design's ``precision_loss`` (None: not measured, said in one line)."""
    blocks: list[Block] = [Heading(3, HEADING)]
    if loss is None:
        blocks.append(
            Paragraph(
                "Not measured for this design: its types are derived from the model's quantizers, and the "
                "exactness check above compares it with the model's own arithmetic."
            )
        )
        return blocks
    n = fmt_int(loss.get("n_samples", 0))
    lossy = lossy_layers(loss)
    output_diff = float(loss.get("max_abs_diff", 0.0))
    if not lossy and output_diff == 0.0:
        blocks.append(
            Paragraph(
                f"No precision loss: on the {n} simulated inputs every layer equals the model's own arithmetic.",
                "pass",
            )
        )
        return blocks
    first = loss.get("first_overflow_layer")
    overflow = (
        f"values first overflow a configured type at `{first}` (wrapped or saturated; hls4ml does not warn)"
        if first
        else "no value overflows a configured type (the loss is rounding)"
    )
    compared = loss.get("compared_layer")
    at = f"`{compared}`" if compared else "the output"
    changed = float(loss.get("decision_changed_fraction", 0.0))
    blocks.append(
        Paragraph(
            f"The design ({loss.get('design', 'configured types')}) differs from the model's own arithmetic on "
            f"the {n} simulated inputs: {overflow}. At {at} the largest error is {_num(output_diff)} (mean "
            f"{_num(loss.get('mean_abs_diff', 0.0))}), and the decision (argmax) agrees on "
            f"{_pct(1.0 - changed)} of the samples.",
            "warn" if first or changed > 0 else "plain",
        )
    )
    rows = tuple(
        (
            name,
            str(v.get("result_type") or "-"),
            f"{fmt_int(v.get('overflow_count', 0))} of {fmt_int(v.get('n_values', 0))}",
            _num(v.get("max_abs_diff", 0.0)),
            _num(v.get("mean_abs_diff", 0.0)),
        )
        for name, v in lossy.items()
    )
    blocks.append(
        Table(
            ("layer", "result type", "overflowed values", "largest error", "mean error"),
            rows,
            caption="Only the layers whose output differs from the model's; errors are |design - model|.",
            row_tones=tuple("fail" if v.get("overflow_count", 0) else "warn" for v in lossy.values()),
        )
    )
    return blocks


__all__ = ["HEADING", "lossy_layers", "precision_loss_blocks"]
