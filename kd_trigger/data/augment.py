"""The augmentation control (issue 23): random Lorentz boosts of the training jets, drawn per jet per epoch.

Does distillation teach a student boost invariance, or would showing it boosted jets do as well? The
control trains baseline and distilled students on jets boosted on the fly: in every epoch every training
jet gets a velocity beta drawn uniformly in [0, ``beta_max``) along a random transverse axis
(cos phi, sin phi, 0), phi uniform; the boost is :func:`kd_trigger.data.boost.boost` (the one the
robustness metrics use) and the student inputs are recomputed from the boosted four-vectors by the same
feature function as the unboosted ones. The draws depend only on (seed, epoch, jet index): the same
config gives the same student, whatever order the batches take.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from kd_trigger.data.boost import boost

_STREAM = 0xA116
"""Keeps the augmentation's random stream apart from the batch order's (both derive from the seed)."""


def random_boosts(n_jets: int, beta_max: float, seed: int, epoch: int) -> tuple[np.ndarray, np.ndarray]:
    """(beta (n_jets,) uniform in [0, beta_max), unit transverse axes (n_jets, 3)) of one epoch."""
    if not (np.isfinite(beta_max) and 0.0 <= beta_max < 1.0):
        raise ValueError(f"augmentation beta_max must be in [0, 1), got {beta_max!r}")
    rng = np.random.default_rng([seed, epoch, _STREAM])
    beta = rng.uniform(0.0, beta_max, size=n_jets)
    phi = rng.uniform(0.0, 2.0 * np.pi, size=n_jets)
    axes = np.stack([np.cos(phi), np.sin(phi), np.zeros(n_jets)], axis=1)
    return beta, axes


class BoostAugmenter:
    """The student inputs of the training jets, boosted afresh for every epoch.

    ``features`` turns (N, M, 4) constituents into the student's inputs (the same function that made the
    unboosted inputs, e.g. :func:`kd_trigger.models.students.student_inputs` bound to the student).

    With ``n_particles`` (the student reads only the leading ones) the constituents beyond them are kept
    as their summed four-vector in one extra row: a boost is linear, so the jet axis, pT and E the
    features take from ALL constituents are the same (to float rounding), at a fraction of the work
    (~100 constituents per jet boosted every epoch otherwise).
    """

    def __init__(
        self,
        constituents: np.ndarray,
        beta_max: float,
        seed: int,
        features: Callable[[np.ndarray], np.ndarray],
        n_particles: int | None = None,
    ) -> None:
        if not 0.0 < beta_max < 1.0:
            raise ValueError(f"augmentation beta_max must be in (0, 1), got {beta_max!r}")
        c = np.asarray(constituents)
        if n_particles is not None and c.ndim == 3 and c.shape[1] > n_particles + 1:
            rest = np.sum(c[:, n_particles:], axis=1, dtype=np.float64, keepdims=True)
            c = np.concatenate([c[:, :n_particles].astype(np.float64), rest], axis=1)
        self.constituents = c
        self.beta_max = float(beta_max)
        self.seed = int(seed)
        self.features = features

    def __len__(self) -> int:
        return len(self.constituents)

    def boosted(self, epoch: int) -> np.ndarray:
        """The training jets' constituents of ``epoch`` (1-based), each boosted by its own draw."""
        beta, axes = random_boosts(len(self.constituents), self.beta_max, self.seed, epoch)
        return boost(self.constituents, beta, axes)

    def inputs(self, epoch: int) -> np.ndarray:
        """The student inputs of ``epoch``, in the jets' order."""
        return self.features(self.boosted(epoch))
