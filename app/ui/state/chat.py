"""The conversation view's state: one session, its blocks, the live stream and approvals.

Streaming follows the engine in a background task that reads events outside the state lock and
enters it only to apply a batch (at most one UI update per ~50 ms).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import reflex as rx

from app.agent.approvals import Answer
from app.agent.events import Event
from app.errors import AppError
from app.services import services
from app.ui import blocks as view
from app.ui.state.base import BaseState

logger = logging.getLogger(__name__)

BATCH_INTERVAL_S = 0.05
RECHECK_S = 30.0  # a follower with nothing to do checks whether it is still wanted


class ChatState(BaseState):
    session_id: str = ""
    title: str = ""
    model: str = ""
    mode: str = "default"
    status: str = ""
    blocks: list[dict[str, str]] = []
    streaming_text: str = ""
    pending: list[dict[str, Any]] = []
    error: str = ""
    cost: str = ""
    history_before: int = 0
    deny_reason: str = ""
    _last_seq: int = 0
    _generation: int = 0

    @rx.var
    def busy(self) -> bool:
        return self.status in ("running", "waiting", "starting")

    @rx.event
    async def open_session(self, session_id: str) -> Any:
        """Show a session: its latest history page, pending approvals, then follow it live."""
        if await self._load(session_id):
            return ChatState.follow
        return None

    @rx.event
    async def new_session(self) -> Any:
        if await self._create():
            return ChatState.follow
        return None

    @rx.event
    async def send(self, form: dict[str, Any]) -> Any:
        text = str(form.get("prompt", "")).strip()
        if not text:
            return None
        self.error = ""
        created = not self.session_id and await self._create()
        if not self.session_id:
            return None
        try:
            await services().engine.send(self.user_id, self.session_id, text)
        except AppError as error:
            self.error = error.message
        return ChatState.follow if created else None

    async def _create(self) -> bool:
        try:
            row = await services().engine.create_session(self.user_id)
        except AppError as error:
            self.error = error.message
            return False
        return await self._load(row.id)

    async def _load(self, session_id: str) -> bool:
        engine = services().engine
        try:
            row = await engine.get_session(self.user_id, session_id)
            page = await engine.history(self.user_id, session_id, limit=100)
            pending = await engine.pending_approvals(self.user_id, session_id)
        except AppError as error:
            self.reset()
            self.error = error.message
            return False
        self.session_id, self.title, self.model, self.mode = row.id, row.title, row.model, row.mode
        self.status = row.status
        self.cost = f"${row.cost_usd:.4f}"
        resume_at = engine.resume_point(session_id)
        blocks = view.from_history(page.messages)
        if resume_at < engine.last_seq(session_id):
            blocks = view.before_last_prompt(blocks)  # the running turn replays from the log
        self.blocks = blocks
        self.history_before = page.before or 0
        self.pending = pending
        self.streaming_text = ""
        self.error = (row.error or "") if row.status == "failed" else ""
        # Follow only events newer than what the history shows: nothing doubled.
        self._last_seq = resume_at
        self._generation += 1
        return True

    @rx.event
    async def stop(self) -> None:
        try:
            await services().engine.interrupt(self.user_id, self.session_id)
        except AppError as error:
            self.error = error.message

    @rx.event
    async def answer(self, request_id: str, decision: str) -> None:
        """decision: allow | always | deny."""
        answer = Answer(
            allow=decision != "deny",
            always=decision == "always",
            message=self.deny_reason.strip() if decision == "deny" else "",
        )
        try:
            await services().engine.answer(self.user_id, self.session_id, request_id, answer)
            self.deny_reason = ""
        except AppError as error:
            self.error = error.message
            self.pending = [p for p in self.pending if p["request_id"] != request_id]

    @rx.event
    def set_deny_reason(self, value: str) -> None:
        self.deny_reason = value

    @rx.event(background=True)
    async def follow(self) -> None:
        async with self:
            generation, session_id, after = self._generation, self.session_id, self._last_seq
            user_id = self.user_id
        if not session_id:
            return
        engine = services().engine
        while True:
            batches = await engine.subscribe_batches(user_id, session_id, after, BATCH_INTERVAL_S)
            try:
                while True:
                    batch = await asyncio.wait_for(anext(batches), RECHECK_S)
                    async with self:
                        if self._generation != generation:
                            return
                        self._apply(batch)
                        after = self._last_seq
            except TimeoutError:
                async with self:
                    if self._generation != generation:
                        return
            except StopAsyncIteration:
                return

    def _apply(self, batch: list[Event]) -> None:
        blocks = self.blocks
        changed = False
        for event in batch:
            data = event.to_dict()
            self._last_seq = event.seq
            if event.type == "text_delta":
                if not data.get("parent_tool_use_id"):
                    self.streaming_text += data["text"]
            elif event.type == "text":
                self.streaming_text = ""
                view.apply(blocks, data)
                changed = True
            elif event.type == "permission_request":
                self.pending = [*self.pending, data]
            elif event.type == "permission_resolved":
                self.pending = [p for p in self.pending if p["request_id"] != data["request_id"]]
            elif event.type == "status":
                self._apply_status(data)
            elif event.type in (
                "user_message",
                "thinking",
                "tool_use",
                "tool_result",
                "result",
                "error",
            ):
                view.apply(blocks, data)
                changed = True
                if event.type == "error":
                    self.error = data["message"]
        if changed:
            self.blocks = blocks

    def _apply_status(self, data: dict[str, Any]) -> None:
        if "status" in data:
            self.status = data["status"]
            if self.status != "running":
                self.streaming_text = ""
        self.model = data.get("model", self.model)
        self.mode = data.get("mode", self.mode)
