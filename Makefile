# Two commands on a fresh machine: `make demo` and `make test`. Each sets itself up.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
BENCH_STAMP := $(VENV)/.bench-stamp
SCENARIO ?= bad-canary
SPEED  ?= 5
PYTEST_ARGS ?=
# Workers for `make test`: one per core, at most 4 (each service group keeps one busy, and
# more workers than cores only slows the tests that wait on real processes). 0 = serial.
PYTEST_WORKERS ?= $(shell $(PYTHON) -c 'import os; print(min(4, len(os.sched_getaffinity(0))))')

.PHONY: demo test lint bench services clean sandbox sandbox-down

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "relconsole needs Python >= 3.11; set PYTHON=python3.11 (or newer)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/relconsole demo --scenario $(SCENARIO) --speed $(SPEED)

services:
	@scripts/ensure-test-deps.sh

lint: $(STAMP)
	$(BIN)/ruff check relconsole tests bench
	$(BIN)/lint-imports
	$(BIN)/mypy

test: $(STAMP) services lint
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --durations=25 $(PYTEST_ARGS)

$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,bench]'
	@touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python bench/engine.py
	$(BIN)/python bench/first_frame.py
	$(BIN)/python bench/poll.py
	$(BIN)/python bench/detection.py
	$(BIN)/python bench/fleet.py

# A real Prometheus and HAProxy in front of a two-version service, on loopback; prints the
# command that attaches relconsole and the one that injects a fault into the canary.
sandbox: $(STAMP)
	@$(BIN)/python examples/sandbox/launcher.py up

sandbox-down:
	@$(PYTHON) examples/sandbox/launcher.py down

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
