"""The container's front door: on AgentCore only `/invocations`, `/ping` and `/ws` may answer.

`/ws` carries two kinds of socket. Programs speak the JSON operations of `app.api.ws`; the page
speaks Reflex's event socket (engine.io), which Reflex serves at `/_event/`. A handshake is the
page's when it carries engine.io's `EIO` query parameter or the page's custom parameter
`X-Amzn-Bedrock-AgentCore-Runtime-Custom-Reflex` (AgentCore turns custom query parameters into
headers and may drop every other one, so the page sends what Reflex needs both ways and the
query is rebuilt here when it is missing).

The page's socket is let through only with a verified access token whose user the runtime
session id is bound to (the first user to use a runtime session owns it; AgentCore itself does
not bind sessions to users). The token is then taken off the request: Reflex never sees it in its
headers, and the verified user id goes along in `X-Agent-Web-User` (any such header the caller
sent is dropped first). The workload access token AgentCore may add is taken off too (Reflex
sends its copy of the socket's headers to the page) and kept in the connection's ASGI scope
under `WORKLOAD_TOKEN_KEY`, where the page's GitHub link finds it on the server.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlencode

from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.deps import AGENTCORE_BEARER, RUNTIME_SESSION_HEADER, identity_for_token, socket_token
from app.errors import AppError
from app.github.identity import WORKLOAD_TOKEN_HEADERS, WORKLOAD_TOKEN_KEY, workload_token_of
from app.services import Services

logger = logging.getLogger(__name__)

CUSTOM_HEADER = "x-amzn-bedrock-agentcore-runtime-custom-"
REFLEX_TOKEN_HEADER = CUSTOM_HEADER + "reflex"  # the tab's Reflex token, from the page's query
USER_HEADER = "x-agent-web-user"
CONTRACT_PATHS = ("/invocations", "/ping")
REFLEX_SOCKET_PATH = "/_event/"
NOT_HERE = "Not found: this runtime answers /invocations, /ping, /ws."
_DROPPED = {
    b"authorization",
    b"sec-websocket-protocol",
    USER_HEADER.encode(),
    *(name.lower().encode() for name in WORKLOAD_TOKEN_HEADERS),
}


class ContainerGate:
    """ASGI middleware in front of the whole backend (Reflex, its socket and the API)."""

    def __init__(self, app: ASGIApp, services: Callable[[], Services]) -> None:
        self.app = app
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if scope["type"] == "http" and path in CONTRACT_PATHS:
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket" and path.rstrip("/") == "/ws":
            if _is_reflex(scope):
                await self._reflex_socket(scope, receive, send)
            else:
                await self.app({**scope, "path": "/ws", "raw_path": b"/ws"}, receive, send)
        else:
            await _refuse(scope, send, 404, NOT_HERE)

    async def _reflex_socket(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = _headers(scope)
        token, _ = socket_token(headers)
        if not token:
            await _refuse(scope, send, 401, "Sign in first: the socket carries no access token.")
            return
        try:
            identity = await identity_for_token(
                self.services(), token, headers.get(RUNTIME_SESSION_HEADER.lower())
            )
        except AppError as error:
            await _refuse(scope, send, error.status, error.message)
            return
        offered = [p.strip() for p in headers.get("sec-websocket-protocol", "").split(",")]
        inner: dict[str, Any] = {
            **scope,
            "path": REFLEX_SOCKET_PATH,
            "raw_path": REFLEX_SOCKET_PATH.encode(),
            "query_string": _engineio_query(scope, headers).encode(),
            "headers": [
                *((name, value) for name, value in scope["headers"] if name not in _DROPPED),
                (USER_HEADER.encode(), identity.user_id.encode()),
            ],
            "subprotocols": [AGENTCORE_BEARER] if AGENTCORE_BEARER in offered else [],
            WORKLOAD_TOKEN_KEY: workload_token_of(headers),
        }
        await self.app(inner, receive, send)


def _is_reflex(scope: Scope) -> bool:
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    return "EIO" in query or REFLEX_TOKEN_HEADER in _headers(scope)


def _engineio_query(scope: Scope, headers: dict[str, str]) -> str:
    """The query Reflex's engine.io server needs, whatever AgentCore let through."""
    query = {k: v[0] for k, v in parse_qs(scope.get("query_string", b"").decode()).items()}
    query.setdefault("EIO", "4")
    query.setdefault("transport", "websocket")
    if "token" not in query and headers.get(REFLEX_TOKEN_HEADER):
        query["token"] = headers[REFLEX_TOKEN_HEADER]
    return urlencode(query)


def _headers(scope: Scope) -> dict[str, str]:
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}


async def _refuse(scope: Scope, send: Send, status: int, reason: str) -> None:
    """An HTTP answer with a sentence; for a socket, before the upgrade where the server can
    (so clients see 401/403/404, as AgentCore's own refusals look), else a close."""
    body = reason.encode()
    start = {"status": status, "headers": [(b"content-type", b"text/plain; charset=utf-8")]}
    if scope["type"] == "http":
        await send({"type": "http.response.start", **start})
        await send({"type": "http.response.body", "body": body})
    elif "websocket.http.response" in scope.get("extensions", {}):
        await send({"type": "websocket.http.response.start", **start})
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": 1008, "reason": reason[:120]})
