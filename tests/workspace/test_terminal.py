"""The terminal's shell, through the engine, in the real sandbox (bubblewrap): it runs commands
in the project, keeps its scrollback for a page that comes back, resizes, answers Ctrl-C, and
takes everything it started with it when it closes."""

from __future__ import annotations

import asyncio
import secrets
import signal
import subprocess
from pathlib import Path

import pytest

from app.agent.engine import AgentEngine
from app.agent.schemas import NewProject
from app.db.store import Store
from app.devtools.model_server import ModelServer
from app.errors import LimitReached, NotFound
from app.sandbox.service import SandboxConfig
from app.workspace import terminal as terminal_module
from app.workspace.terminal import Terminal
from tests.conftest import ensure_user, new_engine


async def run(terminal: Terminal, command: str, timeout: float = 30) -> str:
    """Type `command` and Enter; what the terminal printed until the command was done (the
    end marker is split in the typed line so that its echo never matches)."""
    marker = f"END{secrets.token_hex(4)}"
    since = terminal.end
    terminal.write(f"{command}; echo {marker[:3]}''{marker[3:]}\r")
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        seen = terminal.read(since, 10**9).data
        if marker in seen:
            return seen[: seen.index(marker)]
        remaining = deadline - asyncio.get_running_loop().time()
        assert remaining > 0, f"no end of {command!r}; the terminal shows {seen!r}"
        try:
            await asyncio.wait_for(terminal.wait(terminal.end), remaining)
        except TimeoutError:
            raise AssertionError(f"no end of {command!r}; the terminal shows {seen!r}") from None


async def opened(
    engine: AgentEngine, user_id: str, project_id: str, cols: int, rows: int
) -> Terminal:
    """The project's terminal the engine opens (the shell itself, to drive it here)."""
    await engine.open_terminal(user_id, project_id, cols, rows)
    terminal = engine.terminals.find(user_id, project_id)
    assert terminal is not None
    return terminal


async def quiet(terminal: Terminal) -> Terminal:
    """No echo of typed keys and no prompt: what is read is the commands' own output."""
    await run(terminal, "stty -echo; PS1=''; PS2=''; bind 'set enable-bracketed-paste off'")
    return terminal


@pytest.fixture
async def project(engine: AgentEngine, store: Store) -> tuple[str, str]:
    user = ensure_user(store, "ann@example.com")
    made = await engine.create_project(user.id, NewProject(name="demo"))
    return user.id, made.project_id


async def test_a_command_runs_in_the_project_and_the_output_is_kept_for_a_page_that_returns(
    engine: AgentEngine, project: tuple[str, str]
) -> None:
    user_id, project_id = project
    terminal = await quiet(await opened(engine, user_id, project_id, 100, 30))
    output = await run(terminal, "pwd; echo made-here > note.txt; ls; whoami; id -u")
    lines = output.split()
    assert lines[0] == "/workspace/demo"  # the project, as the agent sees it too
    assert "note.txt" in lines and "agent" in lines
    assert int(lines[-1]) >= 200_000  # the user's own unprivileged uid, as for the agent
    folder = engine.project_dir(user_id, project_id)
    assert (folder / "note.txt").read_text() == "made-here\n"

    # A page that reloads asks from offset 0 and gets everything, the first prompt included.
    again = engine.terminals.find(user_id, project_id)
    assert again is terminal
    replay = terminal.read(0, 10**9)
    assert replay.start == 0 and "made-here" not in replay.data  # output, not the file
    assert "note.txt" in replay.data and replay.end == terminal.end
    # The same terminal, not a second shell, when the page opens it again.
    assert await opened(engine, user_id, project_id, 80, 24) is terminal


async def test_resize_ctrl_c_and_unicode(engine: AgentEngine, project: tuple[str, str]) -> None:
    # An app started with Ctrl-C ignored (nohup, some process managers) or blocked (in the
    # thread that starts the shell) must not hand that on: Ctrl-C stops the foreground job.
    ignored = signal.signal(signal.SIGINT, signal.SIG_IGN)
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        terminal = await quiet(await opened(engine, *project, 100, 30))
    finally:
        signal.signal(signal.SIGINT, ignored)
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    terminal.resize(132, 43)
    assert (await run(terminal, "stty size")).split() == ["43", "132"]
    started = terminal.end
    sleeper = f"sleep {50000 + secrets.randbelow(9999)}"
    await run(terminal, f"{sleeper} & true")
    assert await _started(sleeper)
    since = terminal.end
    terminal.write("fg\r")  # bash names the job it brings to the foreground
    while sleeper not in terminal.read(since, 10**9).data:
        await asyncio.wait_for(terminal.wait(terminal.end), 20)
    # Ctrl-C: the foreground job stops, the shell goes on. Pressed again each second, as a
    # user would, in case the first came before bash gave the job the terminal. A terminal
    # drops input queued behind a Ctrl-C (as any does): type on once it has landed.
    for tick in range(200):
        if tick % 20 == 0:
            terminal.write("\x03")
        await asyncio.sleep(0.05)
        if not _processes(sleeper):
            break
    output = await run(terminal, "echo rc=$?", timeout=10)
    assert "rc=130" in terminal.read(started, 10**9).data + output
    assert "héllo ✓ 😀" in await run(terminal, "echo 'héllo ✓ 😀'")
    with pytest.raises(Exception, match="columns"):
        terminal.resize(0, 10)


