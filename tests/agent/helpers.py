"""Helpers for driving the engine in tests: follow a session until something happens."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

from app.agent.engine import AgentEngine
from app.agent.events import Event


class Follower:
    """Follows one session's events and keeps all of them for assertions."""

    def __init__(self, events: AsyncIterator[Event]) -> None:
        self._events = events
        self.seen: list[Event] = []

    @classmethod
    async def start(
        cls, engine: AgentEngine, user_id: str, session_id: str, after: int = 0
    ) -> Follower:
        return cls(await engine.subscribe(user_id, session_id, after))

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
        """The `status: idle` that follows a turn's result."""
        await self.next_of("result", timeout)
        return await self.until(
            lambda e: e.type == "status" and e.data.get("status") == "idle", timeout
        )

    def of(self, event_type: str) -> list[dict[str, Any]]:
        return [e.data for e in self.seen if e.type == event_type]

    def text(self) -> str:
        return "".join(d["text"] for d in self.of("text"))
