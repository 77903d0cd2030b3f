"""N-class taggers (issue 24): per-class metrics on hand-checkable arrays, figures of merit, model widths and
the distillation loss on three logits."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from kd_trigger import evaluate as ev
from kd_trigger import stats
from kd_trigger.config import Config, StudentConfig
from kd_trigger.contracts import ModelMetrics

CLASSES = ["q", "w", "t"]
# Six jets, two per class. argmax: 0, 1, 1, 2, 2, 2 -> confusion [[1, 1, 0], [0, 1, 1], [0, 0, 2]].
LABELS = np.array([0, 0, 1, 1, 2, 2])
LOGITS = np.array([[2, 0, 0], [0, 1, 0], [0, 2, 1], [0, 0, 3], [0, 0, 1], [1, 0, 2]], dtype=np.float64)


def test_class_scores_are_log_odds_and_two_class_scores_unchanged() -> None:
    # t against the rest: l2 - log(e^l0 + e^l1)
    want = LOGITS[:, 2] - np.log(np.exp(LOGITS[:, 0]) + np.exp(LOGITS[:, 1]))
    np.testing.assert_allclose(ev.class_scores(LOGITS, 2), want, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(ev.scores_from_logits(LOGITS), ev.class_scores(LOGITS, 2))
    two = np.random.default_rng(0).normal(size=(50, 2))
    assert ev.scores_from_logits(two).tolist() == (two[:, 1] - two[:, 0]).tolist()  # bit for bit
    assert ev.class_scores(two, 0).tolist() == (two[:, 0] - two[:, 1]).tolist()
    with pytest.raises(ValueError, match="class 3 out of range for 3 logits"):
        ev.class_scores(LOGITS, 3)


def test_confusion_and_per_class_metrics() -> None:
    assert ev.confusion_matrix(LABELS, LOGITS) == [[1, 1, 0], [0, 1, 1], [0, 0, 2]]
    assert ev.accuracy(LABELS, LOGITS) == pytest.approx(4 / 6)
    per = ev.per_class_metrics(LABELS, LOGITS, CLASSES)
    assert list(per) == CLASSES
    assert [per[c]["auc"] for c in CLASSES] == [0.8125, 0.5, 0.75]
    for k, c in enumerate(CLASSES):
        assert per[c]["auc"] == pytest.approx(roc_auc_score(k == LABELS, ev.class_scores(LOGITS, k)))
    assert [per[c]["efficiency"] for c in CLASSES] == [0.5, 0.5, 1.0]
    # t: scores of the t jets 0.307, 0.687; the others -2.13, -1.31, -1.13, 2.31. At 50% efficiency the cut
    # sits at 0.687 and one of 4 other jets (2.31) passes: 1/eps = 4, not capped.
    assert per["t"]["rejection_at_50"] == 4.0 and per["t"]["rejection_at_50_capped"] is False
    # q: its best jet (2 vs 0, 0) is above every other jet: no other jet passes, capped at 4 others.
    assert per["q"]["rejection_at_30"] == 4.0 and per["q"]["rejection_at_30_capped"] is True
    with pytest.raises(ValueError, match="3 logits for 2 classes"):
        ev.per_class_metrics(LABELS, LOGITS, ["q", "w"])


def test_score_metrics_adds_classes_for_n_classes_only() -> None:
    m = ev.score_metrics(LABELS, LOGITS, n_bootstrap=10, seed=0, class_names=CLASSES)
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["n_background"] == 4 and m["auc"] == 0.75  # the last class (t) against the rest
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 1, 1], [0, 0, 2]]
    assert list(m["classes"]) == CLASSES
    ModelMetrics.model_validate({**m, "boost": []})  # the contract takes it
    two = ev.score_metrics(LABELS[2:] - 1, LOGITS[2:, 1:], n_bootstrap=10, seed=0)
    assert "classes" not in two and "confusion_matrix" not in two
    assert ev.boost_entry(0.5, LABELS, LOGITS) == {"beta": 0.5, "accuracy": 4 / 6, "auc": 0.75}


def test_macro_auc_is_the_mean_one_vs_rest_auc_and_the_auc_for_two_classes() -> None:
    from kd_trigger.evaluate import macro_auc, one_vs_rest, roc_auc

    rng = np.random.default_rng(5)
    labels = rng.integers(0, 3, 300)
    logits = rng.normal(size=(300, 3)) + 0.8 * np.eye(3)[labels]
    log_odds = [logits[:, k] - np.log(np.exp(np.delete(logits, k, 1)).sum(1)) for k in range(3)]
    expected = np.mean([roc_auc_score(labels == k, log_odds[k]) for k in range(3)])
    assert macro_auc(labels, logits) == pytest.approx(expected, abs=1e-12)
    two = logits[:, :2]
    binary = labels % 2
    assert macro_auc(binary, two) == roc_auc(*one_vs_rest(binary, two))
    assert macro_auc(binary, two) == pytest.approx(roc_auc_score(binary, two[:, 1] - two[:, 0]), abs=1e-12)


def test_figures_of_merit() -> None:
    assert stats.figure_of_merit("accuracy", CLASSES)(LABELS, LOGITS) == pytest.approx(4 / 6)
    assert stats.figure_of_merit("r50:t", CLASSES)(LABELS, LOGITS) == 4.0
    assert stats.figure_of_merit("rejection_at_50", CLASSES)(LABELS, LOGITS) == 4.0
    assert stats.figure_of_merit("auc", CLASSES)(LABELS, LOGITS) == 0.75
    with pytest.raises(ValueError, match=r"class 'z' is not one of q, w, t"):
        stats.figure_of_merit("r50:z", CLASSES)
    with pytest.raises(ValueError, match="unknown figure of merit 'r70:t'"):
        stats.figure_of_merit("r70:t", CLASSES)


def test_study_select_on_names_a_configured_class() -> None:
    cfg = Config.model_validate({"data": {"classes": CLASSES}, "study": {"select_on": "r50:w"}})
    assert cfg.study.select_on == "r50:w"
    with pytest.raises(ValueError, match=r"study.select_on 'r50:z': class 'z' is not in data.classes"):
        Config.model_validate({"data": {"classes": CLASSES}, "study": {"select_on": "r50:z"}})


SPEC = StudentConfig(name="s", kind="deepsets", n_particles=4, hidden=(8,), head=(4,))


def test_model_widths() -> None:
    import tensorflow as tf

    from kd_trigger.config import TeacherSpec
    from kd_trigger.models.students import build_student, weight_layers
    from kd_trigger.models.teacher import build_teacher

    tf.keras.utils.set_random_seed(3)
    two = build_student(SPEC)
    tf.keras.utils.set_random_seed(3)
    same = build_student(SPEC, 2)
    assert two.output_shape == (None, 2)
    assert all(np.array_equal(a, b) for a, b in zip(two.get_weights(), same.get_weights(), strict=True))
    assert build_student(SPEC, 3).output_shape == (None, 3)
    assert weight_layers(SPEC, 5)[-1] == ("output", 4, 5)
    teacher = TeacherSpec(name="t", kind="lorentznet", n_particles=4, n_layers=1, hidden=4)
    assert build_teacher(teacher).output_shape == (None, 2)
    assert build_teacher(teacher, n_classes=3).output_shape == (None, 3)


def test_kd_loss_on_three_logits() -> None:
    """The Distiller's loss with three classes equals the hand-computed (1 - w) CE + w T^2 KL."""
    import tensorflow as tf

    from kd_trigger.distill.distiller import Distiller

    # A student with fixed logits [1, 0, -1] for every jet (zero kernel, that bias).
    inp = tf.keras.Input((2,))
    dense = tf.keras.layers.Dense(3)
    student = tf.keras.Model(inp, dense(inp))
    dense.set_weights([np.zeros((2, 3), np.float32), np.array([1.0, 0.0, -1.0], np.float32)])
    teacher = np.array([[2.0, 0.0, 0.0], [0.0, 1.0, 3.0]], np.float32)
    labels = np.array([0, 2], np.int32)
    d = Distiller(student, temperature=2.0, kd_weight=0.25)
    parts = d.compute_losses(
        {"student": np.zeros((2, 2), np.float32), "teacher_logits": teacher}, labels, False
    )
    # CE: -log softmax([1, 0, -1]) at 0 and 2 = log(e + 1 + 1/e) - 1 and + 1: mean log(e + 1 + 1/e)
    ce = np.log(np.e + 1 + 1 / np.e)
    assert float(parts["ce"]) == pytest.approx(ce, rel=1e-6)
    assert float(parts["ce"]) == pytest.approx(1.4076059644443804, rel=1e-6)

    def softmax(z: np.ndarray) -> np.ndarray:
        e = np.exp(z - z.max())
        return e / e.sum()

    q = softmax(np.array([1.0, 0.0, -1.0]) / 2)
    kl = [np.sum(p * np.log(p / q)) for p in (softmax(t / 2) for t in teacher.astype(np.float64))]
    kd = 4.0 * np.mean(kl)
    assert float(parts["kd"]) == pytest.approx(kd, rel=1e-5)
    assert float(parts["kd"]) == pytest.approx(1.082616520172971, rel=1e-5)
    assert float(parts["loss"]) == pytest.approx(0.75 * ce + 0.25 * kd, rel=1e-5)


