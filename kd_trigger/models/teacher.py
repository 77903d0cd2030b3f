"""Teachers: a LorentzNet (Lorentz-group-equivariant message passing), a Particle-Flow network, or a file.

LorentzNet follows Gong et al., arXiv:2201.08187 (the teacher of arXiv:2311.14160), written from scratch
for Keras 2 (TF 2.15):

* the input is the (E, px, py, pz) 4-vector of each of the leading ``n_particles`` constituents, scaled
  as :func:`kd_trigger.data.features.teacher_inputs` does; padding rows are all zero and the padding mask
  is ``E > 0``, derived inside the model so any caller (and any bring-your-own teacher) sees one input;
* node scalars start from Lorentz invariants only (the particle's product with the jet 4-momentum, the
  jet mass squared), never from raw components, which would break the symmetry;
* every edge sees the invariants ``psi(<x_i, x_j>)`` and ``psi(|x_i - x_j|^2)`` with
  ``psi(z) = sign(z) log(|z| + 1)``; 4-vectors are updated equivariantly,
  ``x_i <- x_i + c * mean_j phi_x(m_ij) (x_i - x_j)``, so they stay 4-vectors of the same frame;
* edges are every pair of real particles (dense), or each particle's ``k`` neighbours with the smallest
  Minkowski products ``<p_i, p_j>`` of the input 4-vectors (sparse): a choice made from invariants, so
  the sparse network is exactly as Lorentz invariant as the dense one and ~n/k times cheaper;
* optional batch norm in the edge and node networks acts on invariant scalars only (so it keeps the
  symmetry), and its batch statistics run over real particles and real edges only: padding never
  enters them, and padded particles neither send messages nor enter the pooling.

The output is two logits (class 1 = top). All layers take a ``dtype`` so the symmetry tests can run the
same network in float64 (weights copy over with ``set_weights``). Every Minkowski product goes through
:func:`minkowski_dot`, the jet sum through :func:`jet_momentum` and the 4-vector update through
:func:`equivariant_update`: the operations where float32 rounding meets cancellation (products of nearly
light-like, nearly collinear vectors), which the symmetry tests' derived rounding bound instruments.

``particle_flow`` is a non-equivariant Deep Sets / Particle-Flow network (Komiske et al.,
arXiv:1810.05165) on per-particle engineered features: per-particle MLP -> masked sum -> MLP.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow import keras

from kd_trigger.config import PARTICLE_FEATURES, TeacherSpec
from kd_trigger.data.features import TEACHER_P4_SCALE_GEV, particle_features, teacher_inputs

P4_COMPONENTS = 4
"""(E, px, py, pz)."""

N_CLASSES = 2

INVARIANT_SCALE = TEACHER_P4_SCALE_GEV**2
"""Minkowski products are taken back to GeV^2 before psi: in the scaled units of the input, the products
of soft, collinear particles are ~1e-4 and psi would be linear where the physics needs a logarithm
(measured: validation AUC 0.948 in scaled units, 0.970 in GeV^2, same teacher and schedule)."""

PHI_X_CLIP = 100.0
"""Bound on the scalar weight of each 4-vector message; clipping a scalar keeps the update equivariant
(LorentzNet clips the vector message componentwise, which would not)."""

BN_MOMENTUM = 0.9
"""Moving-average momentum of batch norm (PyTorch's default 0.1 in Keras' convention): with ~140 steps
an epoch and the best epoch kept, the statistics must follow the weights within an epoch."""

TEACHER_FEATURES = PARTICLE_FEATURES
"""Per-particle features of the ``particle_flow`` teacher (kd_trigger.data.features.particle_features)."""


def psi(z: tf.Tensor) -> tf.Tensor:
    """``sign(z) log(|z| + 1)``: compresses the wide range of Minkowski products, keeps the sign."""
    return tf.math.sign(z) * tf.math.log1p(tf.math.abs(z))


def minkowski_dot(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """``a^0 b^0 - a.b`` over the last axis (metric +---); broadcasts like ``a * b``."""
    prod = a * b
    return prod[..., 0] - tf.reduce_sum(prod[..., 1:], axis=-1)


def particle_mask(p4: tf.Tensor) -> tf.Tensor:
    """1 for real particles (E > 0), 0 for padding rows; shape (batch, n_particles, 1)."""
    return tf.cast(p4[..., :1] > 0, p4.dtype)


def pair_invariants(x_i: tf.Tensor, x_j: tf.Tensor) -> tf.Tensor:
    """``psi`` of (|x_i - x_j|^2, <x_i, x_j>) in GeV^2, stacked on a new last axis; broadcasts.

    The squared difference is formed from the difference vector, not as x_i^2 + x_j^2 - 2 <x_i, x_j>:
    the self products of nearly massless particles are ~E^2 in float32 rounding but ~0 in value, so
    the expanded form would add an error of u E^2 to a quantity that can be far smaller.
    """
    diff = x_i - x_j
    z = tf.stack([minkowski_dot(diff, diff), minkowski_dot(x_i, x_j)], axis=-1)
    return psi(INVARIANT_SCALE * z)


def jet_momentum(p4: tf.Tensor) -> tf.Tensor:
    """The jet 4-momentum (batch, 1, 4): the sum of the (masked) particle 4-vectors."""
    return tf.reduce_sum(p4, axis=1, keepdims=True)


def equivariant_update(
    x: tf.Tensor, x_j: tf.Tensor, weight: tf.Tensor, count: tf.Tensor, mask: tf.Tensor, c_weight: float
) -> tf.Tensor:
    """``x_i + c / count_i * sum_j w_ij (x_i - x_j)`` on real particles: a Lorentz-equivariant update.

    x (b, n, 4); x_j (b, 1, n, 4) (dense: every particle) or (b, n, k, 4) (sparse: the neighbours);
    weight (b, n, n | k), zero on non-edges; count (b, n, 1); mask (b, n, 1). Written as
    ``x_i sum_j w_ij - sum_j w_ij x_j`` so no (b, n, n, 4) difference tensor is formed.
    """
    if x_j.shape[1] == 1:
        weighted_j = tf.einsum("bij,bjd->bid", weight, x_j[:, 0])
    else:
        weighted_j = tf.einsum("bij,bijd->bid", weight, x_j)
    shift = x * tf.reduce_sum(weight, axis=2, keepdims=True) - weighted_j
    return x + c_weight * shift / count * mask


def _reduce_all_but_last(mask: tf.Tensor, x: tf.Tensor) -> tf.Tensor:
    """A mask of shape x.shape[:-1] (a trailing axis of 1 is dropped)."""
    return mask[..., 0] if mask.shape.rank == x.shape.rank else mask


@keras.saving.register_keras_serializable(package="kd_trigger")
class MaskedBatchNorm(keras.layers.Layer):
    """``[x, mask] -> batch norm of x`` whose batch statistics run over the rows where mask is 1.

    ``mask`` has the shape of ``x`` without its last (feature) axis, or with a trailing axis of 1.
    Padding particles and edges to padding would otherwise enter the mean and variance with a weight
    that depends on how many padding rows a batch has (and on ``n_particles``). Normalises every
    feature over all other axes; at inference the moving averages are used, row by row. (Keras'
    BatchNormalization takes a mask too, but its fused kernel, picked by default for 4-D edge
    tensors, drops the mask with only a warning; this layer has no such path. Measured as fast.)
    """

    def __init__(self, momentum: float = BN_MOMENTUM, epsilon: float = 1e-3, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.momentum = momentum
        self.epsilon = epsilon

    def build(self, input_shape: Any) -> None:
        dim = int(input_shape[0][-1])
        self.gamma = self.add_weight(name="gamma", shape=(dim,), initializer="ones")
        self.beta = self.add_weight(name="beta", shape=(dim,), initializer="zeros")
        # ON_READ / MEAN: under MirroredStrategy each replica keeps its own moving statistics and a read
        # averages them (what Keras' BatchNormalization does).
        moving = {
            "shape": (dim,),
            "trainable": False,
            "synchronization": tf.VariableSynchronization.ON_READ,
            "aggregation": tf.VariableAggregation.MEAN,
        }
        self.moving_mean = self.add_weight(name="moving_mean", initializer="zeros", **moving)
        self.moving_variance = self.add_weight(name="moving_variance", initializer="ones", **moving)
        super().build(input_shape)

    def call(self, inputs: list[tf.Tensor], training: Any = None) -> tf.Tensor:
        x, mask = inputs
        if isinstance(training, tf.Tensor):
            training = tf.get_static_value(training)
        if training:
            weight = _reduce_all_but_last(mask, x)[..., None]
            axes = list(range(x.shape.rank - 1))
            count = tf.maximum(tf.reduce_sum(weight), 1.0)
            mean = tf.reduce_sum(x * weight, axis=axes) / count
            variance = tf.reduce_sum(tf.square(x - mean) * weight, axis=axes) / count
            decay = 1.0 - self.momentum
            self.moving_mean.assign_sub((self.moving_mean - tf.stop_gradient(mean)) * decay)
            self.moving_variance.assign_sub((self.moving_variance - tf.stop_gradient(variance)) * decay)
        else:
            mean, variance = self.moving_mean, self.moving_variance
        scale = self.gamma * tf.math.rsqrt(variance + self.epsilon)
        return x * scale + (self.beta - mean * scale)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "momentum": self.momentum, "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="kd_trigger")
class InvariantEmbedding(keras.layers.Layer):
    """4-vectors -> (initial node scalars, mask), from Lorentz invariants only.

    Per particle: psi(<x_i, J>) and psi(J^2) in GeV^2, with J the sum of the real particles'
    4-vectors (the jet), embedded by a Dense layer. Returns ``[h, mask]`` with h (batch, n, hidden)
    zero on padding rows and mask (batch, n, 1).
    """

    def __init__(self, hidden: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hidden = hidden
        self.embed = keras.layers.Dense(hidden, name="embed", dtype=self.dtype_policy)

    def call(self, p4: tf.Tensor) -> list[tf.Tensor]:
        mask = particle_mask(p4)
        p4 = p4 * mask
        jet = jet_momentum(p4)
        # A constituent's own mass^2 is not used: hadron masses (~0.02 GeV^2) are below what float32
        # 4-vectors of 300 GeV particles resolve (E^2 - p^2 carries ~0.01 GeV^2 of rounding), so it would
        # feed rounding noise, not physics, and break the symmetry at the percent level.
        p_dot_jet = minkowski_dot(p4, jet)
        jet_mass2 = tf.broadcast_to(minkowski_dot(jet, jet), tf.shape(p_dot_jet))
        scalars = psi(INVARIANT_SCALE * tf.stack([p_dot_jet, jet_mass2], axis=-1))
        return [self.embed(scalars) * mask, mask]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "hidden": self.hidden}


@keras.saving.register_keras_serializable(package="kd_trigger")
class MinkowskiNeighbours(keras.layers.Layer):
    """4-vectors (batch, n, 4) -> int32 (batch, n, k): each particle's k neighbours with the smallest
    Minkowski products ``<p_i, p_j>`` among the other real particles.

    The products are Lorentz invariants, so the graph (and the network on it) is invariant. For
    massless particles ``<p_i, p_j> = E_i E_j (1 - cos theta_ij)``: soft and collinear pairs are close,
    the kT-like distance of jet clustering. Self and padding entries are pushed to the end; a jet with
    fewer than k + 1 real particles gets padding (and itself) among the k, which the blocks mask out.
    """

    def __init__(self, k: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.k = k

    def call(self, p4: tf.Tensor) -> tf.Tensor:
        mask = particle_mask(p4)[..., 0]  # (b, n)
        metric = tf.constant([1.0, -1.0, -1.0, -1.0], dtype=p4.dtype)
        dots = tf.einsum("bid,bjd->bij", p4 * metric, p4)
        n = tf.shape(p4)[1]
        valid = (mask[:, None, :] > 0) & ~tf.eye(n, dtype=tf.bool)[None]
        # Larger than any product of real particles (|<p_i, p_j>| <= 2 E_i E_j), so invalid entries rank last.
        big = 2.0 * tf.reduce_max(p4[..., 0], axis=1) ** 2 + 1.0  # (b,)
        dots = tf.where(valid, dots, big[:, None, None])
        return tf.math.top_k(-dots, k=self.k, sorted=True).indices

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "k": self.k}


@keras.saving.register_keras_serializable(package="kd_trigger")
class LorentzBlock(keras.layers.Layer):
    """One Lorentz group equivariant block: ``[h, x, mask] -> [h', x']`` (dense) or
    ``[h, x, mask, neighbours] -> [h', x']`` (sparse, neighbours from :class:`MinkowskiNeighbours`).

    Edge message ``m_ij = phi_e(h_i, h_j, psi(|x_i - x_j|^2), psi(<x_i, x_j>))`` over the edges between
    real particles (no self edges); scalar update ``h_i += phi_h(h_i, sum_j w_ij m_ij)`` with a learned
    gate ``w_ij``; 4-vector update ``x_i += c * mean_j phi_x(m_ij) (x_i - x_j)`` (skipped when
    ``update_x=False``, e.g. in the last block where x is no longer read). With ``batch_norm`` the first
    layers of phi_e and phi_h are followed by masked batch norm (as in LorentzNet). All edges are one
    batched (batch, n, n or k, hidden) tensor: no Python loop runs over particles.
    """

    def __init__(
        self,
        hidden: int,
        c_weight: float,
        update_x: bool = True,
        batch_norm: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.hidden = hidden
        self.c_weight = c_weight
        self.update_x = update_x
        self.batch_norm = batch_norm
        dt = self.dtype_policy
        # The first edge layer acts on concat(h_i, h_j, e_ij); splitting its kernel into per-node parts
        # computes W h once per node instead of once per pair (n or k times fewer multiplications).
        self.edge_src = keras.layers.Dense(hidden, name="edge_src", dtype=dt)
        self.edge_dst = keras.layers.Dense(hidden, use_bias=False, name="edge_dst", dtype=dt)
        self.edge_inv = keras.layers.Dense(hidden, use_bias=False, name="edge_inv", dtype=dt)
        self.edge_out = keras.layers.Dense(hidden, activation="relu", name="edge_out", dtype=dt)
        self.edge_gate = keras.layers.Dense(1, activation="sigmoid", name="edge_gate", dtype=dt)
        self.node_in = keras.layers.Dense(hidden, name="node_in", dtype=dt)
        self.node_out = keras.layers.Dense(hidden, name="node_out", dtype=dt)
        if batch_norm:
            self.edge_bn = MaskedBatchNorm(name="edge_bn", dtype=dt)
            self.node_bn = MaskedBatchNorm(name="node_bn", dtype=dt)
        if update_x:
            # Small initial weights: the 4-vectors start almost unchanged, as in LorentzNet.
            self.vec_weight = keras.layers.Dense(
                1,
                use_bias=False,
                kernel_initializer=keras.initializers.RandomNormal(stddev=1e-3),
                name="vec_weight",
                dtype=dt,
            )

    def call(self, inputs: list[tf.Tensor], training: bool | None = None) -> list[tf.Tensor]:
        h, x, mask = inputs[:3]
        dst = self.edge_dst(h)
        if len(inputs) == 4:  # sparse: (b, n, k) neighbour indices
            neighbours = inputs[3]
            x_j = tf.gather(x, neighbours, batch_dims=1)  # (b, n, k, 4)
            dst_j = tf.gather(dst, neighbours, batch_dims=1)
            mask_j = tf.gather(mask[..., 0], neighbours, batch_dims=1)
            # A jet with fewer than k + 1 real particles also gets padding and itself among its k
            # "neighbours" (they rank last): both are masked out here.
            not_self = tf.not_equal(neighbours, tf.range(tf.shape(x)[1])[None, :, None])
            pair = mask * mask_j * tf.cast(not_self, x.dtype)
        else:  # dense: every other particle
            n = tf.shape(x)[1]
            x_j = x[:, None, :, :]
            dst_j = dst[:, None, :, :]
            no_self = 1.0 - tf.eye(n, dtype=x.dtype)
            pair = mask * tf.transpose(mask, [0, 2, 1]) * no_self  # (b, n, n): both real, i != j
        invariants = pair_invariants(x[:, :, None, :], x_j)
        pre = self.edge_src(h)[:, :, None, :] + dst_j + self.edge_inv(invariants)
        if self.batch_norm:
            pre = self.edge_bn([pre, pair], training=training)
        message = self.edge_out(tf.nn.relu(pre))  # (b, i, j, hidden)

        # Contract over j with einsum (a batched matmul) so the weighted (b, i, j, hidden) product is
        # never materialised: the edge tensors dominate the cost of the whole network.
        gate = self.edge_gate(message)[..., 0] * pair  # (b, i, j)
        aggregated = tf.einsum("bijh,bij->bih", message, gate)
        node = self.node_in(tf.concat([h, aggregated], axis=-1))
        if self.batch_norm:
            node = self.node_bn([node, mask], training=training)
        h_new = (h + self.node_out(tf.nn.relu(node))) * mask

        if not self.update_x:
            return [h_new, x]
        weight = tf.clip_by_value(self.vec_weight(message)[..., 0], -PHI_X_CLIP, PHI_X_CLIP) * pair
        count = tf.maximum(tf.reduce_sum(pair, axis=2, keepdims=True), 1.0)  # (b, i, 1)
        return [h_new, equivariant_update(x, x_j, weight, count, mask, self.c_weight)]

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "hidden": self.hidden,
            "c_weight": self.c_weight,
            "update_x": self.update_x,
            "batch_norm": self.batch_norm,
        }


@keras.saving.register_keras_serializable(package="kd_trigger")
class MaskedMeanPool(keras.layers.Layer):
    """``[h, mask] -> mean of h over the real particles``; padding never enters the pooled embedding."""

    def call(self, inputs: list[tf.Tensor]) -> tf.Tensor:
        h, mask = inputs
        count = tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)
        return tf.reduce_sum(h * mask, axis=1) / count


@keras.saving.register_keras_serializable(package="kd_trigger")
class MaskedSumPool(keras.layers.Layer):
    """``[h, mask] -> sum of h over the real particles / n_particles``.

    A sum (not a mean) keeps the particle multiplicity, a strong top/QCD discriminant, in the pooled
    vector (Particle Flow networks sum); the constant 1/n_particles only keeps its scale O(1).
    """

    def call(self, inputs: list[tf.Tensor]) -> tf.Tensor:
        h, mask = inputs
        return tf.reduce_sum(h * mask, axis=1) / tf.cast(tf.shape(h)[1], h.dtype)


@keras.saving.register_keras_serializable(package="kd_trigger")
class FeatureMask(keras.layers.Layer):
    """Per-particle features (batch, n, F) -> mask (batch, n, 1): 1 unless the row is all zero.

    particle_features zeroes padding rows, and a real particle never has all features zero
    (its E / E_jet is positive).
    """

    def call(self, features: tf.Tensor) -> tf.Tensor:
        return tf.cast(tf.reduce_any(tf.not_equal(features, 0), axis=-1, keepdims=True), features.dtype)


CUSTOM_OBJECTS: dict[str, type[keras.layers.Layer]] = {
    "MaskedBatchNorm": MaskedBatchNorm,
    "InvariantEmbedding": InvariantEmbedding,
    "MinkowskiNeighbours": MinkowskiNeighbours,
    "LorentzBlock": LorentzBlock,
    "MaskedMeanPool": MaskedMeanPool,
    "MaskedSumPool": MaskedSumPool,
    "FeatureMask": FeatureMask,
}
"""Pass as ``custom_objects`` when loading a saved teacher (registration covers ordinary loads too)."""


def teacher_input_shape(spec: TeacherSpec) -> tuple[int, int]:
    """(n_particles, per-particle width) of one jet as :func:`teacher_input_array` gives it."""
    width = len(TEACHER_FEATURES) if spec.kind == "particle_flow" else P4_COMPONENTS
    return (spec.n_particles, width)


def teacher_input_array(spec: TeacherSpec, constituents: np.ndarray) -> np.ndarray:
    """The float32 (N, n_particles, width) array the teacher takes, from (N, M, 4) constituents in GeV.

    ``lorentznet`` and ``path``: the scaled 4-vectors of :func:`kd_trigger.data.features.teacher_inputs`;
    ``particle_flow``: the per-particle features ``TEACHER_FEATURES`` of
    :func:`kd_trigger.data.features.particle_features`.
    """
    if spec.kind == "particle_flow":
        return particle_features(constituents, spec.n_particles, TEACHER_FEATURES)
    return teacher_inputs(constituents, spec.n_particles)


def _build_lorentznet(spec: TeacherSpec, dtype: str, n_classes: int) -> keras.Model:
    p4 = keras.Input(shape=(spec.n_particles, P4_COMPONENTS), name="p4", dtype=dtype)
    h, mask = InvariantEmbedding(spec.hidden, name="invariants", dtype=dtype)(p4)
    extra = []
    if spec.neighbours is not None:
        extra = [MinkowskiNeighbours(spec.neighbours, name="neighbours", dtype=dtype)(p4)]
    x = p4
    for i in range(spec.n_layers):
        block = LorentzBlock(
            spec.hidden,
            spec.c_weight,
            update_x=i < spec.n_layers - 1,
            batch_norm=spec.batch_norm,
            name=f"lgeb_{i}",
            dtype=dtype,
        )
        h, x = block([h, x, mask, *extra])
    pooled = MaskedMeanPool(name="pool", dtype=dtype)([h, mask])
    z = keras.layers.Dense(spec.hidden, activation="relu", name="head", dtype=dtype)(pooled)
    if spec.dropout > 0:
        z = keras.layers.Dropout(spec.dropout, name="head_dropout", dtype=dtype)(z)
    logits = keras.layers.Dense(n_classes, name="logits", dtype=dtype)(z)
    name = "lorentznet_teacher" if spec.neighbours is None else "sparse_lorentznet_teacher"
    return keras.Model(p4, logits, name=name)


def _build_particle_flow(spec: TeacherSpec, dtype: str, n_classes: int) -> keras.Model:
    features = keras.Input(shape=teacher_input_shape(spec), name="features", dtype=dtype)
    mask = FeatureMask(name="mask", dtype=dtype)(features)
    z = features
    if spec.batch_norm:
        # The features have very different scales (log pT ~ 0..6, d_eta ~ 0.1): standardise them on the
        # real particles, which is what a fixed input scaling would need the data for.
        z = MaskedBatchNorm(name="input_bn", dtype=dtype)([z, mask])
    for i, width in enumerate(spec.phi):
        z = keras.layers.Dense(width, name=f"phi_{i}", dtype=dtype)(z)
        if spec.batch_norm:
            z = MaskedBatchNorm(name=f"phi_bn_{i}", dtype=dtype)([z, mask])
        z = keras.layers.Activation("relu", name=f"phi_relu_{i}", dtype=dtype)(z)
    z = MaskedSumPool(name="pool", dtype=dtype)([z, mask])
    for i, width in enumerate(spec.head):
        z = keras.layers.Dense(width, activation="relu", name=f"head_{i}", dtype=dtype)(z)
        if spec.dropout > 0:
            z = keras.layers.Dropout(spec.dropout, name=f"head_dropout_{i}", dtype=dtype)(z)
    logits = keras.layers.Dense(n_classes, name="logits", dtype=dtype)(z)
    return keras.Model(features, logits, name="particle_flow_teacher")


def ensemble_teacher(members: dict[str, tuple[int, keras.Model]], n_particles: int, name: str) -> keras.Model:
    """One model whose logits are the mean of the ``members``' logits, each member ``name: (k, model)``
    seeing the k leading of the ``n_particles`` scaled 4-vectors (:func:`teacher_input_array` lists the
    leading particles first, so the first k rows of the 64-particle array are the 16-particle teacher's)."""
    p4 = keras.Input(shape=(n_particles, P4_COMPONENTS), name="p4")
    outputs = []
    for member, (k, model) in members.items():
        # Every LorentzNet is built under one name, and a model's layers need unique names.
        model._name = member
        x = (
            p4
            if k == n_particles
            else keras.layers.Cropping1D((0, n_particles - k), name=f"{member}_input")(p4)
        )
        outputs.append(model(x))
    return keras.Model(p4, keras.layers.Average(name="mean_logits")(outputs), name=name)


def build_teacher(spec: TeacherSpec, dtype: str = "float32", n_classes: int = N_CLASSES) -> keras.Model:
    """The teacher of ``spec``: input as :func:`teacher_input_array` gives it, output ``n_classes`` logits
    (label order; two classes: 1 = top).

    ``lorentznet``: dense or sparse LorentzNet; ``particle_flow``: Particle-Flow network; ``path``: the
    saved model, loaded (its own dtype). ``dtype="float64"`` builds the same network in double
    precision (the symmetry tests; weights copy between the two with ``set_weights``).
    """
    if spec.kind == "lorentznet":
        return _build_lorentznet(spec, dtype, n_classes)
    if spec.kind == "particle_flow":
        return _build_particle_flow(spec, dtype, n_classes)
    if spec.kind == "ensemble":
        raise ValueError(
            f"teacher {spec.name}: an ensemble is built from its trained members (ensemble_teacher)"
        )
    return keras.models.load_model(spec.path, custom_objects=CUSTOM_OBJECTS, compile=False)
