"""Open-source RTL flow for QKeras students: da4ml Verilog, Verilator bit-exactness proof, Yosys counts.

>>> result = run_rtl_flow(model, Path("firmware/rtl/mlp"), x_raw)  # doctest: +SKIP
>>> result.to_dict()["rtl_sim"]["exact_fraction"]  # doctest: +SKIP
1.0

Modules: :mod:`.program` (the student as a fixed-point program with the hls4ml flow's derived types),
:mod:`.rounding` (QKeras half-to-even rounding in integers and in da4ml), :mod:`.trace` (da4ml tracing
and pipelining), :mod:`.emit` (writes the Verilog, testbench and Yosys script; its pieces: :mod:`.design`,
:mod:`.verilog`, :mod:`.top`, :mod:`.folded`, :mod:`.testbench`), :mod:`.sim` (Verilator),
:mod:`.synth` (Yosys), :mod:`.flow` (the whole flow and its result).
"""

from kd_trigger.runs import use_own_numba_cache

use_own_numba_cache()  # before any da4ml import (they all live in this package): numba reads it once

from kd_trigger.rtl.errors import RtlMismatchError, RtlToolError  # noqa: E402
from kd_trigger.rtl.flow import (  # noqa: E402
    BuiltRtl,
    Da4mlEstimate,
    RtlResult,
    RtlSimResult,
    build_rtl,
    run_rtl_flow,
    verify_rtl,
)
from kd_trigger.rtl.synth import synthesize  # noqa: E402
from kd_trigger.rtl.trace import SolverOptions  # noqa: E402

__all__ = [
    "BuiltRtl",
    "Da4mlEstimate",
    "RtlMismatchError",
    "RtlResult",
    "RtlSimResult",
    "RtlToolError",
    "SolverOptions",
    "build_rtl",
    "run_rtl_flow",
    "synthesize",
    "verify_rtl",
]
