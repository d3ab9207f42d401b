"""Projects and files in the left rail."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import reflex as rx

from app.errors import AppError
from app.services import services
from app.ui.state.base import BaseState
from app.ui.state.chat import ChatState
from app.workspace.files import list_files, read_text

_NAME = re.compile(r"^[\w][\w .-]{0,99}$")


class WorkspaceState(BaseState):
    projects: list[dict[str, str]] = []
    project_id: str = ""
    files: list[str] = []
    file_path: str = ""
    file_text: str = ""
    file_open: bool = False
    error: str = ""

    @rx.event
    async def load(self) -> None:
        if not self._user_id:
            return
        rows = await asyncio.to_thread(lambda: services().store.list_projects(user_id=self.user_id))
        self.projects = [{"id": p.id, "name": p.name} for p in rows]
        if not self.project_id and self.projects:
            self.project_id = next(
                (p["id"] for p in self.projects if p["name"] == "default"), self.projects[0]["id"]
            )

    @rx.event
    async def create_project(self, form: dict[str, Any]) -> Any:
        name = str(form.get("name", "")).strip()
        if not _NAME.match(name):
            self.error = "A project name is letters, digits, spaces, '.', '-' and '_' (1-100)."
            return None
        self.error = ""
        row = await asyncio.to_thread(
            lambda: services().store.ensure_project(user_id=self.user_id, name=name)
        )
        self.project_id = row.id
        await self.load()
        return ChatState.new_session_in(row.id)

    @rx.event
    async def choose_project(self, project_id: str) -> Any:
        self.project_id = project_id
        return ChatState.new_session_in(project_id)

    @rx.event
    async def load_files(self) -> None:
        chat = await self.get_state(ChatState)
        if not chat.session_id:
            self.files = []
            return
        try:
            row = await services().engine.get_session(self.user_id, chat.session_id)
        except AppError:
            return
        root = services().engine.project_dir(self.user_id, row.project_id)
        self.files = await asyncio.to_thread(list_files, root)

    @rx.event
    async def open_file(self, path: str) -> None:
        chat = await self.get_state(ChatState)
        try:
            row = await services().engine.get_session(self.user_id, chat.session_id)
            root = services().engine.project_dir(self.user_id, row.project_id)
            self.file_text = await asyncio.to_thread(read_text, root, path)
        except AppError as error:
            self.file_text = error.message
        self.file_path, self.file_open = path, True

    @rx.event
    def close_file(self) -> None:
        self.file_open = False
