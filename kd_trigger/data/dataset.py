"""The in-memory jet data set every stage works on, and the deterministic train/val/test split."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kd_trigger.config import SplitConfig

FORMAT_NAME = "kd_trigger.jets"
"""Value of the ``format`` attribute of our own HDF5 files."""
FORMAT_VERSION = 1

SPLIT_CODES = {"train": 0, "val": 1, "test": 2}
"""``split`` values: 0 = train, 1 = val, 2 = test."""


@dataclass
class JetDataset:
    """Jets as arrays: one row per jet.

    ``constituents`` float32 (N, M, 4) = (E, px, py, pz) in GeV, pT-ordered, zero-padded;
    ``n_constituents`` int32 (N,); ``is_signal`` int8 (N,) 1 = top, 0 = QCD; ``split`` uint8 (N,)
    0 = train, 1 = val, 2 = test. ``jet_p4`` (pt, eta, phi, mass) and ``truth_top_p4``
    (E, px, py, pz; zeros for QCD) are kept when the file has them.
    """

    constituents: np.ndarray
    n_constituents: np.ndarray
    is_signal: np.ndarray
    split: np.ndarray
    jet_p4: np.ndarray | None = None
    truth_top_p4: np.ndarray | None = None
    source: str = field(default="")
    """Where the jets came from (a file path and its layout), for log lines."""

    def __len__(self) -> int:
        return int(self.constituents.shape[0])

    @property
    def max_constituents(self) -> int:
        return int(self.constituents.shape[1])

    def select(self, split: str) -> JetDataset:
        """The jets of one split: ``"train"``, ``"val"`` or ``"test"``."""
        if split not in SPLIT_CODES:
            raise ValueError(f"unknown split {split!r}; use one of {list(SPLIT_CODES)}")
        keep = self.split == SPLIT_CODES[split]
        return JetDataset(
            constituents=self.constituents[keep],
            n_constituents=self.n_constituents[keep],
            is_signal=self.is_signal[keep],
            split=self.split[keep],
            jet_p4=None if self.jet_p4 is None else self.jet_p4[keep],
            truth_top_p4=None if self.truth_top_p4 is None else self.truth_top_p4[keep],
            source=f"{self.source} [{split}]",
        )

    def counts(self) -> dict[str, dict[str, int]]:
        """Jets per split and class: ``{"train": {"top": n, "qcd": m}, ...}``."""
        return {
            name: {
                "top": int(np.sum((self.split == code) & (self.is_signal == 1))),
                "qcd": int(np.sum((self.split == code) & (self.is_signal == 0))),
            }
            for name, code in SPLIT_CODES.items()
        }

    def median_mass(self, label: int) -> float | None:
        """Median jet mass [GeV] of one class (None without jet kinematics or jets of that class)."""
        if self.jet_p4 is None or not np.any(self.is_signal == label):
            return None
        return round(float(np.median(self.jet_p4[self.is_signal == label, 3])), 2)

    def summary(self) -> str:
        """One line: jet counts per class and per split."""
        n_top = int(np.sum(self.is_signal == 1))
        counts = ", ".join(f"{name} {int(np.sum(self.split == code))}" for name, code in SPLIT_CODES.items())
        return (
            f"{len(self)} jets ({n_top} top, {len(self) - n_top} QCD; {counts}), "
            f"up to {self.max_constituents} constituents, mean {float(np.mean(self.n_constituents)):.1f}"
            if len(self)
            else "0 jets"
        )


def assign_split(is_signal: np.ndarray, fractions: SplitConfig, seed: int) -> np.ndarray:
    """A deterministic split (uint8 codes) from ``seed``, stratified by class.

    Within each class the train and val counts are ``round(n * fraction)`` (test takes the rest),
    so both classes keep the configured fractions exactly and every split stays balanced.
    """
    labels = np.asarray(is_signal)
    split = np.empty(labels.shape[0], dtype=np.uint8)
    rng = np.random.default_rng([seed, 0x5B117])
    for label in (0, 1):
        rows = np.flatnonzero(labels == label)
        n = rows.size
        n_train = int(round(n * fractions.train))
        n_val = min(int(round(n * fractions.val)), n - n_train)
        codes = np.full(n, SPLIT_CODES["test"], dtype=np.uint8)
        codes[:n_train] = SPLIT_CODES["train"]
        codes[n_train : n_train + n_val] = SPLIT_CODES["val"]
        split[rows] = codes[rng.permutation(n)]
    return split
