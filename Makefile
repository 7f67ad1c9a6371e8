# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint unit integration bench schemas clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed-run

## demo: the whole pipeline on the embedded broker and the bundled sample feeds
demo: $(VENV)/.installed-run
	$(BIN)/monitor demo

## test: lint, type-check, then every test (unit, component, integration on the real broker)
test: $(VENV)/.installed-dev lint
	$(BIN)/pytest

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check monitor schemas tests bench
	$(BIN)/ruff format --check monitor schemas tests bench
	$(BIN)/mypy

unit: $(VENV)/.installed-dev
	$(BIN)/pytest tests/unit

integration: $(VENV)/.installed-dev
	$(BIN)/pytest tests/integration

bench: $(VENV)/.installed-dev
	$(BIN)/python bench/bench_tagger.py
	$(BIN)/python bench/bench_escalation.py
	$(BIN)/python bench/bench_collect.py

## schemas: re-export the JSON Schema documents after changing a contract
schemas: $(VENV)/.installed-dev
	$(BIN)/python -m schemas.export

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
