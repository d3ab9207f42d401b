"""Tokens and cost of each model request, read from the API's own usage fields as they stream.

The CLI reports a cost too, but it runs inside the sandbox and is untrusted; the relay's count
comes from the model's response itself.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.eventstream import EventStreamBuffer

logger = logging.getLogger(__name__)

# US dollars per million tokens: input, output. Cache writes cost 1.25x input, reads 0.1x.
PRICES: tuple[tuple[str, float, float], ...] = (
    ("opus-4-5", 5.0, 25.0),
    ("opus-4-6", 5.0, 25.0),
    ("opus", 15.0, 75.0),
    ("sonnet", 3.0, 15.0),
    ("haiku-4", 1.0, 5.0),
    ("haiku-3-5", 0.8, 4.0),
    ("3-5-haiku", 0.8, 4.0),
    ("haiku", 0.25, 1.25),
)


@dataclass
class Usage:
    model: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_tokens: int = 0
    cache_read_tokens: int = 0

    @property
    def seen(self) -> bool:
        return bool(self.model or self.input_tokens or self.output_tokens)

    def cost_usd(self) -> float:
        """The list price of this request; 0 for models without a known price."""
        name = self.model.lower()
        for key, input_price, output_price in PRICES:
            if key in name:
                return (
                    self.input_tokens * input_price
                    + self.cache_creation_tokens * input_price * 1.25
                    + self.cache_read_tokens * input_price * 0.1
                    + self.output_tokens * output_price
                ) / 1_000_000
        return 0.0

    def add(self, event: dict[str, Any]) -> None:
        """Fold one Messages API event (or a whole non-streamed message) into the count."""
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message") or {}
            self.model = str(message.get("model") or self.model)
            self._take(message.get("usage") or {})
        elif kind == "message_delta":
            self._take(event.get("usage") or {})
        elif kind == "message":
            self.model = str(event.get("model") or self.model)
            self._take(event.get("usage") or {})

    def _take(self, usage: dict[str, Any]) -> None:
        # message_delta carries cumulative counts: the newest value wins.
        for field, key in (
            ("input_tokens", "input_tokens"),
            ("output_tokens", "output_tokens"),
            ("cache_creation_tokens", "cache_creation_input_tokens"),
            ("cache_read_tokens", "cache_read_input_tokens"),
        ):
            value = usage.get(key)
            if isinstance(value, int) and value >= 0:
                setattr(self, field, value)


class SseMeter:
    """Reads usage from a `text/event-stream` body fed to it in arbitrary pieces."""

    def __init__(self) -> None:
        self.usage = Usage()
        self._buffer = b""

    def feed(self, chunk: bytes) -> None:
        self._buffer += chunk
        while True:
            end = self._buffer.find(b"\n\n")
            if end < 0:
                return
            frame, self._buffer = self._buffer[:end], self._buffer[end + 2 :]
            for line in frame.split(b"\n"):
                if line.startswith(b"data:"):
                    self.usage.add(_json(line[5:]))


class JsonMeter:
    """Reads usage from a whole JSON message body (non-streamed requests)."""

    def __init__(self) -> None:
        self.usage = Usage()
        self._body = b""

    def feed(self, chunk: bytes) -> None:
        if len(self._body) < 4_000_000:
            self._body += chunk

    def close(self) -> None:
        self.usage.add(_json(self._body))


class EventStreamMeter:
    """Reads usage from Bedrock's `application/vnd.amazon.eventstream` body: each event's
    payload is `{"bytes": base64(Messages API event)}`."""

    def __init__(self, model: str = "") -> None:
        self.usage = Usage(model=model)
        self._buffer = EventStreamBuffer()

    def feed(self, chunk: bytes) -> None:
        self._buffer.add_data(chunk)
        try:
            for message in self._buffer:
                payload = _json(message.payload)
                encoded = payload.get("bytes")
                if isinstance(encoded, str):
                    event = _json(base64.b64decode(encoded))
                    model = self.usage.model
                    self.usage.add(event)
                    self.usage.model = self.usage.model or model
        except Exception:  # a malformed frame must not break the stream itself
            logger.warning("unreadable event-stream frame; usage of this request is partial")
            self._buffer = EventStreamBuffer()


def _json(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


# --- monthly budgets ------------------------------------------------------------------------


def usd(amount: float) -> str:
    """Dollars as people read them: cents, or more digits for amounts under a cent."""
    return f"${amount:,.2f}" if amount >= 0.01 or amount == 0 else f"${amount:.4f}"


SpentSince = Callable[[str, datetime], float]  # (user id, start of month) -> USD, blocking
OwnBudget = Callable[[str], float | None]  # user id -> their own setting, blocking


@dataclass
class _Month:
    month: str  # "2026-11"
    spent: float
    own: float | None  # the user's own budget (None: the operator's default applies)


class Budgets:
    """Each user's monthly budget and spend this calendar month (UTC), kept in memory so the
    relay checks it before every model request without a database read.

    A user's month is read from the database once (the relay's own usage records), then
    counted up as the relay records each request; a new month reads it afresh. Several app
    processes each count their own requests on top of what they read, so one may let a
    request or two through after another has spent the budget: the limit is a stop, not an
    accountant.
    """

    def __init__(
        self,
        *,
        spent_since: SpentSince,
        own_budget: OwnBudget,
        default_usd: float | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.default_usd = default_usd
        self._spent_since = spent_since
        self._own_budget = own_budget
        self._clock = clock
        self._months: dict[str, _Month] = {}
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    def effective(self, own: float | None) -> float | None:
        """The budget that applies: the user's own, never above the operator's default."""
        if own is None or self.default_usd is None:
            return own if own is not None else self.default_usd
        return min(own, self.default_usd)

    def over_ceiling(self, wanted: float | None) -> str | None:
        """Why a user may not set this budget: above the operator's default, which is also
        the ceiling (users may lower their budget, not raise it past what the operator
        allows); None when they may."""
        ceiling = self.default_usd
        if wanted is None or ceiling is None or wanted <= ceiling:
            return None
        return f"The most you can set is {usd(ceiling)} a month (your admin's limit)."

    async def status(self, user_id: str) -> tuple[float | None, float]:
        """(the budget that applies, what the user spent this month), in USD."""
        month = await self._month(user_id)
        return self.effective(month.own), month.spent

    async def own(self, user_id: str) -> float | None:
        """The user's own setting (None: the operator's default applies)."""
        return (await self._month(user_id)).own

    async def refusal(self, user_id: str) -> str | None:
        """Why the user's next model request may not go out; None while within budget."""
        budget, spent = await self.status(user_id)
        if budget is None or spent < budget:
            return None
        return (
            f"Your monthly budget of {usd(budget)} is spent ({usd(spent)} this month); "
            "ask your admin or raise it in Settings."
        )

    def add(self, user_id: str, cost_usd: float) -> None:
        """Count a recorded request (a month not read yet will include it when read)."""
        month = self._months.get(user_id)
        if month is not None and month.month == self._key():
            month.spent += cost_usd

    async def set_own(self, user_id: str, budget_usd: float | None) -> None:
        """The user changed their budget (already stored): use it from the next request."""
        month = await self._month(user_id)
        month.own = budget_usd

    async def _month(self, user_id: str) -> _Month:
        key = self._key()
        month = self._months.get(user_id)
        if month is not None and month.month == key:
            return month
        async with self._locks[user_id]:
            month = self._months.get(user_id)
            if month is None or month.month != key:
                start = self._clock().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
                spent = await asyncio.to_thread(self._spent_since, user_id, start)
                own = await asyncio.to_thread(self._own_budget, user_id)
                month = _Month(key, spent, own)
                self._months[user_id] = month
            return month

    def _key(self) -> str:
        return self._clock().strftime("%Y-%m")
