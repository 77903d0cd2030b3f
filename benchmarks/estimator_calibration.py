"""Compare kd_trigger's resource/latency estimate with real vendor reports (offline).

Each case in tests/fixtures/reports/calibration.json describes a real hls4ml design (layer by layer) and
names the report fixture holding its real Vivado/Vitis HLS and Vivado synthesis figures. Prints the
estimate, the real figures and the ratio estimate / real for LUT, FF, DSP and latency.

    .venv/bin/python benchmarks/estimator_calibration.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kd_trigger.fpga.estimate import LayerSpec, estimate_layers  # noqa: E402
from kd_trigger.fpga.reports import read_report_path  # noqa: E402

FIXTURES = REPO / "tests" / "fixtures" / "reports"


def _ratio(est: float | None, real: float | None) -> str:
    if est is None or real in (None, 0):
        return "   -"
    return f"{est / real:5.2f}"


def main() -> int:
    data = json.loads((FIXTURES / "calibration.json").read_text())
    for case in data["cases"]:
        specs = [LayerSpec(**layer) for layer in case["layers"]]
        est = estimate_layers(specs, case["reuse_factor"], case["clock_period_ns"], case["clock_uncertainty"])
        real = read_report_path(FIXTURES / case["report_dir"])
        print(f"== {case['name']}")
        print(f"   source: {case['source']} ({case['tool']})")
        print(
            f"   {'comparable' if case['comparable'] else 'NOT directly comparable'}: {case['assumptions']}"
        )
        print(f"   {'figure':<15}{'estimate':>10}{'HLS':>10}{'est/HLS':>9}{'synth':>10}{'est/synth':>10}")
        rows = [
            (k, est.total[k], (real["hls"] or {}).get(k), (real["synth"] or {}).get(k))
            for k in ("lut", "ff", "dsp")
        ]
        rows.append(("latency_cycles", est.latency_cycles, real["latency_cycles"], None))
        rows.append(("ii_cycles", est.ii_cycles, real["ii_cycles"], None))
        for name, e, h, s in rows:
            print(
                f"   {name:<15}{e:>10}{h if h is not None else '-':>10}{_ratio(e, h):>9}"
                f"{s if s is not None else '-':>10}{_ratio(e, s):>10}"
            )
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
