# Two commands matter: `make demo` (the main job, end to end, offline) and `make test`.
# Both bootstrap everything they need — a virtual environment at .venv with the package in
# editable mode, the dev tools, Chromium and PostgreSQL's server binaries — and are idempotent.

PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
BROWSER_STAMP := $(VENV)/.browser-stamp
POSTGRES_STAMP := $(VENV)/.postgresql-stamp
PYTEST_ARGS ?=

.PHONY: setup browser demo test lint typecheck unit bench docs clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip uv
	$(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python -e '.[dev]'
	# Bytecode now, not at each import: every worker and extraction process starts faster,
	# also where PYTHONDONTWRITEBYTECODE is set (uv installs without it by default).
	$(BIN)/python -m compileall -q src
	touch $(STAMP)

$(BROWSER_STAMP): $(STAMP) scripts/install_chromium.sh
	bash scripts/install_chromium.sh $(BIN)/python
	touch $(BROWSER_STAMP)

# PostgreSQL's server binaries, for the tests' own throwaway server (tests/pgserver.py).
# Where they cannot be installed (no root, no sudo) the script says how and the PostgreSQL
# tests are skipped; the stamp is then not written, so the next setup tries again.
$(POSTGRES_STAMP): $(STAMP) scripts/install_postgresql.sh
	bash scripts/install_postgresql.sh | tee $(VENV)/.postgresql-log
	grep -q '^postgresql: /' $(VENV)/.postgresql-log && touch $(POSTGRES_STAMP) || true

setup: $(STAMP) $(BROWSER_STAMP) $(POSTGRES_STAMP)

browser: $(BROWSER_STAMP)

demo: setup
	$(BIN)/python examples/research.py

lint: $(STAMP)
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests

typecheck: $(STAMP)
	$(BIN)/mypy

unit: setup
	$(BIN)/pytest -n 2 $(PYTEST_ARGS)

test: setup lint typecheck unit

bench: setup
	@echo "Benchmarks are scripts, each printing ours beside its baseline; run them one by one:"
	@ls bench/*.py | grep -v '/_' | grep -v common | sed 's|^|  $(BIN)/python |'

# The documentation site, offline, into build/site (open build/site/index.html). --strict: a
# broken link or a reference that does not resolve is an error; the tests run the same build.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir build/site

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
