"""Conversation history, read from the CLI's JSONL transcripts a page at a time.

Pages are read backwards from a byte offset, so showing the latest page of a 50 MB transcript
touches only its tail; the offset of the oldest line read is the cursor for the next page.

A page holds at most `limit` messages of bounded size: a line longer than MAX_LINE (a `cat` of
a big file writes its output into one line, twice) is never held whole: only its start and end
are read, and it is shown as what it was (a tool's output, a message) with the start of its
text and its size. A tool's output is shown up to RESULT_CHARS characters.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from app.agent.events import tool_result_text
from app.workspace.files import open_inside

_CHUNK = 64 * 1024
MAX_LINE = 1024 * 1024  # a longer transcript line is shown from its first _HEAD bytes only
RESULT_CHARS = 64 * 1024  # of a tool's output, the characters a page holds
_HEAD = RESULT_CHARS * 2 + 4096  # escapes (\n, \") double a string's bytes at most, mostly
_TAIL = 16 * 1024
# What the CLI writes into the transcript, as if the user said it, when a turn is stopped.
INTERRUPTED = "[Request interrupted by user"


@dataclass(frozen=True)
class LongLine:
    """A transcript line too long to hold: its size, and its first and last bytes."""

    size: int
    head: bytes
    tail: bytes


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
            if isinstance(line, LongLine):
                items = long_line_messages(line)
            else:
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


def before_turn(messages: list[dict[str, Any]], since: str) -> list[dict[str, Any]]:
    """`messages` without the turn that began at `since` (ISO 8601), whose events replay: its
    prompt and what follows, if the transcript has them yet; else all of them. By time, not
    by position: the newest prompt in the transcript may still be the turn before."""
    start = datetime.fromisoformat(since)
    for index, message in enumerate(messages):
        stamp = message.get("timestamp")
        prompt = message["role"] == "user" and message["type"] == "text" and stamp
        if prompt and datetime.fromisoformat(str(stamp).replace("Z", "+00:00")) >= start:
            return messages[:index]
    return messages


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
            "content": _capped(tool_result_text(block.get("content"))),
            "is_error": bool(block.get("is_error")),
        }
    return None


def _capped(text: str) -> str:
    if len(text) <= RESULT_CHARS:
        return text
    return f"{text[:RESULT_CHARS]}\n\n[{len(text) - RESULT_CHARS:,} more characters not shown]"


_RECORD_TYPE = re.compile(rb'"type"\s*:\s*"(user|assistant)"')
_META = re.compile(rb'"isMeta"\s*:\s*true')
_TOOL_USE_ID = re.compile(rb'"tool_use_id"\s*:\s*"([^"\\]{1,200})"')
_TEXT_START = re.compile(rb'"(?:content|text|thinking)"\s*:\s*"')
_FIELD = {
    key: re.compile(rb'"' + key.encode() + rb'"\s*:\s*"([^"\\]{1,200})"')
    for key in ("uuid", "timestamp")
}
_STRING_BODY = re.compile(r'(?:[^"\\]++|\\.)*+')


def long_line_messages(line: LongLine) -> list[dict[str, Any]]:
    """A line too long to parse, as one message: a tool's output, or else a message, with the
    start of its text and the line's size. A quoted `"type": "user"` at the top level of a
    record is never inside a string (quotes there are escaped), so its edges tell its kind."""
    edges = line.head + b"\n" + line.tail
    kind = _RECORD_TYPE.search(edges)
    if kind is None or _META.search(edges) or not line.tail.rstrip().endswith(b"}"):
        return []  # not a message (or torn: the CLI is still writing it)
    role = kind.group(1).decode()
    base: dict[str, Any] = {"role": role}
    for key, pattern in _FIELD.items():
        found = pattern.search(line.tail) or pattern.search(line.head)
        base[key] = found.group(1).decode() if found else None
    size = f"{line.size / 1_000_000:.1f} MB"
    tool = _TOOL_USE_ID.search(line.head)
    if tool is not None:
        start = _preview(line.head, tool.end())
        note = f"[This output is {size} in the transcript, too long to show; its start:]"
        return [
            {
                **base,
                "type": "tool_result",
                "tool_use_id": tool.group(1).decode(),
                "content": f"{note}\n{start}" if start else note,
                "is_error": False,
            }
        ]
    start = _preview(line.head, 0)
    note = f"[A message of {size}, too long to show here{'; its start:' if start else ''}]"
    return [{**base, "type": "text", "text": f"{note}\n{start}" if start else note}]


def _preview(head: bytes, offset: int) -> str:
    """The start of the first JSON string value of text after `offset`, decoded as far as it
    was read, up to RESULT_CHARS characters."""
    opening = _TEXT_START.search(head, offset)
    if opening is None:
        return ""
    raw = head[opening.end() :].decode("utf-8", "ignore")
    body = _STRING_BODY.match(raw)
    text = body.group(0) if body else ""
    for cut in range(6):  # a \uXXXX escape may be cut short
        try:
            return str(json.loads(f'"{text[: len(text) - cut]}"'))[:RESULT_CHARS]
        except ValueError:
            continue
    return ""


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


def _lines_backwards(f: Any, end: int) -> Iterator[tuple[int, bytes | LongLine]]:
    """(start offset, line) pairs from `end` towards the start of the file. A line longer
    than MAX_LINE comes as a LongLine: only its last _TAIL and first _HEAD bytes are held."""
    position = end
    partial = b""  # the end of a line whose start is not read yet...
    partial_end = end  # ...which ends here
    skipping = False  # `partial` is that long line's tail only: the rest was let go
    while position > 0:
        size = min(_CHUNK, position)
        position -= size
        f.seek(position)
        chunk = f.read(size)
        cut = chunk.rfind(b"\n")
        if cut < 0:
            if not skipping:
                partial = chunk + partial
                if len(partial) > MAX_LINE:
                    partial, skipping = partial[-_TAIL:], True
            continue
        start = position + cut + 1
        line = _line(f, start, partial_end, None if skipping else chunk[cut + 1 :] + partial)
        if line is not None:
            yield start, line
        offset = position
        pieces = chunk[:cut].split(b"\n")
        tail = []
        for piece in pieces:
            tail.append((offset, piece))
            offset += len(piece) + 1
        for line_start, whole in reversed(tail[1:]):
            if whole.strip():
                yield line_start, whole
        partial, partial_end, skipping = pieces[0], position + len(pieces[0]), False
    line = _line(f, 0, partial_end, None if skipping else partial)
    if line is not None:
        yield 0, line


def _line(f: Any, start: int, end: int, whole: bytes | None) -> bytes | LongLine | None:
    """The line from `start` to `end`: its bytes, or its edges if it is too long."""
    if whole is not None and len(whole) <= MAX_LINE:
        return whole if whole.strip() else None
    f.seek(start)
    head = f.read(min(_HEAD, end - start))
    f.seek(max(start, end - _TAIL))
    tail = f.read(min(_TAIL, end - start))
    return LongLine(size=end - start, head=head, tail=tail)
