# zombiectl — `make help` lists the targets.
PYTHON ?= python3
VENV ?= .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
RUNTIME := $(VENV)/.installed-runtime
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help demo test lint format bench test-matrix c-demos clean

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-12s %s\n", $$1, $$2}'

# Two stamps: a demo needs only click, psutil and rich; the tests and linters need more.
$(RUNTIME): pyproject.toml
	@test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --disable-pip-version-check -e .
	@touch $(RUNTIME)

$(STAMP): pyproject.toml
	@test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --disable-pip-version-check -e '.[test,lint]'
	@touch $(STAMP) $(RUNTIME)

venv: $(STAMP) ## Create .venv and install zombiectl with the test and lint tools into it

demo: $(RUNTIME) ## Make zombies happen live: zombiectl demo all (installs only what zombiectl needs)
	$(VENV)/bin/zombiectl demo all

test: $(STAMP) ## Run the whole test suite
	$(VPY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP) ## ruff (lint and format check) and mypy
	$(VENV)/bin/ruff check zombiectl tests bench
	$(VENV)/bin/ruff format --check zombiectl tests bench
	$(VENV)/bin/mypy

format: $(STAMP) ## Apply ruff's formatting and safe fixes
	$(VENV)/bin/ruff check --fix zombiectl tests bench
	$(VENV)/bin/ruff format zombiectl tests bench

bench: $(STAMP) ## Benchmarks against ps, tini and a bare interpreter (prints ratios)
	$(VPY) bench/run.py

test-matrix: ## The suite on every Python >= 3.10 found on this machine
	@found=0; for v in 3.10 3.11 3.12 3.13 3.14; do \
	  py=$$(ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/$$v*/bin/python$$v 2>/dev/null | tail -1); \
	  [ -n "$$py" ] || py=$$(command -v python$$v 2>/dev/null); \
	  [ -n "$$py" ] && $$py -c 'import sys' 2>/dev/null || continue; \
	  found=1; echo "== Python $$v ($$py)"; \
	  $(MAKE) --no-print-directory test PYTHON=$$py VENV=.venv-$$v || exit 1; \
	done; test $$found = 1 || { echo "no Python >= 3.10 found"; exit 1; }

c-demos: ## Build the C demos by hand into c_demos/bin (zombiectl builds them on first use)
	$(MAKE) -C c_demos

clean: ## Remove the virtual environments and caches
	rm -rf .venv .venv-3.* .pytest_cache .mypy_cache .ruff_cache c_demos/bin
