"""Agent processes: one Claude Code CLI per live session, in its sandbox, within limits.

Starts (with the user's live-process limit checked and taken in one step), reads each CLI's
messages into its session's journal, ends turns, and stops processes (asked, idle, failed, or
at shutdown). Conversations outlive processes: a stopped session resumes from its transcript.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import warnings
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, get_args

from claude_agent_sdk import (
    CanUseToolShadowedWarning,
    ClaudeAgentOptions,
    ClaudeSDKClient,
    HookMatcher,
    McpServerConfig,
    PermissionMode,
    ResultMessage,
)

from app.agent import approvals as approvals_module
from app.agent.approvals import Approvals
from app.agent.events import translate
from app.agent.history import place_transcript
from app.agent.journal import Journal
from app.agent.live import LiveAgent, budget_stop
from app.agent.project_env import ProjectEnv
from app.db.models import AgentSession, ModelUsage, Turn, utcnow
from app.db.store import Store
from app.errors import AgentFailed, AppError, LimitReached
from app.sandbox.service import Launch, Sandbox, workspace_name
from app.sandbox.usage import Usage
from app.workspace.sync import Scope, WorkspaceSync

logger = logging.getLogger(__name__)
T = TypeVar("T")
# Events that the conversation history shows as messages (for the seed's message_count).
_MESSAGE_EVENTS = ("text", "tool_use", "tool_result")


@dataclass(frozen=True)
class EngineConfig:
    projects_dir: Path
    homes_dir: Path
    default_model: str
    max_agents_per_user: int = 3
    idle_timeout_s: float = 300.0  # an idle CLI holds ~120 MB; a resume costs ~1-2 s
    max_message_chars: int = 100_000
    reap_interval_s: float = 30.0
    # Each user's skills and plugins (app/agent/extensions.py), kept in S3 like the CLI home.
    extensions_dir: Path | None = None
    # At start, every session the database says runs is this process's, from before it
    # restarted (not so with several instances: app/agent/cluster.py recovers per user).
    recover_at_start: bool = True


ToolsFactory = Callable[[AgentSession], Awaitable[dict[str, McpServerConfig]]]


class AgentPool:
    project_env: ProjectEnv | None = None  # the projects' variables (AgentEngine.use_project_env)

    def __init__(
        self,
        store: Store,
        config: EngineConfig,
        sandbox: Sandbox,
        journal: Journal,
        approvals: Approvals,
        workspaces: WorkspaceSync | None = None,
    ) -> None:
        # In bypassPermissions the SDK warns that can_use_tool is skipped; the PreToolUse hook
        # covers the tools that must still reach the user, so the warning is expected.
        warnings.filterwarnings("ignore", category=CanUseToolShadowedWarning)
        self.store = store
        self.config = config
        self.sandbox = sandbox
        self.journal = journal
        self.approvals = approvals
        self.workspaces = workspaces
        # MCP servers each session gets: the app's in-process tools (GitHub's, which run
        # outside the sandbox and hold what the agent must not) and those the user chose.
        self.tool_factories: list[ToolsFactory] = []
        self.live: dict[str, LiveAgent] = {}
        self._session_locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._user_locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._reaper: asyncio.Task[None] | None = None
        self.busy_since_change = time.time()  # when "any turn running" last flipped
        self._was_busy = False

    async def start(self) -> None:
        self._reaper = asyncio.create_task(self._reap_forever(), name="agent-reaper")

    async def shutdown(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        await asyncio.gather(
            *(
                self.stop(live, status="idle", cut_short="The app stopped while this ran.")
                for live in list(self.live.values())
            )
        )

    # --- counting -------------------------------------------------------------------------

    def count(self, user_id: str | None = None) -> int:
        return sum(1 for a in self.live.values() if user_id is None or a.user_id == user_id)

    def busy_count(self) -> int:
        return sum(1 for a in self.live.values() if a.busy)

    def note_busy(self) -> None:
        """Keep the time "any turn running" last changed (AgentCore's `/ping`)."""
        busy = self.busy_count() > 0
        if busy != self._was_busy:
            self._was_busy = busy
            self.busy_since_change = time.time()

    # --- starting -------------------------------------------------------------------------

    async def ensure(self, row: AgentSession, project_name: str) -> LiveAgent:
        """The session's live agent, started (or resumed) if it has none."""
        async with self._session_locks[row.id]:
            live = self.live.get(row.id)
            if live is not None:
                return live
            # Checking the limit and taking the place are one step: concurrent starts of
            # one user wait for each other here.
            async with self._user_locks[row.user_id]:
                await self._make_room(row.user_id)
                return await self._start(row, project_name)

    async def warm(self, row: AgentSession, project_name: str) -> bool:
        """Start the session's agent ahead of its next prompt, if the user has room for one
        more without stopping another; whether it is live now."""
        async with self._session_locks[row.id]:
            if row.id in self.live:
                return True
            async with self._user_locks[row.user_id]:
                if self.count(row.user_id) >= self.config.max_agents_per_user:
                    return False
                await self._start(row, project_name)
                return True

    async def _start(self, row: AgentSession, project_name: str) -> LiveAgent:
        await self.journal.set_status(row.id, "starting", live=False)
        try:
            if self.workspaces is not None:  # the project and the CLI home, from S3 first
                for scope in await self.scopes(row.user_id, row.project_id, project_name):
                    await self.workspaces.ensure_restored(scope)
            launch = await self._launch(row, project_name)
        except AppError as error:
            await self.journal.set_status(row.id, "failed", live=False, error=error.message)
            raise
        client = ClaudeSDKClient(_options(row, launch))
        servers: dict[str, McpServerConfig] = {}
        for factory in self.tool_factories:
            servers.update(await factory(row))
        client.options.mcp_servers = servers
        live = LiveAgent(
            session_id=row.id,
            user_id=row.user_id,
            client=client,
            mode=row.mode,
            project_id=row.project_id,
            project_name=project_name,
        )
        client.options.stderr = live.stderr.append
        client.options.can_use_tool = self.approvals.can_use_tool(live)
        client.options.hooks = {
            "PreToolUse": [
                HookMatcher(
                    matcher="|".join(approvals_module.USER_TOOLS),
                    hooks=[self.approvals.user_tool_hook(live)],
                )
            ]
        }
        try:
            await client.connect()
        except Exception as error:
            await self.sandbox.close(row.id)
            detail = live.stderr_tail() or str(error)
            self.journal.emit(
                row.id,
                "error",
                {"kind": "agent_failed", "message": f"The agent could not start: {detail}"},
            )
            await self.journal.set_status(row.id, "failed", live=False, error=detail)
            raise AgentFailed(f"The agent could not start: {detail}") from error
        live.touch()  # idle from now, not from before the (slow) start
        self.live[row.id] = live
        live.reader = asyncio.create_task(self._read(live), name=f"agent-reader-{row.id}")
        await self.journal.set_status(row.id, "idle", live=True)
        return live

    async def _launch(self, row: AgentSession, project_name: str) -> Launch:
        """The session's jail and door, with its transcript where the CLI will look for it."""
        cwd = self.project_dir(row.user_id, row.project_id)
        home = self.home(row.user_id)
        for folder in (cwd, home):
            await _run(_make_folder, folder)
        extra = {}
        if self.project_env is not None:  # set values apply to agents started from now on
            extra = await self.project_env.values(row.user_id, row.project_id)
        launch = await self.sandbox.open(
            session_id=row.id,
            user_id=row.user_id,
            project=cwd,
            project_name=project_name,
            home=home,
            record=self._record_usage,
            extra_env=extra,
        )
        resume = row.id if row.has_transcript else row.forked_from
        if resume:
            await _run(place_transcript, home, resume, launch.workdir)
        return launch

    async def _make_room(self, user_id: str) -> None:
        """Keep the user under the live-process limit, stopping their longest-idle agent if
        that frees a place; refuse when every agent of theirs is busy."""
        mine = [a for a in self.live.values() if a.user_id == user_id]
        if len(mine) < self.config.max_agents_per_user:
            return
        idle = sorted((a for a in mine if not a.busy and not a.pending), key=lambda a: a.last_used)
        if not idle:
            raise LimitReached(
                f"You already have {len(mine)} agents working (the limit is "
                f"{self.config.max_agents_per_user}). Stop one or wait for it to finish."
            )
        await self.stop(idle[0], status="idle")
        self.journal.trim(idle[0].session_id)

    # --- running --------------------------------------------------------------------------

    async def _read(self, live: LiveAgent) -> None:
        """Pump the CLI's messages into the session's journal until the process ends."""
        error: str | None = None
        try:
            async for message in live.client.receive_messages():
                live.touch()
                for event_type, data in translate(message):
                    self.journal.emit(live.session_id, event_type, data)
                    if live.turn is not None and event_type in _MESSAGE_EVENTS:
                        live.turn.messages += 1
                if isinstance(message, ResultMessage):
                    refused = self.sandbox.gateway.take_refusal(live.session_id)
                    stopped = budget_stop(message, live.client.options.max_budget_usd, refused)
                    if stopped:  # a budget ended the turn: say so in plain words, last
                        self.journal.emit(
                            live.session_id, "error", {"kind": "budget", "message": stopped}
                        )
                        await self.end_turn(live, "failed")
                        continue
                    await self.end_turn(live, "interrupted" if _interrupted(live) else "done")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the CLI died or spoke garbage: the session must not hang
            error = str(exc)
        if not live.closing:
            reason = error or "The agent process ended unexpectedly."
            await self.fail(live, f"{reason}\n{live.stderr_tail()}".strip())

    async def end_turn(self, live: LiveAgent, status: str, *, then_idle: bool = True) -> None:
        """The turn is over: record its footer, say so (`turn_end`), and go idle."""
        turn, live.turn = live.turn, None
        live.touch()
        self.note_busy()
        if turn is not None:
            await self.sandbox.gateway.settled(live.session_id, timeout=2.0)
            row = await _run(self.store.session_by_id, live.session_id)
            record = Turn(
                session_id=live.session_id,
                status=status,
                started_at=turn.started_at,
                ended_at=utcnow(),
                cost_usd=max(0.0, row.cost_usd - turn.cost_before),
                input_tokens=max(0, row.input_tokens - turn.input_before),
                output_tokens=max(0, row.output_tokens - turn.output_before),
                duration_ms=int((time.monotonic() - turn.started) * 1000),
            )
            await _run(lambda: self.store.add_turn(record, messages=turn.messages))
            self.journal.emit(
                live.session_id,
                "turn_end",
                {
                    "prompt_seq": turn.prompt_seq,
                    "status": status,
                    "cost_usd": record.cost_usd,
                    "input_tokens": record.input_tokens,
                    "output_tokens": record.output_tokens,
                    "duration_ms": record.duration_ms,
                },
            )
        if then_idle:
            await self.journal.set_status(live.session_id, "idle", live=True)
        await self.back_up(live)  # a consistent point: no tool of this turn is writing

    async def back_up(self, live: LiveAgent) -> None:
        """Send the agent's project and CLI home to S3 soon (coalesced, retried)."""
        if self.workspaces is None:
            return
        for scope in await self.scopes(live.user_id, live.project_id, live.project_name):
            self.workspaces.schedule_backup(scope)

    async def scopes(self, user_id: str, project_id: str, project_name: str) -> list[Scope]:
        """What of this user's is kept in S3 when this project is used."""
        mine = await self.user_scopes(user_id)
        folder = self.project_dir(user_id, project_id)
        name = f"projects/{workspace_name(project_name)}"
        return [Scope(user_id, mine[0].user_key, name, folder), *mine]

    async def user_scopes(self, user_id: str) -> list[Scope]:
        """What of this user's is kept in S3 whatever the project: the CLI home (transcripts,
        settings) and the library of skills and plugins."""
        user = await _run(self.store.get_user, user_id)
        key = user.external_id or user.id
        scopes = [Scope(user_id, key, "claude", self.home(user_id) / ".claude")]
        if self.config.extensions_dir is not None:
            library = self.config.extensions_dir / user_id
            await _run(lambda: library.mkdir(parents=True, exist_ok=True))
            scopes.append(Scope(user_id, key, "extensions", library))
        return scopes

    async def fail(self, live: LiveAgent, detail: str) -> None:
        """The CLI died: say why first (readers stop at the turn's end), then stop it."""
        logger.warning(
            "session %s: agent failed: %s",
            live.session_id,
            detail.splitlines()[0] if detail else "",
        )
        why = f"The agent process failed: {detail}."
        if "137" in detail and await self.sandbox.went_over_memory(live.user_id):
            limit = self.sandbox.config.memory_mb
            why = (
                f"The agent was stopped: your agents together went over their memory limit "
                f"({limit:,} MB, AGENT_MEMORY_MB)."
            )
        self.journal.emit(
            live.session_id,
            "error",
            {
                "kind": "agent_failed",
                "message": f"{why} Send a message to resume the conversation.",
            },
        )
        if live.turn is not None:
            await self.end_turn(live, "failed", then_idle=False)
        await self.stop(live, status="failed", error=detail)

    async def stop(
        self,
        live: LiveAgent,
        *,
        status: str,
        error: str | None = None,
        cut_short: str = "Stopped while it was answering.",
    ) -> None:
        """End the process. A turn still running ends as interrupted, and the session says
        so (`cut_short`) instead of pretending to be idle."""
        if live.closing:
            return
        live.closing = True
        self.live.pop(live.session_id, None)
        if live.turn is not None:
            await self.end_turn(live, "interrupted", then_idle=False)
            if status == "idle":
                status, error = "interrupted", cut_short
        await self.approvals.lose_all(live)
        if live.reader is not None and live.reader is not asyncio.current_task():
            live.reader.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(live.client.disconnect(), timeout=10)
        await self.sandbox.close(live.session_id)
        await self.journal.set_status(live.session_id, status, live=False, error=error)
        await self.back_up(live)

    async def _record_usage(self, session_id: str, user_id: str, usage: Usage) -> None:
        """A model request the relay saw: the session's cost, from the API's own figures."""
        row = ModelUsage(
            session_id=session_id,
            user_id=user_id,
            model=usage.model,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_creation_tokens=usage.cache_creation_tokens,
            cache_read_tokens=usage.cache_read_tokens,
            cost_usd=usage.cost_usd(),
        )
        session = await _run(self.store.add_usage, row)
        self.journal.emit(
            session_id,
            "usage",
            {
                "cost_usd": session.cost_usd,
                "input_tokens": session.input_tokens,
                "output_tokens": session.output_tokens,
            },
        )

    # --- reaping --------------------------------------------------------------------------

    async def _reap_forever(self) -> None:
        while True:
            await asyncio.sleep(self.config.reap_interval_s)
            await self.reap_idle()

    async def reap_idle(self) -> int:
        """Stop agents idle longer than the configured time; returns how many."""
        stale = [
            a
            for a in list(self.live.values())
            if not a.busy and not a.pending and a.idle_for() >= self.config.idle_timeout_s
        ]
        for live in stale:
            logger.info("session %s: stopping idle agent", live.session_id)
            await self.stop(live, status="idle")
            self.journal.trim(live.session_id)
        return len(stale)

    # --- places ---------------------------------------------------------------------------

    def project_dir(self, user_id: str, project_id: str) -> Path:
        return self.config.projects_dir / user_id / project_id

    def home(self, user_id: str) -> Path:
        return self.config.homes_dir / user_id


def _options(row: AgentSession, launch: Launch) -> ClaudeAgentOptions:
    options = ClaudeAgentOptions(
        cwd=launch.cwd,
        cli_path=launch.script,
        model=row.model or None,
        permission_mode=as_mode(row.mode),
        include_partial_messages=True,
        setting_sources=["user", "project", "local"],
        allowed_tools=json.loads(row.rules_json or "[]"),
        max_budget_usd=row.max_budget_usd,
        enable_file_checkpointing=True,  # so a turn's file changes can be rewound
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


def _make_folder(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)


def _interrupted(live: LiveAgent) -> bool:
    return live.turn is not None and live.turn.interrupted


def as_mode(mode: str) -> PermissionMode:
    assert mode in get_args(PermissionMode)
    return mode  # type: ignore[return-value]


async def _run(fn: Callable[..., T], *args: Any) -> T:
    """Database and file work off the event loop, so streams never stall behind it."""
    return await asyncio.to_thread(fn, *args)
