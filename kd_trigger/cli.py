"""Command line: parses arguments and hands each command to one function.

Pipeline commands (``data``, ``teacher``, ``distill``, ``hls``, ``report``, ``run STAGE``) all go
through :func:`kd_trigger.stages.run_targets`, which walks the stage graph up to the target.

Exit status: 0 success, 2 bad input (config, file, model, report) or an output that cannot be written,
3 a trigger budget is broken, 1 a simulation of the firmware disagrees with QKeras.
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import re
import signal
import sys
import threading
from pathlib import Path

from kd_trigger.config import DEFAULT_CONFIG, Config, apply_overrides, load_config, parse_config
from kd_trigger.config.data import DEFAULT_CLASSES
from kd_trigger.data.generate import generate_to_file
from kd_trigger.errors import EXIT_BAD_INPUT, EXIT_OK, KdTriggerError
from kd_trigger.fpga.budget import check_hls_part
from kd_trigger.fpga.reports import read_report_path
from kd_trigger.hls.project_config import ProjectConfig, read_project_config
from kd_trigger.hls.saved_model import convert_saved_model, rtl_saved_model
from kd_trigger.runs import WRITE_ERRNOS, request_termination, reset_termination, setup_logging

log = logging.getLogger("kd_trigger")

STAGE_COMMANDS = {
    "data": ["data"],
    "teacher": ["teacher"],
    "distill": ["distill"],
    "report": ["report"],
    "study": ["study"],
}
"""Commands that bring one target of the stage graph up to date (``hls`` is below: it also converts
saved models)."""


def _add_config(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", type=Path, help=f"pipeline YAML (default: {DEFAULT_CONFIG})")
    p.add_argument("--force", action="store_true", help="overwrite outputs made from another config file")


def _add_model_options(p: argparse.ArgumentParser) -> None:
    """The options ``hls --model`` and ``rtl`` share: how a saved model's types and reuse are chosen."""
    p.add_argument(
        "--input-precision",
        help="firmware input type of a model without input quantizer, e.g. 'ap_fixed<12,4>'",
    )
    p.add_argument(
        "--default-precision",
        help="weight/bias type of layers without quantizers, e.g. 'ap_fixed<16,6>' (assumed)",
    )
    p.add_argument(
        "--reuse",
        action="append",
        default=[],
        metavar="R|LAYER=R",
        help="reuse factor of every layer (R) or of one layer (LAYER=R); repeatable (rtl: checked, but its "
        "design is fully parallel, II = 1)",
    )
    p.add_argument(
        "--hls-config",
        type=Path,
        metavar="YAML",
        help="the hls4ml configuration to build (hls4ml_config.yml of a project, or config_from_keras_model's "
        "dict as YAML): its types, reuse, part, clock; the options here override single fields",
    )
    p.add_argument(
        "--precision",
        action="append",
        default=[],
        metavar="LAYER=TYPE",
        help="weight/bias type of one layer without quantizers, e.g. rho_0='ap_fixed<16,6>'; repeatable",
    )


