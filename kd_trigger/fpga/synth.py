"""Vendor C synthesis (and optionally Vivado logic synthesis) of an hls4ml project, when the tools exist.

No vendor tool is installed on the development machines: then one log line says which tool is missing
and that the figures are estimates, and :func:`run_vendor_synthesis` returns None. On a machine with
Vitis HLS (``vitis-run``, which hls4ml 1.3's Vitis backend calls) or Vivado HLS (``vivado_hls``), hls4ml's
own build runs C synthesis (``csim=False, synth=True``), Vivado synthesis too when ``hls.vivado_synth``
is set and ``vivado`` is on PATH, and the reports are read with :mod:`kd_trigger.fpga.reports`.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from kd_trigger.config import HlsConfig
from kd_trigger.errors import ReportError
from kd_trigger.fpga.reports import read_report_path

log = logging.getLogger(__name__)

HLS_TOOLS: dict[str, tuple[str, ...]] = {"Vitis": ("vitis-run",), "Vivado": ("vivado_hls",)}
"""The executable hls4ml 1.3's ``build()`` calls for each backend."""
LEGACY_VITIS_TOOL = "vitis_hls"
VIVADO_TOOL = "vivado"


def find_vendor_tool(backend: str) -> str | None:
    """The full path of the HLS tool hls4ml needs for ``backend``, or None when it is not on PATH."""
    for name in HLS_TOOLS.get(backend, ()):
        found = shutil.which(name)
        if found:
            return found
    return None


def run_vendor_synthesis(hls_model: Any, hls_cfg: HlsConfig, project_dir: Path) -> dict[str, Any] | None:
    """Run vendor synthesis of ``hls_model`` (an hls4ml ModelGraph written to ``project_dir``) and return
    :func:`~kd_trigger.fpga.reports.read_report_path`'s figures, or None (with one log line) when
    synthesis is not requested or the tool is missing. A failed vendor run raises ReportError."""
    if not hls_cfg.synth:
        log.info(
            "vendor synthesis not requested (hls.synth is false; make hls SYNTH=1): resources are estimates"
        )
        return None
    tool = find_vendor_tool(hls_cfg.backend)
    if tool is None:
        wanted = HLS_TOOLS[hls_cfg.backend][0]
        hint = ""
        if hls_cfg.backend == "Vitis" and shutil.which(LEGACY_VITIS_TOOL):
            hint = f" ({LEGACY_VITIS_TOOL} is there, but hls4ml 1.3's Vitis backend calls {wanted})"
        log.warning(
            "vendor synthesis skipped: %s (%s backend) is not on PATH%s; resources and latency are estimates",
            wanted,
            hls_cfg.backend,
            hint,
        )
        return None
    vsynth = hls_cfg.vivado_synth
    if vsynth and shutil.which(VIVADO_TOOL) is None:
        log.warning(
            "Vivado logic synthesis skipped: %s is not on PATH; only the HLS estimates are read", VIVADO_TOOL
        )
        vsynth = False
    log.info("running %s C synthesis%s in %s", tool, " + Vivado synthesis" if vsynth else "", project_dir)
    try:
        hls_model.build(csim=False, synth=True, vsynth=vsynth)
    except Exception as err:  # noqa: BLE001 - hls4ml raises bare Exception; report it as one line
        raise ReportError(f"vendor synthesis in {project_dir} failed: {err}") from None
    figures = read_report_path(Path(project_dir), part=hls_cfg.part)
    figures["vendor_tool"] = tool
    return figures
