"""The base of every config section: unknown keys rejected, values frozen, floats finite."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A config section: an unknown key, a non-finite float or an edit after validation is refused."""

    # Every float must be finite: an infinite clock period or a NaN learning rate is never meant, and
    # JSON outputs could not even hold it.
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False)
