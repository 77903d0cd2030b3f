"""The one error of the RTL flow that is not a model or tool problem: the RTL disagrees with QKeras."""

from __future__ import annotations

from typing import Any

from kd_trigger.errors import KdTriggerError


class RtlMismatchError(KdTriggerError):
    """The RTL simulation does not reproduce the QKeras model bit for bit (exit status 1).

    The message names the first diverging layer; ``result`` holds the full figures (an ``RtlResult`` or
    ``RtlSimResult``) when the flow got that far, so a caller can still write its report.
    """

    exit_code = 1

    def __init__(self, message: str, result: Any = None) -> None:
        super().__init__(message)
        self.result = result


class RtlToolError(KdTriggerError):
    """An open-source tool was found but failed on the generated design (Verilator build, Yosys run)."""

    exit_code = 1
