"""WebSocket `/ws`: the session operations and the event stream over one connection.

Browsers cannot set headers on a WebSocket, so the token may come as the subprotocol pair
`["bearer", "<token>"]`; programs may send `Authorization: Bearer <token>`. Client messages are
`{"id": ..., "op": ..., ...}` and get a reply `{"id", "ok", "result" | "error"}`; events arrive
as `{"op": "event", "session_id", "event": <the same payload as an SSE frame>}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect
from pydantic import BaseModel, Field, ValidationError

from app.agent.engine import AgentEngine
from app.agent.schemas import (
    HistoryQuery,
    Ident,
    ListQuery,
    ModeChange,
    ModelChange,
    NewSession,
    PermissionAnswer,
    Rename,
    SendMessage,
    Sent,
)
from app.api import frames
from app.api.deps import RUNTIME_SESSION_HEADER, app_services, identity_for_token, socket_token
from app.auth.service import Auth, Identity
from app.errors import AppError, InvalidInput

logger = logging.getLogger(__name__)
RECHECK_S = 5.0  # how soon a revocation by another instance closes this socket
SIGNED_OFF = "Signed out or expired: sign in again."


class SessionRef(BaseModel):
    session_id: Ident


class Subscribe(SessionRef):
    after: int | None = Field(None, ge=0, le=2**53)


class Connection:
    def __init__(self, socket: WebSocket, user_id: str, engine: AgentEngine) -> None:
        self.socket = socket
        self.user_id = user_id
        self.engine = engine
        self.subscriptions: dict[str, asyncio.Task[None]] = {}
        self._send_lock = asyncio.Lock()

    async def send_json(self, message: dict[str, Any]) -> None:
        async with self._send_lock:
            await self.socket.send_json(message)

    async def handle(self, message: dict[str, Any]) -> Any:
        op = message.get("op")
        handler = _OPS.get(str(op))
        if handler is None:
            raise InvalidInput(f"Unknown op {op!r}; use one of {', '.join(sorted(_OPS))}.")
        return await handler(self, message)

    async def subscribe(self, session_id: str, after: int | None) -> int:
        follower = await self.engine.follow(self.user_id, session_id, after)
        old = self.subscriptions.pop(session_id, None)
        if old is not None:
            old.cancel()

        async def forward() -> None:
            async for event in follower.events():
                await self.send_json(
                    {
                        "op": "event",
                        "session_id": session_id,
                        "event": frames.frame_data(event, session_id),
                    }
                )

        self.subscriptions[session_id] = asyncio.create_task(forward())
        return follower.after

    def close(self) -> None:
        for task in self.subscriptions.values():
            task.cancel()

    async def end(self, reason: str) -> None:
        """Close the socket from our side: the sign-in behind it is over."""
        self.close()
        async with self._send_lock:
            with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                await self.socket.close(code=4401, reason=reason)


def _ref(m: dict[str, Any]) -> str:
    return str(SessionRef.model_validate(m).session_id)


async def _subscribe(c: Connection, m: dict[str, Any]) -> dict[str, Any]:
    body = Subscribe.model_validate(m)
    after = await c.subscribe(body.session_id, body.after)
    return {"subscribed": body.session_id, "after": after}


async def _unsubscribe(c: Connection, m: dict[str, Any]) -> dict[str, Any]:
    session_id = _ref(m)
    task = c.subscriptions.pop(session_id, None)
    if task is not None:
        task.cancel()
    return {"unsubscribed": session_id}


async def _send(c: Connection, m: dict[str, Any]) -> Sent:
    session_id, body = _ref(m), SendMessage.model_validate(m)
    if session_id not in c.subscriptions:
        await c.subscribe(session_id, None)
    return await c.engine.send(c.user_id, session_id, body)


async def _done(action: Awaitable[None], result: dict[str, Any]) -> dict[str, Any]:
    await action
    return result


# One op per engine operation, with the engine's own models (the same as the REST routes').
_OPS: dict[str, Callable[[Connection, dict[str, Any]], Awaitable[Any]]] = {
    "create": lambda c, m: c.engine.create(c.user_id, NewSession.model_validate(m)),
    "get": lambda c, m: c.engine.get(c.user_id, _ref(m)),
    "list": lambda c, m: c.engine.list_sessions(c.user_id, ListQuery.model_validate(m)),
    "rename": lambda c, m: c.engine.rename(c.user_id, _ref(m), Rename.model_validate(m)),
    "fork": lambda c, m: c.engine.fork(c.user_id, _ref(m)),
    "close": lambda c, m: _done(c.engine.close(c.user_id, _ref(m)), {"closed": _ref(m)}),
    "delete": lambda c, m: _done(c.engine.delete(c.user_id, _ref(m)), {"deleted": _ref(m)}),
    "subscribe": _subscribe,
    "unsubscribe": _unsubscribe,
    "send": _send,
    "answer": lambda c, m: _done(
        c.engine.answer(c.user_id, _ref(m), PermissionAnswer.model_validate(m)),
        {"request_id": m.get("request_id"), "allowed": m.get("allowed")},
    ),
    "interrupt": lambda c, m: _done(c.engine.interrupt(c.user_id, _ref(m)), {"interrupted": True}),
    "set_mode": lambda c, m: _done(
        c.engine.set_mode(c.user_id, _ref(m), ModeChange.model_validate(m)), {"mode": m.get("mode")}
    ),
    "set_model": lambda c, m: _done(
        c.engine.set_model(c.user_id, _ref(m), ModelChange.model_validate(m)),
        {"model": m.get("model")},
    ),
    "status": lambda c, m: c.engine.status(c.user_id, _ref(m)),
    "history": lambda c, m: c.engine.history(c.user_id, _ref(m), HistoryQuery.model_validate(m)),
    "pending": lambda c, m: c.engine.pending(c.user_id, _ref(m)),
    "sync_status": lambda c, m: c.engine.sync_status(c.user_id),
    "backup": lambda c, m: c.engine.backup_now(c.user_id),
}


async def websocket_endpoint(socket: WebSocket) -> None:
    token, subprotocol = socket_token(socket.headers)
    services = app_services(socket)
    try:
        identity = await identity_for_token(
            services, token, socket.headers.get(RUNTIME_SESSION_HEADER)
        )
    except AppError as error:
        # Accepted, then closed with the reason: a refused handshake would tell clients only
        # "HTTP 403", never why.
        await socket.accept(subprotocol=subprotocol)
        await socket.close(code=4401 if error.status == 401 else 4403, reason=error.message[:120])
        return
    await socket.accept(subprotocol=subprotocol)
    auth = services.auth
    connection = Connection(socket, identity.user_id, services.engine)
    revoked = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_revoke(token_id: str) -> None:
        if token_id == identity.token_id:
            loop.call_soon_threadsafe(revoked.set)

    stop_listening = auth.on_revoke(on_revoke)
    guard = asyncio.create_task(_guard(connection, identity, revoked, auth))
    try:
        while True:
            try:
                message = await socket.receive_json()
            except (ValueError, KeyError):
                await connection.send_json(
                    {
                        "ok": False,
                        "error": {"code": "invalid_input", "message": "Send JSON objects."},
                    }
                )
                continue
            if revoked.is_set() or identity.expired() or await auth.revoked(identity.token_id):
                await connection.end(SIGNED_OFF)
                break
            await connection.send_json(await _reply(connection, message))
    except WebSocketDisconnect:
        pass
    finally:
        stop_listening()
        guard.cancel()
        connection.close()


async def _guard(
    connection: Connection, identity: Identity, revoked: asyncio.Event, auth: Auth
) -> None:
    """Close the socket as soon as its token is revoked (here at once; by another instance
    within RECHECK_S) or expires."""
    while True:
        wait = max(0.0, min(RECHECK_S, identity.expires_at - time.time()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(revoked.wait(), timeout=wait)
        if revoked.is_set() or identity.expired() or await auth.revoked(identity.token_id):
            await connection.end(SIGNED_OFF)
            return


async def _reply(connection: Connection, message: Any) -> dict[str, Any]:
    request_id = message.get("id") if isinstance(message, dict) else None
    try:
        if not isinstance(message, dict):
            raise InvalidInput("Send JSON objects.")
        result = await connection.handle(message)
        return {"id": request_id, "ok": True, "result": _plain(result)}
    except AppError as error:
        return {
            "id": request_id,
            "ok": False,
            "error": {"code": error.code, "status": error.status, "message": error.message},
        }
    except ValidationError as error:
        return {
            "id": request_id,
            "ok": False,
            "error": {"code": "invalid_input", "status": 422, "message": str(error.errors()[:3])},
        }


def _plain(value: Any) -> Any:
    """Models (and lists of them) as JSON-ready values."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value
