# The two commands of the README: `make run` and `make test`. Both create .venv on first use.
#
# Python: 3.11 or 3.12 (both tested: docs/setup.md). The first of python3.11, python3.12, python3 on
# PATH whose version is in that range, or `make PYTHON=/path/to/python3.x`. Not 3.13: ALFWorld's
# textworld 1.7.0 (the newest) fails there (PEP 667 locals(); docs/setup.md).
PY_RANGE := (3, 11) <= sys.version_info[:2] <= (3, 12)
ifeq ($(origin PYTHON),undefined)
PYTHON := $(shell for p in python3.11 python3.12 python3; do \
    $$p -c 'import sys; sys.exit(not ($(PY_RANGE)))' 2>/dev/null && { command -v $$p; break; }; done)
endif
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)

# Every dependency but torch, exact and with hashes (uv pip compile; `make lock` refreshes it).
LOCK := requirements.lock
# torch, exact: the CUDA build from PyPI where `nvidia-smi -L` lists a GPU, else the CPU build. A
# CPU wheel already on disk (a pip find-links folder) is used offline; otherwise it comes from
# PyTorch's CPU index. Force one with `make TORCH=cpu` or `make TORCH=cuda`.
TORCH_VERSION := 2.13.0
ifeq ($(origin TORCH),undefined)
TORCH := $(if $(shell nvidia-smi -L 2>/dev/null),cuda,cpu)
endif
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu

.PHONY: run test test-fast lint report clean torch lock envs prereqs image

## prereqs: say what to install when Python 3.11-3.12, a C/C++ compiler, make or cmake is missing
prereqs:
	@test -n "$(PYTHON)" || { echo "make: no Python 3.11 or 3.12 on PATH$$(python3 -c 'import platform; print(" (python3 is " + platform.python_version() + ")")' 2>/dev/null). Install one:"; \
	    echo "  Debian 12, Ubuntu 24.04: sudo apt-get install python3 python3-venv python3-dev"; \
	    echo "  Fedora/RHEL:   sudo dnf install python3.12 python3.12-devel"; \
	    echo "  macOS:         brew install python@3.12"; \
	    echo "  elsewhere:     uv python install 3.12, or pyenv install 3.12"; \
	    echo "or name one: make PYTHON=/path/to/python3.12 (3.13 and newer are refused: docs/setup.md)"; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(not ($(PY_RANGE)))' 2>/dev/null || { v=$$($(PYTHON) -V 2>&1 | head -1); \
	    echo "make: PYTHON=$(PYTHON) ($$v) is not Python 3.11 or 3.12 (3.13 and newer: docs/setup.md)"; exit 1; }
	@missing=""; for t in cc c++ make cmake; do command -v $$t >/dev/null 2>&1 || missing="$$missing $$t"; done; \
	test -z "$$missing" || { echo "make: missing$$missing (jericho, fast-downward-textworld and deepspeed build from source). Install:"; \
	    echo "  Debian/Ubuntu: sudo apt-get install build-essential cmake"; \
	    echo "  Fedora/RHEL:   sudo dnf install gcc gcc-c++ make cmake"; \
	    echo "  macOS:         xcode-select --install && brew install cmake"; exit 1; }

$(BIN)/.installed: pyproject.toml $(LOCK)
	@$(MAKE) --no-print-directory prereqs
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	@$(MAKE) --no-print-directory torch
	$(BIN)/pip install --quiet --require-hashes --no-deps -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps -e .
	@# pip check misreads textworld's compressed wheel tag (py3-none-manylinux_2_5_x86_64.manylinux1_...)
	@# as 'not supported on this platform'; any other line is a real conflict
	$(BIN)/pip check > $(VENV)/pip-check.txt || ! grep -v 'is not supported on this platform' $(VENV)/pip-check.txt
	$(BIN)/interlat versions --out $(VENV)/versions.yml
	touch $@

## torch: torch==$(TORCH_VERSION), the build for this machine (see TORCH above)
torch:
	@if [ "$(TORCH)" = cuda ]; then \
	    echo "torch $(TORCH_VERSION): the CUDA build (PyPI)"; \
	    $(BIN)/pip install --quiet torch==$(TORCH_VERSION); \
	elif $(BIN)/pip install --quiet --no-index --no-deps torch==$(TORCH_VERSION)+cpu 2>/dev/null; then \
	    echo "torch $(TORCH_VERSION)+cpu: a wheel already on disk (pip find-links)"; \
	else \
	    echo "torch $(TORCH_VERSION)+cpu: the CPU build ($(TORCH_CPU_INDEX))"; \
	    $(BIN)/pip install --quiet --no-deps --index-url $(TORCH_CPU_INDEX) torch==$(TORCH_VERSION)+cpu; \
	fi

## lock: re-resolve requirements.lock from pyproject.toml (uv; keeps every pin that still fits)
lock: $(BIN)/.installed
	printf 'torch==$(TORCH_VERSION)+cpu\n' > $(VENV)/torch-cpu.txt
	$(BIN)/uv pip compile pyproject.toml --all-extras --universal --python-version 3.11 \
	    --generate-hashes --override $(VENV)/torch-cpu.txt --no-emit-package torch \
	    $(if $(PIP_FIND_LINKS),--find-links $(PIP_FIND_LINKS),--extra-index-url $(TORCH_CPU_INDEX) --index-strategy unsafe-best-match) \
	    --custom-compile-command "make lock" -o $(LOCK)
	@$(MAKE) --no-print-directory envs

## envs: the conda environments of `--sdm conda` (workflow/envs/*.yaml) from the lock
envs: $(BIN)/.installed
	$(BIN)/python -m interlat.envs workflow/envs

## image: the CPU image, built here with podman (containers/build.sh; LOCAL_BASE=1 builds over a
## debootstrap Debian instead of pulling the base), saved as images/interlat-cpu.tar and, where
## apptainer is installed, converted to images/interlat-cpu.sif; prints the --config to use
image:
	mkdir -p images
	containers/build.sh --variant cpu $(if $(LOCAL_BASE),--local-base) \
	    --save images/interlat-cpu.tar --info images/interlat-cpu.json
	@if command -v apptainer >/dev/null 2>&1; then \
	    apptainer build --force images/interlat-cpu.sif docker-archive://images/interlat-cpu.tar; \
	    echo "use it: snakemake --cores all --use-apptainer --config container=$(CURDIR)/images/interlat-cpu.sif"; \
	else \
	    echo "apptainer not found: the image is images/interlat-cpu.tar (docker-archive) and in podman;"; \
	    echo "on a machine with apptainer: apptainer build interlat-cpu.sif docker-archive://images/interlat-cpu.tar,"; \
	    echo "then: snakemake --cores all --use-apptainer --config container=/path/to/interlat-cpu.sif"; \
	fi

## run: the embedded default pipeline end to end, then the HTML report
run: $(BIN)/.installed
	snakemake --cores all
	snakemake --report results/report.html

## test: lint and the whole test suite (slow tests included)
test: $(BIN)/.installed
	pytest -v --durations=40

## test-fast: unit tests only (under a minute)
test-fast: $(BIN)/.installed
	pytest -m "not slow and not gpu"

lint: $(BIN)/.installed
	ruff check interlat tests
	snakefmt --check workflow
	snakemake --lint

report: $(BIN)/.installed
	snakemake --report results/report.html

clean:
	rm -rf results logs benchmarks work .snakemake
