"""Panels that follow the agent's work (the Files and Git tabs): while a panel shows, it
refreshes when a turn of the open session ends, when another session opens, and every
QUIET_REFRESH_S anyway."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from app.ui.state.base import connected
from app.ui.state.chat import ChatState

WATCH_TICK_S = 2.0  # how often the watcher looks at the chat (a state read, nothing more)
QUIET_REFRESH_S = 15.0  # and how often it refreshes anyway while the panel shows
SETTLED = ("idle", "failed", "waiting")  # a turn ended, or it waits for the user


def progress(chat: ChatState) -> tuple[str, str, int]:
    """Where the open session is: which one, its status, its latest event."""
    return chat.session_id, chat.status, chat._last_seq


async def follow_turns(panel: Any, refresh: Callable[[], Awaitable[None]]) -> None:
    """The watch loop of a panel state (with `showing`, `_watching`, `_asked` that every
    refresh bumps, and the user): call it from the panel's background `watch` event. Any
    refresh (the user's button, an action's own) restarts the quiet period, so a listing
    never changes under the user's hand moments after they asked for it."""
    async with panel:
        if panel._watching or not panel._user_id:
            return
        panel._watching = True
        user_id, token = panel.user_id, panel.router.session.client_token
        seen = progress(await panel.get_state(ChatState))
        asked = panel._asked
    asked_at = time.monotonic()
    try:
        while connected(token):
            await asyncio.sleep(WATCH_TICK_S)
            async with panel:
                if not panel.showing or panel._user_id != user_id:
                    return
                now = progress(await panel.get_state(ChatState))
                if panel._asked != asked:
                    asked, asked_at = panel._asked, time.monotonic()
            # A whole turn can pass between two ticks: its events moved the session on.
            turn_ended = now != seen and now[1] in SETTLED
            if now[0] != seen[0] or turn_ended or time.monotonic() - asked_at > QUIET_REFRESH_S:
                await refresh()
                asked_at = time.monotonic()
            seen = now
    finally:
        async with panel:
            panel._watching = False
