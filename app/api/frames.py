"""Engine events as the seed's SSE frames (`data: {"type": ...}`), with an `id:` line each.

The seed's clients switch on `type`; the types it never had (token deltas, status, ...) are
extra frames that such clients ignore.
"""

from __future__ import annotations

import json
from typing import Any

from app.agent.events import Event


def frame_data(event: Event, session_id: str) -> dict[str, Any]:
    """The seed-shaped payload for one event (always with `type` and `seq`)."""
    d = event.data
    match event.type:
        case "user_message":
            data: dict[str, Any] = {"type": "start", "session_id": session_id, "message": d["text"]}
        case "text_delta" | "thinking_delta":
            data = {
                "type": event.type,
                "content": d["text"],
                "parent_tool_use_id": d.get("parent_tool_use_id"),
            }
        case "text" | "thinking":
            data = {
                "type": event.type,
                "content": d["text"],
                "parent_tool_use_id": d.get("parent_tool_use_id"),
            }
        case "tool_use":
            data = {
                "type": "tool_use",
                "tool_name": d["name"],
                "tool_input": d["input"],
                "tool_use_id": d["id"],
                "parent_tool_use_id": d.get("parent_tool_use_id"),
            }
        case "tool_result":
            block = {
                "type": "tool_result",
                "tool_use_id": d["tool_use_id"],
                "content": d["content"],
                "is_error": d["is_error"],
            }
            data = {"type": "user_message", "content": [block]}
        case "permission_request":
            data = {
                "type": "permission",
                "permission": {
                    "request_id": d["request_id"],
                    "tool_name": d["tool_name"],
                    "tool_input": d["input"],
                    "suggestions": d["suggestions"],
                    "kind": d["kind"],
                },
            }
        case "result":
            data = {
                "type": "result",
                "session_id": session_id,
                "cost_usd": d["cost_usd"],
                "num_turns": d["turns"],
                "input_tokens": d["input_tokens"],
                "output_tokens": d["output_tokens"],
                "duration_ms": d["duration_ms"],
                "is_error": d["is_error"],
            }
        case "error":
            data = {"type": "error", "error": d["message"], "kind": d.get("kind")}
        case _:
            data = {"type": event.type, **d}
    data["seq"] = event.seq
    data["ts"] = event.ts
    return data


def sse(data: dict[str, Any]) -> bytes:
    return f"id: {data['seq']}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def sse_note(data: dict[str, Any]) -> bytes:
    """A frame that is not a session event (a clone's progress): no `id:`, nothing to resume."""
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def done(session_id: str) -> bytes:
    """The stream's end. It has no `id:` of its own (it is not an event): a reconnect with the
    last id seen resumes after the turn's last event and is told `done` again."""
    return f"data: {json.dumps({'type': 'done', 'session_id': session_id})}\n\n".encode()


KEEPALIVE = b": keepalive\n\n"
