"""Skills and plugins in the rail's Projects tab: the user's library (app/agent/extensions.py),
installed from a folder of the current project or a git URL, removed, and switched on or off
for the current project's agents (those started afterwards)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import reflex as rx

from app.agent.extensions import ExtensionInstall
from app.services import services
from app.ui.errors import Shown, ui_text
from app.ui.state.base import BaseState
from app.ui.state.workspace import WorkspaceState


def request_for(source: str, project_id: str) -> ExtensionInstall:
    """The form's one field: an https URL is cloned, anything else is a folder of the project."""
    source = source.strip()
    if source.lower().startswith(("https://", "http://")):
        return ExtensionInstall(git_url=source)
    return ExtensionInstall(project_id=project_id or None, path=source or None)


class ExtensionsState(BaseState):
    items: list[dict[str, Any]] = []  # id, kind, name, description, source, enabled
    installing: bool = False
    error: str = ""
    notice: str = ""

    async def _project_id(self) -> str:
        """The project the Projects tab shows (loaded first if the tab has not yet)."""
        workspace = await self.get_state(WorkspaceState)
        if not workspace.project_id:
            await workspace.load()
        return workspace.project_id

    @rx.event
    async def load(self) -> None:
        if not self._user_id:
            return
        project_id = await self._project_id()
        try:
            views = await asyncio.to_thread(services().engine.library().of_user, self.user_id)
            on = set()
            if project_id:
                on = set(
                    await asyncio.to_thread(
                        services().engine.library().enabled, self.user_id, project_id
                    )
                )
        except Shown as error:
            self.items, self.error = [], ui_text(error)
            return
        self.items = [{**v.model_dump(), "enabled": v.id in on} for v in views]

    @rx.event(background=True)
    async def install(self, form: dict[str, Any]) -> AsyncIterator[Any]:
        """Install from the form (a clone can take a while: the state is not held meanwhile)."""
        async with self:
            if self.installing:
                return
            self.installing, self.error, self.notice = True, "", ""
            user_id, project_id = self.user_id, await self._project_id()
        notice, problem = "", ""
        try:
            request = request_for(str(form.get("source", "")), project_id)
            view = await services().engine.install_extension(user_id, request)
            notice = f"Installed the {view.kind} {view.name}: switch it on for a project."
        except Shown as error:
            problem = ui_text(error)
        async with self:
            self.installing, self.notice, self.error = False, notice, problem
        if not problem:
            yield ExtensionsState.load

    @rx.event
    async def remove(self, extension_id: str) -> None:
        try:
            await services().engine.delete_extension(self.user_id, extension_id)
        except Shown as error:
            self.error = ui_text(error)
            return
        self.notice = "Removed."
        await self.load()

    @rx.event
    async def toggle(self, extension_id: str) -> None:
        """On or off in the current project, for its agents started from now on."""
        project_id = await self._project_id()
        on = {i["id"] for i in self.items if i["enabled"]} ^ {extension_id}
        try:
            ids = [i["id"] for i in self.items if i["id"] in on]
            await asyncio.to_thread(
                services().engine.library().set_enabled, self.user_id, project_id, ids
            )
        except Shown as error:
            self.error = ui_text(error)
            return
        self.error, self.notice = "", "Agents of this project started from now on get it."
        await self.load()
