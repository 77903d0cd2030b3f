"""Per-particle features, teacher inputs and Lorentz boosts on hand-built jets (fast, no generator)."""

from __future__ import annotations

import numpy as np
import pytest

from kd_trigger.config import PARTICLE_FEATURES
from kd_trigger.data.boost import boost
from kd_trigger.data.features import (
    TEACHER_P4_SCALE_GEV,
    jet_kinematics,
    padding_mask,
    particle_features,
    teacher_inputs,
    wrap_phi,
)


def _p4(pt: float, eta: float, phi: float, mass: float = 0.0) -> list[float]:
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    return [float(np.sqrt(px**2 + py**2 + pz**2 + mass**2)), px, py, pz]


def _jets(m: int = 5) -> np.ndarray:
    """Two jets: three and two massless/massive particles, zero-padded to m rows, pT-ordered."""
    c = np.zeros((2, m, 4), dtype=np.float64)
    c[0, :3] = [_p4(300.0, 0.5, 0.2), _p4(200.0, 0.6, 0.1, 0.14), _p4(100.0, 0.3, 0.4)]
    # The second jet sits at phi ~ pi: its particles straddle the -pi/pi seam.
    c[1, :2] = [_p4(400.0, -1.0, np.pi - 0.05, 0.5), _p4(150.0, -1.1, -np.pi + 0.05)]
    return c.astype(np.float32)


