"""The engine driving the real Claude Code CLI against the scripted model server."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from app.agent.engine import AgentEngine
from app.agent.schemas import (
    HistoryQuery,
    ListQuery,
    ModeChange,
    ModelChange,
    NewSession,
    PermissionAnswer,
    SendMessage,
)
from app.db.store import Store
from app.devtools.model_server import ModelServer
from app.errors import Conflict, InvalidInput, LimitReached, NotFound
from tests.agent.helpers import Follower, open_session, reply, say
from tests.conftest import ensure_user, new_engine


def requests_mentioning(server: ModelServer, needle: str) -> list[dict[str, Any]]:
    return [r for r in server.requests if needle in json.dumps(r)]


def tool_results(request: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = [
        b for m in request["messages"] if isinstance(m["content"], list) for b in m["content"]
    ]
    return [b for b in blocks if b.get("type") == "tool_result"]


async def test_write_allowed_creates_the_file(engine: AgentEngine, store: Store) -> None:
    user_id, session, follow = await open_session(engine, store)
    await say(engine, user_id, session.session_id, "write allowed.txt")

    request = (await follow.next_of("permission_request")).data
    assert request["tool_name"] == "Write"
    assert request["input"]["file_path"].endswith("allowed.txt")
    pending = await engine.pending(user_id, session.session_id)
    assert [p.request_id for p in pending] == [request["request_id"]]

    await reply(engine, user_id, session.session_id, request["request_id"], allow=True)
    await follow.turn_end()

    written = engine.project_dir(user_id, session.project_id) / "allowed.txt"
    assert written.read_text() == "scripted content\n"
    assert "Write result: File created successfully" in follow.text()
    assert await engine.pending(user_id, session.session_id) == []


async def test_write_denied_leaves_no_file_and_model_hears_why(
    engine: AgentEngine, store: Store, model_server: ModelServer
) -> None:
    user_id, session, follow = await open_session(engine, store)
    await say(engine, user_id, session.session_id, "write denied.txt")
    request = (await follow.next_of("permission_request")).data

    reason = "Not in this folder, please."
    await reply(
        engine, user_id, session.session_id, request["request_id"], allow=False, message=reason
    )
    await follow.turn_end()

    assert not (engine.project_dir(user_id, session.project_id) / "denied.txt").exists()
    last = requests_mentioning(model_server, "denied.txt")[-1]
    results = tool_results(last)
    assert results and results[-1]["is_error"] is True
    assert reason in json.dumps(results[-1]["content"])
    resolved = follow.of("permission_resolved")[-1]
    assert resolved["status"] == "denied" and resolved["message"] == reason


async def test_answering_twice_or_unknown_request_is_an_error(
    engine: AgentEngine, store: Store
) -> None:
    user_id, session, follow = await open_session(engine, store)
    await say(engine, user_id, session.session_id, "write twice.txt")
    request_id = (await follow.next_of("permission_request")).data["request_id"]
    await reply(engine, user_id, session.session_id, request_id, allow=True)
    with pytest.raises(Conflict, match="already answered"):
        await reply(engine, user_id, session.session_id, request_id, allow=False)
    with pytest.raises(NotFound):
        await reply(engine, user_id, session.session_id, "no-such-request", allow=True)
    await follow.turn_end()


async def test_always_allow_adds_a_visible_session_rule(engine: AgentEngine, store: Store) -> None:
    user_id, session, follow = await open_session(engine, store)
    command = "touch made.txt"
    await say(engine, user_id, session.session_id, f"run bash {command}")
    request = (await follow.next_of("permission_request")).data
    assert request["suggestions"], "the CLI suggests a rule for Bash"
    await reply(engine, user_id, session.session_id, request["request_id"], allow=True, always=True)
    resolved = await follow.next_of("permission_resolved")
    assert resolved.data["rules"] == request["suggestions"]
    await follow.turn_end()

    assert f"Bash({command})" in (await engine.get(user_id, session.session_id)).rules
    # The same command again runs without asking.
    before = len(follow.of("permission_request"))
    await say(engine, user_id, session.session_id, f"run bash {command}")
    await follow.turn_end()
    assert len(follow.of("permission_request")) == before
    assert follow.of("tool_result")[-1]["is_error"] is False


async def test_deltas_join_to_the_final_text_and_result_has_cost(
    engine: AgentEngine, store: Store
) -> None:
    user_id, session, follow = await open_session(engine, store)
    await say(engine, user_id, session.session_id, "echo the quick brown fox")
    await follow.turn_end()

    deltas = follow.of("text_delta")
    assert len(deltas) > 3, "token-level deltas, not one block"
    assert "".join(d["text"] for d in deltas) == follow.text() == "You said: the quick brown fox"
    seqs = [e.seq for e in follow.seen]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    result = follow.of("result")[-1]
    assert result["cost_usd"] > 0 and result["input_tokens"] > 0 and result["output_tokens"] > 0
    end = follow.of("turn_end")[-1]
    assert end["status"] == "done" and end["cost_usd"] > 0 and end["output_tokens"] > 0
    view = await engine.get(user_id, session.session_id)
    # The session's cost is the relay's count of the API's usage, not the CLI's figure.
    assert view.cost_usd == pytest.approx(follow.of("usage")[-1]["cost_usd"])
    assert view.cost_usd == pytest.approx(end["cost_usd"])
    assert view.title == view.first_message == "echo the quick brown fox"
    assert view.message_count == 2, "the prompt and the answer"


async def test_interrupt_stops_a_long_stream_and_next_message_works(
    engine: AgentEngine, store: Store
) -> None:
    user_id, session, follow = await open_session(engine, store)
    await say(engine, user_id, session.session_id, "long story please")
    await follow.until(lambda e: e.type == "text_delta" and len(follow.of("text_delta")) >= 5)
    await engine.interrupt(user_id, session.session_id)
    end = await follow.turn_end(timeout=30)
    assert end.data["status"] == "interrupted"
    streamed = len(follow.of("text_delta"))
    assert streamed < 400, "the 400-token answer was cut short"

    await say(engine, user_id, session.session_id, "echo after the stop")
    await follow.turn_end()
    assert follow.of("text")[-1]["text"] == "You said: after the stop"


async def test_interrupt_when_idle_is_a_conflict(engine: AgentEngine, store: Store) -> None:
    user_id, session, _ = await open_session(engine, store)
    with pytest.raises(Conflict):
        await engine.interrupt(user_id, session.session_id)


async def test_late_subscriber_replays_from_any_sequence_number(
    engine: AgentEngine, store: Store
) -> None:
    user_id, session, follow = await open_session(engine, store)
    await say(engine, user_id, session.session_id, "echo one two three four five")
    await follow.turn_end()
    everything = [e.seq for e in follow.seen]
    middle = everything[len(everything) // 2]

    late = await Follower.start(engine, user_id, session.session_id, after=middle)
    tab = await Follower.start(engine, user_id, session.session_id, after=0)
    await say(engine, user_id, session.session_id, "echo more words")
    for follower in (late, tab, follow):
        await follower.until(lambda e: e.type == "text" and "more words" in e.data["text"])
        await follower.turn_end()

    assert [e.seq for e in late.seen] == [s for s in [e.seq for e in follow.seen] if s > middle]
    assert [e.to_dict() for e in tab.seen] == [e.to_dict() for e in follow.seen]


async def test_two_users_cannot_touch_each_others_sessions(
    engine: AgentEngine, store: Store
) -> None:
    ann, session, follow = await open_session(engine, store, "ann@example.com")
    bob = ensure_user(store, "bob@example.com").id
    await say(engine, ann, session.session_id, "write private.txt")
    request_id = (await follow.next_of("permission_request")).data["request_id"]

    listing = await engine.list_sessions(bob, ListQuery())
    assert listing.sessions == [] and listing.total == 0
    for attempt in (
        engine.get(bob, session.session_id),
        engine.follow(bob, session.session_id),
        engine.history(bob, session.session_id, HistoryQuery()),
        engine.send(bob, session.session_id, SendMessage(message="echo hi")),
        engine.answer(
            bob, session.session_id, PermissionAnswer(request_id=request_id, allowed=True)
        ),
        engine.interrupt(bob, session.session_id),
        engine.close(bob, session.session_id),
        engine.delete(bob, session.session_id),
        engine.set_mode(bob, session.session_id, ModeChange(mode="plan")),
        engine.pending(bob, session.session_id),
        engine.fork(bob, session.session_id),
        engine.create(bob, NewSession(resume_session_id=session.session_id)),
        engine.create(bob, NewSession(project_id=session.project_id)),
    ):
        with pytest.raises(NotFound):
            await attempt
    # Ann's request is untouched and still hers to answer.
    await reply(engine, ann, session.session_id, request_id, allow=False)
    await follow.turn_end()


async def test_bad_input_is_refused_and_changes_nothing(engine: AgentEngine, store: Store) -> None:
    user_id, session, _ = await open_session(engine, store)
    with pytest.raises(ValidationError):
        SendMessage(message="")
    with pytest.raises(InvalidInput, match="empty"):
        await say(engine, user_id, session.session_id, "   ")
    with pytest.raises(ValidationError):
        ModeChange(mode="yolo")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        SendMessage(message="a NUL \x00 byte")
    with pytest.raises(InvalidInput):
        await engine.create(user_id, NewSession(model="bad model; rm -rf /"))
    with pytest.raises(NotFound):
        await engine.get(user_id, "../../etc/passwd")
    assert (await engine.get(user_id, session.session_id)).status == "idle"


async def test_mode_and_model_change_while_the_session_lives(
    engine: AgentEngine, store: Store
) -> None:
    user_id, session, follow = await open_session(engine, store)
    await engine.set_mode(user_id, session.session_id, ModeChange(mode="acceptEdits"))
    await say(engine, user_id, session.session_id, "write edits-ok.txt")
    await follow.turn_end()
    assert follow.of("permission_request") == [], "acceptEdits lets Write through"
    assert (engine.project_dir(user_id, session.project_id) / "edits-ok.txt").exists()

    await engine.set_model(user_id, session.session_id, ModelChange(model="claude-haiku-4-5"))
    await say(engine, user_id, session.session_id, "echo with haiku")
    await follow.turn_end()
    assert (await engine.get(user_id, session.session_id)).model == "claude-haiku-4-5"


async def test_ask_user_question_reaches_the_user_even_when_bypassing(
    engine: AgentEngine, store: Store
) -> None:
    user_id, session, follow = await open_session(
        engine, store, permission_mode="bypassPermissions"
    )
    await say(engine, user_id, session.session_id, "ask me something")
    request = (await follow.next_of("permission_request")).data
    assert request["kind"] == "question"
    answers = {"Which colour?": "Blue"}
    await engine.answer(
        user_id,
        session.session_id,
        PermissionAnswer(
            request_id=request["request_id"],
            allowed=True,
            updated_input={**request["input"], "answers": answers},
        ),
    )
    await follow.turn_end()
    assert "Blue" in follow.of("text")[-1]["text"]


async def test_exit_plan_mode_shows_the_plan_and_keep_planning_denies(
    engine: AgentEngine, store: Store
) -> None:
    user_id, session, follow = await open_session(engine, store, permission_mode="plan")
    await say(engine, user_id, session.session_id, "make a plan")
    request = (await follow.next_of("permission_request")).data
    # The CLI fills `plan` from the plan file the model wrote; the scripted model writes none.
    assert request["kind"] == "plan" and request["tool_name"] == "ExitPlanMode"
    await reply(
        engine,
        user_id,
        session.session_id,
        request["request_id"],
        allow=False,
        message="Keep planning: add tests",
    )
    await follow.turn_end()
    assert "Keep planning: add tests" in follow.of("text")[-1]["text"]


async def test_per_user_limit_stops_idle_agents_and_refuses_busy_ones(
    tmp_path: Path, store: Store, model_server: ModelServer
) -> None:
    engine = new_engine(tmp_path, store, model_server, max_agents_per_user=1)
    await engine.start()
    try:
        user_id = ensure_user(store, "ann@example.com").id
        first = await engine.create(user_id, NewSession())
        second = await engine.create(user_id, NewSession())  # the idle first one makes room
        assert [s.session_id for s in await engine.live_sessions(user_id)] == [second.session_id]

        follow = await Follower.start(engine, user_id, second.session_id)
        await say(engine, user_id, second.session_id, "write busy.txt")
        await follow.next_of("permission_request")
        with pytest.raises(LimitReached, match="limit is 1"):
            await engine.create(user_id, NewSession())
        # Another user has a limit of their own.
        bob = ensure_user(store, "bob@example.com").id
        other = await engine.create(bob, NewSession())
        assert other.live and not (await engine.get(user_id, first.session_id)).live
    finally:
        await engine.shutdown()


async def test_the_limit_holds_under_concurrent_starts(
    tmp_path: Path, store: Store, model_server: ModelServer
) -> None:
    """Checking the limit and taking the place are one step: three creates at once with a
    limit of one leave one live agent (the earlier ones make room while idle)."""
    engine = new_engine(tmp_path, store, model_server, max_agents_per_user=1)
    await engine.start()
    try:
        user_id = ensure_user(store, "ann@example.com").id
        created = await asyncio.gather(
            *(engine.create(user_id, NewSession()) for _ in range(3)), return_exceptions=True
        )
        assert all(not isinstance(c, BaseException) for c in created), created
        assert len(await engine.live_sessions(user_id)) == 1
        assert engine.pool.count(user_id) == 1
    finally:
        await engine.shutdown()


async def test_warming_starts_a_stopped_agent_only_where_there_is_room(
    tmp_path: Path, store: Store, model_server: ModelServer
) -> None:
    """Opening a stopped session starts its agent ahead of the prompt, but never stops
    another of the user's agents to make room; the prompt then goes to the warmed agent."""
    engine = new_engine(tmp_path, store, model_server, max_agents_per_user=2)
    await engine.start()
    try:
        user_id = ensure_user(store, "ann@example.com").id
        first = await engine.create(user_id, NewSession())
        await engine.close(user_id, first.session_id)
        assert not (await engine.get(user_id, first.session_id)).live
        assert await engine.warm(user_id, first.session_id)
        assert (await engine.get(user_id, first.session_id)).live
        warmed = engine.pool.live[first.session_id]
        follow = await Follower.start(engine, user_id, first.session_id)
        await say(engine, user_id, first.session_id, "echo warm")
        await follow.turn_end()
        assert engine.pool.live[first.session_id] is warmed, "the prompt used the warm agent"

        second = await engine.create(user_id, NewSession())
        third = await engine.create(user_id, NewSession())  # the limit of 2: first made room
        assert not (await engine.get(user_id, first.session_id)).live
        assert not await engine.warm(user_id, first.session_id)  # no room: nothing stopped
        live = {s.session_id for s in await engine.live_sessions(user_id)}
        assert live == {second.session_id, third.session_id}
    finally:
        await engine.shutdown()


