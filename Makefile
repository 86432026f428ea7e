# The router's everyday commands. Every target uses the virtual environment in .venv/.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PORT ?= 8080

.DEFAULT_GOAL := help
.PHONY: help install run demo mock check-catalog test test-all lint format typecheck check bench chaos soak clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## create .venv/ and install the router with its test and dev tools

run: $(STAMP) ## run the router on 127.0.0.1:8080 (PORT=...) with catalog.yaml; keys come from the environment
	$(BIN)/python -m router serve --port $(PORT)

demo: $(STAMP) ## run simulated providers and the router in front of them on :8080: no keys needed
	$(BIN)/python -m router demo --port $(PORT)

mock: $(STAMP) ## run the simulated providers alone on port 9090
	$(BIN)/python -m router mock --port 9090

check-catalog: $(STAMP) ## validate catalog.yaml and summarise it
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

bench: $(STAMP) ## measure direct vs through-router throughput and latency (needs wrk; installs it with apt if missing)
	@command -v wrk >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq wrk >/dev/null)
	$(BIN)/python -m tests.bench.run

chaos: $(STAMP) ## fault suite: thousands of requests under injected upstream faults, 1 worker then 2 with Redis; prints the table and asserts (a few minutes)
	$(BIN)/python -m tests.chaos.run

soak: $(STAMP) ## the fault suite in rounds for 10 minutes; also asserts RSS growth <= 30 MiB and no fd growth of the router
	$(BIN)/python -m tests.chaos.run --soak 600

clean: ## remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
