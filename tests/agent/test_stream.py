"""The event log: numbering that only grows, replay from any number, honest gaps."""

from __future__ import annotations

import asyncio

from app.agent.stream import EventLog


def counting_reserve() -> EventLog:
    """A log whose number blocks come from a counter instead of the database."""
    next_free = 1

    def reserve(n: int) -> int:
        nonlocal next_free
        first, next_free = next_free, next_free + n
        return first

    return EventLog(reserve)


async def take(log: EventLog, after: int, count: int) -> list[tuple[int, str]]:
    out = []
    async with asyncio.timeout(5):
        async for event in log.follow(after):
            out.append((event.seq, event.type))
            if len(out) == count:
                return out
    return out


async def test_readers_replay_from_any_number_then_follow_live() -> None:
    log = counting_reserve()
    for i in range(10):
        log.append("text", {"text": str(i)})
    reader = asyncio.create_task(take(log, after=5, count=7))
    await asyncio.sleep(0)
    for i in range(10, 12):
        log.append("text", {"text": str(i)})
    assert [seq for seq, _ in await reader] == list(range(6, 13))


async def test_trimmed_events_are_announced_as_a_gap() -> None:
    log = counting_reserve()
    for i in range(300):
        log.append("text", {"text": str(i)})
    log.trim(keep_last=100)
    events = await take(log, after=10, count=101)
    assert events[0] == (200, "replay_gap")
    assert [seq for seq, _ in events[1:]] == list(range(201, 301))
    assert log.last_seq == 300
    assert log.append("text", {"text": "next"}).seq == 301, "numbering goes on"


async def test_a_reader_that_is_up_to_date_sees_no_gap() -> None:
    log = counting_reserve()
    for i in range(150):
        log.append("text", {"text": str(i)})
    log.trim(keep_last=100)
    reader = asyncio.create_task(take(log, after=150, count=1))
    await asyncio.sleep(0)
    log.append("status", {"status": "idle"})
    assert await reader == [(151, "status")]
