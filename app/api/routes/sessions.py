"""The seed's session API (same paths, bodies and SSE event types), scoped to the signed-in user,
plus resumable streams, paged history and a few things the seed lacked (fork, rename, model)."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from app.agent.approvals import Answer
from app.agent.engine import AgentEngine
from app.api.deps import CurrentUser, Engine
from app.api.streaming import turn_frames
from app.db.models import AgentSession
from app.errors import InvalidInput

router = APIRouter(prefix="/sessions", tags=["sessions"])

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
Mode = Literal["default", "acceptEdits", "plan", "bypassPermissions"]


class CreateSession(BaseModel):
    user_id: str | None = Field(
        None, description="Ignored: the user comes from the token (seed compatibility)."
    )
    resume_session_id: str | None = None
    model: str | None = Field(None, max_length=200)
    background_model: str | None = Field(
        None, description="Accepted for seed compatibility; unused."
    )
    cwd: str | None = Field(None, description="Accepted for seed compatibility; use project_id.")
    mcp_server_ids: list[str] | None = None
    project_id: str | None = None
    permission_mode: Mode = "default"
    title: str = Field("", max_length=200)


class SendMessage(BaseModel):
    message: str = Field(..., min_length=1)
    model: str | None = Field(None, max_length=200)


class PermissionAnswer(BaseModel):
    request_id: str = Field(..., min_length=1, max_length=100)
    allowed: bool
    apply_suggestions: bool = False
    message: str = Field("", max_length=10_000)
    updated_input: dict[str, Any] | None = None


class ModeChange(BaseModel):
    mode: Mode


class ModelChange(BaseModel):
    model: str = Field(..., min_length=1, max_length=200)


class Rename(BaseModel):
    title: str = Field(..., min_length=1, max_length=200)


def view(row: AgentSession, engine: AgentEngine) -> dict[str, Any]:
    return {
        "session_id": row.id,
        "title": row.title,
        "project_id": row.project_id,
        "model": row.model,
        "current_model": row.model,
        "permission_mode": row.mode,
        "status": row.status,
        "live": engine.is_live(row.id),
        "error": row.error,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
        "cost_usd": row.cost_usd,
        "input_tokens": row.input_tokens,
        "output_tokens": row.output_tokens,
        "turns": row.turns,
        "rules": json.loads(row.rules_json or "[]"),
        "forked_from": row.forked_from,
        "last_seq": engine.last_seq(row.id),
    }


@router.post("", status_code=201)
async def create_session(body: CreateSession, user: CurrentUser, engine: Engine) -> dict[str, Any]:
    if body.resume_session_id:
        row = await engine.activate(user, body.resume_session_id)
    else:
        row = await engine.create_session(
            user,
            project_id=body.project_id,
            model=body.model,
            mode=body.permission_mode,
            title=body.title,
        )
    return {**view(row, engine), "status": "connected", "session_status": row.status}


@router.get("")
async def live_sessions(user: CurrentUser, engine: Engine) -> dict[str, Any]:
    rows = [await engine.get_session(user, sid) for sid in engine.live_session_ids(user)]
    return {"sessions": [view(row, engine) for row in rows]}


@router.get("/available")
async def available_sessions(
    user: CurrentUser,
    engine: Engine,
    limit: Annotated[int, Query(ge=1, le=500)] = 20,
    offset: Annotated[int, Query(ge=0)] = 0,
    search: Annotated[str, Query(max_length=200)] = "",
) -> dict[str, Any]:
    rows, total = await engine.list_sessions(user, limit=limit, offset=offset, search=search)
    sessions = [
        {
            **view(row, engine),
            "modified": row.updated_at.isoformat(),
            "preview": row.title,
            "first_message": row.title,
            "project": row.project_id,
            "message_count": row.turns,
            "active": engine.is_live(row.id),
            "cwd": str(engine.project_dir(user, row.project_id)),
        }
        for row in rows
    ]
    return {
        "sessions": sessions,
        "has_more": offset + len(rows) < total,
        "total": total,
        "offset": offset,
        "limit": limit,
    }


@router.post("/close_all")
async def close_all(user: CurrentUser, engine: Engine) -> dict[str, Any]:
    ids = engine.live_session_ids(user)
    for session_id in ids:
        await engine.close_session(user, session_id)
    return {"closed": ids}


@router.get("/{session_id}")
async def get_session(session_id: str, user: CurrentUser, engine: Engine) -> dict[str, Any]:
    return view(await engine.get_session(user, session_id), engine)


@router.patch("/{session_id}")
async def rename(
    session_id: str, body: Rename, user: CurrentUser, engine: Engine
) -> dict[str, Any]:
    await engine.rename_session(user, session_id, body.title)
    return view(await engine.get_session(user, session_id), engine)


@router.post(
    "/{session_id}/messages/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream_message(
    session_id: str,
    body: SendMessage,
    user: CurrentUser,
    engine: Engine,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    after: Annotated[int | None, Query(ge=0)] = None,
) -> StreamingResponse:
    """Send a message and stream the turn. With `Last-Event-ID` (or `?after=N`) this is a
    reconnect: the message is not sent again and the stream resumes after that event."""
    resume_from = _resume_point(last_event_id, after)
    if resume_from is None:
        start = await _send(engine, user, session_id, body)
        frames = await turn_frames(engine, user, session_id, start, resuming=False)
    else:
        frames = await turn_frames(engine, user, session_id, resume_from, resuming=True)
    return StreamingResponse(frames, media_type="text/event-stream", headers=SSE_HEADERS)


@router.get(
    "/{session_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def follow_events(
    session_id: str,
    user: CurrentUser,
    engine: Engine,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    after: Annotated[int | None, Query(ge=0)] = None,
) -> StreamingResponse:
    """Follow the current (or next) turn of a session; EventSource reconnects resume by
    Last-Event-ID."""
    start = _resume_point(last_event_id, after)
    frames = await turn_frames(
        engine,
        user,
        session_id,
        start if start is not None else engine.last_seq(session_id),
        resuming=start is not None,
    )
    return StreamingResponse(frames, media_type="text/event-stream", headers=SSE_HEADERS)


@router.post("/{session_id}/messages")
async def send_message(
    session_id: str, body: SendMessage, user: CurrentUser, engine: Engine
) -> dict[str, Any]:
    """Send a message and answer when the turn is over (a pending approval keeps it waiting)."""
    start = await _send(engine, user, session_id, body)
    messages: list[dict[str, Any]] = []
    async for chunk in await turn_frames(engine, user, session_id, start, resuming=False):
        if chunk.startswith(b"id:"):
            data = json.loads(chunk.split(b"data: ", 1)[1])
            if not data["type"].endswith("_delta"):
                messages.append(data)
    result = next((m for m in reversed(messages) if m["type"] == "result"), None)
    return {"session_id": session_id, "messages": messages, "result": result}


@router.get("/{session_id}/status")
async def status(session_id: str, user: CurrentUser, engine: Engine) -> dict[str, Any]:
    row = await engine.get_session(user, session_id)
    pending = await engine.pending_approvals(user, session_id)
    return {
        **view(row, engine),
        "pending_permission": pending[0] if pending else None,
        "pending_permissions": pending,
    }


@router.get("/{session_id}/history")
async def history(
    session_id: str,
    user: CurrentUser,
    engine: Engine,
    before: Annotated[int | None, Query(ge=0, description="cursor from the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    page = await engine.history(user, session_id, before=before, limit=limit)
    metadata = page.metadata or {
        "session_id": session_id,
        "cwd": None,
        "git_branch": None,
        "version": None,
    }
    return {
        "metadata": metadata,
        "messages": page.messages,
        "message_count": len(page.messages),
        "before": page.before,
        "has_more": page.before is not None,
    }


@router.get("/{session_id}/permissions")
async def pending_permissions(session_id: str, user: CurrentUser, engine: Engine) -> dict[str, Any]:
    return {"pending": await engine.pending_approvals(user, session_id)}


@router.post("/{session_id}/permissions/respond")
async def respond(
    session_id: str, body: PermissionAnswer, user: CurrentUser, engine: Engine
) -> dict[str, Any]:
    answer = Answer(
        allow=body.allowed,
        always=body.apply_suggestions,
        message=body.message,
        updated_input=body.updated_input,
    )
    await engine.answer(user, session_id, body.request_id, answer)
    return {"status": "ok", "request_id": body.request_id, "allowed": body.allowed}


@router.post("/{session_id}/interrupt")
async def interrupt(session_id: str, user: CurrentUser, engine: Engine) -> dict[str, str]:
    await engine.interrupt(user, session_id)
    return {"status": "interrupted", "session_id": session_id}


@router.post("/{session_id}/permission_mode")
async def permission_mode(
    session_id: str, body: ModeChange, user: CurrentUser, engine: Engine
) -> dict[str, str]:
    await engine.set_mode(user, session_id, body.mode)
    return {"status": "ok", "mode": body.mode}


@router.post("/{session_id}/model")
async def model(
    session_id: str, body: ModelChange, user: CurrentUser, engine: Engine
) -> dict[str, str]:
    await engine.set_model(user, session_id, body.model)
    return {"status": "ok", "model": body.model}


@router.post("/{session_id}/fork", status_code=201)
async def fork(session_id: str, user: CurrentUser, engine: Engine) -> dict[str, Any]:
    return view(await engine.fork_session(user, session_id), engine)


@router.delete("/{session_id}", status_code=204)
async def delete(session_id: str, user: CurrentUser, engine: Engine) -> Response:
    await engine.delete_session(user, session_id)
    return Response(status_code=204)


async def _send(engine: AgentEngine, user: str, session_id: str, body: SendMessage) -> int:
    """Switch model if asked, send the message; returns the event number the turn follows."""
    await engine.get_session(user, session_id)
    if body.model:
        await engine.set_model(user, session_id, body.model)
    start = engine.last_seq(session_id)
    await engine.send(user, session_id, body.message)
    return start


def _resume_point(last_event_id: str | None, after: int | None) -> int | None:
    if after is not None:
        return after
    if last_event_id is None:
        return None
    try:
        value = int(last_event_id)
    except ValueError:
        raise InvalidInput("Last-Event-ID must be an event number.") from None
    if value < 0:
        raise InvalidInput("Last-Event-ID must be an event number.")
    return value
