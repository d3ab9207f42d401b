"""The engine's event vocabulary, and the translation of SDK messages into it.

Events are plain JSON-ready dicts with a per-session `seq` that only grows, so any transport
(SSE, WebSocket, Reflex state) can resume a stream from a number without loss or repeats.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

from claude_agent_sdk import (
    AssistantMessage,
    ResultMessage,
    StreamEvent,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
    UserMessage,
)

EventType = Literal[
    "user_message",  # a prompt, so every tab shows what was asked
    "text_delta",  # a token-level piece of the text block being written
    "thinking_delta",
    "text",  # a finished text block
    "thinking",  # a finished thinking block
    "tool_use",
    "tool_result",
    "permission_request",
    "permission_resolved",
    "status",
    "result",  # end of a turn: cost, tokens, duration
    "usage",  # the session's running totals, as the model relay counted them
    "turn_end",  # the turn is over: done, interrupted or failed, with its footer
    "error",
    "replay_gap",  # the subscriber asked for events older than the ones kept
]


@dataclass(frozen=True)
class Event:
    seq: int
    type: EventType
    data: dict[str, Any]
    ts: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "type": self.type, "ts": self.ts, **self.data}


Payload = tuple[EventType, dict[str, Any]]


def translate(message: object) -> list[Payload]:
    """Turn one SDK message into zero or more event payloads (type, data)."""
    if isinstance(message, StreamEvent):
        return _stream_event(message)
    if isinstance(message, AssistantMessage):
        return _assistant(message)
    if isinstance(message, UserMessage):
        return _tool_results(message)
    if isinstance(message, ResultMessage):
        return [("result", result_data(message))]
    return []


def result_data(message: ResultMessage) -> dict[str, Any]:
    usage = message.usage or {}
    input_tokens = (
        int(usage.get("input_tokens") or 0)
        + int(usage.get("cache_creation_input_tokens") or 0)
        + int(usage.get("cache_read_input_tokens") or 0)
    )
    return {
        "cost_usd": float(message.total_cost_usd or 0.0),
        "input_tokens": input_tokens,
        "output_tokens": int(usage.get("output_tokens") or 0),
        "duration_ms": message.duration_ms,
        "turns": message.num_turns,
        "is_error": message.is_error,
        "subtype": message.subtype,
        "stop_reason": message.terminal_reason or message.stop_reason,
        "errors": list(message.errors or []),
    }


def _stream_event(message: StreamEvent) -> list[Payload]:
    event = message.event
    if event.get("type") != "content_block_delta":
        return []
    delta = event.get("delta") or {}
    parent = message.parent_tool_use_id
    if delta.get("type") == "text_delta":
        return [("text_delta", {"text": delta.get("text", ""), "parent_tool_use_id": parent})]
    if delta.get("type") == "thinking_delta":
        text = delta.get("thinking", "")
        return [("thinking_delta", {"text": text, "parent_tool_use_id": parent})]
    return []


def _assistant(message: AssistantMessage) -> list[Payload]:
    parent = message.parent_tool_use_id
    out: list[Payload] = []
    for block in message.content:
        if isinstance(block, TextBlock):
            out.append(("text", {"text": block.text, "parent_tool_use_id": parent}))
        elif isinstance(block, ThinkingBlock):
            out.append(("thinking", {"text": block.thinking, "parent_tool_use_id": parent}))
        elif isinstance(block, ToolUseBlock):
            data = {"id": block.id, "name": block.name, "input": block.input}
            out.append(("tool_use", {**data, "parent_tool_use_id": parent}))
    if message.error:
        out.append(("error", {"kind": "model", "message": _model_error_text(message)}))
    return out


def _tool_results(message: UserMessage) -> list[Payload]:
    if isinstance(message.content, str):
        return []
    out: list[Payload] = []
    for block in message.content:
        if isinstance(block, ToolResultBlock):
            data = {
                "tool_use_id": block.tool_use_id,
                "content": tool_result_text(block.content),
                "is_error": bool(block.is_error),
                "parent_tool_use_id": message.parent_tool_use_id,
            }
            out.append(("tool_result", data))
    return out


def tool_result_text(content: str | list[dict[str, Any]] | None) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = [str(part.get("text", "")) for part in content if part.get("type") == "text"]
    return "\n".join(parts)


def _model_error_text(message: AssistantMessage) -> str:
    text = " ".join(b.text for b in message.content if isinstance(b, TextBlock)).strip()
    hints = {
        "authentication_failed": "Check the model credentials (ANTHROPIC_API_KEY or Bedrock).",
        "rate_limit": "The model is rate-limited; wait a moment and send again.",
        "server_error": "The model service failed; send again in a moment.",
    }
    hint = hints.get(str(message.error), "Send the message again, or pick another model.")
    return f"{text or message.error}. {hint}"
