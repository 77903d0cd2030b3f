"""FPGA figures: vendor-report parsers, resource/latency estimates, trigger budgets, vendor synthesis.

Every figure produced here carries a ``source`` label saying how far it can be trusted:
``"vendor post-synthesis"`` (Vivado ``report_utilization`` after synthesis) > ``"vendor HLS estimate"``
(Vivado/Vitis HLS ``csynth`` report) > ``"estimate"`` (our own model, :mod:`kd_trigger.fpga.estimate`).
"""

from __future__ import annotations

SOURCE_POST_SYNTH = "vendor post-synthesis"
SOURCE_HLS = "vendor HLS estimate"
SOURCE_ESTIMATE = "estimate"

SOURCE_RANK = {SOURCE_POST_SYNTH: 3, SOURCE_HLS: 2, SOURCE_ESTIMATE: 1}
"""Higher is more trustworthy; budget checks use the most trustworthy figure available."""

RESOURCE_KEYS = ("lut", "ff", "dsp", "bram_18k", "uram")
