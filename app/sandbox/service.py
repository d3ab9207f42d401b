"""The sandbox as the engine sees it: `open` a session's jail and door, `close` them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from app.db.store import Store
from app.errors import AppError
from app.sandbox.cgroups import AgentGroups, Limits
from app.sandbox.environment import agent_env, bundled_cli, shell_env
from app.sandbox.gateway import Gateway, UsageRecorder
from app.sandbox.jail import (
    BWRAP,
    DOOR_PORT,
    HOME_INSIDE,
    WORKSPACE_INSIDE,
    Jail,
    give_to,
    jailed,
    plugin_options,
    write_launcher,
    write_unconfined_launcher,
)
from app.sandbox.policy import EgressPolicy, Entry, parse_allowlist
from app.sandbox.probe import probe
from app.sandbox.relay import ModelRelay, Upstream
from app.sandbox.usage import Usage

logger = logging.getLogger(__name__)

SHELL = ("/bin/bash", "--login")
OFF_WARNING = (
    "Agents run without a sandbox (AGENT_SANDBOX=off): they can read and change everything "
    "this app's user can, on this whole machine. Use this only on a single-user laptop."
)


class SandboxUnavailable(AppError):
    """No jail can be built here, so no agent may start (the message says how to fix it)."""

    status = 503
    code = "sandbox_unavailable"


@dataclass(frozen=True)
class SandboxConfig:
    enabled: bool = True
    uid_base: int = 200_000
    allowlist: tuple[Entry, ...] = field(default_factory=lambda: parse_allowlist("default"))
    readonly_paths: tuple[Path, ...] = ()
    cli: Path = field(default_factory=bundled_cli)
    bwrap: str = BWRAP
    niceness: int = 10  # agents and terminals yield the CPU to the app (AGENT_NICENESS)
    memory_mb: int = 4096  # a user's agents together, swap included (AGENT_MEMORY_MB)
    max_processes: int = 1024  # a user's agents together, threads included (AGENT_MAX_PROCESSES)


@dataclass(frozen=True)
class Launch:
    script: Path  # what the SDK runs as "the CLI"
    cwd: Path  # the project on this machine
    workdir: str  # the project as the agent sees it (the CLI files transcripts under it)


@dataclass(frozen=True)
class Jailed:
    argv: list[str]  # run it with cwd=`cwd` and an environment of the caller's choosing
    cwd: Path
    workdir: str  # the project's path as the command sees it
    home: str  # the user's CLI home as the command sees it


class Sandbox:
    def __init__(
        self,
        config: SandboxConfig,
        *,
        store: Store,
        upstream: Upstream,
        model_env: Mapping[str, str],
    ) -> None:
        self.config = config
        self.store = store
        self.upstream = upstream
        self.model_env = dict(model_env)
        self.gateway = Gateway(EgressPolicy(config.allowlist), ModelRelay(upstream))
        self.as_root = os.geteuid() == 0
        self.problem: str | None = None  # why no agent can start, when one cannot
        # The plugin folders an agent of (user id, project folder) gets, read-only (the
        # skills and plugins enabled in the project: app/agent/extensions.py).
        self.plugins_for: Callable[[str, Path], Sequence[Path]] | None = None
        self.groups: AgentGroups | None = None  # the agents' control groups, where possible
        self._oom_kills: dict[str, int] = {}  # user id -> the kernel's count, when last asked
        self._run_root: Path | None = None

    @property
    def warning(self) -> str | None:
        """What the page shows permanently while agents run unconfined."""
        return None if self.config.enabled else OFF_WARNING

    async def start(self) -> None:
        # Short: unix socket paths are limited to 108 bytes. Only the app can enter it.
        self._run_root = Path(tempfile.mkdtemp(prefix="agent-web-"))
        if self.config.enabled:
            self.problem = await probe(
                self._run_root, as_root=self.as_root, bwrap=self.config.bwrap
            )
            if self.problem:
                logger.error("no agent can start: %s", self.problem)
        else:
            logger.warning(OFF_WARNING)
        limits = Limits(self.config.niceness, self.config.memory_mb, self.config.max_processes)
        try:
            self.groups = await asyncio.to_thread(AgentGroups.open, limits)
        except OSError as error:
            logger.warning(
                "agents run at niceness %d but in no control group of their own (%s): where "
                "the kernel's autogroups are on, many agents can slow the app down, and no "
                "memory or process limit holds them",
                self.config.niceness,
                error,
            )
            return
        for controller, why in self.groups.missing.items():
            logger.warning("agents' control groups without %s: %s", controller, why)

    async def stop(self) -> None:
        await self.gateway.close_all()
        if self._run_root is not None:
            shutil.rmtree(self._run_root, ignore_errors=True)
        if self.groups is not None:
            await asyncio.to_thread(self.groups.close)

    def check(self) -> None:
        """SandboxUnavailable (with what to install) when no agent may start here."""
        if self.problem:
            raise SandboxUnavailable(self.problem)

    async def open(
        self,
        *,
        session_id: str,
        user_id: str,
        project: Path,
        project_name: str,
        home: Path,
        record: UsageRecorder,
        extra_env: Mapping[str, str] | None = None,
    ) -> Launch:
        """Prepare the session's door and launch script; SandboxUnavailable if jails cannot
        be built here. `extra_env` (the project's variables) is added to the agent's
        environment, never over what the sandbox sets itself."""
        self.check()
        assert self._run_root is not None, "the sandbox is not started"
        run_dir = self._run_root / session_id
        run_dir.mkdir(mode=0o700, exist_ok=True)
        bedrock = self.upstream.kind == "bedrock"
        plugins = await self._plugins(user_id, project)
        groups = await self._groups(user_id)
        if not self.config.enabled:
            door = await self.gateway.open(session_id, user_id, None, record)
            env = agent_env(
                home=str(home),
                door_url=f"http://127.0.0.1:{door.port}",
                token=door.token,
                bedrock=bedrock,
                model_env=self.model_env,
                path=os.environ.get("PATH", "/usr/bin:/bin"),
            )
            if self.as_root:  # the CLI refuses bypassPermissions as root unless told this
                env["IS_SANDBOX"] = "1"
            env = _under(env, extra_env)
            cli = [str(self.config.cli), *plugin_options([str(p) for p in plugins])]
            script = write_unconfined_launcher(
                run_dir, cli, env, niceness=self.config.niceness, groups=groups
            )
            return Launch(script=script, cwd=project, workdir=self.workdir(project, project_name))
        uid = await self._owner(user_id, project, home)
        door = await self.gateway.open(session_id, user_id, run_dir / "door.sock", record)
        workdir = self.workdir(project, project_name)
        env = agent_env(
            home=HOME_INSIDE,
            door_url=f"http://127.0.0.1:{DOOR_PORT}",
            token=door.token,
            bedrock=bedrock,
            model_env=self.model_env,
        )
        env = _under(env, extra_env)
        jail = self._jail(run_dir, project, home, workdir, env, uid)
        jail = replace(jail, plugins=plugins, groups=groups)
        script = await asyncio.to_thread(write_launcher, jail)
        return Launch(script=script, cwd=project, workdir=workdir)

    async def shell(
        self,
        *,
        shell_id: str,
        user_id: str,
        project: Path,
        project_name: str,
        home: Path,
        extra_env: Mapping[str, str] | None = None,
    ) -> Launch:
        """A terminal's shell: in the same jail as the user's agents, with the same reach (its
        own door: the egress proxy and nothing else), and no model token. `close(shell_id)`
        when it ends."""
        self.check()
        assert self._run_root is not None, "the sandbox is not started"
        run_dir = self._run_root / shell_id
        run_dir.mkdir(mode=0o700, exist_ok=True)
        workdir = self.workdir(project, project_name)
        groups = await self._groups(user_id)
        if not self.config.enabled:
            door = await self.gateway.open(shell_id, user_id, None, _no_model_use)
            env = shell_env(
                home=str(home),
                door_url=f"http://127.0.0.1:{door.port}",
                path=os.environ.get("PATH", "/usr/bin:/bin"),
            )
            env = _under(_terminal(env), extra_env)
            script = write_unconfined_launcher(
                run_dir, SHELL, env, niceness=self.config.niceness, groups=groups
            )
            return Launch(script=script, cwd=project, workdir=workdir)
        uid = await self._owner(user_id, project, home)
        await self.gateway.open(shell_id, user_id, run_dir / "door.sock", _no_model_use)
        env = shell_env(home=HOME_INSIDE, door_url=f"http://127.0.0.1:{DOOR_PORT}")
        env = _under(_terminal(env), extra_env)
        jail = self._jail(run_dir, project, home, workdir, env, uid)
        jail = replace(jail, new_session=False, groups=groups)
        script = await asyncio.to_thread(write_launcher, jail, SHELL)
        return Launch(script=script, cwd=project, workdir=workdir)

    async def went_over_memory(self, user_id: str) -> bool:
        """Whether the kernel ended one of the user's processes for memory since last asked
        (an agent that died of it is told so, not just "exit code 137")."""
        if self.groups is None:
            return False
        kills = await asyncio.to_thread(self.groups.oom_kills, user_id)
        seen, self._oom_kills[user_id] = self._oom_kills.get(user_id, 0), kills
        return kills > seen

    async def _groups(self, user_id: str) -> tuple[Path, ...]:
        """Where the user's agents and terminals go for their share of the CPU and their
        memory and process limits, if anywhere."""
        if self.groups is None:
            return ()
        return await asyncio.to_thread(self.groups.procs_for, user_id)

    async def _plugins(self, user_id: str, project: Path) -> list[Path]:
        if self.plugins_for is None:
            return []
        return list(await asyncio.to_thread(self.plugins_for, user_id, project))

    async def _owner(self, user_id: str, project: Path, home: Path) -> int | None:
        """The host uid the user's jail runs as (when the app is root: the user's own, made
        the owner of their folders), or None (the app's own user)."""
        if not self.as_root:
            return None
        uid = await asyncio.to_thread(self.store.sandbox_uid, user_id, self.config.uid_base)
        await asyncio.to_thread(give_to, project, uid)
        await asyncio.to_thread(give_to, home, uid)
        return uid

    @contextlib.asynccontextmanager
    async def command(
        self,
        *,
        user_id: str,
        project: Path,
        project_name: str,
        home: Path,
        argv: Sequence[str],
    ) -> AsyncIterator[Jailed]:
        """`argv` as the user's agent would run it (in the jail, without network), for the
        app's own work on a project; the command's files go when the block ends."""
        self.check()
        assert self._run_root is not None, "the sandbox is not started"
        workdir = self.workdir(project, project_name)
        if not self.config.enabled:
            yield Jailed(list(argv), project, workdir, str(home))
            return
        uid = None
        if self.as_root:
            uid = await asyncio.to_thread(self.store.sandbox_uid, user_id, self.config.uid_base)
            await asyncio.to_thread(give_to, project, uid)
        run_dir = self._run_root / f"cmd-{secrets.token_hex(8)}"
        jail = self._jail(run_dir, project, home, workdir, {}, uid)
        try:
            argv_inside = await asyncio.to_thread(jailed, jail, argv)
            yield Jailed(argv_inside, project, workdir, HOME_INSIDE)
        finally:
            shutil.rmtree(run_dir, ignore_errors=True)

    def _jail(
        self,
        run_dir: Path,
        project: Path,
        home: Path,
        workdir: str,
        env: Mapping[str, str],
        uid: int | None,
    ) -> Jail:
        return Jail(
            run_dir=run_dir,
            project=project,
            home=home,
            workdir=workdir,
            cli=self.config.cli,
            env=env,
            uid=uid,
            readonly_paths=self.config.readonly_paths,
            bwrap=self.config.bwrap,
            niceness=self.config.niceness,
        )

    def workdir(self, project: Path, project_name: str) -> str:
        """Where the agent finds its project: `/workspace/<name>` in the jail, else the
        folder itself. Its transcripts are filed under this path, and tools print it."""
        if not self.config.enabled:
            return str(project)
        return f"{WORKSPACE_INSIDE}/{workspace_name(project_name)}"

    async def close(self, session_id: str) -> None:
        """The session's agent stopped: its door (and token) go with it."""
        await self.gateway.close(session_id)
        if self._run_root is not None:
            shutil.rmtree(self._run_root / session_id, ignore_errors=True)


def _terminal(env: dict[str, str]) -> dict[str, str]:
    """A shell's environment for the page's terminal (xterm.js: 256 colours and more)."""
    return {"LANG": "C.UTF-8", **env, "TERM": "xterm-256color", "COLORTERM": "truecolor"}


def _under(env: dict[str, str], extra: Mapping[str, str] | None) -> dict[str, str]:
    """`env` with `extra` (a project's variables) added beneath it: what the sandbox sets
    itself always wins."""
    return {**(extra or {}), **env}


async def _no_model_use(session_id: str, user_id: str, usage: Usage) -> None:
    """A terminal's door relays no model request (its shell has no token), so this never
    records anything."""


def workspace_name(project_name: str) -> str:
    """A project's folder name inside the jail: readable, and safe in a path."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", project_name).strip("-.")[:80] or "project"
