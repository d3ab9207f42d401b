"""Display blocks: what the conversation view shows, built from engine events or history.

Plain functions over plain dicts of strings (Reflex state vars must be serialisable and typed),
kept apart from the Reflex state so they are easy to test.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable
from typing import Any

from app.agent.history import INTERRUPTED

Block = dict[str, str]

# Events that become (or change) a block of the conversation.
BLOCK_EVENTS = ("user_message", "text", "thinking", "tool_use", "tool_result", "turn_end", "error")


_LONG_OUTPUT = 1200  # characters of tool output shown before "show more"


def user_block(text: str) -> Block:
    return {"kind": "user", "text": text, "parent": ""}


def text_block(text: str, parent: str | None = None) -> Block:
    return {"kind": "assistant", "text": text, "parent": parent or ""}


def kept_block(stream_key: str) -> Block:
    """An answer whose text the page holds already, recorded as it streamed (see
    app/ui/state/stream.py): the block names that record instead of carrying the text."""
    return {"kind": "assistant", "text": "", "parent": "", "kept": stream_key}


def tool_block(
    tool_id: str, name: str, tool_input: dict[str, Any], parent: str | None = None, root: str = ""
) -> Block:
    tool_input = relative_paths(tool_input, root)
    return {
        "kind": "tool",
        "id": tool_id,
        "name": name,
        "style": _style(name),
        "summary": summarise(name, tool_input),
        "detail": detail(name, tool_input),
        "input_json": json.dumps(tool_input) if name == "TodoWrite" else "",
        "result": "",
        "result_short": "",
        "is_error": "",
        "done": "",
        "parent": parent or "",
    }


def with_result(block: Block, content: str, is_error: bool, root: str = "") -> Block:
    if root:  # paths as the user knows them: relative to the project
        content = content.replace(root.rstrip("/") + "/", "")
    short = content if len(content) <= _LONG_OUTPUT else content[:_LONG_OUTPUT] + "…"
    return {
        **block,
        "result": content,
        "result_short": short,
        "is_error": "1" if is_error else "",
        "done": "1",
    }


def footer_block(turn: dict[str, Any]) -> Block:
    """A finished turn's footer: how it ended, its cost and tokens (the model relay's count of
    the API's own usage), its duration."""
    seconds = turn.get("duration_ms", 0) / 1000
    ending = {"interrupted": "Stopped · ", "failed": "Failed · "}.get(turn.get("status", ""), "")
    return {
        "kind": "result",
        "parent": "",
        "stopped": "1" if turn.get("status") == "interrupted" else "",
        "text": f"{ending}${turn.get('cost_usd', 0):.4f} · {turn.get('input_tokens', 0):,} in / "
        f"{turn.get('output_tokens', 0):,} out tokens · {seconds:.1f} s",
    }


def stopped_block() -> Block:
    """A stopped turn whose footer was not recorded (sessions older than turn records)."""
    return {"kind": "result", "parent": "", "stopped": "1", "text": "Stopped"}


def error_block(message: str) -> Block:
    return {"kind": "error", "text": message, "parent": ""}


def relative_paths(tool_input: dict[str, Any], root: str) -> dict[str, Any]:
    """File paths shown relative to the project folder (the agent works there)."""
    if not root:
        return tool_input
    prefix = root.rstrip("/") + "/"
    return {
        key: value.removeprefix(prefix)
        if key in ("file_path", "path") and isinstance(value, str)
        else value
        for key, value in tool_input.items()
    }


def summarise(name: str, tool_input: dict[str, Any]) -> str:
    """One line that says what the tool call does."""
    path = tool_input.get("file_path") or tool_input.get("path") or ""
    if name == "Bash":
        return f"$ {tool_input.get('command', '')}"
    if name in ("Write", "Edit", "MultiEdit", "Read", "NotebookEdit"):
        return f"{name} {path}"
    if name in ("Glob", "Grep"):
        where = f" in {path}" if path else ""
        return f"{name} {tool_input.get('pattern', '')}{where}"
    if name == "TodoWrite":
        todos = tool_input.get("todos") or []
        done = sum(1 for t in todos if t.get("status") == "completed")
        return f"Todo list: {done}/{len(todos)} done"
    if name in ("Task", "Agent"):
        return f"Subagent: {tool_input.get('description', '')}"
    if name == "WebFetch":
        return f"Fetch {tool_input.get('url', '')}"
    return name


