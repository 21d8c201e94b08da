# dare: self-documenting Makefile (`make help`).
# Everything runs in a virtual environment in .venv, created on first use.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
WORKERS ?= 2

.DEFAULT_GOAL := help
.PHONY: help install test test-fast lint bench demo ra clean

help: ## Show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install dare with its development tools

test: $(STAMP) ## Set up, then run the whole test suite (slow tests included)
	$(PY) -m pytest -q

test-fast: $(STAMP) ## Run the tests not marked slow
	$(PY) -m pytest -q -m "not slow"

lint: $(STAMP) ## ruff and mypy
	$(VENV)/bin/ruff check engine dare_cli tests benchmarks
	$(VENV)/bin/mypy

bench: $(STAMP) ## Benchmarks: engine vs plain Python and dispel4py; RA vs a plain obspy script; climate vs icclim
	$(PY) -m pip install --quiet '.[bench]' || echo "dispel4py or psutil not installable: skipping them"
	$(PY) benchmarks/run.py
	$(PY) benchmarks/ra_bench.py
	$(PY) benchmarks/climate_bench.py

demo: $(STAMP) ## Set up, then run the example workflows (word count, parallel sum) on both mappings
	$(VENV)/bin/dare run engine.examples.wordcount --mapping simple
	$(VENV)/bin/dare run engine.examples.wordcount --mapping multi -n $(WORKERS)
	$(VENV)/bin/dare run engine.examples.parallel_sum -i 5 --mapping multi -n $(WORKERS)

ra: $(STAMP) ## Set up, then run the Rapid Assessment of the bundled Ridgecrest example (offline)
	$(VENV)/bin/dare ra run --example ridgecrest --out ra-ridgecrest

clean: ## Remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info ra-ridgecrest
