"""Where no jail can be built, no agent starts, and the API says why and what to install;
AGENT_SANDBOX=off runs agents unconfined, with a warning that never goes away."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.agent.schemas import NewSession
from app.db.store import Store
from app.devtools.model_server import ModelServer
from app.sandbox.service import SandboxConfig, SandboxUnavailable
from tests.agent.helpers import Follower
from tests.api.conftest import serve_api, settings_env
from tests.conftest import ensure_user, new_engine


async def test_a_missing_bubblewrap_stops_every_agent(
    tmp_path: Path, store: Store, model_server: ModelServer
) -> None:
    engine = new_engine(
        tmp_path, store, model_server, sandbox=SandboxConfig(bwrap="/nonexistent/bwrap")
    )
    await engine.start()
    try:
        assert engine.sandbox.problem is not None
        assert "apt-get install bubblewrap socat" in engine.sandbox.problem
        user_id = ensure_user(store, "ann@example.com").id
        with pytest.raises(SandboxUnavailable, match="/nonexistent/bwrap"):
            await engine.create(user_id, NewSession())
        _, total = store.list_sessions(user_id=user_id)
        assert total == 0, "a refused start leaves no half-made session behind"
        assert engine.pool.count() == 0
    finally:
        await engine.shutdown()


def test_the_api_says_why_no_agent_starts(tmp_path: Path, model_server: ModelServer) -> None:
    env = settings_env(tmp_path, model_server)
    with serve_api(env) as api:
        api.services.sandbox.problem = "The agent sandbox needs socat: install it."
        token = api.sign_up("ann@example.com")
        with api.client(token) as http:
            refused = http.post("/sessions", json={})
            assert refused.status_code == 503
            assert refused.json() == {
                "detail": "The agent sandbox needs socat: install it.",
                "code": "sandbox_unavailable",
            }
            health = http.get("/health").json()
    assert health["status"] == "degraded"
    assert health["sandbox"]["ready"] is False
    assert "socat" in health["sandbox"]["problem"]


def test_sandbox_off_runs_agents_with_a_standing_warning(
    tmp_path: Path, model_server: ModelServer
) -> None:
    env = settings_env(tmp_path, model_server, AGENT_SANDBOX="off")
    with serve_api(env) as api:
        token = api.sign_up("ann@example.com")
        with api.client(token) as http:
            health = http.get("/health").json()
            session = http.post("/sessions", json={"permission_mode": "bypassPermissions"})
            session_id = session.json()["session_id"]
            answer = http.post(f"/sessions/{session_id}/messages", json={"message": "run bash env"})
    assert health["sandbox"] == {
        "enabled": False,
        "ready": True,
        "problem": None,
        "warning": health["sandbox"]["warning"],
    }
    assert "AGENT_SANDBOX=off" in health["sandbox"]["warning"]
    output = next(m for m in answer.json()["messages"] if m["type"] == "user_message")
    text = output["content"][0]["content"]
    assert "ANTHROPIC_BASE_URL=http://127.0.0.1:" in text, "still through the relay"
    assert "test-key" not in text, "the upstream key stays in the app even then"


async def test_a_sessions_token_dies_with_its_agent(
    tmp_path: Path, store: Store, model_server: ModelServer
) -> None:
    engine = new_engine(tmp_path, store, model_server)
    await engine.start()
    try:
        user_id = ensure_user(store, "ann@example.com").id
        session = await engine.create(user_id, NewSession())
        door = engine.sandbox.gateway.door(session.session_id)
        assert door is not None and door.socket_path is not None and door.socket_path.exists()
        follow = await Follower.start(engine, user_id, session.session_id)
        await engine.close(user_id, session.session_id)
        await follow.until(lambda e: e.type == "status" and e.data.get("live") is False)
        assert engine.sandbox.gateway.door(session.session_id) is None
        assert not door.socket_path.exists()
    finally:
        await engine.shutdown()
