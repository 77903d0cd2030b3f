"""Statistics over results (pure numpy): the study's KD/baseline ratios with paired-bootstrap intervals,
and the scan's Pareto fronts and choice of the best design within the budget."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from kd_trigger.contracts import BudgetBlock, Interval, RatioNoise, ScanPoint, finite_or_none
from kd_trigger.evaluate import (
    accuracy,
    one_vs_rest,
    rejection_at,
    resampled_rejection_at,
    resampled_roc_auc,
    roc_auc,
)

Metric = Callable[[np.ndarray, np.ndarray], float]


# -- the study: metrics and the paired bootstrap ----------------------------------------------------
@dataclass(frozen=True)
class ResampledMetric:
    """A :data:`Metric` that also knows its value on resamples of the same jets given as multiplicities.

    ``prepare(labels, logits)`` does the per-model work once (the scores' sort for a ROC figure, the
    correct decisions for an accuracy) and returns a function of the per-jet counts of one resample;
    its values equal ``direct(labels[indices], logits[indices])`` bit for bit (tested). The bootstrap
    evaluates every model on a few hundred resamples, and re-sorting 18,000-30,000 scores for each was
    most of a study's statistics time.
    """

    direct: Metric
    prepare: Callable[[np.ndarray, np.ndarray], Callable[[np.ndarray], float]]

    def __call__(self, labels: np.ndarray, logits: np.ndarray) -> float:
        return self.direct(labels, logits)


def _rejection_metric(efficiency: float, k: int | None = None) -> ResampledMetric:
    """Rejection of the other classes at ``efficiency`` of class ``k`` (None: the last class, the signal
    of two-class data), one-vs-rest."""

    def direct(labels: np.ndarray, logits: np.ndarray) -> float:
        return rejection_at(*one_vs_rest(labels, logits, k), efficiency).rejection

    def prepare(labels: np.ndarray, logits: np.ndarray) -> Callable[[np.ndarray], float]:
        point = resampled_rejection_at(*one_vs_rest(labels, logits, k), efficiency)
        return lambda weights: point(weights).rejection

    return ResampledMetric(direct, prepare)


def _accuracy_on_weights(labels: np.ndarray, logits: np.ndarray) -> Callable[[np.ndarray], float]:
    correct = np.argmax(np.asarray(logits), axis=1) == np.asarray(labels).astype(np.int64).ravel()
    n = correct.size
    return lambda weights: int(np.sum(np.asarray(weights)[correct])) / n


r30 = _rejection_metric(0.3)
"""Background rejection 1/eps_B at 30% signal efficiency."""

r50 = _rejection_metric(0.5)
"""Background rejection 1/eps_B at 50% signal efficiency."""

auc = ResampledMetric(
    lambda labels, logits: roc_auc(*one_vs_rest(labels, logits)),
    lambda labels, logits: resampled_roc_auc(*one_vs_rest(labels, logits)),
)
"""Area under the ROC curve."""

accuracy_metric = ResampledMetric(accuracy, _accuracy_on_weights)
"""Accuracy as a :data:`Metric`."""

METRICS: dict[str, Metric] = {"rejection_at_30": r30, "rejection_at_50": r50, "auc": auc}
"""Two-class (or last class against the rest) figures of merit, by name."""


def class_rejection(k: int, efficiency: float) -> Metric:
    """Rejection of every other class at ``efficiency`` of class ``k`` (one-vs-rest), as a :data:`Metric`."""
    return _rejection_metric(efficiency, k)


def figure_of_merit(name: str, class_names: Sequence[str]) -> Metric:
    """The figure of merit ``name`` for data of ``class_names``: a key of :data:`METRICS`, ``accuracy``, or
    ``r50:<class>`` / ``r30:<class>`` (the rejection of the other classes at 50% / 30% efficiency of the
    named class). ValueError (one line) for anything else."""
    if name == "accuracy":
        return accuracy_metric
    if name in METRICS:
        return METRICS[name]
    prefix, _, cls = name.partition(":")
    if prefix in ("r30", "r50") and cls:
        if cls not in class_names:
            raise ValueError(
                f"figure of merit {name!r}: class {cls!r} is not one of {', '.join(class_names)}"
            )
        return class_rejection(list(class_names).index(cls), int(prefix[1:]) / 100)
    raise ValueError(
        f"unknown figure of merit {name!r}; use accuracy, {', '.join(METRICS)}, r50:<class> or r30:<class>"
    )


INTERVAL_LEVEL = 0.68
"""The central coverage of every study interval."""

INTERVAL_METHODS = ("hierarchical_bootstrap", "t_log_ratio")
"""The two intervals of a KD/baseline ratio; the headline (``lo68``/``hi68``) is the wider of the two."""


def hierarchical_plan(
    n_items: int, n_seeds: int, n_boot: int, seed: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The replicas of the hierarchical bootstrap: (seed indices (n_seeds,), item indices (n_seeds, n_items)).

    Each replica draws the seeds with replacement, then for every drawn seed its own resample of the test
    jets: seed-to-seed and jet-to-jet fluctuations both enter, and they enter independently.
    """
    rng = np.random.default_rng([seed, 0xB007, 2])
    for _ in range(n_boot):
        yield rng.integers(0, n_seeds, size=n_seeds), rng.integers(0, n_items, size=(n_seeds, n_items))


