"""The Terminal panel in a real browser: a shell in the session's project, in the agent's
sandbox. A command's output shows; the page reloads and the scrollback is still there; the
panel's size reaches the shell; a flood of output arrives in socket messages under 32 KB; what
the shell can see of the app is what the agent can (nothing); a workspace restart closes it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, WebSocket, expect

from tests.browser.conftest import RunningApp
from tests.browser.test_chat import project_files, send, sign_up

pytestmark = pytest.mark.browser
SOCKET_LIMIT = 32 * 1024  # AgentCore closes the socket on a bigger message


def type_command(page: Page, command: str) -> None:
    page.locator("#terminal .xterm-helper-textarea").focus()
    page.keyboard.type(command)
    page.keyboard.press("Enter")


def screen(page: Page):  # type: ignore[no-untyped-def]
    return page.locator("#terminal .xterm-rows")


def test_a_shell_in_the_project_that_survives_a_reload(page: Page, reflex_app: RunningApp) -> None:
    frames: list[int] = []

    def watch(socket: WebSocket) -> None:
        socket.on("framereceived", lambda frame: frames.append(len(frame)))

    page.on("websocket", watch)
    sign_up(page, "shell@example.com")
    send(page, "echo open a session")
    expect(page.locator(".msg-assistant").last).to_have_text("You said: open a session")
    page.locator("#terminal-toggle").click()
    expect(screen(page)).to_contain_text("agent@agent", timeout=30_000)  # the prompt

    type_command(page, "echo made-in-the-terminal > from-shell.txt; echo answer-$((6 * 7))")
    expect(screen(page)).to_contain_text("answer-42")
    [made] = project_files(reflex_app, "from-shell.txt")
    assert made.read_text() == "made-in-the-terminal\n"

    # The shell sees what the agent sees: its project, and nothing of the app's.
    type_command(page, f"pwd; ls {reflex_app.data_dir} 2>&1 | tail -1")
    expect(screen(page)).to_contain_text("/workspace/")
    expect(screen(page)).to_contain_text("No such file or directory")

    # A reload: the panel is still open and shows what the shell printed before.
    page.reload()
    expect(screen(page)).to_contain_text("answer-42", timeout=30_000)
    type_command(page, "echo still-the-same-shell-$$")
    expect(screen(page)).to_contain_text("still-the-same-shell-")

    # The panel's size is the shell's: a narrower window gives fewer columns.
    wide = _size(page, "wide")
    page.set_viewport_size({"width": 900, "height": 800})
    for attempt in range(20):  # the new size travels as the window settles
        page.wait_for_timeout(250)
        narrow = _size(page, f"narrow{attempt}")
        if narrow != wide:
            break
    assert narrow[1] < wide[1], (wide, narrow)

    # A flood: the page keeps up, and no socket message is over AgentCore's limit.
    frames.clear()
    type_command(page, "seq 1 10000 | sed 's/$/ lorem ipsum dolor sit amet/'; echo flood-done")
    expect(screen(page)).to_contain_text("flood-done", timeout=60_000)
    assert frames and max(frames) <= SOCKET_LIMIT, max(frames)

    # Closing the shell ends it; a new one starts fresh.
    page.locator("#terminal-close").click()
    expect(page.locator("#terminal-ended")).to_contain_text("closed")
    page.locator("#terminal-new").click()
    expect(screen(page)).to_contain_text("agent@agent", timeout=30_000)
    expect(screen(page)).not_to_contain_text("flood-done")

    # Restart workspace: the agent and the terminal stop, asked first; the work is kept.
    page.get_by_role("tab", name="Projects").click()
    page.locator("#restart-workspace").click()
    page.locator("#confirm-restart").click()
    expect(page.locator("#restart-note")).to_contain_text("1 agent and 1 terminal stopped")
    expect(page.locator("#terminal-ended")).to_contain_text("closed")
    assert project_files(reflex_app, "from-shell.txt")
    send(page, "echo after the restart")
    expect(page.locator(".msg-assistant").last).to_have_text("You said: after the restart")


def _size(page: Page, label: str) -> tuple[int, int]:
    """The shell's terminal size (rows, columns), as `stty` says it."""
    type_command(page, f"clear; echo {label}=$(stty size | tr ' ' x)")
    pattern = re.compile(rf"{label}=(\d+)x(\d+)")
    expect(screen(page)).to_contain_text(pattern)
    found = pattern.search(screen(page).inner_text())
    assert found is not None
    return int(found[1]), int(found[2])
