"""MCP servers a user adds for their agents, for all their projects or one, chosen per session
(the seed's `mcp_server_ids` on `POST /sessions`).

A stdio server is started by the CLI, so it runs inside the agent's jail with the agent's walls
and reach: its command is one the jail has (`python3 server.py` in the project, `npx ...`
through the proxy). A remote server (SSE or streamable HTTP) is reached by the CLI through the
sandbox's proxy: adding it puts its host on the allowlist of the user's agents, for public
addresses only (a private one must be listed by an admin in AGENT_ALLOWED_HOSTS). Header
values (API keys of remote servers) are sealed at rest and never shown again; their tools ask
for approval like any other tool.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
from collections.abc import Sequence
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, field_validator

from app.agent.schemas import Ident
from app.db.models import AgentSession, McpServer
from app.db.store import Store
from app.errors import InvalidInput, NotFound
from app.github.vault import Vault
from app.sandbox.policy import EgressPolicy, Entry, parse_entry

Kind = Literal["stdio", "sse", "http"]
RESERVED = frozenset({"github"})  # the app's own tools (app/github/tools.py)
HEADER_NAME = r"^[A-Za-z0-9-]{1,100}$"
_BAD = re.compile(r"[\r\n\0]")


class McpServerSpec(BaseModel):
    """What the user gives for one server."""

    name: str = Field(..., pattern=r"^[a-z][a-z0-9_-]{0,31}$", description="its tools' prefix")
    project_id: Ident | None = Field(
        None, description="one project's only; none: all the user's projects"
    )
    type: Kind
    command: str | None = Field(None, min_length=1, max_length=1000, description="stdio")
    args: list[str] = Field(default_factory=list, max_length=50, description="stdio")
    url: str | None = Field(None, max_length=2000, description="sse or http")
    headers: dict[str, str] | None = Field(
        None,
        max_length=20,
        description="sse or http; write-only. Replacing a server: omitted keeps the stored "
        "values, {} removes them.",
    )

    @field_validator("args")
    @classmethod
    def _short_args(cls, args: list[str]) -> list[str]:
        if any(len(a) > 1000 or "\0" in a for a in args):
            raise ValueError("each argument is at most 1,000 characters, without NUL")
        return args


class McpServerView(BaseModel):
    """A server as the page and the API show it: header names, never their values."""

    id: str
    name: str
    project_id: str | None
    type: Kind
    command: str | None = None
    args: list[str] = []
    url: str | None = None
    header_names: list[str] = []


class McpServers:
    def __init__(self, store: Store, vault: Vault) -> None:
        self.store = store
        self.vault = vault
        # The admin's allowlist (AGENT_ALLOWED_HOSTS): a non-public server address is
        # accepted only when it names the address explicitly. Set by the engine.
        self.admin: EgressPolicy | None = None

    def of_user(self, user_id: str) -> list[McpServerView]:
        return [_view(row) for row in self.store.mcp_servers(user_id=user_id)]

    def save(
        self, user_id: str, spec: McpServerSpec, server_id: str | None = None
    ) -> McpServerView:
        """Add a server (or replace `server_id`, which must be the user's)."""
        if spec.name in RESERVED:
            raise InvalidInput(f"{spec.name!r} is the app's own tools' name; choose another.")
        if spec.project_id is not None:
            self.store.get_project(user_id=user_id, project_id=spec.project_id)  # or NotFound
        config = self._config(spec)
        row = McpServer(user_id=user_id, project_id=spec.project_id, name=spec.name, config_json="")
        if server_id is not None:
            old = json.loads(self._own(user_id, server_id).config_json)
            if spec.headers is None and config.get("url") and "headers_sealed" in old:
                config["headers_sealed"] = old["headers_sealed"]  # write-only: kept as sealed
            row.id = server_id
        row.config_json = json.dumps(config)
        return _view(self.store.save_mcp_server(row))

    def delete(self, user_id: str, server_id: str) -> None:
        self.store.delete_mcp_server(user_id=user_id, server_id=server_id)

    def check_choice(self, user_id: str, project_id: str, server_ids: Sequence[str]) -> list[str]:
        """The ids a new session asks for, each the user's and meant for that project."""
        mine = {row.id: row for row in self.store.mcp_servers(user_id=user_id)}
        for server_id in server_ids:
            row = mine.get(server_id)
            if row is None or row.project_id not in (None, project_id):
                raise NotFound(f"No MCP server {server_id!r} for this project.")
        return list(dict.fromkeys(server_ids))

    async def for_session(self, row: AgentSession) -> dict[str, Any]:
        """The SDK's `mcp_servers` entries of the servers the session chose."""
        chosen = set(json.loads(row.mcp_json or "[]"))
        configs = {}
        for server in self.store.mcp_servers(user_id=row.user_id):
            if server.id in chosen and server.project_id in (None, row.project_id):
                configs[server.name] = self._opened(json.loads(server.config_json))
        return configs

    def opened(self, user_id: str, server_id: str) -> tuple[McpServer, dict[str, Any]]:
        """One of the user's servers and its SDK config (header values opened)."""
        row = self._own(user_id, server_id)
        return row, self._opened(json.loads(row.config_json))

    def hosts_of(self, user_id: str) -> list[Entry]:
        """The hosts of the user's remote servers, which join the egress allowlist for their
        agents: public addresses only, like the built-in entries (a name that resolves to a
        private address is still refused)."""
        hosts = []
        for row in self.store.mcp_servers(user_id=user_id):
            url = json.loads(row.config_json).get("url")
            if url:
                try:
                    hosts.append(host_entry(url))
                except ValueError:
                    continue  # saved before names were checked: never reachable
        return hosts

    def _own(self, user_id: str, server_id: str) -> McpServer:
        for row in self.store.mcp_servers(user_id=user_id):
            if row.id == server_id:
                return row
        raise NotFound("No such MCP server.")

    def _config(self, spec: McpServerSpec) -> dict[str, Any]:
        if spec.type == "stdio":
            if not spec.command or spec.url or spec.headers:
                raise InvalidInput("A stdio server has a command (and arguments), no URL.")
            return {"type": "stdio", "command": spec.command, "args": spec.args}
        if not spec.url or spec.command or spec.args:
            raise InvalidInput(f"An {spec.type} server has a URL, no command.")
        try:
            parts = urlsplit(spec.url)
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:  # a bad port or a broken [v6] address
            raise InvalidInput("The server's URL is http:// or https:// with a host.") from None
        if parts.scheme not in ("http", "https") or not parts.hostname or not port:
            raise InvalidInput("The server's URL is http:// or https:// with a host.")
        try:
            address = ipaddress.ip_address(parts.hostname)
        except ValueError:
            address = None
        try:
            host_entry(spec.url)
        except ValueError:
            raise InvalidInput(f"{parts.hostname[:100]!r} is not a host name or address.") from None
        named = self.admin.entry_for(parts.hostname, port) if self.admin else None
        inside = parts.hostname == "localhost" or (address is not None and not address.is_global)
        if inside and not (named and named.explicit):
            raise InvalidInput(
                f"{parts.hostname} is not a public address: agents reach such servers only when "
                "an admin lists them in AGENT_ALLOWED_HOSTS."
            )
        headers = spec.headers or {}
        for name, value in headers.items():
            if not _valid_header(name, value):
                raise InvalidInput(f"Header {name[:100]!r}: a name of letters, digits and '-'.")
        sealed = {k: self.vault.seal(v) for k, v in headers.items()}
        return {"type": spec.type, "url": spec.url, "headers_sealed": sealed}

    def _opened(self, config: dict[str, Any]) -> dict[str, Any]:
        sealed = config.pop("headers_sealed", None)
        if sealed:
            config["headers"] = {k: self.vault.open(v) for k, v in sealed.items()}
        return config


def host_entry(url: str) -> Entry:
    """The allowlist entry of a server's host and port (ValueError if it has none)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".")  # `name.` is `name`, as the policy reads it
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parse_entry(f"[{host}]:{port}" if ":" in host else f"{host}:{port}", default=True)


def _valid_header(name: str, value: str) -> bool:
    return bool(re.match(HEADER_NAME, name)) and len(value) <= 8192 and not _BAD.search(value)


def _view(row: McpServer) -> McpServerView:
    config = json.loads(row.config_json)
    return McpServerView(
        id=row.id,
        name=row.name,
        project_id=row.project_id,
        type=config["type"],
        command=config.get("command"),
        args=config.get("args", []),
        url=config.get("url"),
        header_names=sorted(config.get("headers_sealed", {})),
    )


class McpTest(BaseModel):
    """A server's answer to the start of a session: its name and its tools."""

    server: str
    tools: list[str]


HANDSHAKE_S = 20.0
HELLO: list[dict[str, Any]] = [
    {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "agent-web", "version": "1"},
        },
    },
    {"jsonrpc": "2.0", "method": "notifications/initialized"},
    {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
]


