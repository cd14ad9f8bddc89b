# The two commands of the README: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: run test test-fast lint report clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first and pinned: the CPU build (an unpinned torch would pull GBs of CUDA packages)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

## run: the embedded default pipeline end to end, then the HTML report
run: $(BIN)/.installed
	snakemake --cores all
	snakemake --report results/report.html

## test: lint and the whole test suite (slow tests included)
test: $(BIN)/.installed
	pytest -v

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
