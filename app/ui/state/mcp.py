"""MCP servers in the rail's Projects tab: the user's servers (app/agent/mcp.py), added, tested,
removed, and switched on or off for the sessions this page starts next. Header values go to
the server once and never come back to the page."""

from __future__ import annotations

import asyncio
from typing import Any

import reflex as rx
from pydantic import ValidationError

from app.agent.mcp import McpServers, McpServerSpec, McpServerView
from app.services import services
from app.ui.errors import Shown, ui_text
from app.ui.state.base import BaseState


def _servers() -> McpServers:
    servers = services().engine.mcp
    assert servers is not None, "the services set up MCP servers"
    return servers


def _row(view: McpServerView, enabled: bool) -> dict[str, Any]:
    target = " ".join([view.command or "", *view.args]) if view.type == "stdio" else view.url
    return {
        "id": view.id,
        "name": view.name,
        "type": view.type,
        "target": target or "",
        "project_id": view.project_id or "",
        "enabled": enabled,
    }


class McpState(BaseState):
    servers: list[dict[str, Any]] = []
    adding: bool = False
    kind: str = "stdio"
    error: str = ""
    notice: str = ""
    testing: str = ""  # the id of the server being tested
    _off: list[str] = []  # servers switched off for new sessions (all others are on)

    @rx.event
    async def load(self) -> None:
        if not self._user_id:
            return
        views = await asyncio.to_thread(_servers().of_user, self.user_id)
        self.servers = [_row(v, v.id not in self._off) for v in views]

    @rx.event
    def start_adding(self) -> None:
        self.adding, self.error, self.notice = True, "", ""

    @rx.event
    def cancel_adding(self) -> None:
        self.adding = False

    @rx.event
    def set_kind(self, kind: str) -> None:
        self.kind = kind if kind in ("stdio", "http", "sse") else "stdio"

    @rx.event
    async def add(self, form: dict[str, Any]) -> None:
        """Add the server the form describes; its header (a "Name: value" line) is sealed
        on the server and the form is emptied, so the value leaves the page's state."""
        try:
            spec = McpServerSpec(**_spec_fields(form, self.kind))
            view = await asyncio.to_thread(_servers().save, self.user_id, spec)
        except ValidationError as error:
            self.error = _first_problem(error)
            return
        except Shown as error:
            self.error = ui_text(error)
            return
        self.adding, self.error = False, ""
        self.notice = f"Added {view.name}: new sessions use it."
        await self.load()

    @rx.event
    async def remove(self, server_id: str) -> None:
        try:
            await asyncio.to_thread(_servers().delete, self.user_id, server_id)
        except Shown as error:
            self.error = ui_text(error)
            return
        self.notice = "Removed."
        await self.load()

    @rx.event
    def toggle(self, server_id: str) -> None:
        """On or off for the sessions this page starts next."""
        off = set(self._off)
        off.symmetric_difference_update({server_id})
        self._off = sorted(off)
        self.servers = [{**s, "enabled": s["id"] not in off} for s in self.servers]

    @rx.event(background=True)
    async def test(self, server_id: str) -> None:
        """Start the server as a session would (in the user's jail) and list its tools."""
        async with self:
            if self.testing:
                return
            self.testing, self.error, self.notice = server_id, "", ""
            user_id = self.user_id
        notice, problem = "", ""
        try:
            found = await services().engine.test_mcp_server(user_id, server_id)
            tools = ", ".join(found.tools) or "no tools"
            notice = f"{found.server or 'The server'} answered: {tools}."
        except Shown as error:
            problem = ui_text(error)
        async with self:
            self.testing, self.notice, self.error = "", notice, problem

    def chosen_for(self, project_id: str | None) -> list[str]:
        """The servers a new session in `project_id` uses: those on, meant for it."""
        return [
            s["id"]
            for s in self.servers
            if s["enabled"] and s["project_id"] in ("", project_id or "")
        ]


def _spec_fields(form: dict[str, Any], kind: str) -> dict[str, Any]:
    fields: dict[str, Any] = {"name": str(form.get("name", "")).strip(), "type": kind}
    if kind == "stdio":
        words = str(form.get("command", "")).split()
        fields["command"] = words[0] if words else None
        fields["args"] = words[1:]
    else:
        fields["url"] = str(form.get("url", "")).strip() or None
        header = str(form.get("header", ""))
        if ":" in header:
            name, value = header.split(":", 1)
            fields["headers"] = {name.strip(): value.strip()}
    return fields


def _first_problem(error: ValidationError) -> str:
    problem = error.errors()[0]
    where = ".".join(str(p) for p in problem.get("loc", ()))
    return f"{where}: {problem.get('msg', 'not valid')}" if where else str(problem.get("msg"))
