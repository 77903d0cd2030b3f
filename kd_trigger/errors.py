"""Errors meant for people: the CLI turns each into one line and an exit status, never a traceback."""

from __future__ import annotations

EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXIT_BUDGET = 3


class KdTriggerError(Exception):
    """Base of every error the tool reports to a user. ``exit_code`` is what the CLI exits with."""

    exit_code: int = EXIT_BAD_INPUT


class ConfigError(KdTriggerError):
    """A configuration file or value is wrong (unknown key, wrong type, out of range)."""


class DataError(KdTriggerError):
    """A data file is missing, of an unknown layout, incomplete, empty or holds NaN/inf."""


class ModelError(KdTriggerError):
    """A model file is missing or incompatible (wrong input shape, unsupported layer, too wide)."""


class ReportError(KdTriggerError):
    """A vendor report is truncated or of an unknown format."""


class ToolMissingError(KdTriggerError):
    """A vendor tool (Vivado, Vitis) is not on PATH."""


class StaleOutputError(KdTriggerError):
    """Outputs of an earlier run with a different configuration would be overwritten."""


class CsimMismatchError(KdTriggerError):
    """The C simulation does not agree with the QKeras model as exactly as required."""

    exit_code = 1


class OutputError(KdTriggerError):
    """An output location cannot be written (not a directory, read-only, disk full)."""


class RunLockedError(KdTriggerError):
    """Another live process holds the run directory's lock."""
