"""The rtl stage: every distilled student -> da4ml Verilog -> Verilator proof of bit exactness -> Yosys.

It writes ``artifacts/<run>/stages/rtl/<student>/`` (the flow's folder with its ``rtl_report.json``,
:class:`kd_trigger.contracts.RtlResult`); the hls stage copies it into ``firmware/<run>/<student>/rtl``.
In the graph only when ``hls.flows`` names ``rtl``. Raises RtlMismatchError (exit 1) when the RTL is not
bit-exact: nothing of this stage is then committed.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from kd_trigger.config import Config
from kd_trigger.fpga.budget import load_budget
from kd_trigger.hls.flows import RTL, builds, check_hls, flow_config, flow_dir, flow_outputs, simulated_jets
from kd_trigger.layout import RunLayout
from kd_trigger.models.students import load_student_file, student_inputs
from kd_trigger.rtl.student import rtl_firmware, rtl_inputs
from kd_trigger.stage_types import StageContext, StageDecl, StageResult

log = logging.getLogger(__name__)


def rtl_stage(ctx: StageContext) -> StageResult:
    """The RTL flow of every distilled student, at its folding (II) of the RTL flow."""
    cfg = ctx.cfg
    jets = simulated_jets(cfg)
    max_ii = load_budget(cfg.budget).max_ii_cycles  # the default folding of Deep Sets students follows it
    for spec in cfg.students:
        model = load_student_file(RunLayout.of(cfg).student_model(spec.name), spec, len(cfg.data.classes))
        x_raw = student_inputs(spec, jets.constituents)
        k_rtl = cfg.ii_cycles_of(spec, RTL, max_ii)
        log.info("student %s: the open-source RTL flow (da4ml, Verilator, Yosys) at II %d", spec.name, k_rtl)
        x = rtl_inputs(model, x_raw, seed=cfg.run.seed)
        rtl_firmware(model, ctx.out(flow_dir(cfg, RTL, spec.name)), cfg.hls, x, ii_cycles=k_rtl)
    return StageResult(extra={"students": [s.name for s in cfg.students]})


# -- the stage declaration ------------------------------------------------------------------------
def _rtl_config(cfg: Config) -> dict[str, Any]:
    # The seed draws the on-grid edge inputs the RTL is proven on.
    return {"seed": cfg.run.seed, **flow_config(cfg)}


def _rtl_outputs(cfg: Config) -> list[Path]:
    return flow_outputs(cfg, RTL)


STAGE = StageDecl(
    RTL,
    rtl_stage,
    _rtl_config,
    _rtl_outputs,
    needs=("data", "distill"),
    check=check_hls,
    description="open-source RTL per student: da4ml Verilog, Verilator bit-exactness proof, Yosys counts",
    when=builds(RTL),
)
