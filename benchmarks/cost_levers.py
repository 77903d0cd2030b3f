"""The three cost levers (folding, pruning, per-layer precision) on the default jets: firmware cost and physics.

    .venv/bin/python benchmarks/cost_levers.py [--config configs/default.yaml] [--seeds 3] [--sparsity 0.75]
        [--ii 4] [--students mlp deepsets] [--levers fold prune layers] [--out DIR] [--train-only]

Needs the run's data and teachers (``make teacher CONFIG=...``). For every student of the config:

* ``base``: the distilled student as ``make distill`` trains it (seed index 0 is the run's own seed, so the
  same config and seed give the deployed student), over ``--seeds`` seeds;
* ``prune``: the same, from the same initial weights, pruned to ``--sparsity`` during training;
* ``layers``: per-layer precision, the first weight layer at the student's widths and every later one at
  4-bit weights (one seed);
* ``fold`` (Deep Sets only): the ``base`` seed-0 student folded at II = ``--ii`` (the same model: physics
  unchanged, firmware cheaper).

Firmware per design: the open-source RTL flow (da4ml Verilog, Verilator against QKeras on the test jets +
10,000 edge inputs, Yosys ``synth_xilinx`` counts) and the hls4ml flow's estimate (post-synthesis LUT/FF/DSP,
no vendor tool runs here; a folded design is estimated at reuse factor 1, so its hls4ml II is the folding). Physics on the test split: AUC and R30 (1/eps_B at 30% signal efficiency) with
their bootstrap errors; for several seeds the mean and the spread. Trained students and per-design results
are cached in ``--out`` (default ``artifacts/<run>/cost_levers``): a rerun skips what is there.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

log = logging.getLogger("cost_levers")


def weight_layers(spec: Any) -> list[str]:
    """The student's weight layers in order (the names kd_trigger.models.students gives them)."""
    if spec.kind == "mlp":
        return [*(f"dense_{i}" for i in range(len(spec.hidden))), "output"]
    return [
        *(f"phi_{i}" for i in range(len(spec.hidden))),
        *(f"rho_{i}" for i in range(len(spec.head))),
        "output",
    ]


def variant_spec(spec: Any, variant: str, sparsity: float) -> Any:
    """The student of one variant: ``base``, ``prune`` (``sparsity``) or ``layers`` (later layers at 4 bits)."""
    from kd_trigger.config import StudentConfig

    raw = spec.model_dump(mode="json")
    if variant == "prune":
        raw["sparsity"] = sparsity
    elif variant == "layers":
        raw["quant"]["layers"] = {name: {"weight_bits": 4} for name in weight_layers(spec)[1:]}
    return StudentConfig.model_validate(raw)


class Jets:
    """The run's splits as the distill stage uses them, with one student's inputs and teacher logits."""

    def __init__(self, cfg: Any) -> None:
        from kd_trigger.data.readers import load_jets

        data = load_jets(cfg.data_path, cfg)
        self.train, self.val, self.test = (data.select(s) for s in ("train", "val", "test"))
        self.cfg = cfg

    def for_student(self, spec: Any) -> dict[str, Any]:
        from kd_trigger.distill.teachers import cached_logits
        from kd_trigger.models.students import student_inputs

        teacher = self.cfg.teacher_of(spec).name
        return {
            "train": (
                student_inputs(spec, self.train.constituents),
                self.train.is_signal.astype(np.int32),
                cached_logits(self.cfg, teacher, "train"),
            ),
            "val": (
                student_inputs(spec, self.val.constituents),
                self.val.is_signal.astype(np.int32),
                cached_logits(self.cfg, teacher, "val"),
            ),
            "x_test": student_inputs(spec, self.test.constituents),
            "y_test": self.test.is_signal.astype(np.int64),
        }


