"""Issue 22's corpus table: every public design of tests/fixtures/corpus converted as published.

For each design it runs the real command, ``kd-trigger hls --model M --hls-config hls4ml_config.yml
--out WORK/<design>`` (hls4ml conversion, g++ C simulation, precision loss, resource estimate), and prints
one row: repository@commit, the exit status, whether the C simulation equals the reference of the
configured types, the precision loss the configured types cause (overflow count over all layers, the
largest output error, the first layer that overflows, the share of changed decisions) and, where the
design has a vendor C-synthesis report, the estimate against it (LUT, FF, DSP, latency, II: the
``total_hls`` estimate and the report's figures; ratio estimate / real, latency and II as differences).

A design whose report was made for another part or clock than its config names (``report_design`` in
corpus.json) is converted with a copy of its config carrying the report's Part and ClockPeriod, so the
estimate describes the synthesised design; the row says so. Each conversion compiles with g++ (1-5
minutes each): run it under ``nice``. ``--reuse`` reads the hls_report.json of an earlier run instead.

    nice -n 15 .venv/bin/python benchmarks/corpus_table.py --work /tmp/corpus-table
    .venv/bin/python benchmarks/corpus_table.py --work /tmp/corpus-table --reuse   # print again
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kd_trigger.fpga.reports import CsynthReport, parse_report_file  # noqa: E402
from kd_trigger.layout import HLS_REPORT_FILE as REPORT_FILE  # noqa: E402

CORPUS = REPO / "tests" / "fixtures" / "corpus"
log = logging.getLogger("corpus_table")


def config_for(design: dict[str, Any], work: Path) -> Path:
    """The published config, or a copy with the Part / ClockPeriod its vendor report was made for."""
    published = CORPUS / design["name"] / "hls4ml_config.yml"
    changes = design.get("report_design")
    if not changes:
        return published
    text = published.read_text()
    # the published file carries hls4ml's own tags (!keras_model): keep them as text, change two keys
    lines = [ln for ln in text.splitlines() if not any(ln.startswith(f"{k}:") for k in changes)]
    lines += [yaml.safe_dump({k: v}).strip() for k, v in changes.items()]
    path = work / f"{design['name']}.report_design.yml"
    path.write_text("\n".join(lines) + "\n")
    return path


def convert(design: dict[str, Any], work: Path, reuse: bool) -> tuple[int | None, dict[str, Any] | None, str]:
    """(exit status, hls_report.json, stderr's last line) of ``kd-trigger hls`` on one design."""
    from kd_trigger.cli import main

    out = work / design["name"]
    status_file = work / f"{design['name']}.status.json"
    if reuse:
        if not status_file.is_file():
            return None, None, "not run"
        saved = json.loads(status_file.read_text())
        report = json.loads((out / REPORT_FILE).read_text()) if (out / REPORT_FILE).is_file() else None
        return saved["exit"], report, saved["message"]
    model = CORPUS / design["name"] / design["model"]
    argv = ["hls", "--model", str(model), "--hls-config", str(config_for(design, work)), "--out", str(out)]
    argv += ["--force"] if out.exists() else []
    err = io.StringIO()
    start = time.monotonic()
    with contextlib.redirect_stderr(err):
        code = main(argv)
    lines = [ln for ln in err.getvalue().splitlines() if "error:" in ln]
    message = lines[-1] if lines else ""
    log.info("%s: exit %d in %.0f s %s", design["name"], code, time.monotonic() - start, message)
    status_file.write_text(json.dumps({"exit": code, "message": message}))
    report = json.loads((out / REPORT_FILE).read_text()) if (out / REPORT_FILE).is_file() else None
    return code, report, message


def _ratio(estimate: float, real: float) -> str:
    return f"{estimate:.0f}/{real:.0f} ({estimate / real:.2f})" if real else f"{estimate:.0f}/{real:.0f}"


def row(design: dict[str, Any], code: int | None, report: dict[str, Any] | None, message: str) -> list[str]:
    source = f"{design['repository']}@{design['commit'][:10]}"
    if report is None:
        why = design["expect"].get("why") if code == 2 else None
        said = why or message.split("error: ", 1)[-1] or "no report"
        return [design["name"], source, f"no (exit {code}: {said})"] + ["-"] * 7
    exact = report["csim"]["exact_fraction"]
    loss = report["precision_loss"]
    overflows = sum(layer.get("overflow_count", 0) for layer in loss["layers"].values())
    found = (
        f"{overflows} overflows, first {loss['first_overflow_layer'] or '-'}; output max abs err "
        f"{loss['max_abs_diff']:.3g}, decisions changed {loss['decision_changed_fraction']:.3f}"
    )
    cells = [
        design["name"],
        source,
        f"yes (exit {code})",
        "yes" if exact == 1.0 else f"no ({exact:.6f})",
        found,
    ]
    hls_file = design["reports"].get("hls")
    if hls_file is None:
        return cells + ["-"] * 5
    real = parse_report_file(CORPUS / design["name"] / hls_file)
    assert isinstance(real, CsynthReport)
    est = report["resources"]
    cells += [_ratio(est["total_hls"][k], real.resources[k]) for k in ("lut", "ff", "dsp")]
    cells.append(
        f"{est['latency_cycles']}/{real.latency_worst_cycles} ({est['latency_cycles'] - (real.latency_worst_cycles or 0):+d})"
    )
    cells.append(f"{est['ii_cycles']}/{real.interval_max_cycles}")
    return cells


HEADER = [
    "design",
    "repo@commit",
    "converted",
    "exact",
    "precision loss found",
    "LUT est/real",
    "FF est/real",
    "DSP est/real",
    "latency est/real",
    "II est/real",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work", type=Path, required=True, help="folder for the converted projects")
    parser.add_argument("--reuse", action="store_true", help="read the results of an earlier run in --work")
    parser.add_argument("--only", nargs="*", help="these designs only")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    args.work.mkdir(parents=True, exist_ok=True)
    designs = json.loads((CORPUS / "corpus.json").read_text())["designs"]
    rows = []
    for design in designs:
        if args.only and design["name"] not in args.only:
            continue
        rows.append(row(design, *convert(design, args.work, args.reuse)))
    print("| " + " | ".join(HEADER) + " |")
    print("|" + "---|" * len(HEADER))
    for cells in rows:
        print("| " + " | ".join(cells) + " |")
    converted = sum(1 for cells in rows if cells[2].startswith("yes"))
    exact = sum(1 for cells in rows if cells[3] == "yes")
    print(
        f"\n{converted}/{len(rows)} converted as published, {exact}/{len(rows)} exact against the configured types"
    )
    notes = [d for d in designs if d.get("report_design") and (not args.only or d["name"] in args.only)]
    for d in notes:
        print(f"{d['name']}: converted with the report's {d['report_design']} (its config names another)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
