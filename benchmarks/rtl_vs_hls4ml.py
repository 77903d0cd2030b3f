"""LUTs of the open-source RTL flow at II = 1 against the hls4ml Latency flow at the same II (reuse 1).

    .venv/bin/python benchmarks/rtl_vs_hls4ml.py [--config configs/default.yaml] [--bits 4 6 8]
                                                  [--students mlp deepsets] [--out DIR]

The students are the trained points of the run's last scan (``make scan CONFIG=...`` first): for every
(student, weight width) in ``artifacts/<run>/scan/scan.json`` the student is rebuilt and its trained
weights are loaded from the point's saved model (run from the repository root: the paths are relative). Each is then put through

* the RTL flow (da4ml trace, Verilog, Verilator simulation of the test jets + 10,000 edge inputs, Yosys
  ``synth_xilinx``): Yosys LUT (measured by open-source synthesis) and da4ml's own estimate;
* the hls4ml flow's estimator with every layer at reuse factor 1: the post-synthesis LUT/DSP estimate
  (the headline figure, calibrated on Vivado synthesis reports) and the HLS-report-level LUT estimate.

Prints one row per design with the ratios RTL / hls4ml. The like-for-like ratio is Yosys against the
post-synthesis estimate (both "what synthesis keeps"); no vendor tool runs here, so the hls4ml side is
always an estimate. The issue's target is a ratio <= 0.5. Also prints the RTL flow's CPU seconds (target
<= 10 minutes per student on 2 cores) and the 1-minute load average.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

log = logging.getLogger("rtl_vs_hls4ml")


def scan_students(cfg: Any, bits: list[int], names: list[str]) -> list[tuple[str, int, Path]]:
    """(student, weight bits, saved model) of the run's last scan (``scan/scan.json``), one per student
    and width: only points of that scan, never older cache entries of other configs."""
    scan_file = cfg.artifacts / "scan" / "scan.json"
    if not scan_file.is_file():
        raise SystemExit(f"{scan_file} does not exist: run `make scan CONFIG=...` first")
    found: dict[tuple[str, int], Path] = {}
    for point in json.loads(scan_file.read_text())["points"]:
        width = point.get("axes", {}).get("weight_bits")
        model_file = Path(point.get("project") or "") / "keras_model.keras"
        if point["student"] in names and width in bits and point.get("exact") and model_file.is_file():
            found.setdefault((point["student"], int(width)), model_file)
    return [(name, width, path) for (name, width), path in sorted(found.items())]


def load_trained(cfg: Any, student: str, width: int, path: Path) -> Any:
    """The student ``student`` at ``width``-bit weights with the trained weights stored in ``path``."""
    from kd_trigger.config import StudentConfig
    from kd_trigger.models.students import build_student
    from kd_trigger.scan_points import apply_axes

    spec = StudentConfig.model_validate(apply_axes(cfg.student(student), {"weight_bits": width}))
    model = build_student(spec)
    model.load_weights(str(path))
    return model


def measure(cfg: Any, test: Any, student: str, width: int, path: Path, out: Path) -> dict[str, Any]:
    """RTL flow (measured) and hls4ml estimate at reuse 1 of one trained student; ``test``: the test jets."""
    from kd_trigger.fpga.estimate import estimate_model
    from kd_trigger.fpga.parts import yosys_family
    from kd_trigger.hls.convert import convert_model
    from kd_trigger.models.students import student_inputs
    from kd_trigger.rtl import run_rtl_flow
    from kd_trigger.rtl.student import rtl_inputs

    model = load_trained(cfg, student, width, path)
    spec = cfg.student(student)
    x_test = student_inputs(spec, test.constituents)
    n = cfg.hls.csim_count(len(x_test))
    with tempfile.TemporaryDirectory() as tmp:
        conv = convert_model(model, Path(tmp) / "p", cfg.hls, compile_model=False)
        hls = estimate_model(conv.hls_model, 1, cfg.hls.clock_period_ns, every_layer=True).to_dict()
    start = time.time()
    rtl = run_rtl_flow(
        model,
        out / f"{student}_w{width}",
        rtl_inputs(model, x_test[:n], seed=cfg.run.seed),
        clock_period_ns=cfg.hls.clock_period_ns,
        part_family=yosys_family(cfg.hls.part),
    ).to_dict()
    yosys, da4ml = rtl["yosys"], rtl["da4ml_estimate"]
    return {
        "student": student,
        "weight_bits": width,
        "rtl_exact": f"{rtl['rtl_sim']['n_exact_samples']}/{rtl['rtl_sim']['n_samples']}",
        "rtl_latency_cycles": rtl["latency_cycles"],
        "yosys_lut": yosys["lut"],
        "yosys_ff": yosys["ff"],
        "da4ml_lut": da4ml["lut"],
        "hls4ml_ii": hls["ii_cycles"],
        "hls4ml_latency_cycles": hls["latency_cycles"],
        "hls4ml_lut": hls["total"]["lut"],
        "hls4ml_dsp": hls["total"]["dsp"],
        "hls4ml_lut_hls": hls["total_hls"]["lut"],
        "ratio_yosys_vs_postsynth": yosys["lut"] / hls["total"]["lut"],
        "ratio_da4ml_vs_postsynth": da4ml["lut"] / hls["total"]["lut"],
        "ratio_da4ml_vs_hls_level": da4ml["lut"] / hls["total_hls"]["lut"],
        "rtl_wall_s": round(time.time() - start, 1),
        "rtl_cpu_s": round(sum(rtl["cpu_seconds"].values()), 1),
        "subprocess_cpu_s": rtl["cpu_seconds"],
        "load_1min": os.getloadavg()[0],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(REPO / "configs" / "default.yaml"))
    parser.add_argument("--bits", type=int, nargs="+", default=[4, 6, 8])
    parser.add_argument("--students", nargs="+", default=["mlp", "deepsets"])
    parser.add_argument(
        "--out", type=Path, default=None, help="keep the RTL projects here (default: a temp dir)"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    from kd_trigger.config import load_config
    from kd_trigger.data.readers import load_jets

    cfg = load_config(Path(args.config))
    students = scan_students(cfg, args.bits, args.students)
    if not students:
        raise SystemExit("no exact scan point of these students and widths in the scan cache")
    test = load_jets(cfg.data_path, cfg).select("test")  # once, for every student
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        for student, width, path in students:
            log.info("%s, %d-bit weights, from %s", student, width, path.parent.parent.name)
            rows.append(measure(cfg, test, student, width, path, out))
            print(json.dumps(rows[-1]), flush=True)
    print()
    print(
        "| student | weights | RTL exact | RTL LUT (Yosys) | da4ml est. | hls4ml RF1 LUT (post-synth est.) "
        "| hls4ml DSP | Yosys / hls4ml | RTL CPU s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['student']} | {r['weight_bits']}-bit | {r['rtl_exact']} | {r['yosys_lut']:,} | {r['da4ml_lut']:,} "
            f"| {r['hls4ml_lut']:,} | {r['hls4ml_dsp']:,} | {r['ratio_yosys_vs_postsynth']:.2f} | {r['rtl_cpu_s']:.0f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
