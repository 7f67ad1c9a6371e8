# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

# Every build here compiles the tagger's extension or fails: the pure-Python
# fallback (setup.py) is for users without a compiler, not for development or CI.
REQUIRE_COMPILED := MONITOR_REQUIRE_COMPILED=1

# The compiled tagger, built in place next to its sources: Cython compiles the
# algorithm's own .py files (types in the .pxd files) and the text kernels' .pyx
# (setup.py). The file names carry the interpreter's suffix
# (.cpython-311-x86_64-linux-gnu.so): the venv's, or before the venv exists, that of
# the Python that is about to create it. One build makes them all; CORE stands for it.
EXT_SUFFIX := $(shell $(if $(wildcard $(BIN)/python),$(BIN)/python,$(PYTHON)) -c \
	"import sysconfig; print(sysconfig.get_config_var('EXT_SUFFIX'))")
CORE := monitor/tagging/matcher$(EXT_SUFFIX)
CORE_SOURCES := monitor/tagging/matcher.py monitor/tagging/background.py \
	monitor/tagging/_text.pyx $(wildcard monitor/tagging/*.pxd)

.PHONY: demo test lint unit integration bench schemas clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The editable installs build the extension too (in pip's isolated build environment).
$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(REQUIRE_COMPILED) $(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(REQUIRE_COMPILED) $(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed-run

# What `setup.py build_ext` needs in the venv: the build-system requirements.
$(VENV)/.installed-build: pyproject.toml | $(BIN)/python
	$(BIN)/python -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"], sep="\n")' > $(VENV)/build-requirements.txt
	$(BIN)/python -m pip install --quiet -r $(VENV)/build-requirements.txt
	touch $@

# Rebuilt whenever one of its sources changes; the touch marks it current even when
# setuptools only copied an unchanged build.
$(CORE): $(CORE_SOURCES) | $(VENV)/.installed-run $(VENV)/.installed-build
	$(REQUIRE_COMPILED) $(BIN)/python setup.py --quiet build_ext --inplace --force
	touch $@

## demo: the whole pipeline on the embedded broker and the bundled sample feeds
demo: $(VENV)/.installed-run $(CORE)
	$(BIN)/monitor demo

## test: lint, type-check, then every test (unit, component, integration on the real broker)
test: $(VENV)/.installed-dev $(CORE) lint
	$(BIN)/pytest

lint: $(VENV)/.installed-dev $(CORE)
	$(BIN)/ruff check monitor schemas tests bench setup.py
	$(BIN)/ruff format --check monitor schemas tests bench setup.py
	$(BIN)/mypy
	PATH="$(BIN):$$PATH" $(BIN)/cython-lint --max-line-length 100 monitor/tagging/_text.pyx \
		monitor/tagging/*.pxd

unit: $(VENV)/.installed-dev $(CORE)
	$(BIN)/pytest tests/unit

integration: $(VENV)/.installed-dev $(CORE)
	$(BIN)/pytest tests/integration

bench: $(VENV)/.installed-dev $(CORE)
	$(BIN)/python bench/bench_tagger.py
	$(BIN)/python bench/bench_escalation.py
	$(BIN)/python bench/bench_soak.py
	$(BIN)/python bench/bench_latency.py
	$(BIN)/python bench/bench_collect.py
	$(BIN)/python bench/bench_feed_corpus.py
	$(BIN)/python bench/bench_dashboard.py
	$(BIN)/python bench/bench_html_text.py
	$(BIN)/python bench/bench_dates.py

## schemas: re-export the JSON Schema documents after changing a contract
schemas: $(VENV)/.installed-dev
	$(BIN)/python -m schemas.export

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
	rm -f monitor/tagging/*.so monitor/tagging/*.pyd
