"""What survives a restart, a crash and a fork; and what never reaches the agent."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from app.agent.engine import AgentEngine
from app.agent.schemas import HistoryQuery, NewSession
from app.db.engine import open_database
from app.db.store import Store
from app.devtools.model_server import ModelServer
from app.errors import Conflict
from tests.agent.helpers import Follower, reply, say
from tests.conftest import ensure_user, new_engine


async def restarted(tmp_path: Path, server: ModelServer) -> AgentEngine:
    """A new engine over the same data directory, as after the app restarted."""
    engine = new_engine(tmp_path, Store(open_database(f"sqlite:///{tmp_path / 'app.db'}")), server)
    await engine.start()
    return engine


async def started_session(engine: AgentEngine, prompt: str) -> tuple[str, str, Follower]:
    """Ann's new session with `prompt` sent: (user id, session id, its follower)."""
    user_id = ensure_user(engine.store, "ann@example.com").id
    session = await engine.create(user_id, NewSession())
    follow = await Follower.start(engine, user_id, session.session_id)
    await say(engine, user_id, session.session_id, prompt)
    return user_id, session.session_id, follow


async def test_restart_then_resume_keeps_history_and_context(
    tmp_path: Path, model_server: ModelServer
) -> None:
    first = await restarted(tmp_path, model_server)
    user_id, session_id, follow = await started_session(first, "echo the secret word is walrus")
    await follow.turn_end()
    last_seq = follow.seen[-1].seq
    await first.shutdown()

    second = await restarted(tmp_path, model_server)
    try:
        page = await second.history(user_id, session_id, HistoryQuery())
        texts = [m["text"] for m in page.messages if m["type"] == "text"]
        assert texts == ["echo the secret word is walrus", "You said: the secret word is walrus"]

        follow = await Follower.start(second, user_id, session_id)
        await say(second, user_id, session_id, "echo and again")
        await follow.turn_end()
        assert follow.seen[0].seq > last_seq, "sequence numbers keep growing across restarts"
        # The model saw the earlier turn: the same conversation continued.
        request = [r for r in model_server.requests if "and again" in json.dumps(r)][-1]
        assert "the secret word is walrus" in json.dumps(request["messages"])
        page = await second.history(user_id, session_id, HistoryQuery())
        assert page.messages[-1]["text"] == "You said: and again"
    finally:
        await second.shutdown()


async def test_pending_approval_is_reported_lost_after_restart(
    tmp_path: Path, model_server: ModelServer
) -> None:
    first = await restarted(tmp_path, model_server)
    user_id, session_id, follow = await started_session(first, "write later.txt")
    request_id = (await follow.next_of("permission_request")).data["request_id"]
    # A reload (a new subscriber) still sees the pending request.
    assert [p.request_id for p in await first.pending(user_id, session_id)] == [request_id]
    await first.shutdown()

    second = await restarted(tmp_path, model_server)
    try:
        assert await second.pending(user_id, session_id) == []
        with pytest.raises(Conflict, match="lost"):
            await reply(second, user_id, session_id, request_id, allow=True)
        row = await second.get(user_id, session_id)
        assert row.status == "interrupted", "the restart cut that turn short, and says so"
        # The session goes on.
        follow = await Follower.start(second, user_id, session_id)
        await say(second, user_id, session_id, "echo carry on")
        await follow.turn_end()
        assert follow.of("text")[-1]["text"] == "You said: carry on"
    finally:
        await second.shutdown()


def cli_pids(marker: Path) -> list[int]:
    """Processes whose working directory is inside `marker` (the test's data folder)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if str(marker) in os.readlink(entry / "cwd"):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


async def test_crashed_cli_marks_the_session_failed_and_it_resumes(
    engine: AgentEngine, tmp_path: Path
) -> None:
    user_id, session_id, follow = await started_session(engine, "echo before the crash")
    await follow.turn_end()

    for pid in cli_pids(tmp_path / "projects"):
        os.kill(pid, signal.SIGKILL)
    error = await follow.next_of("error", timeout=30)
    assert error.data["kind"] == "agent_failed"
    # The reason comes first, the terminal status after it: a stream that ends on the status
    # has shown why.
    failed = await follow.until(lambda e: e.type == "status" and e.data.get("status") == "failed")
    assert error.seq < failed.seq
    row = await engine.get(user_id, session_id)
    assert row.status == "failed" and row.error

    await say(engine, user_id, session_id, "echo after the crash")
    await follow.turn_end()
    assert follow.of("text")[-1]["text"] == "You said: after the crash"
    assert (await engine.get(user_id, session_id)).status == "idle"


async def test_shutdown_ends_every_cli_process(
    tmp_path: Path, store: Store, model_server: ModelServer
) -> None:
    engine = new_engine(tmp_path, store, model_server)
    await engine.start()
    user_id = ensure_user(store, "ann@example.com").id
    for _ in range(2):
        await engine.create(user_id, NewSession())
    assert len(cli_pids(tmp_path / "projects")) >= 2
    await engine.shutdown()
    assert cli_pids(tmp_path / "projects") == []


async def test_fork_starts_with_the_conversation_so_far(
    engine: AgentEngine, model_server: ModelServer
) -> None:
    user_id, session_id, follow = await started_session(engine, "echo original branch marker")
    await follow.turn_end()

    fork = await engine.fork(user_id, session_id)
    assert fork.session_id != session_id and fork.forked_from == session_id
    fork_follow = await Follower.start(engine, user_id, fork.session_id)
    await say(engine, user_id, fork.session_id, "echo fork only")
    await fork_follow.turn_end()

    request = [r for r in model_server.requests if "fork only" in json.dumps(r)][-1]
    assert "original branch marker" in json.dumps(request["messages"])
    original = await engine.history(user_id, session_id, HistoryQuery())
    assert "fork only" not in json.dumps(original.messages)
    forked = await engine.history(user_id, fork.session_id, HistoryQuery())
    assert forked.messages[-1]["text"] == "You said: fork only"


async def test_agent_never_sees_the_apps_secrets(
    tmp_path: Path, store: Store, model_server: ModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APP_SECRET_KEY", "app-signing-key-that-must-not-leak-0123456789")
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:db-password-must-not-leak@db/app")
    monkeypatch.setenv("GITHUB_CLIENT_SECRET", "gh-secret-must-not-leak")
    engine = new_engine(tmp_path, store, model_server)
    await engine.start()
    try:
        user_id = ensure_user(store, "ann@example.com").id
        session = await engine.create(user_id, NewSession(permission_mode="acceptEdits"))
        follow = await Follower.start(engine, user_id, session.session_id)
        await say(engine, user_id, session.session_id, "run bash env")
        request = await follow.next_of("permission_request")
        await reply(engine, user_id, session.session_id, request.data["request_id"], allow=True)
        await follow.turn_end()
        output = follow.of("tool_result")[-1]["content"]
        assert "ANTHROPIC_BASE_URL=" in output, "model access is passed through"
        for leaked in ("must-not-leak", "APP_SECRET_KEY", "DATABASE_URL", "GITHUB_CLIENT_SECRET"):
            assert leaked not in output
    finally:
        await engine.shutdown()
