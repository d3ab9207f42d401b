"""The AgentCore Runtime container: `python -m app.container`.

One process serves the whole backend (Reflex's state and event socket, the engine, the API) on
`PORT` (8080, AgentCore's port), behind `ContainerGate`, so only the runtime contract answers:
`POST /invocations`, `GET /ping` and WebSocket `/ws`. The frontend is not here: it is the static
export on Amplify. The same command runs in the image and under the local AgentCore emulator.
"""

from __future__ import annotations

import logging
import os
import sys

import uvicorn
from starlette.types import ASGIApp

from app.settings import SettingsError, get_settings

DEFAULT_PORT = 8080


def build() -> ASGIApp:
    """Reflex's backend behind the gate. Nothing is compiled at start: the backend needs no
    frontend build (the pages are the static export on Amplify)."""
    from reflex_base.environment import environment

    environment.REFLEX_SKIP_COMPILE.set(True)
    from app.api import pieces
    from app.api.gate import ContainerGate
    from app.app import app
    from app.services import services

    backend = app()
    pieces.install(app.event_namespace)  # no socket message over AgentCore's 32 KB
    return ContainerGate(backend, services)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        get_settings()
        port = int(os.environ.get("PORT", DEFAULT_PORT))
    except (SettingsError, ValueError) as error:
        sys.exit(f"agent-web container: {error}")
    uvicorn.run(
        build(),
        host=os.environ.get("HOST", "0.0.0.0"),  # AgentCore reaches the microVM from outside
        port=port,
        ws="websockets-sansio",
        log_level="warning",
        timeout_graceful_shutdown=20,
    )


if __name__ == "__main__":
    main()
