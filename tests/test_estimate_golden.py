"""The estimator's numbers, pinned: every figure it gives on the calibration designs and on converted
CI-sized students (folded, pruned, per-layer settings) as they were when the estimator's per-layer
description became the layer registry's one ``LayerSpec`` (issue 19; recorded before that change and
checked bit-identical after it).

A deliberate change of the estimate (a refit of ``coefficients.json``, a model rule) changes these
numbers: print the new ones with ``python tests/test_estimate_golden.py`` and say in the commit why they
moved. A refactoring must leave them as they are.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kd_trigger.fpga.estimate.fit import samples_from_designs

REPO = Path(__file__).resolve().parents[1]
DESIGNS = REPO / "tests" / "fixtures" / "calibration" / "designs.json"

DESIGN_TOTALS = {
    "dnd_mlp_4b_z7100": (3972, 729, 0, 1, 7763, 2197, 4, 1),
    "dnd_mlp_6b_random_zu9eg": (29093, 5716, 0, 1, 57489, 7636, 5, 1),
    "har_conv1d_16b_dataflow_u250": (284748, 377197, 454, 4, 258106, 525136, 143, 128),
    "iris_mlp_16b_rf16_pruned_z7020": (3854, 3602, 17, 4, 10061, 4576, 24, 16),
    "iris_mlp_16b_rf1_dense_z7020": (11483, 779, 631, 4, 25111, 1002, 5, 1),
    "iris_mlp_16b_rf1_pruned_z7020": (2660, 278, 203, 4, 7705, 367, 5, 1),
    "iris_mlp_16b_rf1_z7020_vitis2025": (1482, 381, 114, 4, 3046, 499, 11, 1),
    "iris_mlp_16b_rf8_pruned_z7020": (3889, 2154, 31, 4, 10129, 2743, 16, 8),
    "jet_tagger_16b_pruned_u250": (13173, 3014, 777, 4, 28444, 3879, 11, 1),
    "jet_tagger_16b_rf1_u250": (43626, 9206, 1414, 4, 88525, 11720, 12, 1),
    "jet_tagger_16b_rf1_u250_vitis2022": (46857, 11481, 2476, 4, 94900, 14600, 14, 1),
    "jet_tagger_16b_rf1_vu9p": (52190, 9883, 3225, 4, 105424, 12575, 12, 1),
    "jet_tagger_16b_rf2_u250": (46161, 9663, 1459, 4, 93528, 12298, 14, 2),
    "jet_tagger_6b_rf1_u250": (16804, 1732, 22, 4, 34871, 2258, 9, 1),
    "jet_tagger_6b_rf64_pynq_z7020": (15758, 7609, 9, 4, 32808, 9698, 28, 64),
    "l1jetid_deepsets_4b_vu13p": (293708, 88375, 40, 4, 472141, 123588, 29, 2),
    "l1jetid_deepsets_6b_vu13p": (420179, 102747, 268, 4, 721659, 141787, 30, 2),
    "l1jetid_deepsets_8b_vu13p": (649306, 104242, 742, 4, 1173713, 143678, 30, 2),
    "lhc_ae_16b_rf4_a7_vitis2023": (2214, 699, 34, 0, 4467, 919, 17, 4),
    "openml_jet_16b_pruned60_u50": (13105, 3743, 815, 4, 28308, 4803, 13, 1),
    "openml_jet_hgq_1_u50": (44369, 9970, 80, 0, 89663, 12694, 10, 1),
    "openml_jet_hgq_2_u50": (26271, 4594, 11, 0, 53865, 5884, 8, 1),
    "openml_jet_hgq_3_u50": (6924, 1236, 2, 0, 15693, 1631, 7, 1),
    "openml_jet_hgq_4_u50": (3166, 390, 0, 0, 8207, 560, 6, 1),
    "openml_jet_hgq_5_u50": (4017, 706, 3, 0, 9796, 954, 7, 1),
}
"""Per design: post-synthesis LUT, FF, DSP, BRAM_18K; HLS LUT, FF; latency and II (cycles)."""

DESIGN_DIGEST = "535776294bd0e3ba2aa3953e42c3e7c6b0a4329a7046c27b80717b4700c0fb09"
"""sha256 of every design's estimate (per-layer rows, totals, overhead, latency, II) as canonical JSON."""

STUDENT_TOTALS = {
    ("deepsets", "fold2"): ((32426, 13984, 72, 0, 40834, 20309, 32, 8), (31363, 10363, 108, 0, 38738, 15723, 22, 2)),
    ("mlp", "pruned60"): ((8740, 3145, 87, 0, 17419, 4153, 11, 4), None),
    ("mlp", "perlayer"): ((13793, 3022, 0, 0, 27388, 3998, 7, 4), None),
}  # fmt: skip
"""CI students with seeded random weights, converted by hls4ml: the figures at the configured reuse
factor, and (where given) the same design with every layer at reuse 1 (``every_layer``)."""


