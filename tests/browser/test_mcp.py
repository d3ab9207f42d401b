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


def test_edit_an_mcp_server_keeps_its_header_secret(page: Page) -> None:
    sign_up(page, "mcp-edit@example.com")
    page.locator("#projects-tab").click()
    page.locator("#mcp-start-add").click()
    page.locator("#mcp-name").fill("docs")
    page.locator("#mcp-kind").click()
    page.get_by_role("option", name="http", exact=True).click()
    page.locator("#mcp-url").fill("https://mcp.example.com/mcp")
    page.locator("#mcp-header").fill("Authorization: Bearer sk-page-canary")
    page.locator("#mcp-add").click()
    server = page.locator(".mcp-server", has_text="docs")
    expect(server).to_contain_text("https://mcp.example.com/mcp")

    # Edit: the form starts from the server's settings, its header's value stays on the server.
    server.locator(".mcp-edit").click()
    expect(page.locator("#mcp-name")).to_have_value("docs")
    expect(page.locator("#mcp-url")).to_have_value("https://mcp.example.com/mcp")
    header = page.locator("#mcp-header")
    expect(header).to_have_value("")
    expect(header).to_have_attribute("placeholder", "Authorization: stored (blank keeps it)")
    page.locator("#mcp-name").fill("manuals")
    page.locator("#mcp-url").fill("https://mcp.example.com/v2/mcp")
    expect(page.locator("#mcp-add")).to_have_text("Save")
    page.locator("#mcp-add").click()
    expect(page.locator("#mcp-notice")).to_have_text("Saved manuals: new sessions use it.")
    expect(page.locator(".mcp-server")).to_have_count(1)
    edited = page.locator(".mcp-server", has_text="manuals")
    expect(edited).to_contain_text("https://mcp.example.com/v2/mcp")
    edited.locator(".mcp-edit").click()  # the blank header kept the stored one
    expect(page.locator("#mcp-header")).to_have_attribute(
        "placeholder", "Authorization: stored (blank keeps it)"
    )
    assert "sk-page-canary" not in page.content()

    # A bad edit is refused in the form and changes nothing.
    page.locator("#mcp-url").fill("http://127.0.0.1:8080/mcp")
    page.locator("#mcp-add").click()
    expect(page.locator("#mcp-error")).to_contain_text("not a public address")
    page.reload()
    page.locator("#projects-tab").click()
    expect(page.locator(".mcp-server", has_text="manuals")).to_contain_text(
        "https://mcp.example.com/v2/mcp"
    )
