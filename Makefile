# The router's everyday commands. Every target uses the virtual environment in .venv/.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
RUNTIME := $(VENV)/.runtime-stamp
PORT ?= 8080
MOCK_PORT ?= 9090

.DEFAULT_GOAL := help
.PHONY: help install run demo mock check-catalog test test-all lint format typecheck check bench chaos soak clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

# The interpreter's own pip installs into the venv (a venv without pip is made in a fraction of the
# time); modules are compiled when first imported, not all at install.
PIP := $(PYTHON) -m pip --python $(BIN)/python install --quiet --disable-pip-version-check --no-compile

# Two installs: the runtime alone for run/demo/mock (small, quick), the test and dev tools on top.
$(RUNTIME): pyproject.toml
	@echo "make: installing the router into .venv/ (runtime only; about 15 s the first time)"
	@$(PYTHON) -m venv --without-pip $(VENV)
	@$(PIP) -e .
	@touch $(RUNTIME)

$(STAMP): $(RUNTIME) pyproject.toml
	@echo "make: installing the test and development tools into .venv/ (about a minute the first time)"
	@$(PIP) -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## create .venv/ and install the router with its test and dev tools

run: $(RUNTIME) ## run the router on 127.0.0.1:8080 (PORT=...) with catalog.yaml; keys come from the environment
	$(BIN)/python -m router serve --port $(PORT)

demo: $(RUNTIME) ## run simulated providers and the router on 127.0.0.1:8080 (PORT=...): no keys needed; Ctrl-C stops
	$(BIN)/python -m router demo --port $(PORT)

mock: $(RUNTIME) ## run the simulated providers alone on port 9090 (MOCK_PORT=...)
	$(BIN)/python -m router mock --port $(MOCK_PORT)

check-catalog: $(RUNTIME) ## validate catalog.yaml and summarise it
	$(BIN)/python -m router check

test: $(STAMP) ## run the test suite (what CI runs; includes a short chaos run)
	$(BIN)/python -m pytest -q

test-all: $(STAMP) ## run the test suite including slow tests
	$(BIN)/python -m pytest -q -m ''

lint: $(STAMP) ## ruff lint and format check
	$(BIN)/ruff check router tests
	$(BIN)/ruff format --check router tests

format: $(STAMP) ## apply ruff formatting and safe fixes
	$(BIN)/ruff check --fix router tests
	$(BIN)/ruff format router tests

typecheck: $(STAMP) ## mypy --strict on router/
	$(BIN)/mypy

check: lint typecheck test ## lint, types and tests: the same as CI

bench: $(STAMP) ## direct vs through the router: req/s, added latency, router CPU per request and per stream, the server-and-client floor, worker memory, one and two workers (needs wrk; tries apt if missing; about 2 minutes)
	@command -v wrk >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq wrk >/dev/null) 2>/dev/null \
		|| echo "make: could not install wrk with apt-get"
	$(BIN)/python -m tests.bench.run

chaos: $(STAMP) ## fault suite: thousands of requests under injected upstream faults, 1 worker then 2 with Redis; prints the table and asserts (a few minutes)
	$(BIN)/python -m tests.chaos.run

soak: $(STAMP) ## the fault suite in rounds for 10 minutes; also asserts RSS growth <= 30 MiB and no fd growth of the router
	$(BIN)/python -m tests.chaos.run --soak 600

clean: ## remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
