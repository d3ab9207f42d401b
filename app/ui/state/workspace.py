"""Projects in the left rail (the Files tab is app/ui/state/files.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import reflex as rx

from app.agent.schemas import NewProject, SyncStatus
from app.services import services
from app.ui.errors import Shown, ui_text
from app.ui.state.base import BaseState, connected
from app.ui.state.chat import ChatState

WATCH_S = 5.0  # how often a sync watcher checks that its tab is still there


class WorkspaceState(BaseState):
    projects: list[dict[str, str]] = []
    sync_enabled: bool = False
    sync_rows: list[dict[str, str]] = []  # one per folder kept in S3 (see _sync_row)
    backing_up: bool = False
    _watching_sync: bool = False
    project_id: str = ""
    error: str = ""
    confirming_restart: bool = False
    restarting: bool = False
    restart_note: str = ""
    # Restarted: on AgentCore the page now stops the runtime session (app/static_site/socket.js;
    # a page served any other way has no such call and nothing happens).
    stop_runtime: bool = False

    @rx.event
    async def load(self) -> None:
        if not self._user_id:
            return
        rows = await services().engine.projects(self.user_id)
        self.projects = [{"id": p.project_id, "name": p.name} for p in rows]
        if not self.project_id and self.projects:
            self.project_id = next(
                (p["id"] for p in self.projects if p["name"] == "default"), self.projects[0]["id"]
            )

    @rx.event
    async def create_project(self, form: dict[str, Any]) -> Any:
        try:
            row = await services().engine.create_project(
                self.user_id, NewProject(name=str(form.get("name", "")))
            )
        except Shown as error:
            self.error = ui_text(error)
            return None
        self.error = ""
        self.project_id = row.project_id
        await self.load()
        return ChatState.new_session_in(row.project_id)  # type: ignore[misc]

    @rx.event
    async def choose_project(self, project_id: str) -> Any:
        self.project_id = project_id
        return ChatState.new_session_in(project_id)  # type: ignore[misc]

    # --- restart --------------------------------------------------------------------------

    @rx.event
    def ask_restart(self) -> None:
        self.confirming_restart, self.restart_note = True, ""

    @rx.event
    def cancel_restart(self) -> None:
        self.confirming_restart = False

    @rx.event(background=True)
    async def restart(self) -> None:
        """Stop every agent and terminal of the user's (after a backup when workspaces are
        kept in S3); the conversations and files stay, and the next message starts afresh.
        On AgentCore the page then stops the runtime session too (`stop_runtime`)."""
        async with self:
            if self.restarting:
                return
            self.confirming_restart, self.restarting, self.error = False, True, ""
            user_id = self.user_id
        note, problem = "", ""
        try:
            done = await services().engine.restart_workspace(user_id)
            note = (
                f"Restarted: {_count(len(done.stopped_sessions), 'agent')} and "
                f"{_count(done.closed_terminals, 'terminal')} stopped; "
                "your files and conversations are kept."
            )
        except Shown as error:
            problem = ui_text(error)
        finally:
            async with self:
                self.restarting = False
                self.restart_note, self.error = note, problem
                self.stop_runtime = bool(note)

    @rx.event
    def runtime_stopped(self) -> None:
        """The page asked for StopRuntimeSession: once per restart, even if the page stays."""
        self.stop_runtime = False

    # --- S3 ------------------------------------------------------------------------------

    @rx.event(background=True)
    async def watch_sync(self) -> None:
        """Follow the user's folders' sync with S3 (restores with their progress, backups,
        failures) for as long as this tab is open."""
        async with self:
            if self._watching_sync or not self._user_id:
                return
            self.sync_enabled = services().engine.workspaces is not None
            if not self.sync_enabled:
                return
            self._watching_sync = True
            user_id, token = self.user_id, self.router.session.client_token
        updates = services().engine.sync_updates(user_id)
        try:
            while connected(token):
                try:
                    progress = await asyncio.wait_for(anext(updates), WATCH_S)
                except TimeoutError:
                    continue
                except StopAsyncIteration:
                    return
                async with self:
                    if self._user_id != user_id:
                        return
                    self.sync_rows = [_sync_row(p) for p in progress]
        finally:
            await updates.aclose()
            async with self:
                self._watching_sync = False

    @rx.event(background=True)
    async def back_up_now(self) -> None:
        async with self:
            if self.backing_up:
                return
            self.backing_up, self.error = True, ""
            user_id = self.user_id
        try:
            await services().engine.backup_now(user_id)
        except Shown as error:
            async with self:
                self.error = ui_text(error)
        finally:
            async with self:
                self.backing_up = False


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _sync_row(progress: SyncStatus) -> dict[str, str]:
    """One folder's sync as the page shows it."""
    names = {"claude": "your agent's home", "extensions": "your skills and plugins"}
    name = names.get(progress.scope) or progress.scope.split("/", 1)[-1]
    total = progress.bytes_total or 1
    verb = {"restoring": "Restoring", "backing_up": "Backing up"}.get(progress.phase, "")
    text = ""
    if verb:
        text = (
            f"{verb} {name}: {progress.files_done:,} of {progress.files_total:,} files, "
            f"{progress.bytes_done / 1e6:,.1f} of {progress.bytes_total / 1e6:,.1f} MB"
        )
    return {
        "scope": progress.scope,
        "name": name,
        "phase": progress.phase,
        "text": text,
        "percent": str(min(100, round(100 * progress.bytes_done / total))),
        "error": f"Could not sync {name} with S3: {progress.error}" if progress.error else "",
        "warning": progress.warning,
        "backed_up": progress.backed_up_at[11:16] if progress.backed_up_at else "",
    }
