"""A user's own stdio MCP server attacks from inside: it runs the user's code, started by their
agent's CLI in the agent's jail, so it gets the agent's walls and no more.

The real app with the sandbox on, two users. Ann's project, the app's signing key, its
upstream model key and another process's environment hold canaries; loopback PostgreSQL
listens. Bob adds tests/devtools/probe_mcp_server.py as an MCP server through the API, as a
user would, and his agent calls its tool: every probe fails and no canary shows, while the
server still answers and writes in Bob's own project, as Bob's sandbox user.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.devtools.model_server import ModelServer
from tests.api.conftest import serve_api, settings_env

CANARY = f"canary{secrets.token_hex(6)}"
PROBE = Path(__file__).resolve().parents[1] / "devtools" / "probe_mcp_server.py"
POSTGRES = ("127.0.0.1", 5432)


@pytest.fixture(scope="module")
def postgres() -> Iterator[None]:
    """Something listening on loopback PostgreSQL's port, as on a host that runs it: the real
    server if there is one, else a stand-in for the length of these tests."""
    try:
        socket.create_connection(POSTGRES, timeout=2).close()
        yield
        return
    except OSError:
        pass
    listener = socket.create_server(POSTGRES)
    threading.Thread(target=lambda: listener.accept(), daemon=True).start()
    try:
        yield
    finally:
        listener.close()


@pytest.fixture(scope="module")
def probed(
    tmp_path_factory: pytest.TempPathFactory, model_server: ModelServer, postgres: None
) -> Iterator[tuple[str, Path]]:
    """What Bob's probe server answered, and Bob's project folder."""
    data = tmp_path_factory.mktemp("data")
    (data / "secret.key").write_text(f"{CANARY}-signing-key-{'x' * 32}")
    app_process = subprocess.Popen(
        ["sleep", "600"], env={**os.environ, "AW_TEST_CANARY": f"{CANARY}-app-environment"}
    )
    env = settings_env(data, model_server, ANTHROPIC_API_KEY=f"{CANARY}-upstream-model-key")
    try:
        with serve_api(env) as api:
            engine = api.services.engine
            with api.client(api.sign_up("ann@example.com")) as http:
                ann = http.get("/auth/me").json()["user_id"]
                project = http.post("/projects", json={"name": "private"}).json()["project_id"]
                ann_project = engine.project_dir(ann, project)
                ann_project.mkdir(parents=True, exist_ok=True)
                (ann_project / "secret.txt").write_text(f"{CANARY}-ann-project\n")
            with api.client(api.sign_up("bob@example.com")) as http:
                bob = http.get("/auth/me").json()["user_id"]
                project = http.post("/projects", json={"name": "tools"}).json()["project_id"]
                bob_project = engine.project_dir(bob, project)
                bob_project.mkdir(parents=True, exist_ok=True)
                shutil.copy(PROBE, bob_project / "probe.py")
                spec = {
                    "name": "notes",  # the scripted model's "use notes ..." calls mcp__notes__add
                    "project_id": project,
                    "type": "stdio",
                    "command": "python3",
                    "args": ["probe.py"],
                }
                added = http.post("/mcp-servers", json=spec)
                assert added.status_code == 201, added.text
                session = http.post(
                    "/sessions",
                    json={
                        "project_id": project,
                        "mcp_server_ids": [added.json()["id"]],
                        "permission_mode": "bypassPermissions",
                    },
                ).json()["session_id"]
                probes = [
                    f"read:{data}/secret.key",
                    "read:/proc/1/environ",
                    f"read:/proc/{app_process.pid}/environ",
                    f"read:/proc/{os.getpid()}/environ",
                    f"read:{ann_project}/secret.txt",
                    f"read:{data}/app.db",
                    f"connect:{POSTGRES[0]}:{POSTGRES[1]}",
                    "environ",
                    "write:probe.txt",
                ]
                answer = http.post(
                    f"/sessions/{session}/messages",
                    json={"message": "use notes " + " ".join(probes)},
                    timeout=120,
                )
                assert answer.status_code == 200, answer.text
                yield answer.text, bob_project
    finally:
        app_process.kill()


def _said(text: str, probe: str) -> str:
    """What the probe server said about one probe (the first time its answer is quoted)."""
    found = re.search(r"(?<![\w/:.])" + re.escape(probe) + r" -> ([^|\\\"]*)", text)
    assert found is not None, f"no answer for {probe}: {text[:2000]}"
    return found[1].strip()


def test_a_users_mcp_server_cannot_read_or_reach_what_is_not_theirs(
    probed: tuple[str, Path],
) -> None:
    text, _project = probed
    assert CANARY not in text
    reads = dict(re.findall(r"read:(\S+) -> ([^|\\\"]*)", text))
    assert len(reads) == 6, text[:2000]
    for path, said in reads.items():
        if path == "/proc/1/environ":  # the jail's own first process, not the app's
            assert said.startswith("PermissionError"), said
        else:  # the app's files, other processes, Ann's project: not even there
            assert said.startswith("FileNotFoundError"), (path, said)
    assert _said(text, "connect:127.0.0.1:5432").startswith(
        ("ConnectionRefusedError", "OSError", "TimeoutError")
    )
    assert _said(text, "environ") == "clean"


def test_the_mcp_server_still_works_as_the_users_sandbox_user(probed: tuple[str, Path]) -> None:
    text, project = probed
    assert _said(text, "write:probe.txt") == "WROTE"
    assert (project / "probe.txt").read_text() == "written by the probe\n"
    found = re.search(r"uid (\d+)", text)
    assert found is not None and int(found[1]) >= 200_000  # Bob's sandbox uid, not the app's
