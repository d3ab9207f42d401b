"""Terminals: a shell on a pseudo-terminal in the user's sandbox, for the page's Terminal panel.

The shell runs in the same jail as the user's agents (`Sandbox.shell`): it reaches exactly what
they reach. The app holds the terminal's master side and keeps the last SCROLLBACK_CHARS of its
output, so a page that reloads, or a second tab, shows what was printed, and output goes on
while no page looks. Offsets count characters of output since the shell started: a reader asks
for what follows the offset it has, and learns when older output was dropped meanwhile.

A shell that floods its terminal (`yes`) is read at most READ_BUDGET bytes per READ_WINDOW_S:
past that the app stops reading for the rest of the window, the kernel's buffer fills and the
shell waits, as it would on a slow terminal; the app's own work keeps its share of the CPU.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import errno
import fcntl
import logging
import os
import pty
import secrets
import signal
import struct
import termios
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from app.errors import InvalidInput, LimitReached, NotFound
from app.sandbox.service import Sandbox
from app.workspace.place import ProjectPlace

logger = logging.getLogger(__name__)

SCROLLBACK_CHARS = 256_000
READ_SIZE = 65_536
READ_WINDOW_S = 0.1
READ_BUDGET = 256 * 1024  # bytes per window: 2.5 MB/s, far more than a page can show
MAX_PENDING_INPUT = 1 << 20  # bytes typed or pasted that the shell has not read yet
MAX_TERMINALS_PER_USER = 4
SETSID = "/usr/bin/setsid"
ENV = "/usr/bin/env"
STOP_GRACE_S = 2.0

Changed = Callable[[ProjectPlace], Awaitable[None]]
Variables = Callable[[ProjectPlace], Awaitable[dict[str, str]]]


@dataclass(frozen=True)
class Output:
    """Output after a reader's offset: `data` runs from `start` to `end`. `start` is later than
    asked when the scrollback no longer holds what came between."""

    start: int
    end: int
    data: str
    exit_code: int | None  # set once the shell has ended (and everything it printed is here)


def check_size(cols: int, rows: int) -> None:
    sizes = (cols, rows)
    if not all(type(n) is int for n in sizes) or not (2 <= cols <= 1000 and 1 <= rows <= 500):
        raise InvalidInput("A terminal is 2-1000 columns wide and 1-500 rows high.")


class Terminal:
    """One shell on one pseudo-terminal. Made by `Terminals.open`."""

    def __init__(
        self,
        place: ProjectPlace,
        shell_id: str,
        process: asyncio.subprocess.Process,
        master: int,
        on_enter: Callable[[], None],
    ) -> None:
        self.place = place
        self.shell_id = shell_id
        self.started_at = time.time()
        self.exit_code: int | None = None
        self._process = process
        self._master = master
        self._on_enter = on_enter
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._text = ""  # the scrollback: output from offset _start to _end
        self._start = 0
        self._pending = bytearray()  # input the shell has not taken yet
        self._changed = asyncio.Event()
        self._window_began = 0.0
        self._window_bytes = 0
        self._reading = False
        self._writing = False
        self._loop = asyncio.get_running_loop()
        self.ended = asyncio.Event()
        os.set_blocking(master, False)
        self._read_on()

    @property
    def running(self) -> bool:
        return not self.ended.is_set()

    @property
    def end(self) -> int:
        return self._start + len(self._text)

    # --- what readers and writers call ---------------------------------------------------

    def read(self, since: int, limit: int) -> Output:
        """At most `limit` characters of output after offset `since` (from the oldest kept,
        when `since` is older than that)."""
        start = max(since, self._start)
        data = self._text[start - self._start : start - self._start + limit]
        code = self.exit_code if start + len(data) == self.end else None
        return Output(start, start + len(data), data, code)

    async def wait(self, since: int) -> None:
        """Until there is output after `since`, or the shell has ended."""
        while self.end <= since and self.running:
            changed = self._changed
            await changed.wait()

    def write(self, text: str) -> None:
        """Keys typed or text pasted, as the shell reads them."""
        if not self.running:
            raise NotFound("This terminal has ended; open a new one.")
        data = text.encode("utf-8", errors="replace")
        if len(self._pending) + len(data) > MAX_PENDING_INPUT:
            raise LimitReached("The terminal is not taking input that fast; wait a moment.")
        self._pending += data
        self._flush_input()
        if b"\r" in data:
            self._on_enter()

    def resize(self, cols: int, rows: int) -> None:
        """The page's terminal changed size: the shell's programs get SIGWINCH and redraw."""
        check_size(cols, rows)
        if self.running:
            fcntl.ioctl(self._master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    async def close(self) -> None:
        """End the shell and everything it started (the jail goes with its first process)."""
        if self.running:
            with contextlib.suppress(ProcessLookupError):
                self._process.send_signal(signal.SIGHUP)
            try:
                await asyncio.wait_for(self.ended.wait(), STOP_GRACE_S)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self._process.kill()
                await self.ended.wait()

    # --- the pseudo-terminal --------------------------------------------------------------

    async def watch(self) -> None:
        """Wait for the shell to end, then take the last of its output and close the
        terminal (run as a task by `Terminals`)."""
        code = await self._process.wait()
        self._read_off()
        with contextlib.suppress(OSError):
            while self._read_once():
                pass
        self._take(self._decoder.decode(b"", final=True))
        os.close(self._master)
        self._writing = False
        self.exit_code = code
        self.ended.set()
        self._notify()

    def _read_on(self) -> None:
        if not self._reading and not self.ended.is_set():
            self._loop.add_reader(self._master, self._readable)
            self._reading = True

    def _read_off(self) -> None:
        if self._reading:
            self._loop.remove_reader(self._master)
            self._reading = False

    def _readable(self) -> None:
        now = time.monotonic()
        if now - self._window_began >= READ_WINDOW_S:
            self._window_began, self._window_bytes = now, 0
        try:
            self._read_once()
        except OSError as error:
            if error.errno not in (errno.EIO, errno.EAGAIN):  # EIO: every process has let go
                logger.warning("terminal %s: %s", self.shell_id, error)
            self._read_off()
            return
        if self._window_bytes >= READ_BUDGET:
            self._read_off()
            self._loop.call_later(self._window_began + READ_WINDOW_S - now, self._read_on)

    def _read_once(self) -> bool:
        data = os.read(self._master, READ_SIZE)
        if not data:
            return False
        self._window_bytes += len(data)
        self._take(self._decoder.decode(data))
        return True

    def _take(self, text: str) -> None:
        if not text:
            return
        self._text += text
        if len(self._text) > SCROLLBACK_CHARS * 5 // 4:
            cut = len(self._text) - SCROLLBACK_CHARS
            # Start the kept part on a new line where one is near (not inside an escape).
            newline = self._text.find("\n", cut, cut + 4096)
            cut = newline + 1 if newline >= 0 else cut
            self._text = self._text[cut:]
            self._start += cut
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _flush_input(self) -> None:
        try:
            written = os.write(self._master, self._pending)
        except BlockingIOError:
            written = 0
        except OSError:  # the shell is gone; `watch` sees to the rest
            self._pending.clear()
            written = 0
        del self._pending[:written]
        if self._pending and not self._writing:
            self._loop.add_writer(self._master, self._writable)
            self._writing = True

    def _writable(self) -> None:
        self._loop.remove_writer(self._master)
        self._writing = False
        if self.running:
            self._flush_input()


class Terminals:
    """The terminals of every user: at most one per project, MAX_TERMINALS_PER_USER running
    per user. A terminal ended stays (its output readable) until another opens there."""

    def __init__(self, sandbox: Sandbox, changed: Changed, variables: Variables) -> None:
        self.sandbox = sandbox
        self.changed = changed  # the user's files may have changed (back them up soon)
        self.variables = variables  # the project's environment variables, as its agents get
        self._terminals: dict[tuple[str, str], Terminal] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()

    def find(self, user_id: str, project_id: str) -> Terminal | None:
        return self._terminals.get((user_id, project_id))

    async def open(self, place: ProjectPlace, cols: int, rows: int) -> Terminal:
        """The project's terminal: the running one, or a new shell."""
        check_size(cols, rows)
        key = (place.user_id, place.project_id)
        async with self._lock:
            terminal = self._terminals.get(key)
            if terminal is not None and terminal.running:
                terminal.resize(cols, rows)
                return terminal
            running = [
                t for (user, _), t in self._terminals.items() if user == place.user_id and t.running
            ]
            if len(running) >= MAX_TERMINALS_PER_USER:
                raise LimitReached(
                    f"You have {len(running)} terminals open, the most there can be; "
                    "close one in its project first."
                )
            terminal = await self._start(place, cols, rows)
            self._terminals[key] = terminal
            return terminal

    async def close(self, user_id: str, project_id: str) -> None:
        terminal = self._terminals.pop((user_id, project_id), None)
        if terminal is not None:
            await terminal.close()

    async def close_user(self, user_id: str) -> int:
        """Close the user's terminals; how many were running."""
        keys = [k for k, t in self._terminals.items() if k[0] == user_id]
        running = sum(1 for k in keys if self._terminals[k].running)
        for key in keys:
            await self.close(*key)
        return running

    async def close_all(self) -> None:
        await asyncio.gather(*(self.close(*key) for key in list(self._terminals)))
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _start(self, place: ProjectPlace, cols: int, rows: int) -> Terminal:
        shell_id = f"term-{secrets.token_hex(8)}"
        launch = await self.sandbox.shell(
            shell_id=shell_id,
            user_id=place.user_id,
            project=place.project,
            project_name=place.project_name,
            home=place.home,
            extra_env=await self.variables(place),
        )
        master, follower = pty.openpty()
        try:
            fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
            # setsid --ctty: the shell's session owns this terminal (job control, Ctrl-C).
            # Signals the app ignores or blocks (Ctrl-C under nohup, a process manager, a
            # library's thread) are not the shell's to inherit, or Ctrl-C would stop nothing
            # in it: env --default-signal resets what is ignored, _unblock_signals the mask.
            process = await asyncio.create_subprocess_exec(
                ENV,
                "--default-signal",
                SETSID,
                "--ctty",
                str(launch.script),
                stdin=follower,
                stdout=follower,
                stderr=follower,
                cwd=launch.cwd,
                env={"PATH": "/usr/bin:/bin"},  # the launcher sets the shell's whole environment
                preexec_fn=_unblock_signals,
            )
        except BaseException:
            os.close(master)
            await self.sandbox.close(shell_id)
            raise
        finally:
            os.close(follower)

        def entered() -> None:
            self._spawn(self.changed(place))

        terminal = Terminal(place, shell_id, process, master, entered)
        self._spawn(self._watch(terminal))
        return terminal

    async def _watch(self, terminal: Terminal) -> None:
        await terminal.watch()
        await self.sandbox.close(terminal.shell_id)
        await self.changed(terminal.place)

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _unblock_signals() -> None:
    """In the shell's process before exec: no signal blocked (one system call, no lock)."""
    signal.pthread_sigmask(signal.SIG_SETMASK, ())
