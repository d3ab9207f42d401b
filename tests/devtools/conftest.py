"""Fixtures for running the scripted model server and the real Claude Code CLI against it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.devtools.model_server import ModelServer
from app.devtools.scenario import SCENARIOS_DIR, Scenario, load_scenario


@pytest.fixture(scope="session")
def test_scenario() -> Scenario:
    return load_scenario(SCENARIOS_DIR / "test.json")


@pytest.fixture
def model_server(test_scenario: Scenario) -> Iterator[ModelServer]:
    server = ModelServer(test_scenario)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def cli_env(model_server: ModelServer, tmp_path: Path) -> dict[str, str]:
    """Environment for an offline CLI that talks only to `model_server`.

    HOME and CLAUDE_CONFIG_DIR point into tmp_path so the CLI never reads or writes the real
    home; IS_SANDBOX=1 lets bypassPermissions run when the tests run as root (containers).
    """
    home, config = tmp_path / "home", tmp_path / "claude-config"
    home.mkdir()
    config.mkdir()
    return {
        "ANTHROPIC_BASE_URL": model_server.base_url,
        "ANTHROPIC_API_KEY": "test",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1",
        "CLAUDE_CODE_MAX_RETRIES": "0",
        "IS_SANDBOX": "1",
        "HOME": str(home),
        "CLAUDE_CONFIG_DIR": str(config),
    }
