"""How a page's batches are paced (`EventLog.follow_batches`): a token after a quiet moment is
not held back, a model's pace is followed closely, a flood is coalesced, nothing is lost or
repeated. The assertions are on which events share a batch, never on measured times."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

from app.agent.events import Event
from app.agent.stream import FLOOD_EVENTS, EventLog


def new_log() -> EventLog:
    counter = itertools.count(1, 10_000)
    return EventLog(lambda _n: next(counter))


def delta(log: EventLog, text: str) -> Event:
    return log.append("text_delta", {"text": text})


async def next_batch(batches: AsyncIterator[list[Event]]) -> list[str]:
    async with asyncio.timeout(30):  # only against a hang: an hour-long wait would fail here
        return [e.data["text"] for e in await anext(batches)]


async def test_batches_send_a_lone_delta_after_a_quiet_moment_at_once() -> None:
    log = new_log()
    batches = log.follow_batches(0, interval=3600.0)  # any wait for the interval would hang
    waiting = asyncio.create_task(next_batch(batches))
    await asyncio.sleep(0.05)  # the reader waits: a quiet moment
    delta(log, "first")
    assert await waiting == ["first"]
    await batches.aclose()


async def test_batches_follow_a_model_pace_without_waiting_the_whole_interval() -> None:
    log = new_log()
    batches = log.follow_batches(0, interval=2.0)
    delta(log, "a")
    assert await next_batch(batches) == ["a"]
    delta(log, "b")  # right after: it waits a third of the interval (0.67 s), not all of it
    later = asyncio.get_running_loop().call_later(1.2, delta, log, "c")
    try:
        assert await next_batch(batches) == ["b"], "b went out before c came (at 1.2 s)"
        assert await next_batch(batches) == ["c"]
    finally:
        later.cancel()


async def test_batches_coalesce_a_flood_and_keep_every_event_once_in_order() -> None:
    log = new_log()
    batches = log.follow_batches(0, interval=0.05)
    received: list[list[str]] = []

    async def read() -> None:
        while len([t for b in received for t in b]) < 1000:
            received.append(await next_batch(batches))

    reader = asyncio.create_task(read())
    for n in range(1000):
        delta(log, str(n))
        if n % 20 == 19:
            await asyncio.sleep(0.001)  # about 20 deltas a millisecond: a flood
    await reader
    assert [t for b in received for t in b] == [str(n) for n in range(1000)]
    assert len(received) < 1000 // FLOOD_EVENTS, "a flood goes out in large batches"
