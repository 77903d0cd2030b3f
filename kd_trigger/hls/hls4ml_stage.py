"""The hls4ml stage: every distilled student -> hls4ml firmware -> bit-exact C simulation -> resources.

It writes ``artifacts/<run>/stages/hls4ml/<student>/`` (the HLS project, its ``hls_report.json`` without
the RTL and budget blocks, and ``csim_outputs.npz``); the hls stage copies it into
``firmware/<run>/<student>``. In the graph only when ``hls.flows`` names ``hls4ml``. Raises
CsimMismatchError (exit 1) naming the first diverging layer when a C simulation is not exact enough:
nothing of this stage is then committed.
"""

from __future__ import annotations

import logging
from pathlib import Path

from kd_trigger.config import Config
from kd_trigger.fpga.budget import load_budget
from kd_trigger.hls.build import convert_and_simulate
from kd_trigger.hls.flows import (
    HLS4ML,
    builds,
    check_hls,
    flow_config,
    flow_dir,
    flow_outputs,
    simulated_jets,
)
from kd_trigger.layout import RunLayout
from kd_trigger.models.students import load_student_file, student_inputs
from kd_trigger.stage_types import StageContext, StageDecl, StageResult

log = logging.getLogger(__name__)


def hls4ml_stage(ctx: StageContext) -> StageResult:
    """hls4ml firmware of every distilled student, C-simulated on the test jets."""
    cfg = ctx.cfg
    jets = simulated_jets(cfg)
    max_ii = load_budget(cfg.budget).max_ii_cycles  # the default folding of Deep Sets students follows it
    for spec in cfg.students:
        model = load_student_file(RunLayout.of(cfg).student_model(spec.name), spec, len(cfg.data.classes))
        x_raw = student_inputs(spec, jets.constituents)
        k_hls = cfg.ii_cycles_of(spec, HLS4ML, max_ii)
        hls = cfg.hls.model_copy(update={"ii_cycles": k_hls})
        log.info(
            "student %s: converting the distilled model (folded over %d cycles), C-simulating %d test jets",
            spec.name,
            k_hls,
            len(jets.labels),
        )
        work = ctx.out(flow_dir(cfg, HLS4ML, spec.name))
        convert_and_simulate(
            model, work, hls, x_raw, jets.labels, spec.name, RunLayout.of(cfg).firmware_dir(spec.name)
        )
    return StageResult(extra={"students": [s.name for s in cfg.students]})


# -- the stage declaration ------------------------------------------------------------------------
def _hls4ml_outputs(cfg: Config) -> list[Path]:
    return flow_outputs(cfg, HLS4ML)


STAGE = StageDecl(
    HLS4ML,
    hls4ml_stage,
    flow_config,
    _hls4ml_outputs,
    needs=("data", "distill"),
    check=check_hls,
    description="hls4ml firmware per student, bit-exact C simulation, resource estimate",
    when=builds(HLS4ML),
)
