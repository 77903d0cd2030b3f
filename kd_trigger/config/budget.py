"""The ``budget`` section and the schema of a budget profiles file (configs/budget.yaml)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from kd_trigger.config.base import Section


class BudgetOverrides(Section):
    part: str | None = None
    clock_period_ns: Annotated[float, Field(gt=0)] | None = None
    max_latency_ns: Annotated[float, Field(gt=0)] | None = None
    max_ii_cycles: Annotated[int, Field(ge=1)] | None = None
    max_fraction: (
        dict[Literal["lut", "ff", "dsp", "bram_18k", "uram"], Annotated[float, Field(ge=0, le=1)]] | None
    ) = None


class BudgetConfig(Section):
    profiles: str = "configs/budget.yaml"
    profile: str = "l1_jet_tagger_vu13p"
    overrides: BudgetOverrides = BudgetOverrides()


class ResourceFractions(Section):
    """The share of each device resource one algorithm may take (0..1); every resource must be given."""

    lut: Annotated[float, Field(ge=0, le=1)]
    ff: Annotated[float, Field(ge=0, le=1)]
    dsp: Annotated[float, Field(ge=0, le=1)]
    bram_18k: Annotated[float, Field(ge=0, le=1)]
    uram: Annotated[float, Field(ge=0, le=1)]


class PartResourcesSpec(Section):
    """Resources of a part that kd_trigger/fpga/parts.py does not know (a budget profile's ``available``)."""

    lut: Annotated[int, Field(ge=1)]
    ff: Annotated[int, Field(ge=1)]
    dsp: Annotated[int, Field(ge=0)]
    bram_18k: Annotated[int, Field(ge=0)]
    uram: Annotated[int, Field(ge=0)]


class BudgetProfileSpec(Section):
    """One named trigger budget of a profiles file (configs/budget.yaml)."""

    part: Annotated[str, Field(min_length=1)]
    clock_period_ns: Annotated[float, Field(gt=0)]
    max_latency_ns: Annotated[float, Field(gt=0)]
    max_ii_cycles: Annotated[int, Field(ge=1)]
    max_fraction: ResourceFractions
    available: PartResourcesSpec | None = None
    """Only for a part kd_trigger does not know; a known part's resources come from fpga/parts.py."""


class BudgetProfilesFile(Section):
    """The whole profiles file: ``profiles:`` mapping names to :class:`BudgetProfileSpec`."""

    profiles: Annotated[dict[Annotated[str, Field(min_length=1)], BudgetProfileSpec], Field(min_length=1)]
