"""The seed's session API (same paths, bodies and SSE event types), scoped to the signed-in user,
plus resumable streams, paged history and what the seed lacked (fork, rename, model). Each route
is one engine operation with the engine's own request and response models."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from app.agent.schemas import (
    ForkRequest,
    HistoryQuery,
    HistoryView,
    ListQuery,
    ModeChange,
    ModelChange,
    NewSession,
    PendingApproval,
    PermissionAnswer,
    Rename,
    RewindView,
    SendMessage,
    SessionList,
    SessionView,
    StatusView,
    TurnRef,
)
from app.api.deps import CurrentUser, Engine
from app.api.streaming import SSE_HEADERS, turn_stream
from app.errors import InvalidInput

router = APIRouter(prefix="/sessions", tags=["sessions"])
MAX_EVENT_ID = 2**53
SSE_RESPONSE: dict[int | str, dict[str, Any]] = {200: {"content": {"text/event-stream": {}}}}


class CreatedSession(SessionView):
    """The seed answers `status: "connected"`; the session's own status is `session_status`."""

    session_status: str


class LiveSessions(BaseModel):
    sessions: list[SessionView]


class Closed(BaseModel):
    closed: list[str]


class Pending(BaseModel):
    pending: list[PendingApproval]


class Answered(BaseModel):
    status: str
    request_id: str
    allowed: bool


class TurnAnswer(BaseModel):
    session_id: str
    messages: list[dict[str, Any]]
    result: dict[str, Any] | None


@router.post("", status_code=201)
async def create_session(body: NewSession, user: CurrentUser, engine: Engine) -> CreatedSession:
    view = await engine.create(user, body)
    return CreatedSession(
        **(view.model_dump() | {"status": "connected"}), session_status=view.status
    )


@router.get("")
async def live_sessions(user: CurrentUser, engine: Engine) -> LiveSessions:
    return LiveSessions(sessions=await engine.live_sessions(user))


@router.get("/available")
async def available_sessions(
    user: CurrentUser, engine: Engine, query: Annotated[ListQuery, Query()]
) -> SessionList:
    return await engine.list_sessions(user, query)


@router.post("/close_all")
async def close_all(user: CurrentUser, engine: Engine) -> Closed:
    return Closed(closed=await engine.close_all(user))


@router.get("/{session_id}")
async def get_session(session_id: str, user: CurrentUser, engine: Engine) -> SessionView:
    return await engine.get(user, session_id)


@router.patch("/{session_id}")
async def rename(session_id: str, body: Rename, user: CurrentUser, engine: Engine) -> SessionView:
    return await engine.rename(user, session_id, body)


@router.post(
    "/{session_id}/messages/stream",
    response_class=StreamingResponse,
    responses=SSE_RESPONSE,
)
async def stream_message(
    session_id: str,
    body: SendMessage,
    user: CurrentUser,
    engine: Engine,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    after: Annotated[int | None, Query(ge=0, le=MAX_EVENT_ID)] = None,
) -> StreamingResponse:
    """Send a message and stream the turn. With `Last-Event-ID` (or `?after=N`) this is a
    reconnect: the message is not sent again and the stream resumes after that event."""
    resume_from = _resume_point(last_event_id, after)
    if resume_from is None:
        sent = await engine.send(user, session_id, body)
        resume_from = sent.seq - 1
    frames = await turn_stream(engine, user, session_id, resume_from)
    return StreamingResponse(frames, media_type="text/event-stream", headers=SSE_HEADERS)


@router.get("/{session_id}/events", response_class=StreamingResponse, responses=SSE_RESPONSE)
async def follow_events(
    session_id: str,
    user: CurrentUser,
    engine: Engine,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    after: Annotated[int | None, Query(ge=0, le=MAX_EVENT_ID)] = None,
) -> StreamingResponse:
    """Follow the running turn from its start (or the next one); EventSource reconnects
    resume by Last-Event-ID."""
    start = _resume_point(last_event_id, after)
    frames = await turn_stream(engine, user, session_id, start)
    return StreamingResponse(frames, media_type="text/event-stream", headers=SSE_HEADERS)


