# kd_trigger task runner. Every pipeline target takes CONFIG=path.yaml (default configs/default.yaml).
CONFIG ?= configs/default.yaml
PYTHON ?= python3.11
VENV := .venv
KD := $(VENV)/bin/kd-trigger
FORCE_FLAG := $(if $(filter 1 yes true,$(FORCE)),--force,)
SYNTH_FLAG := $(if $(filter 1 yes true,$(SYNTH)),--synth,)
PYTEST_ARGS ?=

.PHONY: setup data teacher distill hls report all test lint clean

# The environment is rebuilt whenever the pinned dependencies change.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $@

setup: $(VENV)/.installed  ## create .venv and install the pinned stack

data: $(VENV)/.installed  ## generate jets (or check data.path) -> artifacts/<run>/data/jets.h5
	$(KD) data --config $(CONFIG) $(FORCE_FLAG)

teacher: $(VENV)/.installed  ## train the LorentzNet teacher -> artifacts/<run>/teacher/
	$(KD) teacher --config $(CONFIG) $(FORCE_FLAG)

distill: $(VENV)/.installed  ## data -> teacher -> baseline + distilled students -> artifacts/<run>/metrics.json
	$(KD) distill --config $(CONFIG) $(FORCE_FLAG)

hls: $(VENV)/.installed  ## firmware/<run>/<student>/, C simulation, resources, budget verdict (exit 3 if broken)
	$(KD) hls --config $(CONFIG) $(FORCE_FLAG) $(SYNTH_FLAG)

report: $(VENV)/.installed  ## firmware/<run>/report.md and report.html
	$(KD) report --config $(CONFIG)

all: hls  ## the whole pipeline on CONFIG, ending with the review report

test: $(VENV)/.installed  ## the whole test suite, slow end-to-end tests included
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check kd_trigger tests benchmarks
	$(VENV)/bin/ruff format --check kd_trigger tests benchmarks

clean:  ## remove generated outputs (not the environment)
	rm -rf artifacts firmware/*/ .pytest_cache .ruff_cache
