"""MCP servers in the rail's Projects tab: the user's servers (app/agent/mcp.py), added, edited,
tested, removed, and switched on or off for the sessions this page starts next. Header values
go to the server once and never come back to the page: editing shows only their names, and a
blank header keeps the stored value."""

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
        "header_names": ", ".join(view.header_names),
        "enabled": enabled,
    }


class McpState(BaseState):
    servers: list[dict[str, Any]] = []
    adding: bool = False  # the form is open (to add a server, or to edit `editing`)
    editing: str = ""  # the id of the server the form edits; empty: it adds one
    draft: dict[str, str] = {}  # the form's starting values when editing (never a secret)
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
        self.adding, self.editing, self.draft = True, "", {}
        self.error, self.notice = "", ""

    @rx.event
    def start_editing(self, server_id: str) -> None:
        """Open the form filled with the server's settings; header values stay on the server."""
        row = next((s for s in self.servers if s["id"] == server_id), None)
        if row is None:
            return
        self.adding, self.editing, self.kind = True, server_id, row["type"]
        self.error, self.notice = "", ""
        names = row["header_names"]
        self.draft = {
            "name": row["name"],
            "command": row["target"] if row["type"] == "stdio" else "",
            "url": row["target"] if row["type"] != "stdio" else "",
            "header_hint": f"{names}: stored (blank keeps it)" if names else "",
        }

    @rx.event
    def cancel_adding(self) -> None:
        self.adding, self.editing, self.draft = False, "", {}

    @rx.event
    def set_kind(self, kind: str) -> None:
        self.kind = kind if kind in ("stdio", "http", "sse") else "stdio"

    @rx.event
    async def add(self, form: dict[str, Any]) -> None:
        """Add (or, editing, replace) the server the form describes; its header (a
        "Name: value" line) is sealed on the server and the form is emptied, so the value
        leaves the page's state. Editing, a blank header keeps the stored one."""
        editing = self.editing or None
        fields = _spec_fields(form, self.kind)
        if editing:
            old = next((s for s in self.servers if s["id"] == editing), {})
            fields["project_id"] = old.get("project_id") or None
        try:
            spec = McpServerSpec(**fields)
            view = await asyncio.to_thread(_servers().save, self.user_id, spec, editing)
        except ValidationError as error:
            self.error = _first_problem(error)
            return
        except Shown as error:
            self.error = ui_text(error)
            return
        self.adding, self.editing, self.draft, self.error = False, "", {}, ""
        done = "Saved" if editing else "Added"
        self.notice = f"{done} {view.name}: new sessions use it."
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
