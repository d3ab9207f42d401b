"""The data plane's front door: AgentCore's paths, authorizer and header rules, then the proxy.

Only `POST /runtimes/<ARN>/invocations`, WebSocket `/runtimes/<ARN>/ws` and
`POST /runtimes/<ARN>/stopruntimesession` exist (with CORS for web pages); the ARN must be
URL-encoded as AWS requires.
What reaches the container is what AgentCore passes: the session id header, the bearer token
(checked here, then again by the container), `...-Custom-*` headers and query parameters (the
latter as lower-cased headers), the WebSocket subprotocols, and other query parameters only with
`forward_query`. Bodies and messages stream both ways; limits close WebSockets with AgentCore's
codes.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import re
from collections.abc import AsyncIterator
from urllib.parse import parse_qsl, unquote, unquote_plus

import httpx
import websockets
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from websockets.asyncio.client import ClientConnection
from websockets.typing import Subprotocol

from app.devtools.agentcore.authorizer import AuthError, AuthorizerUnavailable, JwtAuthorizer
from app.devtools.agentcore.bridge import bridge
from app.devtools.agentcore.config import (
    BEARER_PROTOCOL,
    CUSTOM_PREFIX,
    SESSION_HEADER,
    SESSION_ID_MAX,
    SESSION_ID_MIN,
    EmulatorSettings,
)
from app.devtools.agentcore.containers import (
    Container,
    ContainerPool,
    ContainerStart,
    StartError,
)

logger = logging.getLogger(__name__)

_PATH = re.compile(r"/runtimes/(?P<arn>[^/]+)/(?P<action>invocations|ws|stopruntimesession)")
_CUSTOM = CUSTOM_PREFIX.lower()
_AGENTCORE_PARAMS = frozenset({SESSION_HEADER.lower(), "qualifier"})
# The InvokeAgentRuntime API carries a content type and an accept type; framing stays too.
_PASSED_REQUEST_HEADERS = ("content-type", "accept", "content-length")
_DROPPED_RESPONSE_HEADERS = frozenset(
    {b"connection", b"keep-alive", b"transfer-encoding", b"te", b"trailer", b"upgrade"}
    | {b"date", b"server"}  # the emulator's server sets its own
)
_CONNECT_TIMEOUT_S = 10.0
# A web page calls the data plane from its own origin (the seed's "Restart" button, our
# "Restart workspace"): CORS, with the bearer token and the session id header.
_CORS = {"access-control-allow-origin": "*", "access-control-expose-headers": SESSION_HEADER}
_PREFLIGHT = {
    **_CORS,
    "access-control-allow-methods": "POST",
    "access-control-allow-headers": f"authorization, content-type, accept, {SESSION_HEADER}",
    "access-control-max-age": "600",
}


class _Refusal(Exception):
    """A request the data plane answers itself, as AWS does, with a JSON message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def response(self) -> Response:
        return JSONResponse({"message": self.message}, status_code=self.status)


