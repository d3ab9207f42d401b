"""The session list in the left rail."""

from __future__ import annotations

from typing import Any

import reflex as rx

from app.errors import AppError
from app.services import services
from app.ui.state.base import BaseState
from app.ui.state.chat import ChatState

PAGE_SIZE = 50


class SessionsState(BaseState):
    items: list[dict[str, str]] = []
    total: int = 0
    search: str = ""
    demo_model: bool = False

    @rx.event
    async def load(self) -> Any:
        """Page load: fill the rail, then open the most recent session (if any)."""
        self.demo_model = services().settings.demo_model
        await self._refresh()
        chat = await self.get_state(ChatState)
        if not chat.session_id and self.items:
            return ChatState.open_session(self.items[0]["id"])
        if chat.session_id:
            return ChatState.open_session(chat.session_id)
        return None

    @rx.event
    async def set_search(self, value: str) -> None:
        self.search = value
        await self._refresh()

    @rx.event
    async def refresh(self) -> None:
        await self._refresh()

    async def _refresh(self) -> None:
        try:
            rows, self.total = await services().engine.list_sessions(
                self.user_id, limit=PAGE_SIZE, search=self.search
            )
        except AppError:
            return
        self.items = [
            {
                "id": row.id,
                "title": row.title or "New session",
                "status": row.status,
                "cost": f"${row.cost_usd:.2f}",
                "updated": row.updated_at.strftime("%d %b %H:%M"),
            }
            for row in rows
        ]
