# Two commands on a fresh machine (see README):
#   make run   — install, load the sample into the embedded SQLite store, serve the API
#   make test  — install with the test tools, run the whole test suite
# The interpreter .venv is built with: an optimised build of Python 3.11 where the machine has
# one (tools/pick-python, ADR 0030). `make PY=/path/to/python3.11 …` chooses another (remove
# .venv first to rebuild it with that one).
PY ?= $(or $(shell sh tools/pick-python),python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test install sample serve lint

$(BIN)/csa: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(BIN)/csa

install: $(BIN)/csa

run: install
	$(BIN)/csa sample
	$(BIN)/csa serve

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check src tests
