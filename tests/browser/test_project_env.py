"""A project's environment variables in the Projects tab: added through a password field,
listed by name only, never sent back to the page, and seen by the project's next agent."""

from __future__ import annotations

import hashlib
import secrets

import pytest
from playwright.sync_api import Page, WebSocket, expect

from tests.browser.conftest import ARTIFACTS
from tests.browser.test_chat import send, sign_up

pytestmark = pytest.mark.browser

AGENT_S = 60_000


def test_project_env_is_write_only_and_reaches_the_agent(page: Page) -> None:
    canary = f"canary{secrets.token_hex(12)}"
    digest = hashlib.sha256(canary.encode()).hexdigest()
    frames: list[str] = []

    def watch(socket: WebSocket) -> None:
        socket.on("framereceived", lambda payload: frames.append(str(payload)))

    page.on("websocket", watch)
    sign_up(page, "env-user@example.com")
    page.locator("#projects-tab").click()
    section = page.locator("#env-section")
    expect(section).to_contain_text("agents started afterwards")

    # A name the sandbox sets itself is refused, with why.
    section.locator("#env-name").fill("PATH")
    section.locator("#env-value").fill("nope")
    section.locator("#env-add").click()
    expect(page.locator("#env-error")).to_contain_text("set by the sandbox")

    section.locator("#env-name").fill("PAGE_SECRET")
    value = section.locator("#env-value")
    expect(value).to_have_attribute("type", "password")
    value.fill(canary)
    section.locator("#env-add").click()
    expect(section.locator(".env-row")).to_contain_text("PAGE_SECRET")
    expect(page.locator("#env-notice")).to_contain_text("PAGE_SECRET set")
    expect(section.locator("#env-value")).to_have_value("")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "project-env.png"), full_page=True)

    # The agent started now sees it (proved by its hash: the value itself is never printed).
    page.locator("#new-session").click()
    send(
        page,
        f'run bash test "$(printf %s "$PAGE_SECRET" | sha256sum)" = "{digest}  -" '
        "&& echo present || echo absent",
    )
    page.locator(".approval .allow-once").click()
    expect(page.locator(".msg-assistant").last).to_contain_text("present", timeout=AGENT_S)
    expect(page.locator(".msg-assistant").last).not_to_contain_text("absent")

    page.reload()
    page.locator("#projects-tab").click()
    expect(page.locator("#env-section .env-row")).to_contain_text("PAGE_SECRET")
    assert frames, "the page's socket was watched"
    assert not [f for f in frames if canary in f], "the value came back to the page"
    assert canary not in page.content()
