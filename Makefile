# The README's two commands: `make demo` (install, simulate, backfill, Dagster UI) and
# `make test` (install, lint, the whole test suite: Python, the tracker's Node tests and the
# browser tests in Chromium). Both create the virtualenv themselves.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export ANALYTICS_DATA_DIR ?= $(CURDIR)/data
export DAGSTER_HOME ?= $(ANALYTICS_DATA_DIR)/dagster_home

.PHONY: install demo test lint bench clean

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed: make PYTHON=python3.11 …"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,bench]"
	@touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/analytics-platform demo

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# checkov lives in its own environment: its pins would fight the project's.
.venv-checkov/.installed:
	$(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/python -m pip install --quiet "checkov>=3.2,<4"
	@touch $@

test: install node_modules/.installed .venv-checkov/.installed
	./scripts/ensure-chromium.sh
	./scripts/ensure-postgres.sh
	./scripts/ensure-xfsprogs.sh
	$(BIN)/ruff check .
	node --test analytics_platform_tests/js/
	$(BIN)/python -m pytest -n 2 --dist loadfile -q -p no:cacheprovider

lint: install
	$(BIN)/ruff check .

# The whole benchmark suite at the issue's sizes (about an hour); each script appends its
# table to docs/BENCHMARKS.md. Sizes are options of each script (see --help).
bench: install
	$(BIN)/python bench/pipeline.py --record
	$(BIN)/python bench/dashboard.py --record
	$(BIN)/python bench/collector.py --record
	$(BIN)/python bench/latency.py --record
	$(BIN)/python bench/run.py --record

clean:
	rm -rf $(VENV) .venv-checkov node_modules data dist .pytest_cache .ruff_cache
