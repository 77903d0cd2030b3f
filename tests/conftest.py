"""Shared test set-up: quiet TensorFlow, the repository root, and configs that extend the shipped ones."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def repo_root() -> Path:
    return REPO


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On pytest-xdist workers (`make test`: whole files per worker, in collection order), the files with
    slow end-to-end tests come first, so that the short files fill in at the end instead of one worker
    starting a long file while the other has nothing left. Within a file, and among the slow files
    (several share the session's CI run), the order is unchanged; a run without xdist is not reordered."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)


def write_config(directory: Path, name: str = "config.yaml", base: str = "ci.yaml", **sections: Any) -> Path:
    """A config in ``directory`` that extends ``configs/<base>`` and keeps every output under ``directory``.

    ``sections`` are merged into the file as overrides (a mapping merges key by key, a list replaces).
    Budget profiles are read from the repository, wherever the test runs.
    """
    raw: dict[str, Any] = {
        "extends": str(REPO / "configs" / base),
        "run": {"artifacts_dir": str(directory / "artifacts"), "firmware_dir": str(directory / "firmware")},
        "budget": {"profiles": str(REPO / "configs" / "budget.yaml")},
    }
    for section, values in sections.items():
        if isinstance(values, dict) and isinstance(raw.get(section), dict):
            raw[section] = {**raw[section], **values}
        else:
            raw[section] = values
    path = directory / name
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.fixture
def make_config(tmp_path: Path):
    """``make_config(name="c.yaml", **sections)``: see :func:`write_config`."""

    def make(name: str = "config.yaml", base: str = "ci.yaml", **sections: Any) -> Path:
        return write_config(tmp_path, name, base, **sections)

    return make


@pytest.fixture(scope="session")
def ci_run(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """The whole pipeline on configs/ci.yaml, once per test session: data -> teacher -> distill -> hls ->
    report through the CLI. Tests read it; a test that changes a run makes its own."""
    from kd_trigger.cli import main
    from kd_trigger.config import load_config

    directory = tmp_path_factory.mktemp("ci_run")
    path = write_config(directory, "ci.yaml")
    status = main(["hls", "--config", str(path)])
    return SimpleNamespace(path=path, cfg=load_config(path), status=status, dir=directory)


def randomize_weights(model: Any, seed: int, stddev: float = 0.5) -> None:
    """Random weights large enough that ReLUs are alive, sometimes saturate, and roundings hit ties."""
    import numpy as np

    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if hasattr(layer, "kernel"):
            layer.kernel.assign(rng.normal(0.0, stddev, layer.kernel.shape).astype(np.float32))
            layer.bias.assign(rng.normal(0.0, stddev, layer.bias.shape).astype(np.float32))
