"""The HTTP API: seed-compatible session routes, sign-in, and the AgentCore contract
(`/invocations`, `/ping`, `/ws`). Served on Reflex's backend port (and alone in the container)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.routing import Route

from app.api.invocations import Invocations
from app.api.routes import auth, projects, sessions, system
from app.api.ws import websocket_endpoint
from app.errors import AppError

logger = logging.getLogger(__name__)


def create_api() -> FastAPI:
    api = FastAPI(
        title="Agent Web API",
        version="1",
        description="Claude Code agents over HTTP: sessions, streamed turns (SSE), approvals.",
    )
    api.add_exception_handler(AppError, _app_error)  # type: ignore[arg-type]
    for module in (system, auth, sessions, projects):
        api.include_router(module.router)
    api.add_api_websocket_route("/ws", websocket_endpoint)
    routes = list(api.router.routes)
    api.router.routes.append(Route("/invocations", Invocations(api, routes), methods=["POST"]))
    return api


async def _app_error(_request: Request, error: AppError) -> JSONResponse:
    if error.status >= 500:
        logger.warning("request failed: %s", error.message)
    return JSONResponse({"detail": error.message, "code": error.code}, status_code=error.status)
