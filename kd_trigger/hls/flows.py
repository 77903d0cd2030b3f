"""What the firmware stages share: the flows ``hls.flows`` may name, where each flow's work lies, the
test jets every student is simulated on, and the cheap checks run before any work.

The hls4ml stage (:mod:`kd_trigger.hls.hls4ml_stage`) and the rtl stage (:mod:`kd_trigger.rtl.stage`)
build one flow each, for every student, into ``artifacts/<run>/stages/<flow>/<student>``; the hls stage
(:mod:`kd_trigger.hls.pipeline`) assembles ``firmware/<run>/<student>`` from them and judges the budget.
Two stages, so that editing one flow's code never rebuilds the other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kd_trigger.config import Config
from kd_trigger.data.readers import load_jets
from kd_trigger.fpga.budget import check_hls_part, load_budget
from kd_trigger.layout import RunLayout
from kd_trigger.models.students import student_layer_names

HLS4ML = "hls4ml"
RTL = "rtl"


def flow_dir(cfg: Config, flow: str, student: str) -> Path:
    """``artifacts/<run>/stages/<flow>/<student>``: what the ``flow`` stage built for ``student``."""
    return RunLayout.of(cfg).flow_dir(flow, student)


def flow_outputs(cfg: Config, flow: str) -> list[Path]:
    """Every folder the ``flow`` stage writes: one per student."""
    return [flow_dir(cfg, flow, s.name) for s in cfg.students]


def builds(flow: str) -> Callable[[Config], bool]:
    """The ``when`` of a flow's stage: it is in the graph only when ``hls.flows`` names it."""

    def when(cfg: Config) -> bool:
        return flow in cfg.hls.flows

    return when


@dataclass(frozen=True)
class SimulatedJets:
    """The test jets the firmware is simulated on (the first ``hls.csim_max_samples``)."""

    constituents: np.ndarray
    labels: np.ndarray


def simulated_jets(cfg: Config) -> SimulatedJets:
    """The data stage's test split, cut to the number of jets the firmware is simulated on."""
    test = load_jets(cfg.data_path, cfg).select("test")
    n = cfg.hls.csim_count(len(test.labels))
    return SimulatedJets(test.constituents[:n], np.asarray(test.labels[:n], dtype=np.int8))


def budget_file(cfg: Config) -> list[Path]:
    """The budget profiles file (the verdict follows it)."""
    return [Path(cfg.budget.profiles)]


def flow_config(cfg: Config) -> dict[str, Any]:
    """The config a flow's firmware depends on: ``hls`` without ``flows`` (switching the other flow on
    or off rebuilds nothing), and of the budget profile only the II left to the folding of Deep Sets
    students (a new latency or LUT limit reruns the verdict, never a flow)."""
    return {
        "hls": cfg.hls.model_dump(mode="json", exclude={"flows"}),
        "max_ii_cycles": load_budget(cfg.budget).max_ii_cycles,
    }


def check_hls(cfg: Config) -> None:
    """The budget profile, the FPGA part, and ``hls.layers`` naming layers some student has."""
    load_budget(cfg.budget)
    check_hls_part(cfg.hls.part, cfg.budget)
    # The scan's designs may be deeper than the configured students: their layers count too.
    designs = list(cfg.students)
    for s in cfg.students:
        axes = cfg.scan.axes.get(s.kind)
        for hidden in (axes.hidden if axes else None) or ():
            designs.append(s.model_copy(update={"hidden": hidden}))
        for head in (axes.head if axes else None) or ():
            designs.append(s.model_copy(update={"head": head}))
    names = list(dict.fromkeys(n for s in designs for n in student_layer_names(s)))
    cfg.hls.check_layer_names(names, "any student")
