# The few targets people expect. `make demo` and `make test` work from a fresh clone with only the
# machine's python3 and the package registries (PyPI, Debian packages).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
KERNEL := $(VENV)/share/jupyter/kernels/python3/kernel.json
SAMPLE_DIR ?= $(firstword $(wildcard ../shared/data/growthbook-sample) data/growthbook-sample)
DEMO_STAMP := data/.demo-data
# Experiments planted both in GrowthBook's sample and in our generator's data, configured in workbench.yml
DEMO_EXPERIMENTS ?= checkout-layout add-to-cart-cta results-order price-display
DEMO_INDEX := reports/index.html
PIP_LOG := $(VENV)/pip-install.log
# Grouparoo's own browser client, which the event service's browser test drives (git-ignored folder)
GROUPAROO_CLIENT_VERSION := 0.3.3
GROUPAROO_CLIENT := test-clients/grouparoo-client-web-$(GROUPAROO_CLIENT_VERSION)/dist/grouparooWebClient.js
# pip's output goes to a log, shown only when an install fails
PIP = $(BIN)/python -m pip --disable-pip-version-check -q
QUIET_PIP = >>$(PIP_LOG) 2>&1 || { cat $(PIP_LOG) >&2; echo "error: pip failed (log: $(PIP_LOG))" >&2; exit 1; }

.PHONY: help setup system-deps test-clients demo test reliability docs lab lint bench clean

help:
	@echo "make demo   - set up, load sample data into data/workbench.duckdb, run the reports, print where they are"
	@echo "make test   - set up (PostgreSQL server and Chromium included) and run the test suite"
	@echo "make reliability - run the reliability and security suite; rewrites the table in docs/reliability.md"
	@echo "make docs   - regenerate docs/reference/ from the code and docs/images/ from the browser tests"
	@echo "make lab    - start JupyterLab on 127.0.0.1 with the project's kernel"
	@echo "make lint   - ruff check, ruff format --check and the import contracts (also run by make test)"
	@echo "make bench  - run the benchmarks in benchmarks/ (minutes; prints tables)"

# --- set-up ---------------------------------------------------------------------------------
$(INSTALLED): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found: install Python 3.11" >&2; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' || { echo "error: $(PYTHON) is not Python 3.11 (set PYTHON=/path/to/python3.11)" >&2; exit 1; }
	@test -x $(BIN)/python || { echo "Creating $(VENV) with $$($(PYTHON) --version)"; $(PYTHON) -m venv $(VENV); }
	@echo "Installing workbench and its dependencies into $(VENV) (first time: about a minute)"
	@$(PIP) install --upgrade pip $(QUIET_PIP)
	@$(PIP) install -e '.[test,spark]' $(QUIET_PIP)
	@touch $@

$(KERNEL): $(INSTALLED)
	@$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (workbench)" >/dev/null
	@echo "Registered the Jupyter kernel python3 -> $(abspath $(BIN)/python)"

setup: $(KERNEL)

# Debian packages the tests need: PostgreSQL server binaries, Chromium and Java (for the Spark
# Connect server the Spark tests start). apt runs only when one is missing, and only as root;
# otherwise this says what to install.
system-deps:
	@missing=""; \
	 { command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; } || missing="$$missing postgresql"; \
	 test -x /usr/bin/chromium || missing="$$missing chromium"; \
	 command -v java >/dev/null || missing="$$missing openjdk-17-jre-headless"; \
	 if [ -n "$$missing" ]; then \
	   if [ "$$(id -u)" = 0 ]; then \
	     echo "Installing Debian packages:$$missing"; \
	     apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	   else \
	     echo "error: the tests need the Debian packages:$$missing. Run as root: apt-get install -y$$missing" >&2; exit 1; \
	   fi; \
	 fi

# The npm package @grouparoo/client-web, unpacked (npm pack: no install scripts run).
$(GROUPAROO_CLIENT):
	@command -v npm >/dev/null || { echo "error: the tests need npm (Node.js) to fetch @grouparoo/client-web: apt-get install -y npm" >&2; exit 1; }
	@mkdir -p test-clients
	@cd test-clients && tarball=$$(npm pack --silent @grouparoo/client-web@$(GROUPAROO_CLIENT_VERSION)) \
	  && mkdir -p grouparoo-client-web-$(GROUPAROO_CLIENT_VERSION) \
	  && tar -xzf "$$tarball" -C grouparoo-client-web-$(GROUPAROO_CLIENT_VERSION) --strip-components=1 && rm -f "$$tarball"
	@echo "Fetched @grouparoo/client-web@$(GROUPAROO_CLIENT_VERSION) into test-clients/"

test-clients: $(GROUPAROO_CLIENT)

# --- the demo -------------------------------------------------------------------------------
# Loads GrowthBook's own sample data when it is beside the clone, else generates the same tables.
$(DEMO_STAMP): $(INSTALLED)
	@if ls $(SAMPLE_DIR)/experimentViews.csv* >/dev/null 2>&1; then \
	   $(BIN)/workbench load growthbook-sample $(SAMPLE_DIR); \
	 else \
	   $(BIN)/workbench generate --users 10000 --seed 1; \
	 fi
	@touch $@

# Reports are rebuilt when the data is; a second `make demo` reuses them and only prints where they are.
$(DEMO_INDEX): $(DEMO_STAMP) workbench.yml
	@$(BIN)/workbench overview
	@$(BIN)/workbench run-reports $(DEMO_EXPERIMENTS)

demo: $(KERNEL) $(DEMO_INDEX)
	@echo
	@echo "Experiment reports: $(abspath $(DEMO_INDEX))  (one page per experiment: reports/<key>/latest.html)"
	@echo "Data overview:      $(abspath reports/overview/overview.html)"
	@echo "Dashboard:          $(BIN)/workbench dashboard   then open http://127.0.0.1:8866/"

# --- checks ---------------------------------------------------------------------------------
test: $(KERNEL) system-deps lint test-clients
	$(BIN)/python -m pytest $(PYTEST_ARGS)

reliability: $(KERNEL) system-deps
	WORKBENCH_RELIABILITY_DOC=docs/reliability.md $(BIN)/python -m pytest tests/reliability $(PYTEST_ARGS)

# The reference pages are generated from the code (a test fails when they drift); the pictures are
# screenshots the browser tests take.
docs: $(KERNEL) system-deps
	$(BIN)/python -m tools.reference_docs
	WORKBENCH_UPDATE_SCREENSHOTS=1 $(BIN)/python -m pytest tests/test_reports.py -q -k "renders_every_chart or in_voila"

lab: $(KERNEL)
	$(BIN)/workbench lab

# The rule set, the layout and the import contracts are in pyproject.toml; a few seconds.
lint: $(INSTALLED)
	@$(BIN)/ruff check --quiet .
	@$(BIN)/ruff format --check --quiet . || { echo "error: run $(BIN)/ruff format . to lay the code out as the formatter does" >&2; exit 1; }
	@$(BIN)/lint-imports --no-cache >/dev/null || $(BIN)/lint-imports --no-cache
	@echo "lint: ruff check, ruff format --check and the import contracts passed"

bench: $(INSTALLED)
	@for script in benchmarks/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) data reports test-artifacts test-clients
