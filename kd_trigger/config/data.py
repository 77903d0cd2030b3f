"""The ``data`` section: the jet file, its size and splits, and the Pythia 8 + FastJet generator."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator, model_validator

from kd_trigger.config.base import Section


class SplitConfig(Section):
    """Fractions of the jets in each split; assignment is deterministic from ``run.seed``."""

    train: Annotated[float, Field(gt=0, lt=1)] = 0.6
    val: Annotated[float, Field(gt=0, lt=1)] = 0.1
    test: Annotated[float, Field(gt=0, lt=1)] = 0.3

    @model_validator(mode="after")
    def _sums_to_one(self) -> SplitConfig:
        total = self.train + self.val + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"train + val + test must be 1, got {total:g}")
        return self


class GeneratorConfig(Section):
    """Pythia 8 + FastJet settings, following the Top Quark Tagging reference recipe."""

    sqrt_s_gev: Annotated[float, Field(gt=0)] = 14000.0
    pthat_min_gev: Annotated[float, Field(ge=0)] = 500.0
    mpi: bool = False
    jet_radius: Annotated[float, Field(gt=0, le=2.0)] = 0.8
    jet_pt_min_gev: Annotated[float, Field(gt=0)] = 550.0
    jet_pt_max_gev: Annotated[float, Field(gt=0)] = 650.0
    jet_abs_eta_max: Annotated[float, Field(gt=0)] = 2.0
    top_match_dr: Annotated[float, Field(gt=0)] = 0.8
    chunk_jets: Annotated[int, Field(ge=1, le=100_000)] = 250

    @model_validator(mode="after")
    def _pt_window(self) -> GeneratorConfig:
        if self.jet_pt_max_gev <= self.jet_pt_min_gev:
            raise ValueError("jet_pt_max_gev must be above jet_pt_min_gev")
        return self


DEFAULT_CLASSES = ("qcd", "top")
"""Today's two classes in label order: QCD = 0, top = 1 (``is_signal``)."""

KNOWN_CLASSES = ("g", "q", "w", "z", "t", "qcd", "top")
"""Class names the generator knows: the five of the hls4ml jet benchmark (gluon, light quark, W, Z, top)
and the two of the Top Quark Tagging sample. ``t`` and ``top`` are the same process (hadronic ttbar, jet
matched to the top and its decay quarks) and share Pythia seeds; they differ only by name."""


def check_classes(classes: tuple[str, ...]) -> tuple[str, ...]:
    """``classes`` if every name is known and none repeats (a process may appear once); else ValueError."""
    unknown = [c for c in classes if c not in KNOWN_CLASSES]
    if unknown:
        raise ValueError(f"unknown class {unknown[0]!r}; known classes: {', '.join(KNOWN_CLASSES)}")
    processes = ["top" if c == "t" else c for c in classes]
    if len(set(processes)) != len(processes):
        raise ValueError("each class may appear once (t and top name the same process)")
    return classes


MAX_N_JETS = 10_000_000
"""Five times the public Top Quark Tagging sample (2M jets); ~32 GB of constituents, assembled in memory."""


class DataConfig(Section):
    path: str | None = None
    """An existing file (own or Top Quark Tagging layout). None: generate artifacts/<run>/data/jets.h5."""
    n_jets: Annotated[int, Field(ge=2, le=MAX_N_JETS)] = 60_000
    """At most :data:`MAX_N_JETS`: the file is assembled in memory (~3.2 kB per jet at 200 constituents)."""
    max_constituents: Annotated[int, Field(ge=1, le=1000)] = 200
    workers: Annotated[int, Field(ge=1)] | None = None
    classes: Annotated[tuple[str, ...], Field(min_length=2)] = DEFAULT_CLASSES
    """Class names in label order (label i = ``classes[i]``); see :data:`KNOWN_CLASSES`. With two classes
    the second is the signal (``is_signal`` = label)."""
    split: SplitConfig = SplitConfig()
    generator: GeneratorConfig = GeneratorConfig()

    _classes = field_validator("classes")(classmethod(lambda cls, v: check_classes(v)))
