"""Bad input gets a clear 4xx and changes nothing, on SQLite and on PostgreSQL (which refuses
NUL characters that SQLite would store)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.devtools.model_server import ModelServer
from tests.api.conftest import Api, serve_api, settings_env


@pytest.fixture
def api_on(database_url: str, tmp_path: Path, model_server: ModelServer) -> Iterator[Api]:
    env = settings_env(tmp_path, model_server)
    if not database_url.startswith("sqlite"):
        env["DATABASE_URL"] = database_url
    with serve_api(env) as api:
        yield api


NUL = "before\x00after"


def test_nul_characters_are_refused_everywhere_and_lock_nothing(api_on: Api) -> None:
    token = api_on.sign_up("ann@example.com")
    with api_on.client(token) as http:
        session_id = http.post("/sessions", json={}).json()["session_id"]
        refused = [
            http.post(f"/sessions/{session_id}/messages", json={"message": NUL}),
            http.post(f"/sessions/{session_id}/messages/stream", json={"message": NUL}),
            http.post("/sessions", json={"title": NUL}),
            http.patch(f"/sessions/{session_id}", json={"title": NUL}),
            http.get("/sessions/available", params={"search": NUL}),
            http.post(
                f"/sessions/{session_id}/permissions/respond",
                json={"request_id": NUL, "allowed": True},
            ),
            http.post("/projects", json={"name": NUL}),
        ]
        for response in refused:
            assert response.status_code == 422, (response.request.url, response.text)
        assert http.get(f"/sessions/{session_id}%00x").status_code == 404
        assert http.get(f"/sessions/{session_id}").json()["status"] == "idle"
        # The session is not left busy: the next message is answered.
        answer = http.post(f"/sessions/{session_id}/messages", json={"message": "echo fine"})
        assert answer.status_code == 200
        texts = [m["content"] for m in answer.json()["messages"] if m["type"] == "text"]
        assert texts == ["You said: fine"]
    with api_on.client() as anonymous:
        for path in ("/auth/local/token", "/auth/local/signup"):
            response = anonymous.post(
                path, json={"email": f"ann{NUL}@example.com", "password": NUL}
            )
            assert response.status_code == 422, response.text


def test_numbers_out_of_range_and_deep_nesting_are_4xx(api_on: Api) -> None:
    token = api_on.sign_up("ann@example.com")
    with api_on.client(token) as http:
        session_id = http.post("/sessions", json={}).json()["session_id"]
        for params in ({"offset": "1e20"}, {"offset": str(10**20)}, {"limit": "-1"}):
            assert http.get("/sessions/available", params=params).status_code == 422
        for before in ("1e24", str(10**24), "-5"):
            response = http.get(f"/sessions/{session_id}/history", params={"before": before})
            assert response.status_code == 422, before
        response = http.post(f"/sessions/{session_id}/events", headers={"Last-Event-ID": "9" * 40})
        assert response.status_code in (400, 405)
        nested = '{"path": "/sessions", "payload": ' + "[" * 100_000 + "]" * 100_000 + "}"
        for body in (nested, json.dumps({"path": "/sessions"})[:-1] + ', "x": ' + "[" * 5000):
            response = http.post(
                "/invocations", content=body, headers={"content-type": "application/json"}
            )
            assert response.status_code == 400, response.text[:200]
        direct = http.post(
            "/sessions", content="[" * 100_000, headers={"content-type": "application/json"}
        )
        assert 400 <= direct.status_code < 500


def test_a_session_naming_an_unknown_mcp_server_is_refused(api_on: Api) -> None:
    token = api_on.sign_up("ann@example.com")
    with api_on.client(token) as http:
        refused = http.post("/sessions", json={"mcp_server_ids": ["github"]})
        assert refused.status_code == 404
        assert "MCP server 'github'" in refused.json()["detail"]
        assert http.get("/sessions").json()["sessions"] == []  # nothing started
        assert http.post("/sessions", json={"mcp_server_ids": []}).status_code == 201


def test_a_lone_surrogate_is_refused_in_words_not_a_500(api: Api) -> None:
    """`"\\ud800"` is valid JSON but no UTF-8 can hold it: the refusal must not echo it back."""
    token = api.sign_up("surrogate@example.com")
    with api.client(token) as http:
        for path, body in (
            ("/projects", b'{"name": "\\ud800"}'),
            ("/sessions", b'{"title": "a\\udfffb"}'),
        ):
            answer = http.post(path, content=body, headers={"Content-Type": "application/json"})
            assert answer.status_code == 422, (path, answer.text)
            assert answer.json()["code"] == "invalid_input"
