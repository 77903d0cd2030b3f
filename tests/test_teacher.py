"""Teachers: Lorentz symmetry with derived tolerances, masking, batch norm, save/load, the spec, training,
bring-your-own checks and the teacher stage.

The symmetry tolerances are derived, never measured (TensorFlow's float32 numerics differ between CPUs,
oneDNN on or off): :func:`_rounding_bound` is a first-order bound of the rounding error of one evaluation,
computed with automatic differentiation of the float64 copy of the network (see its docstring).
"""

from __future__ import annotations

import json
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import tensorflow as tf
from pydantic import ValidationError
from tensorflow import keras

import kd_trigger.models.teacher as tm
from kd_trigger.config import PARTICLE_FEATURES, TeacherSpec, parse_config
from kd_trigger.data.boost import boost
from kd_trigger.data.features import TEACHER_P4_SCALE_GEV, particle_features, teacher_inputs
from kd_trigger.data.readers import load_jets
from kd_trigger.distill.teacher_train import selection_name, train_teacher
from kd_trigger.distill.teachers import ensemble_logits, load_teacher, load_teacher_file, teacher_dir
from kd_trigger.errors import ModelError
from kd_trigger.evaluate import macro_auc, per_class_metrics, roc_auc, scores_from_logits
from kd_trigger.models.teacher import (
    CUSTOM_OBJECTS,
    LorentzBlock,
    MinkowskiNeighbours,
    build_teacher,
    ensemble_teacher,
    teacher_input_array,
)

N_PARTICLES = 16
OBLIQUE_AXIS = np.array([1.0, 2.0, -2.0]) / 3.0
UNIT_ROUNDOFF = {"float32": 2.0**-24, "float64": 2.0**-53}
"""u = eps / 2: a correctly rounded operation has relative error <= u."""

SIZES = {
    "dense16": {"n_particles": 16, "neighbours": None},
    "sparse64": {"n_particles": 64, "neighbours": 8},
}
"""Every supported LorentzNet size: the dense 16-particle and the sparse (k = 8) 64-particle network."""

LD = np.longdouble


# ---------------------------------------------------------------- jets and exact transformations
def _jets(rng: np.random.Generator, n_jets: int, max_real: int, n_rows: int) -> np.ndarray:
    """Jet-like constituents (E, px, py, pz) in GeV: a 600 GeV jet split into massive and massless
    particles around a random axis, pT-ordered, zero-padded to ``n_rows``. The first two jets have 4 and
    8 particles (fewer than k + 1 = 9: the sparse network then has padding among the neighbours)."""
    out = np.zeros((n_jets, n_rows, 4))
    for k in range(n_jets):
        n = [4, 8][k] if k < 2 else int(rng.integers(3, max_real + 1))
        pt = np.sort(rng.dirichlet(np.full(n, 0.7)) * 600.0)[::-1] + 0.5
        eta = rng.uniform(-1.5, 1.5) + rng.normal(0, 0.15, n)
        phi = rng.uniform(-np.pi, np.pi) + rng.normal(0, 0.15, n)
        mass = np.where(rng.random(n) < 0.6, 0.13957, 0.0)
        px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
        out[k, :n] = np.stack([np.sqrt(px**2 + py**2 + pz**2 + mass**2), px, py, pz], axis=1)
    return out


def _boost(c: np.ndarray, beta: float, axis: np.ndarray | str) -> np.ndarray:
    """Active boost (as kd_trigger.data.boost) computed in long double, so the transformed jets are exact
    to ~2^-64 and a float64 or float32 test sees one rounding of the exact values, nothing more."""
    n = {"x": np.array([1.0, 0.0, 0.0])}.get(axis, axis) if isinstance(axis, str) else axis
    n = np.asarray(n, dtype=LD)
    n = n / np.sqrt(np.sum(n * n))
    p4 = np.asarray(c, dtype=LD)
    beta = LD(beta)
    gamma = 1 / np.sqrt(1 - beta * beta)
    p_par = p4[..., 1:] @ n
    e_new = gamma * (p4[..., 0] + beta * p_par)
    p_new = p4[..., 1:] + (gamma * (p_par + beta * p4[..., 0]) - p_par)[..., None] * n
    return np.concatenate([e_new[..., None], p_new], axis=-1)


def _rotate(c: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random proper rotation of every momentum (Rodrigues' formula in long double: orthogonal to ~2^-64)."""
    axis = np.asarray(rng.normal(size=3), dtype=LD)
    axis = axis / np.sqrt(np.sum(axis * axis))
    angle = LD(rng.uniform(0.0, 2.0 * np.pi))
    cross = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]], dtype=LD)
    rot = (
        np.cos(angle) * np.eye(3, dtype=LD)
        + np.sin(angle) * cross
        + (1 - np.cos(angle)) * np.outer(axis, axis)
    )
    out = np.asarray(c, dtype=LD).copy()
    out[..., 1:] = out[..., 1:] @ rot.T
    return out


TRANSFORMS = {
    "boost_x": lambda c, rng: _boost(c, 0.6, "x"),
    "boost_oblique": lambda c, rng: _boost(c, 0.6, OBLIQUE_AXIS),
    "rotation": lambda c, rng: _rotate(c, rng),
    "rotation_then_boost": lambda c, rng: _boost(_rotate(c, rng), 0.8, OBLIQUE_AXIS),
}


