"""One container per runtime session: started on first use, ended the way AgentCore ends it.

A "container" is a local process group standing in for a session's microVM: its own port, a
fresh empty folder as its disk (`DATA_DIR`), and the contract's health check. Sessions end on
idle timeout (unless the container reports HealthyBusy), maximum lifetime, StopRuntimeSession,
an unexpected exit, or emulator shutdown; the disk goes with them, so a session id used again
starts from nothing, as on AWS.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import tempfile
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio.to_thread
import httpx

from app.devtools.agentcore.config import EmulatorSettings

logger = logging.getLogger(__name__)
# Containers' own output, one record a line, so it can be silenced apart from the emulator's.
container_logger = logging.getLogger(f"{__name__}.output")

HEALTHY_STATES = frozenset({"Healthy", "HealthyBusy"})
_LOG_TAIL_LINES = 40
_PING_TIMEOUT_S = 2.0
_START_POLL_S = 0.05
_OUTPUT_DRAIN_S = 1.0


class StartError(Exception):
    """The container did not become healthy: the caller gets 424."""


@dataclass(frozen=True)
class ContainerStart:
    """One cold start, for benches: seconds from spawning the process to a healthy /ping."""

    session_id: str
    pid: int
    seconds: float


class Container:
    """A running session's process, where it listens, and when it was last used."""

    def __init__(
        self, session_id: str, process: asyncio.subprocess.Process, port: int, data_dir: Path
    ) -> None:
        self.session_id = session_id
        self.process = process
        self.port = port
        self.data_dir = data_dir
        self.started_at = time.monotonic()
        self.last_activity = self.started_at
        self.in_flight = 0
        self.output_tail: deque[str] = deque(maxlen=_LOG_TAIL_LINES)
        self.output_reader: asyncio.Task[None] | None = None

    @property
    def label(self) -> str:
        """Short enough for log lines (session ids run to 256 characters), still telling."""
        sid = self.session_id
        shown = sid if len(sid) <= 40 else f"{sid[:18]}…{sid[-18:]}"
        return f"session {shown} (pid {self.process.pid})"

    def url(self, path: str, query: str = "", scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}" + (f"?{query}" if query else "")

    def touch(self) -> None:
        """Traffic in either direction: the idle timer starts again."""
        self.last_activity = time.monotonic()

    @contextlib.contextmanager
    def request(self) -> Iterator[None]:
        """An HTTP exchange in progress keeps the session from counting as idle."""
        self.in_flight += 1
        self.touch()
        try:
            yield
        finally:
            self.in_flight -= 1
            self.touch()


