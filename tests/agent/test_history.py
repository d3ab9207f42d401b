"""Paged history from CLI transcripts, without reading big files whole."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import pytest

from app.agent.history import MAX_LINE, RESULT_CHARS, before_turn, read_page
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


def cat_output(lines: int) -> str:
    """What `cat` of a big source file prints."""
    return "".join(f"line {n}: result = compute(value, retries=3)\n" for n in range(lines))


def append_cat_turn(path: Path, tag: str, output: str) -> None:
    """A turn whose Bash output is one transcript line, the output in it twice (the CLI's
    key order: the record's type first, its uuid after the message)."""
    call = {
        "type": "assistant",
        "uuid": f"c{tag}",
        "message": {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": f"cat{tag}", "name": "Bash", "input": {"command": "cat"}}
            ],
        },
    }
    result = {
        "parentUuid": f"c{tag}",
        "type": "user",
        "message": {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": f"cat{tag}", "content": output}],
        },
        "uuid": f"o{tag}",
        "timestamp": "2026-11-26T10:37:38.268Z",
        "toolUseResult": {"stdout": output, "stderr": "", "interrupted": False},
        "sessionId": "s",
    }
    answer = {
        "type": "assistant",
        "uuid": f"d{tag}",
        "message": {"role": "assistant", "content": [{"type": "text", "text": f"done {tag}"}]},
    }
    with path.open("a") as f:
        for record in (call, result, answer):
            f.write(json.dumps(record) + "\n")


def test_a_multi_megabyte_output_shows_its_start_and_size_without_being_held(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.jsonl"
    write_transcript(path, turns=3)
    output = cat_output(150_000)  # 6.6 MB, 13 MB in its line
    append_cat_turn(path, "1", output)
    tracemalloc.start()
    page = read_page(tmp_path, path, limit=100)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 4_000_000, f"peak {peak} bytes: the long line must not be held"
    shown = [(m["uuid"], m["type"]) for m in page.messages]
    # (its uuid is in the line's middle, not read: a tool result's is never used)
    assert shown[-3:] == [("c1", "tool_use"), (None, "tool_result"), ("d1", "text")]
    assert len(shown) == 3 * 4 + 3  # nothing before or after the long line is lost
    result = page.messages[-2]
    assert result["tool_use_id"] == "cat1"
    size = len(path.read_bytes().split(b"\n")[-3]) / 1e6
    assert size > 14
    assert result["content"].startswith(f"[This output is {size:.1f} MB in the transcript")
    assert "line 0: result = compute(value, retries=3)\nline 1: " in result["content"]
    assert len(result["content"]) < RESULT_CHARS + 200


def test_pages_walk_past_long_lines_at_the_start_middle_and_end(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    big = "x" * (MAX_LINE + 10)
    long_prompt = {"type": "user", "uuid": "p0", "message": {"role": "user", "content": big}}
    path.write_text(json.dumps(long_prompt) + "\n")
    with path.open("a") as f:  # a long line that is no message: the CLI's request copies
        blob = {"type": "api-request-blob", "message": {"role": "user", "content": big}}
        f.write(json.dumps(blob) + "\n")
    append_cat_turn(path, "1", cat_output(40_000))
    append_cat_turn(path, "2", "short")
    append_cat_turn(path, "3", cat_output(40_000))
    seen: list[str] = []
    before = None
    while True:
        page = read_page(tmp_path, path, before=before, limit=2)
        seen[:0] = [f"{m['uuid']}:{m['type']}" for m in page.messages]
        if page.before is None:
            break
        before = page.before
    turns = [
        f"{k}{t}:{kind}"
        for t in "123"
        for k, kind in zip("cod", ["tool_use", "tool_result", "text"], strict=True)
    ]
    turns[1] = turns[7] = "None:tool_result"  # the long ones: their uuid is not read
    assert seen == ["p0:text", *turns]
    second_line = len(path.read_bytes().split(b"\n")[0]) + 1
    first = read_page(tmp_path, path, before=second_line, limit=1).messages[0]
    assert first["text"].startswith("[A message of 1.0 MB, too long to show here; its start:]")
    assert first["role"] == "user"


def test_a_torn_long_last_line_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    write_transcript(path, turns=2)
    append_cat_turn(path, "1", "short")
    with path.open("a") as f:  # the CLI is still writing a big output
        f.write('{"type": "user", "message": {"content": [{"type": "tool_result", "content": "')
        f.write("y" * (MAX_LINE + 10))
    page = read_page(tmp_path, path, limit=100)
    assert page.messages[-1]["uuid"] == "d1"


def test_a_long_tool_output_is_cut_saying_how_much_is_left(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    output = "z" * (RESULT_CHARS + 5000)
    append_cat_turn(path, "1", output)
    result = read_page(tmp_path, path).messages[1]
    assert result["content"] == "z" * RESULT_CHARS + "\n\n[5,000 more characters not shown]"
    append_cat_turn(path, "2", "z" * RESULT_CHARS)
    assert read_page(tmp_path, path).messages[-2]["content"] == "z" * RESULT_CHARS


def test_the_running_turn_is_left_out_only_once_the_transcript_has_its_prompt() -> None:
    """A page opened during a turn replays that turn from its events: what the transcript
    already holds of it is left out, and nothing before it, however far the transcript is."""

    def prompt(text: str, at: str) -> dict[str, str]:
        return {"role": "user", "type": "text", "text": text, "timestamp": at}

    def answer(text: str, at: str) -> dict[str, str]:
        return {"role": "assistant", "type": "text", "text": text, "timestamp": at}

    before = [prompt("first", "2026-11-26T10:00:00.000Z"), answer("one", "2026-11-26T10:00:01Z")]
    since = "2026-11-26T10:05:00.500000+00:00"
    # The CLI has not written the running prompt yet: the earlier turn stays whole.
    assert before_turn(before, since) == before
    running = [prompt("second", "2026-11-26T10:05:00.600Z"), answer("tw", "2026-11-26T10:05:01Z")]
    assert before_turn(before + running, since) == before
    assert before_turn(running, since) == []