def _random_jets(n: int = 50, m: int = 30, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = np.zeros((n, m, 4))
    counts = rng.integers(1, m + 1, size=n)
    for i, k in enumerate(counts):
        pt = np.sort(rng.exponential(30.0, size=k) + 1.0)[::-1]
        eta, phi, mass = rng.normal(0, 0.3, k) + 1.0, rng.uniform(-np.pi, np.pi, k), rng.uniform(0, 1, k)
        c[i, :k] = np.array([_p4(*args) for args in zip(pt, eta, phi, mass, strict=True)])
    return c


def _masses2(c: np.ndarray) -> np.ndarray:
    return c[..., 0] ** 2 - np.sum(c[..., 1:] ** 2, axis=-1)


# -- features --------------------------------------------------------------------------------------


def test_particle_features_match_hand_computed_values():
    c = _jets()
    feats = particle_features(c, 4)
    assert feats.shape == (2, 4, len(PARTICLE_FEATURES)) and feats.dtype == np.float32
    col = {name: i for i, name in enumerate(PARTICLE_FEATURES)}
    c64 = c.astype(np.float64)
    jet = c64.sum(axis=1)
    jet_pt = np.hypot(jet[:, 1], jet[:, 2])
    jet_eta = np.arcsinh(jet[:, 3] / jet_pt)
    jet_phi = np.arctan2(jet[:, 2], jet[:, 1])
    for j, n_real in ((0, 3), (1, 2)):
        for k in range(n_real):
            e, px, py, pz = c64[j, k]
            pt = np.hypot(px, py)
            deta = np.arcsinh(pz / pt) - jet_eta[j]
            dphi = (np.arctan2(py, px) - jet_phi[j] + np.pi) % (2 * np.pi) - np.pi
            expected = {
                "log_pt": np.log(pt),
                "log_e": np.log(e),
                "pt_rel": pt / jet_pt[j],
                "e_rel": e / jet[j, 0],
                "deta": deta,
                "dphi": dphi,
                "dr": np.hypot(deta, dphi),
            }
            for name, value in expected.items():
                assert feats[j, k, col[name]] == pytest.approx(value, rel=1e-5, abs=1e-6), (j, k, name)
        assert np.all(feats[j, n_real:] == 0.0)
    # Across the seam the angular distances stay small instead of jumping by 2 pi.
    assert np.all(np.abs(feats[1, :2, col["dphi"]]) < 0.1)
    assert feats[0, 0, col["log_pt"]] == pytest.approx(np.log(300.0), rel=1e-6)


def test_jet_axis_uses_all_constituents_not_only_the_kept_ones():
    c = _jets()
    one = particle_features(c, 1)
    many = particle_features(c, 5)
    np.testing.assert_array_equal(one[:, 0], many[:, 0])
    # pt_rel of the leading particle is below 1 because the other particles count in pT_jet.
    assert one[0, 0, PARTICLE_FEATURES.index("pt_rel")] < 0.6


def test_feature_subset_order_and_padding_beyond_m():
    c = _jets(m=3)
    feats = particle_features(c, 6, features=("dr", "pt_rel"))
    full = particle_features(c, 6)
    assert feats.shape == (2, 6, 2)
    np.testing.assert_array_equal(feats[..., 0], full[..., PARTICLE_FEATURES.index("dr")])
    np.testing.assert_array_equal(feats[..., 1], full[..., PARTICLE_FEATURES.index("pt_rel")])
    assert np.all(feats[:, 3:] == 0.0)
    with pytest.raises(ValueError, match="unknown feature"):
        particle_features(c, 2, features=("mass",))


def test_pt_rel_sums_to_about_one_and_dphi_is_wrapped():
    c = _random_jets()
    feats = particle_features(c, c.shape[1])
    pt_rel = feats[..., PARTICLE_FEATURES.index("pt_rel")]
    assert np.all(pt_rel.sum(axis=1) >= 0.999)  # scalar sum of pT >= |vector sum|
    dphi = feats[..., PARTICLE_FEATURES.index("dphi")]
    assert np.all(dphi >= -np.pi) and np.all(dphi < np.pi)
    assert wrap_phi(np.array([np.pi]))[0] == pytest.approx(-np.pi)


def test_teacher_inputs_and_padding_mask():
    c = _jets()
    x = teacher_inputs(c, 4)
    assert x.shape == (2, 4, 4) and x.dtype == np.float32
    np.testing.assert_allclose(x[0, :3], c[0, :3] / TEACHER_P4_SCALE_GEV, rtol=1e-6)
    assert TEACHER_P4_SCALE_GEV == 100.0
    assert np.all(x[0, 3:] == 0.0) and np.all(x[1, 2:] == 0.0)
    mask = padding_mask(c, 7)
    np.testing.assert_array_equal(mask.sum(axis=1), [3, 2])
    assert mask.shape == (2, 7) and mask[0, 0] and not mask[0, 3]


def test_jet_kinematics_of_a_two_particle_system():
    c = np.zeros((1, 3, 4))
    c[0, 0] = [100.0, 0.0, 60.0, 0.0]
    c[0, 1] = [100.0, 0.0, -60.0, 80.0]
    pt, eta, phi, mass = jet_kinematics(c)[0]
    assert pt == pytest.approx(0.0, abs=1e-12)
    c[0, 1] = [100.0, 60.0, 0.0, 0.0]
    pt, eta, phi, mass = jet_kinematics(c)[0]
    assert pt == pytest.approx(np.hypot(60.0, 60.0))
    assert eta == pytest.approx(0.0) and phi == pytest.approx(np.pi / 4)
    assert mass == pytest.approx(np.sqrt(200.0**2 - 2 * 60.0**2))


# -- boosts ----------------------------------------------------------------------------------------


def test_boost_preserves_particle_and_jet_masses():
    c = _random_jets().astype(np.float32)
    for beta, axis in ((0.5, "x"), (0.9, "y"), (0.3, (0.6, 0.0, 0.8))):
        b = boost(c, beta, axis)
        assert b.dtype == np.float32 and b.shape == c.shape
        # Float32 storage of ~100 GeV components: masses of light particles are differences of big
        # squares, so compare m^2 against the scale E^2 rather than relatively.
        scale = c[..., 0].astype(np.float64) ** 2 + 1.0
        diff = np.abs(_masses2(b.astype(np.float64)) - _masses2(c.astype(np.float64))) / scale
        assert diff.max() < 1e-4
        jet_c = jet_kinematics(c)[:, 3]
        jet_b = jet_kinematics(b)[:, 3]
        np.testing.assert_allclose(jet_b, jet_c, rtol=1e-3, atol=1e-2)
        assert not np.allclose(b[..., 0], c[..., 0])


def test_boost_in_float64_preserves_masses_tightly():
    c = _random_jets()
    b = boost(c, 0.8, "z")
    assert b.dtype == np.float64
    np.testing.assert_allclose(_masses2(b), _masses2(c), atol=1e-8 * (c[..., 0] ** 2).max())
    np.testing.assert_allclose(jet_kinematics(b)[:, 3], jet_kinematics(c)[:, 3], rtol=1e-7)


def test_boost_beta_zero_is_exact_identity_and_padding_stays_zero():
    c = _jets()
    for axis in ("x", "z", (0.0, 0.6, 0.8)):
        np.testing.assert_array_equal(boost(c, 0.0, axis), c)
    b = boost(c, 0.7, (0.0, 0.6, 0.8))
    assert np.all(b[0, 3:] == 0.0) and np.all(b[1, 2:] == 0.0)
    assert not np.signbit(b[0, 3:]).any()


def test_boost_of_particle_at_rest_and_composition():
    rest = np.array([[[1.0, 0.0, 0.0, 0.0]]])
    beta = 0.6
    gamma = 1.0 / np.sqrt(1 - beta**2)
    np.testing.assert_allclose(boost(rest, beta, "x")[0, 0], [gamma, gamma * beta, 0.0, 0.0], rtol=1e-15)
    c = _random_jets()
    b1, b2 = 0.3, 0.5
    twice = boost(boost(c, b1, "x"), b2, "x")
    once = boost(c, (b1 + b2) / (1 + b1 * b2), "x")
    np.testing.assert_allclose(twice, once, rtol=1e-10, atol=1e-9)
    back = boost(boost(c, 0.9, (0.0, 0.0, 1.0)), 0.9, (0.0, 0.0, -1.0))
    np.testing.assert_allclose(back, c, rtol=1e-9, atol=1e-8)


@pytest.mark.parametrize("beta", [1.0, 1.5, -0.1, float("nan")])
def test_boost_rejects_bad_beta(beta):
    with pytest.raises(ValueError, match=r"beta must be in \[0, 1\)"):
        boost(_jets(), beta)


def test_boost_rejects_bad_axis():
    with pytest.raises(ValueError, match="unit 3-vector"):
        boost(_jets(), 0.5, (1.0, 1.0, 0.0))
    with pytest.raises(ValueError, match="not one of"):
        boost(_jets(), 0.5, "w")