def _inputs(constituents: np.ndarray, n_particles: int, dtype: str) -> np.ndarray:
    """The scaled 4-vectors (as teacher_inputs), rounded once from the (long double) exact values."""
    return np.asarray(
        np.asarray(constituents, dtype=LD)[:, :n_particles] / LD(TEACHER_P4_SCALE_GEV), dtype=dtype
    )


@pytest.fixture(scope="module", autouse=True)
def _long_double_is_wider() -> None:
    if np.finfo(LD).eps > 2.0**-60:
        pytest.skip("long double is no wider than float64 here: the exact transformations need it")


@pytest.fixture(scope="module")
def jets() -> dict[str, np.ndarray]:
    return {
        size: _jets(np.random.default_rng(11), 24, max_real=s["n_particles"], n_rows=s["n_particles"])
        for size, s in SIZES.items()
    }


# ---------------------------------------------------------------- models
def _spec(size: str, **overrides) -> TeacherSpec:
    fields = {"name": "t", "n_layers": 3, "hidden": 8, "dropout": 0.0, "batch_norm": True, **SIZES[size]}
    return TeacherSpec(**{**fields, **overrides})


def _symmetric_model(
    size: str, dtype: str = "float64", c_weight: float = 0.5, n_particles: int | None = None
):
    """A small teacher whose 4-vector updates are large enough to matter and whose batch norms are not the
    identity (random moving statistics, scales and offsets): the default initialisation makes both
    trivial, and a symmetry test must exercise them. Same weights for every dtype and padding size."""
    keras.utils.set_random_seed(3)
    reference = build_teacher(_spec(size, c_weight=c_weight), dtype="float64")
    rng = np.random.default_rng(5)
    for layer in reference.layers:
        if not isinstance(layer, LorentzBlock):
            continue
        if layer.update_x:
            kernel = layer.vec_weight.kernel
            kernel.assign(rng.normal(0, 1.0, kernel.shape))
        for bn in (layer.edge_bn, layer.node_bn):
            shape = bn.moving_mean.shape
            bn.moving_mean.assign(rng.normal(0, 0.5, shape))
            bn.moving_variance.assign(rng.uniform(0.5, 2.0, shape))
            bn.gamma.assign(rng.uniform(0.5, 1.5, shape))
            bn.beta.assign(rng.normal(0, 0.3, shape))
    if dtype == "float64" and n_particles is None:
        return reference
    n = n_particles if n_particles is not None else SIZES[size]["n_particles"]
    model = build_teacher(_spec(size, c_weight=c_weight, n_particles=n), dtype=dtype)
    model.set_weights(reference.get_weights())
    return model


def _logits(model: keras.Model, x: np.ndarray, training: bool = False) -> np.ndarray:
    """A direct call: ``predict`` would cast float64 arrays to float32 before the float64 model sees them."""
    return np.asarray(model(tf.convert_to_tensor(x), training=training), dtype=np.float64)


# ---------------------------------------------------------------- the derived rounding bound
def _dense_layers(model: keras.Model) -> list[keras.layers.Dense]:
    return [m for m in model.submodules if isinstance(m, keras.layers.Dense)]


