"""The Terminal panel: the open session's project's shell (app/workspace/terminal.py), shown
by xterm.js in the page, over the page's own socket (so it works on AgentCore too).

The page's terminal says when it is on screen (`ready`, with its size); the state then opens
or finds the project's shell and sends its output from the oldest kept, in pieces that keep
each socket message small, and goes on following it while the panel shows. A reload, or a
second tab, does the same and so shows the scrollback. Keys and sizes come back as events.
"""

from __future__ import annotations

import json
from typing import Any

import reflex as rx

from app.agent.engine import NO_TERMINAL
from app.agent.schemas import TerminalOutput
from app.errors import NotFound
from app.services import services
from app.ui.errors import Shown, ui_text
from app.ui.state.base import BaseState, connected
from app.ui.state.chat import ChatState

PIECE_CHARS = 8192  # output characters per message at most,
PIECE_BYTES = 24_000  # and what they take once encoded (escapes grow 6-fold in JSON)
WAIT_S = 5.0  # how often a quiet follower looks whether its page is still there
NO_SESSION = "Open a session first: the terminal opens in its project."


async def _piece(user_id: str, project_id: str, since: int) -> TerminalOutput:
    """The next piece of output after `since` (waiting a little for one), small enough for
    one socket message. NotFound once the terminal is closed."""
    engine = services().engine
    piece = await engine.terminal_output(user_id, project_id, since, PIECE_CHARS, WAIT_S)
    while len(piece.data) > 1 and len(json.dumps(piece.data)) > PIECE_BYTES:
        piece = await engine.terminal_output(user_id, project_id, since, len(piece.data) // 2, 0)
    return piece


class TerminalState(BaseState):
    showing: bool = False  # the panel is open
    project_id: str = ""
    output: dict[str, Any] = {"gen": 0, "start": 0, "end": 0, "data": ""}
    ended: str = ""  # how the shell ended, in words ("" while it runs)
    error: str = ""
    shells: int = 0  # bumped for a new shell: the page's terminal starts afresh
    _gen: int = 0
    _sent: int = 0  # output offset the page has been sent up to
    _following: bool = False

    @rx.event
    def toggle(self) -> None:
        self.showing = not self.showing
        self.error = ""

    @rx.event
    def new_shell(self) -> None:
        """After the shell ended: a fresh terminal on the page, which asks for a new one."""
        self.shells += 1
        self.ended = ""

    @rx.event(background=True)
    async def ready(self, cols: int, rows: int) -> Any:
        """The page's terminal is on screen (opened, reloaded, or a new shell asked for):
        send everything the shell's scrollback holds, then follow it."""
        async with self:
            if not self._user_id:
                return
            user_id, project_id = self.user_id, (await self.get_state(ChatState)).project_id
            if not project_id:
                self.error = NO_SESSION
                return
        try:
            terminal = await services().engine.open_terminal(user_id, project_id, cols, rows)
        except Shown as error:
            async with self:
                self.error = ui_text(error)
            return
        async with self:
            self._gen += 1
            self.project_id, self._sent, self.error = project_id, 0, ""
            self.ended = "" if terminal.running else _ended(terminal.exit_code)
            self.output = {"gen": self._gen, "start": 0, "end": 0, "data": ""}
            if self._following:
                return  # the running follower sends from 0 again
            self._following = True
            token = self.router.session.client_token
        try:
            await self._follow(user_id, project_id, token)
        finally:
            async with self:
                self._following = False

    async def _follow(self, user_id: str, project_id: str, token: str) -> None:
        while connected(token):
            async with self:
                if not self.showing or self.project_id != project_id or self._user_id != user_id:
                    return
                since, gen = self._sent, self._gen
            try:
                piece = await _piece(user_id, project_id, since)
            except NotFound:  # closed (here, in another tab, by a workspace restart)
                async with self:
                    if self.project_id == project_id and self._gen == gen:
                        self.ended = "The terminal was closed."
                return
            if piece.end > since or piece.start > since:
                async with self:
                    if (self._sent, self._gen) == (since, gen):  # not started over meanwhile
                        self.output = {
                            "gen": gen,
                            "start": piece.start,
                            "end": piece.end,
                            "data": piece.data,
                        }
                        self._sent = piece.end
                continue
            if not piece.running:
                async with self:
                    self.ended = _ended(piece.exit_code)
                return

    @rx.event
    def missing(self, offset: int) -> None:
        """The page lost a piece (two messages rendered as one): send again from `offset`."""
        if 0 <= offset < self._sent:
            self._sent = offset

    @rx.event
    async def keys(self, text: str) -> None:
        if not self._user_id or not self.project_id or not isinstance(text, str):
            return
        try:
            await services().engine.terminal_input(self.user_id, self.project_id, text)
        except Shown as error:
            if getattr(error, "message", "") != NO_TERMINAL:  # closed: the follower says so
                self.error = ui_text(error)

    @rx.event
    async def resized(self, cols: int, rows: int) -> None:
        if not self._user_id or not self.project_id:
            return
        try:
            await services().engine.terminal_resize(self.user_id, self.project_id, cols, rows)
        except Shown as error:
            if getattr(error, "message", "") != NO_TERMINAL:
                self.error = ui_text(error)

    @rx.event(background=True)
    async def close_shell(self) -> None:
        """End the shell (and all it started); the panel offers a new one."""
        async with self:
            user_id, project_id = self.user_id, self.project_id
        if project_id:
            await services().engine.close_terminal(user_id, project_id)
        async with self:
            self.ended = "The terminal was closed."


def _ended(code: int | None) -> str:
    if code is None:
        return ""
    if code < 0:
        return f"The shell was stopped (signal {-code})."
    return f"The shell exited with code {code}."
