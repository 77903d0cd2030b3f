"""One figures model for a firmware design: every figure with its value from each source, and ``best()``.

The budget check and the review report both read figures through :class:`DesignFigures`, so they can
never disagree about which number counts. A student can have two designs (flows): the hls4ml firmware
(figures: kd_trigger's estimate, vendor HLS, vendor post-synthesis) and the open-source RTL flow
(da4ml's estimate, Yosys synthesis). A design's figures all describe that one design; figures of the
two flows are never mixed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kd_trigger.contracts import HlsReport, RtlBlock
from kd_trigger.fpga import (
    RESOURCE_KEYS,
    SOURCE_DA4ML,
    SOURCE_ESTIMATE,
    SOURCE_HLS,
    SOURCE_POST_SYNTH,
    SOURCE_RANK,
    SOURCE_YOSYS,
)

LATENCY_KEYS = ("latency_cycles", "latency_ns", "ii_cycles", "clock_period_ns")
FIGURE_KEYS = (*LATENCY_KEYS, *RESOURCE_KEYS)

Number = int | float


@dataclass
class DesignFigures:
    """The figures of one design (``flow``): ``by_source[source][figure] = value``."""

    flow: str
    by_source: dict[str, dict[str, Number]] = field(default_factory=dict)

    def add(self, source: str, **figures: Number | None) -> None:
        """Record the non-None figures one source gives."""
        present = {k: v for k, v in figures.items() if v is not None}
        if present:
            self.by_source.setdefault(source, {}).update(present)

    def best(self, figure: str) -> tuple[Number | None, str | None]:
        """(value, source) of ``figure`` from the most trustworthy source that has it."""
        ranked = sorted(self.by_source.items(), key=lambda item: -SOURCE_RANK.get(item[0], 0))
        for source, figures in ranked:
            if figures.get(figure) is not None:
                return figures[figure], source
        return None, None

    def sources(self) -> list[str]:
        """The sources present, most trustworthy first."""
        return sorted(self.by_source, key=lambda s: -SOURCE_RANK.get(s, 0))

    @property
    def rank(self) -> int:
        """How trustworthy the design's resource figures are: the rank of its best resource source."""
        _, source = self.best("lut")
        return SOURCE_RANK.get(source or "", 0)


def hls4ml_figures(report: HlsReport) -> DesignFigures:
    """The hls4ml firmware's figures: our estimate, then the vendor reports when they exist."""
    figures = DesignFigures("hls4ml")
    est = report.resources
    if est is not None:
        figures.add(
            SOURCE_ESTIMATE,
            latency_cycles=est.latency_cycles,
            latency_ns=est.latency_ns,
            ii_cycles=est.ii_cycles,
            clock_period_ns=est.clock_period_ns,
            **est.total.model_dump(),
        )
    for block, source in ((report.vendor_hls, SOURCE_HLS), (report.vendor_synth, SOURCE_POST_SYNTH)):
        if block is not None:
            figures.add(
                source,
                latency_cycles=block.latency_cycles,
                latency_ns=block.latency_ns,
                ii_cycles=block.ii_cycles,
                clock_period_ns=block.clock_period_ns,
                **{k: getattr(block, k) for k in RESOURCE_KEYS},
            )
    return figures


def rtl_figures(report: HlsReport) -> DesignFigures | None:
    """The RTL flow's figures: da4ml's estimate and latency, Yosys synthesis (None without the flow).

    Yosys measures resources, not timing: the latency and II are da4ml's pipeline, labelled as its
    estimate, and timing closure needs the vendor tool.
    """
    return rtl_block_figures(report.rtl)


def rtl_block_figures(rtl: RtlBlock | None) -> DesignFigures | None:
    """:func:`rtl_figures` of the RTL flow's ``rtl`` block alone (a design built without hls4ml)."""
    if rtl is None:
        return None
    figures = DesignFigures("rtl")
    timing = {
        "latency_cycles": rtl.latency_cycles,
        "latency_ns": rtl.latency_ns,
        "ii_cycles": rtl.ii_cycles,
        "clock_period_ns": rtl.clock_period_ns,
    }
    # da4ml's estimate counts LUTs and flip-flops only; the other resources stay unknown (None).
    figures.add(SOURCE_DA4ML, **timing, **{k: getattr(rtl.da4ml_estimate, k, None) for k in RESOURCE_KEYS})
    if rtl.yosys is not None:
        figures.add(SOURCE_YOSYS, **{k: getattr(rtl.yosys, k, None) for k in RESOURCE_KEYS})
    return figures


def design_figures(report: HlsReport) -> list[DesignFigures]:
    """Every design of a student: hls4ml first (when it was built), then the RTL flow when it ran."""
    designs = [hls4ml_figures(report)] if report.csim is not None else []
    rtl = rtl_figures(report)
    if rtl is not None:
        designs.append(rtl)
    return designs
