"""WebSocket `/ws`: the session operations and the event stream over one connection.

Browsers cannot set headers on a WebSocket, so the token may come as the subprotocol pair
`["bearer", "<token>"]`; programs may send `Authorization: Bearer <token>`. Client messages are
`{"id": ..., "op": ..., ...}` and get a reply `{"id", "ok", "result" | "error"}`; events arrive
as `{"op": "event", "session_id", "event": <the same payload as an SSE frame>}`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect
from pydantic import BaseModel, ValidationError

from app.agent.approvals import Answer
from app.agent.engine import AgentEngine
from app.api import frames
from app.api.deps import RUNTIME_SESSION_HEADER, user_for_token
from app.api.routes.sessions import CreateSession, ModeChange, ModelChange, PermissionAnswer, view
from app.errors import AppError, InvalidInput
from app.services import services

logger = logging.getLogger(__name__)


class SessionRef(BaseModel):
    session_id: str


class Subscribe(SessionRef):
    after: int | None = None


class Send(SessionRef):
    message: str


class History(SessionRef):
    before: int | None = None
    limit: int = 100


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

    async def handle(self, message: dict[str, Any]) -> dict[str, Any]:
        op = message.get("op")
        handler = _OPS.get(str(op))
        if handler is None:
            raise InvalidInput(f"Unknown op {op!r}; use one of {', '.join(sorted(_OPS))}.")
        return await handler(self, message)

    async def subscribe(self, session_id: str, after: int) -> None:
        events = await self.engine.subscribe(self.user_id, session_id, after)
        old = self.subscriptions.pop(session_id, None)
        if old is not None:
            old.cancel()

        async def forward() -> None:
            async for event in events:
                await self.send_json(
                    {
                        "op": "event",
                        "session_id": session_id,
                        "event": frames.frame_data(event, session_id),
                    }
                )

        self.subscriptions[session_id] = asyncio.create_task(forward())

    def close(self) -> None:
        for task in self.subscriptions.values():
            task.cancel()


async def _create(c: Connection, m: dict[str, Any]) -> dict[str, Any]:
    body = CreateSession.model_validate(m)
    row = await c.engine.create_session(
        c.user_id,
        project_id=body.project_id,
        model=body.model,
        mode=body.permission_mode,
        title=body.title,
    )
    return view(row, c.engine)


async def _subscribe(c: Connection, m: dict[str, Any]) -> dict[str, Any]:
    body = Subscribe.model_validate(m)
    after = body.after if body.after is not None else c.engine.last_seq(body.session_id)
    await c.subscribe(body.session_id, after)
    return {"subscribed": body.session_id, "after": after}


async def _unsubscribe(c: Connection, m: dict[str, Any]) -> dict[str, Any]:
    body = SessionRef.model_validate(m)
    task = c.subscriptions.pop(body.session_id, None)
    if task is not None:
        task.cancel()
    return {"unsubscribed": body.session_id}


async def _send(c: Connection, m: dict[str, Any]) -> dict[str, Any]:
    body = Send.model_validate(m)
    await c.engine.get_session(c.user_id, body.session_id)
    if body.session_id not in c.subscriptions:
        await c.subscribe(body.session_id, c.engine.last_seq(body.session_id))
    await c.engine.send(c.user_id, body.session_id, body.message)
    return {"sent": True}


async def _answer(c: Connection, m: dict[str, Any]) -> dict[str, Any]:
    ref, body = SessionRef.model_validate(m), PermissionAnswer.model_validate(m)
    answer = Answer(
        allow=body.allowed,
        always=body.apply_suggestions,
        message=body.message,
        updated_input=body.updated_input,
    )
    await c.engine.answer(c.user_id, ref.session_id, body.request_id, answer)
    return {"request_id": body.request_id, "allowed": body.allowed}


async def _interrupt(c: Connection, m: dict[str, Any]) -> dict[str, Any]:
    await c.engine.interrupt(c.user_id, SessionRef.model_validate(m).session_id)
    return {"interrupted": True}


async def _set_mode(c: Connection, m: dict[str, Any]) -> dict[str, Any]:
    ref, body = SessionRef.model_validate(m), ModeChange.model_validate(m)
    await c.engine.set_mode(c.user_id, ref.session_id, body.mode)
    return {"mode": body.mode}


async def _set_model(c: Connection, m: dict[str, Any]) -> dict[str, Any]:
    ref, body = SessionRef.model_validate(m), ModelChange.model_validate(m)
    await c.engine.set_model(c.user_id, ref.session_id, body.model)
    return {"model": body.model}


async def _status(c: Connection, m: dict[str, Any]) -> dict[str, Any]:
    session_id = SessionRef.model_validate(m).session_id
    row = await c.engine.get_session(c.user_id, session_id)
    return {
        **view(row, c.engine),
        "pending_permissions": await c.engine.pending_approvals(c.user_id, session_id),
    }


async def _history(c: Connection, m: dict[str, Any]) -> dict[str, Any]:
    body = History.model_validate(m)
    page = await c.engine.history(c.user_id, body.session_id, before=body.before, limit=body.limit)
    return {"messages": page.messages, "before": page.before, "metadata": page.metadata}


_OPS: dict[str, Callable[[Connection, dict[str, Any]], Awaitable[dict[str, Any]]]] = {
    "create": _create,
    "subscribe": _subscribe,
    "unsubscribe": _unsubscribe,
    "send": _send,
    "answer": _answer,
    "interrupt": _interrupt,
    "set_mode": _set_mode,
    "set_model": _set_model,
    "status": _status,
    "history": _history,
}


async def websocket_endpoint(socket: WebSocket) -> None:
    token, subprotocol = _token(socket)
    try:
        user_id = await user_for_token(token, socket.headers.get(RUNTIME_SESSION_HEADER))
    except AppError as error:
        await socket.close(code=4401 if error.status == 401 else 4403, reason=error.message[:120])
        return
    await socket.accept(subprotocol=subprotocol)
    connection = Connection(socket, user_id, services().engine)
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
            await connection.send_json(await _reply(connection, message))
    except WebSocketDisconnect:
        pass
    finally:
        connection.close()


async def _reply(connection: Connection, message: Any) -> dict[str, Any]:
    request_id = message.get("id") if isinstance(message, dict) else None
    try:
        if not isinstance(message, dict):
            raise InvalidInput("Send JSON objects.")
        return {"id": request_id, "ok": True, "result": await connection.handle(message)}
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


def _token(socket: WebSocket) -> tuple[str, str | None]:
    header = socket.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip(), None
    protocols = [p.strip() for p in socket.headers.get("sec-websocket-protocol", "").split(",")]
    if len(protocols) == 2 and protocols[0].lower() == "bearer":
        return protocols[1], "bearer"
    return "", None
