"""The user's MCP servers (app/agent/mcp.py): list, add, replace, remove, and test one (a
stdio server started in the user's jail, as a session would; a remote one greeted through the
user's egress allowlist). A session uses the ones named in `mcp_server_ids` on
`POST /sessions`."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Path, Response

from app.agent.mcp import McpServers, McpServerSpec, McpServerView, McpTest
from app.api.deps import CurrentUser, Engine
from app.errors import InvalidInput

router = APIRouter(prefix="/mcp-servers", tags=["mcp"])

ServerId = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:@-]+$")]


def _servers(engine: Engine) -> McpServers:
    if engine.mcp is None:
        raise InvalidInput("MCP servers are not set up here.")
    return engine.mcp


@router.get("")
async def list_servers(user: CurrentUser, engine: Engine) -> list[McpServerView]:
    return await asyncio.to_thread(_servers(engine).of_user, user)


@router.post("", status_code=201)
async def add_server(body: McpServerSpec, user: CurrentUser, engine: Engine) -> McpServerView:
    return await asyncio.to_thread(_servers(engine).save, user, body)


@router.put("/{server_id}")
async def replace_server(
    server_id: ServerId, body: McpServerSpec, user: CurrentUser, engine: Engine
) -> McpServerView:
    """Replace a server; header values omitted keep the stored ones (they are write-only)."""
    return await asyncio.to_thread(_servers(engine).save, user, body, server_id)


@router.delete("/{server_id}", status_code=204)
async def delete_server(server_id: ServerId, user: CurrentUser, engine: Engine) -> Response:
    await asyncio.to_thread(_servers(engine).delete, user, server_id)
    return Response(status_code=204)


@router.post("/{server_id}/test")
async def test_server(server_id: ServerId, user: CurrentUser, engine: Engine) -> McpTest:
    """Say hello to the server as a session would (`initialize`, `tools/list`) and list its
    tools; 400 with the reason (refused host, connection error, HTTP status, not MCP)."""
    return await engine.test_mcp_server(user, server_id)
