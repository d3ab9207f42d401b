"""A per-session event log that many subscribers follow, each from any sequence number.

One list in memory, appended by the session's reader; subscribers keep their own position in it,
so a late tab replays exactly what it missed and then follows live, with nothing twice.
"""

from __future__ import annotations

import asyncio
import time
from bisect import bisect_right
from collections.abc import AsyncIterator, Callable
from typing import Any

from app.agent.events import Event, EventType

# Sequence numbers are reserved from the database in blocks of this size.
SEQ_BLOCK = 10_000
# Batching (`follow_batches`): more events than this within one interval is a flood, coalesced
# to one batch per interval; fewer is reading pace (a model writing prose: up to ~130 deltas a
# second at 45 ms), where a batch may follow the last after a ninth of the interval (5 ms): at
# that pace about one update per delta, each shown within a few ms (tests/bench/bench_stream.py:
# UI overhead p50 15 ms at a third, 5 ms at a ninth; a flood's bytes are the same).
FLOOD_EVENTS = 6
QUICK_SHARE = 9


class EventLog:
    def __init__(self, reserve: Callable[[int], int], *, keep: int = 200_000) -> None:
        """`reserve(n)` reserves n numbers durably and returns the first; `keep` bounds memory."""
        self._reserve = reserve
        self._keep = keep
        self._events: list[Event] = []
        self._seqs: list[int] = []
        self._next = 0
        self._end = 0  # one past the last reserved number
        self._last = 0
        self._floor = 0  # the newest number whose event is no longer kept
        self._waiters: list[asyncio.Future[None]] = []
        self.closed = False

    @property
    def last_seq(self) -> int:
        return self._last

    def append(self, type: EventType, data: dict[str, Any]) -> Event:
        if self._next >= self._end:
            self._next = self._reserve(SEQ_BLOCK)
            self._end = self._next + SEQ_BLOCK
        event = Event(seq=self._next, type=type, data=data)
        self._next += 1
        self._last = event.seq
        self._events.append(event)
        self._seqs.append(event.seq)
        if len(self._events) > self._keep:
            drop = len(self._events) - self._keep
            self._floor = self._seqs[drop - 1]
            del self._events[:drop], self._seqs[:drop]
        self._wake()
        return event

    def since(self, after: int) -> list[Event]:
        """Events with seq > after that are still kept."""
        return self._events[bisect_right(self._seqs, after) :]

    async def follow(self, after: int = 0) -> AsyncIterator[Event]:
        """Every event with seq > `after`, then live ones, until the log is closed.

        If older events were asked for than are kept, a `replay_gap` event comes first so the
        reader knows to load history instead of silently missing something.
        """
        missing_upto = max(self._floor, self._seqs[0] - 1 if self._seqs else 0)
        if 0 < after < missing_upto:
            yield Event(seq=missing_upto, type="replay_gap", data={"after": after})
        position = after
        while True:
            batch = self.since(position)
            for event in batch:
                yield event
            if batch:
                position = batch[-1].seq
                continue
            if self.closed:
                return
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter

    async def follow_batches(
        self, after: int = 0, interval: float = 0.05
    ) -> AsyncIterator[list[Event]]:
        """Like `follow`, grouped: everything available at once, then batches paced so a page
        neither waits nor drowns. The first event after a quiet spell goes out at once; while
        events come at reading pace, the next batch may follow after interval / QUICK_SHARE
        (a token waits a few ms, at most one update per event); a flood (thousands of deltas
        a second, a tool's output) is coalesced to one batch per `interval`. When applying a
        batch takes longer than that (a busy app), batches simply grow: nothing queues up."""
        batch: list[Event] = []
        loop = asyncio.get_running_loop()
        async for event in self.follow(after):
            batch.append(event)
            if self.since(event.seq):
                continue  # more already waiting: take them into this batch
            started = loop.time()
            yield batch
            batch = []
            # The pause counts from when the batch went out, so the time the reader spent
            # applying it does not stretch the period.
            pause = interval if self._flooding(interval) else interval / QUICK_SHARE
            await asyncio.sleep(max(0.0, started + pause - loop.time()))
        if batch:
            yield batch

    def _flooding(self, interval: float) -> bool:
        """More than FLOOD_EVENTS events were appended in the last `interval` seconds (their
        times, not when a reader saw them: the answer does not depend on how it batches)."""
        if len(self._events) <= FLOOD_EVENTS:
            return False
        return self._events[-FLOOD_EVENTS - 1].ts > time.time() - interval

    def trim(self, keep_last: int = 100) -> None:
        """Forget all but the newest events (the agent stopped; its turns are in the transcript
        now). The newest stay for readers still catching up; numbering goes on; a reader asking
        for forgotten ones gets a `replay_gap`."""
        drop = len(self._events) - keep_last
        if drop > 0:
            self._floor = self._seqs[drop - 1]
            del self._events[:drop], self._seqs[:drop]

    def close(self) -> None:
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
