"""The engine driving the real Claude Code CLI against the scripted model server."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from app.agent.approvals import Answer
from app.agent.engine import AgentEngine
from app.db.store import Store
from app.devtools.model_server import ModelServer
from app.errors import Conflict, InvalidInput, NotFound
from tests.agent.helpers import Follower


def requests_mentioning(server: ModelServer, needle: str) -> list[dict[str, Any]]:
    return [r for r in server.requests if needle in json.dumps(r)]


def tool_results(request: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = [
        b for m in request["messages"] if isinstance(m["content"], list) for b in m["content"]
    ]
    return [b for b in blocks if b.get("type") == "tool_result"]


async def new_session(engine: AgentEngine, store: Store, email: str = "ann@example.com", **kw: Any):
    user = store.ensure_user(email)
    session = await engine.create_session(user.id, **kw)
    return user.id, session, await Follower.start(engine, user.id, session.id)


async def test_write_allowed_creates_the_file(engine: AgentEngine, store: Store) -> None:
    user_id, session, follow = await new_session(engine, store)
    await engine.send(user_id, session.id, "write allowed.txt")

    request = (await follow.next_of("permission_request")).data
    assert request["tool_name"] == "Write"
    assert request["input"]["file_path"].endswith("allowed.txt")
    pending = await engine.pending_approvals(user_id, session.id)
    assert [p["request_id"] for p in pending] == [request["request_id"]]

    await engine.answer(user_id, session.id, request["request_id"], Answer(allow=True))
    await follow.turn_end()

    written = engine.project_dir(user_id, session.project_id) / "allowed.txt"
    assert written.read_text() == "scripted content\n"
    assert "Write result: File created successfully" in follow.text()
    assert await engine.pending_approvals(user_id, session.id) == []


async def test_write_denied_leaves_no_file_and_model_hears_why(
    engine: AgentEngine, store: Store, model_server: ModelServer
) -> None:
    user_id, session, follow = await new_session(engine, store)
    await engine.send(user_id, session.id, "write denied.txt")
    request = (await follow.next_of("permission_request")).data

    reason = "Not in this folder, please."
    await engine.answer(
        user_id, session.id, request["request_id"], Answer(allow=False, message=reason)
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
    user_id, session, follow = await new_session(engine, store)
    await engine.send(user_id, session.id, "write twice.txt")
    request_id = (await follow.next_of("permission_request")).data["request_id"]
    await engine.answer(user_id, session.id, request_id, Answer(allow=True))
    with pytest.raises(Conflict, match="already answered"):
        await engine.answer(user_id, session.id, request_id, Answer(allow=False))
    with pytest.raises(NotFound):
        await engine.answer(user_id, session.id, "no-such-request", Answer(allow=True))
    await follow.turn_end()


async def test_always_allow_adds_a_visible_session_rule(engine: AgentEngine, store: Store) -> None:
    user_id, session, follow = await new_session(engine, store)
    command = "touch made.txt"
    await engine.send(user_id, session.id, f"run bash {command}")
    request = (await follow.next_of("permission_request")).data
    assert request["suggestions"], "the CLI suggests a rule for Bash"
    await engine.answer(user_id, session.id, request["request_id"], Answer(allow=True, always=True))
    resolved = await follow.next_of("permission_resolved")
    assert resolved.data["rules"] == request["suggestions"]
    await follow.turn_end()

    rules = json.loads((await engine.get_session(user_id, session.id)).rules_json)
    assert f"Bash({command})" in rules
    # The same command again runs without asking.
    before = len(follow.of("permission_request"))
    await engine.send(user_id, session.id, f"run bash {command}")
    await follow.turn_end()
    assert len(follow.of("permission_request")) == before
    assert follow.of("tool_result")[-1]["is_error"] is False


async def test_deltas_join_to_the_final_text_and_result_has_cost(
    engine: AgentEngine, store: Store
) -> None:
    user_id, session, follow = await new_session(engine, store)
    await engine.send(user_id, session.id, "echo the quick brown fox")
    await follow.turn_end()

    deltas = follow.of("text_delta")
    assert len(deltas) > 3, "token-level deltas, not one block"
    assert "".join(d["text"] for d in deltas) == follow.text() == "You said: the quick brown fox"
    seqs = [e.seq for e in follow.seen]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    result = follow.of("result")[-1]
    assert result["cost_usd"] > 0 and result["input_tokens"] > 0 and result["output_tokens"] > 0
    row = await engine.get_session(user_id, session.id)
    assert row.cost_usd == pytest.approx(result["cost_usd"])
    assert row.title == "echo the quick brown fox"


async def test_interrupt_stops_a_long_stream_and_next_message_works(
    engine: AgentEngine, store: Store
) -> None:
    user_id, session, follow = await new_session(engine, store)
    await engine.send(user_id, session.id, "long story please")
    await follow.until(lambda e: e.type == "text_delta" and len(follow.of("text_delta")) >= 5)
    await engine.interrupt(user_id, session.id)
    await follow.turn_end(timeout=30)
    streamed = len(follow.of("text_delta"))
    assert streamed < 400, "the 400-token answer was cut short"

    await engine.send(user_id, session.id, "echo after the stop")
    await follow.turn_end()
    assert follow.of("text")[-1]["text"] == "You said: after the stop"


async def test_interrupt_when_idle_is_a_conflict(engine: AgentEngine, store: Store) -> None:
    user_id, session, _ = await new_session(engine, store)
    with pytest.raises(Conflict):
        await engine.interrupt(user_id, session.id)


async def test_late_subscriber_replays_from_any_sequence_number(
    engine: AgentEngine, store: Store
) -> None:
    user_id, session, follow = await new_session(engine, store)
    await engine.send(user_id, session.id, "echo one two three four five")
    await follow.turn_end()
    everything = [e.seq for e in follow.seen]
    middle = everything[len(everything) // 2]

    late = await Follower.start(engine, user_id, session.id, after=middle)
    tab = await Follower.start(engine, user_id, session.id, after=0)
    await engine.send(user_id, session.id, "echo more words")
    for follower in (late, tab, follow):
        await follower.until(lambda e: e.type == "text" and "more words" in e.data["text"])
        await follower.turn_end()

    assert [e.seq for e in late.seen] == [s for s in [e.seq for e in follow.seen] if s > middle]
    assert [e.to_dict() for e in tab.seen] == [e.to_dict() for e in follow.seen]


async def test_two_users_cannot_touch_each_others_sessions(
    engine: AgentEngine, store: Store
) -> None:
    ann, session, follow = await new_session(engine, store, "ann@example.com")
    bob = store.ensure_user("bob@example.com").id
    await engine.send(ann, session.id, "write private.txt")
    request_id = (await follow.next_of("permission_request")).data["request_id"]

    rows, total = await engine.list_sessions(bob)
    assert rows == [] and total == 0
    for attempt in (
        engine.get_session(bob, session.id),
        engine.subscribe(bob, session.id),
        engine.history(bob, session.id),
        engine.send(bob, session.id, "echo hi"),
        engine.answer(bob, session.id, request_id, Answer(allow=True)),
        engine.interrupt(bob, session.id),
        engine.close_session(bob, session.id),
        engine.delete_session(bob, session.id),
        engine.set_mode(bob, session.id, "plan"),
        engine.pending_approvals(bob, session.id),
        engine.fork_session(bob, session.id),
    ):
        with pytest.raises(NotFound):
            await attempt
    # Ann's request is untouched and still hers to answer.
    await engine.answer(ann, session.id, request_id, Answer(allow=False))
    await follow.turn_end()


async def test_bad_input_is_refused_and_changes_nothing(engine: AgentEngine, store: Store) -> None:
    user_id, session, _ = await new_session(engine, store)
    for bad in ("", "   "):
        with pytest.raises(InvalidInput):
            await engine.send(user_id, session.id, bad)
    with pytest.raises(InvalidInput):
        await engine.set_mode(user_id, session.id, "yolo")
    with pytest.raises(InvalidInput):
        await engine.create_session(user_id, model="bad model; rm -rf /")
    assert (await engine.get_session(user_id, session.id)).status == "idle"


async def test_mode_and_model_change_while_the_session_lives(
    engine: AgentEngine, store: Store
) -> None:
    user_id, session, follow = await new_session(engine, store)
    await engine.set_mode(user_id, session.id, "acceptEdits")
    await engine.send(user_id, session.id, "write edits-ok.txt")
    await follow.turn_end()
    assert follow.of("permission_request") == [], "acceptEdits lets Write through"
    assert (engine.project_dir(user_id, session.project_id) / "edits-ok.txt").exists()

    await engine.set_model(user_id, session.id, "claude-haiku-4-5")
    await engine.send(user_id, session.id, "echo with haiku")
    await follow.turn_end()
    assert (await engine.get_session(user_id, session.id)).model == "claude-haiku-4-5"


async def test_ask_user_question_reaches_the_user_even_when_bypassing(
    engine: AgentEngine, store: Store
) -> None:
    user_id, session, follow = await new_session(engine, store, mode="bypassPermissions")
    await engine.send(user_id, session.id, "ask me something")
    request = (await follow.next_of("permission_request")).data
    assert request["kind"] == "question"
    answers = {"Which colour?": "Blue"}
    await engine.answer(
        user_id,
        session.id,
        request["request_id"],
        Answer(allow=True, updated_input={**request["input"], "answers": answers}),
    )
    await follow.turn_end()
    assert "Blue" in follow.of("text")[-1]["text"]


async def test_exit_plan_mode_shows_the_plan_and_keep_planning_denies(
    engine: AgentEngine, store: Store
) -> None:
    user_id, session, follow = await new_session(engine, store, mode="plan")
    await engine.send(user_id, session.id, "make a plan")
    request = (await follow.next_of("permission_request")).data
    # The CLI fills `plan` from the plan file the model wrote; the scripted model writes none.
    assert request["kind"] == "plan" and request["tool_name"] == "ExitPlanMode"
    await engine.answer(
        user_id,
        session.id,
        request["request_id"],
        Answer(allow=False, message="Keep planning: add tests"),
    )
    await follow.turn_end()
    assert "Keep planning: add tests" in follow.of("text")[-1]["text"]


async def test_per_user_limit_stops_idle_agents_and_refuses_busy_ones(
    tmp_path: Path, store: Store, model_server: ModelServer
) -> None:
    from tests.conftest import engine_config

    engine = AgentEngine(store, engine_config(tmp_path, model_server, max_agents_per_user=1))
    await engine.start()
    try:
        user_id = store.ensure_user("ann@example.com").id
        first = await engine.create_session(user_id)
        second = await engine.create_session(user_id)  # the idle first one makes room
        assert engine.live_count(user_id) == 1
        assert not engine.is_live(first.id) and engine.is_live(second.id)

        follow = await Follower.start(engine, user_id, second.id)
        await engine.send(user_id, second.id, "write busy.txt")
        await follow.next_of("permission_request")
        from app.errors import LimitReached

        with pytest.raises(LimitReached, match="limit is 1"):
            await engine.create_session(user_id)
        # Another user has a limit of their own.
        other = await engine.create_session(store.ensure_user("bob@example.com").id)
        assert engine.is_live(other.id)
    finally:
        await engine.shutdown()


async def test_idle_agents_are_reaped_and_resume_on_the_next_message(
    tmp_path: Path, store: Store, model_server: ModelServer
) -> None:
    from tests.conftest import engine_config

    engine = AgentEngine(
        store, engine_config(tmp_path, model_server, idle_timeout_s=0.5, reap_interval_s=0.2)
    )
    await engine.start()
    try:
        user_id, session, follow = await new_session(engine, store)
        await engine.send(user_id, session.id, "echo remember the word zebra")
        await follow.turn_end()
        await follow.until(lambda e: e.type == "status" and e.data.get("live") is False, timeout=10)
        assert not engine.is_live(session.id)

        await engine.send(user_id, session.id, "echo still here")
        await follow.turn_end()
        assert follow.of("text")[-1]["text"] == "You said: still here"
    finally:
        await engine.shutdown()


async def test_model_error_is_reported_and_the_session_goes_on(
    engine: AgentEngine, store: Store
) -> None:
    user_id, session, follow = await new_session(engine, store)
    await engine.send(user_id, session.id, "model error please")
    await follow.turn_end()
    errors = follow.of("error")
    assert errors and "529" in errors[-1]["message"]
    assert follow.of("result")[-1]["is_error"] is True
    await engine.send(user_id, session.id, "echo recovered")
    await follow.turn_end()
    assert follow.of("text")[-1]["text"] == "You said: recovered"


async def test_todo_write_runs_as_a_real_tool(engine: AgentEngine, store: Store) -> None:
    user_id, session, follow = await new_session(engine, store)
    await engine.send(user_id, session.id, "make a todo list")
    await follow.turn_end()
    assert follow.of("tool_use")[-1]["name"] == "TodoWrite"
    result = follow.of("tool_result")[-1]
    assert result["is_error"] is False, result["content"]


async def test_batches_coalesce_a_fast_stream_without_losing_events(
    engine: AgentEngine, store: Store
) -> None:
    user_id, session, follow = await new_session(engine, store)
    batches = await engine.subscribe_batches(user_id, session.id, interval=0.2)
    await engine.send(user_id, session.id, "long story")
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
