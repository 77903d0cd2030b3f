"""The top module of a folded Deep Sets (II = k > 1): group multiplexer, phi copies, accumulator, rho."""

from __future__ import annotations

from kd_trigger.rtl.design import BitField, Probe, StageModule, typed_fields
from kd_trigger.rtl.trace import TracedProgram
from kd_trigger.rtl.verilog import (
    bit_slice,
    da4ml_release,
    ext_expr,
    extend,
    glue,
    instantiate,
    output_register,
    segment_probe,
    stage_register,
)


def folded_top_module(
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
        st_in, st_out, w_in = instantiate(g, sm, decl, body)
        first_of_segment = g == 0 or stage_modules[g - 1].segment != sm.segment
        delay = g if g <= n_phi else g + k
        if g == 0:
            body.extend(glue("x0", group_fields, "st0_in", st_in))
        elif g == n_phi:
            # The last phi register (a probe, one group per cycle), then the accumulator: rho's input.
            assert prev_out_fields is not None
            prev_w = sum(f.width for f in prev_out_fields)
            decl.append(f"reg [{prev_w - 1}:0] q{g} /* verilator public_flat_rd */;  // probe, one group")
            seq.append(f"q{g} <= st{g - 1}_out;")
            probe = segment_probe(traced, stage_modules[g - 1].segment, f"q{g}", g, prev_out_fields)
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
                    term = ext_expr(f"q{g}", prev_out_fields[r * channels + c], d)
                    if (k - 1) * m + r >= n:  # a padding slot in the last group: contributes zero
                        term = f"(last_group ? {d.width}'d0 : {term})"
                    terms.append(term)
                cur = bit_slice("acc", d)
                acc_lines.append(
                    f"if (tv{g}) {cur} <= (tg{g} == {grp_w}'d0 ? {d.width}'d0 : {cur}) + {' + '.join(terms)};"
                )
            acc_lines.append("acc_done <= last_group;")
        elif first_of_segment:
            assert prev_out_fields is not None
            prev_w = sum(f.width for f in prev_out_fields)
            decl.append(f"reg [{prev_w - 1}:0] q{g} /* verilator public_flat_rd */;  // probe")
            seq.append(f"q{g} <= st{g - 1}_out;")
            probe = segment_probe(traced, stage_modules[g - 1].segment, f"q{g}", delay, prev_out_fields)
            if g < n_phi:
                probe.groups, probe.rows = k, n
            probes.append(probe)
            body.extend(glue(f"q{g}", prev_out_fields, f"st{g}_in", st_in))
        else:
            stage_register(g, w_in, decl, seq, body)
        prev_out_fields = st_out
    assert prev_out_fields is not None
    probes.append(output_register(traced, stage_modules, prev_out_fields, n_stages + k, decl, seq))
    n_rho = n_stages - n_phi
    decl.append(f"reg [{n_rho}:1] rv = {n_rho}'d0;  // rv[i]: rho register i holds an event")
    seq.append(f"rv <= {{rv[{n_rho - 1}:1], acc_done}};" if n_rho > 1 else "rv <= acc_done;")
    outs = [
        extend(f"q{n_stages}", s, "model_out", d) for s, d in zip(prev_out_fields, out_fields, strict=True)
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
// Generated by kd_trigger.rtl with da4ml {da4ml_release()}; types are the hls4ml flow's derived types.
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