async def test_closing_ends_the_shell_and_all_it_started(
    engine: AgentEngine, project: tuple[str, str]
) -> None:
    terminal = await quiet(await opened(engine, *project, 80, 24))
    sleeper = f"sleep {7000 + secrets.randbelow(999)}"
    await run(terminal, f"nohup {sleeper} >/dev/null 2>&1 & disown; echo started")
    assert await _started(sleeper)
    await engine.close_terminal(*project)
    assert not terminal.running
    assert not _processes(sleeper)
    assert engine.terminals.find(*project) is None
    # A new one opens in its place, a new shell.
    fresh = await opened(engine, *project, 80, 24)
    assert fresh is not terminal and fresh.running


async def test_a_shell_that_exits_says_so_and_keeps_its_output(
    engine: AgentEngine, project: tuple[str, str]
) -> None:
    terminal = await opened(engine, *project, 80, 24)
    terminal.write("echo bye-now; exit 3\r")
    await asyncio.wait_for(terminal.ended.wait(), 20)
    last = terminal.read(0, 10**9)
    assert "bye-now" in last.data and last.exit_code == 3
    with pytest.raises(NotFound):
        terminal.write("echo more\r")
    assert (await opened(engine, *project, 80, 24)).running


async def test_old_output_gives_way_and_a_flood_is_read_at_a_bounded_pace(
    engine: AgentEngine, project: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(terminal_module, "SCROLLBACK_CHARS", 10_000)
    terminal = await quiet(await opened(engine, *project, 80, 24))
    began = asyncio.get_running_loop().time()
    await run(terminal, "head -c 3000000 /dev/zero | tr '\\0' x; echo", timeout=60)
    took = asyncio.get_running_loop().time() - began
    kept = terminal.read(0, 10**9)
    assert kept.start > 2_900_000 and len(kept.data) <= 12_500
    # 3 MB at READ_BUDGET bytes per READ_WINDOW_S cannot arrive faster than this.
    floor = 3_000_000 / terminal_module.READ_BUDGET * terminal_module.READ_WINDOW_S
    assert took >= floor * 0.8, took


async def test_terminals_are_each_users_own_and_limited(
    engine: AgentEngine, store: Store, project: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    user_id, project_id = project
    await engine.open_terminal(user_id, project_id, 80, 24)
    bob = ensure_user(store, "bob@example.com")
    assert engine.terminals.find(bob.id, project_id) is None
    with pytest.raises(NotFound):
        await engine.open_terminal(bob.id, project_id, 80, 24)  # Ann's project
    monkeypatch.setattr(terminal_module, "MAX_TERMINALS_PER_USER", 1)
    other = await engine.create_project(user_id, NewProject(name="other"))
    with pytest.raises(LimitReached, match="terminals open"):
        await engine.open_terminal(user_id, other.project_id, 80, 24)


async def _started(pattern: str) -> list[str]:
    """The processes matching `pattern`, once there are any (a job sent to the background
    may not have started yet when the shell goes on)."""
    for _ in range(200):
        if found := _processes(pattern):
            return found
        await asyncio.sleep(0.05)
    return []


def _processes(pattern: str) -> list[str]:
    found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
    return found.stdout.split()


async def test_without_a_sandbox_the_shell_runs_in_the_folder_itself(
    tmp_path: Path, store: Store, model_server: ModelServer
) -> None:
    """AGENT_SANDBOX=off (a single-user laptop): the same terminal, unconfined, in the project
    folder, with no secret of the app's in its environment."""
    engine = new_engine(tmp_path, store, model_server, sandbox=SandboxConfig(enabled=False))
    await engine.start()
    try:
        user = ensure_user(store, "solo@example.com")
        made = await engine.create_project(user.id, NewProject(name="solo"))
        terminal = await quiet(await opened(engine, user.id, made.project_id, 80, 24))
        output = await run(terminal, "pwd; env")
        assert output.splitlines()[0] == str(engine.project_dir(user.id, made.project_id))
        assert "TERM=xterm-256color" in output
        assert "ANTHROPIC" not in output and "test-key" not in output
    finally:
        await engine.shutdown()
