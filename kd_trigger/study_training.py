"""The study's trainings: one student per (seed, teacher, setting, training fraction), each cached.

Each training is cached in ``artifacts/<run>/study-cache/`` under a digest of all it depends on, so a
killed study resumes where it stopped. The digest covers the code of :data:`TRAINING_CODE` and what it
imports (this module, the training loop, the students), never the study's statistics, Markdown or plots.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass

import numpy as np

from kd_trigger.config import PAIRING_FIELDS, Config, KdSetting, StudentConfig
from kd_trigger.data.boost import boost
from kd_trigger.data.readers import load_jets
from kd_trigger.distill.pruning import pruning_plan
from kd_trigger.distill.teachers import cached_logits
from kd_trigger.distill.training import predict, student_seed_for, train_student, train_subset
from kd_trigger.fingerprint import code_digest
from kd_trigger.layout import RunLayout, study_cache_file
from kd_trigger.models.students import build_student, student_inputs
from kd_trigger.runs import remove_path, tmp_name

log = logging.getLogger(__name__)

TRAINING_CODE = (__name__, "kd_trigger.distill.training", "kd_trigger.models.students")
"""The modules whose code (with their imports) a cached training is keyed on."""


@dataclass
class Trained:
    """What the study keeps of one training: outputs on the splits it is judged on."""

    val_logits: np.ndarray
    test_logits: np.ndarray
    boost_logits: dict[float, np.ndarray]
    best_epoch: int
    seconds: float


class Trainer:
    """Trains (or reads from the cache) the students of the study, on arrays prepared once."""

    def __init__(self, cfg: Config, upstream: dict[str, str]) -> None:
        """``upstream``: stage name -> digest of the stages the study reads (the data and the teachers)."""
        self.cfg = cfg
        self.cache = RunLayout.of(cfg).study_cache
        self.cache.mkdir(parents=True, exist_ok=True)
        data = load_jets(self.cfg.data_path, self.cfg)
        self.train, self.val, self.test = (data.select(s) for s in ("train", "val", "test"))
        self.labels: dict[str, np.ndarray] = {
            "train": self.train.labels.astype(np.int32),
            "val": self.val.labels.astype(np.int64),
            "test": self.test.labels.astype(np.int64),
        }
        self.betas = [b for b in self.cfg.distill.boost_betas if b > 0]
        self.boosted = {beta: boost(self.test.constituents, beta) for beta in self.betas}
        # Every upstream digest enters the cache key: new jets or a retrained teacher invalidate it.
        self.upstream = dict(upstream)
        self.code = code_digest(*TRAINING_CODE)
        self._inputs: dict[tuple[str, str], np.ndarray] = {}

    def inputs(self, spec: StudentConfig, split: str | float) -> np.ndarray:
        """The student inputs of ``spec`` on a split, or on the test split boosted by ``split`` (a beta)."""
        key = (spec.name, str(split))
        if key not in self._inputs:
            source = {"train": self.train, "val": self.val, "test": self.test}
            constituents = self.boosted[split] if isinstance(split, float) else source[split].constituents
            self._inputs[key] = student_inputs(spec, constituents)
        return self._inputs[key]

    def _key(
        self, spec: StudentConfig, seed: int, teacher: str | None, setting: KdSetting | None, fraction: float
    ) -> str:
        payload = {
            "student": spec.model_dump(mode="json", exclude=set(PAIRING_FIELDS)),
            "seed": seed,
            "teacher": teacher,
            "setting": setting.model_dump(mode="json") if setting else None,
            "fraction": fraction,
            "distill": self.cfg.distill.model_dump(mode="json", exclude=set(PAIRING_FIELDS)),
            "upstream": {k: v for k, v in self.upstream.items() if k == "data" or k == f"teacher:{teacher}"},
            # The training code (TRAINING_CODE and what it imports): a change there retrains; a change to
            # the study's statistics, tables and plots keeps 45 minutes of trainings.
            "code": self.code,
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]

    def run(
        self,
        spec: StudentConfig,
        seed: int,
        teacher: str | None,
        setting: KdSetting | None,
        fraction: float = 1.0,
    ) -> Trained:
        """One training (baseline when ``teacher`` is None) from the seed's shared initial weights."""
        key = self._key(spec, seed, teacher, setting, fraction)
        path = study_cache_file(self.cache, key)
        if path.is_file():
            with np.load(path) as cached:
                return Trained(
                    val_logits=cached["val"],
                    test_logits=cached["test"],
                    boost_logits={beta: cached[f"boost_{beta:g}"] for beta in self.betas},
                    best_epoch=int(cached["best_epoch"]),
                    seconds=float(cached["seconds"]),
                )
        trained = self._train(spec, seed, teacher, setting, fraction)
        staging = tmp_name(path)
        try:
            with open(staging, "wb") as handle:
                np.savez(
                    handle,
                    val=trained.val_logits,
                    test=trained.test_logits,
                    best_epoch=trained.best_epoch,
                    seconds=trained.seconds,
                    **{f"boost_{beta:g}": logits for beta, logits in trained.boost_logits.items()},
                )
            staging.replace(path)
        finally:
            remove_path(staging)
        return trained

    def _train(
        self, spec: StudentConfig, seed: int, teacher: str | None, setting: KdSetting | None, fraction: float
    ) -> Trained:
        import tensorflow as tf

        subset = train_subset(len(self.labels["train"]), fraction, seed)
        x_tr = self.inputs(spec, "train")[subset]
        y_tr = self.labels["train"][subset]
        x_va = self.inputs(spec, "val")
        y_va = self.labels["val"].astype(np.int32)
        t_tr = t_va = None
        dcfg = self.cfg.distill.model_copy(update={"kd_weight": 0.0})
        variant = "baseline"
        if teacher is not None and setting is not None:
            t_tr = cached_logits(self.cfg, teacher, "train")[subset]
            t_va = cached_logits(self.cfg, teacher, "val")
            dcfg = self.cfg.distill.model_copy(
                update={"temperature": setting.temperature, "kd_weight": setting.kd_weight}
            )
            variant = "kd"
        init_seed = student_seed_for(seed, spec)
        tf.keras.utils.set_random_seed(init_seed)
        student = build_student(
            spec, len(self.cfg.data.classes)
        )  # the seed's initial weights: identical for baseline and every KD run
        label = (
            f"study {spec.name} seed {seed} "
            + (f"{teacher} T={setting.temperature:g} w={setting.kd_weight:g}" if setting else "baseline")
            + (f" on {fraction:g} of train" if fraction < 1 else "")
        )
        record = train_student(
            student,
            dcfg,
            variant,
            (x_tr, y_tr, t_tr),
            (x_va, y_va, t_va),
            seed=init_seed,
            label=label,
            pruning=pruning_plan(spec, dcfg.epochs),
        )
        return Trained(
            val_logits=predict(student, x_va),
            test_logits=predict(student, self.inputs(spec, "test")),
            boost_logits={beta: predict(student, self.inputs(spec, beta)) for beta in self.betas},
            best_epoch=record.best_epoch,
            seconds=record.seconds,
        )