def divide(kd: float, base: float) -> float:
    """``kd`` over ``base`` (NaN when the base is 0): one seed's KD/baseline comparison."""
    return kd / base if base else float("nan")


def ratio(metric: Metric, labels: np.ndarray, kd: np.ndarray, base: np.ndarray) -> float:
    """``metric`` of ``kd`` over ``metric`` of ``base`` on the same jets (NaN when the base is 0)."""
    return divide(metric(labels, kd), metric(labels, base))


class _Resample:
    """One bootstrap resample of the test jets: the drawn indices, and each jet's count among them (computed
    once, on demand, for every :class:`ResampledMetric` that reads it)."""

    def __init__(self, jets: np.ndarray, n_jets: int) -> None:
        self.jets = jets
        self.n_jets = n_jets

    @cached_property
    def weights(self) -> np.ndarray:
        return np.bincount(self.jets, minlength=self.n_jets)


def _on_resamples(metric: Metric, labels: np.ndarray, logits: np.ndarray) -> Callable[[_Resample], float]:
    """``metric`` of one model as a function of a resample of its jets."""
    if isinstance(metric, ResampledMetric):
        on_weights = metric.prepare(labels, logits)
        return lambda resample: on_weights(resample.weights)
    return lambda resample: metric(labels[resample.jets], logits[resample.jets])


def hierarchical_bootstrap(
    labels: np.ndarray,
    base: Sequence[np.ndarray],
    kd: Sequence[np.ndarray],
    metric: Metric,
    n_boot: int,
    seed: int,
    compare: Callable[[float, float], float] = divide,
) -> tuple[float, float]:
    """(lo, hi) 68% percentile interval of the mean per-seed comparison under :func:`hierarchical_plan`.

    ``compare(kd value, base value)`` is one seed's comparison of the two models' ``metric``:
    :func:`divide` by default, a difference for accuracies (kd_trigger.class_stats). Within a drawn seed
    both models see the same resampled jets (the comparison stays paired); a replica whose resample of
    some seed holds one class only is skipped. (NaN, NaN) without a finite replica.
    """
    n = len(labels)
    on_kd = [_on_resamples(metric, labels, k) for k in kd]
    on_base = [_on_resamples(metric, labels, b) for b in base]
    replicas = []
    for seeds, jets in hierarchical_plan(n, len(base), n_boot, seed):
        if any(labels[j].min() == labels[j].max() for j in jets):
            continue
        draws = [(s, _Resample(j, n)) for s, j in zip(seeds, jets, strict=True)]
        replicas.append(float(np.mean([compare(on_kd[s](r), on_base[s](r)) for s, r in draws])))
    finite = [r for r in replicas if np.isfinite(r)]
    if not finite:
        return float("nan"), float("nan")
    tail = 50 * (1 - INTERVAL_LEVEL)
    lo, hi = np.percentile(finite, [tail, 100 - tail])
    return float(lo), float(hi)


def _jet_resamples(labels: np.ndarray, n_boot: int, seed: int, stream: int) -> Iterator[np.ndarray]:
    """Bootstrap resamples of the test jets (index arrays) from the random stream (seed, ``stream``); a
    resample that holds one class only is skipped, so fewer than ``n_boot`` may come."""
    rng = np.random.default_rng([seed, 0xB007, stream])
    for _ in range(n_boot):
        jets = rng.integers(0, len(labels), size=len(labels))
        if labels[jets].min() != labels[jets].max():
            yield jets


def jet_noise(labels: np.ndarray, logits: np.ndarray, metric: Metric, n_boot: int, seed: int) -> float | None:
    """The test split's own noise on one model's figure: half the 68% percentile width of ``metric`` over
    test-jet resamples, relative to its value (0.1: +-10%). Set beside the seed-to-seed spread, it says
    whether a larger test split would narrow a study's intervals (issue 23: is R30 of ~200 on 9,000
    background jets too noisy?). None when the figure is 0 or not finite."""
    value = metric(labels, logits)
    if not np.isfinite(value) or value == 0:
        return None
    on_model = _on_resamples(metric, labels, logits)
    replicas = [
        on_model(_Resample(jets, len(labels))) for jets in _jet_resamples(labels, n_boot, seed, stream=3)
    ]
    finite = [r for r in replicas if np.isfinite(r)]
    if not finite:
        return None
    tail = 50 * (1 - INTERVAL_LEVEL)
    lo, hi = np.percentile(finite, [tail, 100 - tail])
    return float((hi - lo) / 2 / value)