def _rounding_bound(model64: keras.Model, x: np.ndarray, u: float) -> np.ndarray:
    """(N, 2): a first-order bound of |logits computed with unit roundoff u - exact logits| at inputs ``x``
    that are one rounding of exact 4-vectors.

    Error model (Higham, "Accuracy and Stability of Numerical Algorithms", ch. 3: a sum or dot product of
    m terms has error <= gamma_m = m u / (1 - m u) <= (m + 1) u times the sum of the absolute terms):

    * input: |dx_k| <= u (|x_k| + 2^-10 x_0) (one rounding; the 2^-10 x_0 covers the long-double error of
      the exact transformations, 2^-64 (E + |p|), relative to a tiny component);
    * jet sum J = sum_i p_i: |dJ_k| <= n u sum_i |p_ik|;
    * Minkowski product a.b (4 products, 3 sums): |dz| <= 5 u sum_k |a_k b_k|, plus 2 u sum_k a_k^2 for
      a.a, whose operand (x_i - x_j, or J) was rounded just before;
    * 4-vector update x + c/count sum_j w_ij (x_i - x_j) over m edges:
      |dx_k| <= (m + 3) u c/count (|x_k| sum_j |w_ij| + sum_j |w_ij| |x_jk|) + u |x_new,k|.

    These are the operations where rounding meets cancellation: a Minkowski product of nearly light-like,
    nearly collinear vectors is ~theta^2 E_a E_b while its terms are ~E_a E_b, so its relative error is
    u times the condition number kappa = sum_k |a_k b_k| / |a.b| ~ 4 / theta^2 (1e4-1e6 for jets). Each
    bound is weighted with |d logit / d value| from automatic differentiation of the float64 network at
    ``x`` (first order; the second order is O((u kappa)^2)).

    The rest of the network (dense layers, batch norm, ReLU, sigmoid, log1p, sums over neighbours,
    pooling) has no such cancellation: each stage's relative error is <= gamma of its fan-in, and D =
    sum over Dense layers of (fan-in + 3) plus 2 n per block (the neighbour sums and pooling) bounds
    their sum along the network, relative to the scale of the logits' terms |z| |W| + |b| of the output
    layer. Nothing here is measured: the bound needs u, the weights and the inputs.
    """
    x = tf.convert_to_tensor(x, dtype=tf.float64)
    terms: list[tuple[tf.Tensor, tf.Tensor]] = []
    dot, jet, update = tm.minkowski_dot, tm.jet_momentum, tm.equivariant_update
    n_rows = int(x.shape[1])

    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)

        def watched(value: tf.Tensor, bound: tf.Tensor) -> tf.Tensor:
            delta = tf.zeros_like(value)
            tape.watch(delta)
            terms.append((delta, bound))
            return value + delta

        def dot_hook(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
            bound = 5 * u * tf.reduce_sum(tf.abs(a * b), axis=-1)
            if a is b:
                bound += 2 * u * tf.reduce_sum(a * a, axis=-1)
            return watched(dot(a, b), bound)

        def jet_hook(p4: tf.Tensor) -> tf.Tensor:
            bound = n_rows * u * tf.reduce_sum(tf.abs(p4), axis=1, keepdims=True)
            return watched(jet(p4), bound)

        def update_hook(x_, x_j, weight, count, mask, c_weight):
            new = update(x_, x_j, weight, count, mask, c_weight)
            w = tf.abs(weight)
            if x_j.shape[1] == 1:
                wx = tf.einsum("bij,bjd->bid", w, tf.abs(x_j[:, 0]))
            else:
                wx = tf.einsum("bij,bijd->bid", w, tf.abs(x_j))
            m = int(weight.shape[-1])
            spread = tf.abs(x_) * tf.reduce_sum(w, axis=2, keepdims=True) + wx
            bound = (m + 3) * u * c_weight / count * mask * spread + u * tf.abs(new)
            return watched(new, bound)

        with (
            mock.patch.object(tm, "minkowski_dot", dot_hook),
            mock.patch.object(tm, "jet_momentum", jet_hook),
            mock.patch.object(tm, "equivariant_update", update_hook),
        ):
            logits = model64(x, training=False)
        outputs = [tf.reduce_sum(logits[:, c]) for c in range(2)]

    n_jets = int(x.shape[0])
    bound = np.zeros((n_jets, 2))
    x_abs = np.abs(x.numpy())
    input_bound = u * (x_abs + 2.0**-10 * x_abs[..., :1])
    for c in range(2):
        grads = tape.gradient(outputs[c], [d for d, _ in terms] + [x])
        for g, (_, b) in zip(grads[:-1], terms, strict=True):
            if g is not None:
                bound[:, c] += np.abs(g.numpy() * b.numpy()).reshape(n_jets, -1).sum(axis=1)
        bound[:, c] += np.abs(grads[-1].numpy() * input_bound).reshape(n_jets, -1).sum(axis=1)

    # The well-conditioned rest of the network.
    dense = _dense_layers(model64)
    depth = sum(int(d.kernel.shape[0]) + 3 for d in dense) + 2 * n_rows * (
        sum(isinstance(layer, LorentzBlock) for layer in model64.layers) + 1
    )
    head = keras.Model(model64.input, model64.get_layer("logits").input)
    out = model64.get_layer("logits")
    z = np.abs(np.asarray(head(x, training=False)))
    scale = z @ np.abs(out.kernel.numpy()) + np.abs(out.bias.numpy())
    return bound + depth * u * scale


def _same_neighbours(model: keras.Model, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N,) bool: the sparse model's neighbour sets agree for every real particle of the jet. (The choice
    is discrete: where two products are closer than their rounding, float32 may pick differently on the
    boosted jet, an O(1) change that no rounding bound describes. That is a property of every k-NN graph,
    not a broken symmetry; float64 must agree everywhere.)"""
    layer = next(layer for layer in model.layers if isinstance(layer, MinkowskiNeighbours))
    ia, ib = (
        np.sort(layer(tf.convert_to_tensor(a)).numpy(), axis=-1),
        np.sort(layer(tf.convert_to_tensor(b)).numpy(), axis=-1),
    )
    real = a[..., 0] > 0
    return np.all((ia == ib).all(axis=-1) | ~real, axis=1)


# ---------------------------------------------------------------- symmetry
@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("transform", list(TRANSFORMS))
def test_output_is_lorentz_invariant_in_float64(jets, size, transform):
    """Exact symmetry: |logits(x) - logits(Lambda x)| <= bound(x) + bound(Lambda x) (u = 2^-53), the
    derived float64 rounding bound of :func:`_rounding_bound`, with large 4-vector updates and
    non-trivial batch norms. The bound is a few u times the products' condition numbers (~1e-11 here)."""
    c = jets[size]
    moved = TRANSFORMS[transform](c, np.random.default_rng(7))
    n = SIZES[size]["n_particles"]
    model = _symmetric_model(size)
    x, y = _inputs(c, n, "float64"), _inputs(moved, n, "float64")
    if SIZES[size]["neighbours"] is not None:
        assert _same_neighbours(model, x, y).all()
    u = UNIT_ROUNDOFF["float64"]
    tolerance = _rounding_bound(model, x, u) + _rounding_bound(model, y, u)
    change = np.abs(_logits(model, x) - _logits(model, y))
    assert np.all(change <= tolerance), float(np.max(change / tolerance))
    assert np.max(tolerance) < 1e-6 * np.max(np.abs(_logits(model, x)))  # the bound is not vacuous


