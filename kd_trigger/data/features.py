"""Per-particle inputs of the students and the teacher, computed from constituent 4-vectors.

All functions take ``constituents`` float (N, M, 4) = (E, px, py, pz) in GeV, pT-ordered and
zero-padded (a padded row has E = 0), are vectorised over jets and return float32. The jet axis and
the jet pT and E always come from ALL the constituents, not only the ``n_particles`` kept.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from kd_trigger.config import PARTICLE_FEATURES

TEACHER_P4_SCALE_GEV = 100.0
"""The teacher sees (E, px, py, pz) divided by this: O(1) numbers for a 600 GeV jet's constituents."""


def _leading(constituents: np.ndarray, n_particles: int) -> np.ndarray:
    """(N, n_particles, 4) float64 of the leading particles, zero rows beyond the jet's constituents."""
    c = np.asarray(constituents)
    if c.ndim != 3 or c.shape[2] != 4:
        raise ValueError(f"constituents must have shape (N, M, 4), got {c.shape}")
    if n_particles < 1:
        raise ValueError(f"n_particles must be at least 1, got {n_particles}")
    out = np.zeros((c.shape[0], n_particles, 4), dtype=np.float64)
    m = min(n_particles, c.shape[1])
    out[:, :m] = c[:, :m]
    return out


def padding_mask(constituents: np.ndarray, n_particles: int) -> np.ndarray:
    """Bool (N, n_particles): True where a real particle is (E > 0), False on padding (Keras convention)."""
    return _leading(constituents, n_particles)[:, :, 0] > 0


def teacher_inputs(constituents: np.ndarray, n_particles: int) -> np.ndarray:
    """Float32 (N, n_particles, 4): (E, px, py, pz) / TEACHER_P4_SCALE_GEV of the leading particles.

    Padding rows are exactly zero (the teacher derives its mask from E > 0).
    """
    leading = _leading(constituents, n_particles)
    leading[leading[:, :, 0] <= 0] = 0.0
    return (leading / TEACHER_P4_SCALE_GEV).astype(np.float32)


def jet_kinematics(constituents: np.ndarray) -> np.ndarray:
    """Float64 (N, 4): (pT [GeV], eta, phi, mass [GeV]) of the sum of all constituents."""
    p4 = np.sum(np.asarray(constituents), axis=1, dtype=np.float64)
    e, px, py, pz = p4[:, 0], p4[:, 1], p4[:, 2], p4[:, 3]
    pt = np.hypot(px, py)
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = np.where(pt > 0, np.arcsinh(np.divide(pz, pt, out=np.zeros_like(pz), where=pt > 0)), 0.0)
    mass = np.sqrt(np.maximum(e**2 - px**2 - py**2 - pz**2, 0.0))
    return np.stack([pt, eta, np.arctan2(py, px), mass], axis=1)


def wrap_phi(dphi: np.ndarray) -> np.ndarray:
    """Angles wrapped into [-pi, pi)."""
    return np.mod(dphi + np.pi, 2.0 * np.pi) - np.pi


def particle_features(
    constituents: np.ndarray, n_particles: int, features: Sequence[str] = PARTICLE_FEATURES
) -> np.ndarray:
    """Float32 (N, n_particles, len(features)) student features of the leading particles.

    Features (names from ``config.PARTICLE_FEATURES``): ``log_pt`` log(pT / GeV), ``log_e``
    log(E / GeV), ``pt_rel`` pT / pT_jet, ``e_rel`` E / E_jet, ``deta`` and ``dphi`` (wrapped into
    [-pi, pi)) to the jet axis, ``dr`` = hypot(deta, dphi). Padded particles get all-zero rows.
    """
    unknown = [f for f in features if f not in PARTICLE_FEATURES]
    if unknown or not features:
        raise ValueError(f"unknown feature(s) {unknown}; allowed: {list(PARTICLE_FEATURES)}")
    c = np.asarray(constituents)
    jet = np.sum(c, axis=1, dtype=np.float64)  # (N, 4): the axis uses every constituent
    jet_pt = np.hypot(jet[:, 1], jet[:, 2])
    jet_e = jet[:, 0]
    safe_jet_pt = np.where(jet_pt > 0, jet_pt, 1.0)
    jet_eta = np.arcsinh(jet[:, 3] / safe_jet_pt)
    jet_phi = np.arctan2(jet[:, 2], jet[:, 1])

    p = _leading(c, n_particles)
    real = p[:, :, 0] > 0
    pt = np.hypot(p[:, :, 1], p[:, :, 2])
    # A real particle exactly along the beam has pT = 0; guard the logs and divisions, then zero padding.
    safe_pt = np.where(pt > 0, pt, 1.0)
    safe_e = np.where(real, p[:, :, 0], 1.0)
    eta = np.arcsinh(p[:, :, 3] / safe_pt)
    phi = np.arctan2(p[:, :, 2], p[:, :, 1])
    deta = eta - jet_eta[:, None]
    dphi = wrap_phi(phi - jet_phi[:, None])

    columns = {
        "log_pt": lambda: np.log(safe_pt),
        "log_e": lambda: np.log(safe_e),
        "pt_rel": lambda: pt / np.where(jet_pt > 0, jet_pt, 1.0)[:, None],
        "e_rel": lambda: p[:, :, 0] / np.where(jet_e > 0, jet_e, 1.0)[:, None],
        "deta": lambda: deta,
        "dphi": lambda: dphi,
        "dr": lambda: np.hypot(deta, dphi),
    }
    out = np.stack([columns[name]() for name in features], axis=-1)
    out[~real] = 0.0
    return out.astype(np.float32)
