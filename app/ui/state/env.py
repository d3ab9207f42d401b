"""The Environment section of the Projects tab: the current project's variable names, and a
form to set or delete one. Values only go in (the form's submit); they are never kept in this
state, so no update can ever carry one back to the browser."""

from __future__ import annotations

from typing import Any

import reflex as rx

from app.agent.schemas import NewProject
from app.services import services
from app.ui.errors import Shown, ui_text
from app.ui.state.base import BaseState
from app.ui.state.workspace import WorkspaceState


class EnvState(BaseState):
    names: list[dict[str, str]] = []  # {"name", "updated_at"}: names only, never values
    editing: str = ""  # the name whose "set" form is open ("" when none)
    error: str = ""
    notice: str = ""

    async def _project_id(self) -> str:
        return (await self.get_state(WorkspaceState)).project_id

    async def _project_to_set(self) -> str:
        """The current project; a new user's "default" one is made on first use (as their
        first session would), so a variable can be set before any session."""
        workspace = await self.get_state(WorkspaceState)
        if not workspace.project_id:
            row = await services().engine.create_project(self.user_id, NewProject(name="default"))
            workspace.project_id = row.project_id
            await workspace.load()
        return workspace.project_id

    @rx.event
    async def load(self) -> None:
        project_id = await self._project_id()
        if not self._user_id or not project_id:
            self.names = []
            return
        try:
            rows = await services().engine.project_env.list(self.user_id, project_id)
        except Shown as error:
            self.names, self.error = [], ui_text(error)
            return
        self.names = [
            {"name": r.name, "updated_at": r.updated_at.strftime("%Y-%m-%d %H:%M")} for r in rows
        ]

    @rx.event
    def edit(self, name: str) -> None:
        self.editing, self.error, self.notice = name, "", ""

    @rx.event
    def cancel(self) -> None:
        self.editing = ""

    @rx.event
    async def save(self, form: dict[str, Any]) -> None:
        """Set a variable from the form (the form clears itself; the value is not kept)."""
        name = str(form["name"]).strip() if "name" in form else self.editing
        try:
            await services().engine.project_env.set(
                self.user_id, await self._project_to_set(), name, str(form.get("value", ""))
            )
        except Shown as error:
            self.error, self.notice = ui_text(error), ""
            return
        self.error, self.editing = "", ""
        self.notice = f"{name} set: agents started from now on get it."
        await self.load()

    @rx.event
    async def delete(self, name: str) -> None:
        try:
            await services().engine.project_env.delete(self.user_id, await self._project_id(), name)
        except Shown as error:
            self.error = ui_text(error)
            return
        self.error, self.notice = "", f"{name} deleted: agents started from now on lack it."
        await self.load()
