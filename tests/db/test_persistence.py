"""The database layer on SQLite and on PostgreSQL: schema, scoping, migrations that keep data."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlmodel import Session, select

from app.db.engine import open_database
from app.db.migrations import STEPS, migrate
from app.db.models import AgentSession, Approval, ModelUsage, Turn, utcnow
from app.db.store import Store
from app.errors import Conflict, NotFound
from tests.conftest import ensure_user


def test_sessions_are_scoped_to_their_user(database_url: str) -> None:
    store = Store(open_database(database_url))
    ann, bob = ensure_user(store, "Ann@Example.com"), ensure_user(store, "bob@example.com")
    assert ensure_user(store, "ann@example.com").id == ann.id
    project = store.ensure_project(user_id=ann.id, name="default")
    session = store.add_session(AgentSession(user_id=ann.id, project_id=project.id, title="hello"))

    assert store.get_session(user_id=ann.id, session_id=session.id).title == "hello"
    with pytest.raises(NotFound):
        store.get_session(user_id=bob.id, session_id=session.id)
    with pytest.raises(NotFound):
        store.get_project(user_id=bob.id, project_id=project.id)
    with pytest.raises(NotFound):
        store.delete_session(user_id=bob.id, session_id=session.id)
    assert store.list_sessions(user_id=bob.id) == ([], 0)
    rows, total = store.list_sessions(user_id=ann.id, search="HELL")
    assert total == 1 and rows[0].id == session.id


def test_session_paging_and_totals(database_url: str) -> None:
    store = Store(open_database(database_url))
    user = ensure_user(store, "ann@example.com")
    ids = [
        store.add_session(AgentSession(user_id=user.id, project_id="p", title=f"s{i}")).id
        for i in range(25)
    ]
    pages = [store.list_sessions(user_id=user.id, limit=10, offset=o) for o in (0, 10, 20)]
    assert [len(rows) for rows, _ in pages] == [10, 10, 5]
    assert {r.id for rows, _ in pages for r in rows} == set(ids)
    for cost, tokens_in, cached, tokens_out in ((0.5, 10, 5, 3), (0.25, 1, 0, 1)):
        store.add_usage(
            ModelUsage(
                session_id=ids[0],
                user_id=user.id,
                model="claude-sonnet-4-5",
                input_tokens=tokens_in,
                cache_read_tokens=cached,
                output_tokens=tokens_out,
                cost_usd=cost,
            )
        )
    now = utcnow()
    store.add_turn(
        Turn(session_id=ids[0], status="done", started_at=now, ended_at=now, cost_usd=0.75),
        messages=3,
    )
    row = store.get_session(user_id=user.id, session_id=ids[0])
    assert (row.cost_usd, row.input_tokens, row.output_tokens, row.turns) == (0.75, 16, 4, 1)
    assert row.message_count == 3
    [turn] = store.turns_of(ids[0])
    assert (turn.status, turn.cost_usd) == ("done", 0.75)
    with Session(store.engine) as db:
        recorded = db.exec(select(ModelUsage).where(ModelUsage.session_id == ids[0])).all()
    assert sorted(u.cost_usd for u in recorded) == [0.25, 0.5]


def test_sandbox_uids_are_distinct_and_stable(database_url: str) -> None:
    store = Store(open_database(database_url))
    uids = [store.sandbox_uid(f"user-{i}", 200_000) for i in range(3)]
    assert uids == [200_000, 200_001, 200_002]
    assert store.sandbox_uid("user-1", 200_000) == 200_001
    assert Store(open_database(database_url)).sandbox_uid("user-0", 300_000) == 200_000


def test_sequence_blocks_only_grow(database_url: str) -> None:
    store = Store(open_database(database_url))
    session = store.add_session(AgentSession(user_id="u", project_id="p"))
    firsts = [store.reserve_seq(session.id, 100) for _ in range(3)]
    assert firsts == [1, 101, 201]


def test_an_approval_is_answered_once(database_url: str) -> None:
    store = Store(open_database(database_url))
    approval = store.add_approval(Approval(session_id="s", user_id="u", tool_name="Write"))
    with pytest.raises(NotFound):
        store.get_approval(user_id="other", session_id="s", approval_id=approval.id)
    store.resolve_approval(approval.id, status="allowed", decision={"allow": True})
    with pytest.raises(Conflict):
        store.resolve_approval(approval.id, status="denied", decision={"allow": False})
    second = store.add_approval(Approval(session_id="s", user_id="u", tool_name="Bash"))
    assert store.mark_lost_approvals() == 1
    assert store.get_approval(user_id="u", session_id="s", approval_id=second.id).status == "lost"


def test_unfinished_sessions_are_marked_interrupted_on_start(database_url: str) -> None:
    store = Store(open_database(database_url))
    running = store.add_session(AgentSession(user_id="u", project_id="p", status="running"))
    idle = store.add_session(AgentSession(user_id="u", project_id="p", status="idle"))
    assert store.mark_unfinished_sessions() == [running.id]
    assert store.get_session(user_id="u", session_id=idle.id).status == "idle"
    assert store.get_session(user_id="u", session_id=running.id).status == "interrupted"


def test_migrations_keep_existing_data(database_url: str) -> None:
    url = database_url.replace("postgresql://", "postgresql+psycopg://")
    engine: Engine = create_engine(url)
    migrate(engine, upto="0008_approvals_session")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO sessions (id, user_id, project_id, title, model, mode, status, "
                "created_at, updated_at, cost_usd, input_tokens, output_tokens, turns, "
                "seq_reserved) VALUES "
                "('old', 'u', 'p', 'kept', 'm', 'default', 'idle', CURRENT_TIMESTAMP, "
                "CURRENT_TIMESTAMP, 1.5, 1, 2, 3, 0)"
            )
        )
    applied = migrate(engine)
    assert applied == [step for step, _ in STEPS[8:]]
    assert migrate(engine) == [], "running again changes nothing"
    store = Store(engine)
    row = store.get_session(user_id="u", session_id="old")
    assert (row.title, row.cost_usd, row.rules_json, row.has_transcript) == (
        "kept",
        1.5,
        "[]",
        False,
    )
    engine.dispose()


def test_processes_starting_at_once_migrate_one_database(database_url: str) -> None:
    """App instances (or a server's workers) started together all come up on one schema."""
    url = database_url.replace("postgresql://", "postgresql+psycopg://")
    engines = [create_engine(url) for _ in range(4)]
    start = threading.Barrier(len(engines))
    applied: list[list[str]] = []
    failures: list[BaseException] = []

    def run(engine: Engine) -> None:
        start.wait()
        try:
            applied.append(migrate(engine))
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=run, args=(e,)) for e in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures
    assert sorted(s for steps in applied for s in steps) == sorted(s for s, _ in STEPS)
    with engines[0].connect() as conn:
        ledger = [r[0] for r in conn.execute(text("SELECT id FROM schema_migrations"))]
    assert sorted(ledger) == sorted(s for s, _ in STEPS), "each step recorded once"
    for engine in engines:
        engine.dispose()
