"""Fixtures shared by every test: a scripted model server, a fresh database and engine."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer
from sqlalchemy import Engine, create_engine, text

from app.agent.engine import AgentEngine, EngineConfig
from app.db.engine import open_database
from app.db.models import User
from app.db.store import Store
from app.devtools.model_server import ModelServer
from app.devtools.scenario import SCENARIOS_DIR, load_scenario
from app.sandbox.relay import Upstream
from app.sandbox.service import Sandbox, SandboxConfig
from tests.s3 import s3_server  # noqa: F401 - a session fixture for every test folder

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """moto's server (Cognito, S3, IAM, ...) over HTTP on a free port, for the whole run."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def model_server() -> Iterator[ModelServer]:
    server = ModelServer(load_scenario(SCENARIOS_DIR / "test.json"))
    server.start()
    yield server
    server.stop()


@contextlib.contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A new, empty database on the test PostgreSQL server, dropped afterwards."""
    name = "test_" + uuid.uuid4().hex[:12]
    admin = create_engine(
        POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRES_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each test using this runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'app.db'}"
        return
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture
def db(tmp_path: Path) -> Engine:
    return open_database(f"sqlite:///{tmp_path / 'app.db'}")


@pytest.fixture
def store(db: Engine) -> Store:
    return Store(db)


def ensure_user(store: Store, email: str) -> User:
    """The user with this e-mail, made on first use (a local account nobody can sign in to)."""
    return store.find_user(email) or store.add_local_user(email, "!test-user")


def model_env(server: ModelServer) -> dict[str, str]:
    return {
        "ANTHROPIC_BASE_URL": server.base_url,
        "ANTHROPIC_API_KEY": "test-key",
        "CLAUDE_CODE_MAX_RETRIES": "0",  # a scripted 529 fails at once instead of backing off
    }


def new_engine(
    tmp_path: Path,
    store: Store,
    server: ModelServer,
    *,
    sandbox: SandboxConfig | None = None,
    upstream: Upstream | None = None,
    **overrides: object,
) -> AgentEngine:
    """An engine (not started) over `tmp_path`, its agents jailed and relayed to `server`."""
    values: dict[str, object] = {
        "projects_dir": tmp_path / "projects",
        "homes_dir": tmp_path / "homes",
        "default_model": "claude-sonnet-4-5",
        "reap_interval_s": 3600.0,
    }
    values.update(overrides)
    env = model_env(server)
    jail = Sandbox(
        sandbox or SandboxConfig(),
        store=store,
        upstream=upstream or Upstream.from_env(env),
        model_env=env,
    )
    return AgentEngine(store, EngineConfig(**values), jail)  # type: ignore[arg-type]


@pytest.fixture
async def engine(
    tmp_path: Path, store: Store, model_server: ModelServer
) -> AsyncIterator[AgentEngine]:
    engine = new_engine(tmp_path, store, model_server)
    await engine.start()
    yield engine
    await engine.shutdown()
