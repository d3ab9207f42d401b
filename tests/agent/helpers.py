"""Helpers for driving the engine in tests: its operations in one line, and a reader that
keeps every event for assertions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

from app.agent.engine import AgentEngine
from app.agent.events import Event
from app.agent.schemas import NewSession, PermissionAnswer, SendMessage, SessionView
from app.db.store import Store
from tests.conftest import ensure_user


class Follower:
    """Follows one session's events and keeps all of them for assertions."""

    def __init__(self, events: AsyncIterator[Event]) -> None:
        self._events = events
        self.seen: list[Event] = []

    @classmethod
    async def start(
        cls, engine: AgentEngine, user_id: str, session_id: str, after: int | None = 0
    ) -> Follower:
        return cls((await engine.follow(user_id, session_id, after)).events())

    async def until(self, done: Callable[[Event], bool], timeout: float = 60) -> Event:
        async with asyncio.timeout(timeout):
            async for event in self._events:
                self.seen.append(event)
                if done(event):
                    return event
        raise AssertionError("event stream ended")

    async def next_of(self, event_type: str, timeout: float = 60) -> Event:
        return await self.until(lambda e: e.type == event_type, timeout)

    async def turn_end(self, timeout: float = 60) -> Event:
        """The `turn_end` that closes the running turn (its status comes right after)."""
        end = await self.next_of("turn_end", timeout)
        await self.until(lambda e: e.type == "status" and "status" in e.data, timeout)
        return end

    def of(self, event_type: str) -> list[dict[str, Any]]:
        return [e.data for e in self.seen if e.type == event_type]

    def text(self) -> str:
        return "".join(d["text"] for d in self.of("text"))


async def open_session(
    engine: AgentEngine, store: Store, email: str = "ann@example.com", **options: Any
) -> tuple[str, SessionView, Follower]:
    """A user's new session and a follower of it: (user id, session, follower)."""
    user_id = ensure_user(store, email).id
    session = await engine.create(user_id, NewSession(**options))
    return user_id, session, await Follower.start(engine, user_id, session.session_id)


async def say(engine: AgentEngine, user_id: str, session_id: str, text: str) -> int:
    """Send a prompt; returns its event's number."""
    return (await engine.send(user_id, session_id, SendMessage(message=text))).seq


async def reply(
    engine: AgentEngine,
    user_id: str,
    session_id: str,
    request_id: str,
    *,
    allow: bool,
    always: bool = False,
    message: str = "",
) -> None:
    """Answer a permission request."""
    await engine.answer(
        user_id,
        session_id,
        PermissionAnswer(
            request_id=request_id, allowed=allow, apply_suggestions=always, message=message
        ),
    )
