"""The database layer on SQLite and on PostgreSQL: schema, scoping, migrations that keep data."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from app.db.engine import open_database
from app.db.migrations import STEPS, migrate
from app.db.models import AgentSession, Approval
from app.db.store import Store
from app.errors import Conflict, NotFound
from tests.conftest import POSTGRES_URL


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'app.db'}"
        return
    name = "test_" + uuid.uuid4().hex[:12]
    admin = create_engine(
        POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield POSTGRES_URL.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def test_sessions_are_scoped_to_their_user(database_url: str) -> None:
    store = Store(open_database(database_url))
    ann, bob = store.ensure_user("Ann@Example.com"), store.ensure_user("bob@example.com")
    assert store.ensure_user("ann@example.com").id == ann.id
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
    user = store.ensure_user("ann@example.com")
    ids = [
        store.add_session(AgentSession(user_id=user.id, project_id="p", title=f"s{i}")).id
        for i in range(25)
    ]
    pages = [store.list_sessions(user_id=user.id, limit=10, offset=o) for o in (0, 10, 20)]
    assert [len(rows) for rows, _ in pages] == [10, 10, 5]
    assert {r.id for rows, _ in pages for r in rows} == set(ids)
    store.add_result(ids[0], cost_usd=0.5, input_tokens=10, output_tokens=3)
    store.add_result(ids[0], cost_usd=0.25, input_tokens=1, output_tokens=1)
    row = store.get_session(user_id=user.id, session_id=ids[0])
    assert (row.cost_usd, row.input_tokens, row.output_tokens, row.turns) == (0.75, 11, 4, 2)


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
