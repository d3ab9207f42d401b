"""Reflex configuration for Agent Web.

Every field can be overridden from the environment with the ``REFLEX_`` prefix, e.g.
``REFLEX_API_URL=https://api.example.com`` (baked into the frontend at build/export time),
``REFLEX_FRONTEND_PORT``, ``REFLEX_BACKEND_PORT``, ``REFLEX_DB_URL``, ``REFLEX_REDIS_URL``.
Reflex applies those overrides itself after reading this file; nothing here reads them.
"""

import os
from pathlib import Path

import reflex as rx

from app.settings import data_dir_of, reflex_states_dir
from app.static_site.plugin import StaticSitePlugin

# `reflex run` (dev) hot-reloads the backend on changes to ANY file (bar a few extensions) in
# every non-hidden top-level directory of the repo: tests, test-artifacts, data, deploy...
# Only the app package should restart the backend. (Env var read at backend start.)
os.environ.setdefault("REFLEX_HOT_RELOAD_OVERRIDE_PATHS", str(Path(__file__).parent / "app"))
# Reflex's per-tab state pickles: in DATA_DIR (mode 0700, see app.services), not the checkout.
os.environ.setdefault("REFLEX_STATES_WORKDIR", str(reflex_states_dir(data_dir_of(os.environ))))

config = rx.Config(
    # Reflex imports f"{app_name}.{app_name}" -> app/app.py, attribute `app`.
    app_name="app",
    # Ports: deliberately NOT set here. Reflex's defaults are frontend 3000 / backend 8000
    # (dev), 3000 for `--env prod --single-port`, 8000 for `--backend-only`. Setting them
    # explicitly breaks `reflex run --backend-only` ("Cannot specify --frontend-port when not
    # running frontend") and plain `reflex run --env prod` ("frontend and backend must run on
    # the same port"). Override per run with --frontend-port/--backend-port or
    # REFLEX_FRONTEND_PORT/REFLEX_BACKEND_PORT.
    # Offline: no telemetry. Radix is declared explicitly (implicit use is deprecated);
    # the sitemap plugin is not needed and would warn if left implicit.
    telemetry_enabled=False,
    # StaticSitePlugin: the AgentCore socket and browser sign-in in an export for Amplify
    # (only with AGENTCORE_WS_URL set; see app/static_site/plugin.py).
    plugins=[
        rx.plugins.RadixThemesPlugin(theme=rx.theme(accent_color="violet", radius="medium")),
        StaticSitePlugin(),
    ],
    disable_plugins=[rx.plugins.SitemapPlugin],
    show_built_with_reflex=False,
)
