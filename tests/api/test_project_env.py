"""A project's environment variables: set over the API, seen by the project's agents in their
sandbox, and found nowhere else (database bytes, data folder, logs, answers, transcripts)."""

from __future__ import annotations

import hashlib
import logging
import secrets
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.devtools.model_server import ModelServer
from tests.api.conftest import Api, agent_bash, serve_api, settings_env

NAME = "PROJECT_TOKEN"


def _session(http: httpx.Client, project_id: str) -> str:
    body = {"project_id": project_id, "permission_mode": "bypassPermissions"}
    response = http.post("/sessions", json=body)
    assert response.status_code in (200, 201), response.text
    return str(response.json()["session_id"])


def _project(http: httpx.Client, name: str = "envy") -> dict[str, Any]:
    response = http.post("/projects", json={"name": name})
    assert response.status_code == 201, response.text
    return dict(response.json())


def _files_holding(root: Path, needle: bytes, *, skip: Path) -> list[Path]:
    return [
        path
        for path in root.rglob("*")
        if path.is_file() and skip not in path.parents and needle in path.read_bytes()
    ]


def test_project_env_reaches_the_agent_and_nothing_else(
    tmp_path: Path,
    model_server: ModelServer,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    canary = f"canary{secrets.token_hex(12)}"
    digest = hashlib.sha256(canary.encode()).hexdigest()
    with serve_api(settings_env(tmp_path, model_server)) as api:
        token = api.sign_up("env@example.com")
        with api.client(token) as http:
            project = _project(http)
            base = f"/projects/{project['project_id']}/env"
            assert http.put(f"{base}/{NAME}", json={"value": canary}).status_code == 204
            listed = http.get(base)
            assert listed.status_code == 200
            assert [v["name"] for v in listed.json()["variables"]] == [NAME]
            assert canary not in listed.text

            session = _session(http, project["project_id"])
            # Proves the value is there without printing it (the transcript keeps the output).
            seen = agent_bash(http, session, f'printf %s "${NAME}" | sha256sum')
            assert digest in seen

            history = http.get(f"/sessions/{session}/history")
            assert canary not in history.text

            # Deleted: an agent started afterwards no longer has it.
            assert http.delete(f"{base}/{NAME}").status_code == 204
            assert http.delete(f"{base}/{NAME}").status_code == 404
            assert http.get(base).json()["variables"] == []
            later = agent_bash(
                http, _session(http, project["project_id"]), f"echo ${{{NAME}-unset}}"
            )
            assert "unset" in later

        projects = tmp_path / "projects"
        needle = canary.encode()
        assert _files_holding(tmp_path, needle, skip=projects) == []
        transcripts = list((tmp_path / "homes").rglob("*.jsonl"))
        assert transcripts, "the sessions left transcripts"
        assert any(digest in p.read_text() for p in transcripts)
    assert _files_holding(tmp_path, needle, skip=projects) == []
    assert canary not in caplog.text
    captured = capfd.readouterr()
    assert canary not in captured.out + captured.err


def test_project_env_refuses_reserved_names_and_bad_values(api: Api) -> None:
    token = api.sign_up("rules@example.com")
    with api.client(token) as http:
        base = f"/projects/{_project(http)['project_id']}/env"
        for name in (
            "PATH",
            "HOME",
            "HTTPS_PROXY",
            "http_proxy",
            "ANTHROPIC_API_KEY",
            "LD_PRELOAD",
        ):
            response = http.put(f"{base}/{name}", json={"value": "x"})
            assert response.status_code == 400, (name, response.text)
            assert "set by the sandbox" in response.json()["detail"]
        bad = http.put(f"{base}/1BAD", json={"value": "x"})
        assert bad.status_code == 400 and "letters, digits" in bad.json()["detail"]
        secret = f"nul{secrets.token_hex(4)}"
        nul = http.put(f"{base}/OK_NAME", json={"value": f"{secret}\x00tail"})
        assert nul.status_code == 400 and "NUL" in nul.json()["detail"]
        assert secret not in nul.text
        big = http.put(f"{base}/OK_NAME", json={"value": "x" * (32 * 1024 + 1)})
        assert big.status_code == 400 and "32 KB" in big.json()["detail"]
        assert http.put(f"{base}/OK_NAME", json={"value": "x" * 32 * 1024}).status_code == 204
        assert http.put(f"{base}/OK_NAME", json={"value": "replaced"}).status_code == 204
        assert [v["name"] for v in http.get(base).json()["variables"]] == ["OK_NAME"]


def test_project_env_is_scoped_to_its_user(api: Api) -> None:
    ann = api.sign_up("ann@example.com")
    bob = api.sign_up("bob@example.com")
    with api.client(ann) as http:
        base = f"/projects/{_project(http)['project_id']}/env"
        assert http.put(f"{base}/SHARED", json={"value": "ann's"}).status_code == 204
    with api.client(bob) as http:
        assert http.get(base).status_code == 404
        assert http.put(f"{base}/SHARED", json={"value": "bob's"}).status_code == 404
        assert http.delete(f"{base}/SHARED").status_code == 404
    with api.client(ann) as http:
        assert [v["name"] for v in http.get(base).json()["variables"]] == ["SHARED"]


def test_project_env_routes_are_in_openapi(api: Api) -> None:
    with api.client() as http:
        paths = http.get("/openapi.json").json()["paths"]
    assert set(paths["/projects/{project_id}/env"]) == {"get"}
    assert set(paths["/projects/{project_id}/env/{name}"]) == {"put", "delete"}