class EmulatorApp:
    """The ASGI app; containers run while its lifespan does."""

    def __init__(self, settings: EmulatorSettings) -> None:
        self.settings = settings
        # Every cold start in order; appended on the event loop, read by benches and tests.
        self.starts: list[ContainerStart] = []
        self._authorizer = (
            JwtAuthorizer(settings.discovery_url, settings.allowed_clients)
            if settings.discovery_url
            else None
        )
        self._client: httpx.AsyncClient | None = None
        self._pool: ContainerPool | None = None
        self._watcher: asyncio.Task[None] | None = None

    @property
    def pool(self) -> ContainerPool:
        if self._pool is None:
            raise RuntimeError("the emulator's lifespan has not started")
        return self._pool

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            raise RuntimeError("the emulator's lifespan has not started")
        return self._client

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(WebSocket(scope, receive, send))

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._open()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self._close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _open(self) -> None:
        if self._authorizer is None:
            logger.warning("no JWT authorizer configured: every caller is let through")
        # Loopback only, so no proxies from the environment; no headers of the client's own.
        client = httpx.AsyncClient(
            trust_env=False, timeout=httpx.Timeout(_CONNECT_TIMEOUT_S, read=None)
        )
        for name in ("user-agent", "accept", "accept-encoding"):
            del client.headers[name]
        self._client = client
        self._pool = ContainerPool(self.settings, client, self.starts.append)
        self._watcher = asyncio.create_task(self._pool.watch())

    async def _close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
        await self.pool.shutdown()
        await self.client.aclose()

    # --- what every request goes through ---

    def _action(self, scope: Scope) -> str | None:
        """The route, matched on the raw path so that an unencoded ARN does not match."""
        raw_path = scope.get("raw_path") or scope["path"].encode()
        match = _PATH.fullmatch(raw_path.decode("latin-1"))
        if match is None or unquote(match["arn"]) != self.settings.runtime_arn:
            return None
        return match["action"]

    async def _authorize(self, conn: HTTPConnection) -> str | None:
        """The caller's bearer token once the authorizer accepts it (never logged)."""
        token = _bearer_token(conn)
        if self._authorizer is None:
            return token
        if token is None:
            raise _Refusal(401, "missing bearer token")
        try:
            await self._authorizer.verify(token)
        except AuthError as exc:
            logger.info("token refused: %s", exc)
            raise _Refusal(401, "invalid bearer token") from exc
        except AuthorizerUnavailable as exc:
            logger.error("JWT authorizer unavailable: %s", exc)
            raise _Refusal(500, "the JWT authorizer is unavailable") from exc
        return token

    async def _container(self, session_id: str) -> Container:
        try:
            return await self.pool.get(session_id)
        except StartError as exc:
            raise _Refusal(424, f"runtime session failed to start: {exc}") from exc

    def _container_headers(
        self, conn: HTTPConnection, session_id: str, token: str | None
    ) -> dict[str, str]:
        """The request header allowlist, plus the custom query parameters turned headers."""
        headers = {SESSION_HEADER: session_id}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        for name, value in conn.headers.items():
            if name.startswith(_CUSTOM):
                headers[name] = value
        for name, value in parse_qsl(conn.url.query, keep_blank_values=True):
            if name.lower().startswith(_CUSTOM):
                headers[name.lower()] = value
        return headers

    def _container_query(self, conn: HTTPConnection) -> str:
        """Other query parameters, untouched, only if this emulator forwards them."""
        if not self.settings.forward_query:
            return ""
        kept = []
        for part in conn.url.query.split("&"):
            name = unquote_plus(part.partition("=")[0]).lower()
            if part and name not in _AGENTCORE_PARAMS and not name.startswith(_CUSTOM):
                kept.append(part)
        return "&".join(kept)

    # --- HTTP ---

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        if request.method == "OPTIONS" and self._action(scope) is not None:
            await Response(status_code=204, headers=_PREFLIGHT)(scope, receive, send)
            return
        # The exit stack closes the container's response once ours is sent, or abandoned.
        async with contextlib.AsyncExitStack() as stack:
            try:
                response = await self._answer(request, stack)
            except _Refusal as refusal:
                logger.info("%s %s: %d %s", request.method, scope["path"], refusal.status, refusal)
                response = refusal.response()
            if "origin" in request.headers:
                response.headers.update(_CORS)
            await response(scope, receive, send)

    async def _answer(self, request: Request, stack: contextlib.AsyncExitStack) -> Response:
        action = self._action(request.scope)
        if request.method == "POST" and action == "invocations":
            return await self._invoke(request, stack)
        if request.method == "POST" and action == "stopruntimesession":
            return await self._stop(request)
        raise _Refusal(404, "not found")

    async def _invoke(self, request: Request, stack: contextlib.AsyncExitStack) -> Response:
        token = await self._authorize(request)
        session_id = _session_id(request)
        container = await self._container(session_id)
        stack.enter_context(container.request())
        headers = self._container_headers(request, session_id, token)
        for name in _PASSED_REQUEST_HEADERS:
            if name in request.headers:
                headers[name] = request.headers[name]
        url = container.url("/invocations", self._container_query(request))
        outgoing = self.client.build_request("POST", url, headers=headers, content=request.stream())
        try:
            upstream = await self.client.send(outgoing, stream=True)
        except httpx.HTTPError as exc:
            raise _Refusal(502, f"the container did not answer: {exc!r}") from exc
        stack.push_async_callback(upstream.aclose)
        response = StreamingResponse(_relay(upstream, container), status_code=upstream.status_code)
        response.raw_headers = [
            (name.lower(), value)
            for name, value in upstream.headers.raw
            if name.lower() not in _DROPPED_RESPONSE_HEADERS
        ] + [(SESSION_HEADER.lower().encode(), session_id.encode())]
        return response

    async def _stop(self, request: Request) -> Response:
        """StopRuntimeSession: the session's process and disk go now."""
        await self._authorize(request)
        session_id = _session_id(request)
        if not await self.pool.end(session_id, "StopRuntimeSession"):
            raise _Refusal(404, "no running session with this id")
        return JSONResponse(
            {"runtimeSessionId": session_id, "statusCode": 200},
            headers={SESSION_HEADER: session_id},
        )

    # --- WebSocket ---

    async def _websocket(self, websocket: WebSocket) -> None:
        """Every refusal is an HTTP status before the upgrade, as AgentCore answers."""
        try:
            if self._action(websocket.scope) != "ws":
                raise _Refusal(404, "not found")
            token = await self._authorize(websocket)
            session_id = _session_id(websocket)
            container = await self._container(session_id)
            upstream = await self._connect(container, websocket, session_id, token)
        except _Refusal as refusal:
            logger.info("WebSocket %s: %d %s", websocket.scope["path"], refusal.status, refusal)
            await websocket.send_denial_response(refusal.response())
            return
        offered = websocket.scope.get("subprotocols", [])
        chosen = BEARER_PROTOCOL if BEARER_PROTOCOL in offered else upstream.subprotocol
        async with upstream:
            await websocket.accept(subprotocol=chosen)
            await bridge(websocket, upstream, container, self.settings)

    async def _connect(
        self, container: Container, websocket: WebSocket, session_id: str, token: str | None
    ) -> ClientConnection:
        """The container's /ws, offered the browser's subprotocols (token entry included)."""
        offered = [Subprotocol(p) for p in websocket.scope.get("subprotocols", [])]
        url = container.url("/ws", self._container_query(websocket), scheme="ws")
        try:
            return await websockets.connect(
                url,
                additional_headers=self._container_headers(websocket, session_id, token),
                subprotocols=offered or None,
                max_size=None,  # the frame limit is checked by the bridge, both ways
                proxy=None,
                user_agent_header=None,
                open_timeout=_CONNECT_TIMEOUT_S,
            )
        except websockets.InvalidStatus as exc:
            status = exc.response.status_code
            raise _Refusal(status, f"the container refused the WebSocket ({status})") from exc
        except (OSError, TimeoutError, websockets.WebSocketException) as exc:
            raise _Refusal(502, f"cannot reach the container's /ws: {exc!r}") from exc