def ratio_noise(
    labels: np.ndarray,
    base: Sequence[np.ndarray],
    kd: Sequence[np.ndarray],
    metric: Metric,
    n_boot: int,
    seed: int,
) -> RatioNoise | None:
    """The two parts of the uncertainty on the mean per-seed log ratio of ``metric`` (KD over baseline):
    the seeds' (std of the per-seed log ratios / sqrt(n seeds)) and the test jets' (std of that mean over
    resamples of the test jets, one resample shared by every seed and both models, as the study's seeds
    all see the same jets). A test split k times larger divides the jets' variance by k (issue 23: is the
    test split large enough?), so ``test_scale_for_quarter`` is the k at which the jets make a quarter of
    the variance (below 1: the split is already larger). None with fewer than two finite log ratios."""
    labels = np.asarray(labels).astype(np.int64).ravel()

    def mean_log(jets: np.ndarray) -> float:
        resample = _Resample(jets, len(labels))
        logs = [np.log(divide(on_kd(resample), on_base(resample))) for on_kd, on_base in models]
        return float(np.mean(logs)) if np.all(np.isfinite(logs)) else float("nan")

    per_seed = np.log([ratio(metric, labels, k, b) for b, k in zip(base, kd, strict=True)])
    if len(per_seed) < 2 or not np.all(np.isfinite(per_seed)):
        return None
    models = [
        (_on_resamples(metric, labels, k), _on_resamples(metric, labels, b))
        for b, k in zip(base, kd, strict=True)
    ]
    replicas = [mean_log(jets) for jets in _jet_resamples(labels, n_boot, seed, stream=4)]
    finite = [r for r in replicas if np.isfinite(r)]
    if len(finite) < 2:
        return None
    seeds_std = float(np.std(per_seed, ddof=1) / np.sqrt(len(per_seed)))
    jets_std = float(np.std(finite, ddof=1))
    total = seeds_std**2 + jets_std**2
    return RatioNoise(
        seeds_std=seeds_std,
        jets_std=jets_std,
        jets_share=jets_std**2 / total if total > 0 else None,
        test_scale_for_quarter=3 * jets_std**2 / seeds_std**2 if seeds_std > 0 else None,
    )


def t_log_ratio(per_seed: Sequence[float]) -> tuple[float, float, float]:
    """(geometric mean, lo, hi): the 68% Student-t interval of the mean per-seed log ratio, exponentiated.

    Only the seed-to-seed spread enters (each seed's ratio is one draw); NaN bounds with fewer than two
    finite positive ratios, NaN everywhere without any.
    """
    from scipy.stats import t as student_t

    logs = np.log([r for r in per_seed if np.isfinite(r) and r > 0])
    if len(logs) == 0:
        return float("nan"), float("nan"), float("nan")
    centre = float(np.mean(logs))
    if len(logs) < 2:
        return float(np.exp(centre)), float("nan"), float("nan")
    half = float(student_t.ppf(0.5 + INTERVAL_LEVEL / 2, len(logs) - 1)) * float(np.std(logs, ddof=1))
    half /= np.sqrt(len(logs))
    return float(np.exp(centre)), float(np.exp(centre - half)), float(np.exp(centre + half))


def _width(bounds: tuple[float, float]) -> float:
    lo, hi = bounds
    return hi - lo if np.isfinite(lo) and np.isfinite(hi) else -np.inf


