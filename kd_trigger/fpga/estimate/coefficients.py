"""The fitted numbers of the estimator: :class:`Coefficients` and the stored fit.

The fit (to every non-held-out calibration design) and its measured error on designs it was not fitted
to live in ``coefficients.json`` next to this module (installed as package data). The offline fit
(:mod:`kd_trigger.fpga.estimate.fit`, run by ``benchmarks/estimator_calibration.py --write``) writes
it with :func:`fit_json`; this module reads it once, at import. No source file is rewritten.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any

FIT_FILE_NAME = "coefficients.json"
FIT_FILE = Path(__file__).with_name(FIT_FILE_NAME)
"""The stored fit in the source tree (what ``benchmarks/estimator_calibration.py --write`` replaces)."""

LUT_FEATURES = ("adder", "mux", "act_n", "act", "round_sat", "softmax", "table", "pool", "fifo", "top")
"""Bit-count features of the LUT model (see :func:`layer_model`)."""
FF_FEATURES = ("stage", "mac_reg", "reuse", "pool_reg", "fifo", "top", "top_unused")
"""Bit-count features of the FF model."""
FEATURE_GROUP = {
    "adder": "arith",
    "mux": "arith",
    "pool": "arith",
    "act_n": "act",
    "act": "act",
    "round_sat": "round",
    "softmax": "arith",
    "table": "arith",
    "fifo": "top",
    "top": "top",
    "stage": "arith",
    "mac_reg": "arith",
    "reuse": "arith",
    "pool_reg": "arith",
    "top_unused": "unused",
}
"""Synthesis scale-factor group of each feature."""


@dataclass(frozen=True)
class Coefficients:
    """Every fitted number of the model (defaults: the fit to all non-held-out calibration designs)."""

    dsp_wide_bits: int = 11
    """A ``mul`` goes to a DSP48 only if one operand has at least this many bits ..."""
    dsp_narrow_bits: int = 5
    """... and the other at least this many (fitted to the HLS binding table, see the module doc)."""
    hls_lut: tuple[tuple[str, float], ...] = ()
    """HLS LUT per unit of each feature of :data:`LUT_FEATURES`."""
    hls_ff: tuple[tuple[str, float], ...] = ()
    """HLS FF per unit of each feature of :data:`FF_FEATURES`."""
    synth_lut_scale: tuple[tuple[str, float], ...] = ()
    """Post-synthesis LUT / HLS LUT per feature group (arith, act, round, top, unused)."""
    synth_ff_scale: tuple[tuple[str, float], ...] = ()
    """Post-synthesis FF / HLS FF per feature group."""
    t_dsp_ns: float = 5.0
    """Delay of a DSP48 multiplication (ns)."""
    t_lut_mul_ns: float = 2.0
    """Delay of a LUT constant multiplier or shift-add (ns)."""
    t_add_ns: float = 0.5
    """Delay of one adder-tree level (ns)."""
    t_act_ns: float = 0.8
    """Delay of a ReLU / quantizer without rounding (ns)."""
    t_round_ns: float = 0.0
    """Extra delay of rounding + saturation of an activation (ns)."""
    reuse_cycles: float = 0.6
    """Extra cycles per layer per extra round of the shared multipliers (rounds = hard products / units,
    at most R)."""
    softmax_cycles: int = 3
    table_cycles: int = 1
    dataflow_cycles: int = 1
    """DATAFLOW top level: cycles added at each boundary between two layer processes (channel hand-over);
    every layer then starts its own chain."""
    chain_layers: bool = True
    """True: delays of consecutive layers are chained (cut into cycles together); False: every MAC layer
    starts on a clock edge."""
    top_cycles: int = 1
    """Cycles of the top-level function besides the layers (input/output registers)."""
    softmax_bram_18k: int = 4
    table_bram_18k: int = 1

    def lut(self, which: str) -> dict[str, float]:
        """LUT coefficients per feature (``"hls"``) or post-synthesis factors per group (``"synth"``)."""
        return dict(self.hls_lut) if which == "hls" else dict(self.synth_lut_scale)

    def ff(self, which: str) -> dict[str, float]:
        """FF coefficients per feature (``"hls"``) or post-synthesis factors per group (``"synth"``)."""
        return dict(self.hls_ff) if which == "hls" else dict(self.synth_ff_scale)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data: the per-feature tables as ``{name: value}``."""
        out = asdict(self)
        for key in ("hls_lut", "hls_ff", "synth_lut_scale", "synth_ff_scale"):
            out[key] = {k: float(v) for k, v in getattr(self, key)}
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Coefficients:
        """The inverse of :meth:`to_dict` (unknown keys are ignored)."""
        kwargs = dict(data)
        for key in ("hls_lut", "hls_ff", "synth_lut_scale", "synth_ff_scale"):
            if key in kwargs and isinstance(kwargs[key], dict):
                kwargs[key] = tuple(sorted((k, float(v)) for k, v in kwargs[key].items()))
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in kwargs.items() if k in names})


def fit_json(coefficients: Coefficients, calibration: dict[str, Any]) -> str:
    """The text of ``coefficients.json``: the fitted coefficients and the calibration record.

    Keys sorted and floats written by ``repr``, so reading the text back gives bit-identical numbers and
    writing the same fit twice gives the same bytes."""
    doc = {
        "about": "written by benchmarks/estimator_calibration.py --write; do not edit by hand",
        "coefficients": coefficients.to_dict(),
        "calibration": calibration,
    }
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def read_fit(path: Path | None = None) -> tuple[Coefficients, dict[str, Any]]:
    """(coefficients, calibration record) stored in ``path`` (default: the installed coefficients.json)."""
    if path is None:
        text = resources.files("kd_trigger.fpga.estimate").joinpath(FIT_FILE_NAME).read_text()
    else:
        text = path.read_text()
    doc = json.loads(text)
    return Coefficients.from_dict(doc["coefficients"]), doc["calibration"]


COEFFICIENTS, CALIBRATION = read_fit()
"""The fit to all non-held-out calibration designs; CALIBRATION: its measured error on designs it was
not fitted to (``benchmarks/estimator_calibration.py``)."""

METHOD_NAME = "kd_trigger fitted model"
"""The short name every estimated figure is labelled with; METHOD says what it computes."""

METHOD = (
    "fitted model of hls4ml Latency strategy, io_parallel: zero and 1-2-digit (CSD) constant weights cost "
    f"no multiplier; a mul goes to a DSP48 when one operand >= {COEFFICIENTS.dsp_wide_bits} bits and the other >= {COEFFICIENTS.dsp_narrow_bits} bits, "
    "else LUTs; with reuse factor R the muls share hls4ml's multiplier_limit units; LUT/FF from bit-count "
    "features (adder trees, multiplexers, activations with rounding/saturation, softmax, DATAFLOW channels, "
    "pipeline registers) with HLS coefficients and post-synthesis factors fitted to public Vivado HLS / "
    "Vitis HLS + Vivado reports (tests/fixtures/calibration); latency = chained layer delays / (clock - "
    "uncertainty) + fixed cycles; II = R x sequential partitions. total = post-synthesis, total_hls = HLS report"
)
