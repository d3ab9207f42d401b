"""A session's events as SSE: one turn, ending with a `done` frame."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TypeVar

from app.agent.engine import AgentEngine
from app.agent.journal import Follower
from app.api import frames

KEEPALIVE_S = 15.0
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
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


async def turn_stream(
    engine: AgentEngine, user_id: str, session_id: str, after: int | None
) -> AsyncIterator[bytes]:
    """SSE frames of one turn, from event `after` on (default: the running turn from its
    prompt, or the next turn), then `done`. Access is checked before returning, so errors
    become HTTP statuses, not a broken stream."""
    follower = await engine.follow(user_id, session_id, after, until_turn_end=True)
    return _frames(follower, session_id)


async def _frames(follower: Follower, session_id: str) -> AsyncIterator[bytes]:
    async for event in with_heartbeat(follower.events(), KEEPALIVE_S):
        if event is None:
            yield frames.KEEPALIVE
            continue
        yield frames.sse(frames.frame_data(event, session_id))
    yield frames.done(session_id)
