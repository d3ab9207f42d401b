"""The conversation view's state: one session, its blocks, the live stream and approvals.

Streaming follows the engine in a background task that reads events outside the state lock and
enters it only to apply a batch (at most one UI update per ~50 ms). Finished blocks are appended
once; the text being written lives in its own small var.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from typing import Any

import reflex as rx

from app.agent.approvals import Answer
from app.agent.events import Event
from app.errors import AppError
from app.services import services
from app.ui import blocks as view
from app.ui.state import stream, turns
from app.ui.state.base import BaseState, connected
from app.ui.state.stream import StreamState
from app.ui.state.turns import TurnsState

logger = logging.getLogger(__name__)

BATCH_INTERVAL_S = 0.045  # "about 50 ms": half of it is the typical wait a token sees
RECHECK_S = 30.0  # a follower with nothing to do checks whether it is still wanted
HISTORY_PAGE = 100
MODES = ["default", "acceptEdits", "plan", "bypassPermissions"]


@dataclass
class Question:
    question: str = ""
    header: str = ""
    options: list[str] = field(default_factory=list)
    multi: bool = False


@dataclass
class Pending:
    """A permission request as the approval card shows it."""

    request_id: str = ""
    tool_name: str = ""
    kind: str = "tool"
    summary: str = ""
    detail: str = ""
    plan: str = ""
    rules: str = ""
    questions: list[Question] = field(default_factory=list)


def pending_view(data: dict[str, Any], root: str = "") -> Pending:
    tool_input = view.relative_paths(data.get("input") or {}, root)
    questions = [
        Question(
            question=str(q.get("question", "")),
            header=str(q.get("header", "")),
            options=[str(o.get("label", "")) for o in q.get("options") or []],
            multi=bool(q.get("multiSelect")),
        )
        for q in tool_input.get("questions") or []
    ]
    return Pending(
        request_id=data["request_id"],
        tool_name=data["tool_name"],
        kind=data.get("kind", "tool"),
        summary=view.summarise(data["tool_name"], tool_input),
        detail=view.detail(data["tool_name"], tool_input),
        plan=str(tool_input.get("plan", "")),
        rules=", ".join(data.get("suggestions") or []),
        questions=questions,
    )


class ChatState(BaseState):
    session_id: str = ""
    title: str = ""
    model: str = ""
    mode: str = "default"
    status: str = ""
    live: bool = False
    pending: list[Pending] = []
    todos: list[dict[str, str]] = []
    expanded: list[str] = []
    answers: dict[str, str] = {}
    error: str = ""
    cost: str = ""
    project: str = ""
    models: list[str] = []
    history_before: int = 0
    loading_older: bool = False
    deny_reason: str = ""
    _last_seq: int = 0
    _generation: int = 0
    _root: str = ""
    _cost_usd: float = 0.0

    @rx.var
    def busy(self) -> bool:
        return self.status in ("running", "waiting", "starting")

    @rx.var
    def modes(self) -> list[str]:
        return MODES

    # --- opening and creating -----------------------------------------------------------

    @rx.event
    async def open_session(self, session_id: str) -> Any:
        """Show a session: its latest history page, pending approvals, then follow it live."""
        if await self._load(session_id):
            return ChatState.follow
        return None

    @rx.event
    async def new_session(self) -> Any:
        from app.ui.state.workspace import WorkspaceState

        workspace = await self.get_state(WorkspaceState)
        if await self._create(workspace.project_id):
            return [ChatState.follow, _refresh_rail()]
        return None

    @rx.event
    async def new_session_in(self, project_id: str) -> Any:
        if await self._create(project_id):
            return [ChatState.follow, _refresh_rail()]
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
            return None
        return [ChatState.follow, _refresh_rail()] if created else _refresh_rail()

    @rx.event
    async def load_older(self) -> None:
        """The previous page of history, above what is shown."""
        if not self.history_before or self.loading_older:
            return
        self.loading_older = True
        try:
            page = await services().engine.history(
                self.user_id, self.session_id, before=self.history_before, limit=HISTORY_PAGE
            )
        except AppError as error:
            self.error = error.message
        else:
            turns.prepend(
                await self.get_state(TurnsState), view.from_history(page.messages, self._root)
            )
            self.history_before = page.before or 0
        self.loading_older = False

    async def _create(self, project_id: str | None = None) -> bool:
        try:
            row = await services().engine.create_session(
                self.user_id, project_id=project_id or None
            )
        except AppError as error:
            self.error = error.message
            return False
        return await self._load(row.id)

    async def _load(self, session_id: str) -> bool:
        engine = services().engine
        try:
            row = await engine.get_session(self.user_id, session_id)
            page = await engine.history(self.user_id, session_id, limit=HISTORY_PAGE)
            pending = await engine.pending_approvals(self.user_id, session_id)
            project = await asyncio.to_thread(
                services().store.get_project, user_id=self.user_id, project_id=row.project_id
            )
        except AppError as error:
            await self.clear_view()
            self.error = error.message
            return False
        self.session_id, self.title, self.model, self.mode = row.id, row.title, row.model, row.mode
        self.status, self.live = row.status, engine.is_live(row.id)
        self._cost_usd = row.cost_usd
        self.cost = f"${row.cost_usd:.4f}"
        self.project = project.name
        self._root = str(engine.project_dir(self.user_id, row.project_id))
        self.models = list(services().settings.models)
        if row.model and row.model not in self.models:
            self.models = [row.model, *self.models]
        resume_at = engine.resume_point(session_id)
        blocks = view.from_history(page.messages, self._root)
        if resume_at < engine.last_seq(session_id):
            blocks = view.before_last_prompt(blocks)  # the running turn replays from the log
        turns.show(await self.get_state(TurnsState), blocks)
        self.todos = view.latest_todos(blocks)
        self.history_before = page.before or 0
        self.pending = [pending_view(p, self._root) for p in pending]
        stream.clear(await self.get_state(StreamState))
        self.expanded, self.answers = [], {}
        self.error = (row.error or "") if row.status == "failed" else ""
        # Follow only events newer than what the history shows: nothing doubled.
        self._last_seq = resume_at
        self._generation += 1
        return True

    async def clear_view(self) -> None:
        """Show no session (deleted, not found, or someone else's)."""
        self.reset()
        stream.clear(await self.get_state(StreamState))
        turns.show(await self.get_state(TurnsState), [])

    # --- controls -----------------------------------------------------------------------

    @rx.event
    async def stop(self) -> None:
        await self._control(services().engine.interrupt(self.user_id, self.session_id))

    @rx.event
    async def change_model(self, model: str) -> None:
        if await self._control(services().engine.set_model(self.user_id, self.session_id, model)):
            self.model = model

    @rx.event
    async def change_mode(self, mode: str) -> None:
        if await self._control(services().engine.set_mode(self.user_id, self.session_id, mode)):
            self.mode = mode

    async def _control(self, action: Awaitable[None]) -> bool:
        """Run an engine action; its error is shown where the user is looking."""
        try:
            await action
        except AppError as error:
            self.error = error.message
            return False
        return True

    @rx.event
    def toggle(self, block_id: str) -> None:
        """Show more / less of a long tool output."""
        if block_id in self.expanded:
            self.expanded = [b for b in self.expanded if b != block_id]
        else:
            self.expanded = [*self.expanded, block_id]

    @rx.event
    def dismiss_error(self) -> None:
        self.error = ""

    # --- approvals ----------------------------------------------------------------------

    @rx.event
    async def answer(self, request_id: str, decision: str) -> None:
        """decision: allow | always | deny | keep_planning."""
        message = ""
        if decision == "deny":
            message = self.deny_reason.strip()
        elif decision == "keep_planning":
            message = self.deny_reason.strip() or "Keep planning: the plan is not approved yet."
        answer = Answer(
            allow=decision in ("allow", "always"), always=decision == "always", message=message
        )
        await self._answer(request_id, answer)

    @rx.event
    async def answer_questions(self, request_id: str) -> None:
        """Send the AskUserQuestion form: each question's chosen option(s)."""
        request = next((p for p in self.pending if p.request_id == request_id), None)
        if request is None:
            return
        missing = [q.question for q in request.questions if not self.answers.get(q.question)]
        if missing:
            self.error = f"Choose an answer for: {missing[0]}"
            return
        row = await asyncio.to_thread(
            services().store.get_approval,
            user_id=self.user_id,
            session_id=self.session_id,
            approval_id=request_id,
        )
        original = json.loads(row.input_json)
        answers = {q.question: self.answers[q.question] for q in request.questions}
        await self._answer(
            request_id, Answer(allow=True, updated_input={**original, "answers": answers})
        )

    @rx.event
    def choose(self, question: str, option: str) -> None:
        self.answers = {**self.answers, question: option}

    @rx.event
    def set_deny_reason(self, value: str) -> None:
        self.deny_reason = value

    async def _answer(self, request_id: str, answer: Answer) -> None:
        try:
            await services().engine.answer(self.user_id, self.session_id, request_id, answer)
            self.deny_reason = ""
            self.error = ""
        except AppError as error:
            self.error = error.message
            self.pending = [p for p in self.pending if p.request_id != request_id]

    # --- following the live stream ------------------------------------------------------

    @rx.event(background=True)
    async def follow(self) -> AsyncIterator[Any]:
        async with self:
            generation, session_id, after = self._generation, self.session_id, self._last_seq
            user_id, token = self.user_id, self.router.session.client_token
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
                        rail_changed = self._apply(
                            batch,
                            await self.get_state(StreamState),
                            await self.get_state(TurnsState),
                        )
                        after = self._last_seq
                    if rail_changed:
                        yield _refresh_rail()
            except TimeoutError:
                async with self:
                    if self._generation != generation or not connected(token):
                        return
            except StopAsyncIteration:
                return

    def _apply(self, batch: list[Event], streaming: Any, conversation: Any) -> bool:
        """Fold a batch of events into the view; True if the session list should refresh."""
        rail = False
        pieces: list[str] = []
        for event in batch:
            data = event.to_dict()
            self._last_seq = event.seq
            if event.type == "text_delta":
                if not data.get("parent_tool_use_id"):
                    pieces.append(data["text"])
                continue
            stream.append(streaming, "".join(pieces))
            pieces = []
            if event.type == "permission_request":
                # A replayed turn repeats requests already loaded with the session.
                if all(p.request_id != data["request_id"] for p in self.pending):
                    self.pending = [*self.pending, pending_view(data, self._root)]
            elif event.type == "permission_resolved":
                self.pending = [p for p in self.pending if p.request_id != data["request_id"]]
            elif event.type == "status":
                rail = self._apply_status(data, streaming) or rail
            elif event.type in view.BLOCK_EVENTS:
                if event.type == "text" and not data.get("parent_tool_use_id"):
                    stream.clear(streaming)
                turns.apply(conversation, data, self._root)
                if event.type == "tool_use" and data["name"] == "TodoWrite":
                    self.todos = view.todo_items(data["input"])
                if event.type == "error":
                    self.error = data["message"]
                if event.type == "result":
                    self._cost_usd += float(data.get("cost_usd") or 0)
                    self.cost = f"${self._cost_usd:.4f}"
                    rail = True
        stream.append(streaming, "".join(pieces))
        return rail

    def _apply_status(self, data: dict[str, Any], streaming: Any) -> bool:
        if "status" not in data:
            self.model = data.get("model", self.model)
            self.mode = data.get("mode", self.mode)
            return False
        self.status = data["status"]
        self.live = bool(data.get("live", self.live))
        if self.status != "running":
            stream.clear(streaming)
        return self.status in ("waiting", "failed", "idle")


def _refresh_rail() -> Any:
    from app.ui.state.sessions import SessionsState

    return SessionsState.refresh
