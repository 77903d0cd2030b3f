"""The base of every contract: strict pydantic models, finite numbers, one-line errors on reading."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from kd_trigger.errors import DataError
from kd_trigger.runs import write_json_atomic


class Contract(BaseModel):
    """Base of every contract: unknown keys are refused (a producer that adds a key adds it here)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    def write(self, path: Path) -> Path:
        """Write the file atomically; None fields are kept so readers see every key."""
        return write_json_atomic(path, self.model_dump(mode="json", by_alias=True))


C = TypeVar("C", bound=Contract)


def finite_or_none(value: Any) -> Any:
    """JSON has no NaN/inf: such floats (also inside lists and dicts) become None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_or_none(v) for v in value]
    return value


def read_contract(path: Path, model: type[C], make: str) -> C:
    """Read and validate ``path`` as ``model``; DataError (one line, naming ``make``) otherwise."""
    if not path.is_file():
        raise DataError(f"{path} not found; it is made by `{make}`")
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{path} is not readable JSON ({err}); remake it with `{make}`") from None
    try:
        return model.model_validate(payload)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "<top level>"
        raise DataError(
            f"{path} does not match the {model.__name__} contract ({where}: {first['msg']}); "
            f"remake it with `{make}`"
        ) from None
