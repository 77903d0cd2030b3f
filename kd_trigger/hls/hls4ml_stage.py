"""The hls4ml stage: every distilled student -> hls4ml firmware -> bit-exact C simulation -> resources.

It writes ``artifacts/<run>/stages/hls4ml/<student>/`` (the HLS project, its ``hls_report.json`` without
the RTL and budget blocks, and ``csim_outputs.npz``); the hls stage copies it into
``firmware/<run>/<student>``. In the graph only when ``hls.flows`` names ``hls4ml``. Raises
CsimMismatchError (exit 1) naming the first diverging layer when a C simulation is not exact enough:
nothing of this stage is then committed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kd_trigger.config import Config, StudentConfig
from kd_trigger.errors import CsimMismatchError
from kd_trigger.fpga.budget import load_budget
from kd_trigger.hls.build import convert_and_simulate
from kd_trigger.hls.convert import FINAL_INPUT_SUFFIX
from kd_trigger.hls.flows import (
    HLS4ML,
    builds,
    check_hls,
    flow_config,
    flow_dir,
    flow_outputs,
    simulated_jets,
)
from kd_trigger.layout import ProjectLayout, RunLayout
from kd_trigger.models.students import (
    HEAD_LAYER,
    load_student_file,
    student_inputs,
    with_output_head,
)
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
        final_dir = RunLayout.of(cfg).firmware_dir(spec.name)
        report, _ = convert_and_simulate(
            with_output_head(model, spec),
            work,
            hls,
            x_raw,
            jets.labels,
            spec.name,
            final_dir,
            on_converted=argmax_head(spec),
        )
        if spec.output_head != "logits":
            check_head(spec, report, ProjectLayout(work).report, ProjectLayout(final_dir).report)
    return StageResult(extra={"students": [s.name for s in cfg.students]})


def argmax_head(spec: StudentConfig) -> Callable[[Any], None] | None:
    """For an ``argmax`` head, the edit of the converted hls4ml model: its final softmax built as hls4ml's
    argmax implementation (a one-hot of the first maximum, no tables), fed the EXACT logits (the cast in
    front of a final softmax narrows them onto the lookup tables' ap_fixed<16,6>, which could merge two
    close logits and change the index). None for the other heads."""
    if spec.output_head != "argmax":
        return None

    def edit(hls_model: Any) -> None:
        layers = {layer.name: layer for layer in hls_model.get_layers()}
        layers[HEAD_LAYER].set_attr("implementation", "argmax")
        cast = layers[f"{HEAD_LAYER}{FINAL_INPUT_SUFFIX}"]
        # The cast's input is the exact logits: give its output the same type (a copy, not a rounding).
        cast.get_output_variable().type.precision = cast.get_input_variable().type.precision
        # hls4ml rendered the layers' C++ configs at conversion: render them again with the new choice.
        hls_model.apply_flow(f"{hls_model.config.backend.name.lower()}:apply_templates")

    return edit


def check_head(spec: StudentConfig, report: Any, report_path: Path, final_report: Path) -> None:
    """Record the head in the report's ``csim.final_activation`` (``head``; for argmax ``index_agreement``:
    the fraction of jets whose firmware class index equals the argmax of the exact logits) and, for
    argmax, require every index to agree (CsimMismatchError, exit 1, after writing the report)."""
    final = report.csim.final_activation
    if final is None:  # the converter always measures a final softmax; a missing block is a defect
        raise AssertionError(f"student {spec.name}: output_head {spec.output_head} but no final activation")
    final["head"] = spec.output_head
    if spec.output_head == "argmax":
        # The QKeras side is the float64 softmax of the exact logits: its argmax is theirs (exp is strictly
        # increasing, equal logits tie to the lowest index in both); the firmware's is its one-hot's.
        final["index_agreement"] = final["argmax_agreement"]
    report.write(report_path)
    if spec.output_head == "argmax" and final["index_agreement"] < 1.0:
        raise CsimMismatchError(
            f"{spec.name}: the argmax head's class index agrees with the argmax of the exact logits on "
            f"{final['index_agreement']:.6f} of the jets (required 1); see {final_report}"
        )


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
