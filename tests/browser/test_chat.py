"""The chat page in Chromium against the running app, the real CLI and the scripted model."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import ARTIFACTS, RunningApp

pytestmark = pytest.mark.browser


def sign_up(page: Page, email: str, password: str = "correct horse battery") -> None:
    page.goto("/")
    expect(page).to_have_url(re.compile(r".*/login$"))
    page.locator("#to-signup").click()
    expect(page.locator("#password2")).to_be_visible()  # the sign-up form, not the sign-in one
    page.locator("#email").fill(email)
    page.locator("#password").fill(password)
    page.locator("#password2").fill(password)
    page.locator("#sign-up").click()
    expect(page.locator("#prompt")).to_be_visible(timeout=20_000)


def sign_in(page: Page, email: str, password: str = "correct horse battery") -> None:
    page.goto("/")
    expect(page).to_have_url(re.compile(r".*/login$"))
    page.locator("#email").fill(email)
    page.locator("#password").fill(password)
    page.locator("#sign-in").click()
    expect(page.locator("#prompt")).to_be_visible(timeout=20_000)


def send(page: Page, text: str) -> None:
    page.locator("#prompt").fill(text)
    page.locator("#prompt").press("Enter")


def project_files(app: RunningApp, name: str) -> list[Path]:
    return list((app.data_dir / "projects").rglob(name))


def test_prompt_streams_the_answer(page: Page) -> None:
    sign_up(page, "streamer@example.com")
    expect(page.locator("#demo-banner")).to_be_visible()
    page.locator("#new-session").click()
    send(page, "echo hello from the browser")
    expect(page.locator(".msg-user").last).to_have_text("echo hello from the browser")
    expect(page.locator(".msg-assistant").last).to_have_text("You said: hello from the browser")
    expect(page.locator(".msg-result").last).to_contain_text("tokens")
    expect(page.locator("#prompt")).to_have_value("")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "chat.png"), full_page=True)


def test_approve_a_write_then_deny_another(page: Page, reflex_app: RunningApp) -> None:
    sign_up(page, "approver@example.com")
    page.locator("#new-session").click()
    send(page, "write approved.txt")
    card = page.locator(".approval")
    expect(card).to_contain_text("Write")
    page.screenshot(path=str(ARTIFACTS / "approval.png"), full_page=True)
    card.locator(".allow-once").click()
    expect(page.locator(".msg-assistant").last).to_contain_text("Write result: File created")
    [written] = project_files(reflex_app, "approved.txt")
    assert written.read_text() == "scripted content\n"

    send(page, "write refused.txt")
    expect(card).to_be_visible()
    card.locator(".deny-reason input").fill("not this one")
    card.locator(".deny").click()
    expect(page.locator(".msg-assistant").last).to_contain_text("not this one")
    expect(page.locator(".approval")).to_have_count(0)
    assert project_files(reflex_app, "refused.txt") == []