def paired_ratio(
    labels: np.ndarray,
    base: Sequence[np.ndarray],
    kd: Sequence[np.ndarray],
    metric: Metric,
    n_boot: int,
    seed: int,
) -> Interval:
    """KD/baseline ``metric`` over seeds: per-seed ratios, their mean and two 68% intervals.

    ``base[s]`` and ``kd[s]`` are the two models' outputs of seed s on the same jets ``labels``. The
    intervals: :func:`hierarchical_bootstrap` (seeds, then jets within each seed) and :func:`t_log_ratio`
    (per-seed log ratios); ``lo68``/``hi68`` are the wider of the two (``method`` names it), so the
    headline covers whichever of jet noise and seed spread dominates.
    """
    labels = np.asarray(labels).astype(np.int64).ravel()
    per_seed = [ratio(metric, labels, k, b) for b, k in zip(base, kd, strict=True)]
    boot = hierarchical_bootstrap(labels, base, kd, metric, n_boot, seed)
    geometric, t_lo, t_hi = t_log_ratio(per_seed)
    method = "t_log_ratio" if _width((t_lo, t_hi)) > _width(boot) else "hierarchical_bootstrap"
    lo, hi = (t_lo, t_hi) if method == "t_log_ratio" else boot
    return Interval.model_validate(
        finite_or_none(
            {
                "mean": float(np.mean(per_seed)),
                "lo68": lo,
                "hi68": hi,
                "per_seed": [float(r) for r in per_seed],
                "method": method,
                "geometric_mean": geometric,
                "hierarchical_bootstrap": {"lo68": boot[0], "hi68": boot[1]},
                "t_log_ratio": {"lo68": t_lo, "hi68": t_hi},
            }
        )
    )


# -- the scan: Pareto fronts and the best design in budget -----------------------------------------
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


def _fitting(points: Sequence[ScanPoint]) -> list[ScanPoint]:
    """The exact, error-free points within the budget: the ones that may be promoted."""
    return [p for p in points if p.error is None and p.exact and p.budget_pass]


def _rank(p: ScanPoint, value: float | None) -> tuple[float, float, float]:
    """Sort key of a promotion: the objective ``value`` (larger is better), then fewest LUT, then lowest
    latency. Points that differ only in reuse share one trained student, hence one objective: the cheaper
    design must win the tie (it is the one on the Pareto front)."""
    physics = -np.inf if value is None or np.isnan(value) else float(value)
    cost = [p.figures.get(k) for k in ("lut", "latency_ns")]
    lut, latency = (-np.inf if c is None or np.isnan(c) else -float(c) for c in cost)
    return (physics, lut, latency)


def promote_by_kind(
    points: Sequence[ScanPoint], objective: str, per_seed: dict[str, list[float]]
) -> dict[str, dict[str, Any]]:
    """Per student kind, the design to deploy: of its exact designs within the budget, those retrained over
    seeds (``per_seed``: key -> the objective of each seed's training, the scan's own first) compete on the
    median over seeds; a kind with no retrained design in budget falls back to its one training. One
    training is noise for a Deep Sets (issue 23), so the median is what a deployment should follow.

    Returns kind -> {key, objective (the value ranked on), per_seed, rule}; a kind with no design in budget
    is absent."""
    out: dict[str, dict[str, Any]] = {}
    for kind in sorted({p.kind for p in points}):
        fitting = [p for p in _fitting(points) if p.kind == kind]
        retrained = [p for p in fitting if per_seed.get(p.key)]
        if retrained:
            medians = {p.key: float(np.median(per_seed[p.key])) for p in retrained}
            best = max(retrained, key=lambda p: _rank(p, medians[p.key]))
            out[kind] = {
                "key": best.key,
                "objective": medians[best.key],
                "per_seed": list(per_seed[best.key]),
                "rule": f"median over {len(per_seed[best.key])} seeds",
            }
        elif fitting:
            best = max(fitting, key=lambda p: _rank(p, p.physics.get(objective)))
            value = best.physics.get(objective)
            out[kind] = {"key": best.key, "objective": value, "per_seed": [value], "rule": "one training"}
    return out


def promoted_best(points: Sequence[ScanPoint], promoted: dict[str, dict[str, Any]]) -> ScanPoint:
    """Of the per-kind promoted designs, the one with the largest ranked objective (fewer LUT on a tie):
    the design copied to ``firmware/<run>/best/``."""
    by_key = {p.key: p for p in points}
    top = max(promoted.values(), key=lambda e: _rank(by_key[e["key"]], e["objective"]))
    return by_key[top["key"]]


def choose_best(points: list[ScanPoint], objective: str) -> tuple[ScanPoint | None, dict[str, Any] | None]:
    """(the exact, error-free point within the budget with the largest ``objective``, of equal ones the one
    with the fewest LUT, then the lowest latency; None when no point fits) and, only when none fits, the
    nearest miss: the point whose worst value/limit ratio over the budget rows is smallest, as
    {key, axes, violations}."""
    fitting = _fitting(points)
    best = max(fitting, key=lambda p: _rank(p, p.physics.get(objective))) if fitting else None
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


def mark_fronts(points: list[ScanPoint], objective: str) -> None:
    """Set ``pareto``, ``pareto_lut`` and ``pareto_latency`` of every exact, error-free point: on the front
    of ``objective`` (larger is better) against LUTs and latency together, and against each alone."""
    usable = [p for p in points if p.error is None and p.exact]
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
