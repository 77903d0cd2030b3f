"""The hls stage: distilled students -> hls4ml firmware -> bit-exact C simulation -> resources -> budget.

``hls_stage`` works on a run's students (it reads the distill stage's models and the data stage's
test jets; it never runs them); :mod:`kd_trigger.hls.saved_model` does the same for any saved QKeras
model (``kd-trigger hls --model PATH.h5 --out DIR``). Both build with :mod:`kd_trigger.hls.build`: the
HLS project and its report (:class:`kd_trigger.contracts.HlsReport`), failing (CsimMismatchError, exit 1)
when the C simulation does not agree with QKeras as exactly as ``hls.min_exact_fraction`` requires.
"""

from __future__ import annotations

import logging

import numpy as np

from kd_trigger.contracts import HlsReport
from kd_trigger.data.readers import load_jets
from kd_trigger.errors import EXIT_BUDGET, EXIT_OK
from kd_trigger.fpga.budget import load_budget
from kd_trigger.hls.build import apply_budget, convert_and_simulate, rtl_inputs, run_rtl
from kd_trigger.layout import ProjectLayout, RunLayout
from kd_trigger.models.students import load_student_file, student_inputs
from kd_trigger.report.markdown import verdict_table
from kd_trigger.stages import StageContext, StageResult

log = logging.getLogger(__name__)


def hls_stage(ctx: StageContext) -> StageResult:
    """Firmware for every distilled student of the run; exit status 3 when a budget is broken.

    Raises CsimMismatchError (exit 1) naming the first diverging layer when a C simulation is not exact
    enough: nothing of this stage is then committed.
    """
    cfg = ctx.cfg
    layout = RunLayout.of(cfg)
    test = load_jets(cfg.data_path, cfg).select("test")
    n = cfg.hls.csim_count(len(test.is_signal))
    labels = np.asarray(test.is_signal[:n], dtype=np.int8)
    reports: list[HlsReport] = []
    max_ii = load_budget(cfg.budget).max_ii_cycles  # the default folding of Deep Sets students follows it
    for spec in cfg.students:
        model = load_student_file(layout.student_model(spec.name), spec)
        x_raw = student_inputs(spec, test.constituents[:n])
        final = layout.firmware_dir(spec.name)
        k_hls, k_rtl = cfg.ii_cycles_of(spec, "hls4ml", max_ii), cfg.ii_cycles_of(spec, "rtl", max_ii)
        hls = cfg.hls.model_copy(update={"ii_cycles": k_hls})
        log.info(
            "student %s: converting the distilled model (folded over %d cycles), C-simulating %d test jets",
            spec.name,
            k_hls,
            n,
        )
        project = ProjectLayout(ctx.out(final))
        report, _ = convert_and_simulate(model, project.root, hls, x_raw, labels, spec.name, final)
        if "rtl" in cfg.hls.flows:
            log.info(
                "student %s: the open-source RTL flow (da4ml, Verilator, Yosys) at II %d", spec.name, k_rtl
            )
            run_rtl(
                model,
                project.rtl,
                cfg.hls,
                rtl_inputs(model, x_raw, seed=cfg.run.seed),
                report,
                ii_cycles=k_rtl,
            )
        apply_budget(report, cfg)
        report.write(project.report)
        reports.append(report)
    broken = [r.student for r in reports if r.budget is not None and not r.budget.passed]
    log.info("hls verdict (profile %s):\n%s", cfg.budget.profile, verdict_table(reports))
    if broken:
        log.error("trigger budget %s broken by: %s", cfg.budget.profile, ", ".join(broken))
    return StageResult(
        exit_status=EXIT_BUDGET if broken else EXIT_OK,
        extra={"students": [s.name for s in cfg.students], "broken": broken},
    )
