"""Slows down repeated failed sign-ins, per account and per client address.

Each failure doubles the wait before the next answer (up to a few seconds); after many failures
in a window, attempts are refused outright until the window passes.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict, deque

from app.errors import LimitReached


class SignInThrottle:
    def __init__(
        self,
        *,
        window_s: float = 900,
        max_failures: int = 10,
        base_delay_s: float = 0.25,
        max_delay_s: float = 4.0,
    ) -> None:
        self.window_s = window_s
        self.max_failures = max_failures
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self._failures: defaultdict[str, deque[float]] = defaultdict(deque)

    def check(self, *keys: str) -> None:
        """Refuse when any key (e-mail, address) failed too often lately."""
        for key in keys:
            recent = self._recent(key)
            if len(recent) >= self.max_failures:
                wait = int(recent[0] + self.window_s - time.monotonic()) + 1
                raise LimitReached(
                    f"Too many failed sign-ins. Try again in {wait // 60 + 1} minutes."
                )

    async def failed(self, *keys: str) -> None:
        """Record a failure and wait before answering, longer after each one."""
        count = 0
        for key in keys:
            recent = self._recent(key)
            recent.append(time.monotonic())
            count = max(count, len(recent))
        await asyncio.sleep(min(self.base_delay_s * 2 ** (count - 1), self.max_delay_s))

    def succeeded(self, *keys: str) -> None:
        for key in keys:
            self._failures.pop(key, None)

    def _recent(self, key: str) -> deque[float]:
        recent = self._failures[key]
        horizon = time.monotonic() - self.window_s
        while recent and recent[0] < horizon:
            recent.popleft()
        return recent
