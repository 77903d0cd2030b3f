"""One entry of the ``teachers`` list: the teacher network and its training recipe."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from kd_trigger.config.base import Section


class TeacherSpec(Section):
    """One teacher: a LorentzNet (dense or k-nearest-neighbour edges), a Particle-Flow network, or a file.

    The defaults are the measured recipe of the dense 16-particle LorentzNet (3 x 32, 21,157
    parameters): masked batch norm, AdamW (weight decay 0.01), head dropout 0.2, 2 warm-up epochs then
    cosine decay, global gradient-norm clip 1.0, 23 epochs, the best validation AUC kept. Measured on the
    default 60k jets (2 CPU cores, load 4-5): test AUC 0.9814-0.9816, 1/eps_B(30%) 529-900 (+-30-40%),
    ~5-7 min; the previous recipe (Adam, no batch norm) gave AUC 0.977, 1/eps_B(30%) 214. Batch norm is
    the ingredient that matters (alone: AUC 0.9812); removing any one of the others changed nothing
    beyond the noise. The 64-particle teacher that reached AUC 0.987 in 10 min: ``n_particles=64,
    neighbours=8, epochs=16, warmup_epochs=1`` (same 21k parameters).
    """

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$", max_length=48)] = "lorentznet16"
    kind: Literal["lorentznet", "particle_flow", "path", "ensemble"] = "lorentznet"
    path: str | None = None
    """kind "path" only: a saved Keras model taking (N, n_particles, 4) scaled 4-vectors."""
    members: tuple[str, ...] = ()
    """kind "ensemble" only: two or more teachers configured before this one (LorentzNet or files, each on
    at most ``n_particles`` leading particles); the ensemble's logits are the mean of theirs. Nothing is
    trained: its stage averages the members' cached logits and saves the averaging model for the boosts."""
    n_particles: Annotated[int, Field(ge=2, le=200)] = 16
    seed: int | None = None
    """The training seed (initial weights, shuffling, dropout); None: ``run.seed``. Two entries that differ
    only in it are two trainings of one recipe, e.g. the members of an ensemble over seeds."""
    # LorentzNet shape
    n_layers: Annotated[int, Field(ge=1, le=12)] = 3
    hidden: Annotated[int, Field(ge=2, le=512)] = 32
    c_weight: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] = 1e-3
    neighbours: Annotated[int, Field(ge=1)] | None = None
    """None: every pair of particles is an edge. k: each particle's k neighbours with the smallest
    Minkowski products p_i.p_j (a Lorentz-invariant choice), ~n/k times cheaper."""
    batch_norm: bool = True
    """Batch norm in the edge and node networks (LorentzNet) or the per-particle network (Particle Flow);
    its statistics run over real particles and edges only."""
    # Particle-Flow shape
    phi: tuple[Annotated[int, Field(ge=1, le=1024)], ...] = (128, 128, 128)
    """Per-particle network widths (kind particle_flow)."""
    head: tuple[Annotated[int, Field(ge=1, le=1024)], ...] = (128, 64)
    """Widths after the masked pooling (kind particle_flow; LorentzNet's head is one layer of ``hidden``)."""
    # Training
    epochs: Annotated[int, Field(ge=1, le=10_000)] = 23
    batch_size: Annotated[int, Field(ge=1)] = 256
    learning_rate: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] = 2e-3
    """Peak rate, reached after the warm-up, then cosine-decayed to zero at ``epochs``."""
    weight_decay: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] = 0.01
    """Decoupled (AdamW) weight decay; 0 is plain Adam."""
    warmup_epochs: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 2.0
    dropout: Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)] = 0.2
    """Dropout after each head layer. LorentzNet: 0.2 or 0 measured the same. Particle Flow: set 0
    (0.2 cost 0.004 in AUC: 0.9837 against 0.9874)."""
    clip_norm: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = 1.0
    """Global gradient-norm clip; None: no clipping."""
    patience: Annotated[int, Field(ge=1)] = 8
    """Stop after this many epochs without a better validation AUC (more than two classes: the macro
    one-vs-rest AUC, see kd_trigger.distill.teacher_train)."""
    jit_compile: bool = False
    """XLA-compile the training step."""

    @model_validator(mode="after")
    def _consistent(self) -> TeacherSpec:
        if (self.kind == "path") != (self.path is not None):
            raise ValueError('path is required when kind is "path", and only then')
        if (self.kind == "ensemble") != bool(self.members):
            raise ValueError('members is required when kind is "ensemble", and only then')
        if self.kind == "ensemble" and (len(self.members) < 2 or len(set(self.members)) != len(self.members)):
            raise ValueError(f"an ensemble needs two or more different members, got {list(self.members)}")
        if self.neighbours is not None and self.neighbours >= self.n_particles:
            raise ValueError(f"neighbours ({self.neighbours}) must be below n_particles ({self.n_particles})")
        if self.warmup_epochs >= self.epochs:
            raise ValueError(f"warmup_epochs ({self.warmup_epochs:g}) must be below epochs ({self.epochs})")
        if not self.phi or not self.head:
            raise ValueError("phi and head need at least one layer each")
        return self
