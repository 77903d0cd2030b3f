"""The physics section's N-class part (issue 24): per-class figures and confusion matrices of the teacher
and the two variants of one student, from metrics.json's ``classes`` / ``confusion_matrix`` blocks."""

from __future__ import annotations

from kd_trigger.contracts import Metrics, ModelMetrics
from kd_trigger.report.format import fmt_fixed, fmt_rejection
from kd_trigger.report.html import Block, Paragraph, Table


def _class_rows(label: str, m: ModelMetrics) -> list[tuple[str, ...]]:
    return [
        (
            label,
            cls,
            fmt_fixed(c.auc),
            fmt_fixed(c.efficiency),
            ("≥ " if c.rejection_at_30_capped else "") + fmt_rejection(c.rejection_at_30, None),
            ("≥ " if c.rejection_at_50_capped else "") + fmt_rejection(c.rejection_at_50, None),
        )
        for cls, c in (m.classes or {}).items()
    ]


def class_blocks(name: str, metrics: Metrics) -> list[Block]:
    """Nothing for two classes; else a per-class table and one confusion-matrix table per model."""
    summary = metrics.students[name]
    models = {
        f"teacher `{summary.teacher}`": metrics.models.get(f"teacher/{summary.teacher}"),
        f"{name} baseline": metrics.models.get(f"{name}/baseline"),
        f"{name} distilled (KD)": metrics.models.get(f"{name}/kd"),
    }
    present = {label: m for label, m in models.items() if m is not None and m.classes}
    if not present:
        return []
    names = list(metrics.class_names)
    header = (
        "model",
        "class",
        "AUC (one vs rest)",
        "efficiency (argmax)",
        "1/ε others @ 30%",
        "1/ε others @ 50%",
    )
    rows = tuple(row for label, m in present.items() for row in _class_rows(label, m))
    blocks: list[Block] = [
        Paragraph(
            f"{len(names)} classes ({', '.join(names)}): the figures above are for `{names[-1]}` against the "
            "rest; per class, that class against all others (1/ε: the inverse fraction of the other "
            "classes' jets passing the cut that keeps 30% / 50% of the class; ≥: no such jet passed)."
        ),
        Table(header, rows, caption="Per class, one vs rest"),
    ]
    for label, m in present.items():
        matrix = m.confusion_matrix or []
        blocks.append(
            Table(
                ("true \\ predicted", *names),
                tuple((names[i], *(str(v) for v in row)) for i, row in enumerate(matrix)),
                caption=f"Confusion matrix of {label} (test jets)",
            )
        )
    return blocks
