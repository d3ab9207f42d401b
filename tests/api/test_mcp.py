"""The user's MCP servers over HTTP, with the sandbox on: add a stdio server, test it (started
in the user's jail, its tools listed), start a session that uses it (the seed's
`mcp_server_ids`): the agent's call of its tool asks for approval, runs the server inside the
jail (as the user's own unprivileged uid) and answers. Remote servers must be on the egress
allowlist and their header values are never shown again; other users see nothing of it. Testing
a remote server (a real MCP server over streamable HTTP and SSE) goes through the same egress
rules: loopback is refused unless the admin lists the address (AGENT_ALLOWED_HOSTS)."""

from __future__ import annotations

import asyncio
import http.server
import ipaddress
import json
import re
import shutil
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from mcp.server.mcpserver import MCPServer
from starlette.types import ASGIApp

from app.devtools.model_server import ModelServer
from app.sandbox.policy import EgressPolicy, IPAddress, Refused
from tests.api.conftest import Api, serve_api, settings_env
from tests.api.test_sessions import stream_turn

SERVER = Path(__file__).resolve().parents[1] / "devtools" / "notes_mcp_server.py"


@dataclass
class Remote:
    """Remote MCP servers on 127.0.0.2 (a loopback address: only an admin can allow it)."""

    http_port: int
    sse_port: int
    plain_port: int  # answers JSON, but not MCP; remembers the headers it was sent
    closed_port: int  # nothing listens
    seen: list[dict[str, str]] = field(default_factory=list)

    def allowlist(self) -> str:
        ports = (self.http_port, self.sse_port, self.plain_port, self.closed_port)
        return ",".join(["default", *(f"127.0.0.2:{port}" for port in ports)])


@pytest.fixture(scope="module")
def remote() -> Iterator[Remote]:
    docs = MCPServer("docs")

    @docs.tool()
    def search(query: str) -> str:
        """Search the docs."""
        return f"found {query}"

    seen: list[dict[str, str]] = []
    servers = [
        _serve(docs.streamable_http_app(host="127.0.0.2")),
        _serve(docs.sse_app(host="127.0.0.2")),
    ]
    plain = http.server.ThreadingHTTPServer(("127.0.0.2", 0), _plain_handler(seen))
    threading.Thread(target=plain.serve_forever, daemon=True).start()
    closed = socket.socket()
    closed.bind(("127.0.0.2", 0))
    closed_port = int(closed.getsockname()[1])
    closed.close()
    try:
        yield Remote(servers[0][0], servers[1][0], int(plain.server_address[1]), closed_port, seen)
    finally:
        plain.shutdown()
        for _port, server in servers:
            server.should_exit = True


def _serve(app: ASGIApp) -> tuple[int, uvicorn.Server]:
    listening = socket.socket()
    listening.bind(("127.0.0.2", 0))
    listening.listen()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    serve = server.serve(sockets=[listening])
    threading.Thread(target=asyncio.run, args=(serve,), daemon=True).start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    return int(listening.getsockname()[1]), server


def _plain_handler(seen: list[dict[str, str]]) -> type[http.server.BaseHTTPRequestHandler]:
    class Plain(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            seen.append(dict(self.headers.items()))
            if self.path.startswith("/redirect"):  # to loopback PostgreSQL: not followed
                self.send_response(307)
                self.send_header("location", "http://127.0.0.1:5432/")
                self.send_header("content-length", "0")
                self.end_headers()
                return
            body = json.dumps({"hello": "world"}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:
            pass

    return Plain


@pytest.fixture(scope="module")
def app(
    tmp_path_factory: pytest.TempPathFactory, model_server: ModelServer, remote: Remote
) -> Iterator[Api]:
    env = settings_env(
        tmp_path_factory.mktemp("mcp"), model_server, AGENT_ALLOWED_HOSTS=remote.allowlist()
    )
    with serve_api(env) as running:
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
        mine = asyncio.run(gateway.policy_for(user_id))
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


def test_testing_a_remote_server_goes_through_the_egress_rules(app: Api, remote: Remote) -> None:
    token = app.sign_up("remy@example.com")
    with app.client(token) as http:

        def tested(name: str, kind: str, url: str, **extra: Any) -> tuple[int, Any]:
            spec = {"name": name, "type": kind, "url": url, **extra}
            added = http.post("/mcp-servers", json=spec)
            assert added.status_code == 201, added.text
            answer = http.post(f"/mcp-servers/{added.json()['id']}/test", timeout=60)
            return answer.status_code, answer.json()

        # Real MCP servers, on an address the admin allows: their tools.
        base = "http://127.0.0.2"
        found = {"server": "docs", "tools": ["search"]}
        assert tested("docs", "http", f"{base}:{remote.http_port}/mcp") == (200, found)
        assert tested("docs-sse", "sse", f"{base}:{remote.sse_port}/sse") == (200, found)

        # A name that resolves to loopback is saved (a public name may say anything), but the
        # app refuses to connect to it, as the agents' proxy would.
        status, body = tested("sneaky", "http", f"http://localhost.:{remote.http_port}/mcp")
        assert status == 400
        assert body["detail"].startswith("Refused: ")
        assert "127.0.0.1, a loopback address" in body["detail"]

        status, body = tested("gone", "http", f"{base}:{remote.closed_port}/mcp")
        assert status == 400 and body["detail"].startswith(
            f"Could not connect to 127.0.0.2:{remote.closed_port}"
        )
        status, body = tested("lost", "http", f"{base}:{remote.http_port}/nowhere")
        assert (status, body["detail"]) == (
            400,
            "The server answered HTTP 404: not an MCP endpoint?",
        )
        secret = {"Authorization": "Bearer sk-plain-canary"}
        plain = f"{base}:{remote.plain_port}/mcp"
        status, body = tested("plain", "http", plain, headers=secret)
        assert (status, body["detail"]) == (
            400,
            "The server's answer is not MCP: it did not answer in JSON-RPC",
        )
        assert remote.seen[-1]["Authorization"] == "Bearer sk-plain-canary"
        assert remote.seen[-1]["Host"] == f"127.0.0.2:{remote.plain_port}"
        status, body = tested("moved", "http", f"{base}:{remote.plain_port}/redirect")
        assert (status, body["detail"]) == (
            400,
            "The server answered HTTP 307: not an MCP endpoint?",
        )

        # Edit it without its header: the stored value stays (write-only), unseen.
        server_id = next(s["id"] for s in http.get("/mcp-servers").json() if s["name"] == "plain")
        edited = {"name": "plain2", "type": "http", "url": plain + "?v=2"}
        replaced = http.put(f"/mcp-servers/{server_id}", json=edited)
        assert replaced.status_code == 200, replaced.text
        assert replaced.json()["header_names"] == ["Authorization"]
        assert "sk-plain-canary" not in replaced.text
        assert http.post(f"/mcp-servers/{server_id}/test").status_code == 400
        assert remote.seen[-1]["Authorization"] == "Bearer sk-plain-canary"
        cleared = http.put(f"/mcp-servers/{server_id}", json={**edited, "headers": {}})
        assert cleared.json()["header_names"] == []
        http.post(f"/mcp-servers/{server_id}/test")
        assert "Authorization" not in remote.seen[-1]

    # Another user can neither edit nor test it.
    with app.client(app.sign_up("remo@example.com")) as http:
        assert http.put(f"/mcp-servers/{server_id}", json=edited).status_code == 404
        assert http.post(f"/mcp-servers/{server_id}/test").status_code == 404
