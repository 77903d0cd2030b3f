"""The study's trainings: one student per (seed, teacher, setting, training fraction, augmentation), each
cached.

Each training is cached in ``artifacts/<run>/study-cache/`` under a digest of all it depends on, so a
killed study resumes where it stopped. The digest covers the code of :data:`TRAINING_CODE` and what it
imports (this module, the training loop, the students), never the study's statistics, Markdown or plots.
The trainings are independent: the study runs the missing ones on Dask workers
(:func:`kd_trigger.cluster.run_tasks` of :func:`train_task`); each worker writes the cache file, the
study reads every result back from the cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from kd_trigger.config import PAIRING_FIELDS, Config, KdSetting, StudentConfig, parse_config
from kd_trigger.data.boost import boost
from kd_trigger.data.readers import load_jets
from kd_trigger.distill.teachers import cached_logits
from kd_trigger.distill.training import (
    predict,
    student_seed_for,
    train_from_seed,
    train_subset,
)
from kd_trigger.fingerprint import code_digest
from kd_trigger.layout import RunLayout, study_cache_file
from kd_trigger.models.students import student_inputs
from kd_trigger.runs import remove_path, tmp_name

log = logging.getLogger(__name__)

TRAINING_CODE = (__name__, "kd_trigger.distill.training", "kd_trigger.models.students")
"""The modules whose code (with their imports) a cached training is keyed on."""


@dataclass(frozen=True)
class TrainJob:
    """One training of the study: baseline when ``teacher`` is None; ``augment``: the augmentation's
    beta_max (0: the training jets as they are, whatever ``distill.augment`` says: the study's plain arms
    stay plain)."""

    student: str
    seed: int
    teacher: str | None = None
    temperature: float | None = None
    kd_weight: float | None = None
    fraction: float = 1.0
    augment: float = 0.0

    @property
    def setting(self) -> KdSetting | None:
        if self.teacher is None or self.temperature is None or self.kd_weight is None:
            return None
        return KdSetting(temperature=self.temperature, kd_weight=self.kd_weight)

    @classmethod
    def of(
        cls,
        student: str,
        seed: int,
        teacher: str | None = None,
        setting: KdSetting | None = None,
        fraction: float = 1.0,
        augment: float = 0.0,
    ) -> TrainJob:
        return cls(
            student,
            seed,
            teacher,
            setting.temperature if setting else None,
            setting.kd_weight if setting else None,
            fraction,
            augment,
        )


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

    def __init__(self, cfg: Config, upstream: dict[str, str], code: str | None = None) -> None:
        """``upstream``: stage name -> digest of the stages the study reads (the data and the teachers);
        ``code``: the training code's digest as the study's own process read it (None: read it now)."""
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
        self.betas = sorted(
            {b for b in self.cfg.distill.boost_betas if b > 0} | set(cfg.study.robustness_betas)
        )
        # Every upstream digest enters the cache key: new jets or a retrained teacher invalidate it.
        self.upstream = dict(upstream)
        # A Dask worker takes the digest the study computed when it started: read again on the worker,
        # an edit of the code during a long study would file its results under keys the study never
        # looks up, and the study would train them all again in its own process.
        self.code = code or code_digest(*TRAINING_CODE)
        self._inputs: dict[tuple[str, str], np.ndarray] = {}

    def inputs(self, spec: StudentConfig, split: str | float) -> np.ndarray:
        """The student inputs of ``spec`` on a split, or on the test split boosted by ``split`` (a beta)."""
        key = (spec.name, str(split))
        if key not in self._inputs:
            source = {"train": self.train, "val": self.val, "test": self.test}
            constituents = (
                boost(self.test.constituents, split)
                if isinstance(split, float)
                else source[split].constituents
            )
            self._inputs[key] = student_inputs(spec, constituents)
        return self._inputs[key]

    def key(self, job: TrainJob) -> str:
        teacher = job.teacher
        setting = job.setting
        payload = {
            "student": self.cfg.student(job.student).model_dump(mode="json", exclude=set(PAIRING_FIELDS)),
            "seed": job.seed,
            "teacher": teacher,
            "setting": setting.model_dump(mode="json") if setting else None,
            "fraction": job.fraction,
            "augment": job.augment,
            "betas": self.betas,
            "distill": self.cfg.distill.model_dump(mode="json", exclude={*PAIRING_FIELDS, "augment"}),
            "upstream": {k: v for k, v in self.upstream.items() if k == "data" or k == f"teacher:{teacher}"},
            # The training code (TRAINING_CODE and what it imports): a change there retrains; a change to
            # the study's statistics, tables and plots keeps 45 minutes of trainings.
            "code": self.code,
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]

    def cached(self, job: TrainJob) -> bool:
        """Whether ``job``'s result is in the cache."""
        return study_cache_file(self.cache, self.key(job)).is_file()

    def task(self, job: TrainJob) -> dict[str, Any]:
        """``job`` as the plain data :func:`train_task` takes on a Dask worker."""
        return {
            "config": self.cfg.to_dict(),
            "upstream": self.upstream,
            "code": self.code,
            "job": asdict(job),
        }

    def run(self, job: TrainJob) -> Trained:
        """One training (baseline when ``job.teacher`` is None) from the seed's shared initial weights:
        read from the cache, else trained here and written to it."""
        path = study_cache_file(self.cache, self.key(job))
        if path.is_file():
            with np.load(path) as cached:
                return Trained(
                    val_logits=cached["val"],
                    test_logits=cached["test"],
                    boost_logits={beta: cached[f"boost_{beta:g}"] for beta in self.betas},
                    best_epoch=int(cached["best_epoch"]),
                    seconds=float(cached["seconds"]),
                )
        trained = self._train(job)
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

    def _train(self, job: TrainJob) -> Trained:
        spec, seed, teacher, setting, fraction = (
            self.cfg.student(job.student),
            job.seed,
            job.teacher,
            job.setting,
            job.fraction,
        )
        subset = train_subset(len(self.labels["train"]), fraction, seed)
        x_tr = self.inputs(spec, "train")[subset]
        y_tr = self.labels["train"][subset]
        x_va = self.inputs(spec, "val")
        y_va = self.labels["val"].astype(np.int32)
        t_tr = t_va = None
        augment = self.cfg.distill.augment.model_copy(update={"beta_max": job.augment})
        dcfg = self.cfg.distill_for(spec).model_copy(update={"kd_weight": 0.0, "augment": augment})
        variant = "baseline"
        if teacher is not None and setting is not None:
            t_tr = cached_logits(self.cfg, teacher, "train")[subset]
            t_va = cached_logits(self.cfg, teacher, "val")
            dcfg = dcfg.model_copy(
                update={"temperature": setting.temperature, "kd_weight": setting.kd_weight}
            )
            variant = "kd"
        label = (
            f"study {spec.name} seed {seed} "
            + (f"{teacher} T={setting.temperature:g} w={setting.kd_weight:g}" if setting else "baseline")
            + (f" on {fraction:g} of train" if fraction < 1 else "")
            + (f" boosted up to beta {job.augment:g}" if job.augment > 0 else "")
        )
        # The seed's initial weights and batches: identical for the baseline and every KD run.
        student, record = train_from_seed(
            spec,
            len(self.cfg.data.classes),
            dcfg,
            variant,
            (x_tr, y_tr, t_tr),
            (x_va, y_va, t_va),
            seed=student_seed_for(seed, spec),
            label=label,
            constituents=self.train.constituents[subset],
        )
        return Trained(
            val_logits=predict(student, x_va),
            test_logits=predict(student, self.inputs(spec, "test")),
            boost_logits={beta: predict(student, self.inputs(spec, beta)) for beta in self.betas},
            best_epoch=record.best_epoch,
            seconds=record.seconds,
        )


_TRAINERS: dict[str, Trainer] = {}
"""A worker's Trainer per (config, upstream): the jets are read once per worker process, not per training."""


def train_task(task: dict[str, Any]) -> dict[str, Any]:
    """One study training on a Dask worker: ``task`` holds the resolved config, the upstream digests and a
    :class:`TrainJob` as plain data; the result goes to the cache (returns the job's cache key)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    memo = json.dumps({k: task[k] for k in ("config", "upstream", "code")}, sort_keys=True)
    if memo not in _TRAINERS:
        _TRAINERS.clear()
        _TRAINERS[memo] = Trainer(parse_config(task["config"], "study task"), task["upstream"], task["code"])
    trainer = _TRAINERS[memo]
    job = TrainJob(**task["job"])
    trainer.run(job)
    return {"key": trainer.key(job)}
