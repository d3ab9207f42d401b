"""Fork from a turn and rewind files over HTTP: validated, in OpenAPI, the user's own only."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.api.conftest import Api


def prompts(http: httpx.Client, session_id: str) -> list[str]:
    history = http.get(f"/sessions/{session_id}/history").json()
    return [m["uuid"] for m in history["messages"] if m["role"] == "user" and "text" in m]


def test_rewind_and_fork_routes(api: Api, tmp_path: Path) -> None:
    ann, bob = api.sign_up("ann@example.com"), api.sign_up("bob@example.com")
    with api.client(ann) as http:
        created = http.post("/sessions", json={"permission_mode": "acceptEdits"}).json()
        session_id = created["session_id"]
        for prompt in ("write notes.txt", "write other.txt"):
            answer = http.post(f"/sessions/{session_id}/messages", json={"message": prompt})
            assert answer.status_code == 200, answer.text
        first, second = prompts(http, session_id)
        folder = next(tmp_path.glob(f"projects/*/{created['project_id']}"))

        preview = http.get(f"/sessions/{session_id}/rewind-preview", params={"at": second})
        assert preview.status_code == 200, preview.text
        assert preview.json()["files"] == ["other.txt"] and (folder / "other.txt").exists()
        bad = http.get(f"/sessions/{session_id}/rewind-preview", params={"at": "no such/turn"})
        assert bad.status_code == 422
        done = http.post(f"/sessions/{session_id}/rewind", json={"at": second})
        assert done.status_code == 200 and done.json()["applied"], done.text
        assert not (folder / "other.txt").exists() and (folder / "notes.txt").exists()

        fork = http.post(f"/sessions/{session_id}/fork", json={"at": first})
        assert fork.status_code == 201, fork.text
        assert len(prompts(http, fork.json()["session_id"])) == 1
        whole = http.post(f"/sessions/{session_id}/fork")
        assert whole.status_code == 201 and whole.json()["forked_from"] == session_id

        paths = http.get("/openapi.json").json()["paths"]
        assert {"/sessions/{session_id}/rewind-preview", "/sessions/{session_id}/rewind"} <= set(
            paths
        )

    with api.client(bob) as http:
        assert http.post(f"/sessions/{session_id}/rewind", json={"at": first}).status_code == 404
        preview = http.get(f"/sessions/{session_id}/rewind-preview", params={"at": first})
        assert preview.status_code == 404
        assert http.post(f"/sessions/{session_id}/fork", json={"at": first}).status_code == 404
