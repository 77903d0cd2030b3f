"""The ``data`` section: the jet file, its size and splits, and the Pythia 8 + FastJet generator."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

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


MAX_N_JETS = 10_000_000
"""Five times the public Top Quark Tagging sample (2M jets); ~32 GB of constituents, assembled in memory."""


class DataConfig(Section):
    path: str | None = None
    """An existing file (own or Top Quark Tagging layout). None: generate artifacts/<run>/data/jets.h5."""
    n_jets: Annotated[int, Field(ge=2, le=MAX_N_JETS)] = 60_000
    """At most :data:`MAX_N_JETS`: the file is assembled in memory (~3.2 kB per jet at 200 constituents)."""
    max_constituents: Annotated[int, Field(ge=1, le=1000)] = 200
    workers: Annotated[int, Field(ge=1)] | None = None
    split: SplitConfig = SplitConfig()
    generator: GeneratorConfig = GeneratorConfig()
