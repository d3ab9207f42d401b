"""The HTTP API: seed-compatible session routes, sign-in, and the AgentCore contract
(`/invocations`, `/ping`, `/ws`). Served on Reflex's backend port (and alone in the container)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.routing import Route

from app.api.invocations import Invocations
from app.api.routes import (
    auth,
    budget,
    env,
    extensions,
    files,
    git,
    github,
    mcp,
    projects,
    sessions,
    system,
    terminal,
    workspace,
)
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
    api.add_exception_handler(RecursionError, _too_deep)
    api.add_exception_handler(RequestValidationError, _invalid)  # type: ignore[arg-type]
    for module in (
        system,
        auth,
        sessions,
        projects,
        workspace,
        github,
        git,
        files,
        terminal,
        env,
        mcp,
        extensions,
    ):
        api.include_router(module.router)
    api.include_router(budget.router)
    api.add_api_websocket_route("/ws", websocket_endpoint)
    routes = list(api.router.routes)
    api.router.routes.append(Route("/invocations", Invocations(api, routes), methods=["POST"]))
    return api


async def _invalid(_request: Request, error: RequestValidationError) -> JSONResponse:
    """422 with where and why, never the input echoed back: a value that cannot even be
    written as UTF-8 (a lone surrogate) would otherwise turn the answer into a 500."""
    problems = [
        {
            "loc": list(problem.get("loc", ())),
            "msg": str(problem.get("msg", "")),
            "type": str(problem.get("type", "")),
        }
        for problem in error.errors()
    ]
    return JSONResponse({"detail": problems, "code": "invalid_input"}, status_code=422)


async def _too_deep(_request: Request, _error: Exception) -> JSONResponse:
    return JSONResponse(
        {"detail": "The request is nested too deeply.", "code": "invalid_input"}, status_code=400
    )


async def _app_error(_request: Request, error: AppError) -> JSONResponse:
    if error.status >= 500:
        logger.warning("request failed: %s", error.message)
    return JSONResponse({"detail": error.message, "code": error.code}, status_code=error.status)
