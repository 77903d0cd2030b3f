"""Resource counts of the emitted Verilog from Yosys ``synth_xilinx`` (open source, no vendor tools).

These are post-synthesis cell counts from Yosys, not Vivado: the LUT mapping (ABC9) and carry-chain
inference differ from Vivado's, and Yosys maps every carry chain to CARRY4 cells even for UltraScale+
(Vivado packs them into CARRY8). Report them as "yosys synth (open-source)", next to da4ml's estimate. The counts are the contract
:class:`kd_trigger.contracts.YosysBlock` (the ``yosys`` block of rtl_report.json), made here directly.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from kd_trigger.contracts import YosysBlock
from kd_trigger.rtl.design import Design
from kd_trigger.rtl.errors import RtlToolError
from kd_trigger.rtl.tools import find_yosys, run_measured

log = logging.getLogger(__name__)

FAMILIES = ("xcup", "xcu", "xc7")
LOG_FILE = "logs/yosys.log"


def cells_of_stat(stat: dict[str, Any]) -> dict[str, int]:
    """The whole design's cell counts from Yosys ``stat -json -top``: the ``design`` summary (every
    instance of a module kept as hierarchy counted), or the single module's counts without one."""
    cells = stat.get("design", {}).get("num_cells_by_type")
    if cells is None:  # a single module: Yosys reports it under "modules"
        cells = next(iter(stat["modules"].values()))["num_cells_by_type"]
    return {str(name): int(n) for name, n in cells.items()}


def count_cells(cells: dict[str, int], family: str, seconds: float, tool: str = "") -> YosysBlock:
    """Resource figures from Yosys' ``num_cells_by_type`` (pure function, tested on fixtures)."""

    def total(prefixes: tuple[str, ...]) -> int:
        return int(sum(n for name, n in cells.items() if name.startswith(prefixes)))

    lut_logic = total(("LUT1", "LUT2", "LUT3", "LUT4", "LUT5", "LUT6"))
    srl = total(("SRL16", "SRLC16", "SRLC32"))
    inv = int(cells.get("INV", 0))
    ff = total(("FDRE", "FDSE", "FDCE", "FDPE", "LDCE", "LDPE"))
    carry = total(("CARRY4", "CARRY8"))
    dsp = total(("DSP48", "DSP58"))
    bram = total(("RAMB18",)) + 2 * total(("RAMB36",))
    uram = total(("URAM288",))
    muxf = total(("MUXF7", "MUXF8", "MUXF9"))
    return YosysBlock(
        lut=lut_logic + srl + inv,
        ff=ff,
        carry=carry,
        dsp=dsp,
        bram_18k=float(bram),
        uram=uram,
        family=family,
        seconds=seconds,
        log=LOG_FILE,
        tool=tool,
        lut_logic=lut_logic,
        lut_srl=srl,
        lut_inv=inv,
        muxf=muxf,
        cells=dict(sorted(cells.items())),
    )


def synthesize(design: Design, out_dir: Path, family: str = "xcup") -> YosysBlock:
    """Run the design's Yosys script in ``out_dir`` and count the cells."""
    if family not in FAMILIES:
        raise ValueError(f"part family {family!r}: expected one of {', '.join(FAMILIES)}")
    yosys = find_yosys()
    out_dir = Path(out_dir)
    (out_dir / "logs").mkdir(exist_ok=True)
    stat_path = out_dir / "synth" / "yosys_stat.json"
    stat_path.unlink(missing_ok=True)
    cmd = [yosys.executable, "-q", "-l", LOG_FILE, "-s", design.synth_script]
    proc, seconds, cpu = run_measured(cmd, cwd=out_dir, capture_output=True, text=True)
    if proc.returncode != 0 or not stat_path.is_file():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise RtlToolError(
            f"Yosys failed on {design.top} (exit {proc.returncode}); see {out_dir / LOG_FILE}: {' | '.join(tail)}"
        )
    result = count_cells(cells_of_stat(json.loads(stat_path.read_text())), family, seconds, yosys.version)
    result.cpu_seconds = cpu
    log.info(
        "%s (%s): %d LUT, %d FF, %d carry, %d DSP in %.0f s",
        yosys.version,
        family,
        result.lut,
        result.ff,
        result.carry,
        result.dsp,
        seconds,
    )
    return result
