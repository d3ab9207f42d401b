"""A project's terminal over HTTP and through `/invocations` (the sandbox on): open it, type,
read the output by offset with a wait, resize, see how it ended, close it; someone else's
project has no terminal for them; bad sizes and inputs are clear 4xx errors. (Attacks from
inside the terminal are in tests/sandbox/test_escapes.py.)"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from app.devtools.model_server import ModelServer
from tests.api.conftest import Api, serve_api, settings_env


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, model_server: ModelServer) -> Iterator[Api]:
    with serve_api(settings_env(tmp_path_factory.mktemp("terminal"), model_server)) as running:
        yield running


def until(http: httpx.Client, base: str, since: int, text: str) -> tuple[str, dict[str, Any]]:
    """Read the terminal's output from `since` until `text` shows (or it ends)."""
    seen, piece = "", {}
    for _ in range(20):
        piece = http.get(f"{base}/output", params={"since": since, "wait": 5}).json()
        seen, since = seen + piece["data"], piece["end"]
        if text in seen or not piece["running"]:
            break
    return seen, piece


def test_a_terminal_over_http_and_invocations(app: Api) -> None:
    token = app.sign_up("tess@example.com")
    with app.client(token) as http:
        project_id = http.post("/projects", json={"name": "shell"}).json()["project_id"]
        base = f"/projects/{project_id}/terminal"
        assert http.get(f"{base}/output").status_code == 404  # none open yet
        opened = http.post(base, json={"cols": 120, "rows": 40})
        assert opened.status_code == 200, opened.text
        assert opened.json()["running"] is True
        again = http.post(base, json={"cols": 120, "rows": 40}).json()
        assert again["start"] == 0  # the same terminal, not a second one

        mark = secrets.token_hex(4)
        typed = {"data": f"echo made-{mark} > t.txt; stty size; cat t.txt\r"}
        assert http.post(f"{base}/input", json=typed).status_code == 204
        seen, piece = until(http, base, 0, f"\nmade-{mark}")
        assert "40 120" in seen and f"made-{mark}" in seen
        folder = app.services.engine.project_dir(http.get("/auth/me").json()["user_id"], project_id)
        assert (folder / "t.txt").read_text() == f"made-{mark}\n"

        assert http.post(f"{base}/resize", json={"cols": 90, "rows": 20}).status_code == 204
        http.post(f"{base}/input", json={"data": "stty size\r"})
        seen, _ = until(http, base, piece["end"], "20 90")
        assert "20 90" in seen

        # A wait with nothing new comes back empty after the wait, at the same offset.
        quiet = http.get(f"{base}/output", params={"since": 10**9, "wait": 0.2}).json()
        assert quiet["data"] == "" and quiet["running"] is True

        # The same through AgentCore's one entry point.
        invoked = http.post(
            "/invocations",
            json={
                "path": "/projects/{project_id}/terminal/input",
                "path_params": {"project_id": project_id},
                "payload": {"data": "exit 7\r"},
            },
        )
        assert invoked.status_code == 204, invoked.text
        _, last = until(http, base, 0, "\0never")
        assert last["running"] is False and last["exit_code"] == 7
        refused = http.post(f"{base}/input", json={"data": "echo more\r"})
        assert refused.status_code == 404 and "ended" in refused.text

        # Bad input: clear 4xx, nothing opened or typed.
        for size in ({"cols": 0, "rows": 10}, {"cols": 10, "rows": 100_000}, {"cols": "x"}):
            assert http.post(base, json=size).status_code == 422, size
        assert http.post(f"{base}/input", json={"data": ""}).status_code == 422
        assert http.get(f"{base}/output", params={"since": -1}).status_code == 422
        assert http.post("/projects/bad id!/terminal", json={}).status_code == 422

        assert http.delete(base).status_code == 204
        assert http.get(f"{base}/output").status_code == 404

    # Someone else never reaches it, nor opens one in that project.
    other = app.sign_up("ozzy@example.com")
    with app.client(other) as http:
        assert http.post(base, json={}).status_code == 404
        assert http.get(f"{base}/output").status_code == 404
        assert http.post(f"{base}/input", json={"data": "id\r"}).status_code == 404
    with app.client() as anonymous:
        assert anonymous.post(base, json={}).status_code == 401
