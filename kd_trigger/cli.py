"""Command line: parses arguments and calls one stage function per subcommand.

Exit status: 0 success, 2 bad input (config, file, model, report), 3 a trigger budget is broken,
1 the C simulation disagrees with QKeras beyond the configured threshold.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from kd_trigger.config import DEFAULT_CONFIG, Config, load_config, parse_config
from kd_trigger.errors import EXIT_OK, KdTriggerError
from kd_trigger.runs import setup_logging

log = logging.getLogger("kd_trigger")


def _add_config(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", type=Path, help=f"pipeline YAML (default: {DEFAULT_CONFIG})")
    p.add_argument("--force", action="store_true", help="overwrite outputs of a different configuration")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kd-trigger", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("data", help="generate top and QCD jets with Pythia 8 + FastJet (or check data.path)")
    _add_config(p)
    p.add_argument("--out", type=Path, help="output HDF5 file (default: artifacts/<run>/data/jets.h5)")
    p.add_argument("--n-jets", type=int, help="number of jets (overrides data.n_jets)")
    p.add_argument("--seed", type=int, help="random seed (overrides run.seed)")
    p.add_argument("--workers", type=int, help="worker processes (default: all cores)")

    p = sub.add_parser("teacher", help="train the LorentzNet teacher (or load teacher.path)")
    _add_config(p)

    p = sub.add_parser("distill", help="data -> teacher -> baseline and distilled students -> metrics")
    _add_config(p)

    p = sub.add_parser("hls", help="hls4ml firmware, C simulation vs QKeras, resources, budget verdict")
    _add_config(p)
    p.add_argument("--synth", action="store_true", help="run vendor C synthesis when the tools are on PATH")
    p.add_argument("--model", type=Path, help="convert this saved QKeras model instead of the run's students")
    p.add_argument("--out", type=Path, help="with --model: the HLS project directory to write")
    p.add_argument("--data", type=Path, help="with --model: a .npy of inputs to simulate (default: random)")

    p = sub.add_parser("fpga-report", help="read Vivado/Vitis HLS and Vivado reports, print JSON figures")
    p.add_argument("path", type=Path, help="an HLS project directory or report files")
    p.add_argument("--part", help="FPGA part for the 'available' resources when the report does not name it")

    p = sub.add_parser("report", help="write firmware/<run>/report.md and report.html from the stage outputs")
    _add_config(p)
    return parser


def _config(args: argparse.Namespace, **overrides: object) -> Config:
    return load_config(args.config or DEFAULT_CONFIG, overrides)


def run(args: argparse.Namespace) -> int:
    """Dispatch one parsed command; returns the exit status."""
    if args.command == "data":
        cfg = _config(
            args, **{"data.n_jets": args.n_jets, "run.seed": args.seed, "data.workers": args.workers}
        )
        from kd_trigger.data.generate import run_data_stage

        run_data_stage(cfg, out=args.out, force=args.force)
        return EXIT_OK
    if args.command == "teacher":
        cfg = _config(args)
        from kd_trigger.distill.pipeline import run_teacher_stage

        run_teacher_stage(cfg, force=args.force)
        return EXIT_OK
    if args.command == "distill":
        cfg = _config(args)
        from kd_trigger.distill.pipeline import run_distill_stage

        run_distill_stage(cfg, force=args.force)
        return EXIT_OK
    if args.command == "hls":
        synth = {"hls.synth": True} if args.synth else {}
        if args.model is not None and args.config is None and not DEFAULT_CONFIG.is_file():
            # Converting a user's model needs only the hls section: its defaults serve outside a checkout.
            cfg = parse_config({"hls": {"synth": True}} if args.synth else {}, "defaults")
        else:
            cfg = _config(args, **synth)
        if args.model is not None:
            if args.out is None:
                raise KdTriggerError("hls --model needs --out DIR: the HLS project directory to write")
            from kd_trigger.hls.pipeline import convert_saved_model

            return convert_saved_model(args.model, args.out, data_path=args.data, hls=cfg.hls)
        from kd_trigger.hls.pipeline import run_hls_stage

        return run_hls_stage(cfg, force=args.force)
    if args.command == "fpga-report":
        from kd_trigger.fpga.reports import read_report_path

        figures = read_report_path(args.path, part=args.part)
        print(json.dumps(figures, indent=2))
        return EXIT_OK
    if args.command == "report":
        cfg = _config(args)
        from kd_trigger.report.build import write_run_report

        write_run_report(cfg)
        return EXIT_OK
    raise AssertionError(f"unhandled command {args.command}")  # argparse restricts the choices


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    try:
        return run(args)
    except KdTriggerError as err:
        print(f"kd-trigger {args.command}: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("kd-trigger: interrupted", file=sys.stderr)
        return 130
