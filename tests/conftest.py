"""Fixtures shared by every test: a scripted model server, a fresh database and engine."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from app.agent.engine import AgentEngine, EngineConfig
from app.db.engine import open_database
from app.db.store import Store
from app.devtools.model_server import ModelServer
from app.devtools.scenario import SCENARIOS_DIR, load_scenario

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def model_server() -> Iterator[ModelServer]:
    server = ModelServer(load_scenario(SCENARIOS_DIR / "test.json"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def db(tmp_path: Path) -> Engine:
    return open_database(f"sqlite:///{tmp_path / 'app.db'}")


@pytest.fixture
def store(db: Engine) -> Store:
    return Store(db)


def engine_config(tmp_path: Path, server: ModelServer, **overrides: object) -> EngineConfig:
    values: dict[str, object] = {
        "projects_dir": tmp_path / "projects",
        "homes_dir": tmp_path / "homes",
        "model_env": {
            "ANTHROPIC_BASE_URL": server.base_url,
            "ANTHROPIC_API_KEY": "test-key",
            "CLAUDE_CODE_MAX_RETRIES": "0",  # a scripted 529 fails at once instead of backing off
        },
        "default_model": "claude-sonnet-4-5",
        "reap_interval_s": 3600.0,
    }
    values.update(overrides)
    return EngineConfig(**values)  # type: ignore[arg-type]


@pytest.fixture
async def engine(
    tmp_path: Path, store: Store, model_server: ModelServer
) -> AsyncIterator[AgentEngine]:
    engine = AgentEngine(store, engine_config(tmp_path, model_server))
    await engine.start()
    yield engine
    await engine.shutdown()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests last: Playwright's sync API keeps an event loop running in the main thread
    while its session-wide browser is open, which async tests after it would trip over."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)