def totals(estimate: dict[str, Any]) -> tuple[int, ...]:
    """The figures :data:`DESIGN_TOTALS` pins, from an estimate's ``to_dict()``."""
    t, h = estimate["total"], estimate["total_hls"]
    return (t["lut"], t["ff"], t["dsp"], t["bram_18k"], h["lut"], h["ff"], estimate["latency_cycles"], estimate["ii_cycles"])  # fmt: skip


def design_estimates() -> dict[str, dict[str, Any]]:
    """Every calibration design's estimate (the stored fit), as JSON data."""
    return {s.name: s.estimate().to_dict() for s in samples_from_designs(json.loads(DESIGNS.read_text()))}


def digest(estimates: dict[str, dict[str, Any]]) -> str:
    keys = ("layers", "total", "total_hls", "overhead", "latency_cycles", "ii_cycles", "pipeline_style")
    canonical = {name: {k: e[k] for k in keys} for name, e in estimates.items()}
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


def test_calibration_design_estimates_are_unchanged() -> None:
    estimates = design_estimates()
    assert {name: totals(e) for name, e in estimates.items()} == DESIGN_TOTALS
    assert digest(estimates) == DESIGN_DIGEST


def student_estimate(kind: str, variant: str, tmp_path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(estimate, every layer at reuse 1) of the CI student ``kind`` in ``variant``: ``fold2`` (Deep Sets
    folded over 2 cycles), ``pruned60`` (60% of the kernel entries zero), ``perlayer`` (4-bit weights on
    the first weight layer, reuse 2 there and 1 on the output)."""
    import tensorflow as tf

    from kd_trigger.config import load_config
    from kd_trigger.config.firmware import LayerHlsConfig
    from kd_trigger.config.students import LayerQuantConfig
    from kd_trigger.fpga.estimate import estimate_model
    from kd_trigger.hls.convert import convert_model
    from kd_trigger.models.students import build_student

    cfg = load_config(REPO / "configs" / "ci.yaml")
    student = next(s for s in cfg.students if s.kind == kind)
    hls = cfg.hls
    seed = {("mlp", "pruned60"): 101, ("mlp", "perlayer"): 103, ("deepsets", "fold2"): 108}[(kind, variant)]
    prune = 0.6 if variant == "pruned60" else 0.0
    if variant == "fold2":
        hls = hls.model_copy(update={"ii_cycles": 2})
    if variant == "perlayer":
        first = "dense_0" if kind == "mlp" else "phi_0"
        quant = student.quant.model_copy(
            update={"layers": {first: LayerQuantConfig(weight_bits=4, weight_int=1)}}
        )
        student = student.model_copy(update={"quant": quant})
        layers = {first: LayerHlsConfig(reuse_factor=2), "output": LayerHlsConfig(reuse_factor=1)}
        hls = hls.model_copy(update={"layers": layers})
    tf.keras.utils.set_random_seed(1)
    model = build_student(student)
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if hasattr(layer, "kernel"):
            kernel = rng.normal(0.0, 0.5, layer.kernel.shape).astype(np.float32)
            if prune:
                kernel[rng.random(kernel.shape) < prune] = 0.0
            layer.kernel.assign(kernel)
            layer.bias.assign(rng.normal(0.0, 0.5, layer.bias.shape).astype(np.float32))
    converted = convert_model(model, tmp_path / f"{kind}_{variant}", hls, compile_model=False)
    hm = converted.hls_model
    return (
        estimate_model(hm, hls.reuse_factor, hls.clock_period_ns).to_dict(),
        estimate_model(hm, 1, hls.clock_period_ns, every_layer=True).to_dict(),
    )


@pytest.mark.parametrize(("kind", "variant"), list(STUDENT_TOTALS))
def test_student_estimates_are_unchanged(kind: str, variant: str, tmp_path: Path) -> None:
    """A real hls4ml conversion (no compile) read through the registry's LayerSpec: the same figures."""
    estimate, at_ii1 = student_estimate(kind, variant, tmp_path)
    want, want_ii1 = STUDENT_TOTALS[(kind, variant)]
    assert totals(estimate) == want
    if want_ii1 is not None:
        assert totals(at_ii1) == want_ii1


if __name__ == "__main__":  # print the numbers this file pins (after a deliberate change of the estimate)
    found = design_estimates()
    print(json.dumps({name: totals(e) for name, e in found.items()}, indent=1))
    print("DESIGN_DIGEST =", digest(found))
