# kd_trigger task runner. Every pipeline target takes CONFIG=path.yaml (default configs/default.yaml) and
# walks the stage graph (kd_trigger/stages.py, assembled from each stage module's STAGE) up to its
# target: stages whose inputs did not change are skipped, stages downstream of any change rerun.
CONFIG ?= configs/default.yaml
PYTHON ?= python3.11
VENV := .venv
KD := $(VENV)/bin/kd-trigger
FORCE_FLAG := $(if $(filter 1 yes true,$(FORCE)),--force,)
SYNTH_FLAG := $(if $(filter 1 yes true,$(SYNTH)),--synth,)
PYTEST_ARGS ?=
# `make test` runs on PYTEST_WORKERS pytest-xdist workers (CI has 2 cores; most of a slow test is one busy
# process: g++, Yosys, a small training). Whole test files go to one worker (--dist loadfile), so a file's
# shared firmware or run is built once; each worker builds its own session CI run. The files with slow tests
# are handed out first (tests/conftest.py; --no-loadscope-reorder keeps that order). PYTEST_WORKERS=0: one process.
PYTEST_WORKERS ?= 2

.PHONY: help setup data teacher distill hls report all study scan status test test-fast lint clean

# The environment is rebuilt whenever the pinned dependencies change.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $@

help:  ## list the targets with what each does (CONFIG=path.yaml FORCE=1 SYNTH=1 apply to pipeline targets)
	@awk 'BEGIN {FS = ":.*## "} /^[a-z][a-z-]*:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: $(VENV)/.installed  ## create .venv and install the pinned stack

data: $(VENV)/.installed  ## generate jets (or check data.path) -> artifacts/<run>/data/
	$(KD) data --config $(CONFIG) $(FORCE_FLAG)

teacher: $(VENV)/.installed  ## train every configured teacher -> artifacts/<run>/teachers/<name>/
	$(KD) teacher --config $(CONFIG) $(FORCE_FLAG)

distill: $(VENV)/.installed  ## baseline + distilled students -> artifacts/<run>/metrics.json
	$(KD) distill --config $(CONFIG) $(FORCE_FLAG)

hls: $(VENV)/.installed  ## firmware/<run>/<student>/, exactness, resources, budget verdict, report (kd-trigger exits 3 if broken; make then exits 2)
	$(KD) hls --config $(CONFIG) $(FORCE_FLAG) $(SYNTH_FLAG)

report: $(VENV)/.installed  ## firmware/<run>/report.md and report.html
	$(KD) report --config $(CONFIG) $(FORCE_FLAG)

all: hls  ## the whole pipeline on CONFIG, ending with the review report

study: $(VENV)/.installed  ## multi-seed study of KD per student, teacher and (T, w) -> artifacts/<run>/study.json, study.md
	$(KD) study --config $(CONFIG) $(FORCE_FLAG)

scan: $(VENV)/.installed  ## design scan on Dask -> artifacts/<run>/scan/, best in budget -> firmware/<run>/best/ (kd-trigger exits 3 if none)
	$(KD) scan --config $(CONFIG) $(FORCE_FLAG)

status: $(VENV)/.installed  ## check CONFIG and list each stage: up to date, or why it would run
	$(KD) status --config $(CONFIG)

test: $(VENV)/.installed  ## the whole test suite, slow end-to-end tests included
	$(VENV)/bin/pytest -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

test-fast: $(VENV)/.installed  ## the unit tests only (no training, no compiling)
	$(VENV)/bin/pytest -m "not slow" $(PYTEST_ARGS)

lint: $(VENV)/.installed  ## ruff (lint + format) and mypy
	$(VENV)/bin/ruff check kd_trigger tests benchmarks
	$(VENV)/bin/ruff format --check kd_trigger tests benchmarks
	$(VENV)/bin/mypy kd_trigger

clean:  ## remove generated outputs (not the environment)
	rm -rf artifacts firmware/*/ .pytest_cache .ruff_cache .mypy_cache