@pytest.mark.parametrize("size", list(SIZES))
def test_output_is_lorentz_invariant_in_float32(jets, size):
    """The float32 teacher: invariant up to float32 rounding, |logits32(x) - logits32(Lambda x)| <=
    bound(x) + bound(Lambda x) with u = 2^-24 (:func:`_rounding_bound`: u times the condition of the
    Minkowski products, |a0 b0| + |a.b| over |a0 b0 - a.b|, weighted by the network's sensitivity, plus
    the well-conditioned rest), the same on every CPU and with oneDNN on or off. The 4-vector updates are
    LorentzNet's size (c = 1e-3). For the sparse network only jets whose k-NN graph float32 builds
    identically on both are compared (:func:`_same_neighbours`); at least 2/3 of them must be."""
    c = jets[size]
    moved = TRANSFORMS["rotation_then_boost"](c, np.random.default_rng(2))
    n = SIZES[size]["n_particles"]
    model64 = _symmetric_model(size, c_weight=1e-3)
    model32 = _symmetric_model(size, "float32", c_weight=1e-3)
    x, y = _inputs(c, n, "float32"), _inputs(moved, n, "float32")
    keep = np.ones(len(x), dtype=bool)
    if SIZES[size]["neighbours"] is not None:
        keep = _same_neighbours(model32, x, y)
        assert keep.mean() >= 2 / 3
    u = UNIT_ROUNDOFF["float32"]
    tolerance = _rounding_bound(model64, x.astype(np.float64), u) + _rounding_bound(
        model64, y.astype(np.float64), u
    )
    change = np.abs(_logits(model32, x) - _logits(model32, y))
    assert np.all(change[keep] <= tolerance[keep]), float(np.max(change[keep] / tolerance[keep]))


@pytest.mark.parametrize("size", list(SIZES))
def test_symmetry_check_fails_when_the_symmetry_is_broken(jets, size):
    """Negative controls: the same comparison sees a partial boost and a non-invariant network."""
    c = jets[size]
    n = SIZES[size]["n_particles"]
    model = _symmetric_model(size)
    partial = np.asarray(c, dtype=LD).copy()
    partial[:, ::2] = _boost(c[:, ::2], 0.6, "x")  # every other particle only: not a symmetry
    x, y = _inputs(c, n, "float64"), _inputs(partial, n, "float64")
    change = np.abs(_logits(model, x) - _logits(model, y)).max(axis=1)
    # Even the float32 tolerance (the loosest the symmetry tests use) sees it on most jets.
    u = UNIT_ROUNDOFF["float32"]
    tolerance = (_rounding_bound(model, x, u) + _rounding_bound(model, y, u)).max(axis=1)
    assert np.mean(change > tolerance) > 0.75

    keras.utils.set_random_seed(4)
    raw = keras.Sequential([keras.Input((n, 4)), keras.layers.Flatten(), keras.layers.Dense(2)], name="raw")
    raw_change = np.abs(_logits(raw, x) - _logits(raw, _inputs(_boost(c, 0.6, "x"), n, "float64")))
    assert np.max(raw_change) > 1e-3


@pytest.mark.parametrize("size", list(SIZES))
def test_4vector_updates_and_batch_norm_take_part(jets, size):
    """The equivariant x update and the batch norms change the output (else the invariance tests would
    not exercise them)."""
    x = _inputs(jets[size], SIZES[size]["n_particles"], "float64")
    with_update = _logits(_symmetric_model(size, c_weight=0.5), x)
    tiny_update = _logits(_symmetric_model(size, c_weight=1e-9), x)
    assert np.max(np.abs(with_update - tiny_update)) > 1e-3
    keras.utils.set_random_seed(3)
    fresh = build_teacher(_spec(size, c_weight=0.5), dtype="float64")
    trained_bn = _symmetric_model(size, c_weight=0.5)
    assert np.max(np.abs(_logits(fresh, x) - _logits(trained_bn, x))) > 1e-3


# ---------------------------------------------------------------- masking and batch norm
@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("training", [False, True])
def test_padding_rows_change_nothing(jets, size, training):
    """More zero rows (a model with more particles, same weights), padding moved between real rows, and a
    permutation of the particles leave the logits unchanged, in inference and in training mode. In
    training mode batch norm uses the batch statistics: equal logits show that padding particles and
    edges to padding do not enter them. The tolerance is the float64 rounding bound (summation order
    changes with the shapes)."""
    n = SIZES[size]["n_particles"]
    small = _symmetric_model(size)
    big = _symmetric_model(size, n_particles=n + 9)
    x = _inputs(jets[size], n, "float64")
    reference = _logits(small, x, training)
    u = UNIT_ROUNDOFF["float64"]
    tolerance = 2 * _rounding_bound(small, x, u)

    padded = np.zeros((len(x), n + 9, 4))
    padded[:, :n] = x
    assert np.all(np.abs(_logits(big, padded, training) - reference) <= tolerance)

    order = np.random.default_rng(1).permutation(n + 9)  # padding scattered among real rows
    assert np.all(np.abs(_logits(big, padded[:, order], training) - reference) <= tolerance)

    # Control: a real (soft, 1 GeV) particle in a padding row does change the logits, so the equality
    # above comes from the masks and not from the network ignoring small inputs.
    has_padding = np.flatnonzero(x[:, -1, 0] == 0)
    assert has_padding.size > 0
    extra = padded.copy()
    extra[has_padding, n] = np.array([1.0, 0.6, 0.0, 0.8]) / TEACHER_P4_SCALE_GEV
    assert np.max(np.abs(_logits(big, extra, training)[has_padding] - reference[has_padding])) > 1e-4