@router.post("/{session_id}/messages")
async def send_message(
    session_id: str, body: SendMessage, user: CurrentUser, engine: Engine
) -> TurnAnswer:
    """Send a message and answer when the turn is over (a pending approval keeps it waiting)."""
    sent = await engine.send(user, session_id, body)
    messages: list[dict[str, Any]] = []
    async for chunk in await turn_stream(engine, user, session_id, sent.seq - 1):
        if chunk.startswith(b"id:"):
            data = json.loads(chunk.split(b"data: ", 1)[1])
            if not data["type"].endswith("_delta"):
                messages.append(data)
    result = next((m for m in reversed(messages) if m["type"] == "result"), None)
    return TurnAnswer(session_id=session_id, messages=messages, result=result)


@router.get("/{session_id}/status")
async def status(session_id: str, user: CurrentUser, engine: Engine) -> StatusView:
    return await engine.status(user, session_id)


@router.get("/{session_id}/history")
async def history(
    session_id: str, user: CurrentUser, engine: Engine, query: Annotated[HistoryQuery, Query()]
) -> HistoryView:
    """A page of the conversation, newest last; pass `before` from one page to get the one
    before it."""
    return await engine.history(user, session_id, query)


@router.get("/{session_id}/permissions")
async def pending_permissions(session_id: str, user: CurrentUser, engine: Engine) -> Pending:
    return Pending(pending=await engine.pending(user, session_id))


@router.post("/{session_id}/permissions/respond")
async def respond(
    session_id: str, body: PermissionAnswer, user: CurrentUser, engine: Engine
) -> Answered:
    await engine.answer(user, session_id, body)
    return Answered(status="ok", request_id=body.request_id, allowed=body.allowed)


@router.post("/{session_id}/interrupt")
async def interrupt(session_id: str, user: CurrentUser, engine: Engine) -> dict[str, str]:
    await engine.interrupt(user, session_id)
    return {"status": "interrupted", "session_id": session_id}


@router.post("/{session_id}/permission_mode")
async def permission_mode(
    session_id: str, body: ModeChange, user: CurrentUser, engine: Engine
) -> dict[str, str]:
    await engine.set_mode(user, session_id, body)
    return {"status": "ok", "mode": body.mode}


@router.post("/{session_id}/model")
async def model(
    session_id: str, body: ModelChange, user: CurrentUser, engine: Engine
) -> dict[str, str]:
    await engine.set_model(user, session_id, body)
    return {"status": "ok", "model": body.model}


@router.post("/{session_id}/fork", status_code=201)
async def fork(
    session_id: str, user: CurrentUser, engine: Engine, body: ForkRequest | None = None
) -> SessionView:
    """A new session with this one's conversation: all of it, or up to and including the
    turn whose prompt's uuid (a history message's `uuid`) is `at`."""
    return await engine.fork(user, session_id, body.at if body is not None else None)


@router.get("/{session_id}/rewind-preview")
async def rewind_preview(
    session_id: str, user: CurrentUser, engine: Engine, query: Annotated[TurnRef, Query()]
) -> RewindView:
    """Which files rewinding to before turn `at` would change (nothing is changed)."""
    return await engine.rewind_preview(user, session_id, query.at)


@router.post("/{session_id}/rewind")
async def rewind(session_id: str, body: TurnRef, user: CurrentUser, engine: Engine) -> RewindView:
    """Put the files the agent edited back as they were before turn `at`; the conversation
    is kept. 409 while a turn runs."""
    return await engine.rewind(user, session_id, body.at)


@router.delete("/{session_id}", status_code=204)
async def close(session_id: str, user: CurrentUser, engine: Engine) -> Response:
    """Stop the session's agent (as the seed does); the conversation stays listed and can
    be resumed. Deleting it for good is `POST /sessions/{id}/delete`."""
    await engine.close(user, session_id)
    return Response(status_code=204)


@router.post("/{session_id}/delete", status_code=204)
async def delete(session_id: str, user: CurrentUser, engine: Engine) -> Response:
    """Delete the session for good: its agent stops and it leaves the list."""
    await engine.delete(user, session_id)
    return Response(status_code=204)


def _resume_point(last_event_id: str | None, after: int | None) -> int | None:
    if after is not None:
        return after
    if last_event_id is None:
        return None
    if not last_event_id.isdigit() or int(last_event_id) > MAX_EVENT_ID:
        raise InvalidInput("Last-Event-ID must be an event number.")
    return int(last_event_id)
