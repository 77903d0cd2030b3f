"""Pruning during training (issue 20, lever 2): schedule, exact zeros in the saved file, the same schedule
for the baseline and the distilled copy, the KD loss still wired, zeros that cost nothing in the
estimator, and the pruned student bit-exact in C simulation (slow)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kd_trigger.config import DistillConfig, HlsConfig, StudentConfig
from kd_trigger.distill.pruning import PruningPlan, pruning_plan

tf = pytest.importorskip("tensorflow")

W = 0.3
T = 2.5


def _data(n: int = 256, seed: int = 0, n_particles: int = 4):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (n, n_particles, 7)).astype(np.float32)
    y = (x[:, 0, 0] + 0.5 * x[:, 1, 1] > 0).astype(np.int32)
    t = np.stack([-x[:, 0, 0], x[:, 0, 0]], axis=1).astype(np.float32) * 3
    return x, y, t


def _train_pair(spec: StudentConfig, dcfg: DistillConfig, tmp_path: Path):
    """Baseline and KD copies from the same initial weights on the same plan, saved and loaded back."""
    from kd_trigger.distill.training import VARIANTS, train_student
    from kd_trigger.layers.model import describe_layers
    from kd_trigger.models.students import build_student, load_student_file, save_student

    x, y, t = _data(n_particles=spec.n_particles)
    plan = pruning_plan(spec, dcfg.epochs)
    assert plan is not None
    tf.keras.utils.set_random_seed(1)
    init = build_student(spec).get_weights()
    out = {}
    for variant in VARIANTS:
        s = build_student(spec)
        s.set_weights(init)
        rec = train_student(
            s, dcfg, variant, (x[:192], y[:192], t[:192]), (x[192:], y[192:], t[192:]), seed=3, pruning=plan
        )
        # the trained model in memory is still one chain (the scan builds firmware from it, unsaved): shared
        # weightless layers once left it with a second input per layer ("several inputs")
        assert [spec.name for spec in describe_layers(s)] == [layer.name for layer in s.layers]
        path = save_student(s, tmp_path / f"{variant}.h5")
        out[variant] = (rec, load_student_file(path, spec))
    return plan, init, out


def test_the_schedule_is_in_whole_epochs_and_ends_inside_the_cap() -> None:
    spec = StudentConfig(name="s", kind="mlp", sparsity=0.75, sparsity_begin=0.1, sparsity_end=0.5)
    assert pruning_plan(spec, 400) == PruningPlan(0.75, 40, 200)
    assert pruning_plan(spec, 2) == PruningPlan(0.75, 0, 1)
    assert pruning_plan(spec, 1) == PruningPlan(0.75, 0, 1)
    late = spec.model_copy(update={"sparsity_begin": 0.9, "sparsity_end": 1.0})
    assert pruning_plan(late, 3) == PruningPlan(0.75, 2, 3)
    assert pruning_plan(spec.model_copy(update={"sparsity": 0.0}), 400) is None


def test_pruned_to_half_with_exact_zeros_in_the_saved_file(tmp_path: Path) -> None:
    """50% sparsity: every kernel of both saved copies holds half exact zeros (counted in the .h5 loaded
    back with qkeras' load_qmodel), both copies ran the same plan from the same start, the kept epoch is
    at the target, and the KD copy's loss is still (1 - w) CE + w T^2 KL (the baseline's is its CE)."""
    from kd_trigger.models.students import build_student, kernel_sparsity

    spec = StudentConfig(name="s", kind="mlp", n_particles=4, hidden=(16, 8), sparsity=0.5, sparsity_end=0.5)
    dcfg = DistillConfig(epochs=4, batch_size=32, patience=1, monitor="ce", temperature=T, kd_weight=W)
    plan, init, out = _train_pair(spec, dcfg, tmp_path)
    assert plan == PruningPlan(0.5, 0, 2)
    names = ["dense_0", "dense_1", "output"]
    for variant, (rec, loaded) in out.items():
        assert [
            type(layer).__name__ for layer in loaded.layers if "dense" in layer.name or layer.name == "output"
        ] == ["QDense"] * 3, "the saved model is plain QKeras (no pruning wrappers)"
        counted = kernel_sparsity(loaded)
        assert list(counted) == names
        for layer in loaded.layers:
            if layer.name in names:
                kernel = layer.get_weights()[0]
                assert np.count_nonzero(kernel == 0) == kernel.size // 2, (variant, layer.name)
                assert counted[layer.name]["sparsity"] == 0.5
                assert counted[layer.name]["quantized_zeros"] >= counted[layer.name]["zeros"]
        assert rec.pruning == plan
        assert rec.sparsity == dict.fromkeys(names, 0.5)
        assert rec.best_epoch >= plan.end_epoch
        val_ce = rec.history["val_ce"]
        assert rec.best_epoch == plan.end_epoch + int(np.argmin(val_ce[plan.end_epoch - 1 :]))
    # same start: the unpruned initial weights were the same for both copies
    fresh = build_student(spec)
    fresh.set_weights(init)
    assert all(np.array_equal(a, b) for a, b in zip(fresh.get_weights(), init, strict=True))
    base, kd = out["baseline"][0].history, out["kd"][0].history
    np.testing.assert_allclose(base["loss"], base["ce"], rtol=1e-6)
    expected = (1 - W) * np.array(kd["ce"]) + W * np.array(kd["kd"])
    np.testing.assert_allclose(kd["loss"], expected, rtol=1e-5)
    assert min(kd["kd"]) > 0
    # KD changed the training: the two copies differ (so the KD term reached the gradients)
    wb, wk = out["baseline"][1].get_weights(), out["kd"][1].get_weights()
    assert any(not np.array_equal(a, b) for a, b in zip(wb, wk, strict=True))


def test_early_stopping_never_keeps_an_epoch_before_the_target() -> None:
    """A learning rate that makes training worse every epoch: without the rule epoch 1 (unpruned) would be
    kept; with it the kept epoch is the schedule's end, at the target sparsity."""
    from kd_trigger.distill.training import train_student
    from kd_trigger.models.students import build_student

    spec = StudentConfig(name="s", kind="mlp", n_particles=4, hidden=(8,), sparsity=0.5, sparsity_end=0.75)
    dcfg = DistillConfig(epochs=4, batch_size=32, patience=1, monitor="ce", learning_rate=0.5, kd_weight=0.0)
    x, y, t = _data()
    tf.keras.utils.set_random_seed(2)
    s = build_student(spec)
    plan = pruning_plan(spec, dcfg.epochs)
    assert plan == PruningPlan(0.5, 0, 3)
    rec = train_student(
        s, dcfg, "baseline", (x[:192], y[:192], None), (x[192:], y[192:], None), seed=1, pruning=plan
    )
    assert rec.best_epoch >= 3
    assert rec.sparsity == {"dense_0": 0.5, "output": 0.5}