def detail(name: str, tool_input: dict[str, Any]) -> str:
    """The body of a tool card: a diff for edits, the checklist for todos, else the input."""
    if name == "Write":
        return unified_diff(
            "", str(tool_input.get("content", "")), str(tool_input.get("file_path", ""))
        )
    if name == "Edit":
        return unified_diff(
            str(tool_input.get("old_string", "")),
            str(tool_input.get("new_string", "")),
            str(tool_input.get("file_path", "")),
        )
    if name == "TodoWrite":
        marks = {"completed": "[x]", "in_progress": "[~]"}
        return "\n".join(
            f"{marks.get(t.get('status', ''), '[ ]')} {t.get('content', '')}"
            for t in tool_input.get("todos") or []
        )
    if name == "Bash":
        return str(tool_input.get("command", ""))
    return json.dumps(tool_input, indent=2, ensure_ascii=False)


def unified_diff(old: str, new: str, path: str) -> str:
    lines = difflib.unified_diff(
        old.splitlines(), new.splitlines(), f"a/{path}", f"b/{path}", lineterm=""
    )
    return "\n".join(lines)


def _style(name: str) -> str:
    if name in ("Write", "Edit", "MultiEdit", "NotebookEdit"):
        return "diff"
    if name in ("Read", "Glob", "Grep", "LS"):
        return "quiet"
    if name == "TodoWrite":
        return "todo"
    if name in ("Task", "Agent"):
        return "task"
    return "command" if name == "Bash" else "other"


def apply(blocks: list[Block], event: dict[str, Any], root: str = "") -> None:
    """Fold one finished-content event into the blocks, in place."""
    kind = event.get("type")
    if kind == "user_message":
        blocks.append(user_block(event["text"]))
    elif kind == "text" and event.get("kept"):
        blocks.append(kept_block(event["kept"]))
    elif kind == "text" and event["text"].strip():
        blocks.append(text_block(event["text"], event.get("parent_tool_use_id")))
    elif kind == "thinking":
        blocks.append({"kind": "thinking", "text": event["text"], "parent": ""})
    elif kind == "tool_use":
        blocks.append(
            tool_block(
                event["id"], event["name"], event["input"], event.get("parent_tool_use_id"), root
            )
        )
    elif kind == "tool_result":
        _set_result(blocks, event["tool_use_id"], event["content"], event["is_error"], root)
    elif kind == "turn_end":
        blocks.append(footer_block(event))
    elif kind == "error":
        blocks.append(error_block(event["message"]))


def from_history(messages: Iterable[dict[str, Any]], root: str = "") -> list[Block]:
    """Blocks for a page of history (see app.agent.history)."""
    blocks: list[Block] = []
    for message in messages:
        kind = message["type"]
        stopped = kind == "text" and message["text"].startswith(INTERRUPTED)
        if stopped:
            if "turn" not in message:
                blocks.append(stopped_block())
        elif kind == "text":
            blocks.append(
                user_block(message["text"])
                if message["role"] == "user"
                else text_block(message["text"])
            )
        elif kind == "thinking":
            blocks.append({"kind": "thinking", "text": message["text"], "parent": ""})
        elif kind == "tool_use":
            blocks.append(tool_block(message["id"], message["name"], message["input"], root=root))
        elif kind == "tool_result":
            _set_result(
                blocks, message["tool_use_id"], message["content"], message["is_error"], root
            )
        if "turn" in message:
            blocks.append(footer_block(message["turn"]))
    return blocks


def _set_result(
    blocks: list[Block], tool_use_id: str, content: str, is_error: bool, root: str = ""
) -> None:
    for index in range(len(blocks) - 1, -1, -1):
        if blocks[index].get("id") == tool_use_id:
            blocks[index] = with_result(blocks[index], content, is_error, root)
            return


def todo_items(tool_input: dict[str, Any]) -> list[Block]:
    """A TodoWrite call's list, for the checklist that updates in place."""
    return [
        {
            "content": str(t.get("content", "")),
            "status": str(t.get("status", "pending")),
            "active": str(t.get("activeForm", "")),
        }
        for t in tool_input.get("todos") or []
    ]


def latest_todos(blocks: list[Block]) -> list[Block]:
    """The checklist as the last TodoWrite in these blocks left it."""
    for block in reversed(blocks):
        if block.get("name") == "TodoWrite":
            return todo_items(json.loads(block.get("input_json", "{}")))
    return []
