"""How much of a study's KD/baseline R30 uncertainty comes from the test jets, and how large a test split
would make it small (issue 23: "is an R30 of ~200 on 9,000 background jets too noisy?").

Reads a finished study (its study.json and study-cache/, no training, no TensorFlow model run) and, for
one student, splits the uncertainty of the mean log(R30_KD / R30_baseline) over seeds in two with
:func:`kd_trigger.stats.ratio_noise` (seeds; test jets), as studies now record it in study.json
(``kd_over_baseline.rejection_at_30.noise``): for studies run before that. A test split k times larger
divides the jets' variance by k; the script prints the total for a few k, the k at which the jets make up
a quarter of the variance, and the test split at which one model's R30 is known to +-10%.

    .venv/bin/python benchmarks/test_split_noise.py configs/study_ds_patience.yaml deepsets [--boot 400]

The config must be the study's (its data and split); the cache files are matched to the study's arms by
their test AUC, so edits to the code since the study ran do not matter.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kd_trigger.config.loading import load_config  # noqa: E402
from kd_trigger.contracts import SeedFigures, Study, read_contract  # noqa: E402
from kd_trigger.data.readers import load_jets  # noqa: E402
from kd_trigger.stats import auc, jet_noise, r30, ratio_noise  # noqa: E402


def _arms(
    study: Study, student: str, cache: Path, labels: np.ndarray
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Test logits of the baseline and chosen-KD copies, in seed order, matched by AUC to study.json."""
    entry = study.students[student]
    by_auc = {}
    for f in sorted(cache.glob("*.npz")):
        logits = np.load(f)["test"]
        by_auc[round(auc(labels, logits), 12)] = logits

    def pick(rows: list[SeedFigures]) -> list[np.ndarray]:
        out = []
        for row in rows:
            key = round(row.auc, 12)
            if key not in by_auc:
                raise SystemExit(
                    f"no cached training of {student} seed {row.seed} (AUC {row.auc}) in {cache}"
                )
            out.append(by_auc[key])
        return out

    return pick(entry.baseline), pick(entry.chosen_setting().kd)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("student")
    parser.add_argument("--boot", type=int, default=400, help="test-jet resamples")
    args = parser.parse_args()
    cfg = load_config(args.config)
    run = Path(cfg.artifacts)
    study = read_contract(run / "study.json", Study, "make study CONFIG=...")
    labels = load_jets(cfg.data_path, cfg).select("test").labels.astype(np.int64)
    base, kd = _arms(study, args.student, run / "study-cache", labels)
    n = len(base)
    per_seed = [r30(labels, k) / r30(labels, b) for b, k in zip(base, kd, strict=True)]
    noise = ratio_noise(labels, base, kd, r30, args.boot, cfg.run.seed)
    if noise is None:
        raise SystemExit("fewer than two finite per-seed ratios: nothing to split")
    one_model = np.median([jet_noise(labels, m, r30, args.boot, cfg.run.seed) for m in (*base, *kd)])
    seeds_sd, jets_sd = noise.seeds_std or 0.0, noise.jets_std or 0.0

    n_bkg = int(np.sum(labels == 0))
    print(f"{args.student}: {n} seeds, test split {len(labels):,} jets ({n_bkg:,} background)")
    print(f"per-seed KD/baseline R30: {' / '.join(f'{r:.2f}' for r in per_seed)}")
    print(
        f"one model's R30, test-jet noise (half the 68% width, relative; median of the models): {one_model:.3f}"
    )
    print(f"mean log ratio: std from the seeds {seeds_sd:.3f}, from the test jets {jets_sd:.3f}")
    print(f"  the jets' share of the variance: {noise.jets_share:.0%}")
    for k in (1, 2, 4, 8):
        total = math.sqrt(seeds_sd**2 + jets_sd**2 / k)
        print(f"  test split x{k} ({k * len(labels):,} jets): total std {total:.3f} (x{math.exp(total):.3f})")
    k_quarter = noise.test_scale_for_quarter or float("inf")
    print(
        f"  the jets fall to a quarter of the variance at a test split x{k_quarter:.1f} ({k_quarter * len(labels):,.0f} jets)"
    )
    k_one = (one_model / 0.10) ** 2
    print(f"  one model's R30 to +-10%: a test split x{k_one:.1f} ({k_one * n_bkg:,.0f} background jets)")


if __name__ == "__main__":
    main()
