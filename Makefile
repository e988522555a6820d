# The README's two commands: `make dev` (start the whole stack) and `make test` (every check).
# Both set themselves up on a fresh machine: virtual environment, then the pinned install.

PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: dev test lint unit workflows integration e2e install clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "needs $(PYTHON) on PATH"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

install: $(STAMP)

dev: $(STAMP)
	$(BIN)/python -m deploy.stack

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

unit: $(STAMP)
	$(BIN)/pytest -m unit

workflows: $(STAMP)
	$(BIN)/pytest -m workflows

integration: $(STAMP)
	$(BIN)/pytest -m integration

e2e: $(STAMP)
	$(BIN)/pytest -m e2e

# Lint, then every tier in one pytest run. pytest exits 5 when it collects no test: that is
# a failure here, never a pass.
test: lint
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
