"""AgentCore's `POST /invocations`: one entry point that dispatches to the same routes.

The body names a route template and its parameters (`{path, method, payload, path_params,
query_params}`, as the seed's clients send). The request is re-dispatched inside the same ASGI
app with the caller's headers, so authentication, validation and streaming (SSE passes straight
through) are exactly those of the direct route.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote, urlencode

from starlette.responses import JSONResponse
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_CLOSED = ("/invocations", "/ws", "/ping")
MAX_BODY = 10 * 1024 * 1024


class Invocations:
    def __init__(self, app: ASGIApp, routes: list[Any]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await _read_body(receive)
        try:
            target = _target(body)
        except RecursionError:
            await _refuse("The request is nested too deeply.", scope, receive, send)
            return
        except ValueError as error:
            await _refuse(str(error), scope, receive, send)
            return
        path, method, payload, query = target
        inner = {
            **scope,
            "path": path,
            "raw_path": path.encode(),
            "method": method,
            "query_string": urlencode(query, doseq=True).encode(),
            "headers": _headers(scope, payload),
        }
        if path in _CLOSED or not any(r.matches(inner)[0] == Match.FULL for r in self.routes):
            await JSONResponse({"detail": "Unknown path or method", "code": "not_found"}, 404)(
                scope, receive, send
            )
            return
        await self.app(inner, _replay(payload, receive), send)


def _target(raw: bytes) -> tuple[str, str, bytes, dict[str, Any]]:
    try:
        body = json.loads(raw or b"{}")
    except (ValueError, RecursionError):
        raise ValueError(
            "The body must be JSON (not nested too deeply): "
            "{path, method, payload, path_params, query_params}."
        ) from None
    if not isinstance(body, dict) or not isinstance(body.get("path"), str):
        raise ValueError("`path` (a route such as /sessions/{session_id}/status) is required.")
    method = str(body.get("method") or "POST").upper()
    params = body.get("path_params") or {}
    query = body.get("query_params") or {}
    if not isinstance(params, dict) or not isinstance(query, dict):
        raise ValueError("`path_params` and `query_params` must be objects.")

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in params:
            raise ValueError(f"path_params lacks {name!r}.")
        return quote(str(params[name]), safe="")

    path = _PLACEHOLDER.sub(fill, body["path"])
    if not path.startswith("/") or "/../" in path or path.endswith("/.."):
        raise ValueError("`path` must be an absolute route path.")
    payload = body.get("payload")
    try:
        encoded = (
            b""
            if payload is None and method in ("GET", "DELETE")
            else json.dumps(payload or {}).encode()
        )
    except (ValueError, RecursionError):
        raise ValueError("`payload` is nested too deeply.") from None
    return path, method, encoded, query


async def _refuse(message: str, scope: Scope, receive: Receive, send: Send) -> None:
    await JSONResponse({"detail": message, "code": "invalid_input"}, 400)(scope, receive, send)


def _headers(scope: Scope, payload: bytes) -> list[tuple[bytes, bytes]]:
    kept = [(k, v) for k, v in scope["headers"] if k not in (b"content-type", b"content-length")]
    return [
        *kept,
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
    ]


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            break
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def _replay(payload: bytes, receive: Receive) -> Receive:
    """The inner request's body is the payload; afterwards, the real connection's messages
    (so a client disconnect still reaches a streaming response)."""
    sent = False

    async def inner_receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": payload, "more_body": False}
        return await receive()

    return inner_receive