def test_sparse_neighbours_are_the_smallest_minkowski_products(jets):
    """Each real particle's neighbours are the k other real particles with the smallest <p_i, p_j>."""
    c = jets["sparse64"]
    x = _inputs(c, 64, "float64")
    idx = MinkowskiNeighbours(8, dtype="float64")(tf.convert_to_tensor(x)).numpy()
    metric = np.array([1.0, -1.0, -1.0, -1.0])
    for b in range(len(x)):
        real = np.flatnonzero(x[b, :, 0] > 0)
        dots = (x[b] * metric) @ x[b].T
        for i in real:
            others = real[real != i]
            expected = others[np.argsort(dots[i, others])][:8]
            assert set(idx[b, i, : len(expected)]) == set(expected)


# ---------------------------------------------------------------- save / load
def _randomised(model: keras.Model) -> keras.Model:
    """Give batch-norm statistics non-default values so a load that drops them would show."""
    rng = np.random.default_rng(0)
    for var in model.non_trainable_variables:
        var.assign(rng.uniform(0.5, 1.5, var.shape).astype(var.dtype.as_numpy_dtype))
    return model


ROUND_TRIP_SPECS = {
    "dense16": TeacherSpec(name="d", n_particles=16, n_layers=2, hidden=8, dropout=0.1),
    "sparse64": TeacherSpec(name="s", n_particles=64, n_layers=2, hidden=8, neighbours=8),
    "particle_flow": TeacherSpec(name="p", kind="particle_flow", n_particles=64, phi=(16, 16), head=(8,)),
    "no_batch_norm": TeacherSpec(name="n", n_particles=16, n_layers=2, hidden=8, batch_norm=False),
}


@pytest.mark.parametrize("kind", list(ROUND_TRIP_SPECS))
@pytest.mark.parametrize("suffix", [".h5", ".keras"])
def test_save_and_load_round_trip(tmp_path, jets, kind, suffix):
    spec = ROUND_TRIP_SPECS[kind]
    keras.utils.set_random_seed(1)
    model = _randomised(build_teacher(spec))
    x = teacher_input_array(spec, jets["sparse64"])
    path = tmp_path / f"teacher{suffix}"
    model.save(path)
    expected = model.predict(x, verbose=0)
    loaded = keras.models.load_model(path, custom_objects=CUSTOM_OBJECTS, compile=False)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), expected)
    byo = TeacherSpec(name="byo", kind="path", path=str(path), n_particles=spec.n_particles)
    np.testing.assert_array_equal(build_teacher(byo).predict(x, verbose=0), expected)
    if kind != "particle_flow":  # the stage's loader checks (N, n, 4) 4-vector inputs for a path teacher
        np.testing.assert_array_equal(load_teacher_file(path, byo).predict(x, verbose=0), expected)


def test_the_ensemble_model_averages_its_members_on_their_leading_particles(tmp_path, jets):
    keras.utils.set_random_seed(2)
    small, big = ROUND_TRIP_SPECS["dense16"], ROUND_TRIP_SPECS["sparse64"]
    members = {"d": (16, _randomised(build_teacher(small))), "s": (64, _randomised(build_teacher(big)))}
    c = jets["sparse64"]
    expected = 0.5 * (
        members["d"][1].predict(teacher_inputs(c, 16), verbose=0)
        + members["s"][1].predict(teacher_inputs(c, 64), verbose=0)
    )
    model = ensemble_teacher(members, 64, name="ens")
    got = model.predict(teacher_inputs(c, 64), verbose=0)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    # What the teacher stage caches and the evaluation uses under boosts (the members' logits averaged)
    # is the saved model's output to the last bit, boosted jets included.
    for x in (c, boost(c, 0.7)):
        each = [m.predict(teacher_inputs(x, n), verbose=0) for n, m in members.values()]
        np.testing.assert_array_equal(ensemble_logits(each), model.predict(teacher_inputs(x, 64), verbose=0))
    path = tmp_path / "ens.h5"
    model.save(path, save_format="h5")
    spec = TeacherSpec(name="ens", kind="ensemble", members=("d", "s"), n_particles=64)
    loaded = load_teacher_file(path, spec)
    np.testing.assert_array_equal(loaded.predict(teacher_inputs(c, 64), verbose=0), got)
    with pytest.raises(ValueError, match="an ensemble is built from its trained members"):
        build_teacher(spec)


