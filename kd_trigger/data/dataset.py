"""The in-memory jet data set every stage works on, and the deterministic train/val/test split."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kd_trigger.config import SplitConfig
from kd_trigger.config.data import DEFAULT_CLASSES
from kd_trigger.errors import DataError

FORMAT_NAME = "kd_trigger.jets"
"""Value of the ``format`` attribute of our own HDF5 files."""
FORMAT_VERSION = 1

SPLIT_CODES = {"train": 0, "val": 1, "test": 2}
"""``split`` values: 0 = train, 1 = val, 2 = test."""


@dataclass
class JetDataset:
    """Jets as arrays: one row per jet.

    ``constituents`` float32 (N, M, 4) = (E, px, py, pz) in GeV, pT-ordered, zero-padded;
    ``n_constituents`` int32 (N,); ``labels`` int8 (N,), the index of each jet's class in
    ``class_names`` (default ``("qcd", "top")``: 0 = QCD, 1 = top); ``split`` uint8 (N,)
    0 = train, 1 = val, 2 = test. ``jet_p4`` (pt, eta, phi, mass) and ``truth_top_p4``
    (E, px, py, pz; zeros but for top jets) are kept when the file has them.

    ``is_signal`` (int8, 1 = the second class) is the labels of two-class data; with more classes it
    raises :class:`DataError`, so a stage that knows only two classes refuses N-class data in one line.
    """

    constituents: np.ndarray
    n_constituents: np.ndarray
    labels: np.ndarray
    split: np.ndarray
    jet_p4: np.ndarray | None = None
    truth_top_p4: np.ndarray | None = None
    source: str = field(default="")
    """Where the jets came from (a file path and its layout), for log lines."""
    class_names: tuple[str, ...] = DEFAULT_CLASSES
    """The class of each label value, in label order."""

    def __len__(self) -> int:
        return int(self.constituents.shape[0])

    @property
    def max_constituents(self) -> int:
        return int(self.constituents.shape[1])

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def is_signal(self) -> np.ndarray:
        """int8 (N,) 1 = signal (the second class), 0 = background: the labels of two-class data."""
        if self.n_classes != 2:
            raise DataError(
                f"{self.source or 'the data'} holds {self.n_classes} classes ({', '.join(self.class_names)}); "
                "this step handles two classes only (is_signal)"
            )
        return self.labels

    def select(self, split: str) -> JetDataset:
        """The jets of one split: ``"train"``, ``"val"`` or ``"test"``."""
        if split not in SPLIT_CODES:
            raise ValueError(f"unknown split {split!r}; use one of {list(SPLIT_CODES)}")
        keep = self.split == SPLIT_CODES[split]
        return JetDataset(
            constituents=self.constituents[keep],
            n_constituents=self.n_constituents[keep],
            labels=self.labels[keep],
            split=self.split[keep],
            jet_p4=None if self.jet_p4 is None else self.jet_p4[keep],
            truth_top_p4=None if self.truth_top_p4 is None else self.truth_top_p4[keep],
            source=f"{self.source} [{split}]",
            class_names=self.class_names,
        )

    def counts(self) -> dict[str, dict[str, int]]:
        """Jets per split and class, classes from the last label down: ``{"train": {"top": n, "qcd": m}, ...}``."""
        return {
            name: {
                class_name: int(np.sum((self.split == code) & (self.labels == label)))
                for label, class_name in reversed(list(enumerate(self.class_names)))
            }
            for name, code in SPLIT_CODES.items()
        }

    def median_mass(self, label: int) -> float | None:
        """Median jet mass [GeV] of one class (None without jet kinematics or jets of that class)."""
        if self.jet_p4 is None or not np.any(self.labels == label):
            return None
        return round(float(np.median(self.jet_p4[self.labels == label, 3])), 2)

    def summary(self) -> str:
        """One line: jet counts per class and per split."""
        if not len(self):
            return "0 jets"
        counts = ", ".join(f"{name} {int(np.sum(self.split == code))}" for name, code in SPLIT_CODES.items())
        if self.class_names == DEFAULT_CLASSES:
            n_top = int(np.sum(self.labels == 1))
            by_class = f"{n_top} top, {len(self) - n_top} QCD"
        else:
            by_class = ", ".join(
                f"{int(np.sum(self.labels == label))} {name}" for label, name in enumerate(self.class_names)
            )
        return (
            f"{len(self)} jets ({by_class}; {counts}), "
            f"up to {self.max_constituents} constituents, mean {float(np.mean(self.n_constituents)):.1f}"
        )


def assign_split(labels: np.ndarray, fractions: SplitConfig, seed: int) -> np.ndarray:
    """A deterministic split (uint8 codes) from ``seed``, stratified by class (label 0, 1, 2, ...).

    Within each class the train and val counts are ``round(n * fraction)`` (test takes the rest),
    so every class keeps the configured fractions exactly and every split stays balanced.
    """
    labels = np.asarray(labels)
    split = np.empty(labels.shape[0], dtype=np.uint8)
    rng = np.random.default_rng([seed, 0x5B117])
    # Labels in order, 0 and 1 always: two-class splits stay what they were before N classes.
    n_labels = max(2, int(labels.max()) + 1 if labels.size else 0)
    for label in range(n_labels):
        rows = np.flatnonzero(labels == label)
        n = rows.size
        n_train = int(round(n * fractions.train))
        n_val = min(int(round(n * fractions.val)), n - n_train)
        codes = np.full(n, SPLIT_CODES["test"], dtype=np.uint8)
        codes[:n_train] = SPLIT_CODES["train"]
        codes[n_train : n_train + n_val] = SPLIT_CODES["val"]
        split[rows] = codes[rng.permutation(n)]
    return split
