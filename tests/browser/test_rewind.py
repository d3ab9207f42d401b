"""A prompt's menu in Chromium: rewind the files to before its turn (with a preview), and
fork the conversation from it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import ARTIFACTS, RunningApp
from tests.browser.test_chat import project_files, send, sign_up

pytestmark = pytest.mark.browser


def write_approved(page: Page, name: str) -> None:
    ended = page.locator(".msg-result")
    turns = ended.count()
    send(page, f"write {name}")
    page.locator(".approval .allow-once").click()
    # The previous turn's answer also says "File created": wait for the one naming this file.
    expect(page.locator(".msg-assistant").last).to_contain_text(
        re.compile(rf"Write result: File created.*{re.escape(name)}")
    )
    expect(ended).to_have_count(turns + 1)  # the turn is over: the next prompt is taken


def test_rewind_then_fork_from_the_first_turn(page: Page, reflex_app: RunningApp) -> None:
    sign_up(page, "rewinder@example.com")
    page.locator("#new-session").click()
    write_approved(page, "rewind-first.txt")
    write_approved(page, "rewind-second.txt")
    [first] = project_files(reflex_app, "rewind-first.txt")
    [second] = project_files(reflex_app, "rewind-second.txt")

    page.locator(".turn-menu").nth(1).click()
    page.locator(".rewind-here").click()
    expect(page.locator("#rewind-files")).to_have_text("rewind-second.txt")
    page.screenshot(path=str(ARTIFACTS / "rewind-preview.png"), full_page=True)
    assert second.exists(), "the preview changes nothing"
    page.locator("#confirm-rewind").click()
    expect(page.locator(".msg-notice")).to_contain_text("rewind-second.txt")
    expect(page.locator("#confirm-rewind")).to_have_count(0)
    assert not second.exists()
    assert first.read_text() == "scripted content\n"

    page.locator(".turn-menu").first.click()
    page.locator(".fork-here").click()
    expect(page.locator("#title")).to_contain_text("(fork)")
    expect(page.locator(".msg-user")).to_have_count(1)
    expect(page.locator(".msg-user")).to_have_text("write rewind-first.txt")
    send(page, "echo on the branch")
    expect(page.locator(".msg-assistant").last).to_have_text("You said: on the branch")