@pytest.mark.parametrize(
    ("teachers", "message"),
    [
        (
            [{"name": "e", "kind": "ensemble", "members": ["a", "b"]}],
            r"teachers\[0\]\.members names 'a', not a teacher configured before it",
        ),
        (
            [{"name": "a"}, {"name": "e", "kind": "ensemble", "members": ["a", "b"]}, {"name": "b"}],
            r"teachers\[1\]\.members names 'b', not a teacher configured before it; earlier: \['a'\]",
        ),
        (
            [
                {"name": "a"},
                {"name": "p", "kind": "particle_flow"},
                {"name": "e", "kind": "ensemble", "members": ["a", "p"]},
            ],
            r"'p' is of kind 'particle_flow'; an ensemble averages teachers on scaled 4-vectors",
        ),
        (
            [
                {"name": "a"},
                {"name": "b", "n_particles": 64, "neighbours": 8},
                {"name": "e", "kind": "ensemble", "members": ["a", "b"]},
            ],
            r"teachers\[2\]\.n_particles \(16\) is below that of its member 'b' \(64\)",
        ),
        (
            [{"name": "a"}, {"name": "e", "kind": "ensemble", "members": ["a"]}],
            "two or more different members",
        ),
        (
            [{"name": "a"}, {"name": "e", "kind": "ensemble", "members": ["a", "a"]}],
            "two or more different members",
        ),
        ([{"name": "a"}, {"name": "e", "kind": "ensemble"}], "members is required when kind is"),
        ([{"name": "a"}, {"name": "e", "members": ["a"]}], "members is required when kind is"),
    ],
)
def test_an_ensemble_names_two_earlier_four_vector_teachers(teachers, message):
    with pytest.raises(Exception, match=message):
        parse_config(
            {"teachers": teachers, "students": [{"name": "s", "kind": "mlp", "teacher": teachers[0]["name"]}]}
        )


def test_every_custom_layer_is_registered():
    for name, cls in CUSTOM_OBJECTS.items():
        assert keras.saving.get_registered_object(f"kd_trigger>{name}") is cls


# ---------------------------------------------------------------- the spec and the inputs
def test_spec_defaults_are_the_dense_16_particle_lorentznet():
    spec = TeacherSpec()
    assert (spec.kind, spec.n_particles, spec.neighbours, spec.n_layers, spec.hidden) == (
        "lorentznet",
        16,
        None,
        3,
        32,
    )
    assert 20_000 <= build_teacher(spec).count_params() <= 25_000


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "path"}, "path is required"),
        ({"path": "teacher.h5"}, "path is required"),
        ({"neighbours": 16}, "neighbours"),
        ({"learning_rate": float("inf")}, "finite"),
        ({"weight_decay": float("nan")}, "finite"),
        ({"c_weight": float("inf")}, "finite"),
        ({"clip_norm": float("nan")}, "finite"),
        ({"warmup_epochs": 30}, "warmup_epochs"),
        ({"name": "bad name"}, "pattern"),
        ({"kind": "transformer"}, "lorentznet"),
        ({"unknown": 1}, "Extra inputs"),
    ],
)
def test_spec_rejects_bad_values(fields, message):
    with pytest.raises(ValidationError, match=message):
        TeacherSpec(**fields)


def test_teacher_input_array_per_kind(jets):
    c = jets["sparse64"]
    lorentz = TeacherSpec(n_particles=12)
    flow = TeacherSpec(kind="particle_flow", n_particles=12)
    np.testing.assert_array_equal(teacher_input_array(lorentz, c), teacher_inputs(c, 12))
    np.testing.assert_array_equal(teacher_input_array(flow, c), particle_features(c, 12, PARTICLE_FEATURES))
    assert build_teacher(flow).input_shape == (None, 12, len(PARTICLE_FEATURES))


