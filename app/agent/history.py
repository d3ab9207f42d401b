"""Conversation history, read from the CLI's JSONL transcripts a page at a time.

Pages are read backwards from a byte offset, so showing the latest page of a 50 MB transcript
touches only its tail; the offset of the oldest line read is the cursor for the next page.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.agent.events import tool_result_text
from app.workspace.files import open_inside

_CHUNK = 64 * 1024
# What the CLI writes into the transcript, as if the user said it, when a turn is stopped.
INTERRUPTED = "[Request interrupted by user"


@dataclass(frozen=True)
class HistoryPage:
    messages: list[dict[str, Any]]
    before: int | None  # pass as `before` to get the previous page; None: this is the first
    metadata: dict[str, Any] | None = None


def find_transcript(home: Path, session_id: str) -> Path | None:
    """The CLI keeps one folder per working directory under projects/; the id is unique."""
    projects = home / ".claude" / "projects"
    if not projects.is_dir():
        return None
    return next(projects.glob(f"*/{session_id}.jsonl"), None)


def transcript_folder(home: Path, workdir: str) -> Path:
    """Where the CLI files the transcripts of sessions run in `workdir` (as the agent sees it):
    the path with every character but letters and digits turned into '-'."""
    return home / ".claude" / "projects" / re.sub(r"[^A-Za-z0-9]", "-", workdir)


def place_transcript(home: Path, session_id: str, workdir: str) -> None:
    """Move a transcript filed under another working directory (a project seen at another
    path: before the sandbox, or on another machine) to where `--resume` will look for it."""
    found = find_transcript(home, session_id)
    folder = transcript_folder(home, workdir)
    if found is None or found.parent == folder:
        return
    folder.mkdir(parents=True, exist_ok=True)
    os.chown(folder, found.parent.stat().st_uid, found.parent.stat().st_gid)
    found.rename(folder / found.name)
    companion = found.with_suffix("")  # subagent transcripts and tool results, if any
    if companion.is_dir():
        companion.rename(folder / companion.name)


def read_page(home: Path, path: Path, *, before: int | None = None, limit: int = 50) -> HistoryPage:
    """At least `limit` messages (whole lines only) ending before byte offset `before`, from
    a transcript that really is inside the user's CLI home."""
    messages: list[dict[str, Any]] = []
    metadata: dict[str, Any] | None = None
    cursor: int | None = None
    with open_inside(home, path) as f:
        end = f.seek(0, os.SEEK_END) if before is None else max(0, before)
        for start, line in _lines_backwards(f, end):
            record = _parse(line)
            if record is None:
                continue
            metadata = metadata or _metadata(record)
            items = to_messages(record)
            if not items:
                continue
            messages[:0] = items
            cursor = start
            if len(messages) >= limit:
                break
        else:
            cursor = None
    return HistoryPage(messages=messages, before=cursor or None, metadata=metadata)


def to_messages(record: dict[str, Any]) -> list[dict[str, Any]]:
    """One transcript line as display messages (text, thinking, tool_use, tool_result)."""
    kind = record.get("type")
    if kind not in ("user", "assistant") or record.get("isMeta"):
        return []
    content = (record.get("message") or {}).get("content")
    base = {"uuid": record.get("uuid"), "timestamp": record.get("timestamp"), "role": kind}
    if isinstance(content, str):
        return [] if _is_wrapper(content) else [{**base, "type": "text", "text": content}]
    out = []
    for block in content or []:
        item = _block(block)
        if item is not None:
            out.append({**base, **item})
    return out


def _block(block: dict[str, Any]) -> dict[str, Any] | None:
    kind = block.get("type")
    if kind == "text" and not _is_wrapper(block.get("text", "")):
        return {"type": "text", "text": block.get("text", "")}
    if kind == "thinking":
        return {"type": "thinking", "text": block.get("thinking", "")}
    if kind == "tool_use":
        return {
            "type": "tool_use",
            "id": block.get("id"),
            "name": block.get("name"),
            "input": block.get("input") or {},
        }
    if kind == "tool_result":
        return {
            "type": "tool_result",
            "tool_use_id": block.get("tool_use_id"),
            "content": tool_result_text(block.get("content")),
            "is_error": bool(block.get("is_error")),
        }
    return None


def _is_wrapper(text: str) -> bool:
    """Text the CLI injects for the model, not something the user wrote."""
    stripped = text.lstrip()
    return stripped.startswith(("<system-reminder>", "<command-", "<local-command"))


def _metadata(record: dict[str, Any]) -> dict[str, Any] | None:
    if "sessionId" not in record or "cwd" not in record:
        return None
    return {
        "session_id": record.get("sessionId"),
        "cwd": record.get("cwd"),
        "git_branch": record.get("gitBranch"),
        "version": record.get("version"),
    }


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None  # a torn last line while the CLI is writing
    return record if isinstance(record, dict) else None


def _lines_backwards(f: Any, end: int) -> Iterator[tuple[int, bytes]]:
    """(start offset, line) pairs from `end` towards the start of the file."""
    buffer = b""
    position = end
    while position > 0:
        size = min(_CHUNK, position)
        position -= size
        f.seek(position)
        buffer = f.read(size) + buffer
        lines = buffer.split(b"\n")
        buffer = lines[0]
        offset = position + len(buffer) + 1
        tail = []
        for line in lines[1:]:
            tail.append((offset, line))
            offset += len(line) + 1
        for start, line in reversed(tail):
            if line.strip():
                yield start, line
    if buffer.strip():
        yield 0, buffer