def _bearer_token(conn: HTTPConnection) -> str | None:
    """From `Authorization: Bearer`, or a browser's `base64UrlBearerAuthorization.<token>`."""
    scheme, _, token = conn.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    prefix = BEARER_PROTOCOL + "."
    for protocol in conn.scope.get("subprotocols", []):
        if protocol.startswith(prefix):
            encoded = protocol.removeprefix(prefix)
            try:
                return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
            except (binascii.Error, UnicodeDecodeError):
                return None
    return None


def _session_id(conn: HTTPConnection) -> str:
    """The runtime session id: a header, or for WebSockets a query parameter of that name."""
    session_id = conn.headers.get(SESSION_HEADER)
    if session_id is None and conn.scope["type"] == "websocket":
        session_id = conn.query_params.get(SESSION_HEADER)
    if session_id is None:
        raise _Refusal(400, f"{SESSION_HEADER} is required")
    if not SESSION_ID_MIN <= len(session_id) <= SESSION_ID_MAX:
        raise _Refusal(
            400, f"{SESSION_HEADER} must be {SESSION_ID_MIN}-{SESSION_ID_MAX} characters"
        )
    return session_id


async def _relay(upstream: httpx.Response, container: Container) -> AsyncIterator[bytes]:
    """The container's body as it arrives (SSE token by token), still encoded as it was sent."""
    try:
        async for chunk in upstream.aiter_raw():
            container.touch()
            yield chunk
    except httpx.HTTPError as exc:
        logger.warning("%s: response cut off: %r", container.label, exc)
