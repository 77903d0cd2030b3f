"""Verilog pieces shared by the two top modules: bit slices, glue between packed layouts, sign/zero
extension, stage instances, pipeline and output registers, probes."""

from __future__ import annotations

from kd_trigger.rtl.design import BitField, Probe, StageModule
from kd_trigger.rtl.trace import TracedProgram


def bit_slice(signal: str, f: BitField) -> str:
    """The Verilog part-select of ``f`` in ``signal``: ``signal[msb:lsb]``."""
    return f"{signal}[{f.offset + f.width - 1}:{f.offset}]"


def _same_format(src: BitField, dst: BitField) -> bool:
    return src.width == dst.width and src.signed == dst.signed and src.frac == dst.frac


def glue(src: str, src_fields: list[BitField], dst: str, dst_fields: list[BitField]) -> list[str]:
    """Wire every element of ``src`` into its place in ``dst`` (elements da4ml dropped have width 0)."""
    lines = []
    for e, (s, d) in enumerate(zip(src_fields, dst_fields, strict=True)):
        if d.width == 0:
            continue  # constant or unused downstream: da4ml dropped the input
        if not _same_format(s, d):  # both come from the same value interval, so this cannot happen
            raise RuntimeError(f"element {e}: packed formats differ ({s} -> {d})")
        lines.append(f"assign {bit_slice(dst, d)} = {bit_slice(src, s)};")
    return lines


def extend(src: str, s: BitField, dst: str, d: BitField) -> str:
    """Place a minimal-width element into a wider fixed-point field: zero LSBs, sign/zero-extended MSBs."""
    return f"assign {bit_slice(dst, d)} = {ext_expr(src, s, d)};"


def ext_expr(src: str, s: BitField, d: BitField) -> str:
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
    parts.append(bit_slice(src, s))
    if pad:
        parts.append(f"{pad}'d0")
    return "{" + ", ".join(parts) + "}"


def da4ml_release() -> str:
    """The installed da4ml's version number, for the header of a generated top module."""
    import da4ml  # lazily, like every da4ml import here: it pulls in numba (~0.5 s)

    return str(getattr(da4ml, "__version__", "?"))


def instantiate(
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


def stage_register(g: int, w_in: int, decl: list[str], seq: list[str], body: list[str]) -> None:
    """The pipeline register q<g> between two stages of one segment: stage g's input."""
    decl.append(f"reg [{w_in - 1}:0] q{g};")
    seq.append(f"q{g} <= st{g - 1}_out;")
    body.append(f"assign st{g}_in = q{g};")


def output_register(
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
    return segment_probe(traced, stage_modules[-1].segment, f"q{n_stages}", delay, fields)


def segment_probe(
    traced: TracedProgram, seg_index: int, signal: str, delay: int, fields: list[BitField]
) -> Probe:
    """The probe on register ``signal`` that holds segment ``seg_index``'s output ``delay`` edges late."""
    seg = traced.segments[seg_index].segment
    return Probe(seg_index, seg.last.name, signal, delay, sum(f.width for f in fields), list(fields))