def test_a_student_file_with_the_wrong_number_of_outputs_is_refused(tmp_path) -> None:
    import tensorflow as tf

    from kd_trigger.errors import ModelError
    from kd_trigger.models.students import build_student, load_student_file, save_student

    tf.keras.utils.set_random_seed(1)
    path = save_student(build_student(SPEC, 2), tmp_path / "two.h5")
    assert load_student_file(path, SPEC).output_shape == (None, 2)
    with pytest.raises(ModelError) as err:
        load_student_file(path, SPEC, 3)
    assert str(err.value) == (
        f"{path}: input (4, 7) / output (2,) do not match student 's' ((4, 7) -> (3,): one logit per class); "
        "rerun `make distill ... FORCE=1`"
    )


def test_scan_objectives_for_n_classes() -> None:
    physics = ev.score_metrics(LABELS, LOGITS, n_bootstrap=10, seed=0, class_names=CLASSES)
    flat = ev.with_class_objectives(physics)
    assert "classes" not in flat and "confusion_matrix" not in flat
    assert (flat["r50:t"], flat["r30:q"], flat["accuracy"]) == (4.0, 4.0, pytest.approx(4 / 6))
    assert set(flat) - set(physics) == {f"r{wp}:{c}" for c in CLASSES for wp in (30, 50)}
    two = ev.score_metrics(LABELS[2:] - 1, LOGITS[2:, 1:], n_bootstrap=10, seed=0)
    assert ev.with_class_objectives(two) == two  # two classes: unchanged
    cfg = Config.model_validate({"data": {"classes": CLASSES}, "scan": {"objective": "r50:t"}})
    assert cfg.scan.objective == "r50:t"
    with pytest.raises(ValueError, match=r"scan.objective 'r30:g': class 'g' is not in data.classes"):
        Config.model_validate({"data": {"classes": CLASSES}, "scan": {"objective": "r30:g"}})
