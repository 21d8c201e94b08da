# dare: self-documenting Makefile (`make help`).
# Everything runs in a virtual environment in .venv, created on first use.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# Absolute, so that programs started in another working directory (SPECFEM3D's mpiexec) find it.
BIN    := $(abspath $(VENV))/bin
STAMP  := $(VENV)/.installed
WORKERS ?= 2

.DEFAULT_GOAL := help
MPI_TESTS ?= tests/engine
.PHONY: help install system specfem images test test-fast test-mpi test-docker lint bench demo ra clean

help: ## Show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install dare with its development tools

# command:Debian-package pairs of the system tools the tests use
SYSTEM_TOOLS := redis-server:redis-server docker-compose:docker-compose shellcheck:shellcheck \
                chromium:chromium gfortran:gfortran g++:g++ mpif90.openmpi:libopenmpi-dev \
                mpirun.openmpi:openmpi-bin dockerd:docker.io debootstrap:debootstrap
system: ## Install the system tools the tests use (redis-server, docker-compose, shellcheck, chromium, gfortran/g++/OpenMPI for SPECFEM3D, docker.io, debootstrap; apt-get as root or with sudo)
	@for pair in $(SYSTEM_TOOLS); do command -v $${pair%%:*} >/dev/null || missing="$$missing $${pair##*:}"; done; \
	if [ -n "$$missing" ]; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq $$missing >/dev/null; fi
	@redis-server --version

# SPECFEM3D Cartesian's programs, built natively from the archive in specfem/vendor/ (about 1 to
# 3 minutes on 2 cores); the tests run them for real (DARE_SPECFEM_BIN).
SPECFEM_PREFIX := $(abspath .specfem)
SPECFEM_BIN    := $(SPECFEM_PREFIX)/bin
specfem: $(SPECFEM_BIN)/xspecfem3D ## Build SPECFEM3D natively into .specfem/bin (gfortran, OpenMPI)
$(SPECFEM_BIN)/xspecfem3D: specfem/build-native.sh $(wildcard specfem/vendor/specfem3d-*-src.tar.*)
	specfem/build-native.sh $(SPECFEM_PREFIX)

# The climate suite runs in a pytest process of its own: after the CLI and engine tests (which
# fork hundreds of worker processes) netCDF4/HDF5 crashed opening a file in one of its tests
# (segmentation fault in xarray's file manager), in the full run only, never in the climate
# suite alone or in subsets.
test: $(STAMP) system specfem ## Set up, then run the whole test suite (slow, MPI, Redis, Kafka and SPECFEM3D tests included)
	@# every part runs, whatever failed before it; make fails at the end naming the parts
	@failed=""; \
	PATH=$(BIN):$$PATH DARE_SPECFEM_BIN=$(SPECFEM_BIN) $(PY) -m pytest -q -m "not docker" --ignore=tests/climate || failed="$$failed pytest"; \
	PATH=$(BIN):$$PATH $(PY) -m pytest -q -m "not docker" tests/climate || failed="$$failed climate"; \
	$(MAKE) --no-print-directory test-mpi || failed="$$failed test-mpi"; \
	if [ -n "$$failed" ]; then echo "make test: failed:$$failed" >&2; exit 1; fi

# The images of containers/ and their tests. containers/with-dockerd.sh uses the running Docker
# engine or starts dockerd (vfs) for the command and stops it after, by its PID, also on failure;
# containers/base-image.sh pulls debian:bookworm-slim or, without Docker Hub, makes it with
# debootstrap (skipped when the tag is there). The docker SDK comes with '.[dev]' (editable).
IMAGES ?= dare specfem
images: $(STAMP) ## Build the container images (containers/: dare, specfem) with a local Docker engine
	containers/with-dockerd.sh sh -c 'containers/base-image.sh && for image in $(IMAGES); do \
	  start=$$(date +%s); \
	  $(PY) -c "import sys; from dare_cli import images; import docker; \
	  images.build(docker.from_env(), sys.argv[1], log=print)" $$image || exit 1; \
	  echo "image $$image built in $$(( $$(date +%s) - start )) s"; done'

test-docker: $(STAMP) system specfem ## Tests that need a Docker engine: build the images, run them and the SPECFEM3D cluster (starts dockerd if none runs)
	containers/with-dockerd.sh sh -c 'containers/base-image.sh && \
	  PATH=$(BIN):$$PATH DARE_SPECFEM_BIN=$(SPECFEM_BIN) DARE_REQUIRE_DOCKER=1 \
	  $(PY) -m pytest -q -p no:cacheprovider -m docker -s'

test-mpi: $(STAMP) ## The engine's semantic suite under real mpiexec with 2 and 4 ranks
	PATH=$(BIN):$$PATH $(VENV)/bin/mpiexec -n 2 $(PY) -m pytest -q -p no:cacheprovider -m mpi $(MPI_TESTS)
	PATH=$(BIN):$$PATH $(VENV)/bin/mpiexec -n 4 $(PY) -m pytest -q -p no:cacheprovider -m mpi $(MPI_TESTS)

test-fast: $(STAMP) ## Run the tests not marked slow (nor docker)
	$(PY) -m pytest -q -m "not slow and not docker"

lint: $(STAMP) ## ruff and mypy
	$(VENV)/bin/ruff check engine dare_cli tests benchmarks
	$(VENV)/bin/mypy

bench: $(STAMP) system ## Benchmarks: engine mappings vs plain Python, raw mpi4py and dispel4py; RA vs obspy; climate vs icclim; back-pressure; dask vs multi; single-step costs
	$(PY) -m pip install --quiet '.[bench]' || echo "dispel4py or psutil not installable: skipping them"
	$(PY) benchmarks/run.py
	PATH=$(BIN):$$PATH $(PY) benchmarks/mpi_bench.py
	$(PY) benchmarks/dynamic_bench.py
	$(PY) benchmarks/kafka_bench.py
	$(PY) benchmarks/optimise_bench.py
	$(PY) benchmarks/ra_bench.py
	$(PY) benchmarks/climate_bench.py
	$(PY) benchmarks/backpressure_bench.py
	$(PY) benchmarks/dask_bench.py
	$(PY) benchmarks/costs_bench.py

demo: $(STAMP) ## Set up, then run the example workflows (word count, parallel sum) on both mappings
	$(VENV)/bin/dare run engine.examples.wordcount --mapping simple
	$(VENV)/bin/dare run engine.examples.wordcount --mapping multi -n $(WORKERS)
	$(VENV)/bin/dare run engine.examples.parallel_sum -i 5 --mapping multi -n $(WORKERS)

ra: $(STAMP) ## Set up, then run the Rapid Assessment of the bundled Ridgecrest example (offline)
	$(VENV)/bin/dare ra run --example ridgecrest --out ra-ridgecrest

clean: ## Remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info ra-ridgecrest
