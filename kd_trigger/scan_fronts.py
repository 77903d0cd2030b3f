"""What distillation buys on the scan's fronts (pure): the LUT saving of the distilled copy at equal
physics and its physics gain at equal LUT, read off the KD and baseline fronts (objective up, LUT down).

Both readings are stepwise, not linear: a front is a staircase of built designs, and the only design one
can deploy at a LUT budget is a built one. So "the best objective at L LUT" is the best objective of a
front point with LUT <= L, and "the fewest LUT for objective R" is the least LUT of a front point with
objective >= R. A straight line between two front points would credit a design nobody built.

The readings are taken at every point of the baseline front (the question a trigger engineer asks: at
this baseline design, what would KD give me?) and summarised by their median; a level the KD front does
not reach (no KD design that good, or that cheap) gives no reading and is counted, not guessed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

Point = tuple[float, float]
"""(lut, objective) of one design."""


def front(points: Sequence[Point]) -> list[Point]:
    """The Pareto front of ``points`` (fewer LUT, larger objective), sorted by LUT: the objective rises
    strictly along it. Points with a missing (NaN) figure are left out; of equal points one is kept."""
    usable = sorted(
        {(float(lut), float(obj)) for lut, obj in points if np.isfinite(lut) and np.isfinite(obj)},
        key=lambda p: (p[0], -p[1]),
    )
    steps: list[Point] = []
    for lut, obj in usable:
        if not steps or obj > steps[-1][1]:
            steps.append((lut, obj))
    return steps


def front_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows ({key, lut, objective}) on the :func:`front` of their (lut, objective), sorted by LUT;
    of equal designs the first row is kept."""
    steps = front([(r["lut"], r["objective"]) for r in rows])
    chosen = []
    for lut, obj in steps:
        chosen.append(next(r for r in rows if (float(r["lut"]), float(r["objective"])) == (lut, obj)))
    return chosen


def best_objective_at(steps: Sequence[Point], lut: float) -> float | None:
    """The best objective of a front point with at most ``lut`` LUT (stepwise); None when none is that cheap."""
    fitting = [obj for point_lut, obj in steps if point_lut <= lut]
    return max(fitting) if fitting else None


def least_lut_for(steps: Sequence[Point], objective: float) -> float | None:
    """The fewest LUT of a front point with at least ``objective`` (stepwise); None when none is that good."""
    good = [point_lut for point_lut, obj in steps if obj >= objective]
    return min(good) if good else None


def kd_gains(kd: Sequence[Point], baseline: Sequence[Point]) -> dict[str, Any]:
    """The KD saving read at each baseline front point (LUT_b, R_b):

    ``lut_ratio`` = fewest KD LUT reaching R_b / LUT_b (below 1: KD saves LUT at equal objective) and
    ``objective_ratio`` = best KD objective within LUT_b / R_b (above 1: KD is better at equal LUT).
    Returns the per-level rows, their medians (None without any reading), ``lut_saving`` = 1 - median
    lut_ratio, and how many levels had a reading.
    """
    kd_steps, base_steps = front(kd), front(baseline)
    rows = []
    for lut, obj in base_steps:
        kd_lut = least_lut_for(kd_steps, obj)
        kd_obj = best_objective_at(kd_steps, lut)
        rows.append(
            {
                "lut": lut,
                "objective": obj,
                "kd_lut": kd_lut,
                "kd_objective": kd_obj,
                "lut_ratio": None if kd_lut is None else kd_lut / lut,
                "objective_ratio": None if kd_obj is None or obj == 0 else kd_obj / obj,
            }
        )
    lut_ratios = [r["lut_ratio"] for r in rows if r["lut_ratio"] is not None]
    obj_ratios = [r["objective_ratio"] for r in rows if r["objective_ratio"] is not None]
    lut_ratio = float(np.median(lut_ratios)) if lut_ratios else None
    return {
        "interpolation": "stepwise",
        "levels": rows,
        "lut_ratio": lut_ratio,
        "lut_saving": None if lut_ratio is None else 1.0 - lut_ratio,
        "objective_ratio": float(np.median(obj_ratios)) if obj_ratios else None,
        "n_lut_readings": len(lut_ratios),
        "n_objective_readings": len(obj_ratios),
    }


def gains_over_seeds(per_seed: Sequence[tuple[Sequence[Point], Sequence[Point]]]) -> dict[str, Any]:
    """:func:`kd_gains` per seed ((kd points, baseline points) of the same designs trained with that
    seed), and for ``lut_saving`` and ``objective_ratio`` the median over seeds with the [min, max]
    interval (with 3 seeds: the whole spread, no distribution assumed)."""
    gains = [kd_gains(kd, base) for kd, base in per_seed]
    out: dict[str, Any] = {"seeds": len(gains), "per_seed": gains}
    for name in ("lut_saving", "objective_ratio"):
        values = [g[name] for g in gains if g[name] is not None]
        out[name] = (
            {"median": float(np.median(values)), "lo": min(values), "hi": max(values), "n": len(values)}
            if values
            else None
        )
    return out
