"""The Terminal panel: the open session's project's shell (app/workspace/terminal.py), shown
by xterm.js in the page, over the page's own socket (so it works on AgentCore too).

The page's terminal says when it is on screen (`ready`, with its size); the state then opens
or finds the project's shell and sends its output from the oldest kept, in pieces that keep
each socket message small, and goes on following it while the panel shows. A reload, or a
second tab, does the same and so shows the scrollback. Keys and sizes come back as events.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import reflex as rx

from app.services import services
from app.ui.errors import Shown, ui_text
from app.ui.state.base import BaseState, connected
from app.ui.state.chat import ChatState
from app.workspace.terminal import Output, Terminal

PIECE_CHARS = 8192  # output characters per message at most,
PIECE_BYTES = 24_000  # and what they take once encoded (escapes grow 6-fold in JSON)
WAIT_S = 5.0  # how often a quiet follower looks whether its page is still there
NO_SESSION = "Open a session first: the terminal opens in its project."


def _piece(terminal: Terminal, since: int) -> Output:
    """The next piece of output after `since`, small enough for one socket message."""
    piece = terminal.read(since, PIECE_CHARS)
    while len(piece.data) > 1 and len(json.dumps(piece.data)) > PIECE_BYTES:
        piece = terminal.read(since, len(piece.data) // 2)
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
            self.ended = "" if terminal.running else _ended(terminal)
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
        engine = services().engine
        while connected(token):
            async with self:
                if not self.showing or self.project_id != project_id or self._user_id != user_id:
                    return
                since, gen = self._sent, self._gen
            terminal = engine.terminal(user_id, project_id)
            if terminal is None:  # closed (here, in another tab, by a workspace restart)
                async with self:
                    if self.project_id == project_id and self._gen == gen:
                        self.ended = "The terminal was closed."
                return
            piece = _piece(terminal, since)
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
            if not terminal.running:
                async with self:
                    self.ended = _ended(terminal)
                return
            try:
                await asyncio.wait_for(terminal.wait(since), WAIT_S)
            except TimeoutError:
                continue

    @rx.event
    def missing(self, offset: int) -> None:
        """The page lost a piece (two messages rendered as one): send again from `offset`."""
        if 0 <= offset < self._sent:
            self._sent = offset

    @rx.event
    def keys(self, text: str) -> None:
        terminal = self._terminal()
        if terminal is None or not isinstance(text, str):
            return
        try:
            terminal.write(text)
        except Shown as error:
            self.error = ui_text(error)

    @rx.event
    def resized(self, cols: int, rows: int) -> None:
        terminal = self._terminal()
        if terminal is None:
            return
        try:
            terminal.resize(cols, rows)
        except Shown as error:
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

    def _terminal(self) -> Terminal | None:
        if not self._user_id or not self.project_id:
            return None
        return services().engine.terminal(self.user_id, self.project_id)


def _ended(terminal: Terminal) -> str:
    code = terminal.exit_code
    if code is None:
        return ""
    if code < 0:
        return f"The shell was stopped (signal {-code})."
    return f"The shell exited with code {code}."
