"""The ``hls`` section (firmware flows, hls4ml settings, folding) and the folding rules."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from kd_trigger.config.base import Section
from kd_trigger.config.students import StudentConfig
from kd_trigger.errors import ConfigError
from kd_trigger.fixed import FixedType


def _check_type(value: str | None) -> str | None:
    if value is None:
        return None
    FixedType.parse(value)  # ValueError names the accepted spelling
    return value


class LayerHlsConfig(Section):
    """hls4ml's per-layer settings for one layer name (of any student or model that has it)."""

    reuse_factor: Annotated[int, Field(ge=1)] | None = None
    precision: str | None = None
    """For a layer WITHOUT quantizers only: the type of its weights and biases (ap_fixed<W,I>), instead of
    ``hls.default_precision``. A quantized layer's types always come from its quantizers."""

    parallelization_factor: Annotated[int, Field(ge=1)] | None = None
    """A per-particle Conv1D (or Dense on particles): hls4ml's ParallelizationFactor, the particles
    computed at once (a divisor of the particle count); wins over ``hls.conv_parallelization`` and
    ``hls.ii_cycles``."""
    table_size: Annotated[int, Field(ge=1)] | None = None
    """A final softmax/sigmoid: hls4ml's TableSize, the entries of its lookup tables (a power of two)."""

    _type = field_validator("precision")(classmethod(lambda cls, v: _check_type(v)))


class HlsConfig(Section):
    flows: Annotated[tuple[Literal["hls4ml", "rtl"], ...], Field(min_length=1)] = ("hls4ml", "rtl")
    """Firmware flows built for every student: hls4ml's HLS C++ and/or the open-source RTL (da4ml)."""
    backend: Literal["Vitis", "Vivado"] = "Vitis"
    part: str = "xcvu13p-flga2577-2-e"
    clock_period_ns: Annotated[float, Field(gt=0)] = 5.0
    reuse_factor: Annotated[int, Field(ge=1)] = 4
    """II = 4 cycles <= 5 (a new event every 25 ns at 200 MHz); reuse 1 needs ~4x the LUTs."""
    io_type: Literal["io_parallel"] = "io_parallel"
    strategy: Literal["Latency", "Resource"] = "Latency"
    """hls4ml's Strategy (``--hls-config`` Model Strategy): scheduling only; both compute the same sums
    (every product cast to the accumulator type, then added), so the reference is the same."""
    min_exact_fraction: Annotated[float, Field(ge=0, le=1)] = 1.0
    csim_max_samples: Annotated[int, Field(ge=1)] | None = None
    """Simulate at most this many test jets (None: the whole test split)."""
    input_precision: str | None = None
    """The firmware input type (ap_fixed<W,I>) of a model without an input quantizer (``hls --model``)."""
    default_precision: str | None = None
    """The weight and bias type (ap_fixed<W,I>) of layers without quantizers, marked "assumed" in the
    report; the C simulation compares with the model whose weights are rounded to it the same way."""
    layers: dict[str, LayerHlsConfig] = Field(default_factory=dict)
    """Per-layer settings by layer name: reuse factor (hls4ml validates it) and precision."""
    conv_parallelization: Annotated[int, Field(ge=1)] | None = None
    """Per-particle Conv1D layers: hls4ml ParallelizationFactor, the particles computed in parallel.
    None: all of them (II = reuse_factor); hls4ml's own default, 1, gives II = n_particles x reuse_factor."""
    ii_cycles: Annotated[int, Field(ge=1)] | None = None
    """Fold every Deep Sets student over k clock cycles: its per-particle network (phi) exists
    ceil(n_particles / k) times and takes k groups of particles on k consecutive cycles, the pooled sum
    accumulates over them, rho runs once per event. RTL flow: II = k. hls4ml flow: the per-particle
    Conv1D's ParallelizationFactor (II = k x reuse_factor; see :func:`hls4ml_parallelization`).
    A student's own ``ii_cycles`` wins; MLP students are never folded. None: per flow, the cheapest
    folding whose II fits the budget profile's ``max_ii_cycles`` (:func:`fold_ii_cycles`). 1: no folding.
    Above ``max_ii_cycles`` the design is built and the budget verdict fails it (exit 3)."""
    configured_types: dict[str, dict[str, str]] = Field(default_factory=dict, exclude=True)
    """Per layer name, the types an hls4ml configuration gave (``hls --hls-config``), by hls4ml Precision
    key (``*``: every type of the layer). Set by the command, not in a pipeline YAML; excluded from the
    config's dump, so the pipeline's fingerprints do not change with it."""
    synth: bool = False
    """Run vendor C synthesis when the tools are on PATH (``make hls SYNTH=1`` sets it too)."""
    vivado_synth: bool = False

    _types = field_validator("input_precision", "default_precision")(
        classmethod(lambda cls, v: _check_type(v))
    )

    def check_layer_names(self, names: list[str], where: str) -> None:
        """ConfigError when ``layers`` (``--reuse LAYER=R``, ``--precision LAYER=TYPE``) names a layer not
        in ``names``: an option silently ignored would give other firmware than the one asked for."""
        unknown = [name for name in self.layers if name not in names]
        if unknown:
            raise ConfigError(
                f"hls.layers (or --reuse/--precision LAYER=...) names {', '.join(repr(n) for n in unknown)}, "
                f"not a layer of {where}; its layers: {', '.join(names)}"
            )

    def csim_count(self, n_test: int) -> int:
        """How many of ``n_test`` test jets the simulations run on (``csim_max_samples`` caps it)."""
        return n_test if self.csim_max_samples is None else min(self.csim_max_samples, n_test)


def fold_ii_cycles(student: StudentConfig, hls: HlsConfig, flow: str, max_ii_cycles: int) -> int:
    """How many clock cycles the firmware of ``student`` is folded over (k; 1 = fully parallel).

    An MLP: 1. A Deep Sets: its own ``ii_cycles``, else ``hls.ii_cycles`` (the same k in both flows),
    else the default rule, per flow: the II the budget leaves to the folding is ``max_ii_cycles`` in the
    RTL flow (II = k) and ``max_ii_cycles // reuse_factor`` in the hls4ml flow (II = k x reuse); with K
    that II capped at n_particles, phi needs ceil(n / K) copies, and k is the smallest II with that few
    copies, ceil(n / copies): the same LUTs at the lowest latency and with the fewest padding slots (16
    particles, II <= 5: k = 4, 4 copies; 8 particles: k = 4, 2 copies).
    """
    if student.kind != "deepsets":
        return 1
    if student.ii_cycles is not None:
        return student.ii_cycles
    if hls.ii_cycles is not None:
        return hls.ii_cycles
    if flow not in ("rtl", "hls4ml"):
        raise ValueError(f"flow {flow!r}: expected 'rtl' or 'hls4ml'")
    budget_ii = max_ii_cycles if flow == "rtl" else max_ii_cycles // hls.reuse_factor
    n = student.n_particles
    cap = max(1, min(budget_ii, n))
    copies = -(-n // cap)
    return -(-n // copies)


def hls4ml_parallelization(n_particles: int, ii_cycles: int) -> int:
    """hls4ml's ParallelizationFactor for a per-particle Conv1D folded over ``ii_cycles``: particles computed
    at once. hls4ml only builds divisors of n_particles (it silently takes the nearest one otherwise),
    so the smallest divisor with at least ceil(n / k) particles: II = (n / factor) x reuse <= k x reuse."""
    need = -(-n_particles // max(1, ii_cycles))
    return next(d for d in range(need, n_particles + 1) if n_particles % d == 0)
