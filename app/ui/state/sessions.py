"""The session list in the left rail: search, paging, rename, delete."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import reflex as rx

from app.agent.schemas import ListQuery, Rename
from app.services import services
from app.ui.errors import Shown, ui_text
from app.ui.state.base import BaseState, connected
from app.ui.state.chat import ChatState

PAGE_SIZE = 50
MAX_LISTED = 500  # the rail's longest list; search finds the rest
WATCH_S = 3.0  # how often the rail re-reads statuses (approval badges of other sessions)


class SessionsState(BaseState):
    items: list[dict[str, str]] = []
    total: int = 0
    limit: int = PAGE_SIZE
    search: str = ""
    demo_model: bool = False
    sandbox_problem: str = ""  # no agent can start here, and why
    sandbox_warning: str = ""  # agents run unconfined (AGENT_SANDBOX=off)
    renaming: str = ""
    rename_text: str = ""
    deleting: str = ""
    rail_open: bool = False
    _watching: bool = False

    @rx.var
    def has_more(self) -> bool:
        return self.total > len(self.items)

    @rx.event
    async def load(self) -> Any:
        """Page load: fill the rail, then open the current or most recent session."""
        if not self._user_id:
            return None
        self.demo_model = services().settings.demo_model
        self.sandbox_problem = services().sandbox.problem or ""
        self.sandbox_warning = services().sandbox.warning or ""
        await self._refresh()
        from app.ui.state.workspace import WorkspaceState

        watchers = [SessionsState.watch, WorkspaceState.watch_sync]
        chat = await self.get_state(ChatState)
        if chat.session_id:
            return [ChatState.open_session(chat.session_id), *watchers]
        if self.items:
            return [ChatState.open_session(self.items[0]["id"]), *watchers]
        return watchers

    @rx.event(background=True)
    async def watch(self) -> AsyncIterator[Any]:
        """Keep statuses fresh (other sessions finishing or waiting for an approval) while
        this browser tab is connected; a tab whose sign-in was revoked meanwhile (signed out in
        another tab) goes to sign in without waiting for its next click."""
        async with self:
            if self._watching:
                return
            self._watching = True
            token = self.router.session.client_token
        try:
            while connected(token):
                await asyncio.sleep(WATCH_S)
                async with self:
                    if not self._user_id:
                        return
                    ended = not self.signed_in_still()
                    if ended:
                        await self._clear()
                        self.auth_error = "Your sign-in has ended; please sign in again."
                    else:
                        await self._refresh()
                if ended:
                    yield rx.redirect("/login")
                    return
        finally:
            async with self:
                self._watching = False

    @rx.event
    async def set_search(self, value: str) -> None:
        self.search = value
        self.limit = PAGE_SIZE
        await self._refresh()

    @rx.event
    async def refresh(self) -> None:
        await self._refresh()

    @rx.event
    async def more(self) -> None:
        self.limit += PAGE_SIZE
        await self._refresh()

    @rx.event
    def toggle_rail(self) -> None:
        self.rail_open = not self.rail_open

    @rx.event
    def set_rail_open(self, value: bool) -> None:
        self.rail_open = value

    @rx.event
    def start_rename(self, session_id: str, title: str) -> None:
        self.renaming, self.rename_text = session_id, title

    @rx.event
    def set_rename_text(self, value: str) -> None:
        self.rename_text = value

    @rx.event
    async def finish_rename(self) -> Any:
        session_id, self.renaming = self.renaming, ""
        try:
            await services().engine.rename(self.user_id, session_id, Rename(title=self.rename_text))
        except Shown as error:
            return await self._show_error(error)
        await self._refresh()
        chat = await self.get_state(ChatState)
        if chat.session_id == session_id:
            chat.title = self.rename_text.strip()
        return None

    @rx.event
    def ask_delete(self, session_id: str) -> None:
        self.deleting = session_id

    @rx.event
    def cancel_delete(self) -> None:
        self.deleting = ""

    @rx.event
    async def confirm_delete(self) -> Any:
        session_id, self.deleting = self.deleting, ""
        try:
            await services().engine.delete(self.user_id, session_id)
        except Shown as error:
            return await self._show_error(error)
        await self._refresh()
        chat = await self.get_state(ChatState)
        if chat.session_id == session_id:
            await chat.clear_view()
            if self.items:
                return ChatState.open_session(self.items[0]["id"])
        return None

    async def _show_error(self, error: Exception) -> None:
        """In the page's error bar (a toast would need the page to eval script, which its
        Content-Security-Policy forbids)."""
        chat = await self.get_state(ChatState)
        chat.error = ui_text(error)

    async def _refresh(self) -> None:
        try:
            listing = await services().engine.list_sessions(
                self.user_id, ListQuery(limit=min(self.limit, MAX_LISTED), search=self.search)
            )
        except Shown:
            return
        self.total = listing.total
        items = [
            {
                "id": row.session_id,
                "title": row.title or "New session",
                "status": row.status,
                "waiting": "1" if row.status == "waiting" else "",
                "project": row.project,
                "cost": f"${row.cost_usd:.2f}",
                "updated": datetime.fromisoformat(row.updated_at).strftime("%d %b %H:%M"),
            }
            for row in listing.sessions
        ]
        if items != self.items:  # an unchanged list is not sent again
            self.items = items