class ContainerPool:
    """The running sessions of one emulator; every method runs on the emulator's event loop."""

    def __init__(
        self,
        settings: EmulatorSettings,
        client: httpx.AsyncClient,
        on_start: Callable[[ContainerStart], None],
    ) -> None:
        self._settings = settings
        self._client = client
        self._on_start = on_start
        self._running: dict[str, Container] = {}
        self._starting: dict[str, asyncio.Task[Container]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping: set[asyncio.Task[None]] = set()

    def session_ids(self) -> list[str]:
        """Safe from other threads: dict.copy() is atomic under the GIL."""
        return list(self._running.copy())

    def disk(self, session_id: str) -> Path | None:
        """The running session's disk (for tests and benches that plant files in a microVM)."""
        container = self._running.get(session_id)
        return container.data_dir if container is not None else None

    async def get(self, session_id: str) -> Container:
        """The session's container, started on first use; concurrent callers share one start."""
        if (container := self._running.get(session_id)) is not None:
            return container
        task = self._starting.get(session_id)
        if task is None:
            task = asyncio.create_task(self._start(session_id))
            self._starting[session_id] = task
            task.add_done_callback(lambda _: self._starting.pop(session_id, None))
        # Shielded: one caller giving up must not cancel the start the others wait for.
        return await asyncio.shield(task)

    async def end(self, session_id: str, reason: str) -> bool:
        """Stop the session's process group and delete its disk; False if it was not running."""
        container = self._running.pop(session_id, None)
        if container is None:
            return False
        lived = time.monotonic() - container.started_at
        logger.info("%s ended (%s) after %.1f s", container.label, reason, lived)
        # A task of its own: a caller cancelled meanwhile (a client gone, the watcher stopped
        # at shutdown) must not leave the process half-stopped or the disk behind.
        stopping = asyncio.create_task(self._terminate(container))
        self._stopping.add(stopping)
        stopping.add_done_callback(self._stopping.discard)
        await asyncio.shield(stopping)
        return True

    async def watch(self) -> None:
        """Forever: end sessions past their idle timeout or lifetime, every ping interval."""
        while True:
            await asyncio.sleep(self._settings.ping_interval_s)
            await asyncio.gather(*(self._check(c) for c in list(self._running.values())))

    async def shutdown(self) -> None:
        """End every session, including those still starting."""
        for task in list(self._starting.values()):
            task.cancel()
        await asyncio.gather(*self._starting.values(), return_exceptions=True)
        await asyncio.gather(*(self.end(sid, "emulator shutdown") for sid in list(self._running)))
        await asyncio.gather(*self._stopping, return_exceptions=True)

    async def _check(self, container: Container) -> None:
        settings = self._settings
        if time.monotonic() - container.started_at >= settings.max_lifetime_s:
            await self.end(container.session_id, "maximum lifetime")
            return
        # HealthyBusy (background work) counts as activity, as AgentCore does not idle it out.
        if await self._ping(container) == "HealthyBusy" or container.in_flight:
            container.touch()
        elif time.monotonic() - container.last_activity >= settings.idle_timeout_s:
            await self.end(container.session_id, "idle timeout")

    async def _start(self, session_id: str) -> Container:
        settings = self._settings
        port = _free_port()
        data_dir = Path(tempfile.mkdtemp(prefix="agentcore-session-"))
        env = {
            **os.environ,
            **settings.container_env,
            "PORT": str(port),
            "HOST": "127.0.0.1",
            "DATA_DIR": str(data_dir),
        }
        spawned = time.monotonic()
        try:
            process = await asyncio.create_subprocess_exec(
                *settings.container_command,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,  # its own process group, ended as a whole
            )
        except OSError as exc:
            shutil.rmtree(data_dir, ignore_errors=True)
            raise StartError(f"cannot run {settings.container_command[0]!r}: {exc}") from exc
        container = Container(session_id, process, port, data_dir)
        container.output_reader = asyncio.create_task(_read_output(container))
        logger.info("%s starting on port %d", container.label, port)
        try:
            await self._wait_healthy(container)
        except BaseException:
            await self._terminate(container)
            raise
        seconds = time.monotonic() - spawned
        container.started_at = time.monotonic()
        container.touch()
        self._running[session_id] = container
        self._track(self._end_on_exit(container))
        logger.info("%s healthy after %.2f s", container.label, seconds)
        self._on_start(ContainerStart(session_id, process.pid, seconds))
        return container

    async def _wait_healthy(self, container: Container) -> None:
        deadline = time.monotonic() + self._settings.start_timeout_s
        while True:
            if container.process.returncode is not None:
                await _drain(container)
                _log_tail(container, f"exited with code {container.process.returncode} at start")
                raise StartError(
                    f"the container exited with code {container.process.returncode} before "
                    "it was healthy (its last lines are in the emulator's log)"
                )
            if await self._ping(container) in HEALTHY_STATES:
                return
            if time.monotonic() > deadline:
                _log_tail(container, "not healthy in time")
                raise StartError(
                    f"the container was not healthy within {self._settings.start_timeout_s} s"
                )
            await asyncio.sleep(_START_POLL_S)

    async def _ping(self, container: Container) -> str | None:
        """The /ping status, or None when it does not answer with a healthy state."""
        try:
            response = await self._client.get(container.url("/ping"), timeout=_PING_TIMEOUT_S)
            status = response.json().get("status") if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError, AttributeError):
            return None
        return status if status in HEALTHY_STATES else None

    async def _end_on_exit(self, container: Container) -> None:
        """A container that exits by itself ends its session (AgentCore would fail it)."""
        code = await container.process.wait()
        if self._running.get(container.session_id) is container:
            await _drain(container)
            _log_tail(container, f"exited unexpectedly with code {code}")
            await self.end(container.session_id, f"exited with code {code}")

    async def _terminate(self, container: Container) -> None:
        """SIGTERM to the container's main process (as a container runtime stops PID 1: its
        children are its to stop), SIGKILL to the whole group after the grace period, then
        delete the disk."""
        process = container.process
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), self._settings.stop_grace_s)
        except TimeoutError:
            logger.warning("%s ignored SIGTERM; killing it", container.label)
        # Also any child that outlived its parent: the group goes entirely.
        _signal_group(process.pid, signal.SIGKILL)
        await process.wait()
        await _drain(container)
        await anyio.to_thread.run_sync(shutil.rmtree, container.data_dir, True)

    def _track(self, coroutine: Coroutine[Any, Any, None]) -> None:
        """Keep a reference: the event loop holds background tasks only weakly."""
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _free_port() -> int:
    """A port free right now; the container binds it a moment later (fine on loopback)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


async def _read_output(container: Container) -> None:
    """Log the container's output line by line and keep the tail for failure reports."""
    stream = container.process.stdout
    if stream is None:
        return
    while True:
        try:
            line = await stream.readline()
        except ValueError:  # a line over the stream's limit: its start is dropped
            continue
        if not line:
            return
        text = line.decode(errors="replace").rstrip()
        container.output_tail.append(text)
        container_logger.info("[pid %d] %s", container.process.pid, text)


async def _drain(container: Container) -> None:
    """Wait briefly for the last output; a grandchild holding the pipe must not block us."""
    if container.output_reader is not None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(container.output_reader), _OUTPUT_DRAIN_S)


def _log_tail(container: Container, what: str) -> None:
    tail = "\n".join(f"    {line}" for line in container.output_tail) or "    (no output)"
    logger.error("%s %s; its last output lines:\n%s", container.label, what, tail)
