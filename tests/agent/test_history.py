"""Paged history from CLI transcripts, without reading big files whole."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import pytest

from app.agent.history import read_page
from app.errors import InvalidInput, NotFound


def write_transcript(path: Path, turns: int, padding: int = 0) -> None:
    with path.open("w") as f:
        for i in range(turns):
            user = {
                "type": "user",
                "uuid": f"u{i}",
                "sessionId": "s",
                "cwd": "/w",
                "message": {"role": "user", "content": f"question {i}"},
            }
            reply = {
                "type": "assistant",
                "uuid": f"a{i}",
                "sessionId": "s",
                "message": {
                    "role": "assistant",
                    "content": [
                        {"type": "text", "text": f"answer {i} " + "x" * padding},
                        {
                            "type": "tool_use",
                            "id": f"t{i}",
                            "name": "Bash",
                            "input": {"command": "ls"},
                        },
                    ],
                },
            }
            result = {
                "type": "user",
                "uuid": f"r{i}",
                "message": {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": f"t{i}",
                            "content": "ok",
                            "is_error": False,
                        }
                    ],
                },
            }
            meta = {"type": "user", "isMeta": True, "message": {"role": "user", "content": "meta"}}
            for record in (user, reply, result, meta):
                f.write(json.dumps(record) + "\n")


def test_pages_walk_back_through_the_whole_history_in_order(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    write_transcript(path, turns=30)
    seen: list[str] = []
    before = None
    while True:
        page = read_page(tmp_path, path, before=before, limit=7)
        seen[:0] = [m["uuid"] + ":" + m["type"] for m in page.messages]
        before = page.before
        if before is None:
            break
    expected = [
        f"{k}{i}:{t}"
        for i in range(30)
        for k, t in (("u", "text"), ("a", "text"), ("a", "tool_use"), ("r", "tool_result"))
    ]
    assert seen == expected


def test_latest_page_of_a_50mb_transcript_reads_only_its_tail(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    write_transcript(path, turns=5000, padding=10_000)
    assert path.stat().st_size > 50_000_000
    tracemalloc.start()
    page = read_page(tmp_path, path, limit=20)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert (
        page.messages[-1]["type"] == "tool_result" and page.messages[-1]["tool_use_id"] == "t4999"
    )
    assert page.before is not None
    assert peak < 2_000_000, f"peak {peak} bytes: the page must not load the file"


def test_torn_last_line_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    write_transcript(path, turns=2)
    with path.open("a") as f:
        f.write('{"type": "assistant", "message": {"content": [{"ty')
    page = read_page(tmp_path, path, limit=100)
    assert [m["uuid"] for m in page.messages][-1] == "r1"
    assert page.metadata == {"session_id": "s", "cwd": "/w", "git_branch": None, "version": None}


def test_a_transcript_linked_to_another_users_file_is_not_read(tmp_path: Path) -> None:
    """An agent can make its own transcript a symlink to a file it cannot see (the path is
    just a string); the app, reading history outside the jail, must not follow it."""
    other = tmp_path / "homes" / "ann" / "s.jsonl"
    other.parent.mkdir(parents=True)
    write_transcript(other, turns=1)
    home = tmp_path / "homes" / "bob"
    mine = home / ".claude" / "projects" / "-workspace-x" / "s.jsonl"
    mine.parent.mkdir(parents=True)
    mine.symlink_to(other)
    with pytest.raises(NotFound):
        read_page(home, mine)
    (home / ".claude" / "projects" / "-workspace-y").symlink_to(other.parent)
    with pytest.raises(InvalidInput):
        read_page(home, home / ".claude" / "projects" / "-workspace-y" / "s.jsonl")
