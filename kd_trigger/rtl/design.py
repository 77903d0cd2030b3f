"""The layout of an emitted design: packed bit fields, probes, stage modules and ``design.json``.

What the simulation and synthesis read back (:class:`Design`); no Verilog is written here.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kd_trigger.fixed import FixedType

DESIGN_FILE = "design.json"


@dataclass(frozen=True)
class BitField:
    """One element in a packed bit vector: bits ``[offset + width - 1 : offset]`` hold ``code * 2**-frac``."""

    offset: int
    width: int
    signed: bool
    frac: int


@dataclass
class Probe:
    """A register that holds segment ``segment``'s output ``delay`` clock edges after its sample entered."""

    segment: int
    layer: str  # the Keras layer whose output it holds (the segment's last layer)
    signal: str  # name of the register in the top module
    delay: int
    width: int
    fields: list[BitField]
    groups: int = 1
    """A folded phi register holds group j of a sample ``delay + j`` edges after it entered (j < groups)."""
    rows: int = 0
    """A folded phi register: the particles of the whole sample (its ``fields`` cover one group)."""


@dataclass(frozen=True)
class StageModule:
    """One pipeline stage: a combinational module, instantiated ``rows`` times side by side."""

    name: str
    comb: Any  # da4ml CombLogic of one row
    segment: int
    rows: int

    def fields(self, qints: list[Any]) -> list[BitField]:
        """Packed fields of all rows: row r's elements follow row r-1's."""
        row = packed_fields(qints)
        width = sum(f.width for f in row)
        return [
            BitField(f.offset + r * width, f.width, f.signed, f.frac) for r in range(self.rows) for f in row
        ]


@dataclass
class Design:
    """What the simulation and synthesis need to know about the emitted Verilog."""

    top: str
    latency: int
    in_width: int
    out_width: int
    in_type: dict[str, Any]
    out_type: dict[str, Any]
    in_fields: list[BitField]
    out_fields: list[BitField]
    probes: list[Probe]
    verilog: list[str]  # relative to out_dir
    testbench: str
    synth_script: str
    segments: list[dict[str, Any]] = field(default_factory=list)
    ii_cycles: int = 1
    """Clock cycles between events. Above 1 the top module has ``in_valid``/``out_valid`` ports."""
    folding: dict[str, Any] | None = None
    interface: str = ""

    def save(self, out_dir: Path) -> Path:
        path = Path(out_dir) / DESIGN_FILE
        path.write_text(json.dumps(asdict(self), indent=1))
        return path

    @classmethod
    def load(cls, out_dir: Path) -> Design:
        data = json.loads((Path(out_dir) / DESIGN_FILE).read_text())
        data["in_fields"] = [BitField(**f) for f in data["in_fields"]]
        data["out_fields"] = [BitField(**f) for f in data["out_fields"]]
        data["probes"] = [
            Probe(**{**p, "fields": [BitField(**f) for f in p["fields"]]}) for p in data["probes"]
        ]
        return cls(**data)


def _kif(qint: Any) -> tuple[int, int, int]:
    # imported here: da4ml pulls in numba, and reading a design.json (simulation, synthesis) needs neither
    from da4ml.cmvm.types import _minimal_kif

    k, i, f = _minimal_kif(qint)
    return int(k), int(i), int(f)


def packed_fields(qints: list[Any]) -> list[BitField]:
    """da4ml's packing of elements into a bit vector: element 0 in the LSBs, each at its minimal width."""
    fields = []
    offset = 0
    for q in qints:
        k, i, f = _kif(q)
        width = k + i + f
        fields.append(BitField(offset, width, bool(k), f))
        offset += width
    return fields


def typed_fields(t: FixedType, n: int) -> list[BitField]:
    """``n`` elements of type ``t`` packed at ``t.width`` bits each."""
    return [BitField(e * t.width, t.width, t.signed, t.fractional) for e in range(n)]
