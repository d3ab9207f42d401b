"""The page as a new user meets it: no console errors, nothing off screen at phone width,
titles and footers that appear when they should and survive a reload, paths as the user
knows them, controls that say what they are."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect

from tests.browser.conftest import RunningApp
from tests.browser.test_chat import send, sign_up

pytestmark = pytest.mark.browser


def test_a_page_load_logs_no_console_error(page: Page) -> None:
    errors: list[str] = []

    def watch(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    page.on("console", watch)
    sign_up(page, "console@example.com")
    page.reload()
    expect(page.locator("#new-session")).to_be_visible()
    page.wait_for_timeout(500)
    assert errors == []
    assert page.request.get("/favicon.ico").status == 200


def test_nothing_overflows_at_phone_width(browser: Browser, reflex_app: RunningApp) -> None:
    context = browser.new_context(base_url=reflex_app.url, viewport={"width": 390, "height": 800})
    context.set_default_timeout(20_000)
    page = context.new_page()
    try:
        sign_up(page, "narrow@example.com")  # the rail is a drawer here: the prompt starts one
        long_word = "Supercalifragilistic" * 8
        send(page, f"echo {long_word}")
        expect(page.locator("#title")).to_contain_text("Supercalifragilistic")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the page is {width} px wide"
        for control in ("#theme", "#sign-out", "#open-rail"):
            box = page.locator(control).bounding_box()
            assert box is not None and box["x"] + box["width"] <= 390, control
    finally:
        context.close()


def test_a_new_sessions_title_shows_at_once(page: Page) -> None:
    sign_up(page, "titles@example.com")
    page.locator("#new-session").dblclick()  # by habit, and typed at once: still one session
    send(page, "echo name this session")
    expect(page.locator("#title")).to_have_text("echo name this session")
    expect(page.locator("#session-count")).to_have_text("1 session")


def test_footers_and_stopped_marks_survive_a_reload(page: Page) -> None:
    sign_up(page, "footers@example.com")
    page.locator("#new-session").click()
    send(page, "echo first turn")
    expect(page.locator(".msg-result")).to_have_count(1)
    send(page, "long story")
    expect(page.locator("#streaming")).to_contain_text("w10")
    page.locator("#stop").click()
    expect(page.locator(".msg-stopped")).to_have_count(1)
    expect(page.locator(".msg-stopped")).to_contain_text("Stopped")
    footers = page.locator(".msg-result").all_inner_texts()
    page.reload()
    expect(page.locator(".msg-result")).to_have_count(2)
    assert page.locator(".msg-result").all_inner_texts() == footers
    expect(page.locator(".msg-stopped")).to_have_count(1)


def test_tool_cards_show_paths_relative_to_the_project(page: Page) -> None:
    sign_up(page, "paths@example.com")
    page.locator("#new-session").click()
    page.locator("#mode-picker").click()
    page.get_by_role("option", name="acceptEdits").click()
    send(page, "write relative.txt")
    expect(page.locator(".msg-tool .tool-summary").last).to_have_text("Write relative.txt")
    expect(page.locator(".msg-assistant").last).to_contain_text("File created")
    output = page.locator(".msg-tool .tool-output").last
    expect(output).to_contain_text("File created successfully at: relative.txt")
    page.reload()
    expect(page.locator(".msg-tool .tool-summary").last).to_have_text("Write relative.txt")
    expect(output).to_contain_text("File created successfully at: relative.txt")
    assert "/workspace" not in " ".join(page.locator(".msg-tool").all_inner_texts())


def test_controls_and_fields_have_names(page: Page) -> None:
    page.goto("/signup")
    for field in ("email", "password", "password2"):
        assert page.locator(f"label[for='{field}']").count() == 1
    expect(page.get_by_label("E-mail")).to_be_visible()
    sign_up(page, "a11y@example.com")
    expect(page.get_by_role("button", name="Light or dark theme")).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    page.set_viewport_size({"width": 390, "height": 800})
    expect(page.get_by_role("button", name="Sessions and projects")).to_be_visible()