# ---------------------------------------------------------------- training
def _toy_split(rng: np.random.Generator, n_jets: int, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Jets whose label is whether they have more than 8 particles: learnable within a few epochs."""
    c = _jets(rng, n_jets, max_real=16, n_rows=n_rows)
    labels = ((c[:, :, 0] > 0).sum(axis=1) > 8).astype(np.int64)
    return c, labels


@pytest.mark.parametrize("kind", ["lorentznet", "particle_flow"])
def test_train_teacher_keeps_the_best_validation_epoch(kind):
    rng = np.random.default_rng(0)
    (c_train, y_train), (c_val, y_val) = _toy_split(rng, 192, 16), _toy_split(rng, 96, 16)
    spec = TeacherSpec(
        name="toy", kind=kind, n_particles=16, n_layers=1, hidden=8, phi=(16,), head=(8,),
        epochs=3, warmup_epochs=1, batch_size=32, patience=5,
    )  # fmt: skip
    x = {"train": teacher_input_array(spec, c_train), "val": teacher_input_array(spec, c_val)}
    model, record = train_teacher(spec, x, {"train": y_train, "val": y_val}, seed=1)
    assert 1 <= record["best_epoch"] <= record["epochs_run"] == 3
    history = record["history"]
    assert len(history["val_auc"]) == 3 and record["best_val_auc"] == max(history["val_auc"])
    assert record["training_seconds"] > 0 and record["n_parameters"] == model.count_params()
    # The returned weights are those of the best epoch, not the last.
    auc = roc_auc(y_val, scores_from_logits(model.predict(x["val"], batch_size=2048, verbose=0)))
    assert auc == pytest.approx(record["best_val_auc"], abs=1e-12)
    # Warm-up then cosine: near the peak after the warm-up epoch, never above it, ~0 at the last step.
    assert 0.5 * spec.learning_rate < history["lr"][0] <= max(history["lr"]) <= spec.learning_rate
    assert history["lr"][-1] < 0.05 * spec.learning_rate


def test_train_teacher_on_three_classes_keeps_the_best_macro_auc_epoch():
    """Three classes (few / middling / many particles): the epoch is chosen on the macro one-vs-rest AUC
    of the validation split, and the weights returned are that epoch's."""
    rng = np.random.default_rng(3)

    def split(n_jets: int) -> tuple[np.ndarray, np.ndarray]:
        c = _jets(rng, n_jets, max_real=16, n_rows=16)
        n_real = (c[:, :, 0] > 0).sum(axis=1)
        return c, np.digitize(n_real, [6, 11]).astype(np.int64)  # 0: <= 5, 1: 6..10, 2: >= 11

    (c_train, y_train), (c_val, y_val) = split(240), split(120)
    assert sorted(np.unique(y_val).tolist()) == [0, 1, 2]
    spec = TeacherSpec(
        name="toy3", kind="particle_flow", n_particles=16, phi=(16,), head=(8,),
        epochs=3, warmup_epochs=1, batch_size=32, patience=5,
    )  # fmt: skip
    x = {"train": teacher_input_array(spec, c_train), "val": teacher_input_array(spec, c_val)}
    model, record = train_teacher(spec, x, {"train": y_train, "val": y_val}, seed=2, n_classes=3)
    assert model.output_shape == (None, 3)
    assert record["selection"] == selection_name(3) == "macro_ovr_auc" and selection_name(2) == "auc"
    history = record["history"]
    assert len(history["val_auc"]) == record["epochs_run"] == 3
    assert record["best_val_auc"] == max(history["val_auc"])
    assert record["best_epoch"] == 1 + int(np.argmax(history["val_auc"]))
    logits = model.predict(x["val"], batch_size=2048, verbose=0)
    assert macro_auc(y_val, logits) == pytest.approx(record["best_val_auc"], abs=1e-12)
    # The macro AUC is the mean of the three one-vs-rest AUCs of the metrics.
    aucs = [m["auc"] for m in per_class_metrics(y_val, logits, ["a", "b", "c"]).values()]
    assert record["best_val_auc"] == pytest.approx(np.mean(aucs), abs=1e-12)


def test_train_teacher_needs_every_class_in_the_validation_split():
    rng = np.random.default_rng(4)
    c = _jets(rng, 12, max_real=16, n_rows=16)
    spec = TeacherSpec(
        name="toy3", kind="particle_flow", n_particles=16, phi=(4,), head=(4,), epochs=2, warmup_epochs=0
    )
    x = teacher_input_array(spec, c)
    y = {"train": np.arange(12) % 3, "val": np.arange(12) % 2}
    with pytest.raises(ValueError) as err:
        train_teacher(spec, {"train": x, "val": x}, y, seed=0, n_classes=3)
    assert str(err.value) == (
        "teacher toy3: the validation split holds classes [0, 1] of 0..2; every class needs validation jets "
        "to choose the epoch"
    )


def test_train_teacher_refuses_a_file_teacher():
    spec = TeacherSpec(kind="path", path="teacher.h5")
    with pytest.raises(ValueError, match="nothing to train"):
        train_teacher(spec, {"train": np.zeros((2, 16, 4))}, {"train": np.zeros(2)}, seed=0)


# ---------------------------------------------------------------- bring your own, the stage
def _saved(tmp_path, name: str, in_shape: tuple[int, int], n_out: int) -> str:
    model = keras.Sequential([keras.Input(in_shape), keras.layers.Flatten(), keras.layers.Dense(n_out)])
    path = tmp_path / name
    model.save(path)
    return str(path)


def _byo(path: str, n_particles: int = N_PARTICLES) -> TeacherSpec:
    return TeacherSpec(name="byo", kind="path", path=path, n_particles=n_particles)


def test_teacher_with_wrong_input_shape_is_a_model_error(tmp_path):
    path = _saved(tmp_path, "wrong_in.h5", (8, 4), 2)
    with pytest.raises(ModelError, match=r"wrong_in\.h5: input shape \(N, 8, 4\) .* expected \(N, 16, 4\)"):
        load_teacher_file(Path(path), _byo(path))


def test_teacher_with_wrong_output_shape_is_a_model_error(tmp_path):
    path = _saved(tmp_path, "wrong_out.keras", (N_PARTICLES, 4), 3)
    with pytest.raises(ModelError, match=r"wrong_out\.keras: output shape \(N, 3\) .* expected \(N, 2\)"):
        load_teacher_file(Path(path), _byo(path))


def test_missing_or_unreadable_teacher_is_a_model_error(tmp_path):
    missing = str(tmp_path / "nope.h5")
    with pytest.raises(ModelError, match=r"teacher 'byo': file .*nope\.h5 does not exist; set its path"):
        load_teacher_file(Path(missing), _byo(missing))
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"not an HDF5 file at all")
    with pytest.raises(ModelError, match=r"teacher file .*garbage\.h5 is not a readable Keras model"):
        load_teacher_file(garbage, _byo(str(garbage)))
    # The run's own teacher, not trained yet, names the command that makes it.
    untrained = parse_config({"run": {"artifacts_dir": str(tmp_path / "artifacts")}})
    name = untrained.teachers[0].name
    with pytest.raises(ModelError, match=r"teacher\.h5 does not exist; train it first: make teacher"):
        load_teacher(untrained, name)


