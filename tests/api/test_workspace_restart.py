"""Restart workspace over HTTP: every agent and terminal of the user's stops, the files and
conversations stay (the next message resumes the session), and nobody else's agents are
touched."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.devtools.model_server import ModelServer
from tests.api.conftest import Api, serve_api, settings_env


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, model_server: ModelServer) -> Iterator[Api]:
    with serve_api(settings_env(tmp_path_factory.mktemp("restart"), model_server)) as running:
        yield running


def test_restart_stops_agents_and_terminals_and_keeps_the_work(app: Api) -> None:
    ruth, other = app.sign_up("ruth@example.com"), app.sign_up("olaf@example.com")
    with app.client(other) as http:
        theirs = http.post("/sessions", json={}).json()["session_id"]
        assert http.post(f"/sessions/{theirs}/messages", json={"message": "echo hi"}).is_success
    with app.client(ruth) as http:
        session = http.post("/sessions", json={"permission_mode": "bypassPermissions"}).json()
        sid, project_id = session["session_id"], session["project_id"]
        said = http.post(f"/sessions/{sid}/messages", json={"message": "run bash echo kept > k"})
        assert said.status_code == 200, said.text
        assert http.post(f"/projects/{project_id}/terminal", json={}).status_code == 200
        assert http.get(f"/sessions/{sid}").json()["live"] is True

        restarted = http.post("/workspace/restart")
        assert restarted.status_code == 200, restarted.text
        assert restarted.json() == {"stopped_sessions": [sid], "closed_terminals": 1}
        assert http.get(f"/sessions/{sid}").json()["live"] is False
        assert http.get(f"/projects/{project_id}/terminal/output").status_code == 404
        user_id = http.get("/auth/me").json()["user_id"]
        assert (app.services.engine.project_dir(user_id, project_id) / "k").read_text() == "kept\n"

        # The conversation goes on: the agent starts again with what was said.
        again = http.post(f"/sessions/{sid}/messages", json={"message": "echo back again"})
        assert again.status_code == 200, again.text
        texts = [m["content"] for m in again.json()["messages"] if m["type"] == "text"]
        assert texts == ["You said: back again"]
        history = http.get(f"/sessions/{sid}/history").json()["messages"]
        assert any("run bash echo kept" in str(m) for m in history)
    with app.client(other) as http:
        assert http.get(f"/sessions/{theirs}").json()["live"] is True  # not Ruth's to stop
    with app.client() as anonymous:
        assert anonymous.post("/workspace/restart").status_code == 401
