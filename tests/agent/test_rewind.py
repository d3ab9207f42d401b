"""Rewinding a session's files to before a turn, and forking it from a turn."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.agent.engine import AgentEngine
from app.agent.schemas import HistoryQuery
from app.db.store import Store
from app.devtools.model_server import ModelServer
from app.errors import Conflict, NotFound
from tests.agent.helpers import Follower, open_session, say
from tests.conftest import ensure_user


async def two_writes(engine: AgentEngine, store: Store) -> tuple[str, str, list[str], Path]:
    """Ann's session whose turn 1 writes notes.txt and turn 2 other.txt:
    (user id, session id, the two prompts' uuids, the project folder)."""
    user_id, session, follow = await open_session(engine, store, permission_mode="acceptEdits")
    for prompt in ("write notes.txt", "write other.txt"):
        await say(engine, user_id, session.session_id, prompt)
        await follow.turn_end()
    history = await engine.history(user_id, session.session_id, HistoryQuery())
    prompts = [m["uuid"] for m in history.messages if m["role"] == "user" and "text" in m]
    assert len(prompts) == 2
    return user_id, session.session_id, prompts, engine.project_dir(user_id, session.project_id)


async def test_rewind_preview_lists_the_files_a_turn_changed(
    engine: AgentEngine, store: Store
) -> None:
    user_id, session_id, (first, second), folder = await two_writes(engine, store)

    preview = await engine.rewind_preview(user_id, session_id, second)
    assert preview.can_rewind and not preview.applied
    assert preview.files == ["other.txt"]
    assert (folder / "other.txt").exists(), "a preview changes nothing"
    before_all = await engine.rewind_preview(user_id, session_id, first)
    assert before_all.files == ["notes.txt", "other.txt"]


async def test_rewind_puts_the_files_back_and_keeps_the_conversation(
    engine: AgentEngine, store: Store
) -> None:
    user_id, session_id, (_, second), folder = await two_writes(engine, store)
    await engine.close(user_id, session_id)  # the checkpoints outlive the process

    done = await engine.rewind(user_id, session_id, second)
    assert done.applied and done.files == ["other.txt"]
    assert not (folder / "other.txt").exists()
    assert (folder / "notes.txt").read_text() == "scripted content\n"
    history = await engine.history(user_id, session_id, HistoryQuery())
    assert "write other.txt" in json.dumps(history.messages)


async def test_rewind_refuses_unknown_turns_and_other_users(
    engine: AgentEngine, store: Store
) -> None:
    user_id, session_id, (_, second), _ = await two_writes(engine, store)
    bob = ensure_user(store, "bob@example.com").id
    with pytest.raises(NotFound):
        await engine.rewind_preview(bob, session_id, second)
    with pytest.raises(NotFound):
        await engine.rewind(user_id, session_id, "00000000-0000-4000-8000-000000000000")


async def test_rewind_waits_for_the_running_turn(engine: AgentEngine, store: Store) -> None:
    user_id, session_id, (first, _), _ = await two_writes(engine, store)
    follow = await Follower.start(engine, user_id, session_id, after=None)
    await say(engine, user_id, session_id, "long story")
    with pytest.raises(Conflict):
        await engine.rewind(user_id, session_id, first)
    await engine.interrupt(user_id, session_id)
    assert (await follow.turn_end()).data["status"] == "interrupted"


async def test_fork_from_a_turn_keeps_only_the_turns_up_to_it(
    engine: AgentEngine, store: Store, model_server: ModelServer
) -> None:
    user_id, session_id, (first, _), _ = await two_writes(engine, store)

    fork = await engine.fork(user_id, session_id, at=first)
    assert fork.forked_from == session_id
    shown = json.dumps((await engine.history(user_id, fork.session_id, HistoryQuery())).messages)
    assert "write notes.txt" in shown and "other.txt" not in shown

    follow = await Follower.start(engine, user_id, fork.session_id)
    await say(engine, user_id, fork.session_id, "echo branch only")
    await follow.turn_end()
    assert follow.of("text")[-1]["text"] == "You said: branch only"
    request = [r for r in model_server.requests if "branch only" in json.dumps(r)][-1]
    assert "notes.txt" in json.dumps(request["messages"])
    assert "other.txt" not in json.dumps(request["messages"])
    original = await engine.history(user_id, session_id, HistoryQuery())
    assert "branch only" not in json.dumps(original.messages)