@pytest.mark.slow
def test_teacher_stage_trains_saves_skips_and_accepts_its_own_teacher(tmp_path):
    from kd_trigger.stages import run_targets

    raw = {
        "run": {"name": "tiny", "seed": 5, "artifacts_dir": str(tmp_path / "artifacts")},
        "data": {"n_jets": 200, "workers": 2, "split": {"train": 0.5, "val": 0.2, "test": 0.3}},
        "teachers": [
            {
                "name": "tiny",
                "n_particles": 8,
                "n_layers": 1,
                "hidden": 8,
                "epochs": 2,
                "warmup_epochs": 1,
                "batch_size": 32,
            },
        ],  # fmt: skip
        "students": [{"name": "s", "kind": "mlp", "n_particles": 8}],  # learns from the first teacher
    }
    raw["data"]["generator"] = {"chunk_jets": 50}
    cfg = parse_config(raw)
    assert run_targets(cfg, ["teacher"]) == 0
    out = teacher_dir(cfg, "tiny")
    for name in ("teacher.h5", "metrics.json", "history.json"):
        assert (out / name).is_file(), name
    n_jets = {"train": 100, "val": 40, "test": 60}
    for split, n in n_jets.items():
        assert np.load(out / f"{split}_logits.npy").shape == (n, 2)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_jets"] == n_jets
    assert 1 <= metrics["best_epoch"] <= metrics["epochs_run"] <= 2
    assert metrics["n_parameters"] == load_teacher(cfg, "tiny").count_params()
    assert 0.0 <= metrics["accuracy"] <= 1.0 and 0.0 <= metrics["auc"] <= 1.0
    assert metrics["training_seconds"] > 0

    # The saved logits are those of the saved model (the distill stage may use either).
    test = load_jets(cfg.data_path, cfg).select("test")
    np.testing.assert_allclose(
        load_teacher(cfg, "tiny").predict(teacher_inputs(test.constituents, 8), verbose=0),
        np.load(out / "test_logits.npy"),
        rtol=1e-5,
        atol=1e-6,
    )

    mtime = (out / "teacher.h5").stat().st_mtime_ns
    assert run_targets(cfg, ["teacher"]) == 0
    assert (out / "teacher.h5").stat().st_mtime_ns == mtime  # up to date: not retrained

    # Bring your own: the trained file as a path teacher on the same jets is checked and evaluated.
    byo = parse_config(
        {
            **raw,
            "run": {**raw["run"], "name": "byo"},
            "data": {**raw["data"], "path": str(cfg.data_path)},
            "teachers": [{"name": "mine", "kind": "path", "path": str(out / "teacher.h5"), "n_particles": 8}],
        }
    )
    assert run_targets(byo, ["teacher"]) == 0
    byo_out = teacher_dir(byo, "mine")
    byo_metrics = json.loads((byo_out / "metrics.json").read_text())
    assert not (byo_out / "teacher.h5").exists()
    assert byo_metrics["epochs_run"] == 0 and byo_metrics["source"] == str(out / "teacher.h5")
    assert byo_metrics["auc"] == pytest.approx(metrics["auc"], abs=1e-9)

    # An ensemble of the brought teacher and a second one on fewer particles: its stage runs after both,
    # its logits are the mean of theirs on every split, and its saved model computes them.
    ens_raw = {
        **raw,
        "run": {**raw["run"], "name": "ens"},
        "data": {**raw["data"], "path": str(cfg.data_path)},
        "teachers": [
            {"name": "mine", "kind": "path", "path": str(out / "teacher.h5"), "n_particles": 8},
            {**raw["teachers"][0], "name": "four", "n_particles": 4, "epochs": 1, "warmup_epochs": 0},
            {"name": "both", "kind": "ensemble", "members": ["mine", "four"], "n_particles": 8},
        ],
        "students": [{"name": "s", "kind": "mlp", "n_particles": 8, "teacher": "both"}],
    }
    ens = parse_config(ens_raw)
    assert run_targets(ens, ["teacher:both"]) == 0  # runs its members first
    for split in n_jets:
        mean = 0.5 * (
            np.load(teacher_dir(ens, "mine") / f"{split}_logits.npy")
            + np.load(teacher_dir(ens, "four") / f"{split}_logits.npy")
        )
        np.testing.assert_array_equal(np.load(teacher_dir(ens, "both") / f"{split}_logits.npy"), mean)
    np.testing.assert_allclose(
        load_teacher(ens, "both").predict(teacher_inputs(test.constituents, 8), verbose=0),
        np.load(teacher_dir(ens, "both") / "test_logits.npy"),
        rtol=1e-5,
        atol=1e-6,
    )
    ens_metrics = json.loads((teacher_dir(ens, "both") / "metrics.json").read_text())
    assert (ens_metrics["kind"], ens_metrics["members"], ens_metrics["epochs_run"]) == (
        "ensemble",
        ["mine", "four"],
        0,
    )


def test_a_teacher_trains_from_its_own_seed_or_the_runs():
    from kd_trigger.distill.teacher_stage import teacher_seed, teacher_stage_decl

    teachers = [{"name": "a"}, {"name": "b", "seed": 43}]
    cfg = parse_config({"run": {"seed": 7}, "teachers": teachers, "students": [{"name": "s", "kind": "mlp"}]})
    assert (teacher_seed(cfg, "a"), teacher_seed(cfg, "b")) == (7, 43)
    # the seed is part of the stage's config: another seed is another teacher, not a cached one
    assert teacher_stage_decl("b").config(cfg)["seed"] == 43
    assert teacher_stage_decl("a").config(cfg)["seed"] == 7