async def test_idle_agents_are_reaped_and_resume_on_the_next_message(
    tmp_path: Path, store: Store, model_server: ModelServer
) -> None:
    engine = new_engine(tmp_path, store, model_server, idle_timeout_s=0.5, reap_interval_s=0.2)
    await engine.start()
    try:
        user_id, session, follow = await open_session(engine, store)
        await say(engine, user_id, session.session_id, "echo remember the word zebra")
        await follow.turn_end()
        await follow.until(lambda e: e.type == "status" and e.data.get("live") is False, timeout=10)
        assert not (await engine.get(user_id, session.session_id)).live

        await say(engine, user_id, session.session_id, "echo still here")
        await follow.turn_end()
        assert follow.of("text")[-1]["text"] == "You said: still here"
    finally:
        await engine.shutdown()


async def test_model_error_is_reported_and_the_session_goes_on(
    engine: AgentEngine, store: Store
) -> None:
    user_id, session, follow = await open_session(engine, store)
    await say(engine, user_id, session.session_id, "model error please")
    await follow.turn_end()
    errors = follow.of("error")
    assert errors and "529" in errors[-1]["message"]
    assert follow.of("result")[-1]["is_error"] is True
    await say(engine, user_id, session.session_id, "echo recovered")
    await follow.turn_end()
    assert follow.of("text")[-1]["text"] == "You said: recovered"


async def test_todo_write_runs_as_a_real_tool(engine: AgentEngine, store: Store) -> None:
    user_id, session, follow = await open_session(engine, store)
    await say(engine, user_id, session.session_id, "make a todo list")
    await follow.turn_end()
    assert follow.of("tool_use")[-1]["name"] == "TodoWrite"
    result = follow.of("tool_result")[-1]
    assert result["is_error"] is False, result["content"]


async def test_batches_coalesce_a_fast_stream_without_losing_events(
    engine: AgentEngine, store: Store
) -> None:
    user_id, session, follow = await open_session(engine, store)
    batches = (await engine.follow(user_id, session.session_id, 0)).batches(0.2)
    await say(engine, user_id, session.session_id, "long story")
    received = []
    async with asyncio.timeout(60):
        async for batch in batches:
            received.append(batch)
            if any(e.type == "result" for e in batch):
                break
    await follow.turn_end()
    flat = [e.seq for batch in received for e in batch]
    assert flat == [e.seq for e in follow.seen if e.seq <= flat[-1]]
    deltas = sum(1 for batch in received for e in batch if e.type == "text_delta")
    assert deltas == 400 and len(received) < 100, "400 deltas at 25 ms arrive in few batches"
