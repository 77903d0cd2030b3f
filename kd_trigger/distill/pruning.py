"""Magnitude pruning of a student during training (tensorflow-model-optimization 0.7.5).

Every QDense/QConv1D of the student (QKeras layers implement tfmot's ``PrunableLayer``: the kernel is
pruned, biases are not) is wrapped in ``prune_low_magnitude`` with a polynomial schedule
(``PolynomialDecay``, power 3) from 0 to ``students[].sparsity``. The schedule lives on epoch boundaries:
pruning starts at the end of epoch ``begin_epoch`` and reaches the target at the end of ``end_epoch``, the
mask being updated once per epoch (``frequency`` = steps per epoch, so ``end_step - begin_step`` is a
multiple of it and the last update hits the target exactly). After ``end_epoch`` the mask is fixed.

The Distiller's own ``train_step`` calls the student with ``training=True``, which runs the wrappers'
step increment and mask update; ``UpdatePruningStep`` initialises the step counter and re-applies the
mask at every epoch end. :func:`strip_pruned` removes the wrappers: the result is a plain QKeras model
whose pruned kernel entries are exact zeros.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from kd_trigger.config import StudentConfig
from kd_trigger.errors import ModelError

PRUNING_POWER = 3
"""Exponent of the polynomial schedule: tfmot's default (prunes fast early, gently near the target)."""


@dataclass(frozen=True)
class PruningPlan:
    """A pruning schedule in whole epochs.

    ``sparsity``: the target fraction of zero kernel entries per layer. ``begin_epoch``: epochs trained
    before the first mask update (0: pruning starts with the first epoch). ``end_epoch``: the epoch at
    whose end every kernel holds ``sparsity`` zeros; early stopping keeps no epoch before it.
    """

    sparsity: float
    begin_epoch: int
    end_epoch: int

    def __post_init__(self) -> None:
        if not 0.0 < self.sparsity < 1.0:
            raise ValueError(f"sparsity must be in (0, 1), got {self.sparsity}")
        if not 0 <= self.begin_epoch < self.end_epoch:
            raise ValueError(f"need 0 <= begin_epoch < end_epoch, got {self.begin_epoch}, {self.end_epoch}")

    def to_dict(self) -> dict[str, Any]:
        return {"sparsity": self.sparsity, "begin_epoch": self.begin_epoch, "end_epoch": self.end_epoch}


def pruning_plan(spec: StudentConfig, epochs: int) -> PruningPlan | None:
    """The schedule of ``spec`` for a training of at most ``epochs`` epochs; None when it is not pruned.

    ``sparsity_begin``/``sparsity_end`` are fractions of ``epochs`` (the cap), rounded down / up to whole
    epochs; the end is at least one epoch after the begin and at most the cap.
    """
    if spec.sparsity == 0.0:
        return None
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    begin = min(math.floor(spec.sparsity_begin * epochs), epochs - 1)
    end = min(max(begin + 1, math.ceil(spec.sparsity_end * epochs)), epochs)
    return PruningPlan(spec.sparsity, begin, end)


def _prunable(layer: Any) -> bool:
    from qkeras import QConv1D, QDense

    return isinstance(layer, QDense | QConv1D)


def prune_wrap(student: Any, plan: PruningPlan, steps_per_epoch: int) -> Any:
    """A model sharing ``student``'s layers, its QDense/QConv1D wrapped for pruning on ``plan``.

    The wrapped layers are the student's own objects, so training the result trains ``student``'s
    variables in place.
    """
    import tensorflow as tf
    import tensorflow_model_optimization as tfmot

    from kd_trigger.layers.keras import qkeras_objects  # QKeras

    if steps_per_epoch < 1:
        raise ValueError(f"steps_per_epoch must be >= 1, got {steps_per_epoch}")
    schedule = tfmot.sparsity.keras.PolynomialDecay(
        initial_sparsity=0.0,
        final_sparsity=plan.sparsity,
        begin_step=plan.begin_epoch * steps_per_epoch,
        end_step=plan.end_epoch * steps_per_epoch,
        power=PRUNING_POWER,
        frequency=steps_per_epoch,
    )

    def wrap(layer: Any) -> Any:
        if _prunable(layer):
            return tfmot.sparsity.keras.prune_low_magnitude(layer, pruning_schedule=schedule)
        # Weightless layers (quantizers, flatten, pooling) are copied too: shared, they would be called in
        # the wrapped graph as well, and the student would leave training with two inbound nodes per such
        # layer, a graph the firmware flows refuse ("several inputs") until it is saved and loaded back.
        return type(layer).from_config(layer.get_config())

    with tf.keras.utils.custom_object_scope(qkeras_objects()):
        wrapped = tf.keras.models.clone_model(student, clone_function=wrap)
    if not any(isinstance(layer, _wrapper_class()) for layer in wrapped.layers):
        raise ModelError(f"model {student.name} has no QDense/QConv1D layer to prune")
    return wrapped


def _wrapper_class() -> Any:
    # tfmot 0.7.5 exports the wrapper class only from its implementation module (pinned in pyproject).
    from tensorflow_model_optimization.python.core.sparsity.keras.pruning_wrapper import PruneLowMagnitude

    return PruneLowMagnitude


def pruning_callbacks() -> list[Any]:
    """The callbacks a ``fit`` of a wrapped model needs (step counter init, mask re-applied each epoch)."""
    import tensorflow_model_optimization as tfmot

    return [tfmot.sparsity.keras.UpdatePruningStep()]


def apply_masks(wrapped: Any) -> None:
    """kernel <- kernel * mask in every wrapper (the optimizer's last step may have moved pruned entries)."""
    for layer in wrapped.layers:
        if isinstance(layer, _wrapper_class()):
            layer.pruning_obj.weight_mask_op()


def strip_pruned(wrapped: Any) -> Any:
    """The plain QKeras model inside a wrapped one (``strip_pruning``), masks applied first."""
    import tensorflow_model_optimization as tfmot

    apply_masks(wrapped)
    return tfmot.sparsity.keras.strip_pruning(wrapped)


def check_sparsity(model: Any, plan: PruningPlan, where: str) -> dict[str, float]:
    """Stored-zero fraction of every prunable kernel of ``model``; ModelError if one is below the target.

    tfmot keeps the ``round(n * (1 - sparsity))`` largest entries of an n-entry kernel, so the fraction
    may sit up to half an entry below the target (entries tied at the threshold are all kept, which float
    weights make rare; it would show here).
    """
    out: dict[str, float] = {}
    short = []
    for layer in model.layers:
        if not _prunable(layer):
            continue
        w = np.asarray(layer.kernel.numpy())
        frac = float(np.mean(w == 0))
        out[layer.name] = frac
        if frac < plan.sparsity - 0.5 / w.size - 1e-12:
            short.append(f"{layer.name} {frac:.3f}")
    if short:
        raise ModelError(
            f"{where}: pruning did not reach sparsity {plan.sparsity:g} ({', '.join(short)}); "
            "the schedule's updates did not run"
        )
    return out