async def handshake_stdio(argv: Sequence[str], cwd: str) -> McpTest:
    """Start a stdio server (`argv`, already jailed by the caller), say hello as the CLI
    would, and list its tools; InvalidInput with what went wrong otherwise."""
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={"PATH": "/usr/local/bin:/usr/bin:/bin"},
        )
    except OSError as error:
        raise InvalidInput(f"The server could not start: {error.strerror}.") from error
    assert process.stdin is not None and process.stdout is not None
    try:
        process.stdin.write(b"".join(json.dumps(m).encode() + b"\n" for m in HELLO))
        await process.stdin.drain()
        return await asyncio.wait_for(_answers(process.stdout), HANDSHAKE_S)
    except TimeoutError:
        raise InvalidInput(f"The server did not answer within {HANDSHAKE_S:.0f} seconds.") from None
    except (ConnectionError, ValueError) as error:
        raise InvalidInput(f"The server's answer is not MCP: {error}") from None
    finally:
        if process.returncode is None:
            process.kill()
        stderr = await process.stderr.read() if process.stderr else b""
        await process.wait()
        del stderr


async def _answers(stdout: asyncio.StreamReader) -> McpTest:
    server = ""
    while True:
        line = await stdout.readline()
        if not line:
            raise ValueError("it stopped before listing its tools")
        message = json.loads(line)
        if "error" in message:
            raise ValueError(str(message["error"].get("message", "an error"))[:300])
        if message.get("id") == 1:
            server = str(message.get("result", {}).get("serverInfo", {}).get("name", ""))
        elif message.get("id") == 2:
            tools = message.get("result", {}).get("tools", [])
            return McpTest(server=server, tools=[str(t.get("name", "")) for t in tools])
