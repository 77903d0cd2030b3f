"""Resources of the FPGA parts we target, keyed by part name.

Figures are the device totals (not per SLR). Sources:
- VU13P, VU9P: shared/notes/physics.md, which matches the ``AvailableResources`` block that Vivado HLS
  writes into csynth.xml for these parts (the VU9P row is identical to a real Vivado HLS 2019.2 report of
  xcvu9p-flga2104-2L-e, astitwlathe/example-hls4ml, see tests/fixtures/reports/README.md).
- ZU7EV: the ``AvailableResources`` block of a real Vitis HLS 2025.2 report for xczu7ev-ffvc1156-2-e
  (taitashaw/hls4ml-fpga-classifier), and the same device in the matching Vivado utilization report.
- Z-7020: the Vivado 2019.2 utilization report of a PYNQ-Z2 design, 7z020clg400-1
  (Liu-Zhiheng/hls4ml-pynqz2-vivado2019-2-results): 53,200 LUT, 106,400 FF, 220 DSP, 140 BRAM tiles.
- KU115: AMD UltraScale product table (DS890): 663,360 LUT, 1,326,720 FF, 5,520 DSP, 2,160 36 Kb block RAMs
  (= 4,320 BRAM_18K), no URAM.
- U250, U55C (Alveo): the ``Available`` row of real C-synthesis reports for xcu250-figd2104-2L-e
  (Vivado HLS 2019.2, Hector-Plata/hls4ml-tutorial, tests/fixtures/calibration/jet_tagger_16b_rf1_u250)
  and xcu55c-fsvh2892-2L-e (Vitis HLS 2022.1, kimhaneal11/hls4ml_practice, tests/fixtures/corpus/
  u55c_qdense_64_32_1): public hls4ml designs target them.
Part names are matched case-insensitively, with or without the dashes Vivado drops in its
``Device :`` line (``xcvu9pflga2104-2L``), and by family prefix (``xcvu13p``) when the package or speed
grade differs.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from kd_trigger.errors import ConfigError


@dataclass(frozen=True)
class PartResources:
    """Total resources of one FPGA device. ``bram_18k`` counts 18 Kb block RAMs (one 36 Kb tile = 2)."""

    part: str
    lut: int
    ff: int
    dsp: int
    bram_18k: int
    uram: int

    def to_dict(self) -> dict[str, int]:
        d = asdict(self)
        d.pop("part")
        return d


PARTS: dict[str, PartResources] = {
    p.part: p
    for p in (
        PartResources("xcvu13p-flga2577-2-e", 1_728_000, 3_456_000, 12_288, 5_376, 1_280),
        PartResources("xcvu9p-flga2104-2L-e", 1_182_240, 2_364_480, 6_840, 4_320, 960),
        PartResources("xczu7ev-ffvc1156-2-e", 230_400, 460_800, 1_728, 624, 96),
        PartResources("xc7z020clg400-1", 53_200, 106_400, 220, 280, 0),
        PartResources("xcku115-flvb2104-2-e", 663_360, 1_326_720, 5_520, 4_320, 0),
        PartResources("xcu250-figd2104-2L-e", 1_728_000, 3_456_000, 12_288, 5_376, 1_280),
        PartResources("xcu55c-fsvh2892-2L-e", 1_303_680, 2_607_360, 9_024, 4_032, 960),
    )
}

# The device name without package/speed: the resources depend on the die, not on the package.
_FAMILY = re.compile(r"^(xc[a-z0-9]*?(?:vu\d+p|zu\d+(?:eg|ev|cg)|7z\d{3}|ku\d+p?))", re.IGNORECASE)


def _norm(part: str) -> str:
    # Vivado's utilization header drops the dashes and, for 7-series, the "xc" prefix.
    name = part.strip().lower().replace("-", "")
    return name if name.startswith("xc") else "xc" + name


def _die(part: str) -> str | None:
    m = _FAMILY.match(_norm(part))
    return m.group(1) if m else None


def find_part(part: str | None) -> PartResources | None:
    """The resources of ``part``, or None when the part is not in :data:`PARTS`."""
    if not part:
        return None
    for known in PARTS.values():
        if _norm(known.part) == _norm(part):
            return known
    die = _die(part)
    if die is not None:
        for known in PARTS.values():
            if _die(known.part) == die:
                return known
    return None


def part_resources(part: str) -> PartResources:
    """The resources of ``part``; ConfigError naming the known parts when it is unknown."""
    found = find_part(part)
    if found is None:
        raise ConfigError(f"unknown FPGA part {part!r}; known parts: {', '.join(PARTS)}")
    return found


def yosys_family(part: str) -> str:
    """The ``synth_xilinx -family`` of a Xilinx part: xcup for UltraScale+ (VU/KU/ZU ...p), xcu for
    UltraScale, xc7 for 7-series; UltraScale+ when the part is not recognised (the trigger boards')."""
    name = part.lower()
    if name.startswith("xc7"):
        return "xc7"
    if re.match(r"xc(vu|ku|zu)\d+p", name) or name.startswith("xczu"):
        return "xcup"
    if re.match(r"xc(vu|ku)\d+", name):
        return "xcu"
    return "xcup"
