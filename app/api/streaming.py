"""A session's events as an SSE byte stream that ends when the turn is over."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TypeVar

from app.agent.engine import AgentEngine
from app.agent.events import Event
from app.api import frames

KEEPALIVE_S = 15.0
TERMINAL = ("idle", "failed", "interrupted")
T = TypeVar("T")


async def with_heartbeat(source: AsyncIterator[T], interval: float) -> AsyncIterator[T | None]:
    """Items from `source`, and None whenever it was quiet for `interval` seconds.

    The pending read is never cancelled (cancelling would close the source generator)."""
    pending: asyncio.Future[T] = asyncio.ensure_future(anext(source))
    try:
        while True:
            done, _ = await asyncio.wait({pending}, timeout=interval)
            if not done:
                yield None
                continue
            try:
                item = pending.result()
            except StopAsyncIteration:
                return
            pending = asyncio.ensure_future(anext(source))
            yield item
    finally:
        pending.cancel()


async def turn_frames(
    engine: AgentEngine, user_id: str, session_id: str, after: int, *, resuming: bool
) -> AsyncIterator[bytes]:
    """SSE frames from event `after` on, until the turn in progress (or just started) ends.

    Checks access before returning, so errors become HTTP statuses, not a broken stream."""
    events = await engine.subscribe(user_id, session_id, after)
    return _frames(engine, session_id, events, after, resuming=resuming)


async def _frames(
    engine: AgentEngine,
    session_id: str,
    events: AsyncIterator[Event],
    after: int,
    *,
    resuming: bool,
) -> AsyncIterator[bytes]:
    if resuming and not engine.is_busy(session_id) and engine.last_seq(session_id) <= after:
        yield frames.done(session_id, after)
        return
    in_turn = resuming
    async for event in with_heartbeat(events, KEEPALIVE_S):
        if event is None:
            yield frames.KEEPALIVE
            continue
        yield frames.sse(frames.frame_data(event, session_id))
        in_turn = in_turn or event.type == "user_message"
        if in_turn and _turn_over(engine, session_id, event):
            yield frames.done(session_id, event.seq)
            return


def _turn_over(engine: AgentEngine, session_id: str, event: Event) -> bool:
    return (
        event.type == "status"
        and event.data.get("status") in TERMINAL
        and not engine.is_busy(session_id)
    )