DESCRIPTION = """Distil jet taggers into quantized students and prove their FPGA firmware bit-exact.

Pipeline commands (data, teacher, distill, hls, report, study, scan, run STAGE) bring a stage and
everything it needs up to date; 'status' shows what would run. 'hls --model' and 'rtl' convert any
saved QKeras model; 'fpga-report' reads vendor reports.

Exit status: 0 success, 1 a simulation of the firmware disagrees with QKeras, 2 bad input (config,
file, model, report) or an output that cannot be written, 3 a trigger budget is broken,
130 interrupted (Ctrl-C or SIGTERM; nothing of the unfinished stage is kept)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kd-trigger", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="bring one stage (and everything it needs) up to date")
    p.add_argument(
        "stage", help="data, teacher, teacher:<name>, distill, hls4ml, rtl, hls, report, study, scan"
    )
    _add_config(p)

    p = sub.add_parser("status", help="check a config and list each stage: up to date, or why it would run")
    p.add_argument("--config", "-c", type=Path, help=f"pipeline YAML (default: {DEFAULT_CONFIG})")
    p.add_argument("--target", default="report", help="the stage to plan up to (default: report)")

    p = sub.add_parser("data", help="generate top and QCD jets with Pythia 8 + FastJet (or check data.path)")
    _add_config(p)
    p.add_argument("--out", type=Path, help="generate into this HDF5 file instead (no run bookkeeping)")
    p.add_argument("--n-jets", type=int, help="number of jets (overrides data.n_jets)")
    p.add_argument("--seed", type=int, help="random seed (overrides run.seed)")
    p.add_argument("--workers", type=int, help="worker processes (default: all cores)")

    p = sub.add_parser("teacher", help="train every configured teacher (or check the files they name)")
    _add_config(p)

    p = sub.add_parser("distill", help="data -> teachers -> baseline and distilled students -> metrics")
    _add_config(p)

    p = sub.add_parser("study", help="multi-seed study: does KD pay, for which student, teacher and (T, w)")
    _add_config(p)

    p = sub.add_parser(
        "scan", help="design scan on Dask: KD, exactness, resources per point; Pareto fronts; best in budget"
    )
    _add_config(p)
    p.add_argument("--workers", type=int, help="local Dask process workers (overrides scan.workers)")
    p.add_argument(
        "--scheduler", help="address of a running Dask scheduler, tcp://HOST:PORT (overrides scan.scheduler)"
    )

    p = sub.add_parser("hls", help="firmware, C simulation vs QKeras, resources, budget verdict, report")
    _add_config(p)
    p.add_argument("--synth", action="store_true", help="run vendor C synthesis when the tools are on PATH")
    p.add_argument("--model", type=Path, help="convert this saved QKeras model instead of the run's students")
    p.add_argument("--out", type=Path, help="with --model: the HLS project directory to write")
    p.add_argument(
        "--data",
        type=Path,
        help="with --model: inputs to simulate, FILE.npy or FILE.npz[:ARRAY] (default: random)",
    )

    _add_model_options(p)

    p = sub.add_parser(
        "rtl", help="open-source RTL of a saved QKeras model: Verilog, exact simulation, Yosys counts"
    )
    p.add_argument(
        "--config", "-c", type=Path, help=f"pipeline YAML for the hls settings (default: {DEFAULT_CONFIG})"
    )
    p.add_argument("--model", type=Path, required=True, help="the saved QKeras model (.h5)")
    p.add_argument(
        "--out", type=Path, required=True, help="the directory to write (Verilog, testbench, logs)"
    )
    p.add_argument(
        "--data",
        type=Path,
        help="inputs to simulate, FILE.npy or FILE.npz[:ARRAY], besides 10,000 edge inputs",
    )
    p.add_argument("--force", action="store_true", help="replace a non-empty --out")
    _add_model_options(p)

    p = sub.add_parser("fpga-report", help="read Vivado/Vitis HLS and Vivado reports, print JSON figures")
    p.add_argument("path", type=Path, help="an HLS project directory or report files")
    p.add_argument("--part", help="FPGA part for the 'available' resources when the report does not name it")

    p = sub.add_parser("report", help="write firmware/<run>/report.md and report.html from the stage outputs")
    _add_config(p)
    return parser


def _config(args: argparse.Namespace, **overrides: object) -> Config:
    return load_config(args.config or DEFAULT_CONFIG, overrides)


def _hls_overrides(args: argparse.Namespace, base: dict[str, object]) -> dict[str, object]:
    """Dotted-key overrides of the hls section from the command line (validated with the config)."""
    out: dict[str, object] = {}
    if getattr(args, "synth", False):
        out["hls.synth"] = True
    if args.input_precision:
        out["hls.input_precision"] = args.input_precision
    if args.default_precision:
        out["hls.default_precision"] = args.default_precision
    layers: dict[str, dict[str, object]] = {k: dict(v) for k, v in base.items()}  # type: ignore[call-overload]
    for item in args.reuse:
        name, sep, value = item.rpartition("=")
        if not value.strip().isdigit() or (sep and not name):
            raise KdTriggerError(f"--reuse {item!r}: give a positive integer R, or LAYER=R")
        if sep:
            layers.setdefault(name, {})["reuse_factor"] = int(value)
        else:
            out["hls.reuse_factor"] = int(value)
    for item in args.precision:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise KdTriggerError(f"--precision {item!r}: write LAYER=TYPE, e.g. rho_0='ap_fixed<16,6>'")
        layers.setdefault(name, {})["precision"] = value
    if layers != base:
        out["hls.layers"] = layers
    return out


def _hls(args: argparse.Namespace) -> int:
    from kd_trigger.stages import run_targets  # the graph imports every stage module (and matplotlib)

    base_layers: dict[str, object] = {}
    if args.config is not None or DEFAULT_CONFIG.is_file():
        base_layers = {k: v.model_dump() for k, v in _config(args).hls.layers.items()}
    synth = _hls_overrides(args, base_layers)
    if args.model is None:
        for flag in ("out", "data"):
            if getattr(args, flag) is not None:
                raise KdTriggerError(f"hls --{flag} only goes with --model PATH.h5")
        return run_targets(_config(args, **synth), ["hls", "report"], force=args.force)
    if args.out is None:
        raise KdTriggerError("hls --model needs --out DIR: the HLS project directory to write")
    project, overrides = _project_overrides(args, base_layers)
    cfg = _model_config(args, overrides)
    _check_model_classes(args.model, cfg)
    return convert_saved_model(
        args.model, args.out, data_path=args.data, hls=cfg.hls, force=args.force, project=project
    )


def _project_overrides(
    args: argparse.Namespace, base_layers: dict[str, object]
) -> tuple[ProjectConfig | None, dict[str, object]]:
    """``--hls-config``'s settings, then the command-line options over them (a single field each)."""
    if args.hls_config is None:
        return None, _hls_overrides(args, base_layers)
    project = read_project_config(args.hls_config)
    overrides = project.hls_overrides({k: dict(v) for k, v in base_layers.items()})  # type: ignore[call-overload]
    layers = overrides.get("hls.layers", base_layers)
    return project, {**overrides, **_hls_overrides(args, layers)}  # type: ignore[arg-type]