def train(
    cfg: Any, spec: Any, seed_index: int, inputs: dict[str, Any], path: Path
) -> tuple[Any, dict[str, Any]]:
    """The distilled student ``spec`` for seed index ``seed_index`` (cached at ``path``) and its test physics."""
    import tensorflow as tf

    from kd_trigger.distill.pruning import pruning_plan
    from kd_trigger.distill.training import student_seed_for, train_student
    from kd_trigger.evaluate import score_metrics
    from kd_trigger.models.students import build_student, kernel_sparsity, load_student_file, save_student

    record_path = path.with_suffix(".json")
    if path.is_file() and record_path.is_file():
        model = load_student_file(path, spec)
        return model, json.loads(record_path.read_text())
    seed = student_seed_for(cfg.run.seed + seed_index, spec)
    tf.keras.utils.set_random_seed(seed)
    model = build_student(spec)
    temperature, kd_weight = cfg.kd_setting(spec)
    setting = cfg.distill.model_copy(update={"temperature": temperature, "kd_weight": kd_weight})
    start = time.time()
    record = train_student(
        model,
        setting,
        "kd",
        inputs["train"],
        inputs["val"],
        seed=seed,
        label=f"{spec.name}/{path.stem}",
        pruning=pruning_plan(spec, setting.epochs),
    )
    logits = np.asarray(model.predict(inputs["x_test"], batch_size=4096, verbose=0), dtype=np.float64)
    physics = score_metrics(inputs["y_test"], logits, cfg.distill.rejection_bootstrap, cfg.run.seed)
    result = {
        "seed_index": seed_index,
        "seed": seed,
        "auc": physics["auc"],
        "auc_err": physics["auc_err"],
        "r30": physics["rejection_at_30"],
        "r30_err": physics["rejection_at_30_err"],
        "r50": physics["rejection_at_50"],
        "best_epoch": record.best_epoch,
        "epochs_run": record.epochs_run,
        "train_s": round(time.time() - start, 1),
        "sparsity": kernel_sparsity(model),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    save_student(model, path)
    record_path.write_text(json.dumps(result, indent=1))
    return model, result


def designs_of(spec: Any, variant: str, args: argparse.Namespace) -> list[int]:
    """The foldings built for one variant: a Deep Sets base at II 1 and at ``--ii`` (the folding lever),
    its other variants at ``--ii`` (levers combined, as deployed); an MLP at II 1."""
    if spec.kind != "deepsets":
        return [1]
    if variant == "base" and "fold" in args.levers:
        return [1, args.ii]
    return [args.ii]


def firmware(
    cfg: Any, model: Any, spec: Any, ii_cycles: int, inputs: dict[str, Any], out: Path, synth: bool = True
) -> dict[str, Any]:
    """RTL flow (Yosys unless ``synth`` is False) and hls4ml estimate of one design, cached in
    ``out/firmware.json``."""
    import tempfile

    from kd_trigger.fpga.estimate import estimate_model
    from kd_trigger.fpga.parts import yosys_family
    from kd_trigger.hls.convert import convert_model
    from kd_trigger.rtl import run_rtl_flow
    from kd_trigger.rtl.student import rtl_inputs

    cached = out / "firmware.json"
    if cached.is_file():
        return json.loads(cached.read_text())
    hls = cfg.hls
    if ii_cycles > 1:
        # The hls4ml design at the same II: phi folded over k cycles (ParallelizationFactor) at reuse 1.
        hls = hls.model_copy(update={"ii_cycles": ii_cycles, "reuse_factor": 1})
    n = hls.csim_count(len(inputs["x_test"]))
    with tempfile.TemporaryDirectory() as tmp:
        conv = convert_model(model, Path(tmp) / "p", hls, compile_model=False)
        est = estimate_model(conv.hls_model, hls.reuse_factor, hls.clock_period_ns).to_dict()
    start = time.time()
    rtl = run_rtl_flow(
        model,
        out / "rtl",
        rtl_inputs(model, inputs["x_test"][:n], seed=cfg.run.seed),
        clock_period_ns=hls.clock_period_ns,
        part_family=yosys_family(hls.part),
        ii_cycles=ii_cycles,
        synth=synth,
    ).to_dict()
    sim = rtl["rtl_sim"]
    yosys = rtl["yosys"] or {}
    result = {
        "rtl_exact": sim["n_exact_samples"] == sim["n_samples"],
        "rtl_samples": sim["n_samples"],
        "rtl_ii": rtl["ii_cycles"],
        "rtl_latency_ns": rtl["latency_ns"],
        "yosys_lut": yosys.get("lut"),
        "yosys_ff": yosys.get("ff"),
        "yosys_dsp": yosys.get("dsp"),
        "da4ml_ff": rtl["da4ml_estimate"]["ff"],
        "da4ml_lut": rtl["da4ml_estimate"]["lut"],
        "hls4ml_ii": est["ii_cycles"],
        "hls4ml_latency_ns": est["latency_cycles"] * hls.clock_period_ns,
        "hls4ml_lut": est["total"]["lut"],
        "hls4ml_ff": est["total"]["ff"],
        "hls4ml_dsp": est["total"]["dsp"],
        "rtl_wall_s": round(time.time() - start, 1),
        "load_1min": os.getloadavg()[0],
    }
    cached.write_text(json.dumps(result, indent=1))
    return result


def _mean(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.4g}"
    return f"{np.mean(values):.4g} (seeds {' / '.join(f'{v:.4g}' for v in values)})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(REPO / "configs" / "default.yaml"))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--sparsity", type=float, default=0.75)
    parser.add_argument("--ii", type=int, default=4, help="the folding of the Deep Sets 'fold' design")
    parser.add_argument("--students", nargs="+", default=None)
    parser.add_argument("--levers", nargs="+", default=["fold", "prune", "layers"])
    parser.add_argument(
        "--variants", nargs="+", default=["base", "prune", "layers"], help="which trained variants to build"
    )
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--train-only", action="store_true", help="train and evaluate, build no firmware")
    parser.add_argument(
        "--synth-ii1",
        action="store_true",
        help="run Yosys on the unfolded Deep Sets too (tens of minutes on 2 cores; else da4ml's estimate)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    from kd_trigger.config import load_config

    cfg = load_config(Path(args.config))
    out = args.out or cfg.artifacts / "cost_levers"
    jets = Jets(cfg)
    rows: list[dict[str, Any]] = []
    for spec in cfg.students:
        if args.students and spec.name not in args.students:
            continue
        inputs = jets.for_student(spec)
        variants = [v for v in args.variants if v == "base" or v in args.levers]
        for variant in variants:
            vspec = variant_spec(spec, variant, args.sparsity)
            n_seeds = 1 if variant == "layers" else args.seeds
            trained = [
                train(cfg, vspec, i, inputs, out / spec.name / variant / f"s{i}.h5") for i in range(n_seeds)
            ]
            for k in designs_of(spec, variant, args):
                fw = (
                    {}
                    if args.train_only
                    else firmware(
                        cfg,
                        trained[0][0],
                        vspec,
                        k,
                        inputs,
                        out / spec.name / variant / f"ii{k}",
                        synth=k > 1 or spec.kind != "deepsets" or args.synth_ii1,
                    )
                )
                lever = "fold" if variant == "base" and k > 1 else variant
                rows.append(
                    {
                        "student": spec.name,
                        "lever": lever,
                        "ii_design": k,
                        "seeds": [r for _, r in trained],
                        **fw,
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
    print()
    print(
        "| student | lever | RTL LUT (Yosys) | RTL FF | DSP | RTL latency | RTL II | hls4ml LUT / FF / DSP (estimate) "
        "| hls4ml latency / II | AUC | R30 | sparsity | exact (RTL) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        aucs = [s["auc"] for s in r["seeds"]]
        r30s = [s["r30"] for s in r["seeds"]]
        # zeros the firmware sees (quantized kernels), over all kernel entries of the student
        sparsity = np.mean(
            [
                sum(v["quantized_zeros"] for v in s["sparsity"].values())
                / sum(v["n_weights"] for v in s["sparsity"].values())
                for s in r["seeds"]
            ]
        )
        lut = (
            f"{r['yosys_lut']:,}"
            if r.get("yosys_lut") is not None
            else f"({r.get('da4ml_lut', 0):,} da4ml est.)"
        )
        ff = (
            f"{r['yosys_ff']:,}"
            if r.get("yosys_ff") is not None
            else f"({r.get('da4ml_ff', 0):,} da4ml est.)"
        )
        fw = (
            f"{lut} | {ff} | {r['yosys_dsp'] or 0} | {r['rtl_latency_ns']:.0f} ns | {r['rtl_ii']} "
            f"| {r['hls4ml_lut']:,} / {r['hls4ml_ff']:,} / {r['hls4ml_dsp']:,} | {r['hls4ml_latency_ns']:.0f} ns / {r['hls4ml_ii']}"
            if "rtl_ii" in r
            else "- | - | - | - | - | - | -"
        )
        exact = ("yes" if r["rtl_exact"] else "NO") + f" ({r['rtl_samples']})" if "rtl_exact" in r else "-"
        print(
            f"| {r['student']} | {r['lever']}{' II ' + str(r['ii_design']) if r['ii_design'] > 1 else ''} | {fw} "
            f"| {_mean(aucs)} | {_mean(r30s)} | {sparsity:.2f} | {exact} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
