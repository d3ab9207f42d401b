"""The user's MCP servers over HTTP, with the sandbox on: add a stdio server, test it (started
in the user's jail, its tools listed), start a session that uses it (the seed's
`mcp_server_ids`): the agent's call of its tool asks for approval, runs the server inside the
jail (as the user's own unprivileged uid) and answers. Remote servers must be on the egress
allowlist and their header values are never shown again; other users see nothing of it."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import shutil
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from app.devtools.model_server import ModelServer
from app.sandbox.policy import EgressPolicy, IPAddress, Refused
from tests.api.conftest import Api, serve_api, settings_env
from tests.api.test_sessions import stream_turn

SERVER = Path(__file__).resolve().parents[1] / "devtools" / "notes_mcp_server.py"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, model_server: ModelServer) -> Iterator[Api]:
    with serve_api(settings_env(tmp_path_factory.mktemp("mcp"), model_server)) as running:
        yield running


def test_a_stdio_server_runs_in_the_jail_and_its_tool_asks_first(app: Api) -> None:
    token = app.sign_up("mia@example.com")
    with app.client(token) as http:
        project_id = http.post("/projects", json={"name": "notes"}).json()["project_id"]
        user_id = http.get("/auth/me").json()["user_id"]
        folder = app.services.engine.project_dir(user_id, project_id)
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(SERVER, folder / "notes_server.py")
        spec = {
            "name": "notes",
            "project_id": project_id,
            "type": "stdio",
            "command": "python3",
            "args": ["notes_server.py"],
        }
        added = http.post("/mcp-servers", json=spec)
        assert added.status_code == 201, added.text
        server_id = added.json()["id"]
        assert http.post("/mcp-servers", json=spec).status_code == 409  # the same name twice

        tested = http.post(f"/mcp-servers/{server_id}/test")
        assert tested.status_code == 200, tested.text
        assert tested.json() == {"server": "notes", "tools": ["add"]}

        created = http.post(
            "/sessions", json={"project_id": project_id, "mcp_server_ids": [server_id]}
        )
        assert created.status_code == 201, created.text
        session_id = created.json()["session_id"]
        asked: list[str] = []

        def allow(permission: dict[str, Any]) -> None:
            asked.append(permission["tool_name"])
            with app.client(token) as other:
                answer = {"request_id": permission["request_id"], "allowed": True}
                other.post(f"/sessions/{session_id}/permissions/respond", json=answer)

        frames = stream_turn(
            http, f"/sessions/{session_id}/messages/stream", {"message": "use notes hello"}, allow
        )
        assert asked == ["mcp__notes__add"]
        said = next(str(f) for f in frames if f["type"] == "text" and "Notes said" in str(f))
        found = re.search(r"noted hello as uid (\d+)", said)
        assert found is not None, said
        uid = int(found[1])
        assert uid >= 200_000  # the user's own sandbox uid, not the app's
        assert (folder / "notes.txt").read_text() == "hello\n"

    # Another user: nothing to see, use, test or delete.
    other = app.sign_up("max@example.com")
    with app.client(other) as http:
        assert http.get("/mcp-servers").json() == []
        assert http.post(f"/mcp-servers/{server_id}/test").status_code == 404
        assert http.delete(f"/mcp-servers/{server_id}").status_code == 404
        taken = http.post("/sessions", json={"mcp_server_ids": [server_id]})
        assert taken.status_code == 404
    with app.client(token) as http:
        assert http.delete(f"/mcp-servers/{server_id}").status_code == 204
        assert http.get("/mcp-servers").json() == []


def test_remote_servers_join_their_users_allowlist_and_their_secrets_are_write_only(
    app: Api,
) -> None:
    token = app.sign_up("rhea@example.com")
    with app.client(token) as http:
        remote = {
            "name": "docs",
            "type": "http",
            "url": "https://mcp.example.com/mcp",
            "headers": {"Authorization": "Bearer sk-remote-canary"},
        }
        added = http.post("/mcp-servers", json=remote)
        assert added.status_code == 201, added.text
        assert added.json()["header_names"] == ["Authorization"]
        assert "sk-remote-canary" not in http.get("/mcp-servers").text
        db = Path(app.services.settings.data_dir) / "app.db"
        assert b"sk-remote-canary" not in db.read_bytes()

        # Its host joins the allowlist of this user's agents (public addresses only), and
        # nobody else's.
        user_id = http.get("/auth/me").json()["user_id"]
        gateway = app.services.engine.sandbox.gateway
        mine = asyncio.run(gateway._policy_for(user_id))
        assert mine.entry_for("mcp.example.com", 443) is not None
        assert mine.entry_for("mcp.example.com", 8443) is None
        assert gateway.policy.entry_for("mcp.example.com", 443) is None
        private = EgressPolicy(mine.entries, resolver=_resolves_to("10.1.2.3"))
        with pytest.raises(Refused, match="private"):
            asyncio.run(private.resolve("mcp.example.com", 443))

        for inside in (
            "http://169.254.169.254/latest",
            "http://127.0.0.1:8080/",
            "http://localhost/",
        ):
            refused = http.post("/mcp-servers", json={**remote, "name": "evil", "url": inside})
            assert refused.status_code == 400 and "not a public address" in refused.text
        for bad, status in (
            ({**remote, "name": "github"}, 400),  # the app's own tools
            ({**remote, "name": "Bad Name"}, 422),
            ({"name": "x", "type": "stdio"}, 400),  # no command
            (
                {"name": "y", "type": "stdio", "command": "sh", "url": "https://mcp.example.com"},
                400,
            ),
            ({**remote, "name": "z", "headers": {"X": "a\r\nInjected: yes"}}, 400),
        ):
            assert http.post("/mcp-servers", json=bad).status_code == status, bad


def _resolves_to(address: str) -> Callable[[str, int], Awaitable[list[IPAddress]]]:
    async def resolve(_host: str, _port: int) -> list[IPAddress]:
        return [ipaddress.ip_address(address)]

    return resolve
