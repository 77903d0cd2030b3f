"""Fixed-point precision of every firmware layer, DERIVED from the student's QKeras quantizers.

Nothing here guesses a width. A quantizer fixes the type of what it quantizes (weights, biases,
activations, the input); everything between two quantizers (accumulators, pooling sums, the result of
a layer that no quantizer follows, such as the logits) is sized by bit growth so that it can never
overflow or round for any input in range:

* a product ``ap_fixed<W1,I1> x ap_fixed<W2,I2>`` is exact in ``ap_fixed<W1+W2, I1+I2>``;
* a sum of K such products plus a bias needs ``ceil(log2(K+1))`` more integer bits than the wider of
  the two, and as many fractional bits as the finer of the two;
* an average over N = 2^k values is a sum (k more integer bits) and a shift (k more fractional bits).

The type itself and the product/accumulator rules live in :mod:`kd_trigger.fixed`, so the students'
output type and the firmware's accumulators come from one derivation. Each layer kind's rule is its
handler's ``precision`` (:mod:`kd_trigger.layers`); :func:`derive_precision`
(:mod:`kd_trigger.layers.model`, re-exported here) walks a model's :class:`LayerSpec` s through them.
Pure functions on plain data (no TensorFlow), tested on their own. This module adds the firmware's
input type and the edge-case inputs that exercise it.
"""

from __future__ import annotations

import numpy as np

from kd_trigger.fixed import FixedType, accumulator_type, product_type
from kd_trigger.layers.keras import quantizer_fixed_type
from kd_trigger.layers.model import EXACT_REFERENCE_BITS, check_exact_reference, derive_precision
from kd_trigger.layers.pooling import average_pool_types
from kd_trigger.layers.spec import Intake, LayerPrecision, LayerSpec

__all__ = [
    "EXACT_REFERENCE_BITS",
    "FixedType",
    "Intake",
    "LayerPrecision",
    "LayerSpec",
    "accumulator_type",
    "average_pool_types",
    "check_exact_reference",
    "derive_precision",
    "edge_case_inputs",
    "input_type",
    "product_type",
    "quantizer_fixed_type",
]


def input_type(precision: dict[str, LayerPrecision], input_name: str) -> FixedType:
    return precision[input_name].types["result"]


def edge_case_inputs(t: FixedType, shape: tuple[int, ...], n_samples: int, seed: int = 0) -> np.ndarray:
    """``n_samples`` inputs of ``shape`` exactly on ``t``'s grid, spread over its whole range.

    A quarter of the samples draw every element from the edge values (min, max, zero, +-1 LSB, one
    LSB inside the extremes), a quarter are all-max or all-min rows with random edge values mixed in
    (the largest sums, where accumulators overflow), the rest are uniform over every code.
    The first samples are the constant inputs min, max, 0, +LSB, -LSB.
    """
    rng = np.random.default_rng(seed)
    size = int(np.prod(shape))
    edges = t.edge_values()
    codes = rng.integers(t.min_code, t.max_code + 1, size=(n_samples, size), endpoint=False)
    x = codes.astype(np.float64) * t.lsb
    q = n_samples // 4
    x[:q] = rng.choice(edges, size=(q, size))
    extreme = np.where(rng.random((q, 1)) < 0.5, t.max_value, t.min_value)
    mix = rng.random((q, size)) < 0.1
    x[q : 2 * q] = np.where(mix, rng.choice(edges, size=(q, size)), extreme)
    constants = [t.min_value, t.max_value, 0.0, t.lsb, -t.lsb if t.signed else t.lsb]
    for i, value in enumerate(constants[: min(len(constants), n_samples)]):
        x[i] = value
    return x.reshape((n_samples, *shape))
