"""Physics metrics of a tagger: accuracy, ROC AUC, background rejection, robustness under boosts.

Pure numpy / scikit-learn on (labels, logits) arrays: nothing here needs TensorFlow. The score that is
cut on is the logit difference ``l1 - l0`` (monotonic in the top probability, but without the float32
saturation of a softmax that would create ties among the best jets).

Background rejection ``1/eps_B`` at signal efficiency ``eps_S`` is read off the ROC curve with linear
interpolation between operating points, which handles the ties a quantized student produces (it is the
rejection of a randomised cut at the tied score). When no background jet survives, the rejection is
capped at the number of background jets (``eps_B >= 1/n_bkg``) and ``rejection_at_XX_capped`` is set.
Uncertainties are the standard deviation over bootstrap resamples of the test set (fixed seed).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

SIGNAL_EFFICIENCIES = (0.3, 0.5)


def class_scores(logits: np.ndarray, k: int) -> np.ndarray:
    """The one-vs-rest score of class ``k`` from (N, C) logits: the log-odds ``l_k - logsumexp(l_j, j != k)``
    (float64), monotonic in the softmax probability of ``k`` without its float32 saturation. For two
    classes it is exactly ``l1 - l0`` (k = 1) or ``l0 - l1`` (k = 0)."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2 or logits.shape[1] < 2:
        raise ValueError(f"expected logits of shape (N, C) with C >= 2, got {logits.shape}")
    if not 0 <= k < logits.shape[1]:
        raise ValueError(f"class {k} out of range for {logits.shape[1]} logits")
    others = np.delete(logits, k, axis=1)
    if others.shape[1] == 1:
        return logits[:, k] - others[:, 0]
    top = others.max(axis=1)
    rest = top + np.log(np.sum(np.exp(others - top[:, None]), axis=1))
    return logits[:, k] - rest


def scores_from_logits(logits: np.ndarray) -> np.ndarray:
    """The signal score: the one-vs-rest score of the LAST class (``l1 - l0`` for two classes, float64)."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2 or logits.shape[1] < 2:
        raise ValueError(f"expected logits of shape (N, C) with C >= 2, got {logits.shape}")
    return class_scores(logits, logits.shape[1] - 1)


def one_vs_rest(
    labels: np.ndarray, logits: np.ndarray, k: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(binary labels: 1 = class ``k``, scores of class ``k``); ``k`` None: the last class (the signal of
    two-class data, whose labels stay what they are)."""
    logits = np.asarray(logits)
    k = logits.shape[1] - 1 if k is None else k
    return (np.asarray(labels).astype(np.int64).ravel() == k).astype(np.int64), class_scores(logits, k)


def confusion_matrix(labels: np.ndarray, logits: np.ndarray) -> list[list[int]]:
    """Counts [true class][argmax class] (C x C, C = the number of logits)."""
    n = np.asarray(logits).shape[1]
    labels = np.asarray(labels).astype(np.int64).ravel()
    predicted = np.argmax(np.asarray(logits), axis=1)
    counts = np.zeros((n, n), dtype=np.int64)
    np.add.at(counts, (labels, predicted), 1)
    return counts.tolist()


def per_class_metrics(
    labels: np.ndarray,
    logits: np.ndarray,
    class_names: Sequence[str],
    efficiencies: Sequence[float] = SIGNAL_EFFICIENCIES,
) -> dict[str, dict[str, Any]]:
    """Per class, one-vs-rest: ``auc``, ``efficiency`` (fraction of its jets whose argmax is the class),
    ``rejection_at_XX`` (+ ``_capped``): 1/eps of all other classes at XX% efficiency of this class."""
    logits = np.asarray(logits)
    if logits.shape[1] != len(class_names):
        raise ValueError(f"{logits.shape[1]} logits for {len(class_names)} classes")
    labels = np.asarray(labels).astype(np.int64).ravel()
    predicted = np.argmax(logits, axis=1)
    out: dict[str, dict[str, Any]] = {}
    for k, name in enumerate(class_names):
        binary, scores = one_vs_rest(labels, logits, k)
        fpr, tpr = _roc(*_check(binary, scores))
        entry: dict[str, Any] = {
            "n_jets": int(binary.sum()),
            "auc": _auc(fpr, tpr),
            "efficiency": float(np.mean(predicted[labels == k] == k)),
        }
        for eff in efficiencies:
            point = _rejection(fpr, tpr, eff, int(np.sum(binary == 0)))
            entry[f"rejection_at_{round(eff * 100)}"] = point.rejection
            entry[f"rejection_at_{round(eff * 100)}_capped"] = point.capped
        out[name] = entry
    return out