def _model_config(args: argparse.Namespace, overrides: dict[str, object]) -> Config:
    """The config of ``hls --model`` and ``rtl``: the file's (or, outside a checkout, the defaults': only
    the hls section matters) with the command-line options applied, its FPGA part checked."""
    if args.config is None and not DEFAULT_CONFIG.is_file():
        cfg = apply_overrides(parse_config({}, "defaults"), overrides, "defaults")
    else:
        cfg = _config(args, **overrides)
    check_hls_part(cfg.hls.part, cfg.budget)
    return cfg


def _check_model_classes(model_path: Path, cfg: Config) -> None:
    """A config that names classes other than the default two makes ``--model`` a tagger of those classes:
    its outputs are checked against them (issue 24). The default config converts any model, as before."""
    if cfg.data.classes == DEFAULT_CLASSES:
        return
    from kd_trigger.hls.saved_model import load_qkeras_model
    from kd_trigger.models.students import check_output_classes  # TensorFlow: only with --model

    check_output_classes(load_qkeras_model(model_path), cfg.data.classes, model_path, str(cfg.source))


def run(args: argparse.Namespace) -> int:
    """Dispatch one parsed command; returns the exit status."""
    from kd_trigger.stages import run_targets  # the graph imports every stage module (and matplotlib)

    if args.command == "data":
        overrides = {"data.n_jets": args.n_jets, "run.seed": args.seed, "data.workers": args.workers}
        cfg = _config(args, **overrides)
        if args.out is not None:
            generate_to_file(cfg, args.out, force=args.force)
            return EXIT_OK
        return run_targets(cfg, ["data"], force=args.force)
    if args.command in STAGE_COMMANDS:
        return run_targets(_config(args), STAGE_COMMANDS[args.command], force=args.force)
    if args.command == "run":
        return run_targets(_config(args), [args.stage], force=args.force)
    if args.command == "status":
        from kd_trigger.stages import stage_status  # the graph: every stage module (and matplotlib)

        cfg = _config(args)
        if args.target == "scan":
            from kd_trigger.scan_points import plan_points

            # The scan's axes are checked when it plans its points, not by the config schema: plan them
            # here, so 'valid' means the scan would start (a bad axis is the same exit-2 line as 'scan').
            plan_points(cfg)
        rows = stage_status(cfg, [args.target])
        width = max(len(name) for name, _, _ in rows)
        print(f"config {cfg.source}: valid; run {cfg.run.name}")
        for name, state, why in rows:
            print(f"  {name:<{width}}  {state:<10}  {why}")
        return EXIT_OK
    if args.command == "hls":
        return _hls(args)
    if args.command == "rtl":
        base_layers: dict[str, object] = {}
        if args.config is not None or DEFAULT_CONFIG.is_file():
            base_layers = {k: v.model_dump() for k, v in _config(args).hls.layers.items()}
        project, overrides = _project_overrides(args, base_layers)
        cfg = _model_config(args, overrides)
        _check_model_classes(args.model, cfg)
        return rtl_saved_model(args.model, args.out, args.data, cfg.hls, force=args.force, project=project)
    if args.command == "scan":
        cfg = _config(args, **{"scan.workers": args.workers, "scan.scheduler": args.scheduler})
        return run_targets(cfg, ["scan"], force=args.force)
    if args.command == "fpga-report":
        figures = read_report_path(args.path, part=args.part)
        print(json.dumps(figures, indent=2))
        return EXIT_OK
    raise AssertionError(f"unhandled command {args.command}")  # argparse restricts the choices


_ERRNO_IN_TEXT = re.compile(r"errno\s*=\s*(\d+)")


def write_error(err: OSError) -> str | None:
    """One line for an OSError that means 'this output could not be written', else None.

    h5py reports write failures as OSError text with the C errno inside ("errno = 28").
    """
    code = err.errno
    if code is None:
        match = _ERRNO_IN_TEXT.search(str(err))
        code = int(match.group(1)) if match else None
    if code not in WRITE_ERRNOS:
        return None
    where = f" ({err.filename})" if getattr(err, "filename", None) else ""
    return f"cannot write output{where}: {errno.errorcode.get(code, code)} {_strerror(code)}"


def _strerror(code: int) -> str:
    return os.strerror(code).lower()


def _terminate(signum: int, frame: object) -> None:
    # SIGTERM (kill, a batch system's time limit) unwinds like Ctrl-C: worker pools are terminated,
    # staging areas removed and the run lock released by their context managers, instead of leaving
    # orphaned workers burning CPU. The flag survives where the exception is swallowed (a C callback).
    request_termination()
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    reset_termination()
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return run(args)
    except KdTriggerError as err:
        print(f"kd-trigger {args.command}: error: {err}", file=sys.stderr)
        return err.exit_code
    except OSError as err:
        message = write_error(err)
        if message is None:
            raise
        print(f"kd-trigger {args.command}: error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(
            f"kd-trigger {args.command}: interrupted; nothing of the unfinished stage was kept",
            file=sys.stderr,
        )
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
