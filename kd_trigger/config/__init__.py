"""Typed schema of the pipeline configs. This package is the only place defaults live.

A config is a YAML file with the sections ``run``, ``data``, ``teacher``, ``students``, ``distill``,
``hls`` and ``budget``. Every section rejects unknown keys; a bad key, type or value becomes a
:class:`~kd_trigger.errors.ConfigError` that names the dotted key, the value and what is allowed.

Modules: :mod:`.base` (the section base class), :mod:`.data`, :mod:`.teachers`, :mod:`.students`,
:mod:`.training` (distill, study, scan), :mod:`.firmware` (hls and the folding rules), :mod:`.budget`
(the section and the profiles file), :mod:`.schema` (the whole :class:`Config` and its cross-section
checks) and :mod:`.loading` (YAML, ``extends:``, overrides, error messages). Import from here:
``from kd_trigger.config import Config, load_config``.
"""

from kd_trigger.config.budget import (
    BudgetConfig,
    BudgetOverrides,
    BudgetProfilesFile,
    BudgetProfileSpec,
    PartResourcesSpec,
    ResourceFractions,
)
from kd_trigger.config.data import MAX_N_JETS, DataConfig, GeneratorConfig, SplitConfig
from kd_trigger.config.firmware import HlsConfig, LayerHlsConfig, fold_ii_cycles, hls4ml_parallelization
from kd_trigger.config.loading import (
    DEFAULT_CONFIG,
    EXTENDS_KEY,
    MAX_EXTENDS_DEPTH,
    apply_overrides,
    format_validation_error,
    load_config,
    merge_overrides,
    parse_config,
    read_text_utf8,
    read_yaml,
)
from kd_trigger.config.schema import (
    RESERVED_ARTIFACT_NAMES,
    RESERVED_FIRMWARE_NAMES,
    RESERVED_NAMES,
    Config,
    RunConfig,
)
from kd_trigger.config.students import (
    PAIRING_FIELDS,
    PARTICLE_FEATURES,
    QUANT_LAYER_FIELDS,
    LayerQuantConfig,
    QuantConfig,
    StudentConfig,
)
from kd_trigger.config.teachers import TeacherSpec
from kd_trigger.config.training import DistillConfig, KdSetting, ScanAxes, ScanConfig, StudyConfig

__all__ = [
    "DEFAULT_CONFIG",
    "EXTENDS_KEY",
    "MAX_EXTENDS_DEPTH",
    "MAX_N_JETS",
    "PAIRING_FIELDS",
    "PARTICLE_FEATURES",
    "QUANT_LAYER_FIELDS",
    "RESERVED_ARTIFACT_NAMES",
    "RESERVED_FIRMWARE_NAMES",
    "RESERVED_NAMES",
    "BudgetConfig",
    "BudgetOverrides",
    "BudgetProfileSpec",
    "BudgetProfilesFile",
    "Config",
    "DataConfig",
    "DistillConfig",
    "GeneratorConfig",
    "HlsConfig",
    "KdSetting",
    "LayerHlsConfig",
    "LayerQuantConfig",
    "PartResourcesSpec",
    "QuantConfig",
    "ResourceFractions",
    "RunConfig",
    "ScanAxes",
    "ScanConfig",
    "SplitConfig",
    "StudentConfig",
    "StudyConfig",
    "TeacherSpec",
    "apply_overrides",
    "fold_ii_cycles",
    "format_validation_error",
    "hls4ml_parallelization",
    "load_config",
    "merge_overrides",
    "parse_config",
    "read_text_utf8",
    "read_yaml",
]
