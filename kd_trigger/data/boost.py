"""Lorentz boosts of jet constituents, for the robustness test (accuracy versus boost velocity).

Convention (an active boost): every constituent is given the extra velocity ``beta`` along ``axis``,
so with n the unit axis, gamma = 1 / sqrt(1 - beta^2) and p_par = p . n:
E' = gamma (E + beta p_par), p_par' = gamma (p_par + beta E), the momentum across n unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_AXES = {"x": (1.0, 0.0, 0.0), "y": (0.0, 1.0, 0.0), "z": (0.0, 0.0, 1.0)}
_UNIT_TOLERANCE = 1e-6


def _unit_axis(axis: str | Sequence[float] | np.ndarray) -> np.ndarray:
    if isinstance(axis, str):
        if axis not in _AXES:
            raise ValueError(f"boost axis {axis!r} is not one of {sorted(_AXES)} or a unit 3-vector")
        return np.asarray(_AXES[axis], dtype=np.float64)
    n = np.asarray(axis, dtype=np.float64)
    if n.shape != (3,) or not np.all(np.isfinite(n)) or abs(float(np.linalg.norm(n)) - 1.0) > _UNIT_TOLERANCE:
        raise ValueError(f"boost axis must be 'x', 'y', 'z' or a unit 3-vector, got {axis!r}")
    return n


def boost(
    constituents: np.ndarray,
    beta: float | np.ndarray,
    axis: str | Sequence[float] | np.ndarray = "x",
) -> np.ndarray:
    """Boost every constituent (E, px, py, pz) by velocity ``beta`` (0 <= beta < 1) along ``axis``.

    ``constituents`` is (..., 4). One boost for all: a float ``beta`` and an axis name or unit 3-vector.
    One boost per jet (the training augmentation, :mod:`kd_trigger.data.augment`): ``beta`` of shape (N,)
    and/or ``axis`` of shape (N, 3) unit vectors, for constituents (N, M, 4).
    Returns a new array of the input's dtype and shape; padding rows (all zero) stay exactly zero and
    beta = 0 returns the input values exactly. Computed in float64.
    """
    c = np.asarray(constituents)
    if c.shape[-1] != 4:
        raise ValueError(f"constituents must end in 4 components (E, px, py, pz), got shape {c.shape}")
    b = np.asarray(beta, dtype=np.float64)
    if not (np.all(np.isfinite(b)) and np.all(b >= 0.0) and np.all(b < 1.0)):
        raise ValueError(f"boost velocity beta must be in [0, 1), got {beta!r}")
    per_jet_axis = not isinstance(axis, str) and np.ndim(axis) == 2
    if per_jet_axis:
        n = np.asarray(axis, dtype=np.float64)
        norms = np.linalg.norm(n, axis=-1) if n.ndim == 2 and n.shape[-1] == 3 else np.zeros(0)
        if (
            n.shape != (c.shape[0], 3)
            or c.ndim != 3
            or not np.all(np.isfinite(n))
            or np.any(np.abs(norms - 1.0) > _UNIT_TOLERANCE)
        ):
            raise ValueError(f"per-jet boost axes must be (N, 3) unit vectors for (N, M, 4), got {n.shape}")
    else:
        n = _unit_axis(axis)
    if b.ndim == 1 and (c.ndim != 3 or b.shape[0] != c.shape[0]):
        raise ValueError(f"per-jet boost velocities must be (N,) for constituents (N, M, 4), got {b.shape}")
    if b.ndim > 1:
        raise ValueError(f"boost velocity beta must be a number or (N,), got shape {b.shape}")
    p4 = c.astype(np.float64)
    e = p4[..., 0]
    p = p4[..., 1:]
    # Per jet: (N,) velocities and (N, 3) axes broadcast over the jet's constituents.
    b = b[:, None] if b.ndim == 1 else b
    gamma = 1.0 / np.sqrt(1.0 - b * b)
    n_b = n[:, None, :] if per_jet_axis else n
    p_par = np.sum(p * n_b, axis=-1)
    new_e = gamma * (e + b * p_par)
    new_p_par = gamma * (p_par + b * e)
    new_p = p + (new_p_par - p_par)[..., None] * n_b
    out = np.concatenate([new_e[..., None], new_p], axis=-1)
    return out.astype(c.dtype if np.issubdtype(c.dtype, np.floating) else np.float64)
