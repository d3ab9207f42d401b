# syntax=docker/dockerfile:1
# The AgentCore Runtime container: the app's backend on port 8080, where only /invocations,
# /ping and /ws answer (app/container.py). The static site is not in it (Amplify serves it).
# AgentCore runs linux/arm64 (`python -m deploy up` builds that); amd64 builds too, for a local
# run:   docker buildx build --platform linux/arm64 -t agent-web .
ARG BASE=python:3.11-slim-bookworm
FROM ${BASE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    UV_PROJECT_ENVIRONMENT=/opt/venv \
    PATH=/opt/venv/bin:$PATH

# bubblewrap and socat: the agents' sandbox (the jail, and the door to its proxy); git: agents
# use it in their projects.
RUN apt-get update \
 && apt-get install -y --no-install-recommends bubblewrap socat git ca-certificates \
 && rm -rf /var/lib/apt/lists/*

# The same uv as `make setup` uses.
RUN pip install uv==0.13.9

WORKDIR /app
# Dependencies at build time, exactly as uv.lock pins them, without the dev tools; a layer that
# changes only with the lock. The Claude Code CLI comes inside the claude-agent-sdk wheel for
# this platform: no npm.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project

COPY rxconfig.py ./
COPY assets ./assets
COPY app ./app
# Bytecode now, not in every new microVM (each runtime session boots a fresh one).
RUN python -m compileall -q app rxconfig.py

# The server runs as a plain user, `app`. The agent sandbox (bubblewrap) then needs
# unprivileged user namespaces inside AgentCore's microVM; `python -m deploy probe` checks that
# they are allowed there. Writable: DATA_DIR (the session's disk) and Reflex's work folder.
RUN useradd --create-home --uid 1000 app \
 && mkdir -p /data /app/.web \
 && chown app:app /data /app/.web
USER app
ENV DATA_DIR=/data \
    PORT=8080
EXPOSE 8080
CMD ["python", "-m", "app.container"]
