"""One running Claude Code CLI process and the bookkeeping that lives exactly as long as it."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

from claude_agent_sdk import ClaudeSDKClient, ResultMessage

from app.agent.approvals import PendingRequest
from app.sandbox.usage import usd


@dataclass
class TurnInProgress:
    """What a turn's footer needs, noted when its prompt is sent."""

    prompt_seq: int
    started_at: datetime
    started: float  # monotonic
    cost_before: float
    input_before: int
    output_before: int
    messages: int = 1  # the prompt itself
    interrupted: bool = False


@dataclass
class LiveAgent:
    session_id: str
    user_id: str
    client: ClaudeSDKClient
    mode: str = "default"
    project_id: str = ""
    project_name: str = ""
    reader: asyncio.Task[None] | None = None
    turn: TurnInProgress | None = None  # the running turn, if any
    closing: bool = False
    last_used: float = field(default_factory=time.monotonic)
    pending: dict[str, PendingRequest] = field(default_factory=dict)
    stderr: deque[str] = field(default_factory=lambda: deque(maxlen=20))

    @property
    def busy(self) -> bool:
        return self.turn is not None

    def touch(self) -> None:
        self.last_used = time.monotonic()

    def idle_for(self) -> float:
        return time.monotonic() - self.last_used

    def stderr_tail(self) -> str:
        return "\n".join(self.stderr).strip()


def budget_stop(
    message: ResultMessage, session_budget: float | None, refused: str | None
) -> str | None:
    """What to tell the user when a budget ended the turn, None when none did: the user's
    monthly one (`refused`: the relay turned a model request of it away, and the turn
    failed) or the session's own (the CLI's `--max-budget-usd`; its result says only
    `error_max_budget_usd`)."""
    if refused is not None and message.is_error:
        return refused
    if message.subtype != "error_max_budget_usd":
        return None
    amount = f"{usd(session_budget)} " if session_budget is not None else ""
    return f"This session's budget of {amount}is reached."
