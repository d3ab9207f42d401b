"""The conversation view's state: one session, its blocks, the live stream and approvals.

Streaming follows the engine in a background task that reads events outside the state lock and
enters it only to apply a batch (the first token after a pause at once, then a few ms apart at
a model's pace, at most one UI update per ~45 ms in a flood). Finished blocks are appended
once; the text being written lives in its own small var.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import reflex as rx

from app.agent.events import Event
from app.agent.history import before_turn
from app.agent.schemas import (
    HistoryQuery,
    ModeChange,
    ModelChange,
    NewSession,
    PermissionAnswer,
    SendMessage,
)
from app.errors import Conflict
from app.services import services
from app.ui import blocks as view
from app.ui.errors import Shown, ui_text
from app.ui.state import stream, turns
from app.ui.state.base import BaseState, connected
from app.ui.state.budget import BudgetState
from app.ui.state.mcp import McpState
from app.ui.state.stream import StreamState
from app.ui.state.turns import TurnsState

logger = logging.getLogger(__name__)

BATCH_INTERVAL_S = 0.045  # the pace of updates in a flood; at a model's pace, a third of it
RECHECK_S = 30.0  # a follower with nothing to do checks whether it is still wanted
HISTORY_PAGE = 100
START_WAIT_TICK = 0.05  # a prompt sent while its session is being created waits for it...
START_WAIT_TICKS = 12_000  # ...for up to ten minutes (a large workspace may be restoring)
FINISH_WAIT_TICKS = 100  # a prompt sent as the answer shows waits up to 5 s for the turn's end
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
    project_id: str = ""
    models: list[str] = []
    history_before: int = 0
    loading_older: bool = False
    deny_reason: str = ""
    starting: bool = False  # a session (and its agent, maybe its workspace) is on its way
    rewind_at: str = ""  # the turn (its prompt's uuid) whose rewind the dialog previews
    rewind_files: list[str] = []
    rewind_note: str = ""  # why nothing would be rewound, or why rewinding failed
    _last_seq: int = 0
    _generation: int = 0
    _root: str = ""  # the project as the agent sees it: tool paths are shown relative to it
    _cost_usd: float = 0.0
    # A model or mode picked while the session is still starting (or before there is one):
    # the session gets it once it exists.
    _picked: dict[str, str] = {}
    _inputs: dict[str, dict[str, Any]] = {}  # pending requests' tool input, by request id

    @rx.var
    def busy(self) -> bool:
        return self.status in ("running", "waiting", "starting")

    @rx.var
    def modes(self) -> list[str]:
        return MODES

    # --- opening and creating -----------------------------------------------------------

    @rx.event
    async def open_session(self, session_id: str) -> Any:
        """Show a session: its latest history page, pending approvals, then follow it live;
        a stopped agent is started meanwhile, so the next prompt does not wait for it."""
        if await self._load(session_id):
            return [ChatState.follow, *([] if self.live else [ChatState.warm])]
        return None

    @rx.event(background=True)
    async def warm(self) -> None:
        async with self:
            user_id, session_id = self.user_id, self.session_id
        try:
            await services().engine.warm(user_id, session_id)
        except Shown as error:  # not started: the next prompt starts it, or says why not
            logger.info("session %s not started ahead: %s", session_id, ui_text(error))

    @rx.event(background=True)
    async def new_session(self) -> AsyncIterator[Any]:
        from app.ui.state.workspace import WorkspaceState

        async with self:
            project_id = (await self.get_state(WorkspaceState)).project_id
        if await self._create(project_id):
            yield [ChatState.follow, _refresh_rail()]

    @rx.event(background=True)
    async def new_session_in(self, project_id: str) -> AsyncIterator[Any]:
        if await self._create(project_id):
            yield [ChatState.follow, _refresh_rail()]

    @rx.event(background=True)
    async def send(self, form: dict[str, Any]) -> AsyncIterator[Any]:
        """Send the prompt (starting a session first if none is open). The engine's work runs
        outside the state lock: restoring a workspace or starting an agent takes a while,
        and the page keeps showing progress meanwhile."""
        text = str(form.get("prompt", "")).strip()
        if not text:
            return
        async with self:
            self.error = ""
            user_id = self.user_id
        session_id = await self._settled_session()
        created = False
        if not session_id:
            created = await self._create()
            async with self:
                session_id = self.session_id
            if not session_id:
                return
        await self._turn_finished()
        try:
            await services().engine.send(user_id, session_id, SendMessage(message=text))
        except Shown as error:
            async with self:
                self.error = ui_text(error)
            return
        yield [ChatState.follow, _refresh_rail()] if created else _refresh_rail()

    @rx.event
    async def load_older(self) -> None:
        """The previous page of history, above what is shown."""
        if not self.history_before or self.loading_older:
            return
        self.loading_older = True
        try:
            page = await services().engine.history(
                self.user_id,
                self.session_id,
                HistoryQuery(before=self.history_before, limit=HISTORY_PAGE),
            )
        except Shown as error:
            self.error = ui_text(error)
        else:
            blocks = turns.keyed(view.from_history(page.messages, self._root), page.messages)
            turns.prepend(await self.get_state(TurnsState), blocks)
            self.history_before = page.before or 0
        self.loading_older = False

    async def _settled_session(self) -> str:
        """The open session once any creation on its way has finished: a prompt sent
        right after "New session" goes to that session instead of starting a second one."""
        for _ in range(START_WAIT_TICKS):
            async with self:
                if not self.starting:
                    return self.session_id
            await asyncio.sleep(START_WAIT_TICK)
        async with self:
            return self.session_id

    async def _turn_finished(self) -> None:
        """The page shows an answer a moment before its turn ends (the CLI's result follows
        the text): a prompt sent in between waits for that end instead of being refused as
        "still answering". An agent that is truly still at work refuses it after the wait."""
        for _ in range(FINISH_WAIT_TICKS):
            async with self:
                if self.status != "running":
                    return
            await asyncio.sleep(START_WAIT_TICK)

    async def _create(self, project_id: str | None = None) -> bool:
        """A new session, shown; called from background events (takes the lock itself).
        One creation at a time per page: a second click while one is on its way does
        nothing."""
        async with self:
            if self.starting:
                return False
            user_id = self.user_id
            self.starting = True
            mcp = await self.get_state(McpState)
            await mcp.load()  # servers added in another tab count too
            servers = mcp.chosen_for(project_id)
            budget, problem = (await self.get_state(BudgetState)).new_session_budget()
            if problem:  # shown under "New session"
                self.starting = False
                return False
        try:
            created = await services().engine.create(
                user_id,
                NewSession(
                    project_id=project_id or None, mcp_server_ids=servers, max_budget_usd=budget
                ),
            )
        except Shown as error:
            async with self:
                self.error, self.starting = ui_text(error), False
            return False
        except BaseException:
            async with self:
                self.starting = False
            raise
        async with self:  # shown in the same step that ends "starting": a waiting send sees it
            self.starting = False
            picked, self._picked = self._picked, {}
            if not await self._load(created.session_id):
                return False
            if "model" in picked:
                await self.change_model(picked["model"])
            if "mode" in picked:
                await self.change_mode(picked["mode"])
            return True

    async def _load(self, session_id: str) -> bool:
        engine = services().engine
        try:
            # Where to follow from first, then what came before it: what happens in between
            # is in both, and left out of the history (nothing lost, nothing twice).
            resume = await engine.resume_info(self.user_id, session_id)
            row = await engine.get(self.user_id, session_id)
            page = await engine.history(self.user_id, session_id, HistoryQuery(limit=HISTORY_PAGE))
            pending = await engine.pending(self.user_id, session_id)
        except Shown as error:
            await self.clear_view()
            self.error = ui_text(error)
            return False
        self.session_id, self.title, self.model = row.session_id, row.title, row.model
        self.mode, self.status, self.live = row.permission_mode, row.status, row.live
        self._cost_usd = row.cost_usd
        self.cost = f"${row.cost_usd:.4f}"
        self.project, self.project_id = row.project, row.project_id
        self._root = row.cwd
        self.models = list(services().settings.models)
        if row.model and row.model not in self.models:
            self.models = [row.model, *self.models]
        resume_at = resume.resume_point
        messages = before_turn(page.messages, resume.replay_since)
        blocks = turns.keyed(view.from_history(messages, self._root), messages)
        turns.show(await self.get_state(TurnsState), blocks)
        self.todos = view.latest_todos(blocks)
        self.history_before = page.before or 0
        self.pending = [pending_view(p.model_dump(), self._root) for p in pending]
        self._inputs = {p.request_id: p.input for p in pending}
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
        await self._control(lambda: services().engine.interrupt(self.user_id, self.session_id))

    @rx.event
    async def change_model(self, model: str) -> None:
        if self.starting or not self.session_id:
            self._picked = {**self._picked, "model": model}
            self.model = model
            return
        engine = services().engine
        if await self._control(
            lambda: engine.set_model(self.user_id, self.session_id, ModelChange(model=model))
        ):
            self.model = model

    @rx.event
    async def change_mode(self, mode: str) -> None:
        if self.starting or not self.session_id:
            self._picked = {**self._picked, "mode": mode}
            self.mode = mode
            return
        engine = services().engine
        if await self._control(
            lambda: engine.set_mode(self.user_id, self.session_id, ModeChange(mode=mode))
        ):
            self.mode = mode

    async def _control(self, action: Callable[[], Awaitable[None]]) -> bool:
        """Run an engine action; its error is shown where the user is looking."""
        try:
            await action()
        except Shown as error:
            self.error = ui_text(error)
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

    @rx.event
    def show_failure(self, message: str) -> None:
        """An unexpected server error, told in the page's error bar."""
        self.error = message

    # --- fork and rewind from a turn ---------------------------------------------------

    @rx.event
    async def fork_from(self, key: str) -> Any:
        """A new session with the conversation up to and including this turn, opened."""
        engine = services().engine
        try:
            at = await self._turn_id(key)
            fork = await engine.fork(self.user_id, self.session_id, at)
        except Shown as error:
            self.error = ui_text(error)
            return None
        return [ChatState.open_session(fork.session_id), _refresh_rail()]

    @rx.event
    async def preview_rewind(self, key: str) -> None:
        """Open the rewind dialog with the files that would change (the agent's dry run)."""
        engine = services().engine
        try:
            at = await self._turn_id(key)
            preview = await engine.rewind_preview(self.user_id, self.session_id, at)
        except Shown as error:
            self.error = ui_text(error)
            return
        self.rewind_files = preview.files
        self.rewind_note = preview.error or (
            "" if preview.files else "The agent's edits changed no file since this turn."
        )
        self.rewind_at = at

    @rx.event
    async def confirm_rewind(self) -> None:
        engine = services().engine
        try:
            done = await engine.rewind(self.user_id, self.session_id, self.rewind_at)
        except Shown as error:
            self.rewind_note = ui_text(error)  # in the dialog, where the user is looking
            return
        self.rewind_at = ""
        text = f"Files rewound to before that turn: {', '.join(done.files) or 'none changed'}."
        turns.note(await self.get_state(TurnsState), text)

    @rx.event
    def cancel_rewind(self) -> None:
        self.rewind_at = ""

    async def _turn_id(self, key: str) -> str:
        """A shown prompt's uuid: its own from history, or a live one's from the transcript."""
        if not key.startswith("seq"):
            return key
        after = turns.prompts_after(await self.get_state(TurnsState), key)
        ids = await services().engine.turn_ids(self.user_id, self.session_id)
        if after is None or after >= len(ids):
            raise Conflict("That turn is not in the conversation yet; try again in a moment.")
        return ids[-1 - after]

    # --- approvals ----------------------------------------------------------------------

    @rx.event
    async def answer(self, request_id: str, decision: str) -> None:
        """decision: allow | always | deny | keep_planning."""
        message = ""
        if decision == "deny":
            message = self.deny_reason.strip()
        elif decision == "keep_planning":
            message = self.deny_reason.strip() or "Keep planning: the plan is not approved yet."
        await self._answer(
            PermissionAnswer(
                request_id=request_id,
                allowed=decision in ("allow", "always"),
                apply_suggestions=decision == "always",
                message=message,
            )
        )

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
        original = self._inputs.get(request_id, {})
        answers = {q.question: self.answers[q.question] for q in request.questions}
        await self._answer(
            PermissionAnswer(
                request_id=request_id,
                allowed=True,
                updated_input={**original, "answers": answers},
            )
        )

    @rx.event
    def choose(self, question: str, option: str) -> None:
        self.answers = {**self.answers, question: option}

    @rx.event
    def set_deny_reason(self, value: str) -> None:
        self.deny_reason = value

    async def _answer(self, answer: PermissionAnswer) -> None:
        try:
            await services().engine.answer(self.user_id, self.session_id, answer)
            self.deny_reason = ""
            self.error = ""
        except Shown as error:
            self.error = ui_text(error)
            self.pending = [p for p in self.pending if p.request_id != answer.request_id]

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
            follower = await engine.follow(user_id, session_id, after)
            batches = follower.batches(BATCH_INTERVAL_S)
            try:
                while True:
                    batch = await asyncio.wait_for(anext(batches), RECHECK_S)
                    async with self:
                        if self._generation != generation or not self.signed_in_still():
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
                    self._inputs = {**self._inputs, data["request_id"]: data["input"]}
            elif event.type == "permission_resolved":
                self.pending = [p for p in self.pending if p.request_id != data["request_id"]]
            elif event.type == "status":
                rail = self._apply_status(data, streaming) or rail
            elif event.type == "usage":  # the relay's count: the session's total so far
                self._cost_usd = float(data.get("cost_usd") or 0)
                self.cost = f"${self._cost_usd:.4f}"
            elif event.type in view.BLOCK_EVENTS:
                if event.type == "text" and not data.get("parent_tool_use_id"):
                    kept = stream.finish(streaming, data["text"])
                    if kept and data["text"].strip():
                        data = {**data, "kept": kept}  # the page has the text
                turns.apply(conversation, data, self._root)
                if event.type == "tool_use" and data["name"] == "TodoWrite":
                    self.todos = view.todo_items(data["input"])
                if event.type == "error":
                    self.error = data["message"]
                if event.type == "turn_end":
                    rail = True
        stream.append(streaming, "".join(pieces))
        return rail

    def _apply_status(self, data: dict[str, Any], streaming: Any) -> bool:
        self.model = data.get("model", self.model)
        self.mode = data.get("mode", self.mode)
        self.title = data.get("title", self.title)  # the first prompt names a new session
        if "status" not in data:
            return "title" in data
        self.status = data["status"]
        self.live = bool(data.get("live", self.live))
        if self.status != "running":
            stream.abandon(streaming)
        return self.status in ("waiting", "failed", "idle")


def _refresh_rail() -> Any:
    from app.ui.state.sessions import SessionsState

    return SessionsState.refresh
