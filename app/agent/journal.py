"""Every session's event log, and the one way to follow it.

The engine's parts (agent processes, approvals, the session facade) write here; every reader
(SSE, `/ws`, the web page) follows through `Follower`, so "where does a turn end" and "what
does a late reader get" are answered once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from app.agent.events import Event, EventType
from app.agent.stream import EventLog
from app.db.store import Store


class Journal:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._logs: dict[str, EventLog] = {}
        # Told of every event as it is appended (other app instances' readers: cluster.py).
        self.listeners: list[Callable[[str, Event], None]] = []

    def log(self, session_id: str) -> EventLog:
        log = self._logs.get(session_id)
        if log is None:
            log = EventLog(lambda n: self.store.reserve_seq(session_id, n))
            self._logs[session_id] = log
        return log

    def emit(self, session_id: str, event_type: EventType, data: dict[str, Any]) -> Event:
        event = self.log(session_id).append(event_type, data)
        for listener in self.listeners:
            listener(session_id, event)
        return event

    def last_seq(self, session_id: str) -> int:
        """The newest event's number (0 if none yet in this process)."""
        log = self._logs.get(session_id)
        return log.last_seq if log is not None else 0

    async def set_status(
        self, session_id: str, status: str, *, live: bool, error: str | None = None
    ) -> None:
        """Write the session's status and tell its readers, in that order."""
        await asyncio.to_thread(self.store.update_session, session_id, status=status, error=error)
        self.tell_status(session_id, status, live=live, error=error)

    def tell_status(
        self, session_id: str, status: str, *, live: bool, error: str | None = None
    ) -> None:
        """Tell the session's readers its status (already written)."""
        data: dict[str, Any] = {"status": status, "live": live}
        if error:
            data["error"] = error
        self.emit(session_id, "status", data)

    def trim(self, session_id: str) -> None:
        """A stopped agent's turns are in its transcript: keep only the numbering in memory."""
        log = self._logs.get(session_id)
        if log is not None:
            log.trim()

    def forget(self, session_id: str) -> None:
        log = self._logs.pop(session_id, None)
        if log is not None:
            log.close()

    def close_all(self) -> None:
        for log in self._logs.values():
            log.close()


class EventSource(Protocol):
    """A session's events to follow: its log here (EventLog), or where another app instance
    appends them (cluster.StreamLog)."""

    @property
    def last_seq(self) -> int: ...

    def follow(self, after: int = 0) -> AsyncIterator[Event]: ...

    def follow_batches(
        self, after: int = 0, interval: float = 0.05
    ) -> AsyncIterator[list[Event]]: ...


class Follower:
    """One reader of one session's events, from a number on.

    `until_turn_end` readers (an SSE stream for one turn) stop after a `turn_end` event.
    `end_if_idle` readers (a reconnect resuming a stream) stop at once when no turn is running
    and nothing is newer than where they were: the turn they followed is over.
    """

    def __init__(
        self,
        log: EventSource,
        after: int,
        *,
        until_turn_end: bool,
        end_if_idle: bool,
        running: Callable[[], bool],
    ) -> None:
        self.log = log
        self.after = after
        self.until_turn_end = until_turn_end
        self.end_if_idle = end_if_idle
        self._running = running

    @classmethod
    def of(
        cls,
        log: EventSource,
        after: int | None,
        resume_point: int,
        *,
        until_turn_end: bool,
        running: Callable[[], bool],
    ) -> Follower:
        """A reader from `after`, or without it from `resume_point` (the running turn's
        prompt, or now); resuming at `after`, a turn reader ends at once if its turn is over."""
        return cls(
            log,
            resume_point if after is None else after,
            until_turn_end=until_turn_end,
            end_if_idle=until_turn_end and after is not None,
            running=running,
        )

    def idle_already(self) -> bool:
        return self.end_if_idle and not self._running() and self.log.last_seq <= self.after

    async def events(self) -> AsyncIterator[Event]:
        if self.idle_already():
            return
        async for event in self.log.follow(self.after):
            yield event
            if self.until_turn_end and event.type == "turn_end":
                return

    async def batches(self, interval: float) -> AsyncIterator[list[Event]]:
        """Everything available at once, then batches paced by `interval` (for pages; see
        `EventLog.follow_batches`)."""
        if self.idle_already():
            return
        async for batch in self.log.follow_batches(self.after, interval):
            if self.until_turn_end:
                end = next((i for i, e in enumerate(batch) if e.type == "turn_end"), None)
                if end is not None:
                    yield batch[: end + 1]
                    return
            yield batch