def macro_auc(labels: np.ndarray, logits: np.ndarray) -> float:
    """The mean over classes of the one-vs-rest ROC AUC (each class's score :func:`class_scores`): the
    N-class figure the teacher's epoch is chosen on. For two classes it is the one AUC of the last class
    against the other (the two one-vs-rest AUCs are equal), computed as such so that it does not change."""
    n_classes = np.asarray(logits).shape[1]
    if n_classes == 2:
        return roc_auc(*one_vs_rest(labels, logits))
    return float(np.mean([roc_auc(*one_vs_rest(labels, logits, k)) for k in range(n_classes)]))


def accuracy(labels: np.ndarray, logits: np.ndarray) -> float:
    """Fraction of jets whose argmax class equals the label (ties go to class 0, as argmax does)."""
    labels = np.asarray(labels).astype(np.int64).ravel()
    return float(np.mean(np.argmax(np.asarray(logits), axis=1) == labels))


@dataclass(frozen=True)
class RocPoint:
    """The rejection at one signal efficiency and the (expected) number of background jets that pass."""

    efficiency: float
    rejection: float
    background_pass: float
    capped: bool


def _by_score(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(order: the jets by falling score, signal flags in that order, the position of the last jet of each
    distinct score in that order)."""
    positive = np.asarray(labels).ravel() == 1
    values = np.asarray(scores, dtype=np.float64).ravel()
    if not np.all(np.isfinite(values)):
        raise ValueError("scores contain NaN or infinity (a diverged model?)")
    order = np.argsort(values)[::-1]  # any order within a tie: only the counts at each tie's end are kept
    values = values[order]
    return order, positive[order], np.r_[np.flatnonzero(np.diff(values)), values.size - 1]


def roc_points(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(eps_B, eps_S) = (false, true positive rate) at every distinct score threshold, from (0, 0) up:
    the arrays of sklearn's ``roc_curve(..., drop_intermediate=False)``, bit for bit (tested), at half its
    cost. The study's bootstrap reads its resamples through :func:`resampled_roc_points` instead."""
    _, positive, last = _by_score(labels, scores)
    tps = np.r_[0, np.cumsum(positive)[last]]
    fps = np.r_[0, last + 1] - tps
    return fps / fps[-1], tps / tps[-1]


_roc = roc_points


def resampled_roc_points(
    labels: np.ndarray, scores: np.ndarray
) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """:func:`roc_points` of bootstrap resamples of these jets, given as multiplicities: the returned
    function takes ``weights`` (each jet's count in the resample, ``np.bincount(indices)``) and returns what
    ``roc_points(labels[indices], scores[indices])`` returns, bit for bit (tested). The jets are sorted once
    here instead of once per resample, which is what a bootstrap of a few thousand resamples spends most
    of its time on."""
    order, positive, last = _by_score(labels, scores)

    def roc(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        w = np.asarray(weights, dtype=np.int64)[order]
        drawn = np.cumsum(w)[last]  # jets drawn down to each distinct score
        signal = np.cumsum(w * positive)[last]
        kept = np.diff(drawn, prepend=0) > 0  # a score no drawn jet has is no threshold of the resample
        tps = np.r_[0, signal[kept]]
        fps = np.r_[0, drawn[kept]] - tps
        return fps / fps[-1], tps / tps[-1]

    return roc


def _auc(fpr: np.ndarray, tpr: np.ndarray) -> float:
    return float(np.trapz(tpr, fpr))


def _rejection(fpr: np.ndarray, tpr: np.ndarray, eff: float, n_bkg: int) -> RocPoint:
    # tpr is non-decreasing. Where the curve reaches eff exactly, the first such point has the lowest
    # eps_B; in between two points, interpolate linearly (a tie at the cut becomes a randomised cut).
    i = int(np.searchsorted(tpr, eff, side="left"))
    if i >= len(tpr):
        eps_b = 1.0
    elif tpr[i] == eff or i == 0:
        eps_b = float(fpr[i])
    else:
        frac = (eff - tpr[i - 1]) / (tpr[i] - tpr[i - 1])
        eps_b = float(fpr[i - 1] + frac * (fpr[i] - fpr[i - 1]))
    floor = 1.0 / max(n_bkg, 1)
    capped = eps_b < floor
    eps_b = max(eps_b, floor)
    return RocPoint(eff, 1.0 / eps_b, eps_b * n_bkg if not capped else 0.0, capped)


def _check(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels).astype(np.int64).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if labels.shape != scores.shape:
        raise ValueError(f"labels {labels.shape} and scores {scores.shape} differ in length")
    if not (np.any(labels == 1) and np.any(labels == 0)):
        raise ValueError("need both signal and background jets to compute a ROC curve")
    return labels, scores


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (equals sklearn's roc_auc_score)."""
    labels, scores = _check(labels, scores)
    return _auc(*_roc(labels, scores))


def rejection_at(labels: np.ndarray, scores: np.ndarray, efficiency: float) -> RocPoint:
    """Background rejection 1/eps_B at signal efficiency ``efficiency``."""
    labels, scores = _check(labels, scores)
    fpr, tpr = _roc(labels, scores)
    return _rejection(fpr, tpr, efficiency, int(np.sum(labels == 0)))


def resampled_roc_auc(labels: np.ndarray, scores: np.ndarray) -> Callable[[np.ndarray], float]:
    """:func:`roc_auc` of resamples given as per-jet multiplicities (see :func:`resampled_roc_points`)."""
    labels, scores = _check(labels, scores)
    roc = resampled_roc_points(labels, scores)
    return lambda weights: _auc(*roc(weights))


def resampled_rejection_at(
    labels: np.ndarray, scores: np.ndarray, efficiency: float
) -> Callable[[np.ndarray], RocPoint]:
    """:func:`rejection_at` of resamples given as per-jet multiplicities (see :func:`resampled_roc_points`)."""
    labels, scores = _check(labels, scores)
    roc = resampled_roc_points(labels, scores)
    background = labels == 0

    def point(weights: np.ndarray) -> RocPoint:
        fpr, tpr = roc(weights)
        return _rejection(fpr, tpr, efficiency, int(np.sum(np.asarray(weights)[background])))

    return point


def _bootstrap_indices(n: int, n_boot: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, n, size=(n_boot, n))


def score_metrics(
    labels: np.ndarray,
    logits: np.ndarray,
    n_bootstrap: int = 200,
    seed: int = 0,
    efficiencies: Sequence[float] = SIGNAL_EFFICIENCIES,
    class_names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """accuracy, auc (+ auc_err), rejection_at_XX (+ _err, _background_pass, _capped) for each efficiency.

    With more than two classes, accuracy is over all classes and the other keys are those of the last
    class against the rest; ``classes`` (see :func:`per_class_metrics`, keys ``class_names`` or
    ``class_0``...) and ``confusion_matrix`` are added.
    """
    multi = np.asarray(labels).astype(np.int64).ravel()
    n_classes = np.asarray(logits).shape[1]
    labels, scores = _check(*one_vs_rest(multi, logits))
    n_bkg = int(np.sum(labels == 0))
    fpr, tpr = _roc(labels, scores)
    out: dict[str, Any] = {
        "n_jets": int(labels.size),
        "n_background": n_bkg,
        "accuracy": accuracy(multi, logits),
        "auc": _auc(fpr, tpr),
    }
    if n_classes > 2:
        names = list(class_names) if class_names else [f"class_{k}" for k in range(n_classes)]
        out["classes"] = per_class_metrics(multi, logits, names, efficiencies)
        out["confusion_matrix"] = confusion_matrix(multi, logits)
    points = {eff: _rejection(fpr, tpr, eff, n_bkg) for eff in efficiencies}
    boot_auc: list[float] = []
    boot_rej: dict[float, list[float]] = {eff: [] for eff in efficiencies}
    for idx in _bootstrap_indices(labels.size, n_bootstrap, seed):
        lb, sc = labels[idx], scores[idx]
        if lb.min() == lb.max():
            continue
        bf, bt = _roc(lb, sc)
        boot_auc.append(_auc(bf, bt))
        nb = int(np.sum(lb == 0))
        for eff in efficiencies:
            boot_rej[eff].append(_rejection(bf, bt, eff, nb).rejection)
    out["auc_err"] = float(np.std(boot_auc, ddof=1)) if len(boot_auc) > 1 else math.nan
    for eff, point in points.items():
        key = f"rejection_at_{round(eff * 100)}"
        out[key] = point.rejection
        out[f"{key}_err"] = float(np.std(boot_rej[eff], ddof=1)) if len(boot_rej[eff]) > 1 else math.nan
        out[f"{key}_background_pass"] = point.background_pass
        out[f"{key}_capped"] = point.capped
    return out


def with_class_objectives(physics: dict[str, Any]) -> dict[str, Any]:
    """``physics`` (a :func:`kd_trigger.evaluate.score_metrics` dict) flat, as a scan point holds it: the
    N-class ``classes`` block becomes ``r30:<class>`` / ``r50:<class>`` (so a scan objective can name one
    class's rejection of the others) and the confusion matrix is left out."""
    classes = physics.get("classes") or {}
    flat = {k: v for k, v in physics.items() if k not in ("classes", "confusion_matrix")}
    return flat | {
        f"r{wp}:{name}": entry[f"rejection_at_{wp}"] for name, entry in classes.items() for wp in (30, 50)
    }


def paired_rejection_ratio(
    labels: np.ndarray,
    logits_new: np.ndarray,
    logits_ref: np.ndarray,
    efficiency: float,
    n_bootstrap: int = 200,
    seed: int = 0,
) -> dict[str, float]:
    """Rejection of ``new`` over ``ref`` at one efficiency, with a 68% paired-bootstrap interval.

    Both models are scored on the SAME resampled jets in each replica, so the jet-to-jet fluctuations
    that move both rejections together cancel in the ratio.
    """
    labels, s_new = one_vs_rest(labels, logits_new)
    s_ref = scores_from_logits(logits_ref)
    ratio = (
        rejection_at(labels, s_new, efficiency).rejection / rejection_at(labels, s_ref, efficiency).rejection
    )
    ratios = []
    for idx in _bootstrap_indices(labels.size, n_bootstrap, seed):
        lb = labels[idx]
        if lb.min() == lb.max():
            continue
        ratios.append(
            rejection_at(lb, s_new[idx], efficiency).rejection
            / rejection_at(lb, s_ref[idx], efficiency).rejection
        )
    low, high = np.percentile(ratios, [16, 84]) if ratios else (math.nan, math.nan)
    return {"ratio": float(ratio), "low": float(low), "high": float(high)}


def boost_entry(beta: float, labels: np.ndarray, logits: np.ndarray) -> dict[str, float]:
    """One entry of a model's ``boost`` list: accuracy and AUC of the jets boosted with velocity ``beta``."""
    return {
        "beta": float(beta),
        "accuracy": accuracy(labels, logits),
        "auc": roc_auc(*one_vs_rest(labels, logits)),
    }


def _fmt(value: float, err: float | None = None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    text = f"{value:.{digits}f}"
    if err is not None and not math.isnan(err):
        text += f" ± {err:.{digits}f}"
    return text


def summary_markdown(metrics: dict[str, Any]) -> str:
    """A short Markdown table of every model in ``metrics["models"]``."""
    models: dict[str, Any] = metrics["models"]
    lines = [
        "| model | accuracy | AUC | 1/eps_B @ 30% | 1/eps_B @ 50% | accuracy @ largest beta |",
        "|---|---|---|---|---|---|",
    ]
    for name, m in models.items():
        boost = m.get("boost") or []
        last = max(boost, key=lambda b: b["beta"]) if boost else None
        boosted = f"{last['accuracy']:.3f} (beta={last['beta']:g})" if last else "n/a"
        r30 = _fmt(m["rejection_at_30"], m.get("rejection_at_30_err"), 1)
        if m.get("rejection_at_30_capped"):
            r30 = ">= " + r30
        r50 = _fmt(m["rejection_at_50"], m.get("rejection_at_50_err"), 1)
        lines.append(
            f"| {name} | {m['accuracy']:.3f} | {_fmt(m['auc'], m.get('auc_err'), 4)} | {r30} | {r50} | {boosted} |"
        )
    text = "\n".join(lines) + "\n"
    ratios = metrics.get("students", {})
    if ratios:
        text += "\nKD / baseline rejection at 30% (68% paired-bootstrap interval):\n\n"
        for name, s in ratios.items():
            r = s.get("rejection_ratio_30")
            if r:
                text += f"- {name}: {r['ratio']:.2f} [{r['low']:.2f}, {r['high']:.2f}]\n"
        diffs = {
            n: s["accuracy_difference_points"]
            for n, s in ratios.items()
            if s.get("accuracy_difference_points")
        }
        if diffs:
            text += "\nKD - baseline accuracy in points (68% paired-bootstrap interval):\n\n"
            for name, d in diffs.items():
                text += f"- {name}: {d['points']:+.2f} [{d['low']:+.2f}, {d['high']:+.2f}]\n"
    return text
