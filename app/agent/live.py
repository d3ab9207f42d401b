"""One running Claude Code CLI process and the bookkeeping that lives exactly as long as it."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from claude_agent_sdk import ClaudeSDKClient, PermissionUpdate

from app.agent.approvals import Answer


@dataclass
class PendingRequest:
    future: asyncio.Future[Answer]
    tool_input: dict[str, Any]
    suggestions: list[PermissionUpdate]


@dataclass
class LiveAgent:
    session_id: str
    user_id: str
    client: ClaudeSDKClient
    mode: str = "default"
    reader: asyncio.Task[None] | None = None
    busy: bool = False
    turn_seq: int = 0  # the running turn's user_message event
    closing: bool = False
    last_used: float = field(default_factory=time.monotonic)
    pending: dict[str, PendingRequest] = field(default_factory=dict)
    stderr: deque[str] = field(default_factory=lambda: deque(maxlen=20))

    def touch(self) -> None:
        self.last_used = time.monotonic()

    def idle_for(self) -> float:
        return time.monotonic() - self.last_used

    def stderr_tail(self) -> str:
        return "\n".join(self.stderr).strip()
