"""The agent engine's one door: every operation on sessions, in typed models (`schemas`).

It knows nothing of HTTP or Reflex; REST, `/ws`, `/invocations` and the web page are thin
adapters over these methods. Every method takes the acting user's id and refuses (NotFound)
any session that is not theirs, so no adapter can forget to authorise.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from app.agent import rewind
from app.agent.approvals import Answer, Approvals
from app.agent.extensions import ExtensionInstall, Extensions, ExtensionView
from app.agent.history import INTERRUPTED, find_transcript, read_page
from app.agent.journal import Follower, Journal
from app.agent.live import LiveAgent, TurnInProgress
from app.agent.mcp import McpServers, McpTest, handshake_stdio
from app.agent.mcp_remote import handshake_remote
from app.agent.processes import AgentPool, EngineConfig, ToolsFactory, as_mode
from app.agent.project_env import ProjectEnv
from app.agent.schemas import (
    HistoryQuery,
    HistoryView,
    ListQuery,
    ModeChange,
    ModelChange,
    NewProject,
    NewSession,
    PendingApproval,
    PermissionAnswer,
    ProjectView,
    Rename,
    Restarted,
    ResumeInfo,
    RewindView,
    SendMessage,
    Sent,
    SessionList,
    SessionView,
    StatusView,
    SyncStatus,
    TerminalOutput,
    TerminalView,
    TurnSummary,
)
from app.db.models import AgentSession, Project, utcnow
from app.db.store import Store
from app.errors import AgentFailed, AppError, Conflict, InvalidInput, NotFound
from app.sandbox.service import Sandbox
from app.workspace.place import ProjectPlace
from app.workspace.sync import WorkspaceSync
from app.workspace.terminal import Terminal, Terminals

__all__ = ["AgentEngine", "EngineConfig"]
logger = logging.getLogger(__name__)

NO_TERMINAL = "This project has no terminal open; open one first."
T = TypeVar("T")
_MODEL_NAME = re.compile(r"^[\w.:/@\[\]-]{1,200}$")
_SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
_PROJECT_NAME = re.compile(r"^[\w][\w .-]{0,99}$")
FIRST_MESSAGE_CHARS = 2000
SHUTDOWN_BACKUP_S = 120.0
TERMINAL_BACKUP_DELAY_S = 10.0  # after a command is entered: long enough for most to finish


class AgentEngine:
    def __init__(
        self,
        store: Store,
        config: EngineConfig,
        sandbox: Sandbox,
        workspaces: WorkspaceSync | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.sandbox = sandbox
        self.workspaces = workspaces
        self.journal = Journal(store)
        self.approvals = Approvals(store, self.journal)
        self.pool = AgentPool(store, config, sandbox, self.journal, self.approvals, workspaces)
        self.mcp: McpServers | None = None
        self.extensions: Extensions | None = None
        self.terminals = Terminals(
            sandbox,
            changed=lambda place: self.project_changed(place, delay=TERMINAL_BACKUP_DELAY_S),
            variables=self._variables,
        )

    def add_tools(self, factory: ToolsFactory) -> None:
        """MCP servers every session's agent may get (see AgentPool.tool_factories)."""
        self.pool.tool_factories.append(factory)

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Check the sandbox, recover honestly from the last run, then reap idle agents."""
        await self.sandbox.start()
        if self.config.recover_at_start:
            interrupted = await _run(self.store.mark_unfinished_sessions)
            lost = await _run(self.store.mark_lost_approvals)
            if interrupted or lost:
                logger.info(
                    "after restart: %d sessions interrupted, %d approvals lost",
                    len(interrupted),
                    lost,
                )
        await self.pool.start()

    async def shutdown(self) -> None:
        """Stop every CLI process (conversations stay resumable) and send what they left to
        S3 before the machine goes."""
        await self.pool.shutdown()
        await self.terminals.close_all()
        if self.workspaces is not None:
            await self.workspaces.flush(timeout=SHUTDOWN_BACKUP_S)
        self.journal.close_all()
        await self.sandbox.stop()

    def busy_count(self) -> int:
        """Turns running right now (for AgentCore's HealthyBusy)."""
        return self.pool.busy_count()

    def busy_changed_at(self) -> int:
        """When "a turn is running" last turned true or false (unix seconds)."""
        return int(self.pool.busy_since_change)

    # --- sessions -----------------------------------------------------------------------

    async def create(self, user_id: str, request: NewSession) -> SessionView:
        """A new conversation in the project (the user's default project if none), with its
        agent started so the first message answers at once; or, with `resume_session_id`,
        a stopped one started again."""
        if request.resume_session_id:
            row = await self._row(user_id, request.resume_session_id)
            await self._ensure_live(row)
            return await self.get(user_id, row.id)
        model = _check_model(request.model or self.config.default_model)
        self.sandbox.check()
        project = await self._project(user_id, request.project_id)
        row = AgentSession(
            user_id=user_id,
            project_id=project.id,
            model=model,
            mode=request.permission_mode,
            title=request.title.strip()[:200],
            max_budget_usd=request.max_budget_usd,
            mcp_json=json.dumps(self._mcp_choice(user_id, project.id, request.mcp_server_ids)),
        )
        row = await _run(self.store.add_session, row)
        await self.pool.ensure(row, project.name)
        return await self.get(user_id, row.id)

    async def warm(self, user_id: str, session_id: str) -> bool:
        """Start a stopped session's agent before its next prompt (the page does when the
        session is opened: the start, a second or so, passes while the user reads and
        types), if the user has room for it without stopping another agent; whether it is
        live. A start that fails says so in the session's events, as on a prompt."""
        row = await self._row(user_id, session_id)
        if row.id in self.pool.live:
            return True
        if row.status == "failed":  # shown with its reason; the next prompt tries again
            return False
        self.sandbox.check()
        project = await self._project(user_id, row.project_id)
        return await self.pool.warm(row, project.name)

    def use_mcp_servers(self, servers: McpServers) -> None:
        """The user's own MCP servers, chosen per session (`mcp_server_ids`)."""
        self.mcp = servers
        servers.admin = self.sandbox.gateway.policy
        self.sandbox.gateway.user_hosts = servers.hosts_of
        self.add_tools(servers.for_session)

    def use_extensions(self, extensions: Extensions) -> None:
        """The users' skills and plugins: the sandbox binds those enabled in a project,
        read-only, into agents started there from now on."""
        self.extensions = extensions
        self.sandbox.plugins_for = extensions.folders_for

    async def test_mcp_server(self, user_id: str, server_id: str) -> McpTest:
        """Start a stdio server in the user's jail (in its project, or the default one; no
        network) and list its tools, as a session would; say hello to a remote one through
        the user's egress allowlist, as their agents' proxy would."""
        if self.mcp is None:
            raise InvalidInput("MCP servers are not set up here.")
        server, config = await _run(self.mcp.opened, user_id, server_id)
        if config["type"] != "stdio":
            return await handshake_remote(config, await self.sandbox.gateway.policy_for(user_id))
        project = await self._project(user_id, server.project_id)
        place = await self.project_place(user_id, project.id)
        async with self.sandbox.command(
            user_id=user_id,
            project=place.project,
            project_name=place.project_name,
            home=place.home,
            argv=[config["command"], *config["args"]],
        ) as jailed:
            return await handshake_stdio(jailed.argv, str(jailed.cwd))

    def _mcp_choice(self, user_id: str, project_id: str, ids: list[str] | None) -> list[str]:
        if not ids:
            return []
        if self.mcp is None:
            raise InvalidInput("MCP servers are not set up here.")
        return self.mcp.check_choice(user_id, project_id, ids)

    async def fork(self, user_id: str, session_id: str, at: str | None = None) -> SessionView:
        """A new session that starts with a copy of this one's conversation: all of it, or
        (`at`, a prompt's uuid) up to and including that turn."""
        source = await self._row(user_id, session_id)
        if not source.has_transcript:
            raise Conflict("This session has no messages yet; there is nothing to fork.")
        if at is not None:
            return await self._fork_at(source, at)
        row = AgentSession(
            user_id=user_id,
            project_id=source.project_id,
            model=source.model,
            mode=source.mode,
            title=f"{source.title} (fork)"[:200],
            forked_from=source.id,
            rules_json=source.rules_json,
            mcp_json=source.mcp_json,
            max_budget_usd=source.max_budget_usd,
            first_message=source.first_message,
            message_count=source.message_count,
        )
        row = await _run(self.store.add_session, row)
        return await self.get(user_id, row.id)

    async def _fork_at(self, source: AgentSession, at: str) -> SessionView:
        """The fork's transcript is written now, cut after turn `at` (see app.agent.rewind),
        so the new session resumes it as its own."""
        home = self.pool.home(source.user_id)
        path = await self._transcript(source)
        title = f"{source.title} (fork)"[:200]
        copy = await _run(rewind.fork_copy, home, path, source.id, at, title)
        row = AgentSession(
            id=copy.session_id,
            user_id=source.user_id,
            project_id=source.project_id,
            model=source.model,
            mode=source.mode,
            title=title,
            forked_from=source.id,
            has_transcript=True,
            rules_json=source.rules_json,
            mcp_json=source.mcp_json,
            max_budget_usd=source.max_budget_usd,
            first_message=source.first_message,
            message_count=copy.message_count,
        )
        row = await _run(self.store.add_session, row)
        return await self.get(source.user_id, row.id)

    async def get(self, user_id: str, session_id: str) -> SessionView:
        row = await self._row(user_id, session_id)
        return (await self._views(user_id, [row]))[0]

    async def list_sessions(self, user_id: str, query: ListQuery) -> SessionList:
        rows, total = await _run(
            lambda: self.store.list_sessions(
                user_id=user_id,
                limit=query.limit,
                offset=query.offset,
                search=query.search.strip(),
            )
        )
        return SessionList(
            sessions=await self._views(user_id, list(rows)),
            has_more=query.offset + len(rows) < total,
            total=total,
            offset=query.offset,
            limit=query.limit,
        )

    async def live_sessions(self, user_id: str) -> list[SessionView]:
        ids = [a.session_id for a in self.pool.live.values() if a.user_id == user_id]
        rows = [await self._row(user_id, session_id) for session_id in ids]
        return await self._views(user_id, rows)

    async def rename(self, user_id: str, session_id: str, request: Rename) -> SessionView:
        title = request.title.strip()
        if not title:
            raise InvalidInput("A title needs 1 to 200 characters.")
        await self._row(user_id, session_id)
        await _run(self.store.update_session, session_id, title=title)
        self.journal.emit(session_id, "status", {"title": title})
        return await self.get(user_id, session_id)

    async def close(self, user_id: str, session_id: str) -> None:
        """Stop the session's agent process; the conversation stays listed and resumable."""
        await self._row(user_id, session_id)
        live = self.pool.live.get(session_id)
        if live is not None:
            await self.pool.stop(live, status="idle")
            self.journal.trim(session_id)

    async def close_all(self, user_id: str) -> list[str]:
        ids = [a.session_id for a in self.pool.live.values() if a.user_id == user_id]
        for session_id in ids:
            await self.close(user_id, session_id)
        return ids

    async def delete(self, user_id: str, session_id: str) -> None:
        """Gone for good: the agent stops and the session leaves the list."""
        await self.close(user_id, session_id)
        await _run(lambda: self.store.delete_session(user_id=user_id, session_id=session_id))
        self.journal.forget(session_id)

    # --- conversation -------------------------------------------------------------------

    async def send(self, user_id: str, session_id: str, request: SendMessage) -> Sent:
        """Start a turn. Its events (from `seq`, the prompt's own) arrive through `follow`.

        Whatever fails after the session was marked busy, it is made usable again, and the
        reason is in its events."""
        text = request.message.strip()
        if not text:
            raise InvalidInput("The message is empty.")
        if len(text) > self.config.max_message_chars:
            raise InvalidInput(
                f"The message is longer than {self.config.max_message_chars} characters."
            )
        row = await self._row(user_id, session_id)
        if request.model and request.model != row.model:
            await self.set_model(user_id, session_id, ModelChange(model=request.model))
        live = await self._ensure_live(row)
        if live.busy:
            raise Conflict("The agent is still answering; wait for it or stop it first.")
        # No await from here to the turn being set: nothing may stop the agent in between.
        prompt = self.journal.emit(session_id, "user_message", {"text": text})
        live.turn = TurnInProgress(
            prompt_seq=prompt.seq,
            started_at=utcnow(),
            started=time.monotonic(),
            cost_before=row.cost_usd,
            input_before=row.input_tokens,
            output_before=row.output_tokens,
        )
        live.touch()
        self.pool.note_busy()
        try:
            await self._begin_turn(row, text)
        except AppError as error:
            await self._abandon_turn(live, error.message)
            raise
        except Exception as error:
            logger.exception("session %s: could not start the turn", session_id)
            await self._abandon_turn(live, f"The message could not be recorded: {error}")
            raise AgentFailed(
                "The message could not be sent; nothing was lost, try again."
            ) from error
        try:
            await live.client.query(text, session_id=session_id)
        except Exception as error:
            await self.pool.fail(live, f"Could not send the message to the agent: {error}")
            raise AgentFailed(
                "The agent process stopped; send the message again to restart it."
            ) from error
        return Sent(session_id=session_id, seq=prompt.seq)

    async def _begin_turn(self, row: AgentSession, text: str) -> None:
        fields: dict[str, Any] = {"status": "running", "error": None, "has_transcript": True}
        if not row.title:
            fields["title"] = _title_from(text)
        if not row.first_message:
            fields["first_message"] = text[:FIRST_MESSAGE_CHARS]
        await _run(self.store.update_session, row.id, **fields)
        self.journal.emit(row.id, "status", {"status": "running", "live": True, **_named(fields)})

    async def _abandon_turn(self, live: LiveAgent, reason: str) -> None:
        self.journal.emit(live.session_id, "error", {"kind": "send_failed", "message": reason})
        await self.pool.end_turn(live, "failed")

    async def follow(
        self,
        user_id: str,
        session_id: str,
        after: int | None = None,
        *,
        until_turn_end: bool = False,
    ) -> Follower:
        """A reader of the session's events with seq > `after`; without `after`, from the
        running turn's prompt (or from now on, if none runs). Ownership is checked here,
        before the first event. A reader resuming at `after` with a turn reader's
        `until_turn_end` ends at once if that turn is already over."""
        await self._row(user_id, session_id)
        return Follower.of(
            self.journal.log(session_id),
            after,
            self.resume_point(session_id),
            until_turn_end=until_turn_end,
            running=lambda: self.is_busy(session_id),
        )

    async def resume_info(self, user_id: str, session_id: str) -> ResumeInfo:
        """Where a view that just loaded the session's history starts following it."""
        await self._row(user_id, session_id)
        live = self.pool.live.get(session_id)
        turn = live.turn if live is not None else None
        return ResumeInfo(
            resume_point=self.resume_point(session_id),
            last_seq=self.last_seq(session_id),
            busy=turn is not None,
            replay_since=(_utc(turn.started_at) if turn is not None else utcnow()).isoformat(),
        )

    def resume_point(self, session_id: str) -> int:
        """Where a view that just loaded the history should start following: before the
        running turn's prompt if a turn runs (its events replay whole), else the newest event."""
        live = self.pool.live.get(session_id)
        if live is not None and live.turn is not None:
            return live.turn.prompt_seq - 1
        return self.journal.last_seq(session_id)

    def last_seq(self, session_id: str) -> int:
        """The newest event's number (0 if none yet in this process)."""
        return self.journal.last_seq(session_id)

    def is_busy(self, session_id: str) -> bool:
        live = self.pool.live.get(session_id)
        return live is not None and live.busy

    async def interrupt(self, user_id: str, session_id: str) -> None:
        await self._row(user_id, session_id)
        live = self.pool.live.get(session_id)
        if live is None or live.turn is None:
            raise Conflict("Nothing is running in this session.")
        live.turn.interrupted = True
        await self.approvals.cancel_all(live, "Interrupted by the user.")
        await live.client.interrupt()

    async def set_mode(self, user_id: str, session_id: str, request: ModeChange) -> None:
        await self._row(user_id, session_id)
        live = self.pool.live.get(session_id)
        if live is not None:
            await live.client.set_permission_mode(as_mode(request.mode))
            live.mode = request.mode
        await _run(self.store.update_session, session_id, mode=request.mode)
        self.journal.emit(session_id, "status", {"mode": request.mode})

    async def set_model(self, user_id: str, session_id: str, request: ModelChange) -> None:
        model = _check_model(request.model)
        await self._row(user_id, session_id)
        live = self.pool.live.get(session_id)
        if live is not None:
            await live.client.set_model(model)
        await _run(self.store.update_session, session_id, model=model)
        self.journal.emit(session_id, "status", {"model": model})

    async def status(self, user_id: str, session_id: str) -> StatusView:
        view = await self.get(user_id, session_id)
        pending = await self.pending(user_id, session_id)
        return StatusView(
            **view.model_dump(),
            pending_permission=pending[0] if pending else None,
            pending_permissions=pending,
        )

    async def history(self, user_id: str, session_id: str, query: HistoryQuery) -> HistoryView:
        """A page of the conversation read from the CLI's transcript, newest last, each
        finished turn's last message carrying its footer."""
        row = await self._row(user_id, session_id)
        await self._restore(user_id, row.project_id, home_only=True)  # transcripts live there
        transcript_id = row.id if row.has_transcript or not row.forked_from else row.forked_from
        home = self.pool.home(user_id)
        path = await _run(find_transcript, home, transcript_id)
        metadata = {"session_id": row.id, "cwd": None, "git_branch": None, "version": None}
        if path is None:
            return HistoryView(
                messages=[],
                message_count=row.message_count,
                before=None,
                has_more=False,
                metadata=metadata,
            )
        page = await _run(lambda: read_page(home, path, before=query.before, limit=query.limit))
        messages = [_seed_shape(m) for m in page.messages]
        await self._attach_turns(row.id, messages, latest=query.before is None)
        return HistoryView(
            messages=messages,
            message_count=max(row.message_count, len(messages)),
            before=page.before,
            has_more=page.before is not None,
            metadata=page.metadata or metadata,
        )

    async def _attach_turns(
        self, session_id: str, messages: list[dict[str, Any]], *, latest: bool
    ) -> None:
        """Give each turn's last message in the page its footer (`turn`), matching turns to
        prompts by time: a turn's prompt is written right after the turn starts."""
        prompts = [
            (i, when) for i, m in enumerate(messages) if _is_prompt(m) and (when := _when(m))
        ]
        if not prompts:
            return
        turns = await _run(self.store.turns_of, session_id)
        free = list(prompts)
        for turn in turns:
            started = _utc(turn.started_at) - timedelta(seconds=2)
            match = next((i for i, when in free if when >= started), None)
            if match is None:
                continue
            free = [(i, when) for i, when in free if i > match]
            following = next((i for i, _ in prompts if i > match), None)
            if following is None and not latest:
                continue  # this turn's end is on a newer page
            end = (following if following is not None else len(messages)) - 1
            messages[end]["turn"] = TurnSummary(
                status=turn.status,
                cost_usd=turn.cost_usd,
                input_tokens=turn.input_tokens,
                output_tokens=turn.output_tokens,
                duration_ms=turn.duration_ms,
            ).model_dump()

    # --- approvals ----------------------------------------------------------------------

    async def pending(self, user_id: str, session_id: str) -> list[PendingApproval]:
        await self._row(user_id, session_id)
        return [PendingApproval(**p) for p in await self.approvals.pending(user_id, session_id)]

    async def answer(self, user_id: str, session_id: str, request: PermissionAnswer) -> None:
        await self._row(user_id, session_id)
        answer = Answer(
            allow=request.allowed,
            always=request.apply_suggestions,
            message=request.message,
            updated_input=request.updated_input,
        )
        live = self.pool.live.get(session_id)
        await self.approvals.answer(user_id, session_id, request.request_id, answer, live)

    # --- workspaces in S3 ---------------------------------------------------------------

    async def backup_now(self, user_id: str) -> list[SyncStatus]:
        """Send every project of the user's on this machine, and the CLI home, to S3 now."""
        if self.workspaces is None:
            raise Conflict("No S3 bucket is configured here (S3_BUCKET): there is no backup.")
        projects = await _run(lambda: self.store.list_projects(user_id=user_id))
        done: set[str] = set()
        for project in projects:
            if not self.pool.project_dir(user_id, project.id).exists():
                continue
            for scope in await self.pool.scopes(user_id, project.id, project.name):
                if scope.name not in done:
                    done.add(scope.name)
                    await self.workspaces.backup_now(scope)
        return await self.sync_status(user_id)

    async def restart_workspace(self, user_id: str) -> Restarted:
        """Start clean, keeping the work: every agent of the user's stops (its conversation
        stays resumable), every terminal closes, and the projects and CLI home go to S3 (when
        kept there) before anything else may stop this machine."""
        stopped = await self.close_all(user_id)
        terminals = await self.terminals.close_user(user_id)
        if self.workspaces is not None:
            await self.backup_now(user_id)
        return Restarted(stopped_sessions=stopped, closed_terminals=terminals)

    async def sync_status(self, user_id: str) -> list[SyncStatus]:
        if self.workspaces is None:
            return []
        return [SyncStatus(**asdict(p)) for p in self.workspaces.progress(user_id)]

    async def sync_updates(self, user_id: str) -> AsyncGenerator[list[SyncStatus], None]:
        """The user's sync progress now, then at each change (for pages)."""
        if self.workspaces is None:
            return
        async for progress in self.workspaces.updates(user_id):
            yield [SyncStatus(**asdict(p)) for p in progress]

    # --- projects and files -------------------------------------------------------------

    async def projects(self, user_id: str) -> list[ProjectView]:
        rows = await _run(lambda: self.store.list_projects(user_id=user_id))
        return [_project_view(p) for p in rows]

    async def create_project(self, user_id: str, request: NewProject) -> ProjectView:
        name = request.name.strip()
        if not _PROJECT_NAME.match(name):
            raise InvalidInput(
                "A project name is letters, digits, spaces, '.', '-' and '_' (1-100)."
            )
        row = await _run(lambda: self.store.ensure_project(user_id=user_id, name=name))
        return _project_view(row)

    async def project_place(self, user_id: str, project_id: str) -> ProjectPlace:
        """A project of the user's, restored if it was only in S3, for work the app does on
        it (git, the editor)."""
        project = await self._project(user_id, project_id)
        await self._restore(user_id, project.id)
        folder, home = self.pool.project_dir(user_id, project.id), self.pool.home(user_id)
        for made in (folder, home):
            await _run(lambda made=made: made.mkdir(parents=True, exist_ok=True))
        return ProjectPlace(user_id, project.id, folder, project.name, home)

    async def project_changed(self, place: ProjectPlace, delay: float = 0.0) -> None:
        """The app changed a project's files (the editor, a terminal): send them to S3 in
        `delay` seconds, as after an agent's turn (when workspaces are kept there)."""
        if self.workspaces is None:
            return
        for scope in await self.pool.scopes(place.user_id, place.project_id, place.project_name):
            if scope.root == place.project:
                self.workspaces.schedule_backup(scope, delay)

    async def install_extension(self, user_id: str, request: ExtensionInstall) -> ExtensionView:
        """A skill or plugin into the user's library (kept in S3 with the CLI home)."""
        view = await self.library().install(user_id, request)
        await self._library_changed(user_id)
        return view

    async def delete_extension(self, user_id: str, extension_id: str) -> None:
        await _run(self.library().delete, user_id, extension_id)
        await self._library_changed(user_id)

    def library(self) -> Extensions:
        """The users' skills and plugins (a clear error where they are not set up)."""
        if self.extensions is None:
            raise InvalidInput("Skills and plugins are not set up here.")
        return self.extensions

    async def _library_changed(self, user_id: str) -> None:
        """Send the library to S3 now (when workspaces are kept there): a new machine finds
        it, as it finds the CLI home."""
        if self.workspaces is None:
            return
        for scope in await self.pool.user_scopes(user_id):
            if scope.name == "extensions":
                self.workspaces.schedule_backup(scope)

    # --- terminals ------------------------------------------------------------------------

    async def open_terminal(
        self, user_id: str, project_id: str, cols: int, rows: int
    ) -> TerminalView:
        """The project's terminal (a shell in the user's sandbox): the running one, or a new
        one in the project restored from S3 first if need be."""
        self.sandbox.check()
        place = await self.project_place(user_id, project_id)
        terminal = await self.terminals.open(place, cols, rows)
        return TerminalView(
            running=terminal.running,
            exit_code=terminal.exit_code,
            start=terminal.read(0, 0).start,
            end=terminal.end,
        )

    async def terminal_output(
        self, user_id: str, project_id: str, since: int, limit: int, wait: float
    ) -> TerminalOutput:
        """At most `limit` characters of the terminal's output after offset `since`, waiting
        up to `wait` seconds when there is none yet; NotFound if none is open."""
        terminal = self._terminal(user_id, project_id)
        if wait and terminal.end <= since:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(terminal.wait(since), wait)
            if self.terminals.find(user_id, project_id) is not terminal:
                raise NotFound(NO_TERMINAL)  # closed meanwhile (not a shell that exited)
        piece = terminal.read(since, limit)
        return TerminalOutput(
            start=piece.start,
            end=piece.end,
            data=piece.data,
            running=terminal.running,
            exit_code=piece.exit_code,
        )

    async def terminal_input(self, user_id: str, project_id: str, text: str) -> None:
        """Keys typed or text pasted into the project's terminal."""
        self._terminal(user_id, project_id).write(text)

    async def terminal_resize(self, user_id: str, project_id: str, cols: int, rows: int) -> None:
        self._terminal(user_id, project_id).resize(cols, rows)

    def _terminal(self, user_id: str, project_id: str) -> Terminal:
        """The project's terminal, running or ended (found by its user: nobody else's)."""
        terminal = self.terminals.find(user_id, project_id)
        if terminal is None:
            raise NotFound(NO_TERMINAL)
        return terminal

    async def _variables(self, place: ProjectPlace) -> dict[str, str]:
        if self.pool.project_env is None:
            return {}
        return await self.pool.project_env.values(place.user_id, place.project_id)

    async def close_terminal(self, user_id: str, project_id: str) -> None:
        await self.terminals.close(user_id, project_id)

    async def _restore(self, user_id: str, project_id: str, *, home_only: bool = False) -> None:
        """A folder's first use since start brings it back from S3 (when one is set up)."""
        if self.workspaces is None:
            return
        project = await self._project(user_id, project_id)
        for scope in await self.pool.scopes(user_id, project.id, project.name):
            if not home_only or not scope.name.startswith("projects/"):
                await self.workspaces.ensure_restored(scope)

    # --- rewinding files -----------------------------------------------------------------

    async def rewind_preview(self, user_id: str, session_id: str, at: str) -> RewindView:
        """Which files rewinding to before turn `at` would change (the CLI's dry run)."""
        return await self._rewind(user_id, session_id, at, dry_run=True)

    async def rewind(self, user_id: str, session_id: str, at: str) -> RewindView:
        """Put the files the agent's edit tools changed back as they were before turn `at`.
        The conversation is kept as it is: to go back in it too, fork from the turn before."""
        view = await self._rewind(user_id, session_id, at, dry_run=False)
        if not view.can_rewind:
            raise Conflict(view.error or "These files cannot be rewound to before that turn.")
        return view

    async def _rewind(self, user_id: str, session_id: str, at: str, *, dry_run: bool) -> RewindView:
        """Checkpoints live in the CLI, so its agent is started (resumed) if need be; never
        while a turn runs, whose tools may be writing the very files."""
        row = await self._row(user_id, session_id)
        if not row.has_transcript:
            raise NotFound("No such turn in this session.")
        path = await self._transcript(row)
        home = self.pool.home(user_id)
        transcript = await _run(rewind.read_transcript, home, path, row.id)
        rewind.check_prompt(transcript, at)
        if self.is_busy(session_id):
            raise Conflict("The agent is still answering; wait for it or stop it first.")
        live = await self._ensure_live(row)
        if live.busy:
            raise Conflict("The agent is still answering; wait for it or stop it first.")
        # The CLI lists the files only in a dry run's answer: ask it first, then rewind.
        answer = await rewind.rewind_files(live.client, at, dry_run=True)
        if answer.get("canRewind") and not dry_run:
            done = await rewind.rewind_files(live.client, at, dry_run=False)
            answer = {**answer, "canRewind": done.get("canRewind"), "error": done.get("error")}
        live.touch()
        project = self.pool.project_dir(user_id, row.project_id)
        root = self.sandbox.workdir(project, live.project_name)
        can = bool(answer.get("canRewind"))
        if can and not dry_run:
            await self.pool.back_up(live)
        return RewindView(
            at=at,
            can_rewind=can,
            applied=can and not dry_run,
            files=rewind.relative(list(answer.get("filesChanged") or []), root),
            insertions=int(answer.get("insertions") or 0),
            deletions=int(answer.get("deletions") or 0),
            error=answer.get("error") or None,
        )

    async def turn_ids(self, user_id: str, session_id: str) -> list[str]:
        """The session's prompts' uuids, oldest first: the ids fork and rewind take."""
        row = await self._row(user_id, session_id)
        if not row.has_transcript:
            return []
        path = await self._transcript(row)
        home = self.pool.home(user_id)
        return rewind.prompt_ids(await _run(rewind.read_transcript, home, path, row.id))

    async def _transcript(self, row: AgentSession) -> Path:
        """The session's own transcript file (restored from S3 first if kept there)."""
        await self._restore(row.user_id, row.project_id, home_only=True)
        path = await _run(find_transcript, self.pool.home(row.user_id), row.id)
        if path is None:
            raise NotFound("This session's conversation is not on this machine.")
        return path

    # --- helpers ------------------------------------------------------------------------

    def project_dir(self, user_id: str, project_id: str) -> Path:
        return self.pool.project_dir(user_id, project_id)

    async def _ensure_live(self, row: AgentSession) -> LiveAgent:
        self.sandbox.check()
        project = await self._project(row.user_id, row.project_id)
        return await self.pool.ensure(row, project.name)

    async def _row(self, user_id: str, session_id: str) -> AgentSession:
        if not _SESSION_ID.match(session_id):
            raise NotFound("No such session.")
        return await _run(lambda: self.store.get_session(user_id=user_id, session_id=session_id))

    async def _project(self, user_id: str, project_id: str | None) -> Project:
        if project_id is not None and not _SESSION_ID.match(project_id):
            raise NotFound("No such project.")
        if project_id is None:
            return await _run(lambda: self.store.ensure_project(user_id=user_id, name="default"))
        return await _run(lambda: self.store.get_project(user_id=user_id, project_id=project_id))

    async def _views(self, user_id: str, rows: list[AgentSession]) -> list[SessionView]:
        projects = {p.id: p for p in await _run(lambda: self.store.list_projects(user_id=user_id))}
        return [self._view(row, projects.get(row.project_id)) for row in rows]

    def _view(self, row: AgentSession, project: Project | None) -> SessionView:
        name = project.name if project is not None else ""
        live = row.id in self.pool.live
        return SessionView(
            session_id=row.id,
            title=row.title,
            project_id=row.project_id,
            project=name,
            cwd=self.sandbox.workdir(self.pool.project_dir(row.user_id, row.project_id), name),
            model=row.model,
            current_model=row.model,
            permission_mode=row.mode,
            status=row.status,
            live=live,
            active=live,
            error=row.error,
            created_at=row.created_at.isoformat(),
            updated_at=row.updated_at.isoformat(),
            modified=row.updated_at.isoformat(),
            first_message=row.first_message or row.title,
            preview=row.title,
            message_count=row.message_count,
            cost_usd=row.cost_usd,
            input_tokens=row.input_tokens,
            output_tokens=row.output_tokens,
            turns=row.turns,
            rules=json.loads(row.rules_json or "[]"),
            forked_from=row.forked_from,
            last_seq=self.journal.last_seq(row.id),
            max_budget_usd=row.max_budget_usd,
        )

    # --- project environment variables ---------------------------------------------------

    def use_project_env(self, env: ProjectEnv) -> None:
        """Where the projects' variables are kept (sealed with the install's key); agents
        started from now on get their project's."""
        self.pool.project_env = env

    @property
    def project_env(self) -> ProjectEnv:
        if self.pool.project_env is None:
            raise RuntimeError("project variables are not set up (start_services does it)")
        return self.pool.project_env


def _project_view(project: Project) -> ProjectView:
    return ProjectView(
        project_id=project.id, name=project.name, created_at=project.created_at.isoformat()
    )


def _seed_shape(message: dict[str, Any]) -> dict[str, Any]:
    """A history message in the seed's shape (its own fields kept beside)."""
    kind = message.get("type")
    if kind in ("text", "thinking"):
        return {**message, "content": message.get("text", "")}
    if kind == "tool_use":
        return {
            **message,
            "tool_name": message.get("name"),
            "tool_input": message.get("input") or {},
            "tool_use_id": message.get("id"),
        }
    return message


def _is_prompt(message: dict[str, Any]) -> bool:
    return (
        message.get("type") == "text"
        and message.get("role") == "user"
        and not str(message.get("text", "")).startswith(INTERRUPTED)
    )


def _when(message: dict[str, Any]) -> datetime | None:
    stamp = message.get("timestamp")
    if not isinstance(stamp, str):
        return None
    try:
        return _utc(datetime.fromisoformat(stamp.replace("Z", "+00:00")))
    except ValueError:
        return None


def _utc(moment: datetime) -> datetime:
    """Databases hand back naive (SQLite) or aware (PostgreSQL) times; both are UTC here."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _named(fields: dict[str, Any]) -> dict[str, Any]:
    """The fields a reader shows (a new title) from a session update."""
    return {k: v for k, v in fields.items() if k == "title"}


async def _run(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Database and file work off the event loop, so streams never stall behind it."""
    return await asyncio.to_thread(fn, *args, **kwargs)


def _check_model(model: str) -> str:
    model = model.strip()
    if not _MODEL_NAME.match(model):
        raise InvalidInput("A model name is 1-200 letters, digits and . : / @ [ ] - _.")
    return model


def _title_from(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= 80 else line[:79].rstrip() + "…"
