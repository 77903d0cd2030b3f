"""The whole config (:class:`Config`): its sections, their defaults, and the checks across sections."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, Field, PrivateAttr, field_validator, model_validator

from kd_trigger import layout
from kd_trigger.config.base import Section
from kd_trigger.config.budget import BudgetConfig
from kd_trigger.config.data import DataConfig
from kd_trigger.config.firmware import HlsConfig, fold_ii_cycles
from kd_trigger.config.students import PAIRING_FIELDS, LayerQuantConfig, QuantConfig, StudentConfig
from kd_trigger.config.teachers import TeacherSpec
from kd_trigger.config.training import DistillConfig, KdSetting, ScanConfig, StudyConfig
from kd_trigger.errors import ConfigError

RESERVED_FIRMWARE_NAMES = (layout.REPORT_MD, layout.REPORT_HTML, layout.REPORT_PLOTS_DIR, layout.BEST_DIR)
"""What ``firmware/<run>/`` holds besides one folder per student (the report and scan stages' outputs): a
student of one of these names would share its folder with them, and a stage would replace it."""

RESERVED_ARTIFACT_NAMES = ("data", "teachers", "students", "stages", "scan", "study")
"""The folders of ``artifacts/<run>/``: reserved too, since ``run.artifacts_dir`` and ``run.firmware_dir``
may be the same folder."""

RESERVED_NAMES = (*RESERVED_FIRMWARE_NAMES, *RESERVED_ARTIFACT_NAMES)


class RunConfig(Section):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)] = "default"
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 42
    # An empty folder name would put the run's folders into the working directory, unannounced.
    artifacts_dir: Annotated[str, Field(min_length=1)] = "artifacts"
    firmware_dir: Annotated[str, Field(min_length=1)] = "firmware"
    workers: Annotated[int, Field(ge=1, le=256)] = 2
    """Process workers (one TensorFlow thread each) that train the distill stage's students, as the scan's
    and the study's Dask workers do: a student's numerics then depend on neither the machine's core count
    nor the stage that trains it (a Deep Sets trained on two threads came out another student). Where a
    training runs never changes its result, so this is in no stage digest."""


def _default_teachers() -> tuple[TeacherSpec, ...]:
    """The teachers of the default run (measured on the default 60k jets, 2 CPU cores):

    * ``lorentznet16``: dense LorentzNet on the students' own 16 particles; AUC 0.981, ~5 min;
    * ``lorentznet64``: LorentzNet on 64 particles with each particle's 8 nearest neighbours by Minkowski
      product (a Lorentz-invariant choice); AUC 0.987, ~10 min (a dense 64-particle one costs 31x);
    * ``ensemble``: the mean of the two's logits (nothing trained): AUC 0.989, R50 529 (test split), where
      lorentznet16 gives 214 and lorentznet64 290.
    """
    return (
        TeacherSpec(name="lorentznet16"),
        TeacherSpec(name="lorentznet64", n_particles=64, neighbours=8, epochs=16, warmup_epochs=1.0),
        TeacherSpec(
            name="ensemble", kind="ensemble", members=("lorentznet16", "lorentznet64"), n_particles=64
        ),
    )


def _default_students() -> tuple[StudentConfig, ...]:
    """The two students, each paired with the teacher and setting the study chose for it, each at the
    design the default scan promotes for its kind (``make scan``: the best median R30 over 3 seeds among the
    retrained front designs within the budget; run as configs/scan_levers.yaml, RTL flow, Yosys LUT,
    bit-exact):

    * MLP: 8-bit, 90% of the kernel weights pruned: 31,632 LUT, 35 ns, R30 92 / 101 / 87 (median 92); the
      75% pruned design won its one training (94 against 92) but not over seeds (94 / 83 / 78) at twice
      the LUTs (64,985);
    * Deep Sets: folded at II 4 (the budget rule's default for 16 particles, see ``fold_ii_cycles``) with
      4-bit weights after the first per-particle layer: 64,887 LUT, 60 ns, R30 385 / 500 / 409 (median
      409); 50% pruned it needs 45,420 LUT for a median of 286.

    Both distil from ``ensemble`` (issue 23; 5 seeds on the default run's jets and teachers, chosen on the
    validation split's KD/baseline R50):

    * Deep Sets (configs/study_ensemble.yaml): 1.14 from the ensemble against 0.99 from lorentznet16; test
      R30 ratio 1.45 [1.18, 1.92], 1.09 [0.78, 1.44] with TF_ENABLE_ONEDNN_OPTS=0. Its early-stopping
      patience is 50 epochs (configs/study_ds_patience.yaml): with 20 its validation loss was still falling
      when training stopped; with 50 the validation ratio is 1.33, both arms train longer (best epochs
      200-400) and steadier (R30 spread 16% in both arms, against 30% / 14%), test R30 ratio 1.47 [1.30,
      1.73] (1.68 [1.42, 2.08] with oneDNN off, where patience 20 gave 1.09), at twice the training time.
    * MLP (configs/study_mlp_ensemble.yaml): 1.23 from the ensemble against 1.17 from lorentznet64; test
      R30 ratio 1.27 [1.12, 1.40] against 1.16 [0.96, 1.30]; with oneDNN off 1.25 [1.11, 1.35] against 1.19.
    """
    four_bit = LayerQuantConfig(weight_bits=4)
    return (
        StudentConfig(
            name="mlp",
            kind="mlp",
            hidden=(64, 32, 32),
            teacher="ensemble",
            temperature=2.0,
            kd_weight=0.9,
            sparsity=0.9,
        ),
        StudentConfig(
            name="deepsets",
            kind="deepsets",
            hidden=(32, 32),
            head=(32,),
            quant=QuantConfig(layers={"phi_1": four_bit, "rho_0": four_bit, "output": four_bit}),
            teacher="ensemble",
            temperature=2.0,
            kd_weight=0.9,
            patience=50,
        ),
    )


class Config(Section):
    run: RunConfig = RunConfig()
    data: DataConfig = DataConfig()
    teachers: tuple[TeacherSpec, ...] = Field(default_factory=_default_teachers)
    students: tuple[StudentConfig, ...] = Field(default_factory=_default_students)
    distill: DistillConfig = DistillConfig()
    hls: HlsConfig = HlsConfig()
    budget: BudgetConfig = BudgetConfig()
    study: StudyConfig = StudyConfig()
    scan: ScanConfig = ScanConfig()
    _source: str | None = PrivateAttr(default=None)

    @property
    def source(self) -> str | None:
        """The YAML file this config was read from (None when built in code)."""
        return self._source

    @field_validator("students")
    @classmethod
    def _unique_names(cls, value: tuple[StudentConfig, ...]) -> tuple[StudentConfig, ...]:
        if not value:
            raise ValueError("at least one student is required")
        names = [s.name for s in value]
        if len(set(names)) != len(names):
            raise ValueError(f"student names must be unique, got {names}")
        # Compared without case: on a case-insensitive file system (macOS, Windows) 'MLP' and 'mlp', or
        # 'Best' and 'best', are the same folder.
        folded = [n.casefold() for n in names]
        if len(set(folded)) != len(folded):
            raise ValueError(f"student names must differ in more than letter case, got {names}")
        reserved = {r.casefold(): r for r in RESERVED_NAMES}
        for i, name in enumerate(names):
            if name.casefold() in reserved:
                where = "firmware" if reserved[name.casefold()] in RESERVED_FIRMWARE_NAMES else "artifacts"
                raise ValueError(
                    f"students[{i}].name {name!r} is reserved: {where}/<run>/{reserved[name.casefold()]} is "
                    f"written by another stage; reserved names: {', '.join(RESERVED_NAMES)}"
                )
        return value

    @field_validator("teachers")
    @classmethod
    def _unique_teachers(cls, value: tuple[TeacherSpec, ...]) -> tuple[TeacherSpec, ...]:
        if not value:
            raise ValueError("at least one teacher is required")
        names = [t.name for t in value]
        if len(set(names)) != len(names):
            raise ValueError(f"teacher names must be unique, got {names}")
        folded = [n.casefold() for n in names]
        if len(set(folded)) != len(folded):
            raise ValueError(f"teacher names must differ in more than letter case, got {names}")
        return value

    @model_validator(mode="after")
    def _ii_fits_the_students(self) -> Config:
        k = self.hls.ii_cycles
        if k is None or k == 1:
            return self
        deepsets = [(i, s) for i, s in enumerate(self.students) if s.kind == "deepsets"]
        if not deepsets:
            raise ValueError(
                f"hls.ii_cycles {k}: folding applies to Deep Sets students only and this config has none "
                "(leave hls.ii_cycles out or set 1)"
            )
        for i, s in deepsets:
            if s.ii_cycles is None and k > s.n_particles:
                raise ValueError(
                    f"hls.ii_cycles {k} is above students[{i}].n_particles ({s.n_particles}) of "
                    f"{s.name!r}: at most one particle per cycle"
                )
        return self

    @model_validator(mode="after")
    def _ensembles_name_earlier_teachers(self) -> Config:
        earlier: dict[str, TeacherSpec] = {}
        for i, t in enumerate(self.teachers):
            for m in t.members:
                member = earlier.get(m)
                if member is None:
                    raise ValueError(
                        f"teachers[{i}].members names {m!r}, not a teacher configured before it; "
                        f"earlier: {list(earlier)}"
                    )
                if member.kind not in ("lorentznet", "path"):
                    raise ValueError(
                        f"teachers[{i}].members: {m!r} is of kind {member.kind!r}; an ensemble averages "
                        "teachers on scaled 4-vectors (kind lorentznet or path)"
                    )
                if member.n_particles > t.n_particles:
                    raise ValueError(
                        f"teachers[{i}].n_particles ({t.n_particles}) is below that of its member {m!r} "
                        f"({member.n_particles}); set it to the largest member's"
                    )
            earlier[t.name] = t
        return self

    @model_validator(mode="after")
    def _students_name_teachers(self) -> Config:
        known = [t.name for t in self.teachers]
        for i, s in enumerate(self.students):
            if s.teacher is not None and s.teacher not in known:
                raise ValueError(
                    f"students[{i}].teacher {s.teacher!r} is not a configured teacher; known: {known}"
                )
        students = [s.name for s in self.students]
        for name in self.study.students or ():
            if name not in students:
                raise ValueError(
                    f"study.students names {name!r}, not a configured student; configured: {students}"
                )
        for name in self.study.teachers or ():
            if name not in known:
                raise ValueError(
                    f"study.teachers names {name!r}, not a configured teacher; configured: {known}"
                )
        return self

    @model_validator(mode="after")
    def _output_heads_have_a_flow(self) -> Config:
        for i, s in enumerate(self.students):
            if s.output_head != "logits" and "rtl" in self.hls.flows:
                raise ValueError(
                    f"students[{i}].output_head {s.output_head!r}: the RTL flow builds no softmax/argmax head "
                    "(its layers stop at the logits); set hls.flows: [hls4ml] for this head, or output_head: "
                    "logits"
                )
        return self

    @model_validator(mode="after")
    def _figure_of_merit_names_a_class(self) -> Config:
        for key, value in (
            ("study.select_on", self.study.select_on),
            ("scan.objective", self.scan.objective),
        ):
            _, _, cls = value.partition(":")
            if cls and cls not in self.data.classes:
                raise ValueError(
                    f"{key} {value!r}: class {cls!r} is not in data.classes {list(self.data.classes)}"
                )
        return self

    def study_view(self) -> dict[str, Any]:
        """The config sections the study depends on: students without their pairing, distill without
        its (T, w), and the study section; with no ``study.grid``, the pairings studied."""
        view = {
            "students": [s.model_dump(mode="json", exclude=set(PAIRING_FIELDS)) for s in self.students],
            "distill": self.distill.model_dump(mode="json", exclude=set(PAIRING_FIELDS)),
            # Where the trainings run never changes a result: the cluster is not part of the study's digest.
            "study": self.study.model_dump(mode="json", exclude={"workers", "scheduler"}),
        }
        if self.study.grid is None:  # the deployed pairings are what the study trains
            view["pairings"] = {
                name: [[t, k.temperature, k.kd_weight] for t, k in self.study_pairs(name)]
                for name in self.studied_students()
            }
        return view

    def studied_students(self) -> list[str]:
        """The students ``make study`` trains (``study.students``, else every student)."""
        return list(self.study.students or [s.name for s in self.students])

    def study_pairs(self, student: str) -> list[tuple[str, KdSetting]]:
        """(teacher, setting) of every distilled copy the study trains of ``student``: the grid over the
        studied teachers, or (no ``study.grid``) the student's own setting with its own teacher, or with
        each of ``study.teachers``."""
        spec = self.student(student)
        if self.study.grid is None:
            teachers = list(self.study.teachers or [self.teacher_of(spec).name])
            temperature, kd_weight = self.kd_setting(spec)
            settings: tuple[KdSetting, ...] = (KdSetting(temperature=temperature, kd_weight=kd_weight),)
        else:
            teachers = list(self.study.teachers or [t.name for t in self.teachers])
            settings = self.study.grid
        return [(t, k) for t in teachers for k in settings]

    def studied_teachers(self) -> list[str]:
        """Every teacher some studied student learns from in the study, in config order."""
        used = {t for name in self.studied_students() for t, _ in self.study_pairs(name)}
        return [t.name for t in self.teachers if t.name in used]

    # -- teachers ------------------------------------------------------------------------------------
    @property
    def teacher_specs(self) -> tuple[TeacherSpec, ...]:
        """The teachers some student learns from (an unused teacher is never trained)."""
        used = {self.teacher_of(s).name for s in self.students}
        return tuple(t for t in self.teachers if t.name in used)

    def teacher_spec(self, name: str) -> TeacherSpec:
        for t in self.teachers:
            if t.name == name:
                return t
        raise ConfigError(
            f"teachers: no teacher named {name!r}; configured: {[t.name for t in self.teachers]}"
        )

    def teacher_of(self, student: StudentConfig) -> TeacherSpec:
        """The teacher ``student`` learns from (its ``teacher`` key, else the first teacher)."""
        return self.teacher_spec(student.teacher) if student.teacher else self.teachers[0]

    def kd_setting(self, student: StudentConfig) -> tuple[float, float]:
        """(temperature, kd_weight) of ``student``: its own values, else the distill section's."""
        t = student.temperature if student.temperature is not None else self.distill.temperature
        w = student.kd_weight if student.kd_weight is not None else self.distill.kd_weight
        return t, w

    def distill_for(self, student: StudentConfig) -> DistillConfig:
        """The ``distill`` section as ``student`` trains with it: its own T, w and patience where set."""
        temperature, kd_weight = self.kd_setting(student)
        patience = student.patience if student.patience is not None else self.distill.patience
        return self.distill.model_copy(
            update={"temperature": temperature, "kd_weight": kd_weight, "patience": patience}
        )

    def ii_cycles_of(self, student: StudentConfig, flow: str, max_ii_cycles: int) -> int:
        """The folding k of ``student`` in ``flow`` ("rtl" or "hls4ml"); see :func:`fold_ii_cycles`."""
        return fold_ii_cycles(student, self.hls, flow, max_ii_cycles)

    # -- where things go -------------------------------------------------------------------------
    @property
    def artifacts(self) -> Path:
        return Path(self.run.artifacts_dir) / self.run.name

    @property
    def firmware(self) -> Path:
        return Path(self.run.firmware_dir) / self.run.name

    @property
    def data_path(self) -> Path:
        """The jet file this run reads: ``data.path`` if given, else the generated file."""
        return Path(self.data.path) if self.data.path else self.artifacts / layout.DATA_DIR / layout.JETS_FILE

    def student(self, name: str) -> StudentConfig:
        for s in self.students:
            if s.name == name:
                return s
        raise ConfigError(
            f"students: no student named {name!r}; configured: {[s.name for s in self.students]}"
        )

    def to_dict(self) -> dict[str, Any]:
        return _dump(self)


def _dump(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, tuple):
        return [_dump(v) for v in value]
    return value
