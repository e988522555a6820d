# The README's two commands: `make dev` (start the whole stack) and `make test` (every check).
# Both set themselves up on a fresh machine: virtual environment, then the pinned install.

PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: dev test lint unit workflows integration e2e browser browser-shots faults fuzz install clean

# The staff portal's front-end packages (GOV.UK Frontend, MoJ Frontend; axe-core for its
# browser tests), exactly as its lockfile pins them: `npm ci` only when the lockfile changed.
PORTAL        := services/portal
PORTAL_STAMP  := $(PORTAL)/node_modules/.installed
# The browser tests drive Debian's Chromium by path (nothing is downloaded at test time).
CHROMIUM      ?= /usr/bin/chromium

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "needs $(PYTHON) on PATH"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

$(PORTAL_STAMP): $(PORTAL)/package-lock.json
	@command -v npm >/dev/null || { echo "needs npm (Node.js) on PATH for the portal's assets"; exit 1; }
	cd $(PORTAL) && npm ci --no-audit --no-fund
	@touch $@

# Installed once, when missing (root on the project's machines; elsewhere run as root once).
$(CHROMIUM):
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y chromium

install: $(STAMP) $(PORTAL_STAMP) $(CHROMIUM)

dev: install
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

# The staff portal in a real browser against the real stack (tests/browser).
browser: install
	$(BIN)/pytest -m browser

# The browser tier again, writing its screenshots into docs/portal/ for the README.
browser-shots: install
	MSET_PORTAL_SCREENSHOTS=docs $(BIN)/pytest -m browser

# Every part of the stack killed mid-flow, with more referrals each than `make test` sends.
faults: $(STAMP)
	$(BIN)/pytest -m faults --faults-all --faults-count 50

# Schemathesis over every service's OpenAPI, with more requests than `make test` sends
# (MSET_FUZZ_EXAMPLES per operation and mode; README, Tests).
fuzz: $(STAMP)
	MSET_FUZZ_EXAMPLES=$${MSET_FUZZ_EXAMPLES:-100} $(BIN)/pytest tests/integration/test_openapi_fuzz.py

# Lint, then every tier in one pytest run. pytest exits 5 when it collects no test: that is
# a failure here, never a pass.
test: install lint
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache $(PORTAL)/node_modules
