"""The agent engine: sessions over `claude-agent-sdk`, their events, approvals and limits.

It knows nothing of HTTP or Reflex. Every public method takes the acting user's id and refuses
(with NotFound) any session that is not theirs, so adapters cannot forget to authorise.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import warnings
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar, get_args

from claude_agent_sdk import (
    CanUseToolShadowedWarning,
    ClaudeAgentOptions,
    ClaudeSDKClient,
    HookContext,
    HookMatcher,
    PermissionMode,
    PermissionResultAllow,
    PermissionResultDeny,
    PermissionUpdate,
    ResultMessage,
    SystemMessage,
    ToolPermissionContext,
)

from app.agent import approvals
from app.agent.approvals import Answer
from app.agent.environment import LAUNCHER, agent_env
from app.agent.events import Event, EventType, translate
from app.agent.history import HistoryPage, find_transcript, read_page
from app.agent.live import LiveAgent, PendingRequest
from app.agent.stream import EventLog
from app.db.models import AgentSession, Approval
from app.db.store import Store
from app.errors import AgentFailed, Conflict, InvalidInput, LimitReached

logger = logging.getLogger(__name__)

MODES: tuple[str, ...] = ("default", "acceptEdits", "plan", "bypassPermissions")
_MODEL_NAME = re.compile(r"^[\w.:/@\[\]-]{1,200}$")
T = TypeVar("T")


@dataclass(frozen=True)
class EngineConfig:
    projects_dir: Path
    homes_dir: Path
    model_env: Mapping[str, str]
    default_model: str
    max_agents_per_user: int = 3
    idle_timeout_s: float = 900.0
    max_message_chars: int = 100_000
    reap_interval_s: float = 30.0


class AgentEngine:
    def __init__(self, store: Store, config: EngineConfig) -> None:
        # In bypassPermissions the SDK warns that can_use_tool is skipped; our PreToolUse hook
        # covers the tools that must still reach the user, so the warning is expected.
        warnings.filterwarnings("ignore", category=CanUseToolShadowedWarning)
        self.store = store
        self.config = config
        self._live: dict[str, LiveAgent] = {}
        self._logs: dict[str, EventLog] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._reaper: asyncio.Task[None] | None = None

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Recover honestly from the last run, then start reaping idle agents."""
        interrupted = await _run(self.store.mark_unfinished_sessions)
        lost = await _run(self.store.mark_lost_approvals)
        if interrupted or lost:
            logger.info(
                "after restart: %d sessions interrupted, %d approvals lost", len(interrupted), lost
            )
        self._reaper = asyncio.create_task(self._reap_forever(), name="agent-reaper")

    async def shutdown(self) -> None:
        """Stop every CLI process; conversations stay resumable."""
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        await asyncio.gather(
            *(self._stop(live, status="idle") for live in list(self._live.values()))
        )
        for log in self._logs.values():
            log.close()

    def live_count(self, user_id: str | None = None) -> int:
        return sum(1 for a in self._live.values() if user_id is None or a.user_id == user_id)

    def busy_count(self) -> int:
        """Turns running right now (for AgentCore's HealthyBusy)."""
        return sum(1 for a in self._live.values() if a.busy)

    # --- sessions -----------------------------------------------------------------------

    async def create_session(
        self,
        user_id: str,
        *,
        project_id: str | None = None,
        model: str | None = None,
        mode: str = "default",
        title: str = "",
    ) -> AgentSession:
        """A new conversation in the project (the user's default project if none), with its
        agent process started so the first message answers at once."""
        _check_mode(mode)
        model = _check_model(model or self.config.default_model)
        project = await self._project(user_id, project_id)
        row = AgentSession(
            user_id=user_id, project_id=project.id, model=model, mode=mode, title=title[:200]
        )
        row = await _run(self.store.add_session, row)
        await self._ensure_live(row)
        return await self.get_session(user_id, row.id)

    async def fork_session(self, user_id: str, session_id: str) -> AgentSession:
        """A new session that starts with a copy of this one's conversation."""
        source = await self.get_session(user_id, session_id)
        if not source.has_transcript:
            raise Conflict("This session has no messages yet; there is nothing to fork.")
        row = AgentSession(
            user_id=user_id,
            project_id=source.project_id,
            model=source.model,
            mode=source.mode,
            title=f"{source.title} (fork)"[:200],
            forked_from=source.id,
            rules_json=source.rules_json,
        )
        return await _run(self.store.add_session, row)

    async def get_session(self, user_id: str, session_id: str) -> AgentSession:
        return await _run(lambda: self.store.get_session(user_id=user_id, session_id=session_id))

    async def list_sessions(
        self, user_id: str, *, limit: int = 50, offset: int = 0, search: str = ""
    ) -> tuple[list[AgentSession], int]:
        if not 1 <= limit <= 500 or offset < 0:
            raise InvalidInput("limit must be 1..500 and offset >= 0.")
        rows, total = await _run(
            lambda: self.store.list_sessions(
                user_id=user_id, limit=limit, offset=offset, search=search.strip()[:200]
            )
        )
        return list(rows), total

    def is_live(self, session_id: str) -> bool:
        return session_id in self._live

    def is_busy(self, session_id: str) -> bool:
        live = self._live.get(session_id)
        return live is not None and live.busy

    def live_session_ids(self, user_id: str) -> list[str]:
        return [a.session_id for a in self._live.values() if a.user_id == user_id]

    async def activate(self, user_id: str, session_id: str) -> AgentSession:
        """Make sure the session has a live agent process (resuming it if needed)."""
        row = await self.get_session(user_id, session_id)
        await self._ensure_live(row)
        return await self.get_session(user_id, session_id)

    async def rename_session(self, user_id: str, session_id: str, title: str) -> None:
        title = title.strip()
        if not title or len(title) > 200:
            raise InvalidInput("A title needs 1 to 200 characters.")
        await self.get_session(user_id, session_id)
        await _run(self.store.update_session, session_id, title=title)

    async def close_session(self, user_id: str, session_id: str) -> None:
        """Stop the session's agent process; the conversation stays resumable."""
        await self.get_session(user_id, session_id)
        live = self._live.get(session_id)
        if live is not None:
            await self._stop(live, status="idle")
            self._trim(session_id)

    async def delete_session(self, user_id: str, session_id: str) -> None:
        await self.close_session(user_id, session_id)
        await _run(lambda: self.store.delete_session(user_id=user_id, session_id=session_id))
        log = self._logs.pop(session_id, None)
        if log is not None:
            log.close()

    # --- conversation -------------------------------------------------------------------

    async def send(self, user_id: str, session_id: str, text: str) -> None:
        """Start a turn; its events arrive through `subscribe`."""
        text = text.strip()
        if not text:
            raise InvalidInput("The message is empty.")
        if len(text) > self.config.max_message_chars:
            raise InvalidInput(
                f"The message is longer than {self.config.max_message_chars} characters."
            )
        row = await self.get_session(user_id, session_id)
        live = await self._ensure_live(row)
        if live.busy:
            raise Conflict("The agent is still answering; wait for it or stop it first.")
        live.busy = True
        live.touch()
        live.turn_seq = self._log(session_id).append("user_message", {"text": text}).seq
        fields: dict[str, Any] = {"status": "running", "error": None, "has_transcript": True}
        if not row.title:
            fields["title"] = _title_from(text)
        await _run(self.store.update_session, session_id, **fields)
        self._emit(session_id, "status", {"status": "running"})
        try:
            await live.client.query(text, session_id=session_id)
        except Exception as error:
            await self._fail(live, f"Could not send the message to the agent: {error}")
            raise AgentFailed(
                "The agent process stopped; send the message again to restart it."
            ) from error

    async def subscribe(
        self, user_id: str, session_id: str, after: int = 0
    ) -> AsyncIterator[Event]:
        """Events with seq > after, then live ones. Checks ownership before the first event."""
        await self.get_session(user_id, session_id)
        return self._log(session_id).follow(after)

    async def subscribe_batches(
        self, user_id: str, session_id: str, after: int = 0, interval: float = 0.05
    ) -> AsyncIterator[list[Event]]:
        """`subscribe`, coalesced into at most one batch per `interval` (for UIs)."""
        await self.get_session(user_id, session_id)
        return self._log(session_id).follow_batches(after, interval)

    def last_seq(self, session_id: str) -> int:
        """The newest event's number (0 if none yet in this process)."""
        log = self._logs.get(session_id)
        return log.last_seq if log is not None else 0

    def resume_point(self, session_id: str) -> int:
        """Where a view that just loaded the history should start following: before the
        running turn's prompt if a turn runs (its events replay whole), else the newest event."""
        live = self._live.get(session_id)
        if live is not None and live.busy and live.turn_seq:
            return live.turn_seq - 1
        return self.last_seq(session_id)

    async def interrupt(self, user_id: str, session_id: str) -> None:
        await self.get_session(user_id, session_id)
        live = self._live.get(session_id)
        if live is None or not live.busy:
            raise Conflict("Nothing is running in this session.")
        for request_id in list(live.pending):
            await self._settle(
                live,
                request_id,
                Answer(allow=False, message="Interrupted by the user."),
                "cancelled",
            )
        await live.client.interrupt()

    async def set_mode(self, user_id: str, session_id: str, mode: str) -> None:
        _check_mode(mode)
        await self.get_session(user_id, session_id)
        live = self._live.get(session_id)
        if live is not None:
            await live.client.set_permission_mode(_as_mode(mode))
            live.mode = mode
        await _run(self.store.update_session, session_id, mode=mode)
        self._emit(session_id, "status", {"mode": mode})

    async def set_model(self, user_id: str, session_id: str, model: str) -> None:
        model = _check_model(model)
        await self.get_session(user_id, session_id)
        live = self._live.get(session_id)
        if live is not None:
            await live.client.set_model(model)
        await _run(self.store.update_session, session_id, model=model)
        self._emit(session_id, "status", {"model": model})

    async def history(
        self, user_id: str, session_id: str, *, before: int | None = None, limit: int = 50
    ) -> HistoryPage:
        """A page of the conversation read from the CLI's transcript, newest last."""
        if not 1 <= limit <= 500:
            raise InvalidInput("limit must be 1..500.")
        row = await self.get_session(user_id, session_id)
        transcript_id = row.id if row.has_transcript or not row.forked_from else row.forked_from
        path = await _run(find_transcript, self._home(user_id), transcript_id)
        if path is None:
            return HistoryPage(messages=[], before=None)
        return await _run(read_page, path, before=before, limit=limit)

    # --- approvals ----------------------------------------------------------------------

    async def pending_approvals(self, user_id: str, session_id: str) -> list[dict[str, Any]]:
        await self.get_session(user_id, session_id)
        rows = await _run(
            lambda: self.store.pending_approvals(user_id=user_id, session_id=session_id)
        )
        return [_approval_view(row) for row in rows]

    async def answer(self, user_id: str, session_id: str, request_id: str, answer: Answer) -> None:
        """Answer a pending request. Unknown, foreign, answered or lost requests are errors."""
        approval = await _run(
            lambda: self.store.get_approval(
                user_id=user_id, session_id=session_id, approval_id=request_id
            )
        )
        if approval.status != "pending":
            raise Conflict(_answered_text(approval.status))
        live = self._live.get(session_id)
        if live is None or request_id not in live.pending:
            await _run(self.store.mark_lost_approvals, session_id)
            raise Conflict(_answered_text("lost"))
        await self._settle(live, request_id, answer, "allowed" if answer.allow else "denied")

    async def _settle(self, live: LiveAgent, request_id: str, answer: Answer, status: str) -> None:
        request = live.pending.pop(request_id)
        rules: list[str] = []
        if answer.allow and answer.always:
            rules = [approvals.describe_rule(s) for s in request.suggestions]
            await self._add_rules(live.session_id, request.suggestions)
        decision = {"allow": answer.allow, "always": answer.always, "message": answer.message}
        await _run(
            lambda: self.store.resolve_approval(request_id, status=status, decision=decision)
        )
        if not request.future.done():
            request.future.set_result(answer)
        self._emit(
            live.session_id,
            "permission_resolved",
            {"request_id": request_id, "status": status, "message": answer.message, "rules": rules},
        )

    async def _ask(
        self,
        live: LiveAgent,
        tool_name: str,
        tool_input: dict[str, Any],
        suggestions: list[PermissionUpdate],
        tool_use_id: str | None,
    ) -> Answer:
        """Store the request, show it to every subscriber, and wait - without a timer."""
        row = Approval(
            session_id=live.session_id,
            user_id=live.user_id,
            tool_name=tool_name,
            tool_use_id=tool_use_id,
            input_json=json.dumps(tool_input),
            suggestions_json=json.dumps([approvals.describe_rule(s) for s in suggestions]),
        )
        row = await _run(self.store.add_approval, row)
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        live.pending[row.id] = PendingRequest(future, tool_input, suggestions)
        self._emit(live.session_id, "permission_request", _approval_view(row))
        await self._set_status(live.session_id, "waiting")
        try:
            return await future
        finally:
            live.pending.pop(row.id, None)
            if live.busy and not live.pending and not live.closing:
                await self._set_status(live.session_id, "running")

    async def _add_rules(self, session_id: str, suggestions: list[PermissionUpdate]) -> None:
        row = await _run(self.store.session_by_id, session_id)
        rules = json.loads(row.rules_json or "[]")
        for update in suggestions:
            if update.type == "addRules" and update.behavior == "allow":
                rules += [
                    r.tool_name + (f"({r.rule_content})" if r.rule_content else "")
                    for r in update.rules or []
                ]
        await _run(self.store.update_session, session_id, rules_json=json.dumps(sorted(set(rules))))

    # --- agent processes ----------------------------------------------------------------

    async def _ensure_live(self, row: AgentSession) -> LiveAgent:
        lock = self._locks.setdefault(row.id, asyncio.Lock())
        async with lock:
            live = self._live.get(row.id)
            if live is not None:
                return live
            await self._make_room(row.user_id)
            await self._set_status(row.id, "starting")
            client = ClaudeSDKClient(self._options(row))
            live = LiveAgent(session_id=row.id, user_id=row.user_id, client=client, mode=row.mode)
            client.options.stderr = live.stderr.append
            client.options.can_use_tool = self._can_use_tool(live)
            client.options.hooks = {
                "PreToolUse": [
                    HookMatcher(
                        matcher="|".join(approvals.USER_TOOLS), hooks=[self._user_tool_hook(live)]
                    )
                ]
            }
            try:
                await client.connect()
            except Exception as error:
                detail = live.stderr_tail() or str(error)
                await self._set_status(row.id, "failed", error=detail)
                self._emit(
                    row.id,
                    "error",
                    {"kind": "agent_failed", "message": f"The agent could not start: {detail}"},
                )
                raise AgentFailed(f"The agent could not start: {detail}") from error
            self._live[row.id] = live
            live.reader = asyncio.create_task(self._read(live), name=f"agent-reader-{row.id}")
            await self._set_status(row.id, "idle")
            return live

    def _options(self, row: AgentSession) -> ClaudeAgentOptions:
        cwd = self.project_dir(row.user_id, row.project_id)
        cwd.mkdir(parents=True, exist_ok=True)
        home = self._home(row.user_id)
        home.mkdir(parents=True, exist_ok=True)
        options = ClaudeAgentOptions(
            cwd=cwd,
            cli_path=LAUNCHER,
            env=agent_env(home=home, model_env=self.config.model_env),
            model=row.model or None,
            permission_mode=_as_mode(row.mode),
            include_partial_messages=True,
            setting_sources=["user", "project", "local"],
            allowed_tools=json.loads(row.rules_json or "[]"),
        )
        if row.has_transcript:
            options.resume = row.id
        elif row.forked_from:
            options.resume = row.forked_from
            options.fork_session = True
            options.session_id = row.id
        else:
            options.session_id = row.id
        return options

    def _can_use_tool(self, live: LiveAgent) -> Callable[..., Any]:
        async def can_use_tool(
            tool_name: str, tool_input: dict[str, Any], context: ToolPermissionContext
        ) -> PermissionResultAllow | PermissionResultDeny:
            # "Always allow" adds the CLI's suggested *rules*, to this session only: never a
            # settings file on disk, and never a silent switch of mode or extra directories.
            suggestions = [
                replace(s, destination="session")
                for s in context.suggestions
                if s.type == "addRules"
            ]
            answer = await self._ask(live, tool_name, tool_input, suggestions, context.tool_use_id)
            return approvals.to_result(answer, suggestions, tool_input)

        return can_use_tool

    def _user_tool_hook(self, live: LiveAgent) -> Callable[..., Any]:
        """AskUserQuestion and ExitPlanMode go to the user in every mode, even where the CLI
        would not ask can_use_tool (bypassPermissions)."""

        async def hook(
            hook_input: Any, tool_use_id: str | None, _context: HookContext
        ) -> dict[str, Any]:
            if live.mode != "bypassPermissions":
                return {}  # can_use_tool asks, with the full input (the plan text included)
            tool_input = dict(hook_input.get("tool_input") or {})
            answer = await self._ask(live, hook_input["tool_name"], tool_input, [], tool_use_id)
            return approvals.hook_output(answer, tool_input)

        return hook

    async def _read(self, live: LiveAgent) -> None:
        """Pump the CLI's messages into the session's event log until the process ends."""
        error: str | None = None
        try:
            async for message in live.client.receive_messages():
                live.touch()
                for event_type, data in translate(message):
                    self._emit(live.session_id, event_type, data)
                if isinstance(message, ResultMessage):
                    await self._finish_turn(live, message)
                elif isinstance(message, SystemMessage) and message.subtype == "init":
                    logger.debug("session %s: CLI ready", live.session_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the CLI died or spoke garbage: the session must not hang
            error = str(exc)
        if not live.closing:
            reason = error or "The agent process ended unexpectedly."
            await self._fail(live, f"{reason}\n{live.stderr_tail()}".strip())

    async def _finish_turn(self, live: LiveAgent, message: ResultMessage) -> None:
        usage = message.usage or {}
        await _run(
            lambda: self.store.add_result(
                live.session_id,
                cost_usd=float(message.total_cost_usd or 0.0),
                input_tokens=int(usage.get("input_tokens") or 0),
                output_tokens=int(usage.get("output_tokens") or 0),
            )
        )
        live.busy = False
        live.touch()
        await self._set_status(live.session_id, "idle")

    async def _fail(self, live: LiveAgent, detail: str) -> None:
        logger.warning(
            "session %s: agent failed: %s",
            live.session_id,
            detail.splitlines()[0] if detail else "",
        )
        await self._stop(live, status="failed", error=detail)
        self._emit(
            live.session_id,
            "error",
            {
                "kind": "agent_failed",
                "message": f"The agent process failed: {detail}. "
                "Send a message to resume the conversation.",
            },
        )

    async def _stop(self, live: LiveAgent, *, status: str, error: str | None = None) -> None:
        if live.closing:
            return
        live.closing = True
        self._live.pop(live.session_id, None)
        for request_id, request in list(live.pending.items()):
            request.future.cancel()
            live.pending.pop(request_id, None)
            self._emit(
                live.session_id, "permission_resolved", {"request_id": request_id, "status": "lost"}
            )
        await _run(self.store.mark_lost_approvals, live.session_id)
        if live.reader is not None and live.reader is not asyncio.current_task():
            live.reader.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(live.client.disconnect(), timeout=10)
        await self._set_status(live.session_id, status, error=error)

    async def _make_room(self, user_id: str) -> None:
        """Keep the user under the live-process limit, stopping their longest-idle agent if
        that frees a place; refuse when every agent of theirs is busy."""
        mine = [a for a in self._live.values() if a.user_id == user_id]
        if len(mine) < self.config.max_agents_per_user:
            return
        idle = sorted((a for a in mine if not a.busy and not a.pending), key=lambda a: a.last_used)
        if not idle:
            raise LimitReached(
                f"You already have {len(mine)} agents working (the limit is "
                f"{self.config.max_agents_per_user}). Stop one or wait for it to finish."
            )
        await self._stop(idle[0], status="idle")

    async def _reap_forever(self) -> None:
        while True:
            await asyncio.sleep(self.config.reap_interval_s)
            await self.reap_idle()

    async def reap_idle(self) -> int:
        """Stop agents idle longer than the configured time; returns how many."""
        stale = [
            a
            for a in list(self._live.values())
            if not a.busy and not a.pending and a.idle_for() >= self.config.idle_timeout_s
        ]
        for live in stale:
            logger.info("session %s: stopping idle agent", live.session_id)
            await self._stop(live, status="idle")
            self._trim(live.session_id)
        return len(stale)

    # --- helpers ------------------------------------------------------------------------

    def project_dir(self, user_id: str, project_id: str) -> Path:
        return self.config.projects_dir / user_id / project_id

    def _home(self, user_id: str) -> Path:
        return self.config.homes_dir / user_id

    async def _project(self, user_id: str, project_id: str | None) -> Any:
        if project_id is None:
            return await _run(lambda: self.store.ensure_project(user_id=user_id, name="default"))
        return await _run(lambda: self.store.get_project(user_id=user_id, project_id=project_id))

    def _log(self, session_id: str) -> EventLog:
        log = self._logs.get(session_id)
        if log is None:
            log = EventLog(lambda n: self.store.reserve_seq(session_id, n))
            self._logs[session_id] = log
        return log

    def _trim(self, session_id: str) -> None:
        """A stopped agent's turns are in its transcript: keep only the numbering in memory."""
        log = self._logs.get(session_id)
        if log is not None:
            log.trim()

    def _emit(self, session_id: str, event_type: EventType, data: dict[str, Any]) -> Event:
        return self._log(session_id).append(event_type, data)

    async def _set_status(self, session_id: str, status: str, *, error: str | None = None) -> None:
        await _run(self.store.update_session, session_id, status=status, error=error)
        data: dict[str, Any] = {"status": status, "live": session_id in self._live}
        if error:
            data["error"] = error
        self._emit(session_id, "status", data)


async def _run(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Database and file work off the event loop, so streams never stall behind it."""
    return await asyncio.to_thread(fn, *args, **kwargs)


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise InvalidInput(f"Unknown permission mode {mode!r}; use one of {', '.join(MODES)}.")


def _as_mode(mode: str) -> PermissionMode:
    assert mode in get_args(PermissionMode)
    return mode  # type: ignore[return-value]


def _check_model(model: str) -> str:
    model = model.strip()
    if not _MODEL_NAME.match(model):
        raise InvalidInput("A model name is 1-200 letters, digits and . : / @ [ ] - _.")
    return model


def _title_from(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= 80 else line[:79].rstrip() + "…"


def _answered_text(status: str) -> str:
    if status == "lost":
        return (
            "This permission request was lost: the agent process that asked it has stopped. "
            "Send your message again."
        )
    return f"This permission request was already answered ({status})."


def _approval_view(row: Approval) -> dict[str, Any]:
    return {
        "request_id": row.id,
        "tool_name": row.tool_name,
        "tool_use_id": row.tool_use_id,
        "input": json.loads(row.input_json),
        "suggestions": json.loads(row.suggestions_json),
        "kind": approvals.kind_of(row.tool_name),
        "created_at": row.created_at.isoformat(),
    }