def _converted(model, tmp_path: Path, name: str):
    from kd_trigger.hls.convert import convert_model

    return convert_model(model, tmp_path / name, HlsConfig(reuse_factor=1), compile_model=False)


def half_zero_pair(spec: StudentConfig, seed: int):
    """(pruned, filled, kernel sizes): the same random student twice, half of each kernel zero in the
    first; in the second no weight quantizes to zero (at least the smallest weight step in magnitude)."""
    from conftest import randomize_weights

    from kd_trigger.models.students import build_student

    tf.keras.utils.set_random_seed(seed)
    filled = build_student(spec)
    randomize_weights(filled, seed)
    pruned = build_student(spec)
    pruned.set_weights(filled.get_weights())
    q = spec.quant
    lsb = 2.0 ** -(q.weight_bits - 1 - q.weight_int)
    rng = np.random.default_rng(seed)
    n_kernel = {}
    for fl, pr in zip(filled.layers, pruned.layers, strict=True):
        if hasattr(fl, "kernel"):
            k = fl.kernel.numpy()
            k = np.where(k < 0, -1.0, 1.0) * np.maximum(np.abs(k), lsb)
            zero = rng.permutation(k.size)[: k.size // 2]
            flat = k.reshape(-1).copy()
            fl.kernel.assign(flat.reshape(k.shape))
            flat[zero] = 0.0
            pr.kernel.assign(flat.reshape(k.shape))
            n_kernel[fl.name] = k.size
    return pruned, filled, n_kernel


def test_the_estimator_counts_only_nonzero_weights(tmp_path: Path) -> None:
    """The same student with half of each kernel zero, and with those zeros filled: the estimate counts
    the nonzero products only, and costs less."""
    from kd_trigger.fpga.estimate import estimate_model, layers_from_hls_model
    from kd_trigger.hls.convert import firmware_sparsity

    spec = StudentConfig(name="s", kind="mlp", n_particles=4, hidden=(16, 8))
    pruned, filled, n_kernel = half_zero_pair(spec, 4)
    conv_p, conv_f = _converted(pruned, tmp_path, "p"), _converted(filled, tmp_path, "f")
    sparsity = firmware_sparsity(conv_p.hls_model)
    assert {k: v["zeros"] for k, v in sparsity.items()} == {k: n // 2 for k, n in n_kernel.items()}
    assert all(v["zeros"] == 0 for v in firmware_sparsity(conv_f.hls_model).values())
    specs_p = {s.name: s for s in layers_from_hls_model(conv_p.hls_model, 1)}
    specs_f = {s.name: s for s in layers_from_hls_model(conv_f.hls_model, 1)}
    for name, n in n_kernel.items():
        assert specs_f[name].n_nonzero_mult == n
        assert specs_p[name].n_nonzero_mult == n - n // 2
    est_p, est_f = estimate_model(conv_p.hls_model, 1, 5.0), estimate_model(conv_f.hls_model, 1, 5.0)
    assert est_p.total["lut"] < est_f.total["lut"]
    mults_p, mults_f = est_p.to_dict()["multiplications"], est_f.to_dict()["multiplications"]
    assert (mults_p, mults_f) == (sum(n - n // 2 for n in n_kernel.values()), sum(n_kernel.values()))


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["mlp", "deepsets"])
def test_da4ml_drops_zero_weights(kind: str) -> None:
    """da4ml's cost (its LUT estimate) of the half-zero student is below that of the filled one: the
    zero constants vanish from its adder graphs."""
    from kd_trigger.rtl.program import build_program
    from kd_trigger.rtl.trace import trace_program

    spec = StudentConfig(name="s", kind=kind, n_particles=4, hidden=(8, 8), head=(8,))
    pruned, filled, _ = half_zero_pair(spec, 6)
    cost_p = trace_program(build_program(pruned)).cost
    cost_f = trace_program(build_program(filled)).cost
    assert 0 < cost_p < 0.75 * cost_f, (cost_p, cost_f)


@pytest.mark.slow
def test_pruned_deepsets_is_bit_exact_in_c_simulation(tmp_path: Path) -> None:
    """A Deep Sets student pruned to 50% in training: its firmware holds the zeros and the C simulation
    equals QKeras on every output (edge-case inputs and physics-like ones)."""
    from kd_trigger.hls.convert import convert_model, firmware_sparsity
    from kd_trigger.hls.csim import run_csim
    from kd_trigger.hls.precision import edge_case_inputs

    spec = StudentConfig(
        name="ds", kind="deepsets", n_particles=4, hidden=(8, 8), head=(8,), sparsity=0.5, sparsity_end=0.5
    )
    dcfg = DistillConfig(epochs=2, batch_size=32, patience=1, monitor="ce", temperature=T, kd_weight=W)
    _, _, out = _train_pair(spec, dcfg, tmp_path)
    model = out["kd"][1]
    converted = convert_model(model, tmp_path / "fw", HlsConfig())
    assert all(v["sparsity"] >= 0.5 for v in firmware_sparsity(converted.hls_model).values())
    edge = edge_case_inputs(converted.input_type, tuple(model.input_shape[1:]), 1000, seed=1)
    x = np.concatenate([edge.astype(np.float32), _data(500, seed=9, n_particles=4)[0] * 3])
    result, y_q, y_h = run_csim(model, converted, x, min_exact_fraction=1.0)
    assert result.exact_fraction == 1.0, result
    np.testing.assert_array_equal(y_q, y_h)
    assert len(np.unique(y_q[:, 0])) > 20


def test_a_train_step_that_skips_the_pruning_update_is_caught(monkeypatch) -> None:
    """Negative control: a Distiller whose student runs with training=False never updates the masks; the
    training ends with an error naming the shortfall instead of saving an unpruned student."""
    from kd_trigger.distill.distiller import Distiller
    from kd_trigger.distill.training import train_student
    from kd_trigger.errors import ModelError
    from kd_trigger.models.students import build_student

    def call_without_training(self, inputs, training=False):
        if isinstance(inputs, dict):
            inputs = inputs["student"]
        return self.student(inputs, training=False)

    monkeypatch.setattr(Distiller, "call", call_without_training)
    spec = StudentConfig(name="s", kind="mlp", n_particles=4, hidden=(8,), sparsity=0.5)
    dcfg = DistillConfig(epochs=2, batch_size=64, patience=1, monitor="ce", kd_weight=0.0)
    x, y, _ = _data()
    tf.keras.utils.set_random_seed(3)
    with pytest.raises(ModelError, match="pruning did not reach sparsity 0.5"):
        train_student(
            build_student(spec),
            dcfg,
            "baseline",
            (x[:192], y[:192], None),
            (x[192:], y[192:], None),
            seed=1,
            pruning=pruning_plan(spec, dcfg.epochs),
        )
