"""MCP servers in the page: add a stdio server in the Projects tab, test it (its tools listed),
and a new session uses it: the agent's call of its tool waits for approval like any other,
then runs in the sandbox and answers."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import RunningApp
from tests.browser.test_chat import send, sign_up

pytestmark = pytest.mark.browser
SERVER = Path(__file__).resolve().parents[1] / "devtools" / "notes_mcp_server.py"


def test_add_test_and_use_an_mcp_server(page: Page, reflex_app: RunningApp) -> None:
    sign_up(page, "mcp@example.com")
    send(page, "echo first")
    expect(page.locator(".msg-assistant").last).to_have_text("You said: first")
    # This user's project: the one made last (the app is shared with other tests' users).
    folders = (reflex_app.data_dir / "projects").glob("*/*")
    project = max(folders, key=lambda folder: folder.stat().st_ctime)
    shutil.copy(SERVER, project / "notes_server.py")

    page.locator("#projects-tab").click()
    page.locator("#mcp-start-add").click()
    page.locator("#mcp-name").fill("notes")
    page.locator("#mcp-command").fill("python3 notes_server.py")
    page.locator("#mcp-add").click()
    server = page.locator(".mcp-server", has_text="notes")
    expect(server).to_contain_text("python3 notes_server.py")
    server.locator(".mcp-test").click()
    expect(page.locator("#mcp-notice")).to_have_text("notes answered: add.", timeout=20_000)

    page.locator("#new-session").click()
    send(page, "use notes hello from the page")
    approval = page.locator(".approval")
    expect(approval).to_contain_text("mcp__notes__add")
    approval.locator(".allow-once").click()
    expect(page.locator(".msg-assistant").last).to_contain_text("noted hello from the page as uid")
    assert (project / "notes.txt").read_text() == "hello from the page\n"
