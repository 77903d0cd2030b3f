"""FPGA figures: vendor-report parsers, resource/latency estimates, trigger budgets, vendor synthesis.

Every figure produced here carries a ``source`` label saying how far it can be trusted (most first):
``"vendor post-synthesis"`` (Vivado ``report_utilization`` after synthesis), ``"yosys synth
(open-source)"`` (Yosys synthesis of the RTL flow's Verilog), ``"vendor HLS estimate"`` (Vivado/Vitis
HLS ``csynth`` report), ``"da4ml estimate"`` (da4ml's cost model of its own Verilog) and ``"estimate"``
(kd_trigger's model of the hls4ml firmware, :mod:`kd_trigger.fpga.estimate`).
"""

from __future__ import annotations

SOURCE_POST_SYNTH = "vendor post-synthesis"
SOURCE_YOSYS = "yosys synth (open-source)"
SOURCE_HLS = "vendor HLS estimate"
SOURCE_DA4ML = "da4ml estimate"
SOURCE_ESTIMATE = "estimate"

SOURCE_RANK = {SOURCE_POST_SYNTH: 4, SOURCE_YOSYS: 3, SOURCE_HLS: 2, SOURCE_DA4ML: 1, SOURCE_ESTIMATE: 1}
"""Higher is more trustworthy; budget checks and the report use the most trustworthy figure available.
The two estimates share a tier (they describe different designs and never compete within one)."""

RESOURCE_KEYS = ("lut", "ff", "dsp", "bram_18k", "uram")
RESOURCE_LABELS = {"lut": "LUT", "ff": "FF", "dsp": "DSP", "bram_18k": "BRAM_18K", "uram": "URAM"}
